//! The terminal policy of every command, in one place: whether to prompt,
//! whether to colour, and how a status line looks.
//!
//! Prompts appear only when both stdin and stderr are terminals; colour only
//! when the stream is a terminal and `NO_COLOR` is unset (or empty), as the
//! convention says. Piped output is plain lines a script can read.

use std::io::IsTerminal as _;

/// Sets `console`'s colour switches once, from `NO_COLOR` and the streams.
pub(crate) fn init() {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    console::set_colors_enabled(!no_color && std::io::stdout().is_terminal());
    console::set_colors_enabled_stderr(!no_color && std::io::stderr().is_terminal());
}

/// A person is there to answer questions.
pub(crate) fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// stderr shows progress (spinners, bars) rather than plain lines.
pub(crate) fn progress_on_stderr() -> bool {
    std::io::stderr().is_terminal()
}

/// The prompt theme: coloured where colour is on.
pub(crate) fn theme() -> Box<dyn dialoguer::theme::Theme> {
    if console::colors_enabled_stderr() {
        Box::new(dialoguer::theme::ColorfulTheme::default())
    } else {
        Box::new(dialoguer::theme::SimpleTheme)
    }
}

/// A success mark for status lines on stderr.
pub(crate) fn ok_mark() -> console::StyledObject<&'static str> {
    console::style("✓").green().for_stderr()
}

/// A failure mark for status lines on stderr.
pub(crate) fn fail_mark() -> console::StyledObject<&'static str> {
    console::style("✗").red().for_stderr()
}

/// `Error:` as `main` prints it.
pub(crate) fn error_label() -> console::StyledObject<&'static str> {
    console::style("Error:").red().bold().for_stderr()
}

/// `warning:` for non-fatal findings.
pub(crate) fn warning_label() -> console::StyledObject<&'static str> {
    console::style("warning:").yellow().bold().for_stderr()
}
