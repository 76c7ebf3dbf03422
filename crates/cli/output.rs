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
