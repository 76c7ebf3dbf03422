//! The `flowpack` command line: parses flags, calls one library operation per command, renders
//! its report. Exit codes: 0 success, 1 the check failed (findings, verification, a refused or
//! partly failed push), 2 could not run (bad usage, unreadable input, I/O).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod clock;
mod commands;
mod inputs;
mod ops;
mod output;
mod process;

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
    Publish(commands::publish::Args),
    Pull(commands::pull::Args),
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
        Command::Publish(args) => commands::publish::run(args),
        Command::Pull(args) => commands::pull::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("flowpack: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
