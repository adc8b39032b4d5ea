//! Spin templates: `gyre new`, `gyre add` and `gyre templates`.
//!
//! Templates are in Spin's own format (`metadata/spin-template.toml`, a
//! `content/` tree rendered with Liquid and Spin's filters, snippets for
//! `add`), so a user's existing template repositories work unchanged. The
//! flow is `load → validate parameters → render in memory → write through a
//! staging directory`, and only the caller (the CLI) talks to the terminal:
//! it asks [`Template::parameters`] what to prompt for and hands the values
//! to [`Template::generate`].

mod filters;
mod generate;
mod store;
mod template;

pub use generate::{Generate, Generated};
pub use store::{InstallReport, TemplateStore, built_in};
pub use template::{Mode, Origin, Parameter, Template};

/// "Name <email>" from git's `user.name` and `user.email`, as Spin fills the
/// `authors` value; empty when git has neither.
pub fn git_authors() -> String {
    let get = |key: &str| {
        std::process::Command::new("git")
            .args(["config", "--get", key])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let name = get("user.name").or_else(|| std::env::var("USER").ok());
    match (name, get("user.email")) {
        (Some(name), Some(email)) => format!("{name} <{email}>"),
        (Some(name), None) => name,
        (None, Some(email)) => format!("<{email}>"),
        (None, None) => String::new(),
    }
}
