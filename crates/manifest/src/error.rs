//! Manifest errors that point at the exact place in the file.
//!
//! Every error a user can cause in `spin.toml` carries the file, the line and
//! column, the dotted path of the field, what is wrong and, where we know it,
//! what would be valid. The CLI prints it as one block; tests match on it.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A position in the manifest file, 1-based as editors show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column number (in characters).
    pub column: usize,
}

impl Location {
    /// Converts a byte offset in `text` into a line and column.
    pub fn from_offset(text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = text
            .get(line_start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        Location { line, column }
    }
}

/// An invalid manifest: what is wrong, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The manifest file.
    pub file: PathBuf,
    /// Where in the file, when the error is tied to a place.
    pub location: Option<Location>,
    /// Dotted path of the field, e.g. `component.api.source`.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// What would be valid, or how to fix it.
    pub help: Option<String>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(loc) = self.location {
            write!(f, ":{}:{}", loc.line, loc.column)?;
        }
        if self.field.is_empty() {
            write!(f, ": {}", self.message)?;
        } else {
            write!(f, ": `{}`: {}", self.field, self.message)?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}

/// The text of a manifest and its path, used to turn byte spans into
/// [`ManifestError`]s. Kept on the parsed manifest so later stages (app
/// loading, trigger validation) can point into the file too.
#[derive(Debug, Clone)]
pub struct SourceFile {
    path: PathBuf,
    text: String,
}

impl SourceFile {
    /// Wraps the text read from `path`.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }

    /// The manifest's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The manifest's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// `file:line:column` of `span`, for messages from later stages that
    /// are not manifest errors themselves (a composition that failed).
    pub fn place(&self, span: &Range<usize>) -> String {
        let Location { line, column } = Location::from_offset(&self.text, span.start);
        format!("{}:{line}:{column}", self.path.display())
    }

    /// An error at `span` of the file.
    pub fn error(
        &self,
        span: Option<Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ManifestError {
        ManifestError {
            file: self.path.clone(),
            location: span.map(|s| Location::from_offset(&self.text, s.start)),
            field: field.into(),
            message: message.into(),
            help: None,
        }
    }
}

impl ManifestError {
    /// Adds a hint on how to fix the error.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// The closest of `candidates` to `word`, if any is close enough to be a
/// plausible typo.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(
            Location::from_offset(text, 0),
            Location { line: 1, column: 1 }
        );
        assert_eq!(
            Location::from_offset(text, 6),
            Location { line: 2, column: 1 }
        );
        assert_eq!(
            Location::from_offset(text, 8),
            Location { line: 2, column: 3 }
        );
    }

    #[test]
    fn typos_find_their_field() {
        assert_eq!(did_you_mean("sorce", ["source", "files"]), Some("source"));
        assert_eq!(did_you_mean("zzzzzz", ["source", "files"]), None);
    }
}
