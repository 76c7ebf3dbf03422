//! The `flowpack` command line: parses flags, calls one action of `flowpack-action` per command,
//! renders its report.
//!
//! Exit codes, one policy for every command, decided here and nowhere else ([`exit_code`]):
//! 0 success; 1 the input was rejected or a check failed (an invalid, malformed or hostile
//! document or archive, a failed verification, a refused or partly failed push); 2 could not run
//! (usage, the user's own files unreadable, configuration, authentication, network).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flowpack_action::Category;

mod clock;
mod commands;
mod flags;
mod keys;
mod outcome;
mod output;
mod process;

use outcome::{Outcome, Verdict};

/// mimalloc keeps peak memory bounded when worker threads free what another thread allocated
/// (see the note on the dependency in Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// flowpack moves the process flows of an iPaaS between places: it validates and migrates export
/// documents, packs them into signed, reproducible archives, and pushes archives into another
/// environment.
#[derive(Debug, Parser)]
#[command(name = "flowpack", version, about, long_about = None, propagate_version = true)]
#[command(after_help = "Exit codes: 0 success, 1 check failed, 2 could not run.")]
struct Cli {
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
    Push(commands::push::Args),
    History(commands::history::Args),
    Rollback(commands::rollback::Args),
}

fn main() -> ExitCode {
    process::restore_sigpipe();
    let cli = Cli::parse();
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
        Command::Push(args) => commands::push::run(args),
        Command::History(args) => commands::history::run(args),
        Command::Rollback(args) => commands::rollback::run(args),
    };
    if let Err(failure) = &result {
        eprintln!("flowpack: error: {}", failure.message);
    }
    ExitCode::from(exit_code(&result))
}

/// The one mapping from a command's outcome to the process's exit code.
fn exit_code(outcome: &Outcome) -> u8 {
    let category = match outcome {
        Ok(Verdict::Success) => return 0,
        Ok(Verdict::Failed) => Category::Rejected,
        Err(failure) => failure.category,
    };
    match category {
        Category::Rejected => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outcome::Failure;

    #[test]
    fn rejected_is_1_could_not_run_is_2() {
        assert_eq!(exit_code(&Ok(Verdict::Success)), 0);
        assert_eq!(exit_code(&Ok(Verdict::Failed)), 1);
        let rejected = Failure {
            category: Category::Rejected,
            message: String::new(),
        };
        assert_eq!(exit_code(&Err(rejected)), 1);
        assert_eq!(exit_code(&Err(Failure::usage("x"))), 2);
    }
}
