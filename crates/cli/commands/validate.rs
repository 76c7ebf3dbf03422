//! `flowpack validate FILE...`

use std::path::PathBuf;
use std::process::ExitCode;

use flowpack_core::validate::{Report, Severity, ValidateOptions, sarif, validate};
use flowpack_core::{Document, DocumentError};

use crate::output::{Format, print_json};

/// Check export documents: structure (the JSON Schema of their format version) and the semantic
/// rules (ids, connections, routes, priorities, cron strings, statuses, references, secrets).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  flowpack validate flows/*.json\n  \
flowpack validate flows/*.json --format sarif > flowpack.sarif\n\n\
Rules: FP0101 schema; FP0201 duplicate-step-id, FP0202 dangling-connection, FP0203 \
route-to-unknown-step, FP0204 unreachable-step (warning), FP0205 trigger-count (warning); FP0301 \
priority-range; FP0401 cron-syntax; FP0501 multiple-drafts, FP0502 multiple-deployed, FP0503 \
is-deployed-mismatch, FP0504 unknown-status; FP0601 unknown-system, FP0602 unknown-script; FP0701 \
import-summary-count (warning); FP0801 secret-value.\n\n\
Exit codes: 0 no errors, 1 errors (or warnings with --deny-warnings), 2 could not run.")]
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
    let mut sources = Vec::new();
    for file in &args.files {
        let path = file.display().to_string();
        let bytes = std::fs::read(file).map_err(|source| DocumentError::Read {
            path: path.clone(),
            source,
        })?;
        let doc = Document::from_slice(&bytes, &path)?;
        reports.push((path, validate(&doc, &opts)));
        sources.push(bytes);
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
        Format::Sarif => {
            let files: Vec<sarif::SarifFile<'_>> = reports
                .iter()
                .zip(&sources)
                .map(|((path, report), source)| sarif::SarifFile {
                    path,
                    report,
                    source: Some(source),
                })
                .collect();
            print_json(&sarif::sarif_log(&files))?
        }
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
