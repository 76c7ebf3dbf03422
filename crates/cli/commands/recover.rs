//! `flowpack recover --env E [--forward ARCHIVE] [--overlay FILE]`

use std::path::PathBuf;

use flowpack_action::push::PushOptions;
use flowpack_action::recover::{self, RecoverOptions, RecoverReport};

use crate::flags::{EnvArgs, HistoryArgs, WaitArgs};
use crate::outcome::{Failure, Outcome, Verdict};
use crate::output::{Format, print_json};

/// Finish what an interrupted push or rollback left half-done: undo it (default) or complete it.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  flowpack recover --env production\n  \
flowpack recover --env production --forward release.flowpack --overlay overlays/production.toml\n\n\
A push or rollback that was killed leaves its history record `pending`, and push, rollback and \
backup refuse to run until it is recovered. recover reads the record's journal (every write's \
intent is on disk before the write is sent), finds the flows the run created even when their \
ids were never recorded (by the names it imported, against the ids those names had before), \
and undoes everything the run did, so the environment is as it was before it. With --forward \
ARCHIVE (the archive the record pushed) the flows the run finished are kept, the half-done ones \
undone, and the archive is pushed again with the same choices.\n\
Exit codes: 0 recovered, or nothing to recover; 1 a step failed (run it again) or --forward \
was given another archive; 2 could not run.",
    disable_version_flag = true
)]
pub struct Args {
    #[command(flatten)]
    env: EnvArgs,
    #[command(flatten)]
    history: HistoryArgs,
    /// Finish the push instead of undoing it: the archive it pushed.
    #[arg(long, value_name = "ARCHIVE")]
    forward: Option<PathBuf>,
    /// The overlay: the push's (with --forward), and the secret values of flows to re-import.
    /// Default: the environment's `overlay`.
    #[arg(long, value_name = "FILE")]
    overlay: Option<PathBuf>,
    /// Trust for the --forward archive.
    #[command(flatten)]
    trust: crate::flags::EnvTrustArgs,
    #[command(flatten)]
    wait: WaitArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    let env = args.env.resolve()?;
    // The forward push warns of overlay keys matching nothing (the interrupted push got past them).
    let chosen = crate::flags::overlay(args.overlay.as_deref(), true, &env)?;
    let overlay = chosen.overlay;
    let _lock = args
        .wait
        .lock(&env, flowpack_action::lock::Mode::Exclusive, "recover")?;
    let history = args
        .history
        .open(&args.env, &env, "recover", Some(&args.wait))?;
    let target = history.target.clone();
    let conn = args.env.connect(&env)?;
    let now = crate::clock::now_rfc3339();
    let mut opts = RecoverOptions::new(conn.platform.clone(), target, now.clone());
    opts.overlay = overlay.clone();
    if let Some(archive) = &args.forward {
        flowpack_action::input::expect_archive(archive)?;
        let mut push = PushOptions::new(archive.clone(), conn.platform.clone(), now);
        push.policy = args.trust.policy(&env)?;
        push.overlay = overlay;
        push.on_unmatched = chosen.on_unmatched;
        push.export_format = env.export_format;
        push.restore.target_url = Some(env.location());
        push.history = Some(history.another());
        opts.forward = Some(push);
    }
    let report =
        recover::run(&opts).map_err(Failure::during(&format!("recover of {}", env.name)))?;
    match args.format {
        Format::Json => print_json(&report)?,
        _ => print_human(&report, &env.name),
    }
    Ok(Verdict::failed_if(report.failed()))
}

fn print_human(report: &RecoverReport, env: &str) {
    let (Some(id), Some(kind)) = (&report.record, report.kind) else {
        say!("nothing to recover in {env}");
        return;
    };
    say!(
        "recovering {id} ({} interrupted after {} journaled {})",
        kind.as_str(),
        report.journaled_writes,
        if report.journaled_writes == 1 {
            "write"
        } else {
            "writes"
        }
    );
    if !report.orphans.is_empty() {
        let ids: Vec<String> = report.orphans.iter().map(u64::to_string).collect();
        say!(
            "found     flows created without a recorded id: {}",
            ids.join(", ")
        );
    }
    for name in &report.kept {
        say!("kept      {name:?} (finished before the interruption)");
    }
    if let Some(undo) = &report.undo {
        super::rollback::print_steps(undo);
    }
    if let Some(push) = &report.push {
        say!("pushing {} again", push.archive);
        super::push::print_human(push, env, false);
    }
    if report.failed() {
        esay!(
            "flowpack: recovery of {id} in {env} stopped at a failed step; run it again to finish"
        );
    } else if report.push.is_some() {
        say!("finished {id} in {env}");
    } else {
        say!("undid {id} in {env}");
    }
}
