//! `flowpack migrate FILE --to N|latest [-o OUT] [--check] [--allow-loss]`

use std::io::Write;
use std::path::PathBuf;

use flowpack_action::migrate::{self, MigrateError, MigrateOptions, MigrateReport};
use flowpack_core::migrate::{MigrateError as CoreMigrateError, Target};

use crate::outcome::{Failure, Outcome, Verdict};
use crate::output::count;

/// Migrate an export document to another format version (1 is legacy, 2 current). Without `-o`
/// the migrated document goes to stdout. Migrating down to a version that cannot hold everything
/// is refused (exit 1, naming what would be lost) unless `--allow-loss`, which prints the loss
/// report on stderr.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  flowpack migrate legacy.json --to latest -o current.json\n\n\
--check writes nothing: exit 0 when FILE is already at the target version, 1 when migrating \
would change its version (like `rustfmt --check`).\n\n\
An existing OUT is refused unless --force, which replaces it atomically (a symlink is \
replaced, not written through).\n\
Exit codes: 0 migrated (or already at the target with --check), 1 would change (--check) or \
refused because it would lose data, 2 could not run (OUT exists, …)."
)]
pub struct Args {
    /// The export document to migrate.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The target format version: a number or `latest`.
    #[arg(long, value_name = "N|latest")]
    to: Target,
    /// Write the migrated document here (atomically) instead of stdout.
    #[arg(short = 'o', long, value_name = "OUT")]
    output: Option<PathBuf>,
    /// Replace OUT if it exists.
    #[arg(long, requires = "output")]
    force: bool,
    /// Write nothing; exit 0 if FILE is already at the target version, 1 if not.
    #[arg(long, conflicts_with = "output")]
    check: bool,
    /// Let a down-migration drop what the older version cannot hold (reported on stderr).
    #[arg(long)]
    allow_loss: bool,
}

/// Runs the command. With `--check`, whose 1 means "would change", input it cannot check is 2.
pub fn run(args: Args) -> Outcome {
    let check = args.check;
    let result = migrate_or_check(args);
    if check {
        result.map_err(Failure::could_not_run)
    } else {
        result
    }
}

fn migrate_or_check(args: Args) -> Outcome {
    let mut opts = MigrateOptions::new(args.file, args.to);
    opts.allow_loss = args.allow_loss;
    opts.check = args.check;
    opts.output = args.output;
    opts.force = args.force;
    let report = match migrate::run(&opts) {
        Ok(r) => r,
        Err(MigrateError::Migrate(CoreMigrateError::LossRefused {
            document,
            from,
            to,
            loss,
        })) => {
            let mut message = format!(
                "{document}: migrating from format version {from} to {to} would lose {}; pass \
                 --allow-loss to migrate anyway:",
                count(loss.items.len(), "item", "items")
            );
            for item in &loss.items {
                message.push_str(&format!("\n  {item}"));
            }
            return Err(
                Failure::from(MigrateError::Migrate(CoreMigrateError::LossRefused {
                    document: document.clone(),
                    from,
                    to,
                    loss,
                }))
                .with_message(message),
            );
        }
        Err(e) => return Err(e.into()),
    };
    match report {
        MigrateReport::Checked { file, from, to } if from == to => {
            say!("{file}: at format version {to}");
            Ok(Verdict::Success)
        }
        MigrateReport::Checked { file, from, to } => {
            say!("{file}: at format version {from}, would migrate to {to}");
            Ok(Verdict::Failed)
        }
        MigrateReport::Migrated {
            file,
            migrated,
            bytes,
        } => {
            if let Some(bytes) = bytes {
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(&bytes)
                    .and_then(|()| stdout.flush())
                    .map_err(|e| Failure::usage(format!("cannot write to stdout: {e}")))?;
            }
            if !migrated.loss.is_empty() {
                esay!(
                    "flowpack: warning: {file}: migrating from format version {} to {} lost {}:",
                    migrated.from,
                    migrated.to,
                    count(migrated.loss.items.len(), "item", "items")
                );
                for item in &migrated.loss.items {
                    esay!("  {item}");
                }
            }
            Ok(Verdict::Success)
        }
    }
}
