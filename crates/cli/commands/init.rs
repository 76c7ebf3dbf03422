//! `flowpack init [--config FILE] [--env NAME]... [--force]`

use std::path::PathBuf;

use flowpack_action::init::{self, InitOptions};

use crate::outcome::{Outcome, Verdict};

/// Write a commented flowpack.toml to start from, and an overlay file per environment.
///
/// Each environment gets a table with url, token_env and overlay; the last one also trusted_keys
/// and threshold.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  flowpack init\n  \
flowpack init --env dev --env test --env prod\n  \
flowpack init --config deploy/flowpack.toml --force\n\n\
The environments default to staging and production; the last one named demands archives signed \
by keys/release.pub. API keys are never written: each environment's token_env names the \
variable holding it (FLOWPACK_<NAME>_TOKEN). Overlay files that exist are kept.\n\
An existing config is refused unless --force, which replaces it atomically.\n\
Exit codes: 0 written, 2 could not run (the file exists, a bad name, a failed write).")]
pub struct Args {
    /// The config file to write.
    #[arg(long, value_name = "FILE", default_value = "flowpack.toml")]
    config: PathBuf,
    /// An environment to describe (repeatable; default: staging and production).
    #[arg(long = "env", value_name = "NAME")]
    envs: Vec<String>,
    /// Replace an existing config file.
    #[arg(long)]
    force: bool,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    let mut opts = InitOptions::new(args.config);
    if !args.envs.is_empty() {
        opts.environments = args.envs;
    }
    opts.force = args.force;
    let report = init::run(&opts)?;
    let names: Vec<&str> = report.token_vars.iter().map(|(e, _)| e.as_str()).collect();
    println!(
        "{} {} (environments: {})",
        if report.replaced { "replaced" } else { "wrote" },
        report.config.display(),
        names.join(", ")
    );
    for p in &report.overlays_written {
        println!("wrote {}", p.display());
    }
    for p in &report.overlays_kept {
        println!("kept {} (exists)", p.display());
    }
    println!("next:");
    println!(
        "  edit each environment's url in {}",
        report.config.display()
    );
    let vars: Vec<&str> = report.token_vars.iter().map(|(_, v)| v.as_str()).collect();
    println!("  set the API keys in {}", vars.join(", "));
    for k in &report.keys_missing {
        let prefix = k.with_extension("");
        println!(
            "  make the signing key {} trusts: flowpack keygen -o {}",
            names.last().copied().unwrap_or_default(),
            prefix.display()
        );
    }
    if let Some(first) = names.first() {
        println!("  then: flowpack push app.flowpack --env {first} --dry-run");
    }
    Ok(Verdict::Success)
}
