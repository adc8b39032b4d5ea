//! Identifier grammars and `{{ variable }}` templates, as Spin defines them.

/// Checks a kebab-case id (component ids): `-`-separated words, each starting
/// with an ASCII letter and all lowercase or all uppercase.
pub fn check_kebab_id(id: &str) -> Result<(), String> {
    check_words(id, '-', '_', "words must be separated with '-', not '_'")
}

/// A kebab-case component id made from any name (a file stem, a repository):
/// lowercase ASCII words, one `-` between them, each starting with a letter
/// (`Hello_World` → `hello-world`, `api-v2.1` → `api-v21`, `42` → `app42`).
pub fn kebab_id_from(name: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for word in name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let word = word.to_ascii_lowercase();
        match words.last_mut() {
            // A word must start with a letter: digits join the one before.
            Some(last) if word.starts_with(|c: char| c.is_ascii_digit()) => last.push_str(&word),
            None if word.starts_with(|c: char| c.is_ascii_digit()) => {
                words.push(format!("app{word}"))
            }
            _ => words.push(word),
        }
    }
    if words.is_empty() {
        return "app".to_string();
    }
    words.join("-")
}

/// Checks a snake_case id.
pub fn check_snake_id(id: &str) -> Result<(), String> {
    check_words(id, '_', '-', "words must be separated with '_', not '-'")
}

/// Checks a lower snake_case id (variable names).
pub fn check_lower_snake_id(id: &str) -> Result<(), String> {
    check_snake_id(id)?;
    if id.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("must be lowercase".into());
    }
    Ok(())
}

/// Checks a key-value store or database label: kebab-case or snake_case.
pub fn check_label(label: &str) -> Result<(), String> {
    if check_kebab_id(label).is_ok() || check_snake_id(label).is_ok() {
        Ok(())
    } else {
        Err("expected kebab-case or snake_case".into())
    }
}

fn check_words(id: &str, sep: char, wrong_sep: char, wrong_sep_msg: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.contains(wrong_sep) {
        return Err(wrong_sep_msg.into());
    }
    for word in id.split(sep) {
        let Some(first) = word.chars().next() else {
            return Err(format!(
                "must not have an empty word (two '{sep}' in a row, or one at either end)"
            ));
        };
        if !first.is_ascii_alphabetic() {
            return Err(format!(
                "each word must start with a letter ('{word}' does not)"
            ));
        }
        if let Some(bad) = word.chars().find(|c| !c.is_ascii_alphanumeric()) {
            return Err(format!(
                "'{bad}' is not allowed: use ASCII letters and digits"
            ));
        }
        let lower = word.chars().any(|c| c.is_ascii_lowercase());
        let upper = word.chars().any(|c| c.is_ascii_uppercase());
        if lower && upper {
            return Err(format!("'{word}' mixes lowercase and uppercase"));
        }
    }
    Ok(())
}

/// A piece of a `{{ variable }}` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    /// Literal text.
    Literal(String),
    /// `{{ name }}`.
    Variable(String),
}

/// Splits a template into literal text and variable references.
pub fn parse_template(template: &str) -> Result<Vec<TemplatePart>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(TemplatePart::Literal(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!("unmatched `{{{{` in template \"{template}\""));
        };
        let name = after[..end].trim();
        if name.is_empty() {
            return Err(format!("empty `{{{{ }}}}` in template \"{template}\""));
        }
        parts.push(TemplatePart::Variable(name.to_string()));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Literal(rest.to_string()));
    }
    Ok(parts)
}

/// The variable names a template refers to.
pub fn template_variables(template: &str) -> Result<Vec<String>, String> {
    Ok(parse_template(template)?
        .into_iter()
        .filter_map(|p| match p {
            TemplatePart::Variable(v) => Some(v),
            TemplatePart::Literal(_) => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_ids() {
        for ok in ["a", "hello", "hello-world", "HELLO-world", "a1-b2"] {
            assert_eq!(check_kebab_id(ok), Ok(()), "{ok}");
        }
        for (bad, msg) in [
            ("", "empty"),
            ("hello_world", "'-', not '_'"),
            ("1abc", "start with a letter"),
            ("a--b", "empty word"),
            ("Hello", "mixes"),
            ("a.b", "not allowed"),
        ] {
            let err = check_kebab_id(bad).expect_err(bad);
            assert!(err.contains(msg), "{bad}: {err}");
        }
    }

    #[test]
    fn templates() {
        assert_eq!(
            parse_template("https://{{ host }}:{{port}}/x"),
            Ok(vec![
                TemplatePart::Literal("https://".into()),
                TemplatePart::Variable("host".into()),
                TemplatePart::Literal(":".into()),
                TemplatePart::Variable("port".into()),
                TemplatePart::Literal("/x".into()),
            ])
        );
        assert!(parse_template("{{ open").is_err());
        assert_eq!(
            parse_template("plain"),
            Ok(vec![TemplatePart::Literal("plain".into())])
        );
    }

    #[test]
    fn kebab_ids_from_names() {
        for (name, id) in [
            ("hello", "hello"),
            ("Hello_World", "hello-world"),
            ("api-v2.1", "api-v21"),
            ("my-app-2", "my-app2"),
            ("42", "app42"),
            ("__", "app"),
        ] {
            assert_eq!(kebab_id_from(name), id, "{name}");
            assert_eq!(check_kebab_id(id), Ok(()), "{id}");
        }
    }
}
