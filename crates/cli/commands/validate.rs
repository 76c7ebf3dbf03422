//! `flowpack validate FILE...`

use std::path::PathBuf;
use std::process::ExitCode;

use flowpack_core::Document;
use flowpack_core::validate::{Report, Severity, ValidateOptions, validate};

use crate::output::{Format, print_json};

/// Check export documents: structure (the JSON Schema of their format version) and the semantic
/// rules (ids, connections, routes, priorities, cron strings, statuses, references, secrets).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  flowpack validate flows/*.json --format sarif > flowpack.sarif\n\n\
Exit codes: 0 no errors, 1 errors (or warnings with --deny-warnings), 2 could not run."
)]
pub struct Args {
    /// Export documents to check.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    deny_warnings: bool,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let opts = ValidateOptions::default();
    let mut reports = Vec::new();
    for file in &args.files {
        let doc = Document::read(file)?;
        reports.push((file.display().to_string(), validate(&doc, &opts)));
    }
    match args.format {
        Format::Human => print_human(&reports),
        Format::Json => print_json(&serde_json::json!({
            "files": reports.iter().map(|(file, r)| serde_json::json!({
                "file": file,
                "errors": r.count(Severity::Error),
                "warnings": r.count(Severity::Warning),
                "findings": r.findings,
            })).collect::<Vec<_>>()
        }))?,
        Format::Sarif => anyhow::bail!("--format sarif is not available yet"),
    }
    let failed = reports.iter().any(|(_, r)| r.fails(args.deny_warnings));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_human(reports: &[(String, Report)]) {
    for (file, report) in reports {
        for f in &report.findings {
            println!("{}[{}]: {}", f.severity.as_str(), f.code, f.message);
            println!("  --> {file}#{}", f.pointer);
            println!("  = hint: {}", f.hint);
            println!();
        }
        println!(
            "{file}: {} error(s), {} warning(s)",
            report.count(Severity::Error),
            report.count(Severity::Warning)
        );
    }
}
