//! `flowpack diff LEFT RIGHT [--overlay FILE] [--flow NAME]... [--format human|json]`

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::ValueEnum;

use flowpack_action::diff::{self, DiffOptions, DiffReport, Side};
use flowpack_action::env::LogFn;
use flowpack_core::diff::{FlowStatus, ids_text};
use flowpack_core::names::NameFilter;
use flowpack_core::overlay::{OnUnmatched, Overlay};

use crate::outcome::{Failure, Outcome, Verdict};
use crate::output::{count, print_json};
use crate::review;

/// Output formats of `diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DiffFormat {
    /// Text for people.
    #[default]
    Human,
    /// One JSON document.
    Json,
    /// A self-contained HTML review report: summary, each changed flow's changed versions
    /// drawn as step graphs, its changes; no script, nothing loaded from the network.
    Html,
    /// GitHub-flavoured Markdown for a pull request (at most 65,000 characters).
    Markdown,
}

/// Compare two sets of flows: archives, export documents, directories of documents, or the live
/// flows of an environment (`env:NAME`).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  flowpack diff release-1.flowpack release-2.flowpack\n  \
flowpack diff release.flowpack env:production --overlay overlays/production.toml\n  \
flowpack diff env:local backup/ --flow 'Shopify *' --format json\n  \
flowpack diff release-1.flowpack release-2.flowpack --format html -o review.html\n  \
FLOWPACK_TOKEN=... flowpack diff app.flowpack env:url --url https://core.example.com\n\n\
Each side: env:NAME (an environment of flowpack.toml; env:local the embedded sandbox; env:url \
the platform given by --url), else a path (./env:x for a file of that name): an archive, an \
export document, an unpacked archive (a directory with flowpack.json at its top) or a \
directory of *.json export documents (recursively; flowpack.json and flow.json skipped). \
Archives are checked for integrity, not signatures. Flows are matched by name; each change is \
a JSON pointer into RIGHT (into LEFT for something removed) with LEFT's and RIGHT's values; \
secrets are never compared by value and print as ••••. A name carried by more than one live \
flow of an env: side is reported as duplicate with their ids, not compared. Rules: \
docs/diff.md.\n\n\
Exit codes: 0 the same, 1 different, 2 could not compare (unreadable or rejected input, \
configuration, network).",
    disable_version_flag = true
)]
pub struct Args {
    /// The old side: a path, or env:NAME.
    #[arg(value_name = "LEFT")]
    left: String,
    /// The new side: a path, or env:NAME.
    #[arg(value_name = "RIGHT")]
    right: String,
    /// Apply this overlay to LEFT first, as push would (every key must match something in
    /// LEFT).
    #[arg(long, value_name = "FILE")]
    overlay: Option<PathBuf>,
    /// Overlay keys that match nothing in LEFT are warnings instead of errors.
    #[arg(long, requires = "overlay")]
    allow_unmatched: bool,
    /// Only flows whose name matches (repeatable; `*` and `?` globs, case-sensitive).
    #[arg(long = "flow", value_name = "NAME")]
    flows: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: DiffFormat,
    /// Write the report to this file instead of stdout (written atomically; an existing file
    /// is refused unless --force).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Replace an existing -o FILE.
    #[arg(long, requires = "output")]
    force: bool,
    /// Keep flows named `… (replaced …)` on env: sides.
    #[arg(long)]
    include_replaced: bool,
    /// Compare the flows' documents only, not their settings (flow.json: state, webhooks,
    /// callbacks; without this flag they are compared wherever both sides carry them).
    #[arg(long)]
    content_only: bool,
    /// Speak plain HTTP to the registry of an oci:// side (local test registries only).
    #[arg(long)]
    plain_http: bool,
    /// The config file for env: sides, and the platform a side written env:url stands for.
    #[command(flatten)]
    source: crate::flags::ConfigArgs,
    #[command(flatten)]
    jobs: crate::flags::JobsArgs,
    /// Log every request (the API key shown as ••••) on stderr.
    #[arg(long)]
    verbose: bool,
}

/// Runs the command: `Success` when the sides are the same, `Failed` when they differ. Every
/// error is "could not compare" (exit 2, decided in main.rs).
pub fn run(args: Args) -> Outcome {
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::usage(format!("the current directory: {e}")))?;
    // The overlay is read and resolved before any side is read.
    let overlay = match &args.overlay {
        Some(path) => Some(Overlay::read(path)?.resolve(&|k| std::env::var(k).ok())?),
        None => None,
    };
    let (left, right) = (Side::parse(&args.left), Side::parse(&args.right));
    let url_side = Side::Env(diff::URL_ENV.to_string());
    if args.source.url.is_some() && left != url_side && right != url_side {
        return Err(Failure::usage(
            "--url names the platform of a side written env:url, and neither side is",
        ));
    }
    let mut opts = DiffOptions::new(left, right);
    opts.overlay = overlay;
    opts.on_unmatched = if args.allow_unmatched {
        OnUnmatched::Warn
    } else {
        OnUnmatched::Refuse
    };
    opts.flows = NameFilter::new(args.flows.iter().cloned());
    opts.include_replaced = args.include_replaced;
    opts.content_only = args.content_only;
    opts.jobs = args.jobs.get();
    opts.plain_http = args.plain_http;
    if [&args.left, &args.right]
        .iter()
        .any(|s| flowpack_action::input::is_reference(s))
    {
        opts.credentials = flowpack_action::publish::Credentials::from_env()?;
    }
    if let Some(out) = &args.output {
        // Refused before any side is read.
        flowpack_core::fsutil::refuse_existing(out, args.force).map_err(Failure::from)?;
    }
    // The environments of env: sides, resolved and opened here as for push, backup and export.
    let mut sources = diff::EnvSources::new(cwd);
    sources.config = args.source.config.clone();
    sources.url = args.source.url.clone();
    sources.log = args
        .verbose
        .then(|| Arc::new(|line: &str| esay!("{line}")) as LogFn);
    opts.environments = diff::open_environments(&[&opts.left, &opts.right], &sources)?;
    // The HTML report draws the changed versions of each changed pair: their graphs (steps
    // and connections only) are taken while the pair is held; no document is kept.
    let graphs: Arc<Mutex<review::Graphs>> = Arc::default();
    if args.format == DiffFormat::Html {
        let graphs = graphs.clone();
        opts.on_changed_pair = Some(Arc::new(move |name, left, right| {
            let g = flowpack_core::graph::compare_versions(left.value(), right.value());
            graphs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(name.to_string())
                .or_default()
                .extend(g);
        }));
    }
    // A bar on a terminal while an environment's flows are exported and compared.
    let bar = (matches!(opts.left, Side::Env(_)) || matches!(opts.right, Side::Env(_)))
        .then(|| crate::output::progress_bar("comparing"))
        .flatten();
    if let Some(bar) = &bar {
        let shown = bar.clone();
        opts.progress = Some(Arc::new(move |done, total| {
            shown.set_length(total as u64);
            shown.set_position(done as u64);
        }));
    }
    let result = diff::run(&opts);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = result?;
    for w in &report.warnings {
        esay!("warning: {w}");
    }
    if report.left.replaced_left_out + report.right.replaced_left_out > 0 {
        esay!("hint: --include-replaced compares flows named \"… (replaced …)\" too");
    }
    let text = match args.format {
        DiffFormat::Json if args.output.is_none() => {
            print_json(&report.content)?;
            None
        }
        DiffFormat::Json => Some(
            serde_json::to_string_pretty(&report.content)
                .map_err(|e| Failure::usage(format!("cannot render the report: {e}")))?
                + "\n",
        ),
        DiffFormat::Human if args.output.is_none() => {
            print_human(&report);
            None
        }
        DiffFormat::Human => {
            return Err(Failure::usage(
                "-o writes --format html, markdown or json; human output goes to stdout",
            ));
        }
        DiffFormat::Html => {
            let graphs = graphs.lock().unwrap_or_else(|e| e.into_inner());
            Some(review::html(&report, &args.left, &args.right, &graphs))
        }
        DiffFormat::Markdown => Some(review::markdown(&report, &args.left, &args.right)),
    };
    if let Some(text) = text {
        match &args.output {
            Some(out) => flowpack_core::fsutil::write_bytes_new(out, text.as_bytes(), args.force)
                .map_err(Failure::from)?,
            None => print!("{text}"),
        }
    }
    Ok(if report.is_same() {
        Verdict::Success
    } else {
        Verdict::Failed
    })
}

fn print_human(report: &DiffReport) {
    for o in &report.overlay {
        for change in &o.changes {
            say!("overlay  {}: {change}", o.flow);
        }
    }
    let (mut added, mut removed, mut changed, mut duplicate, mut same) = (0, 0, 0, 0, 0);
    for flow in &report.content.flows {
        match flow.status {
            FlowStatus::Added => added += 1,
            FlowStatus::Removed => removed += 1,
            FlowStatus::Changed => changed += 1,
            FlowStatus::Duplicate => duplicate += 1,
            _ => same += 1,
        }
        if flow.status == FlowStatus::Duplicate {
            say!(
                "{:<8} {} ({})",
                flow.status.as_str(),
                flow.name,
                ids_text(&flow.ids)
            );
        } else {
            say!("{:<8} {}", flow.status.as_str(), flow.name);
        }
        for c in &flow.changes {
            say!("    {c}");
        }
    }
    let total = report.content.flows.len();
    if report.is_same() {
        say!(
            "same: {} compared, no differences",
            count(total, "flow", "flows")
        );
    } else {
        // Duplicates are named only when there are some (the line keeps its shape otherwise).
        let duplicates = if duplicate > 0 {
            format!("{duplicate} duplicate, ")
        } else {
            String::new()
        };
        say!(
            "different: {changed} changed, {added} added, {removed} removed, {duplicates}{same} \
             the same ({} compared)",
            count(total, "flow", "flows")
        );
    }
    for side in [&report.left, &report.right] {
        if let Some(n) = side.signatures_not_checked {
            say!(
                "signatures not checked: {} ({}; diff checks integrity only, \
                 `flowpack verify --trusted-key` checks signatures)",
                side.label,
                if n == 0 {
                    "unsigned".to_string()
                } else {
                    count(n, "signature", "signatures")
                }
            );
        }
    }
}
