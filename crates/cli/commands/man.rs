//! `flowpack man DIR [--force]`

use std::path::PathBuf;

use clap::CommandFactory;
use flowpack_core::fsutil::write_bytes_new;

use crate::outcome::{Failure, Outcome, Verdict};

/// Write the manual pages: flowpack.1 and one page per command (flowpack-push.1, ...).
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  flowpack man /usr/local/share/man/man1\n\n\
DIR is created when missing. An existing page is never replaced silently: when any page \
already exists the command writes nothing and names it, unless --force, which replaces each \
page atomically (a symlinked page is replaced, not written through).\n\
Exit codes: 0 written, 2 could not run (a page exists, DIR not writable).")]
pub struct Args {
    /// The directory to write the pages into.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Replace pages that already exist.
    #[arg(long)]
    force: bool,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    let pages = pages().map_err(|e| Failure::usage(format!("rendering the manual pages: {e}")))?;
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| Failure::usage(format!("{}: {e}", args.dir.display())))?;
    if !args.force {
        let existing: Vec<String> = pages
            .iter()
            .map(|(name, _)| args.dir.join(name))
            .filter(|p| p.symlink_metadata().is_ok())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(Failure::usage(format!(
                "{} already exist{} (nothing was written; --force replaces them)",
                existing.join(", "),
                if existing.len() == 1 { "s" } else { "" }
            )));
        }
    }
    for (name, text) in &pages {
        let path = args.dir.join(name);
        write_bytes_new(&path, text, args.force).map_err(Failure::from)?;
        println!("{}", path.display());
    }
    Ok(Verdict::Success)
}

/// Every page as (file name, roff text): the top-level page first, then one per command.
fn pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = crate::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    let mut render = |cmd: clap::Command| -> std::io::Result<()> {
        let man = clap_mangen::Man::new(cmd)
            .source(format!("flowpack {}", env!("CARGO_PKG_VERSION")))
            .manual("flowpack manual");
        let mut text = Vec::new();
        man.render(&mut text)?;
        out.push((man.get_filename(), text));
        Ok(())
    };
    let subcommands: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    render(cmd)?;
    for sub in subcommands {
        render(sub)?;
    }
    Ok(out)
}
