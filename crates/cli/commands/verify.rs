//! `flowpack verify ARCHIVE|oci://… [--trusted-key PUB]... [--threshold N] [--format json] [--plain-http]`

use std::path::PathBuf;

use flowpack_action::input::is_reference;
use flowpack_action::publish::Credentials;
use flowpack_action::verify::{self, VerifyOptions};
use flowpack_core::archive::{CheckStatus, VerifyReport};

use flowpack_action::error::signature_remedy;

use crate::commands::inspect::signature_status;
use crate::flags::{RegistryTimeoutArgs, TrustArgs};
use crate::outcome::{Outcome, Verdict, hint};
use crate::output::{Format, print_json};

/// Verify an archive: safe structure, manifest, signatures against the trusted keys, every
/// entry's SHA-256, no unlisted entry.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  flowpack verify app.flowpack --trusted-key keys/release.pub --threshold 1\n  \
flowpack verify oci://registry.example.com/team/app:1.2.0 --trusted-key keys/release.pub\n\n\
An oci:// reference is pulled to a temporary file first; the report names it pinned to the \
digest its tag resolved to (oci://HOST/REPO:TAG@sha256:…). Registry credentials come from \
FLOWPACK_REGISTRY_USER and FLOWPACK_REGISTRY_PASSWORD.\n\
Without --trusted-key, signatures are not checked (the report says so); --threshold 0 is \
refused.\n\
Exit codes: 0 verified, 1 a check failed (or the file is not an archive), 2 could not run \
(unreadable file, bad key, bad threshold)."
)]
pub struct Args {
    /// The archive: a file, oci://HOST[:PORT]/REPO(:TAG|@sha256:HEX), or s3://BUCKET/KEY.
    #[arg(value_name = "ARCHIVE")]
    archive: PathBuf,
    /// Speak plain HTTP to the registry of an oci:// archive (local test registries only).
    #[arg(long)]
    plain_http: bool,
    #[command(flatten)]
    timeout: RegistryTimeoutArgs,
    #[command(flatten)]
    trust: TrustArgs,
    /// Output format (human or json).
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    let policy = args.trust.policy()?;
    let mut opts = VerifyOptions::new(args.archive, policy);
    opts.plain_http = args.plain_http;
    opts.deadline = args.timeout.deadline();
    if is_reference(&opts.archive.to_string_lossy()) {
        opts.credentials = Credentials::from_env()?;
    }
    let report = verify::run(&opts)?;
    match args.format {
        Format::Json => print_json(&report)?,
        _ => {
            print_human(&report);
            if let Some(hint) = signature_remedy(&report).as_ref().and_then(hint) {
                esay!("hint: {hint}");
            }
        }
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
        say!("{mark} {:<10} {}", c.name, c.detail);
        if c.name == "signatures" {
            for sig in &report.signatures {
                say!("       {}  {}", sig.key_id, signature_status(sig));
            }
        }
    }
    match report.first_failure() {
        None => say!("{}: verified", report.archive),
        Some(f) => say!("{}: {} check failed", report.archive, f.name),
    }
}
