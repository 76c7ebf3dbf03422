//! The `flowpack` command line: parses flags, calls one action of `flowpack-action` per command,
//! renders its report.
//!
//! Exit codes, one policy for every command, decided here and nowhere else ([`exit_code`]):
//! 0 success; 1 the input was rejected or a check failed (an invalid, malformed or hostile
//! document or archive, a failed verification, a refused or partly failed push); 2 could not run
//! (usage, the user's own files unreadable, configuration, authentication, network).
//! `diff`, whose 1 means "different", answers 2 for every failure, input it rejects included,
//! like diff(1).

// The doc comments of clap arguments are their `--help` texts, written for a terminal
// (`filter[name]`, `<timestamp>`), not Markdown; rustdoc must not read them as links or HTML.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flowpack_action::Category;

mod clock;
#[macro_use]
mod output;
mod commands;
mod flags;
mod keys;
mod outcome;
mod process;
mod review;

use outcome::{Outcome, Verdict};

/// mimalloc keeps peak memory bounded when worker threads free what another thread allocated
/// (see the note on the dependency in Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (milliseconds before freed memory goes back to the
/// system; 1000 by default in mimalloc 3). The Rust bindings name its neighbours (14, 16) but
/// not it; a test below checks that option 15 still has this default, so a reordering is
/// caught.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Once a document near the per-document bound is about to be parsed, mimalloc returns freed
/// memory to the system at once instead of after its purge delay: otherwise the memory of the
/// large document a worker just dropped is still held while the next one is parsed, and a few
/// of them pass the memory bound (see `flowpack_core::budget`). Runs with small documents only
/// never call it, so the benchmarks' many small allocations keep mimalloc's speed.
fn large_documents_ahead() {
    // SAFETY: setting an option takes no pointers; mimalloc reads this one each time it purges.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
}

/// Transparent huge pages off for this process: mimalloc asks for them, and every fresh 2 MiB
/// page is zeroed by the kernel when first touched — a third of `pack`'s CPU time was the
/// kernel clearing pages (0.7 s of system time for 100 MB of documents, 0.2 s without them),
/// and peak memory was 40 % higher. Best effort: a kernel without the flag changes nothing.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
}

/// flowpack moves the process flows of an iPaaS between places: it validates and migrates export
/// documents, packs them into signed, reproducible archives, and pushes archives into another
/// environment.
/// The EXAMPLES block of the top-level `--help` (and of the man page).
const EXAMPLES: &str = "\
Examples:
  flowpack validate flows/*.json
  flowpack pack flows/ -o app.flowpack --name app --version 1.0.0 --sign keys/release.key
  flowpack verify app.flowpack --trusted-key keys/release.pub
  flowpack push app.flowpack --env staging --overlay overlays/staging.toml --dry-run
  flowpack export --env production --all -o backup.flowpack
  flowpack completions bash > ~/.local/share/bash-completion/completions/flowpack

Exit codes: 0 success, 1 check failed, 2 could not run.";

#[derive(Debug, Parser)]
#[command(name = "flowpack", version, about, long_about = None, propagate_version = true)]
#[command(after_help = EXAMPLES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Validate(commands::validate::Args),
    Migrate(commands::migrate::Args),
    Inspect(commands::inspect::Args),
    Pack(commands::pack::Args),
    Keygen(commands::keygen::Args),
    Sign(commands::sign::Args),
    Verify(commands::verify::Args),
    Unpack(commands::unpack::Args),
    Export(commands::export::Args),
    Backup(commands::backup::Args),
    Backups(commands::backups::Args),
    Push(commands::push::Args),
    Publish(commands::publish::Args),
    Pull(commands::pull::Args),
    Completions(commands::completions::Args),
    Man(commands::man::Args),
    Diff(commands::diff::Args),
    History(commands::history::Args),
    Rollback(commands::rollback::Args),
    Recover(commands::recover::Args),
    Unlock(commands::unlock::Args),
    Init(commands::init::Args),
}

/// What exit code 1 means for a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum One {
    /// The input was rejected or a check failed (every command but diff).
    Rejected,
    /// The sides differ (diff): input it rejects is 2, like diff(1).
    Different,
}

fn main() -> ExitCode {
    process::restore_sigpipe();
    no_huge_pages();
    flowpack_core::budget::set_large_share_hook(large_documents_ahead);
    let cli = Cli::parse();
    let one = match cli.command {
        Command::Diff(_) => One::Different,
        _ => One::Rejected,
    };
    let result = match cli.command {
        Command::Validate(args) => commands::validate::run(args),
        Command::Migrate(args) => commands::migrate::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Pack(args) => commands::pack::run(args),
        Command::Keygen(args) => commands::keygen::run(args),
        Command::Sign(args) => commands::sign::run(args),
        Command::Verify(args) => commands::verify::run(args),
        Command::Unpack(args) => commands::unpack::run(args),
        Command::Export(args) => commands::export::run(args),
        Command::Backup(args) => commands::backup::run(args),
        Command::Backups(args) => commands::backups::run(args),
        Command::Push(args) => commands::push::run(args),
        Command::Publish(args) => commands::publish::run(args),
        Command::Pull(args) => commands::pull::run(args),
        Command::Completions(args) => commands::completions::run(args),
        Command::Man(args) => commands::man::run(args),
        Command::Diff(args) => commands::diff::run(args),
        Command::History(args) => commands::history::run(args),
        Command::Rollback(args) => commands::rollback::run(args),
        Command::Recover(args) => commands::recover::run(args),
        Command::Unlock(args) => commands::unlock::run(args),
        Command::Init(args) => commands::init::run(args),
    };
    if let Err(failure) = &result {
        eprintln!("flowpack: error: {}", output::shown_lines(&failure.message));
        if let Some(hint) = &failure.hint {
            esay!("hint: {hint}");
        }
    }
    ExitCode::from(exit_code(&result, one))
}

/// The one mapping from a command's outcome to the process's exit code.
fn exit_code(outcome: &Outcome, one: One) -> u8 {
    let category = match outcome {
        Ok(Verdict::Success) => return 0,
        Ok(Verdict::Failed) => return 1,
        Err(failure) => failure.category,
    };
    match (category, one) {
        (Category::Rejected, One::Rejected) => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outcome::Failure;

    #[test]
    fn option_15_is_mimallocs_purge_delay() {
        // SAFETY: reading and setting an option take no pointers.
        unsafe {
            assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY), 1000);
            // Its neighbours, as the bindings name them, hold their own defaults.
            assert_eq!(
                libmimalloc_sys::mi_option_get(libmimalloc_sys::mi_option_use_numa_nodes),
                0
            );
        }
        large_documents_ahead();
        // SAFETY: as above.
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) },
            0
        );
    }

    #[test]
    fn rejected_is_1_could_not_run_is_2() {
        assert_eq!(exit_code(&Ok(Verdict::Success), One::Rejected), 0);
        assert_eq!(exit_code(&Ok(Verdict::Failed), One::Rejected), 1);
        let rejected = || Failure {
            category: Category::Rejected,
            hint: None,
            message: String::new(),
        };
        assert_eq!(exit_code(&Err(rejected()), One::Rejected), 1);
        assert_eq!(exit_code(&Err(Failure::usage("x")), One::Rejected), 2);
        // diff: 1 is "different"; rejected input is 2, like diff(1).
        assert_eq!(exit_code(&Ok(Verdict::Success), One::Different), 0);
        assert_eq!(exit_code(&Ok(Verdict::Failed), One::Different), 1);
        assert_eq!(exit_code(&Err(rejected()), One::Different), 2);
        assert_eq!(exit_code(&Err(Failure::usage("x")), One::Different), 2);
    }
}
