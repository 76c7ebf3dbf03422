//! `flowpack completions SHELL`

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::outcome::{Failure, Outcome, Verdict};

/// Print a shell completion script on stdout.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  flowpack completions bash > ~/.local/share/bash-completion/completions/flowpack\n  \
flowpack completions zsh > \"${fpath[1]}/_flowpack\"\n  \
flowpack completions fish > ~/.config/fish/completions/flowpack.fish\n\n\
Exit codes: 0 printed, 2 could not run."
)]
pub struct Args {
    /// The shell.
    #[arg(value_enum)]
    shell: Shell,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    let mut cmd = crate::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "flowpack", &mut script);
    std::io::stdout()
        .lock()
        .write_all(&script)
        .map_err(|e| Failure::usage(format!("cannot write to stdout: {e}")))?;
    Ok(Verdict::Success)
}
