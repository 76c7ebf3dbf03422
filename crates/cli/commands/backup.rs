//! `flowpack backup --env E --dir DIR [--keep N] [--sign KEY] [--format json] [--quiet]`

use std::path::PathBuf;

use flowpack_action::backup::{self, BackupOptions};
use flowpack_action::trust::{self, TrustOptions};
use flowpack_core::archive::SourceInfo;

use crate::commands::export::progress_bar;
use crate::flags::EnvArgs;
use crate::keys::load_signing_keys;
use crate::outcome::{Failure, Outcome, Verdict};
use crate::output::{Format, count, print_json, signed_by};

/// Back up every flow of an environment into a directory, keeping the newest N backups.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  flowpack backup --env production --dir /var/backups/flowpack --keep 14\n  \
flowpack backup --env production --dir backups --sign keys/backup.key --format json\n\n\
Writes DIR/<env>-<yyyymmddThhmmssZ>.flowpack (UTC; SOURCE_DATE_EPOCH when set, else now; -2, -3, \
… when the name is taken) with every flow, its settings, webhooks and callbacks, then verifies \
it (with the environment's trusted_keys when it has any, else integrity). Only then, with \
--keep N, it deletes the oldest of the environment's own backups beyond N: files named exactly \
like that whose manifest names the environment. It never deletes another file, and nothing at \
all when the verification failed. Without --keep every backup is kept.\n\
Exit codes: 0 written and verified, 1 the backup did not verify (nothing deleted), 2 could not \
run (usage such as --keep 0, configuration, network, files).",
    disable_version_flag = true
)]
pub struct Args {
    #[command(flatten)]
    env: EnvArgs,
    /// The directory of the backups (created when missing).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Keep the newest N backups of the environment, this one included (at least 1).
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    /// Sign with this minisign secret key (repeatable).
    #[arg(long = "sign", value_name = "KEY")]
    sign: Vec<PathBuf>,
    /// Export requests in flight.
    #[arg(long, default_value_t = 4, value_name = "N")]
    jobs: usize,
    /// Output format (human or json).
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// No progress bar, no summary.
    #[arg(long, short)]
    quiet: bool,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    if args.keep == Some(0) {
        return Err(Failure::usage(
            "--keep 0 would delete every backup, the new one too; give at least 1 (or no --keep)",
        ));
    }
    let env = args.env.resolve()?;
    let created_at = crate::clock::created_at()?;
    let policy = trust::policy(&TrustOptions::new(env.trusted_keys.clone(), env.threshold))?;
    let signers = load_signing_keys(&args.sign)?;
    let conn = args.env.connect(&env)?;
    let (bar, progress) = progress_bar(args.quiet || args.format == Format::Json);
    let source = SourceInfo {
        environment: env.name.clone(),
        url: env.location(),
        company: String::new(),
    };
    let mut opts = BackupOptions::new(conn.platform.clone(), source, args.dir.clone(), created_at);
    opts.keep = args.keep;
    opts.signers = signers;
    opts.policy = policy;
    opts.jobs = args.jobs;
    opts.progress = progress;
    let result = backup::run(&opts);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = result?;
    match args.format {
        Format::Json => print_json(&report)?,
        _ if args.quiet => {}
        _ => println!(
            "{}: {} from {}, manifest sha256 {}, {}, verified ({}); {} kept, {} deleted",
            report.path.display(),
            count(report.flows, "flow", "flows"),
            report.environment,
            report.manifest_sha256,
            signed_by(&report.signatures),
            if report.signatures_checked {
                "signatures and integrity"
            } else {
                "integrity"
            },
            if args.keep.is_some() {
                count(report.kept.len(), "backup", "backups")
            } else {
                "all backups".to_string()
            },
            count(report.deleted.len(), "old backup", "old backups"),
        ),
    }
    Ok(Verdict::Success)
}
