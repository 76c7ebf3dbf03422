//! `flowpack verify ARCHIVE [--trusted-key PUB]... [--threshold N] [--format json]`

use std::path::PathBuf;
use std::process::ExitCode;

use flowpack_core::archive::{CheckStatus, Limits, TrustPolicy, VerifyReport, verify_archive};
use flowpack_core::sign::TrustedKey;

use crate::output::{Format, print_json};

/// Verify an archive: safe structure, manifest, signatures against the trusted keys, every
/// entry's SHA-256, no unlisted entry.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  flowpack verify app.flowpack --trusted-key keys/release.pub --threshold 1\n\n\
Without --trusted-key, signatures are not checked (the report says so).\n\
Exit codes: 0 verified, 1 a check failed, 2 could not run (unreadable file, bad key)."
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

/// The trust policy flags shared by verify and unpack.
#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// A trusted minisign public key (repeatable).
    #[arg(long = "trusted-key", value_name = "PUB")]
    trusted_keys: Vec<PathBuf>,
    /// How many distinct trusted keys must have signed (default 1 when keys are given).
    #[arg(long, value_name = "N")]
    threshold: Option<usize>,
}

impl TrustArgs {
    /// Loads the keys into a policy.
    pub fn policy(&self) -> anyhow::Result<TrustPolicy> {
        let keys = self
            .trusted_keys
            .iter()
            .map(|p| TrustedKey::load(p))
            .collect::<Result<Vec<_>, _>>()?;
        let threshold = self
            .threshold
            .unwrap_or(if keys.is_empty() { 0 } else { 1 });
        anyhow::ensure!(
            threshold <= keys.len() || keys.is_empty(),
            "--threshold {threshold} needs at least {threshold} --trusted-key"
        );
        Ok(TrustPolicy { keys, threshold })
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let policy = args.trust.policy()?;
    let report = verify_archive(&args.archive, &Limits::default(), &policy)?;
    match args.format {
        Format::Json => print_json(&report)?,
        Format::Human => print_human(&report),
        Format::Sarif => anyhow::bail!("--format sarif is only for validate"),
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
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
