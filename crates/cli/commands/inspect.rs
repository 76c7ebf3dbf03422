//! `flowpack inspect FILE`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use flowpack_core::archive::Manifest;
use flowpack_core::inspect::{Inspection, inspect};
use flowpack_core::secrets::SecretRules;

use crate::inputs::{Loaded, load};
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
Missing or mistyped fields show as null (run `flowpack validate` to see why).\n\
For an archive: {\"archive\", \"manifest\": {...}, \"flows\": [{\"entry\", ...the shape above}]}\n\
(`flowpack verify` checks an archive's digests and signatures; inspect reads its content).\n\n\
Exit codes: 0 inspected, 2 could not read the file."
)]
pub struct Args {
    /// The export document or `.flowpack` archive.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: InspectFormat,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rules = SecretRules::default();
    let one = |f: crate::inputs::Input| {
        let entry = f
            .origin
            .rsplit_once('!')
            .map_or(f.origin.as_str(), |(_, e)| e)
            .to_string();
        (entry, inspect(&f.document, &rules))
    };
    match load(&args.file, one)? {
        Loaded::Document((origin, inspection)) => match args.format {
            InspectFormat::Human => print_human(&origin, &inspection),
            InspectFormat::Json => print_json(&inspection)?,
        },
        Loaded::Archive {
            manifest,
            flows: inspections,
        } => match args.format {
            InspectFormat::Human => {
                print_manifest(&args.file.display().to_string(), &manifest);
                for (entry, inspection) in &inspections {
                    println!();
                    print_human(entry, inspection);
                }
            }
            InspectFormat::Json => {
                let flows: Vec<serde_json::Value> = inspections
                    .iter()
                    .map(|(entry, i)| {
                        let mut v = serde_json::to_value(i).expect("an inspection serialises");
                        if let Some(obj) = v.as_object_mut() {
                            obj.insert("entry".into(), entry.clone().into());
                        }
                        v
                    })
                    .collect();
                print_json(&serde_json::json!({
                    "archive": args.file.display().to_string(),
                    "manifest": manifest,
                    "flows": flows,
                }))?
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

fn print_manifest(file: &str, m: &Manifest) {
    println!("{file}");
    println!(
        "  package         {}@{} ({:?}){}",
        m.package.name,
        m.package.version,
        m.package.kind,
        if m.package.description.is_empty() {
            String::new()
        } else {
            format!(": {}", m.package.description)
        }
    );
    println!("  created         {} by {}", m.created_at, m.generator);
    println!("  flows           {}", m.flows.len());
    for f in &m.flows {
        println!(
            "    {}  {}  ({} steps, {} bytes)",
            f.path, f.name, f.steps, f.size
        );
    }
    if !m.inputs.is_empty() {
        println!("  inputs          {}", m.inputs.len());
        for i in &m.inputs {
            println!(
                "    {:?} {} ({}){}",
                i.kind,
                i.name,
                i.flow,
                if i.required { ", required" } else { "" }
            );
        }
    }
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
