//! `flowpack export (--flow ID... | --all [--filter name=...]) --env E -o OUT.flowpack`

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use flowpack_core::archive::SourceInfo;

use super::keygen::load_signing_key;
use crate::ops::env::{EnvArgs, connect, resolve};
use crate::ops::export::{ExportOptions, Selection, default_version, export};

/// Export flows of an environment into one archive (a backup).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  flowpack export --all --env production -o prod.flowpack --sign keys/backup.key\n  \
flowpack export --flow 12 --flow 40 --env local -o two.flowpack\n\n\
The package name defaults to the environment's name and the version to \
0.0.0+<YYYYMMDDhhmmss> (SOURCE_DATE_EPOCH when set, else now). Secret values are stripped.\n\
Exit codes: 0 written, 2 could not run (nothing written).",
    disable_version_flag = true
)]
pub struct Args {
    /// A flow id (repeatable).
    #[arg(
        long = "flow",
        value_name = "ID",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    flows: Vec<u64>,
    /// Every flow of the environment.
    #[arg(long)]
    all: bool,
    /// Only flows whose name matches (`name=TEXT`, the platform's filter[name]).
    #[arg(long, value_name = "name=TEXT", requires = "all")]
    filter: Option<String>,
    #[command(flatten)]
    env: EnvArgs,
    /// The archive to write.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: PathBuf,
    /// Sign with this minisign secret key (repeatable).
    #[arg(long = "sign", value_name = "KEY")]
    sign: Vec<PathBuf>,
    /// Export requests in flight.
    #[arg(long, default_value_t = 4, value_name = "N")]
    jobs: usize,
    /// No progress bar, no summary.
    #[arg(long, short)]
    quiet: bool,
    /// Package name (default: the environment's name).
    #[arg(long)]
    name: Option<String>,
    /// Package version (default: 0.0.0+<timestamp>).
    #[arg(long)]
    version: Option<String>,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir()?;
    let env = resolve(&args.env, &cwd, &|k| std::env::var(k).ok())?;
    let created_at = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => {
            let secs: i64 = s
                .trim()
                .parse()
                .with_context(|| format!("SOURCE_DATE_EPOCH {s:?} is not a number"))?;
            time::OffsetDateTime::from_unix_timestamp(secs)?
        }
        Err(_) => time::OffsetDateTime::now_utc(),
    }
    .replace_nanosecond(0)?;
    let version = match &args.version {
        Some(v) => semver::Version::parse(v)
            .with_context(|| format!("--version {v:?} is not a semantic version"))?,
        None => default_version(created_at),
    };
    let selection = if args.all {
        let name = match &args.filter {
            None => None,
            Some(f) => match f.split_once('=') {
                Some(("name", v)) => Some(v.to_string()),
                _ => bail!("--filter {f:?}: expected name=TEXT"),
            },
        };
        Selection::All { name }
    } else {
        Selection::Ids(args.flows.clone())
    };
    let signers = args
        .sign
        .iter()
        .map(|p| load_signing_key(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let conn = connect(&env, args.env.verbose)?;
    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar
    });
    let progress = bar.clone().map(|bar| {
        Arc::new(move |done: u64, total: u64| {
            bar.set_length(total);
            bar.set_position(done);
        }) as crate::ops::export::ProgressFn
    });
    let report = export(&ExportOptions {
        platform: conn.platform.clone(),
        source: SourceInfo {
            environment: env.name.clone(),
            url: env.location(),
            company: String::new(),
        },
        selection,
        output: args.output.clone(),
        name: args.name.clone().unwrap_or_else(|| env.name.clone()),
        version,
        created_at,
        signers,
        jobs: args.jobs,
        progress,
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if !args.quiet {
        let p = &report.pack;
        println!(
            "{}: {} flow(s) from {}, manifest sha256 {}, {} secret value(s) stripped, signed by [{}], {} retr{}",
            p.path.display(),
            p.manifest.flows.len(),
            env.name,
            p.manifest_sha256,
            p.secrets_stripped,
            p.signatures.join(", "),
            conn.retries(),
            if conn.retries() == 1 { "y" } else { "ies" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
