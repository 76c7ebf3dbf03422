//! `flowpack push ARCHIVE --env E [--overlay FILE] [--dry-run] [--on-conflict ...]`

use std::path::PathBuf;

use flowpack_action::error::Remedy;
use flowpack_action::push::{
    self, OnConflict, Outcome as FlowOutcome, Plan, PushOptions, PushReport,
};

use crate::flags::{EnvArgs, HistoryArgs, WaitArgs};
use crate::outcome::{Failure, Outcome, Verdict};
use crate::output::print_json;

/// Output formats of `push`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum PushFormat {
    /// Text for people.
    #[default]
    Human,
    /// One JSON document on stdout.
    Json,
    /// The plan as GitHub-flavoured Markdown for a pull request (with --dry-run only; at most
    /// 65,000 characters).
    Markdown,
}

/// Push an archive's flows into an environment: verify, overlay, plan, import.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  flowpack push release.flowpack --env production --dry-run\n  \
flowpack push release.flowpack --env production --overlay overlays/production.toml --deploy --enable\n\n\
The plan says per flow: create (no flow of that name), unchanged (same content: nothing is \
written), conflict (same name, different content; refused unless --on-conflict skip|duplicate|replace), \
replace (cut over: import the new flow, deploy, recreate the old flow's webhooks and callbacks, \
disable the old flow, enable the new one, rename the old one \"NAME (replaced TIME)\" or delete \
it with --prune-replaced). --deploy and --enable also act on unchanged flows. A push that writes \
is recorded in the history (flowpack history, flowpack rollback).\n\
Exit codes: 0 pushed, 1 refused (not an archive, verification, inputs, conflicts) or a flow \
failed after its retries (the others' outcomes still reported), 2 could not run \
(configuration, authentication, the platform unreachable before any write).",
    disable_version_flag = true
)]
pub struct Args {
    /// The archive, oci://HOST[:PORT]/REPO(:TAG|@sha256:HEX) (pulled, media types and
    /// digests checked, then verified like a file), or s3://BUCKET/KEY (downloaded, then
    /// verified like a file).
    #[arg(value_name = "ARCHIVE")]
    archive: String,
    /// Speak plain HTTP to the registry of an oci:// archive (local test registries only).
    #[arg(long)]
    plain_http: bool,
    /// Overlay keys that match nothing in the archive are warnings, not errors (they always are
    /// for the environment's own overlay).
    #[arg(long)]
    allow_unmatched: bool,
    #[command(flatten)]
    env: EnvArgs,
    /// The overlay (default: the environment's `overlay`).
    #[arg(long, value_name = "FILE")]
    overlay: Option<PathBuf>,
    /// Print the plan, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// What a conflict does.
    #[arg(long, value_enum, default_value_t)]
    on_conflict: OnConflict,
    /// Deploy the version matching the archive's deployed one (else the draft), on imported
    /// and unchanged flows.
    #[arg(long)]
    deploy: bool,
    /// Enable the imported flows (and unchanged ones that are disabled).
    #[arg(long)]
    enable: bool,
    /// Create no webhooks or callbacks from the archive's flow.json (no HMAC secrets needed).
    #[arg(long)]
    no_webhooks: bool,
    /// Also restore each created flow's state from flow.json: deploy the iteration that was
    /// deployed, enable or disable, priority and settings (labels and notification groups only
    /// into the environment the archive came from).
    #[arg(long)]
    restore_state: bool,
    /// With --on-conflict replace: delete the replaced flows instead of renaming them.
    #[arg(long)]
    prune_replaced: bool,
    /// Only the archive's flows of this name (repeatable; `*` and `?` globs, case-sensitive).
    #[arg(long = "flow", value_name = "NAME")]
    flows: Vec<String>,
    #[command(flatten)]
    jobs: crate::flags::JobsArgs,
    #[command(flatten)]
    history: HistoryArgs,
    #[command(flatten)]
    wait: WaitArgs,
    /// Import as marketplace packages.
    #[arg(long)]
    as_marketplace: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: PushFormat,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    trust: crate::flags::EnvTrustArgs,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    if args.format == PushFormat::Markdown && !args.dry_run {
        return Err(Failure::usage(
            "--format markdown shows a plan: it needs --dry-run",
        ));
    }
    // A reference is pulled (registry credentials from the environment) and a file that is no
    // archive refused before the environment is touched.
    let credentials = if flowpack_action::input::is_reference(&args.archive) {
        flowpack_action::publish::Credentials::from_env()?
    } else {
        None
    };
    let source = flowpack_action::input::open_archive_spec(
        &args.archive,
        args.plain_http,
        credentials.as_ref(),
    )?;
    flowpack_action::input::expect_archive(&source.path)?;
    let env = args.env.resolve()?;
    let policy = args.trust.policy(&env)?;
    // The overlay is read and resolved before any request is sent.
    let chosen = crate::flags::overlay(args.overlay.as_deref(), args.allow_unmatched, &env)?;
    // One writer per environment: held until the push ends, however it ends. A dry run writes
    // nothing and takes no lock.
    let _lock = if args.dry_run {
        None
    } else {
        Some(
            args.wait
                .lock(&env, flowpack_action::lock::Mode::Exclusive, "push")?,
        )
    };
    // A history in object storage: its lock in the bucket too, held until the push ends.
    let history = if args.dry_run {
        None
    } else {
        Some(
            args.history
                .open(&args.env, &env, "push", Some(&args.wait))?,
        )
    };
    // Requests are logged with --verbose twice: once lists every flow.
    let conn = args.env.connect_logging_at(&env, 2)?;
    let mut opts = PushOptions::new(
        source.path.clone(),
        conn.platform.clone(),
        crate::clock::now_rfc3339(),
    );
    // A pulled archive is named by the reference pinned to its digest, not the temporary file.
    opts.shown = Some(source.shown.clone());
    opts.policy = policy;
    opts.overlay = chosen.overlay;
    opts.dry_run = args.dry_run;
    opts.on_conflict = args.on_conflict;
    opts.prune_replaced = args.prune_replaced;
    opts.flows = flowpack_core::names::NameFilter::new(args.flows.iter().cloned());
    opts.jobs = args.jobs.get();
    opts.history = history.as_ref().map(|h| h.target.clone());
    opts.deploy = args.deploy;
    opts.enable = args.enable;
    opts.restore.no_webhooks = args.no_webhooks;
    opts.restore.restore_state = args.restore_state;
    opts.restore.target_url = Some(env.location());
    opts.on_unmatched = chosen.on_unmatched;
    opts.as_marketplace = args.as_marketplace;
    opts.export_format = env.export_format;
    let bar = progress(args.quiet, &mut opts);
    let result = push::run(&opts);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = result.map_err(Failure::during(&format!("push to {}", env.name)))?;
    match args.format {
        PushFormat::Json => print_json(&report)?,
        PushFormat::Markdown => print!("{}", crate::review::push_markdown(&report, &env.name)),
        PushFormat::Human => print_human(&report, &env.name, args.env.verbose > 0),
    }
    Ok(Verdict::failed_if(report.failed()))
}

/// The progress bar on stderr (when it is a terminal and not `quiet`): `planning 12/200`, then
/// `pushing 57/200 · 3 replaced · 0 failed`. Finish it with `finish_and_clear`.
fn progress(quiet: bool, opts: &mut PushOptions) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let shown = bar.clone();
    opts.progress = Some(std::sync::Arc::new(move |p: push::PushProgress| {
        shown.set_length(p.total as u64);
        shown.set_position(p.done as u64);
        shown.set_message(match p.phase {
            push::PushPhase::Planning => format!("planning {}/{}", p.done, p.total),
            _ => format!(
                "pushing {}/{} · {} replaced · {} failed",
                p.done, p.total, p.replaced, p.failed
            ),
        });
    }));
    Some(bar)
}

/// The webhooks, callbacks and state restored for one flow (or, `planned`, to be restored by
/// the push a dry run shows), indented under its line; nothing when nothing was.
fn print_restored(r: &flowpack_action::restore::FlowRestoreReport, planned: bool) {
    if let Some(h) = r
        .hooks
        .as_ref()
        .filter(|h| !h.webhooks.is_empty() || !h.callbacks.is_empty())
    {
        let ids: Vec<String> = h.webhooks.iter().map(|w| w.id.to_string()).collect();
        say!(
            "           {} created{}, {} created",
            crate::output::count(h.webhooks.len(), "webhook", "webhooks"),
            if ids.is_empty() {
                String::new()
            } else {
                format!(" (ids {}; point the senders at them)", ids.join(", "))
            },
            crate::output::count(h.callbacks.len(), "callback", "callbacks"),
        );
    }
    if let Some(st) = &r.state {
        say!(
            "           {}{}{}{}",
            if planned {
                "would restore state"
            } else {
                "state restored"
            },
            if st.updated.is_empty() {
                String::new()
            } else {
                format!(" ({})", st.updated.join(", "))
            },
            st.deployed_iteration
                .map(|i| {
                    if planned {
                        format!(", deploy iteration {i}")
                    } else {
                        format!(", iteration {i} deployed")
                    }
                })
                .unwrap_or_default(),
            if st.enabled {
                ", enabled"
            } else {
                ", disabled"
            }
        );
        for n in &st.not_restored {
            say!("           not restored: {n}");
        }
    }
}

/// Whether a flow's line is worth showing without `--verbose`: it changes (or would), failed,
/// or had its state written.
fn changes(f: &push::FlowReport) -> bool {
    f.plan != Plan::Unchanged
        || f.error.is_some()
        || f.deployed_version.is_some()
        || f.enabled
        || f.restored.is_some()
}

/// `Plan: 2 create, 1 replace, 197 unchanged`.
fn plan_summary(report: &PushReport) -> String {
    let mut parts = Vec::new();
    for plan in [
        Plan::Create,
        Plan::Replace,
        Plan::Conflict,
        Plan::Duplicate,
        Plan::Unchanged,
    ] {
        let n = report.flows.iter().filter(|f| f.plan == plan).count();
        if n > 0 {
            parts.push(format!("{n} {}", plan.as_str()));
        }
    }
    if parts.is_empty() {
        parts.push("nothing to push".into());
    }
    format!("Plan: {}", parts.join(", "))
}

/// `2 created, 1 replaced, 197 unchanged, 0 failed`: what the push did.
fn totals(report: &PushReport) -> String {
    let mut parts = Vec::new();
    for outcome in [
        FlowOutcome::Created,
        FlowOutcome::Duplicated,
        FlowOutcome::Replaced,
        FlowOutcome::Unchanged,
        FlowOutcome::Skipped,
        FlowOutcome::RolledBack,
    ] {
        let n = report.flows.iter().filter(|f| f.outcome == outcome).count();
        if n > 0 {
            parts.push(format!("{n} {}", outcome.as_str()));
        }
    }
    let failed = report
        .flows
        .iter()
        .filter(|f| f.outcome == FlowOutcome::Failed)
        .count();
    parts.push(format!("{failed} failed"));
    parts.join(", ")
}

/// The optional inputs the overlay does not supply, of the flows this push imports (an unchanged
/// flow keeps the target's values): one warning, the first few named, a count of flows where
/// many have one.
fn print_inputs_warning(report: &PushReport) {
    const SHOWN: usize = 5;
    let imported: std::collections::BTreeSet<&str> = report
        .flows
        .iter()
        .filter(|f| matches!(f.plan, Plan::Create | Plan::Replace) && f.error.is_none())
        .map(|f| f.name.as_str())
        .collect();
    let relevant: Vec<(&str, Vec<&str>)> = report
        .optional_inputs
        .iter()
        .map(|i| {
            let flows: Vec<&str> = i
                .flows
                .iter()
                .map(String::as_str)
                .filter(|f| imported.contains(f))
                .collect();
            (i.input.as_str(), flows)
        })
        .filter(|(_, flows)| !flows.is_empty())
        .collect();
    if relevant.is_empty() {
        return;
    }
    let described: Vec<String> = relevant
        .iter()
        .take(SHOWN)
        .map(|(input, flows)| match flows.as_slice() {
            [one] => format!("{input} of flow {one:?}"),
            [a, b] => format!("{input} of flows {a:?}, {b:?}"),
            many => format!("{input} of {} flows", many.len()),
        })
        .collect();
    let n = relevant.len();
    esay!(
        "warning: {} not set in the overlay (set them in the target if the flows need them): {}{}",
        crate::output::count(n, "optional input", "optional inputs"),
        described.join("; "),
        if n > SHOWN {
            format!(
                "; and {} more (flowpack push --dry-run --format json lists all)",
                n - SHOWN
            )
        } else {
            String::new()
        }
    );
}

/// The human report: a plan summary, a line per flow that changes (every flow with `verbose`),
/// warnings grouped once, and a closing line with the totals.
pub(crate) fn print_human(report: &PushReport, env: &str, verbose: bool) {
    if !report.signatures_checked {
        esay!(
            "note: signatures were not checked: {env} has no trusted keys (set trusted_keys or pass --trusted-key)"
        );
    }
    for (i, w) in report.warnings.iter().enumerate() {
        if Some(i) != report.inputs_warning {
            esay!("warning: {w}");
        }
    }
    print_inputs_warning(report);
    let shown: std::collections::BTreeSet<&str> = report
        .flows
        .iter()
        .filter(|f| verbose || changes(f))
        .map(|f| f.name.as_str())
        .collect();
    for o in report
        .overlay
        .iter()
        .filter(|o| shown.contains(o.flow.as_str()))
    {
        for change in &o.changes {
            say!("overlay   {}: {change}", o.flow);
        }
    }
    say!("{}", plan_summary(report));
    for f in report.flows.iter().filter(|f| verbose || changes(f)) {
        print_flow(f);
    }
    let failed = report
        .flows
        .iter()
        .filter(|f| f.outcome == FlowOutcome::Failed || f.outcome == FlowOutcome::RolledBack)
        .count();
    if let Some(why) = &report.refused {
        esay!("flowpack: push to {env} refused: {why}; nothing was written");
        if report.flows.iter().any(|f| f.plan == Plan::Conflict)
            && let Some(hint) = crate::outcome::hint(&Remedy::ConflictPolicy)
        {
            esay!("hint: {hint}");
        }
    } else if report.dry_run {
        say!("dry run: nothing was written to {env}");
    } else {
        say!("pushed to {env}: {}", totals(report));
        if failed > 0 {
            esay!(
                "flowpack: push to {env}: {} of {} failed (the others' outcomes are above)",
                failed,
                crate::output::count(report.flows.len(), "flow", "flows")
            );
        }
    }
    if let Some(h) = &report.history {
        say!("recorded in {h} (undo with `flowpack rollback`)");
    }
}

/// One flow's line and what is indented under it.
fn print_flow(f: &push::FlowReport) {
    let word = match f.outcome {
        FlowOutcome::Planned => f.plan.as_str(),
        done => done.as_str(),
    };
    let mut line = format!("{word:<10} {}", f.name);
    match (f.id, f.existing_id) {
        (Some(id), Some(old)) if id != old => {
            line.push_str(&format!(" (id {old} → {id})"));
        }
        (Some(id), _) | (None, Some(id)) => line.push_str(&format!(" (id {id})")),
        (None, None) => {}
    }
    if let Some(v) = f.deployed_version {
        line.push_str(&format!(", deployed version {v}"));
    }
    if f.enabled {
        line.push_str(", enabled");
    }
    if let Some(e) = &f.error {
        line.push_str(&format!(": {e}"));
    }
    say!("{line}");
    if let Some(r) = &f.restored {
        // A replace names its webhooks and callbacks old → new below.
        if f.replaced.is_none() {
            print_restored(r, f.outcome == FlowOutcome::Planned);
        }
    }
    if f.outcome == FlowOutcome::Planned || f.plan == push::Plan::Conflict {
        for c in &f.changes {
            say!("             {c}");
        }
    }
    if let Some(r) = &f.replaced {
        match &r.renamed_to {
            Some(name) => say!(
                "             old flow {} disabled, renamed {name:?}",
                r.old_id
            ),
            None => say!("             old flow {} deleted", r.old_id),
        }
        for w in &r.webhooks {
            say!("             webhook {} → {}", w.old, w.new);
        }
        for c in &r.callbacks {
            say!("             callback {} → {}", c.old, c.new);
        }
        // Webhooks created from flow.json that took over no old one.
        let hooks = f.restored.as_ref().and_then(|x| x.hooks.as_ref());
        for w in hooks.map_or(&[][..], |h| h.webhooks.as_slice()) {
            if !r.webhooks.iter().any(|p| p.new == w.id) {
                say!("             webhook {} created (new)", w.id);
            }
        }
        let created = hooks.is_some_and(|h| !h.webhooks.is_empty());
        if !r.webhooks.is_empty() || created {
            say!(
                "             point the senders at the new flow's webhooks: the old ones no longer run"
            );
        }
    }
}
