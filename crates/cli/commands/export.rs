//! `flowpack export (--flow ID... | --all [--filter name=...]) --env E -o OUT.flowpack`

use std::path::PathBuf;
use std::sync::Arc;

use flowpack_action::export::{self, ExportOptions, ProgressFn, Selection, default_version};
use flowpack_core::archive::SourceInfo;

use crate::flags::{EnvArgs, WaitArgs};
use crate::keys::load_signing_keys;
use crate::outcome::{Failure, Outcome, Verdict};
use crate::output::{count, signed_by};

/// Export flows of an environment into one archive (a backup).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  flowpack export --all --env production -o prod.flowpack --sign keys/backup.key\n  \
flowpack export --flow 12 --flow 40 --env local -o two.flowpack\n\n\
The package name defaults to the environment's name and the version to \
0.0.0+<YYYYMMDDhhmmss> (SOURCE_DATE_EPOCH when set, else now). Secret values are stripped.\n\
A --filter that matches no flow is refused (exit 1, nothing written).\n\
--all leaves out the flows a replacing push renamed aside (`NAME (replaced TIME)`) unless \
--include-replaced. An existing OUT is refused unless --force, which replaces it atomically \
(a symlink is replaced, not written through). The archive is checked before it is put in \
place.\n\
Exit codes: 0 written, 1 nothing matched the filter or the archive written failed its check \
(nothing written), 2 could not run (OUT exists, …; nothing written).",
    disable_version_flag = true
)]
// Which flows: --flow or --all, exactly one (a usage error names both).
#[command(group(clap::ArgGroup::new("which").required(true).args(["flows", "all"])))]
pub struct Args {
    /// A flow id (repeatable).
    #[arg(long = "flow", value_name = "ID")]
    flows: Vec<u64>,
    /// Every flow of the environment.
    #[arg(long)]
    all: bool,
    /// Only flows whose name matches (`name=TEXT`, the platform's filter[name]).
    #[arg(long, value_name = "name=TEXT", requires = "all")]
    filter: Option<String>,
    #[command(flatten)]
    env: EnvArgs,
    /// The archive to write: a file, or s3://BUCKET/KEY (written and verified locally, then
    /// uploaded).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: PathBuf,
    #[command(flatten)]
    overwrite: crate::flags::ForceArgs,
    /// With --all, keep the flows a replacing push renamed aside ("NAME (replaced TIME)").
    #[arg(long, requires = "all")]
    include_replaced: bool,
    /// Sign with this minisign secret key (repeatable).
    #[arg(long = "sign", value_name = "KEY")]
    sign: Vec<PathBuf>,
    #[command(flatten)]
    jobs: crate::flags::JobsArgs,
    /// No progress bar, no summary.
    #[arg(long, short)]
    quiet: bool,
    /// Package name (default: the environment's name).
    #[arg(long)]
    name: Option<String>,
    /// Package version (default: 0.0.0+<timestamp>).
    #[arg(long)]
    version: Option<String>,
    #[command(flatten)]
    wait: WaitArgs,
}

/// The export progress bar on stderr when it is a terminal and not `quiet`, and the callback
/// that drives it (shared by `export` and `backup`); finish the bar with `finish_and_clear`.
pub fn progress_bar(quiet: bool) -> (Option<indicatif::ProgressBar>, Option<ProgressFn>) {
    let bar = if quiet {
        None
    } else {
        crate::output::progress_bar("exporting")
    };
    let progress = bar.clone().map(|bar| {
        Arc::new(move |done: u64, total: u64| {
            bar.set_length(total);
            bar.set_position(done);
        }) as ProgressFn
    });
    (bar, progress)
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    let env = args.env.resolve()?;
    let created_at = crate::clock::created_at()?;
    let version = match &args.version {
        Some(v) => semver::Version::parse(v)
            .map_err(|_| Failure::usage(format!("--version {v:?} is not a semantic version")))?,
        None => default_version(created_at),
    };
    let selection = if args.all {
        let name = match &args.filter {
            None => None,
            Some(f) => match f.split_once('=') {
                Some(("name", v)) => Some(v.to_string()),
                _ => {
                    return Err(Failure::usage(format!(
                        "--filter {f:?}: expected name=TEXT"
                    )));
                }
            },
        };
        Selection::All { name }
    } else {
        Selection::Ids(args.flows.clone())
    };
    let signers = load_signing_keys(&args.sign)?;
    // Waits for a running push (shared lock) rather than exporting half of it.
    let _lock = args
        .wait
        .lock(&env, flowpack_action::lock::Mode::Shared, "export")?;
    let conn = args.env.connect(&env)?;
    let (bar, progress) = progress_bar(args.quiet);
    let source = SourceInfo {
        environment: env.name.clone(),
        url: env.location(),
        company: String::new(),
    };
    let mut opts = ExportOptions::new(
        conn.platform.clone(),
        source,
        selection,
        args.output.clone(),
        args.name.clone().unwrap_or_else(|| env.name.clone()),
        version,
        created_at,
    );
    opts.signers = signers;
    opts.jobs = args.jobs.get();
    opts.progress = progress;
    opts.force = args.overwrite.force;
    opts.include_replaced = args.include_replaced;
    let result = export::run(&opts);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = result?;
    if !args.quiet {
        let p = &report.pack;
        let retries = conn.retries();
        say!(
            "{}: {} from {}, manifest sha256 {}, {} stripped, {}, {} retr{}",
            p.path.display(),
            count(p.manifest.flows.len(), "flow", "flows"),
            env.name,
            p.manifest_sha256,
            count(p.secrets_stripped, "secret value", "secret values"),
            signed_by(&p.signatures),
            retries,
            if retries == 1 { "y" } else { "ies" }
        );
    }
    Ok(Verdict::Success)
}
