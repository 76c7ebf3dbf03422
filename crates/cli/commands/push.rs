//! `flowpack push ARCHIVE --env E [--overlay FILE] [--dry-run] [--on-conflict ...]`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use flowpack_core::archive::TrustPolicy;
use flowpack_core::overlay::Overlay;
use flowpack_core::sign::TrustedKey;

use crate::ops::env::{EnvArgs, connect, resolve};
use crate::ops::push::{OnConflict, Outcome, PushOptions, PushReport, Refused, push};
use crate::output::{Format, print_json};

/// Push an archive's flows into an environment: verify, overlay, plan, import.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  flowpack push release.flowpack --env production --dry-run\n  \
flowpack push release.flowpack --env production --overlay overlays/production.toml --deploy --enable\n\n\
The plan says per flow: create (no flow of that name), unchanged (same content: nothing is \
written), conflict (same name, different content; refused unless --on-conflict skip|duplicate).\n\
Exit codes: 0 pushed, 1 refused (verification, inputs, conflicts) or a flow failed, 2 could \
not run (configuration, authentication, the platform unreachable).",
    disable_version_flag = true
)]
pub struct Args {
    /// The archive.
    archive: PathBuf,
    #[command(flatten)]
    env: EnvArgs,
    /// The overlay (default: the environment's `overlay`).
    #[arg(long, value_name = "FILE")]
    overlay: Option<PathBuf>,
    /// Print the plan, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// What a conflict does.
    #[arg(long, value_enum, default_value_t = OnConflict::Fail)]
    on_conflict: OnConflict,
    /// Deploy the imported version matching the archive's deployed one (else the draft).
    #[arg(long)]
    deploy: bool,
    /// Enable the imported flows.
    #[arg(long)]
    enable: bool,
    /// Import as marketplace packages.
    #[arg(long)]
    as_marketplace: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// A trusted minisign public key (repeatable; adds to the environment's trusted_keys).
    #[arg(long = "trusted-key", value_name = "PUB")]
    trusted_keys: Vec<PathBuf>,
    /// How many distinct trusted keys must have signed (default: the environment's, else 1
    /// when keys are given).
    #[arg(long, value_name = "N")]
    threshold: Option<usize>,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.format == Format::Sarif {
        anyhow::bail!("--format sarif is only for validate");
    }
    let cwd = std::env::current_dir()?;
    let env = resolve(&args.env, &cwd, &|k| std::env::var(k).ok())?;
    let mut key_paths = env.trusted_keys.clone();
    key_paths.extend(args.trusted_keys.iter().cloned());
    let keys = key_paths
        .iter()
        .map(|p| TrustedKey::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let threshold = args
        .threshold
        .or(env.threshold)
        .unwrap_or(if keys.is_empty() { 0 } else { 1 });
    anyhow::ensure!(
        threshold <= keys.len(),
        "a threshold of {threshold} needs at least {threshold} trusted key(s), {} given",
        keys.len()
    );
    // The overlay is read and resolved before any request is sent.
    let overlay = match args.overlay.as_ref().or(env.overlay.as_ref()) {
        Some(path) => Some(Overlay::read(path)?.resolve(&|k| std::env::var(k).ok())?),
        None => None,
    };
    let conn = connect(&env, args.env.verbose)?;
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)?
        .format(&time::format_description::well_known::Rfc3339)?;
    let result = push(&PushOptions {
        archive: args.archive.clone(),
        platform: conn.platform.clone(),
        policy: TrustPolicy { keys, threshold },
        overlay,
        dry_run: args.dry_run,
        on_conflict: args.on_conflict,
        deploy: args.deploy,
        enable: args.enable,
        as_marketplace: args.as_marketplace,
        export_format: env.export_format,
        now,
    });
    let report = match result {
        Ok(r) => r,
        Err(e) => match e.downcast::<Refused>() {
            Ok(refused) => {
                eprintln!("flowpack: {refused}");
                return Ok(ExitCode::from(1));
            }
            Err(e) => return Err(e).with_context(|| format!("push to {}", env.name)),
        },
    };
    match args.format {
        Format::Json => print_json(&report)?,
        _ => print_human(&report, &env.name),
    }
    Ok(if report.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_human(report: &PushReport, env: &str) {
    for o in &report.overlay {
        for change in &o.changes {
            println!("overlay   {}: {change}", o.flow);
        }
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    for f in &report.flows {
        let word = match f.outcome {
            Outcome::Planned => f.plan.as_str(),
            Outcome::Created => "created",
            Outcome::Duplicated => "duplicated",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        };
        let mut line = format!("{word:<10} {}", f.name);
        if let Some(id) = f.id.or(f.existing_id) {
            line.push_str(&format!(" (id {id})"));
        }
        if let Some(v) = f.deployed_version {
            line.push_str(&format!(", deployed version {v}"));
        }
        if f.enabled {
            line.push_str(", enabled");
        }
        if let Some(e) = &f.error {
            line.push_str(&format!(": {e}"));
        }
        println!("{line}");
    }
    if let Some(why) = &report.refused {
        eprintln!("flowpack: push to {env} refused: {why}; nothing was written");
    } else if report.dry_run {
        println!("dry run: nothing was written to {env}");
    }
}
