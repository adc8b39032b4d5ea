//! A strict, span-keeping reader over a parsed TOML document.
//!
//! serde's derive gives poor messages for the shapes Spin manifests use
//! ("string or table", "one of several tables") and loses positions inside
//! flattened maps. Reading the spanned document by hand costs a little code
//! and buys an exact location, the field path and a list of valid choices for
//! every mistake, including unknown fields.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{ManifestError, SourceFile, did_you_mean};

pub(crate) type Result<T> = std::result::Result<T, ManifestError>;

/// A value with the byte range it came from.
pub(crate) type Sp<T> = Spanned<T>;

pub(crate) fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Reads the fields of one table, remembering which were read so that
/// [`TableReader::finish`] can reject the rest as unknown.
pub(crate) struct TableReader<'a, 'i> {
    pub(crate) src: &'a SourceFile,
    pub(crate) path: String,
    pub(crate) table: &'a DeTable<'i>,
    pub(crate) span: Range<usize>,
    known: Vec<&'static str>,
}

impl<'a, 'i> TableReader<'a, 'i> {
    pub(crate) fn new(
        src: &'a SourceFile,
        path: impl Into<String>,
        table: &'a DeTable<'i>,
        span: Range<usize>,
    ) -> Self {
        TableReader {
            src,
            path: path.into(),
            table,
            span,
            known: Vec::new(),
        }
    }

    /// Reads a nested value as a table.
    pub(crate) fn from_value(
        src: &'a SourceFile,
        path: impl Into<String>,
        value: &'a Spanned<DeValue<'i>>,
    ) -> Result<Self> {
        let path = path.into();
        match value.get_ref() {
            DeValue::Table(t) => Ok(TableReader::new(src, path, t, value.span())),
            other => Err(src
                .error(
                    Some(value.span()),
                    path,
                    format!("expected a table, found {}", type_name(other)),
                )
                .with_help("write it as `[section]` or as an inline table `{ key = \"value\" }`")),
        }
    }

    pub(crate) fn field_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(crate) fn error(
        &self,
        span: Range<usize>,
        key: &str,
        msg: impl Into<String>,
    ) -> ManifestError {
        self.src.error(Some(span), self.field_path(key), msg)
    }

    /// The raw value of `key`, marking it as known.
    pub(crate) fn get(&mut self, key: &'static str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.known.push(key);
        self.table.get(key)
    }

    /// Marks `key` as valid without reading it (fields Gyre accepts and ignores).
    pub(crate) fn ignore(&mut self, key: &'static str) {
        self.known.push(key);
    }

    pub(crate) fn string(&mut self, key: &'static str) -> Result<Option<Sp<String>>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => self.as_string(key, v).map(Some),
        }
    }

    pub(crate) fn as_string(&self, key: &str, v: &Spanned<DeValue<'i>>) -> Result<Sp<String>> {
        match v.get_ref() {
            DeValue::String(s) => Ok(Spanned::new(v.span(), s.to_string())),
            other => Err(self
                .error(
                    v.span(),
                    key,
                    format!("expected a string, found {}", type_name(other)),
                )
                .with_help("put the value in double quotes, e.g. `\"1\"`")),
        }
    }

    pub(crate) fn required_string(&mut self, key: &'static str) -> Result<Sp<String>> {
        match self.string(key)? {
            Some(s) => Ok(s),
            None => Err(self
                .src
                .error(
                    Some(self.span.clone()),
                    self.field_path(key),
                    "missing required field",
                )
                .with_help(format!("add `{key} = \"...\"` to this table"))),
        }
    }

    pub(crate) fn bool(&mut self, key: &'static str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.get_ref() {
                DeValue::Boolean(b) => Ok(Some(*b)),
                other => Err(self
                    .error(
                        v.span(),
                        key,
                        format!("expected a boolean, found {}", type_name(other)),
                    )
                    .with_help("use `true` or `false`")),
            },
        }
    }

    pub(crate) fn integer(&mut self, key: &'static str) -> Result<Option<Sp<i64>>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.get_ref() {
                DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                    .map(|n| Some(Spanned::new(v.span(), n)))
                    .map_err(|_| self.error(v.span(), key, "integer out of range")),
                other => Err(self
                    .error(
                        v.span(),
                        key,
                        format!("expected an integer, found {}", type_name(other)),
                    )
                    .with_help("write a number without quotes")),
            },
        }
    }

    pub(crate) fn string_list(&mut self, key: &'static str) -> Result<Vec<Sp<String>>> {
        let Some(v) = self.get(key) else {
            return Ok(Vec::new());
        };
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self
                .error(
                    v.span(),
                    key,
                    format!(
                        "expected an array of strings, found {}",
                        type_name(v.get_ref())
                    ),
                )
                .with_help(format!("write it as `{key} = [\"...\"]`")));
        };
        items.iter().map(|item| self.as_string(key, item)).collect()
    }

    /// A table of string values (e.g. `environment`).
    pub(crate) fn string_map(
        &mut self,
        key: &'static str,
    ) -> Result<Vec<(Sp<String>, Sp<String>)>> {
        let Some(v) = self.get(key) else {
            return Ok(Vec::new());
        };
        let t = TableReader::from_value(self.src, self.field_path(key), v)?;
        let mut out = Vec::new();
        for (k, val) in t.table.iter() {
            let s = t.as_string(k.get_ref(), val)?;
            out.push((Spanned::new(k.span(), k.get_ref().to_string()), s));
        }
        Ok(out)
    }

    pub(crate) fn table(&mut self, key: &'static str) -> Result<Option<TableReader<'a, 'i>>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => TableReader::from_value(self.src, self.field_path(key), v).map(Some),
        }
    }

    /// Entries of this table, in file order.
    pub(crate) fn entries(
        &self,
    ) -> impl Iterator<
        Item = (
            &'a Spanned<toml::de::DeString<'i>>,
            &'a Spanned<DeValue<'i>>,
        ),
    > {
        self.table.iter()
    }

    /// Rejects any field that was not read.
    pub(crate) fn finish(self) -> Result<()> {
        for (key, _) in self.table.iter() {
            let name = key.get_ref().as_ref();
            if !self.known.contains(&name) {
                let mut valid = self.known.clone();
                valid.sort_unstable();
                valid.dedup();
                let mut help = format!("valid fields here: {}", valid.join(", "));
                if let Some(close) = did_you_mean(name, valid.iter().copied()) {
                    help = format!("did you mean `{close}`? {help}");
                }
                return Err(self
                    .src
                    .error(Some(key.span()), self.field_path(name), "unknown field")
                    .with_help(help));
            }
        }
        Ok(())
    }
}
