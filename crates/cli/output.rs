//! Rendering helpers shared by the commands.

use std::io::Write;

use clap::ValueEnum;

use crate::outcome::Failure;

/// The output formats of a report (every command but validate, which adds SARIF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Text for people.
    #[default]
    Human,
    /// One JSON document on stdout.
    Json,
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .map_err(|e| Failure::usage(format!("cannot write to stdout: {e}")))
}

/// `n` and the noun in the right number: `count(1, "flow", "flows")` is `1 flow`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The signers of a report: `unsigned`, or `signed by A, B`.
pub fn signed_by(signatures: &[String]) -> String {
    if signatures.is_empty() {
        "unsigned".to_string()
    } else {
        format!("signed by {}", signatures.join(", "))
    }
}

/// A progress bar on stderr labelled `LABEL N/M`, when stderr is a terminal (`None` otherwise).
pub fn progress_bar(label: &str) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!("{{bar:30}} {label} {{pos}}/{{len}}"))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

/// Text that came from an input (a flow, package, system or variable name, a detail or message
/// naming one) as it may reach a terminal: every control character — ESC, CR, LF, BEL, the C1
/// controls, DEL — and the bidirectional overrides become `\u{1b}`-style escapes, so a name can
/// neither move the cursor, retitle the window, nor start a line of its own (a flow named
/// `x\nok   signatures 1 trusted` prints as one line). Every human renderer prints through it
/// (`say!`, `esay!`); JSON output escapes by itself.
pub fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    escaped(text, false)
}

/// [`shown`] for an error message, whose own line breaks are kept (a refused migration lists
/// what it would lose one per line): every other control character is escaped.
pub fn shown_lines(text: &str) -> std::borrow::Cow<'_, str> {
    escaped(text, true)
}

fn escaped(text: &str, keep_lf: bool) -> std::borrow::Cow<'_, str> {
    let hostile = |c: char| {
        (c.is_control() && !(keep_lf && c == '\n'))
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(hostile) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hostile(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `println!` of one line whose text passes through [`shown`].
macro_rules! say {
    () => {
        println!()
    };
    ($($arg:tt)*) => {
        println!("{}", $crate::output::shown(&format!($($arg)*)))
    };
}

/// `eprintln!` of one line whose text passes through [`shown`].
macro_rules! esay {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::output::shown(&format!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn controls_are_escaped_and_plain_text_is_borrowed() {
        assert_eq!(shown("Orders – Ä 1"), "Orders – Ä 1");
        assert!(matches!(shown("plain"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(
            shown("a\x1b]0;x\x07b\r\nc\td\u{7f}\u{9b}\u{202e}"),
            "a\\u{1b}]0;x\\u{7}b\\u{d}\\u{a}c\\u{9}d\\u{7f}\\u{9b}\\u{202e}"
        );
        assert_eq!(super::shown_lines("a\r\nb\x1b"), "a\\u{d}\nb\\u{1b}");
    }
}
