//! `flowpack verify ARCHIVE [--trusted-key PUB]... [--threshold N] [--format json]`

use std::path::PathBuf;

use flowpack_action::verify::{self, VerifyOptions};
use flowpack_core::archive::{CheckStatus, VerifyReport};

use crate::flags::TrustArgs;
use crate::outcome::{Outcome, Verdict};
use crate::output::{Format, no_sarif, print_json};

/// Verify an archive: safe structure, manifest, signatures against the trusted keys, every
/// entry's SHA-256, no unlisted entry.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  flowpack verify app.flowpack --trusted-key keys/release.pub --threshold 1\n\n\
Without --trusted-key, signatures are not checked (the report says so); --threshold 0 is \
refused.\n\
Exit codes: 0 verified, 1 a check failed (or the file is not an archive), 2 could not run \
(unreadable file, bad key, bad threshold)."
)]
pub struct Args {
    /// The archive.
    #[arg(value_name = "ARCHIVE")]
    archive: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
    /// Output format (human or json).
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    no_sarif(args.format)?;
    let policy = args.trust.policy()?;
    let report = verify::run(&VerifyOptions::new(args.archive, policy))?;
    match args.format {
        Format::Json => print_json(&report)?,
        _ => print_human(&report),
    }
    Ok(if report.ok {
        Verdict::Success
    } else {
        Verdict::Failed
    })
}

/// Prints a report for people.
pub fn print_human(report: &VerifyReport) {
    for c in &report.checks {
        let mark = match c.status {
            CheckStatus::Passed => "ok  ",
            CheckStatus::Failed => "FAIL",
            CheckStatus::Skipped => "skip",
        };
        println!("{mark} {:<10} {}", c.name, c.detail);
    }
    match report.first_failure() {
        None => println!("{}: verified", report.archive),
        Some(f) => println!("{}: {} check failed", report.archive, f.name),
    }
}
