//! `flowpack validate FILE...`

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use flowpack_core::validate::{Report, Severity, ValidateOptions, sarif, validate};

use crate::inputs::{Loaded, load_with};
use crate::output::{Format, print_json};

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
Exit codes: 0 no errors, 1 errors (or warnings with --deny-warnings), 2 could not run.")]
pub struct Args {
    /// Export documents or `.flowpack` archives (every flow document inside) to check.
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
    let keep_sources = args.format == Format::Sarif;
    let mut reports = Vec::new();
    let mut sources = Vec::new();
    for (origin, report, bytes) in check_files(&args.files, &opts, keep_sources)? {
        reports.push((origin, report));
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
                    source: source.as_deref(),
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

/// One checked document: where it came from, its report, and its bytes when kept for SARIF.
type Checked = (String, Report, Option<Vec<u8>>);

/// Reads and validates every file (a document, or each flow of an archive) on one thread per
/// core, files taken in turn so big and small ones balance, and returns the reports in argument
/// order; the first unreadable file in argument order is the error. A file's bytes are kept only
/// when `keep_sources` (SARIF needs them for line numbers).
fn check_files(
    files: &[PathBuf],
    opts: &ValidateOptions,
    keep_sources: bool,
) -> anyhow::Result<Vec<Checked>> {
    let check = |file: &PathBuf, buf: &mut Vec<u8>| -> anyhow::Result<Vec<Checked>> {
        let one = |input: crate::inputs::Input| {
            let report = validate(&input.document, opts);
            (input.origin, report, input.bytes)
        };
        Ok(match load_with(file, buf, keep_sources, one)? {
            Loaded::Document(checked) => vec![checked],
            Loaded::Archive { flows, .. } => flows,
        })
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<anyhow::Result<Vec<Checked>>>> = files.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    let mut buf = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(file) = files.get(i) else { break };
                        done.push((i, check(file, &mut buf)));
                    }
                    done
                })
            })
            .collect();
        for worker in workers {
            for (i, result) in worker.join().expect("a validation thread panicked") {
                slots[i] = Some(result);
            }
        }
    });
    let mut out = Vec::new();
    for slot in slots {
        out.extend(slot.expect("every file was checked")?);
    }
    Ok(out)
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
