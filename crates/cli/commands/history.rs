//! `flowpack history --env E [--format json]`

use flowpack_action::history::{self, HistoryOptions, HistoryReport};

use crate::flags::{EnvArgs, HistoryArgs};
use crate::outcome::{Outcome, Verdict};
use crate::output::{Format, print_json};

/// List the pushes and rollbacks recorded for an environment, newest first.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  flowpack history --env production\n  flowpack history --env production --format json\n\n\
Every push and rollback is recorded under .flowpack/history/ENV/ beside flowpack.toml (or \
--history DIR), with a journal of its writes; `flowpack rollback` undoes a record, \
`flowpack recover` an interrupted one.\n\
Exit codes: 0 listed (none is fine), 2 could not run.",
    disable_version_flag = true
)]
pub struct Args {
    #[command(flatten)]
    env: EnvArgs,
    #[command(flatten)]
    history: HistoryArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    let env = args.env.resolve()?;
    let opened = args.history.open(&args.env, &env, "history", None)?;
    let report = history::run(&HistoryOptions::new(opened.target.dir.clone()))?;
    match args.format {
        Format::Json => print_json(&report)?,
        _ => print_human(&report),
    }
    Ok(Verdict::Success)
}

fn print_human(report: &HistoryReport) {
    if report.records.is_empty() {
        say!("no history in {}", report.dir);
        return;
    }
    for r in &report.records {
        let mut line = format!("{}  {:<8}", r.id, r.kind.as_str());
        if let Some(a) = &r.archive {
            line.push_str(&format!(" {a}"));
        }
        if let Some(u) = &r.undoes {
            line.push_str(&format!(" undoes {u}"));
        }
        let c = r.counts;
        if r.kind == history::Kind::Push {
            line.push_str(&format!(
                "  created {}, replaced {}, state changes {}",
                c.created, c.replaced, c.state
            ));
        }
        match r.status {
            history::Status::Complete => {}
            history::Status::Pending => {
                line.push_str("  (pending: interrupted, see `flowpack recover`)")
            }
            history::Status::Failed if r.wrote == 0 && c.created + c.replaced + c.state == 0 => {
                line.push_str("  (failed, wrote nothing)")
            }
            other => line.push_str(&format!("  ({})", other.as_str())),
        }
        if let Some(by) = &r.undone_by {
            line.push_str(&format!("  undone by {by}"));
        }
        say!("{line}");
    }
}
