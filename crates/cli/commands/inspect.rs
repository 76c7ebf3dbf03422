//! `flowpack inspect FILE`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use flowpack_core::Document;
use flowpack_core::inspect::{Inspection, inspect};
use flowpack_core::secrets::SecretRules;

use crate::output::print_json;

/// Output formats of `inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum InspectFormat {
    /// Text for people.
    #[default]
    Human,
    /// One JSON document on stdout (shape in `--help`).
    Json,
}

/// Show what an export document holds: its format version, flow, versions with step counts,
/// systems, scripts, variables (never secret values) and how many filled secret values it carries.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  flowpack inspect flows/orders.json --format json\n\n\
JSON shape:\n  {\"format_version\": 2, \"format_detection\": \"inferred\"|\"stamped\",\n   \
\"flow\": {\"name\", \"priority\", \"enabled\"},\n   \
\"versions\": [{\"iteration\", \"status\", \"steps\": 6, \"step_types\": {\"connector\": 2, ...},\n                 \
\"schedules\": [\"*/15 * * * *\"], \"variables\": [{\"key\", \"is_secret\", \"has_value\"}]}],\n   \
\"systems\": [{\"name\", \"protocol\", \"auth_implementations\"}],\n   \
\"scripts\": [{\"name\", \"language\"}], \"filled_secrets\": 0}\n\
Missing or mistyped fields show as null (run `flowpack validate` to see why).\n\n\
Exit codes: 0 inspected, 2 could not read the file."
)]
pub struct Args {
    /// The export document.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: InspectFormat,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let doc = Document::read(&args.file)?;
    let inspection = inspect(&doc, &SecretRules::default());
    match args.format {
        InspectFormat::Human => print_human(&args.file.display().to_string(), &inspection),
        InspectFormat::Json => print_json(&inspection)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn or_dash<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), T::to_string)
}

fn print_human(file: &str, i: &Inspection) {
    println!("{file}");
    println!(
        "  format version  {} ({})",
        i.format_version,
        match i.format_detection {
            flowpack_core::document::Detection::Stamped => "stamped",
            flowpack_core::document::Detection::Inferred => "inferred",
        }
    );
    println!("  flow            {}", or_dash(&i.flow.name));
    println!(
        "  priority        {}   enabled {}",
        or_dash(&i.flow.priority),
        or_dash(&i.flow.enabled)
    );
    println!("  versions        {}", i.versions.len());
    for (n, v) in i.versions.iter().enumerate() {
        let types: Vec<String> = v
            .step_types
            .iter()
            .map(|(t, c)| format!("{t} {c}"))
            .collect();
        println!(
            "    [{n}] iteration {}  {}  {} step(s): {}",
            or_dash(&v.iteration),
            or_dash(&v.status),
            v.steps,
            types.join(", ")
        );
        for s in &v.schedules {
            println!("        schedule  {s}");
        }
        for var in &v.variables {
            println!(
                "        variable  {}{}{}",
                or_dash(&var.key),
                if var.is_secret { " (secret)" } else { "" },
                if var.has_value { "" } else { " (no value)" }
            );
        }
    }
    println!("  systems         {}", i.systems.len());
    for s in &i.systems {
        println!(
            "    {} ({}), {} auth implementation(s)",
            or_dash(&s.name),
            or_dash(&s.protocol),
            s.auth_implementations
        );
    }
    println!("  scripts         {}", i.scripts.len());
    for s in &i.scripts {
        println!("    {} ({})", or_dash(&s.name), or_dash(&s.language));
    }
    println!("  filled secrets  {}", i.filled_secrets);
}
