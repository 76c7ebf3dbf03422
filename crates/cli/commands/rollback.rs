//! `flowpack rollback --env E [--to ID] [--dry-run]`

use flowpack_action::rollback::{self, RollbackOptions, RollbackReport};

use std::path::PathBuf;

use crate::flags::{EnvArgs, HistoryArgs, WaitArgs};
use crate::outcome::{Failure, Outcome, Verdict};
use crate::output::{Format, print_json};

/// Undo the newest push of an environment not yet undone (or the one given with --to).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  flowpack rollback --env production --dry-run\n  \
flowpack rollback --env production --to 20261129T120000Z-3fa9c1\n\n\
Deletes the flows the push created, deletes the new flows of replaces and gives the old ones \
back their name and state (a replace done with --prune-replaced is re-imported from the \
recorded export), reverts state changes. Safe to run again after a failure half-way.\n\
Exit codes: 0 undone, 1 nothing to undo or a step failed, 2 could not run.",
    disable_version_flag = true
)]
pub struct Args {
    #[command(flatten)]
    env: EnvArgs,
    #[command(flatten)]
    history: HistoryArgs,
    /// The record to undo (an id from `flowpack history`).
    #[arg(long, value_name = "ID")]
    to: Option<String>,
    /// Print the steps, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// The overlay supplying the secret values of flows to re-import (a replace done with
    /// --prune-replaced; records keep no secrets). Default: the environment's `overlay`.
    #[arg(long, value_name = "FILE")]
    overlay: Option<PathBuf>,
    #[command(flatten)]
    wait: WaitArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    let env = args.env.resolve()?;
    let overlay = crate::flags::overlay(args.overlay.as_deref(), true, &env)?.overlay;
    let _lock = if args.dry_run {
        None
    } else {
        Some(
            args.wait
                .lock(&env, flowpack_action::lock::Mode::Exclusive, "rollback")?,
        )
    };
    // A history in object storage: its lock in the bucket too (not for a dry run).
    let history = args.history.open(
        &args.env,
        &env,
        "rollback",
        (!args.dry_run).then_some(&args.wait),
    )?;
    let target = history.target.clone();
    let conn = args.env.connect(&env)?;
    let mut opts = RollbackOptions::new(conn.platform.clone(), target, crate::clock::now_rfc3339());
    opts.to = args.to;
    opts.dry_run = args.dry_run;
    opts.overlay = overlay;
    let report =
        rollback::run(&opts).map_err(Failure::during(&format!("rollback of {}", env.name)))?;
    match args.format {
        Format::Json => print_json(&report)?,
        _ => print_human(&report, &env.name),
    }
    Ok(Verdict::failed_if(report.failed()))
}

fn print_human(report: &RollbackReport, env: &str) {
    for id in &report.skipped {
        say!("skipped   {id} (it wrote nothing)");
    }
    say!(
        "{} {}",
        if report.dry_run {
            "would undo"
        } else {
            "undoing"
        },
        report.undone
    );
    if report.wrote_nothing {
        say!("record {} wrote nothing: nothing to undo", report.undone);
        return;
    }
    print_steps(report);
    if report.dry_run {
        say!(
            "dry run: nothing was changed in {env} (would undo {})",
            report.undone
        );
    } else if report.failed() {
        esay!(
            "flowpack: rollback of {} in {env} stopped at a failed step; run it again to finish",
            report.undone
        );
    } else {
        say!("undid {} in {env}", report.undone);
    }
}

/// The warnings and steps of an undo (a rollback's, or a recovery's).
pub(crate) fn print_steps(report: &RollbackReport) {
    for w in &report.warnings {
        esay!("warning: {w}");
    }
    for s in &report.steps {
        let word = match (&s.error, s.done, report.dry_run) {
            (Some(_), _, _) => "failed",
            (None, true, _) => "done",
            (None, false, true) => "would",
            (None, false, false) => "not done",
        };
        match &s.error {
            Some(e) => say!("{word:<9} {}: {e}", s.description),
            None => say!("{word:<9} {}", s.description),
        }
    }
    if report.steps.is_empty() {
        say!("record {} holds nothing to undo", report.undone);
    }
}
