//! `flowpack validate FILE...`

use std::path::PathBuf;

use flowpack_action::validate::{self, Checked, ValidateOptions};
use flowpack_core::validate::{Severity, sarif};

use crate::outcome::{Outcome, Verdict};
use crate::output::{count, print_json};

/// Output formats of `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ValidateFormat {
    /// Text for people.
    #[default]
    Human,
    /// One JSON document on stdout.
    Json,
    /// SARIF 2.1.0, for CI annotations.
    Sarif,
}

/// Check export documents: structure (the JSON Schema of their format version) and the semantic
/// rules (ids, connections, routes, priorities, cron strings, statuses, references, secrets).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  flowpack validate flows/*.json\n  \
flowpack validate flows/*.json --format sarif > flowpack.sarif\n  \
flowpack validate backup.flowpack\n\n\
Rules: FP0101 schema; FP0201 duplicate-step-id, FP0202 dangling-connection, FP0203 \
route-to-unknown-step, FP0204 unreachable-step (warning), FP0205 trigger-count (warning); FP0301 \
priority-range; FP0401 cron-syntax; FP0501 multiple-drafts, FP0502 multiple-deployed, FP0503 \
is-deployed-mismatch, FP0504 unknown-status; FP0601 unknown-system, FP0602 unknown-script; FP0701 \
import-summary-count (warning); FP0801 secret-value.\n\n\
Exit codes: 0 no errors, 1 errors (or warnings with --deny-warnings; or a file is not an export \
document or a safe archive), 2 could not run.")]
pub struct Args {
    /// Export documents or `.flowpack` archives (every flow document inside) to check.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: ValidateFormat,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    deny_warnings: bool,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    let mut opts = ValidateOptions::new(args.files);
    opts.keep_sources = args.format == ValidateFormat::Sarif;
    let report = validate::run(&opts)?;
    let docs = &report.documents;
    match args.format {
        ValidateFormat::Human => print_human(docs),
        ValidateFormat::Json => print_json(&serde_json::json!({
            "files": docs.iter().map(|c| serde_json::json!({
                "file": c.origin,
                "errors": c.report.count(Severity::Error),
                "warnings": c.report.count(Severity::Warning),
                "findings": c.report.findings,
            })).collect::<Vec<_>>()
        }))?,
        ValidateFormat::Sarif => {
            let files: Vec<sarif::SarifFile<'_>> = docs
                .iter()
                .map(|c| sarif::SarifFile {
                    path: &c.origin,
                    report: &c.report,
                    source: c.source.as_deref(),
                })
                .collect();
            print_json(&sarif::sarif_log(&files))?
        }
    }
    Ok(if report.fails(args.deny_warnings) {
        Verdict::Failed
    } else {
        Verdict::Success
    })
}

fn print_human(docs: &[Checked]) {
    for Checked {
        origin: file,
        report,
        ..
    } in docs
    {
        for f in &report.findings {
            say!("{}[{}]: {}", f.severity.as_str(), f.code, f.message);
            say!("  --> {file}#{}", f.pointer);
            say!("  = hint: {}", f.hint);
            say!();
        }
        say!(
            "{file}: {}, {}",
            count(report.count(Severity::Error), "error", "errors"),
            count(report.count(Severity::Warning), "warning", "warnings")
        );
    }
}
