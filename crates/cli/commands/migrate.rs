//! `flowpack migrate FILE --to N|latest [-o OUT] [--check] [--allow-loss]`

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use flowpack_core::Document;
use flowpack_core::fsutil::write_bytes_atomic;
use flowpack_core::migrate::{MigrateError, MigrateOptions, Target, migrate, resolve_target};

/// Migrate an export document to another format version (1 is legacy, 2 current). Without `-o`
/// the migrated document goes to stdout. Migrating down to a version that cannot hold everything
/// is refused (exit 1, naming what would be lost) unless `--allow-loss`, which prints the loss
/// report on stderr.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  flowpack migrate legacy.json --to latest -o current.json\n\n\
--check writes nothing: exit 0 when FILE is already at the target version, 1 when migrating \
would change its version (like `rustfmt --check`).\n\n\
Exit codes: 0 migrated (or already at the target with --check), 1 would change (--check) or \
refused because it would lose data, 2 could not run."
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
    /// Write nothing; exit 0 if FILE is already at the target version, 1 if not.
    #[arg(long, conflicts_with = "output")]
    check: bool,
    /// Let a down-migration drop what the older version cannot hold (reported on stderr).
    #[arg(long)]
    allow_loss: bool,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let origin = args.file.display().to_string();
    let doc = Document::read(&args.file)?;
    if args.check {
        let from = doc.format_version();
        let to = resolve_target(args.to, &origin)?;
        if from == to {
            println!("{origin}: at format version {to}");
            return Ok(ExitCode::SUCCESS);
        }
        println!("{origin}: at format version {from}, would migrate to {to}");
        return Ok(ExitCode::from(1));
    }
    let mut opts = MigrateOptions::new(args.to);
    opts.allow_loss = args.allow_loss;
    opts.origin = origin.clone();
    let migrated = match migrate(doc, &opts) {
        Ok(m) => m,
        Err(MigrateError::LossRefused { from, to, loss, .. }) => {
            eprintln!(
                "flowpack: error: {origin}: migrating from format version {from} to {to} would \
                 lose {} item(s); pass --allow-loss to migrate anyway:",
                loss.items.len()
            );
            for item in &loss.items {
                eprintln!("  {item}");
            }
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    let bytes = migrated.document.to_pretty_bytes();
    match &args.output {
        Some(out) => write_bytes_atomic(out, &bytes)?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&bytes)
                .and_then(|()| stdout.flush())
                .context("cannot write to stdout")?;
        }
    }
    if !migrated.loss.is_empty() {
        eprintln!(
            "flowpack: warning: {origin}: migrating from format version {} to {} lost {} item(s):",
            migrated.from,
            migrated.to,
            migrated.loss.items.len()
        );
        for item in &migrated.loss.items {
            eprintln!("  {item}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
