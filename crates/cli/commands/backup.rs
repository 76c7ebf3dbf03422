//! `flowpack backup --env E --dir DIR [--keep N] [--keep-daily N] [--keep-weekly N]
//! [--keep-monthly N] [--include-replaced] [--sign KEY] [--format json] [--quiet]`

use std::path::PathBuf;

use flowpack_action::backup::{self, BackupOptions, Retention};
use flowpack_action::trust;
use flowpack_core::archive::SourceInfo;

use crate::commands::export::progress_bar;
use crate::flags::{EnvArgs, HistoryArgs, WaitArgs};
use crate::keys::load_signing_keys;
use crate::outcome::{Failure, Outcome, Verdict};
use crate::output::{Format, count, print_json, signed_by};

/// Back up every flow of an environment into a directory, keeping the newest N backups.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  flowpack backup --env production --dir /var/backups/flowpack --keep 14\n  \
flowpack backup --env production --dir backups --sign keys/backup.key --format json\n\n\
Writes DIR/<env>-<yyyymmddThhmmssZ>-<seq>.flowpack (UTC; SOURCE_DATE_EPOCH when set, else \
now; <seq> a 6-digit counter one above the highest of the environment's backups in DIR, also \
in the manifest) with every flow, its settings, webhooks and callbacks; flows a replacing push \
renamed aside (\"NAME (replaced TIME)\") are left out unless --include-replaced. The archive is \
verified (with the environment's trusted_keys when it has any, else integrity) before it gets \
its name, which is never taken from another file: a backup that does not verify leaves no \
file. Only then the retention rules delete the environment's own backups they do not keep \
(files named like that whose manifest names the environment), ordered by sequence, never by \
time or name (older backups without a sequence count as the oldest): --keep N keeps the N \
newest; --keep-daily/--keep-weekly/--keep-monthly N keep the newest backup of each of the last \
N UTC days/ISO weeks/months that have one; a backup kept by any rule stays, the new one always \
stays. It never deletes another file, and nothing at all when the verification failed. \
Without a rule every backup is kept. A backup waits (--wait, default 300 s) for a push or \
rollback of the environment to end, and refuses to run while an interrupted one is not \
recovered (flowpack recover).\n\
Exit codes: 0 written and verified, 1 the backup did not verify (nothing written, nothing \
deleted), 2 could not run (usage such as --keep 0, configuration, network, files).",
    disable_version_flag = true
)]
pub struct Args {
    #[command(flatten)]
    env: EnvArgs,
    /// The directory of the backups (created when missing), or s3://BUCKET/PREFIX (the AWS_*
    /// variables name the store and its credentials).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Keep the newest N backups of the environment, this one included (at least 1).
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    /// Keep the newest backup of each of the last N UTC days that have one.
    #[arg(long, value_name = "N")]
    keep_daily: Option<usize>,
    /// Keep the newest backup of each of the last N ISO weeks (UTC) that have one.
    #[arg(long, value_name = "N")]
    keep_weekly: Option<usize>,
    /// Keep the newest backup of each of the last N UTC months that have one.
    #[arg(long, value_name = "N")]
    keep_monthly: Option<usize>,
    /// Keep the flows a replacing push renamed aside ("NAME (replaced TIME)").
    #[arg(long)]
    include_replaced: bool,
    /// Sign with this minisign secret key (repeatable).
    #[arg(long = "sign", value_name = "KEY")]
    sign: Vec<PathBuf>,
    #[command(flatten)]
    jobs: crate::flags::JobsArgs,
    /// Output format (human or json).
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// No progress bar, no summary.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    history: HistoryArgs,
    #[command(flatten)]
    wait: WaitArgs,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    if args.keep == Some(0) {
        return Err(Failure::usage(
            "--keep 0 would delete every backup, the new one too; give at least 1 (or no --keep)",
        ));
    }
    for (flag, n) in [
        ("--keep-daily", args.keep_daily),
        ("--keep-weekly", args.keep_weekly),
        ("--keep-monthly", args.keep_monthly),
    ] {
        if n == Some(0) {
            return Err(Failure::usage(format!(
                "{flag} 0 keeps nothing; give at least 1 (or leave it out)"
            )));
        }
    }
    let env = args.env.resolve()?;
    let created_at = crate::clock::created_at()?;
    let policy = trust::for_environment(&env, &[], None)?;
    let signers = load_signing_keys(&args.sign)?;
    // A backup waits for a running push (shared lock) rather than capturing half of it, and
    // refuses to capture what an interrupted one left.
    let _lock = args
        .wait
        .lock(&env, flowpack_action::lock::Mode::Shared, "backup")?;
    let history = args.history.open(&args.env, &env, "backup", None)?;
    flowpack_action::history::refuse_pending(&history.target.dir, &env.name)?;
    let conn = args.env.connect(&env)?;
    let (bar, progress) = progress_bar(args.quiet || args.format == Format::Json);
    let source = SourceInfo {
        environment: env.name.clone(),
        url: env.location(),
        company: String::new(),
    };
    let mut opts = BackupOptions::new(conn.platform.clone(), source, args.dir.clone(), created_at);
    opts.keep = args.keep;
    let mut retention = Retention::default();
    retention.daily = args.keep_daily;
    retention.weekly = args.keep_weekly;
    retention.monthly = args.keep_monthly;
    opts.retention = retention;
    opts.include_replaced = args.include_replaced;
    opts.signers = signers;
    opts.policy = policy;
    opts.jobs = args.jobs.get();
    opts.progress = progress;
    let result = backup::run(&opts);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = result?;
    match args.format {
        Format::Json => print_json(&report)?,
        _ if args.quiet => {}
        _ => say!(
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
            if opts.keep.is_some() || opts.retention.is_set() {
                count(report.kept.len(), "backup", "backups")
            } else {
                "all backups".to_string()
            },
            count(report.deleted.len(), "old backup", "old backups"),
        ),
    }
    Ok(Verdict::Success)
}
