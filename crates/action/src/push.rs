//! `push`: an archive into an environment.
//!
//! Order: verify the archive against the trust policy → read the flows chosen with `--flow`
//! (all without it) → check their export format → apply the overlay → check the manifest's
//! inputs (all of this before any request) → list the target's flows once (paged) and plan each
//! flow `create` | `unchanged` | `conflict` | `replace` → refuse on conflicts
//! (`--on-conflict fail`, the default) → write, up to `jobs` flows at a time, the report in
//! archive order.
//!
//! Memory stays bounded whatever the archive holds: no phase keeps the flows' documents. The
//! local check reads, prepares and drops one flow per worker; the plan reads a flow again only
//! when the target has a flow of its name (and holds it, with the live flow's export, while it
//! compares them); the writing phase reads it again to import it. Every read parses within one
//! [`ParseBudget`] shared by the workers (a document near the per-document bound is worked on
//! alone), and every re-read is checked against the SHA-256 of the manifest verified first.
//!
//! `unchanged` means the live flow's export equals what would be imported under the one
//! comparison of export documents ([`flowpack_core::diff`], also behind `flowpack diff`): the
//! archive's document is normalised once and compared with the export of each live flow of
//! that name. A conflict carries the comparison's first [`PLAN_CHANGES`] changes. Live flows
//! whose name ends in ` (replaced yyyymmddThhmmssZ)` are never the target of a plan: they are
//! what earlier replaces left behind.
//!
//! State converges: `--deploy` and `--enable` also act on `unchanged` flows, writing only when
//! the live state differs (the archive's deployed iteration, else the draft, is deployed; the
//! flow is enabled), so a re-push stays a no-op.
//!
//! `--on-conflict replace` is a cut-over, because the API cannot import into an existing flow:
//! import the new flow (it arrives disabled) → deploy the archive's deployed iteration (else
//! the draft) when the old flow had a deployed version or `--deploy` is given → recreate the old
//! flow's webhooks and callbacks on it (the report lists old → new ids: senders must be pointed
//! at the new webhooks) → disable the old flow → enable the new one when the old one was enabled
//! or `--enable` is given → rename the old one `<name> (replaced yyyymmddThhmmssZ)`, or delete
//! it with `--prune-replaced`. The old flow is disabled before the new one is enabled, so a
//! flow never runs twice for one event. A failure before the cut-over deletes the new flow and
//! leaves the old one untouched; a failure after the old flow was disabled deletes the new flow
//! and re-enables the old one (outcome `rolled-back`). Several live flows of the name refuse
//! that flow, naming their ids.
//!
//! A push that writes records what it did in the environment's history ([`crate::history`]):
//! the record is written before the first write and rewritten after each step.
//!
//! Each import carries an `Idempotency-Key`: hex SHA-256 of the manifest's SHA-256, the flow's
//! path, the push's start time and the SHA-256 of the document sent (after the overlay), one per
//! line. A retry within one push reuses it; another push (a `--on-conflict duplicate`, a re-push
//! after the flow was deleted, a different overlay) gets a new one, so the platform's replay of a
//! key never hides a wanted import. Across runs, the plan is what prevents duplicates.
//! After a transport failure (timeout, dropped connection) the flow is looked up by name first:
//! a flow of that name that did not exist before the push is taken as the import's result;
//! otherwise the import is retried (3 attempts in all).
//!
//! Failures: anything found before the first write (verification, formats, inputs, `--flow`
//! patterns matching nothing, conflicts) refuses the whole push ([`PushError::Refused`],
//! rejected); a platform that cannot be reached or does not accept the API key before the first
//! write is [`PushError::Client`] (could not run); a flow whose writes fail after their retries
//! is reported as `failed` (or `rolled-back`) with the other flows' outcomes
//! ([`PushReport::failed`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use flowpack_client::{
    CallbackRequest, ClientError, Flow, FlowId, FlowSettingsUpdate, FlowUpdate, FlowVersion,
    ImportRequest, ListQuery, Platform, WebhookRequest, find_by_name, list_all,
};
use flowpack_core::archive::{
    Archive, ArchiveError, FlowRecord, FlowSettings, Input, InputKind, Limits, PackageKind,
    TrustPolicy,
};
use flowpack_core::budget::{ParseBudget, Permit};
use flowpack_core::diff::{Change, changes, normalise_owned};
use flowpack_core::document::VersionStatus;
use flowpack_core::migrate::{MigrateOptions, Target, migrate};
use flowpack_core::names::NameFilter;
use flowpack_core::overlay::{self, OverlayReport, ResolvedOverlay, describe_input};
use flowpack_core::{Document, DocumentBound, DocumentError, FormatVersion};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Categorize, Category, Remedy, plural};
use crate::history::{self, Entry, HistoryError, HistoryTarget, IdPair, Kind, Record, Replaced};
use crate::input::{InputError, entry_origin, expect_archive, rename_archive};

/// How many changes of a conflict the plan carries.
pub const PLAN_CHANGES: usize = 5;

/// The default number of flows written at once.
pub const DEFAULT_JOBS: usize = 4;

/// What to do with a flow whose name exists in the target with different content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OnConflict {
    /// Refuse the whole push before anything is written.
    #[default]
    Fail,
    /// Leave the existing flow, import nothing for it.
    Skip,
    /// Import anyway (a second flow of that name).
    Duplicate,
    /// Cut over to a newly imported flow (see the module docs).
    Replace,
}

/// How to push.
#[derive(Clone)]
#[non_exhaustive]
pub struct PushOptions {
    /// The archive.
    pub archive: PathBuf,
    /// How reports, errors and the history record name the archive (`None`: its path). An
    /// archive pulled from a registry into a temporary file is named by its reference.
    pub shown: Option<String>,
    /// The target.
    pub platform: Arc<dyn Platform>,
    /// Keys that must have signed it (threshold 0: no signature needed).
    pub policy: TrustPolicy,
    /// The overlay, already resolved.
    pub overlay: Option<ResolvedOverlay>,
    /// Plan only.
    pub dry_run: bool,
    /// What a conflict does.
    pub on_conflict: OnConflict,
    /// Deploy the version matching the archive's deployed one (else the draft), on imported
    /// and unchanged flows.
    pub deploy: bool,
    /// Enable the imported and unchanged flows.
    pub enable: bool,
    /// Delete replaced flows instead of renaming them.
    pub prune_replaced: bool,
    /// Import as marketplace packages (also for archives of kind `marketplace`).
    pub as_marketplace: bool,
    /// The target's export format version.
    pub export_format: u32,
    /// Only the archive's flows matching these names (`*`, `?` globs); empty: all.
    pub flows: NameFilter,
    /// Flows written at once (at least 1).
    pub jobs: usize,
    /// Where the push records itself (`None`: not recorded).
    pub history: Option<HistoryTarget>,
    /// The push's start time (RFC 3339, UTC): `deployed_at`, `enabled_at`, the idempotency
    /// keys, names of replaced flows and the history record's id.
    pub now: String,
    /// What a created flow gets from its `flow.json`: webhooks and callbacks (unless
    /// `no_webhooks`), and its state with `restore_state`.
    pub restore: crate::restore::RestoreOptions,
    /// What overlay keys that match nothing in the archive do: refuse the push (an overlay
    /// given for it), or warn (the environment's own overlay, which serves many archives, or
    /// when asked).
    pub on_unmatched: overlay::OnUnmatched,
}

impl PushOptions {
    /// Pushes `archive` into `platform` at time `now` (RFC 3339): no signature check, no
    /// overlay, conflicts refuse, export format 2, nothing deployed or enabled, every flow,
    /// [`DEFAULT_JOBS`] at once, no history.
    pub fn new(archive: PathBuf, platform: Arc<dyn Platform>, now: String) -> PushOptions {
        PushOptions {
            archive,
            shown: None,
            platform,
            policy: TrustPolicy::default(),
            overlay: None,
            dry_run: false,
            on_conflict: OnConflict::Fail,
            deploy: false,
            enable: false,
            prune_replaced: false,
            as_marketplace: false,
            export_format: 2,
            flows: NameFilter::default(),
            jobs: DEFAULT_JOBS,
            history: None,
            now,
            restore: crate::restore::RestoreOptions::default(),
            on_unmatched: overlay::OnUnmatched::Refuse,
        }
    }
}

/// The plan for one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Plan {
    /// No flow of that name exists.
    Create,
    /// A flow of that name exists with the same content.
    Unchanged,
    /// A flow of that name exists with different content.
    Conflict,
    /// A flow of that name exists with different content and is cut over to a new one.
    Replace,
}

impl Plan {
    /// `create`, `unchanged`, `conflict` or `replace`.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Create => "create",
            Plan::Unchanged => "unchanged",
            Plan::Conflict => "conflict",
            Plan::Replace => "replace",
        }
    }
}

/// What happened to one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Outcome {
    /// Planned only (dry run, or the push was refused).
    Planned,
    /// Imported as a new flow.
    Created,
    /// Imported next to an existing flow of that name (`--on-conflict duplicate`).
    Duplicated,
    /// Cut over to a new flow (`--on-conflict replace`).
    Replaced,
    /// Already there (its state may have been converged, see `deployed_version`, `enabled`).
    Unchanged,
    /// A conflict left alone (`--on-conflict skip`).
    Skipped,
    /// A replace failed after the cut-over began and was undone; see `error`.
    RolledBack,
    /// A request failed; see `error`.
    Failed,
}

impl Outcome {
    /// The outcome as the report's JSON spells it (`planned`, `created`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Planned => "planned",
            Outcome::Created => "created",
            Outcome::Duplicated => "duplicated",
            Outcome::Replaced => "replaced",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped",
            Outcome::RolledBack => "rolled-back",
            Outcome::Failed => "failed",
        }
    }
}

/// What a replace did to the old flow and its hooks.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ReplaceReport {
    /// The old flow.
    pub old_id: FlowId,
    /// Its new name (`None` when it was deleted).
    pub renamed_to: Option<String>,
    /// Whether it was deleted (`--prune-replaced`).
    pub pruned: bool,
    /// Webhooks recreated: old id → new id. Senders must be pointed at the new ones.
    pub webhooks: Vec<IdPair>,
    /// Callbacks recreated: old id → new id.
    pub callbacks: Vec<IdPair>,
}

/// One flow of the report.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct FlowReport {
    /// The flow's name (after the overlay).
    pub name: String,
    /// Its entry in the archive.
    pub path: String,
    /// The plan.
    pub plan: Plan,
    /// What happened.
    pub outcome: Outcome,
    /// The existing flow of that name, if any.
    pub existing_id: Option<FlowId>,
    /// The new flow's id (the existing one's for `unchanged`).
    pub id: Option<FlowId>,
    /// The first changes from the live flow to the archive's (conflicts, replaces).
    pub changes: Vec<Change>,
    /// The version deployed by this push.
    pub deployed_version: Option<u64>,
    /// Whether this push enabled it.
    pub enabled: bool,
    /// What a replace did.
    pub replaced: Option<ReplaceReport>,
    /// Webhooks, callbacks and state restored from `flow.json` (created flows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored: Option<crate::restore::FlowRestoreReport>,
    /// The error, when `outcome` is `failed` or `rolled-back`.
    pub error: Option<String>,
}

/// What a push did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PushReport {
    /// The archive.
    pub archive: String,
    /// `name@version`.
    pub package: String,
    /// A dry run.
    pub dry_run: bool,
    /// Whether signatures were checked (a trust policy with keys).
    pub signatures_checked: bool,
    /// Why nothing was written, when the push was refused after planning (conflicts).
    pub refused: Option<String>,
    /// One entry per flow chosen, in archive order.
    pub flows: Vec<FlowReport>,
    /// What the overlay changed, per flow (secrets masked).
    pub overlay: Vec<OverlayReport>,
    /// Notes: optional inputs the overlay does not supply, webhook secrets to set again, a
    /// history that could not be updated.
    pub warnings: Vec<String>,
    /// The history record written (`None`: nothing was written, or no history).
    pub history: Option<String>,
}

impl PushReport {
    /// Whether any flow failed (or was rolled back) or the push was refused.
    pub fn failed(&self) -> bool {
        self.refused.is_some()
            || self
                .flows
                .iter()
                .any(|f| matches!(f.outcome, Outcome::Failed | Outcome::RolledBack))
    }
}

/// A push refused before anything was sent (exit 1): the archive, its contents or the overlay
/// do not pass the checks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// The archive did not verify against the trust policy.
    #[error("{archive}: refused: the {check} check failed: {detail}; nothing was written")]
    Verification {
        /// The archive.
        archive: String,
        /// The failed check.
        check: String,
        /// Why.
        detail: String,
    },
    /// Required inputs not supplied, or a document in a format the target does not take.
    #[error("{0}; nothing was written")]
    Content(String),
    /// `--flow` patterns that match no flow of the archive.
    #[error(
        "{archive}: {} no flow of the archive (it holds {known}); nothing was written",
        if patterns.len() == 1 { "flow pattern " } else { "flow patterns " }.to_string()
            + &patterns.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().join(", ")
            + if patterns.len() == 1 { " matches" } else { " match" }
    )]
    UnknownFlows {
        /// The archive.
        archive: String,
        /// The patterns.
        patterns: Vec<String>,
        /// The archive's flow names.
        known: String,
    },
}

/// Errors of a push.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The file is not an archive (a document: pack it first), or cannot be read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The archive could not be read safely.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Refused before anything was written.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The platform failed before the first write (authentication, network), or refused the
    /// API key during the push.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The history record could not be written before the first write.
    #[error(transparent)]
    History(#[from] HistoryError),
}

impl Categorize for PushError {
    fn category(&self) -> Category {
        match self {
            PushError::Input(e) => e.category(),
            PushError::Archive(e) => e.category(),
            PushError::Refused(_) => Category::Rejected,
            // Before any write, every platform failure (a 422 on a lookup included) means the
            // push could not run.
            PushError::Client(_) => Category::CouldNotRun,
            PushError::History(_) => Category::CouldNotRun,
        }
    }

    fn remedy(&self) -> Option<Remedy> {
        match self {
            PushError::Input(e) => e.remedy(),
            PushError::Archive(e) => e.remedy(),
            _ => None,
        }
    }
}

/// Whether `name` is what a replace left behind: `<name> (replaced yyyymmddThhmmssZ)`.
pub(crate) fn is_replaced_name(name: &str) -> bool {
    let Some((_, rest)) = name.rsplit_once(" (replaced ") else {
        return false;
    };
    let b = rest.as_bytes();
    b.len() == 17
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && &b[15..] == b"Z)"
}

/// The name a replaced flow gets.
pub(crate) fn replaced_name(name: &str, now: &str) -> String {
    format!("{name} (replaced {})", history::compact_time(now))
}

/// The `Idempotency-Key` of one flow of one push (see the module docs).
pub fn idempotency_key(
    manifest_sha256: &str,
    path: &str,
    started: &str,
    document: &Value,
) -> String {
    let body = serde_json::to_vec(document).expect("a JSON value serialises");
    let mut h = Sha256::new();
    for part in [
        manifest_sha256.as_bytes(),
        path.as_bytes(),
        started.as_bytes(),
    ] {
        h.update(part);
        h.update(b"\n");
    }
    h.update(hex::encode(Sha256::digest(&body)).as_bytes());
    hex::encode(h.finalize())
}

/// A flow chosen for the push: what the later phases need without holding its document.
struct Candidate {
    record: FlowRecord,
    name: String,
    deployed_iteration: Option<i64>,
}

impl Candidate {
    fn path(&self) -> &str {
        &self.record.path
    }
}

/// The live flow a plan compared with (unchanged, replace).
struct LiveFlow {
    flow: Flow,
}

/// The archive, shared by the workers that read its flows again, and the parse budget they
/// share (see [`flowpack_core::budget`]).
struct Source {
    archive: Mutex<Archive>,
    origin: String,
    budget: ParseBudget,
}

/// What the local check found for one flow of the archive: its name, and for a chosen flow
/// either its deployed iteration and overlay report or why it cannot be pushed.
struct Checked {
    name: String,
    chosen: Option<Result<Ready, String>>,
}

/// A chosen flow that passed the local check: its deployed iteration and overlay report.
struct Ready {
    deployed_iteration: Option<i64>,
    overlay: Option<OverlayReport>,
}

/// One flow as it would be imported, with the share of the parse budget it holds.
struct Prepared<'s> {
    document: Document,
    permit: Permit<'s>,
}

impl Source {
    /// Reads `record`'s document again (its SHA-256 checked against the verified manifest) and
    /// parses it within the budget.
    fn read(&self, record: &FlowRecord) -> Result<(Document, Permit<'_>), ArchiveError> {
        self.read_charged(record, 1)
    }

    /// The per-document bound documents are read under.
    fn bound(&self) -> DocumentBound {
        self.archive.lock().expect("no panic").limits().document
    }

    /// [`read`](Source::read), charging the budget `copies` times the document's cost: for a
    /// step that holds that many documents of its size at once (the plan holds the live
    /// flow's export beside the archive's document).
    fn read_charged(
        &self,
        record: &FlowRecord,
        copies: u64,
    ) -> Result<(Document, Permit<'_>), ArchiveError> {
        let (bytes, bound) = {
            let mut archive = self.archive.lock().expect("no panic");
            (archive.flow_bytes(record)?, archive.limits().document)
        };
        let origin = entry_origin(&self.origin, &record.path);
        let cost = bound
            .measure(&bytes)
            .map_err(|reason| DocumentError::Bound {
                path: origin.clone(),
                reason,
            })?;
        let permit = self.budget.acquire(cost.saturating_mul(copies));
        Ok((
            Document::from_slice_bounded(&bytes, &origin, &bound)?,
            permit,
        ))
    }

    /// `record`'s document as it would be imported: migrated to the target's export format
    /// (refused when the migration would lose something) and the overlay applied.
    fn prepare(
        &self,
        opts: &PushOptions,
        record: &FlowRecord,
        name: &str,
        copies: u64,
    ) -> Result<Prepared<'_>, String> {
        let (doc, permit) = self
            .read_charged(record, copies)
            .map_err(|e| e.to_string())?;
        prepare_document(opts, doc, record, name, &self.origin)
            .map(|(document, _overlay)| Prepared { document, permit })
    }
}

/// Migrates `doc` to the target's export format and applies the overlay.
fn prepare_document(
    opts: &PushOptions,
    mut doc: Document,
    record: &FlowRecord,
    name: &str,
    origin: &str,
) -> Result<(Document, Option<OverlayReport>), String> {
    // A migration that would lose something refuses the push before any request, naming the
    // flow and what would be lost.
    if doc.format_version().number() != opts.export_format {
        let mut mopts = MigrateOptions::new(Target::Version(u64::from(opts.export_format)));
        mopts.origin = entry_origin(origin, &record.path);
        doc = migrate(doc, &mopts).map_err(|e| e.to_string())?.document;
        // Send what the platform itself would have exported: no stamp.
        doc.unstamp_format_version();
    }
    let overlay = opts
        .overlay
        .as_ref()
        .map(|o| overlay::apply(&mut doc, name, o));
    Ok((doc, overlay))
}

/// The local check of one flow of the archive (run in parallel, before any request).
fn check_flow(
    source: &Source,
    opts: &PushOptions,
    record: &FlowRecord,
    settings: &BTreeMap<String, FlowSettings>,
    targets: &Mutex<overlay::Targets>,
) -> Result<Checked, PushError> {
    let (doc, _permit) = source.read(record)?;
    let name = doc
        .flow()
        .and_then(|f| f.name())
        .unwrap_or(record.name.as_str())
        .to_string();
    {
        // What the overlay's keys may name: every flow of the archive (chosen or not), as packed.
        let mut targets = targets.lock().expect("no panic");
        targets.add(&doc);
        if let Some(s) = settings.get(&record.path) {
            targets.add_settings(&name, s);
        }
    }
    if !opts.flows.matches(&name) {
        return Ok(Checked { name, chosen: None });
    }
    let chosen =
        prepare_document(opts, doc, record, &name, &source.origin).and_then(|(doc, overlay)| {
            let deployed_iteration = doc.flow().and_then(|f| {
                f.versions()
                    .find(|v| v.status() == Some(VersionStatus::Deployed))
                    .and_then(|v| v.iteration())
            });
            // The comparison migrates to the newest format first; that is the only step of it
            // that can fail, so it is tried here (before any request) when it will be needed.
            if doc.format_version() != FormatVersion::LATEST {
                normalise_owned(doc, &entry_origin(&source.origin, &record.path))
                    .map_err(|e| e.to_string())?;
            }
            Ok(Ready {
                deployed_iteration,
                overlay,
            })
        });
    Ok(Checked {
        name,
        chosen: Some(chosen),
    })
}

/// The one warning of a push about optional inputs the overlay does not supply (`None` when
/// there are none): one line per input, however many flows carry it (naming them all). Systems
/// are left out: one the overlay does not rename keeps its name.
fn input_warning(optional: &[Input], overlay_given: bool) -> Option<String> {
    let mut grouped: Vec<(&Input, Vec<&str>)> = Vec::new();
    for i in optional.iter().filter(|i| i.kind != InputKind::System) {
        match grouped
            .iter_mut()
            .find(|(first, _)| first.kind == i.kind && first.name == i.name)
        {
            Some((_, flows)) if flows.contains(&i.flow.as_str()) => {}
            Some((_, flows)) => flows.push(&i.flow),
            None => grouped.push((i, vec![&i.flow])),
        }
    }
    if grouped.is_empty() {
        return None;
    }
    let mut warning = format!(
        "{} not supplied {}; set in the target after the push if the flows need {}:",
        if grouped.len() == 1 {
            "1 optional input is".to_string()
        } else {
            format!("{} optional inputs are", grouped.len())
        },
        if overlay_given {
            "by the overlay"
        } else {
            "(no overlay given)"
        },
        if grouped.len() == 1 { "it" } else { "them" }
    );
    for (first, flows) in grouped {
        let line = if flows.len() == 1 {
            describe_input(first)
        } else {
            let kind = first.kind.as_str();
            let names: Vec<String> = flows.iter().map(|f| format!("{f:?}")).collect();
            format!("{kind} {:?} of flows {}", first.name, names.join(", "))
        };
        warning.push_str("\n  ");
        warning.push_str(&line);
    }
    Some(warning)
}

/// Pushes an archive (see the module docs).
pub fn run(opts: &PushOptions) -> Result<PushReport, PushError> {
    let origin = opts
        .shown
        .clone()
        .unwrap_or_else(|| opts.archive.display().to_string());
    expect_archive(&opts.archive)?;
    let mut archive = Archive::open(&opts.archive, &Limits::default())
        .map_err(|e| rename_archive(e, &opts.archive, &origin))?
        .named(&origin);
    let verified = archive.verify(&opts.policy);
    if let Some(failed) = verified.first_failure() {
        return Err(Refused::Verification {
            archive: origin,
            check: failed.name.to_string(),
            detail: failed.detail.clone(),
        }
        .into());
    }
    let manifest = archive.manifest()?;
    let settings = crate::restore::archive_settings(&mut archive, &manifest)?;
    let manifest_sha256 = verified.manifest_sha256.clone().unwrap_or_default();
    let as_marketplace = opts.as_marketplace || manifest.package.kind == PackageKind::Marketplace;

    let mut report = PushReport {
        archive: origin.clone(),
        package: format!("{}@{}", manifest.package.name, manifest.package.version),
        dry_run: opts.dry_run,
        signatures_checked: opts.policy.threshold > 0,
        refused: None,
        flows: Vec::new(),
        overlay: Vec::new(),
        warnings: Vec::new(),
        history: None,
    };

    // Everything local first: the flows chosen, formats, overlay, inputs. No parsed document
    // is kept: each worker reads, parses (within the shared parse budget), checks and drops
    // one flow at a time, and later phases read a flow again when they need its content.
    let source = Source {
        archive: Mutex::new(archive),
        origin: origin.clone(),
        budget: ParseBudget::default(),
    };
    let targets = Mutex::new(overlay::Targets::new());
    let checked = parallel(&manifest.flows, opts.jobs, |_, record| {
        check_flow(&source, opts, record, &settings, &targets)
    });
    let mut candidates = Vec::new();
    let mut format_errors = Vec::new();
    let mut all_names = Vec::new();
    for (record, result) in manifest.flows.iter().zip(checked) {
        let Checked { name, chosen } = result?;
        all_names.push(name.clone());
        match chosen {
            None => {}
            Some(Err(e)) => format_errors.push(format!("flow {name:?}: {e}")),
            Some(Ok(Ready {
                deployed_iteration,
                overlay,
            })) => {
                report.overlay.extend(overlay);
                candidates.push(Candidate {
                    record: record.clone(),
                    name,
                    deployed_iteration,
                });
            }
        }
    }
    let targets = targets.into_inner().expect("no panic");
    let unmatched = opts.flows.unmatched(all_names.iter().map(String::as_str));
    if !unmatched.is_empty() {
        let known: Vec<String> = all_names.iter().map(|n| format!("{n:?}")).collect();
        return Err(Refused::UnknownFlows {
            archive: origin,
            patterns: unmatched.into_iter().map(str::to_string).collect(),
            known: known.join(", "),
        }
        .into());
    }
    if !format_errors.is_empty() {
        return Err(Refused::Content(format_errors.join("; ")).into());
    }
    // Every overlay key must match something in the archive: a typo would silently do nothing.
    if let Some(o) = &opts.overlay {
        match overlay::check_unmatched(o.overlay(), &targets, opts.on_unmatched) {
            Ok(found) => report
                .warnings
                .extend(found.iter().map(|u| format!("{}: {u}", o.overlay().origin))),
            Err(e) => return Err(Refused::Content(e.to_string()).into()),
        }
    }
    let inputs: Vec<Input> = manifest
        .inputs
        .iter()
        .filter(|i| opts.flows.matches(&i.flow))
        .cloned()
        .collect();
    let inputs = crate::restore::inputs_to_check(&inputs, opts.restore.no_webhooks);
    match overlay::check_inputs(&inputs, opts.overlay.as_ref()) {
        // A system the overlay does not rename keeps its name: nothing to warn about. Empty
        // credentials and variables do need a value on the target, so they are named.
        Ok(optional) => report
            .warnings
            .extend(input_warning(&optional, opts.overlay.is_some())),
        Err(e) => return Err(Refused::Content(e.to_string()).into()),
    }

    // The plan, from one paged listing of the target.
    let platform = opts.platform.as_ref();
    let live = list_all(
        platform,
        &ListQuery {
            include: Some("versions".into()),
            ..ListQuery::default()
        },
    )?;
    let existing_ids: BTreeSet<FlowId> = live.iter().map(|f| f.id).collect();
    let mut by_name: HashMap<&str, Vec<&Flow>> = HashMap::new();
    for flow in live.iter().filter(|f| !is_replaced_name(&f.name)) {
        by_name.entry(flow.name.as_str()).or_default().push(flow);
    }
    let planned = parallel(&candidates, opts.jobs, |_, c| {
        plan_one(
            platform,
            &source,
            c,
            by_name.get(c.name.as_str()).map_or(&[][..], Vec::as_slice),
            opts,
        )
    });
    let mut lives = Vec::with_capacity(planned.len());
    for p in planned {
        let (flow, live) = p?;
        report.flows.push(flow);
        lives.push(live);
    }
    let conflicts: Vec<&str> = report
        .flows
        .iter()
        .filter(|f| f.plan == Plan::Conflict)
        .map(|f| f.name.as_str())
        .collect();
    if !conflicts.is_empty() && opts.on_conflict == OnConflict::Fail {
        report.refused = Some(format!(
            "{} in the target with different content: {} (a conflict policy is needed: skip, duplicate or replace)",
            if conflicts.len() == 1 {
                "1 flow exists".to_string()
            } else {
                format!("{} exist", plural(conflicts.len(), "flow", "flows"))
            },
            conflicts.join(", ")
        ));
        return Ok(report);
    }
    if opts.dry_run {
        return Ok(report);
    }

    let ctx = Ctx {
        platform,
        opts,
        settings,
        source_url: manifest.source.url.clone(),
        manifest_sha256,
        as_marketplace,
        existing_ids,
        recorder: Recorder::new(opts.history.clone(), &origin, &opts.now),
        warnings: Mutex::new(Vec::new()),
        source: &source,
        ahead: Ahead::new(opts.jobs),
    };
    let work: Vec<(&Candidate, &FlowReport, &Option<LiveFlow>)> = candidates
        .iter()
        .zip(report.flows.iter())
        .zip(lives.iter())
        .map(|((c, f), l)| (c, f, l))
        .collect();
    let imports: Vec<(usize, &Candidate)> = work
        .iter()
        .enumerate()
        .filter(|(_, (_, f, live))| Step::of(f, opts.on_conflict, live.as_ref()).imports())
        .map(|(i, (c, _, _))| (i, *c))
        .collect();
    let done = std::thread::scope(|s| {
        s.spawn(|| ctx.recorder.saver());
        s.spawn(|| ctx.ahead.prepare(&ctx, &imports));
        let done = parallel(&work, opts.jobs, |i, (c, f, live)| {
            let mut f = (*f).clone();
            let unauthenticated = execute(&ctx, i, c, &mut f, live.as_ref());
            (f, unauthenticated)
        });
        // The saver writes the finished record, then the scope ends.
        ctx.recorder.finish();
        done
    });
    let mut unauthenticated = None;
    report.flows = done
        .into_iter()
        .map(|(f, u)| {
            if unauthenticated.is_none() {
                unauthenticated = u;
            }
            f
        })
        .collect();
    report
        .warnings
        .extend(ctx.warnings.into_inner().expect("no panic"));
    if let Some(e) = ctx.recorder.error() {
        report.warnings.push(e);
    }
    report.history = ctx.recorder.path();
    if let Some(e) = unauthenticated {
        return Err(PushError::Client(e));
    }
    Ok(report)
}

/// Runs `f` over `items` on up to `jobs` threads; the results in the items' order.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    f: impl Fn(usize, &T) -> R + Sync,
) -> Vec<R> {
    let jobs = jobs.clamp(1, items.len().max(1));
    if jobs == 1 {
        return items.iter().enumerate().map(|(i, t)| f(i, t)).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(i, item);
                    *slots[i].lock().expect("no panic") = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| m.into_inner().expect("no panic").expect("every item ran"))
        .collect()
}

/// Plans one flow against the live flows of its name: the archive's document is read and
/// prepared again only when live flows of its name exist, and held only while they are compared.
fn plan_one(
    platform: &dyn Platform,
    source: &Source,
    c: &Candidate,
    matches: &[&Flow],
    opts: &PushOptions,
) -> Result<(FlowReport, Option<LiveFlow>), ClientError> {
    let mut report = FlowReport {
        name: c.name.clone(),
        path: c.path().to_string(),
        plan: Plan::Create,
        outcome: Outcome::Planned,
        existing_id: None,
        id: None,
        changes: Vec::new(),
        deployed_version: None,
        enabled: false,
        replaced: None,
        restored: None,
        error: None,
    };
    if matches.is_empty() {
        return Ok((report, None));
    }
    // Charged twice: the live flow's export is held beside it while they are compared.
    let prepared = source.prepare(opts, &c.record, &c.name, 2).and_then(|p| {
        normalise_owned(p.document, &entry_origin(&source.origin, c.path()))
            .map(|n| (n, p.permit))
            .map_err(|e| e.to_string())
    });
    let (normalised, _permit) = match prepared {
        Ok(n) => n,
        Err(e) => {
            report.outcome = Outcome::Failed;
            report.error = Some(e);
            return Ok((report, None));
        }
    };
    let mut first: Option<(Flow, Vec<Change>)> = None;
    for flow in matches {
        let document = platform.export_flow_bytes(flow.id)?;
        let shown = format!("flow {} ({:?}) of the target", flow.id, flow.name);
        // Under the same per-document bound as the archive's documents.
        let live = Document::from_slice_bounded(&document, &shown, &source.bound())
            .map_err(|e| e.to_string())
            .and_then(|d| normalise_owned(d, &shown).map_err(|e| e.to_string()))
            .map_err(|message| ClientError::Decode {
                request: format!("POST /api/v1/flows/export (flow {})", flow.id),
                message,
            })?;
        let found = changes(&live, &normalised);
        if found.is_empty() {
            report.plan = Plan::Unchanged;
            report.existing_id = Some(flow.id);
            return Ok((
                report,
                Some(LiveFlow {
                    flow: (*flow).clone(),
                }),
            ));
        }
        if first.is_none() {
            first = Some(((*flow).clone(), found));
        }
    }
    let Some((flow, found)) = first else {
        return Ok((report, None));
    };
    report.existing_id = Some(flow.id);
    report.changes = found.into_iter().take(PLAN_CHANGES).collect();
    if opts.on_conflict != OnConflict::Replace {
        report.plan = Plan::Conflict;
        return Ok((report, None));
    }
    report.plan = Plan::Replace;
    if matches.len() > 1 {
        let ids: Vec<String> = matches.iter().map(|f| f.id.to_string()).collect();
        report.outcome = Outcome::Failed;
        report.error = Some(format!(
            "{} flows named {:?} exist in the target (ids {}): replace needs exactly one; rename or delete the others",
            matches.len(),
            c.name,
            ids.join(", ")
        ));
        return Ok((report, None));
    }
    Ok((report, Some(LiveFlow { flow })))
}

/// What the writing phase shares.
struct Ctx<'a> {
    platform: &'a dyn Platform,
    opts: &'a PushOptions,
    /// The flows' `flow.json`, by the export document's entry path.
    settings: BTreeMap<String, FlowSettings>,
    /// Where the archive came from (labels and notification groups restore only there).
    source_url: String,
    manifest_sha256: String,
    as_marketplace: bool,
    existing_ids: BTreeSet<FlowId>,
    recorder: Recorder,
    warnings: Mutex<Vec<String>>,
    /// The archive, read again for each flow imported.
    source: &'a Source,
    /// Imports prepared ahead of the writers.
    ahead: Ahead<'a>,
}

/// What the writing phase does with one flow, from its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The plan already failed.
    Fail,
    /// Unchanged: converge its state.
    Converge,
    /// A conflict skipped.
    Skip,
    /// The cut-over.
    Replace,
    /// Imported as new (`create`, `duplicate`).
    Create,
}

impl Step {
    fn of(f: &FlowReport, on_conflict: OnConflict, live: Option<&LiveFlow>) -> Step {
        if f.error.is_some() {
            return Step::Fail;
        }
        match (f.plan, on_conflict, live) {
            (Plan::Unchanged, _, Some(_)) => Step::Converge,
            (Plan::Conflict, OnConflict::Skip, _) => Step::Skip,
            (Plan::Replace, _, Some(_)) => Step::Replace,
            _ => Step::Create,
        }
    }

    fn imports(self) -> bool {
        matches!(self, Step::Replace | Step::Create)
    }
}

/// An import request ready to send, with the share of the parse budget it holds.
type PreparedImport<'s> = Result<(ImportRequest, Permit<'s>), StepError>;

/// Import requests prepared ahead of the writers by one thread ([`Ahead::prepare`]), so reading,
/// parsing and serialising a flow overlaps the requests in flight instead of adding to each.
/// The preparer runs at most `lookahead` flows ahead of the writers (and within the parse
/// budget); each writer first marks its flow started, then takes the flow's prepared import
/// before any step that could fail, so every prepared import is taken and its share freed.
struct Ahead<'s> {
    state: Mutex<AheadState<'s>>,
    changed: std::sync::Condvar,
    lookahead: usize,
}

struct AheadState<'s> {
    ready: BTreeMap<usize, PreparedImport<'s>>,
    /// The writers have started every flow before this index.
    started: usize,
}

impl<'s> Ahead<'s> {
    fn new(lookahead: usize) -> Ahead<'s> {
        Ahead {
            state: Mutex::new(AheadState {
                ready: BTreeMap::new(),
                started: 0,
            }),
            changed: std::sync::Condvar::new(),
            lookahead: lookahead.max(1),
        }
    }

    /// Prepares the imports of `items` (work index, candidate), in index order.
    fn prepare(&self, ctx: &Ctx<'s>, items: &[(usize, &Candidate)]) {
        for &(i, c) in items {
            {
                let mut state = self.state.lock().expect("no panic");
                while i >= state.started + self.lookahead {
                    state = self.changed.wait(state).expect("no panic");
                }
            }
            let prepared = import_request(ctx, c);
            self.state
                .lock()
                .expect("no panic")
                .ready
                .insert(i, prepared);
            self.changed.notify_all();
        }
    }

    /// Marks flow `i` started: the preparer may run ahead of it.
    fn start(&self, i: usize) {
        let mut state = self.state.lock().expect("no panic");
        state.started = state.started.max(i + 1);
        drop(state);
        self.changed.notify_all();
    }

    /// Flow `i`'s prepared import, waiting for it.
    fn take(&self, i: usize) -> PreparedImport<'s> {
        let mut state = self.state.lock().expect("no panic");
        loop {
            if let Some(prepared) = state.ready.remove(&i) {
                return prepared;
            }
            state = self.changed.wait(state).expect("no panic");
        }
    }
}

/// The push's history record, created (and saved) before the first write and saved again after
/// each step. Saves do not hold up the flows: the workers change the record in memory and wake
/// one saver thread ([`Recorder::saver`]), which writes the newest state (serialised under the
/// lock, written outside it, atomically) until [`Recorder::finish`] has been saved. Steps that
/// finish during a save are written by the next one, so the file trails the work by at most one
/// save; a record is never copied whole.
struct Recorder {
    target: Option<HistoryTarget>,
    archive: String,
    now: String,
    state: Mutex<RecorderState>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct RecorderState {
    record: Option<Record>,
    path: Option<PathBuf>,
    error: Option<String>,
    dirty: bool,
    finished: bool,
}

impl Recorder {
    fn new(target: Option<HistoryTarget>, archive: &str, now: &str) -> Recorder {
        Recorder {
            target,
            archive: archive.to_string(),
            now: now.to_string(),
            state: Mutex::new(RecorderState::default()),
            changed: std::sync::Condvar::new(),
        }
    }

    /// Applies `f` to the record (created and saved on first use, by the calling thread: no
    /// write happens before the record exists) and marks it for the saver. An error creating
    /// the record stops the write it was to precede.
    fn update<R>(&self, f: impl FnOnce(&mut Record) -> R) -> Result<Option<R>, String> {
        let Some(target) = &self.target else {
            return Ok(None);
        };
        let mut state = self.state.lock().expect("no panic");
        if state.record.is_none() {
            let mut record = Record::new(target, Kind::Push, &self.now)
                .map_err(|e| format!("history: {e}; nothing was written for this flow"))?;
            record.archive = Some(self.archive.clone());
            let path = record
                .save(&target.dir)
                .map_err(|e| format!("history: {e}; nothing was written for this flow"))?;
            state.path = Some(path);
            state.record = Some(record);
        }
        let r = f(state.record.as_mut().expect("created above"));
        state.dirty = true;
        drop(state);
        self.changed.notify_one();
        Ok(Some(r))
    }

    /// The saver: writes the record each time it changed, until it is finished and saved. Run
    /// on its own thread for the writing phase; returns at once without a history target.
    fn saver(&self) {
        let Some(target) = &self.target else { return };
        let mut state = self.state.lock().expect("no panic");
        loop {
            while !state.dirty && !state.finished {
                state = self.changed.wait(state).expect("no panic");
            }
            if !state.dirty {
                return;
            }
            state.dirty = false;
            let Some(record) = &state.record else {
                continue;
            };
            let (id, bytes) = (record.id.clone(), record.to_bytes());
            drop(state);
            let saved = Record::write(&target.dir, &id, &bytes);
            state = self.state.lock().expect("no panic");
            if let Err(e) = saved {
                state
                    .error
                    .get_or_insert_with(|| format!("the history record could not be updated: {e}"));
            }
        }
    }

    /// Makes sure the record exists (before a write).
    fn begin(&self) -> Result<(), String> {
        self.update(|_| ()).map(|_| ())
    }

    /// Adds an entry; its index.
    fn add(&self, entry: Entry) -> Result<Option<usize>, String> {
        self.update(|r| {
            r.entries.push(entry);
            r.entries.len() - 1
        })
    }

    /// Changes the replace recorded at `index`.
    fn replaced(&self, index: Option<usize>, f: impl FnOnce(&mut Replaced)) {
        let Some(index) = index else { return };
        // The record exists (an entry was added), so only a failed save can happen here, and
        // it is kept for the report.
        let _ = self.update(|r| {
            if let Some(Entry::Replaced(rep)) = r.entries.get_mut(index) {
                f(rep);
            }
        });
    }

    /// Marks the record complete (when there is one) and lets the saver stop after saving it;
    /// every flow is done, so this save is the last.
    fn finish(&self) {
        let mut state = self.state.lock().expect("no panic");
        if let Some(record) = state.record.as_mut() {
            record.complete = true;
            state.dirty = true;
        }
        state.finished = true;
        drop(state);
        self.changed.notify_all();
    }

    fn error(&self) -> Option<String> {
        self.state.lock().expect("no panic").error.clone()
    }

    fn path(&self) -> Option<String> {
        let state = self.state.lock().expect("no panic");
        state.path.as_ref().map(|p| p.display().to_string())
    }
}

/// Why one flow's writes stopped.
enum StepError {
    Client(ClientError),
    History(String),
    Restore(String),
    /// The archive's flow could not be read again (changed on disk since it was verified).
    Local(String),
}

impl From<ClientError> for StepError {
    fn from(e: ClientError) -> StepError {
        StepError::Client(e)
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::Client(e) => e.fmt(f),
            StepError::History(e) | StepError::Restore(e) | StepError::Local(e) => f.write_str(e),
        }
    }
}

/// Writes one flow as planned; returns an authentication failure (which stops the push).
fn execute(
    ctx: &Ctx<'_>,
    index: usize,
    c: &Candidate,
    f: &mut FlowReport,
    live: Option<&LiveFlow>,
) -> Option<ClientError> {
    let step = Step::of(f, ctx.opts.on_conflict, live);
    ctx.ahead.start(index);
    // Taken first, whatever happens next: a prepared import left behind would keep its share
    // of the parse budget.
    let prepared = step.imports().then(|| ctx.ahead.take(index));
    let result = match (step, live, prepared) {
        (Step::Fail, _, _) => {
            f.outcome = Outcome::Failed;
            return None;
        }
        (Step::Converge, Some(live), _) => {
            f.outcome = Outcome::Unchanged;
            f.id = f.existing_id;
            converge(ctx, c, f, live)
        }
        (Step::Skip, _, _) => {
            f.outcome = Outcome::Skipped;
            Ok(())
        }
        (Step::Replace, Some(live), Some(prepared)) => replace(ctx, c, f, live, prepared),
        (_, _, Some(prepared)) => create(ctx, c, f, prepared),
        (step, _, None) => unreachable!("{step:?} needs no import"),
    };
    match result {
        Ok(()) => None,
        Err(e) => {
            if f.outcome != Outcome::RolledBack {
                f.outcome = Outcome::Failed;
            }
            if f.error.is_none() {
                f.error = Some(e.to_string());
            }
            match e {
                StepError::Client(ClientError::Unauthenticated { request }) => {
                    Some(ClientError::Unauthenticated { request })
                }
                _ => None,
            }
        }
    }
}

/// Imports a flow as new (`create`, `duplicate`), then deploys and enables it as asked.
fn create<'s>(
    ctx: &Ctx<'s>,
    c: &Candidate,
    f: &mut FlowReport,
    prepared: PreparedImport<'s>,
) -> Result<(), StepError> {
    ctx.recorder.begin().map_err(StepError::History)?;
    let flow = {
        let (request, _permit) = prepared?;
        import_one(ctx.platform, &request, &c.name, &ctx.existing_ids)?
    };
    f.id = Some(flow.id);
    ctx.recorder
        .add(Entry::Created {
            id: flow.id,
            name: c.name.clone(),
        })
        .map_err(StepError::History)?;
    let versions = versions_of(ctx.platform, &flow)?;
    if ctx.opts.deploy
        && let Some(v) = deploy_target(&versions, c.deployed_iteration)
    {
        ctx.platform.deploy_version(flow.id, v.id, &ctx.opts.now)?;
        f.deployed_version = Some(v.id);
    }
    if ctx.opts.enable {
        set_enabled(ctx.platform, flow.id, Some(ctx.opts.now.clone()))?;
        f.enabled = true;
    }
    // Webhooks, callbacks and state from flow.json; a failure leaves the flow created but not
    // completely restored, and says so.
    f.restored = crate::restore::restore_flow(
        ctx.platform,
        flow.id,
        &c.name,
        ctx.settings.get(c.path()),
        ctx.opts.overlay.as_ref(),
        &ctx.source_url,
        &ctx.opts.restore,
        &ctx.opts.now,
    )
    .map_err(|e| StepError::Restore(e.to_string()))?;
    f.outcome = if f.plan == Plan::Conflict {
        Outcome::Duplicated
    } else {
        Outcome::Created
    };
    Ok(())
}

/// Brings an unchanged flow's state to what `--deploy`/`--enable` ask, writing only what
/// differs.
fn converge(
    ctx: &Ctx<'_>,
    c: &Candidate,
    f: &mut FlowReport,
    live: &LiveFlow,
) -> Result<(), StepError> {
    let opts = ctx.opts;
    if !opts.deploy && !opts.enable {
        return Ok(());
    }
    let flow = &live.flow;
    let versions = versions_of(ctx.platform, flow)?;
    let deployed_before = versions.iter().find(|v| v.is_deployed).map(|v| v.iteration);
    let deploy = if opts.deploy {
        deploy_target(&versions, c.deployed_iteration).filter(|v| !v.is_deployed)
    } else {
        None
    };
    let enable = opts.enable && flow.enabled_at.is_none();
    if deploy.is_none() && !enable {
        return Ok(());
    }
    ctx.recorder
        .add(Entry::State {
            id: flow.id,
            name: c.name.clone(),
            enabled_at_before: flow.enabled_at.clone(),
            enabled_changed: enable,
            deployed_before,
            deployed_changed: deploy.is_some(),
        })
        .map_err(StepError::History)?;
    if let Some(v) = deploy {
        ctx.platform.deploy_version(flow.id, v.id, &opts.now)?;
        f.deployed_version = Some(v.id);
    }
    if enable {
        set_enabled(ctx.platform, flow.id, Some(opts.now.clone()))?;
        f.enabled = true;
    }
    Ok(())
}

/// The cut-over of one flow (see the module docs).
fn replace<'s>(
    ctx: &Ctx<'s>,
    c: &Candidate,
    f: &mut FlowReport,
    live: &LiveFlow,
    prepared: PreparedImport<'s>,
) -> Result<(), StepError> {
    let p = ctx.platform;
    let opts = ctx.opts;
    let old = &live.flow;
    // Reads first: a failure here writes nothing. The old flow's export is read now (not kept
    // from the plan) for the history record: what rollback re-imports is the flow as it was
    // at the cut-over.
    let (request, _permit) = prepared?;
    let old_document = p.export_flow(old.id)?;
    let old_versions = versions_of(p, old)?;
    let old_deployed = old_versions
        .iter()
        .find(|v| v.is_deployed)
        .map(|v| v.iteration);
    let webhooks = p.list_webhooks(old.id)?;
    let callbacks = p.list_callbacks(old.id)?;
    let old_enabled = old.enabled_at.is_some();
    let index = ctx
        .recorder
        .add(Entry::Replaced(Box::new(Replaced {
            name: c.name.clone(),
            old_id: old.id,
            old_enabled_at: old.enabled_at.clone(),
            old_deployed_iteration: old_deployed,
            old_document,
            old_webhooks: webhooks.clone(),
            old_callbacks: callbacks.clone(),
            new_id: None,
            webhooks: Vec::new(),
            callbacks: Vec::new(),
            old_disabled: false,
            renamed_to: None,
            pruned: false,
        })))
        .map_err(StepError::History)?;

    // 1. The new flow, disabled.
    let new = match import_one(p, &request, &c.name, &ctx.existing_ids) {
        Ok(new) => new,
        Err(e) => {
            f.error = Some(format!(
                "{e}; before the cut-over: the old flow {} is untouched",
                old.id
            ));
            return Err(StepError::Client(e));
        }
    };
    f.id = Some(new.id);
    ctx.recorder.replaced(index, |r| r.new_id = Some(new.id));
    let mut rep = ReplaceReport {
        old_id: old.id,
        renamed_to: None,
        pruned: false,
        webhooks: Vec::new(),
        callbacks: Vec::new(),
    };

    // 2. Deploy, 3. webhooks and callbacks: from the archive's flow.json when it has one, else
    // the old flow's; never both, and none with --no-webhooks.
    let from_archive = ctx.settings.get(c.path());
    let (webhooks, callbacks) = if opts.restore.no_webhooks || from_archive.is_some() {
        (Vec::new(), Vec::new())
    } else {
        (webhooks, callbacks)
    };
    let prepared = (|| -> Result<(), StepError> {
        if old_deployed.is_some() || opts.deploy {
            let versions = versions_of(p, &new)?;
            if let Some(v) = deploy_target(&versions, c.deployed_iteration) {
                p.deploy_version(new.id, v.id, &opts.now)?;
                f.deployed_version = Some(v.id);
            }
        }
        for w in &webhooks {
            let created = p.create_webhook(
                new.id,
                &WebhookRequest {
                    status: Some(w.status.clone()),
                    format: Some(w.format.clone()),
                    body: Some(w.body.clone()),
                    ..WebhookRequest::default()
                },
            )?;
            let pair = IdPair {
                old: w.id,
                new: created.id,
            };
            rep.webhooks.push(pair);
            ctx.recorder.replaced(index, |r| r.webhooks.push(pair));
            if w.hmac_algorithm.is_some() {
                p.update_webhook(
                    new.id,
                    created.id,
                    &WebhookRequest {
                        hmac_algorithm: Some(w.hmac_algorithm.clone()),
                        ..WebhookRequest::default()
                    },
                )?;
            }
            if w.has_hmac_secret_key {
                ctx.warnings.lock().expect("no panic").push(format!(
                    "flow {:?}: webhook {} (was {}) needs its HMAC secret key set again: secrets cannot be read back",
                    c.name, created.id, w.id
                ));
            }
        }
        for cb in &callbacks {
            let created = p.create_callback(
                new.id,
                &CallbackRequest {
                    status: Some(cb.status.clone()),
                    format: Some(cb.format.clone()),
                },
            )?;
            let pair = IdPair {
                old: cb.id,
                new: created.id,
            };
            rep.callbacks.push(pair);
            ctx.recorder.replaced(index, |r| r.callbacks.push(pair));
        }
        if let Some(settings) = from_archive.filter(|_| !opts.restore.no_webhooks) {
            let secrets =
                crate::restore::webhook_secrets_for(&c.name, settings, opts.overlay.as_ref());
            let hooks = crate::restore::create_hooks(p, new.id, settings, &secrets)
                .map_err(|e| StepError::Restore(e.to_string()))?;
            f.restored = Some(crate::restore::FlowRestoreReport::hooks_only(hooks));
        }
        Ok(())
    })();
    if let Err(e) = prepared {
        f.deployed_version = None;
        let cleanup = delete_if_present(p, new.id);
        if cleanup.is_ok() {
            ctx.recorder.replaced(index, |r| {
                r.new_id = None;
                r.webhooks.clear();
                r.callbacks.clear();
            });
        }
        f.error = Some(match cleanup {
            Ok(()) => format!(
                "{e}; before the cut-over: the new flow {} was deleted, the old flow {} is untouched",
                new.id, old.id
            ),
            Err(d) => format!(
                "{e}; before the cut-over: deleting the new flow {} failed too ({d}): `flowpack rollback` removes it; the old flow {} is untouched",
                new.id, old.id
            ),
        });
        return Err(e);
    }

    // The cut-over: disable old → enable new → rename (or delete) old.
    let mut old_disabled = false;
    let cut = (|| -> Result<(), ClientError> {
        if old_enabled {
            set_enabled(p, old.id, None)?;
            old_disabled = true;
            ctx.recorder.replaced(index, |r| r.old_disabled = true);
        }
        if old_enabled || opts.enable {
            set_enabled(p, new.id, Some(opts.now.clone()))?;
            f.enabled = true;
        }
        if opts.prune_replaced {
            p.delete_flow(old.id)?;
            rep.pruned = true;
            ctx.recorder.replaced(index, |r| r.pruned = true);
        } else {
            let name = replaced_name(&c.name, &opts.now);
            p.update_flow_settings(
                old.id,
                &FlowSettingsUpdate {
                    name: Some(name.clone()),
                    ..FlowSettingsUpdate::default()
                },
            )?;
            rep.renamed_to = Some(name.clone());
            ctx.recorder.replaced(index, |r| r.renamed_to = Some(name));
        }
        Ok(())
    })();
    if let Err(e) = cut {
        // Undo: the new flow goes first (disable before enable), then the old one is enabled
        // again.
        f.enabled = false;
        f.deployed_version = None;
        let mut undo = delete_if_present(p, new.id).map(|()| {
            ctx.recorder.replaced(index, |r| {
                r.new_id = None;
                r.webhooks.clear();
                r.callbacks.clear();
            });
        });
        if undo.is_ok() && old_disabled {
            undo = set_enabled(p, old.id, old.enabled_at.clone())
                .map(|()| ctx.recorder.replaced(index, |r| r.old_disabled = false));
        }
        f.error = Some(match undo {
            Ok(()) => {
                f.outcome = Outcome::RolledBack;
                format!(
                    "{e}; the cut-over was undone: the new flow {} was deleted{}",
                    new.id,
                    if old_disabled {
                        format!(" and the old flow {} enabled again", old.id)
                    } else {
                        format!(", the old flow {} is as it was", old.id)
                    }
                )
            }
            Err(u) => format!(
                "{e}; undoing the cut-over failed too ({u}): run `flowpack rollback` to finish it"
            ),
        });
        return Err(StepError::Client(e));
    }
    f.replaced = Some(rep);
    f.outcome = Outcome::Replaced;
    Ok(())
}

/// The import of `c`: its document read and prepared again, with the share of the parse budget
/// it holds until the request is dropped.
fn import_request<'s>(
    ctx: &Ctx<'s>,
    c: &Candidate,
) -> Result<(ImportRequest, Permit<'s>), StepError> {
    let prepared = ctx
        .source
        .prepare(ctx.opts, &c.record, &c.name, 1)
        .map_err(StepError::Local)?;
    let document = prepared.document.into_value();
    let key = idempotency_key(&ctx.manifest_sha256, c.path(), &ctx.opts.now, &document);
    Ok((
        ImportRequest {
            document,
            as_marketplace: ctx.as_marketplace,
            idempotency_key: Some(key),
        },
        prepared.permit,
    ))
}

/// A flow's versions: from the flow when it came with them, else listed.
pub(crate) fn versions_of(
    platform: &dyn Platform,
    flow: &Flow,
) -> Result<Vec<FlowVersion>, ClientError> {
    match &flow.versions {
        Some(v) if !v.is_empty() => Ok(v.clone()),
        _ => platform.list_versions(flow.id),
    }
}

/// The version to deploy: the archive's deployed iteration, else the draft.
fn deploy_target(versions: &[FlowVersion], iteration: Option<i64>) -> Option<&FlowVersion> {
    iteration
        .and_then(|it| versions.iter().find(|v| v.iteration == it))
        .or_else(|| versions.iter().find(|v| v.status == "Draft"))
}

/// Enables (`Some(time)`) or disables (`None`) a flow.
pub(crate) fn set_enabled(
    platform: &dyn Platform,
    flow: FlowId,
    enabled_at: Option<String>,
) -> Result<(), ClientError> {
    platform
        .update_flow(
            flow,
            &FlowUpdate {
                enabled_at: Some(enabled_at),
                priority: None,
            },
        )
        .map(|_| ())
}

/// Deletes a flow; one already gone is fine.
pub(crate) fn delete_if_present(platform: &dyn Platform, flow: FlowId) -> Result<(), ClientError> {
    match platform.delete_flow(flow) {
        Ok(()) | Err(ClientError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Imports one flow; after a transport failure, takes a flow of that name that appeared since
/// the plan, else retries.
fn import_one(
    platform: &dyn Platform,
    request: &ImportRequest,
    name: &str,
    existing: &BTreeSet<FlowId>,
) -> Result<Flow, ClientError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match platform.import_flow(request) {
            Err(ClientError::Transport { .. }) if attempt < 3 => {
                if let Ok(found) = find_by_name(platform, name)
                    && let Some(landed) = found.into_iter().find(|f| !existing.contains(&f.id))
                {
                    return platform.show_flow(landed.id);
                }
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(flow: &str, kind: InputKind, name: &str) -> Input {
        Input::new(flow, kind, name, false)
    }

    #[test]
    fn inputs_missing_from_the_overlay_are_one_warning_per_push() {
        let warning = input_warning(
            &[
                input("A", InputKind::Variable, "REGION"),
                input("B", InputKind::Variable, "REGION"),
                input("B", InputKind::System, "Shopify"),
                input("B", InputKind::Credential, "Shopify/key/token"),
            ],
            true,
        );
        assert_eq!(
            warning.as_deref(),
            Some(
                "2 optional inputs are not supplied by the overlay; set in the target after the push if the flows need them:\n  \
                 variable \"REGION\" of flows \"A\", \"B\"\n  \
                 credential [secrets.\"Shopify\".\"key\"].token of flow \"B\""
            )
        );
        assert_eq!(
            input_warning(&[input("A", InputKind::System, "Shopify")], true),
            None
        );
        assert!(
            input_warning(&[input("A", InputKind::Variable, "X")], true)
                .unwrap()
                .starts_with("1 optional input is not supplied by the overlay; set in the target after the push if the flows need it:")
        );
    }

    #[test]
    fn names_left_by_a_replace_are_recognised() {
        let name = replaced_name("Orders", "2026-11-29T12:00:00Z");
        assert_eq!(name, "Orders (replaced 20261129T120000Z)");
        assert!(is_replaced_name(&name));
        assert!(!is_replaced_name("Orders"));
        assert!(!is_replaced_name("Orders (replaced yesterday)"));
        assert!(!is_replaced_name("Orders (replaced 20261129T120000Z) 2"));
    }

    #[test]
    fn idempotency_key_depends_on_archive_path_run_and_content() {
        let doc = serde_json::json!({"flow": {"name": "A"}});
        let t = "2026-01-01T00:00:00Z";
        let a = idempotency_key("abc", "flows/a/export.json", t, &doc);
        assert_eq!(a.len(), 64);
        assert_eq!(a, idempotency_key("abc", "flows/a/export.json", t, &doc));
        assert_ne!(a, idempotency_key("abd", "flows/a/export.json", t, &doc));
        assert_ne!(a, idempotency_key("abc", "flows/b/export.json", t, &doc));
        assert_ne!(
            a,
            idempotency_key("abc", "flows/a/export.json", "2026-01-01T00:00:01Z", &doc)
        );
        let other = serde_json::json!({"flow": {"name": "B"}});
        assert_ne!(a, idempotency_key("abc", "flows/a/export.json", t, &other));
    }

    /// A platform whose first import fails with a timeout, having landed (`land`) or not.
    struct LandsThenTimesOut {
        flows: std::sync::Mutex<Vec<Flow>>,
        imports: std::sync::atomic::AtomicU32,
        land: bool,
    }

    fn flow(id: FlowId, name: &str) -> Flow {
        Flow {
            id,
            name: name.into(),
            description: None,
            enabled_at: None,
            priority: None,
            created_at: None,
            updated_at: None,
            versions: None,
        }
    }

    impl Platform for LandsThenTimesOut {
        fn list_flows(
            &self,
            query: &flowpack_client::ListQuery,
        ) -> Result<flowpack_client::Page<Flow>, ClientError> {
            let data: Vec<Flow> = self
                .flows
                .lock()
                .unwrap()
                .iter()
                .filter(|f| {
                    query
                        .name
                        .as_ref()
                        .is_none_or(|n| f.name.contains(n.as_str()))
                })
                .cloned()
                .collect();
            let total = data.len() as u64;
            Ok(flowpack_client::Page {
                data,
                meta: flowpack_client::PageMeta {
                    current_page: 1,
                    last_page: 1,
                    per_page: 100,
                    total,
                },
            })
        }
        fn show_flow(&self, id: FlowId) -> Result<Flow, ClientError> {
            let flows = self.flows.lock().unwrap();
            Ok(flows.iter().find(|f| f.id == id).cloned().unwrap())
        }
        fn export_flow(&self, _: FlowId) -> Result<Value, ClientError> {
            unreachable!("not used by import_one")
        }
        fn import_flow(&self, _: &ImportRequest) -> Result<Flow, ClientError> {
            let n = self
                .imports
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n == 0 {
                if self.land {
                    self.flows.lock().unwrap().push(flow(2, "Orders"));
                }
                return Err(ClientError::Transport {
                    request: "POST /api/v1/flows/import".into(),
                    attempts: 1,
                    message: "timed out".into(),
                });
            }
            let f = flow(3, "Orders");
            self.flows.lock().unwrap().push(f.clone());
            Ok(f)
        }
        fn list_versions(
            &self,
            _: FlowId,
        ) -> Result<Vec<flowpack_client::FlowVersion>, ClientError> {
            Ok(Vec::new())
        }
        fn deploy_version(
            &self,
            _: FlowId,
            _: flowpack_client::VersionId,
            _: &str,
        ) -> Result<flowpack_client::FlowVersion, ClientError> {
            unreachable!("not used by import_one")
        }
        fn update_flow(&self, _: FlowId, _: &FlowUpdate) -> Result<Flow, ClientError> {
            unreachable!("not used by import_one")
        }
        fn delete_flow(&self, _: FlowId) -> Result<(), ClientError> {
            unreachable!("not used by import_one")
        }
    }

    fn request() -> ImportRequest {
        ImportRequest {
            document: serde_json::json!({}),
            as_marketplace: false,
            idempotency_key: Some("k".into()),
        }
    }

    /// The embedded sandbox, with imports of one flow failing (HTTP 500 after the retries) or
    /// every request refused as unauthenticated.
    struct Faulty {
        inner: flowpack_sandbox::Store,
        fail_import_of: Option<&'static str>,
        unauthenticated: bool,
        imports: std::sync::atomic::AtomicU32,
        lists: std::sync::atomic::AtomicU32,
    }

    impl Faulty {
        fn auth(&self, request: &str) -> Result<(), ClientError> {
            if self.unauthenticated {
                return Err(ClientError::Unauthenticated {
                    request: request.into(),
                });
            }
            Ok(())
        }
    }

    impl Platform for Faulty {
        fn list_flows(
            &self,
            q: &flowpack_client::ListQuery,
        ) -> Result<flowpack_client::Page<Flow>, ClientError> {
            self.auth("GET /api/v1/flows")?;
            self.lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.list_flows(q)
        }
        fn show_flow(&self, id: FlowId) -> Result<Flow, ClientError> {
            self.inner.show_flow(id)
        }
        fn export_flow(&self, id: FlowId) -> Result<Value, ClientError> {
            self.inner.export_flow(id)
        }
        fn import_flow(&self, r: &ImportRequest) -> Result<Flow, ClientError> {
            self.imports
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self
                .fail_import_of
                .is_some_and(|n| r.document["flow"]["name"] == n)
            {
                return Err(ClientError::Status {
                    request: "POST /api/v1/flows/import".into(),
                    status: 500,
                    attempts: 6,
                    message: "server error".into(),
                });
            }
            self.inner.import_flow(r)
        }
        fn list_versions(
            &self,
            f: FlowId,
        ) -> Result<Vec<flowpack_client::FlowVersion>, ClientError> {
            self.inner.list_versions(f)
        }
        fn deploy_version(
            &self,
            f: FlowId,
            v: flowpack_client::VersionId,
            at: &str,
        ) -> Result<flowpack_client::FlowVersion, ClientError> {
            self.inner.deploy_version(f, v, at)
        }
        fn update_flow(&self, f: FlowId, u: &FlowUpdate) -> Result<Flow, ClientError> {
            self.inner.update_flow(f, u)
        }
        fn delete_flow(&self, f: FlowId) -> Result<(), ClientError> {
            self.inner.delete_flow(f)
        }
    }

    fn both_references(dir: &std::path::Path) -> PathBuf {
        let refs =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/reference");
        let out = dir.join("both.flowpack");
        crate::pack::run(&crate::pack::PackOptions::new(
            vec![refs],
            out.clone(),
            "both".into(),
            semver::Version::new(1, 0, 0),
            time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap(),
        ))
        .unwrap();
        out
    }

    fn faulty(fail_import_of: Option<&'static str>, unauthenticated: bool) -> Arc<Faulty> {
        Arc::new(Faulty {
            inner: flowpack_sandbox::Store::open_in_memory(Default::default()).unwrap(),
            fail_import_of,
            unauthenticated,
            imports: Default::default(),
            lists: Default::default(),
        })
    }

    #[test]
    fn a_flow_failing_after_its_retries_is_reported_with_the_others_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let archive = both_references(dir.path());
        let platform = faulty(Some("Shopify > NetSuite Orders"), false);
        let opts = PushOptions::new(archive, platform.clone(), "2026-01-01T00:00:00Z".into());
        let report = run(&opts).unwrap();
        assert!(report.failed());
        let outcomes: Vec<(&str, Outcome)> = report
            .flows
            .iter()
            .map(|f| (f.name.as_str(), f.outcome))
            .collect();
        assert_eq!(outcomes.len(), 2);
        assert!(
            outcomes.contains(&("Shopify > NetSuite Orders", Outcome::Failed)),
            "{outcomes:?}"
        );
        assert!(
            outcomes.iter().any(|(_, o)| *o == Outcome::Created),
            "{outcomes:?}"
        );
        let failed = report
            .flows
            .iter()
            .find(|f| f.outcome == Outcome::Failed)
            .unwrap();
        assert!(
            failed
                .error
                .as_deref()
                .unwrap()
                .contains("HTTP 500 after 6 attempts")
        );
    }

    #[test]
    fn authentication_failing_before_any_write_could_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let archive = both_references(dir.path());
        let platform = faulty(None, true);
        let opts = PushOptions::new(archive, platform.clone(), "2026-01-01T00:00:00Z".into());
        let err = run(&opts).unwrap_err();
        assert!(
            matches!(err, PushError::Client(ClientError::Unauthenticated { .. })),
            "{err}"
        );
        assert_eq!(err.category(), Category::CouldNotRun);
        assert_eq!(
            platform.imports.load(std::sync::atomic::Ordering::SeqCst),
            0
        );
    }

    #[test]
    fn a_timed_out_import_that_landed_is_taken_not_repeated() {
        // Flow 1 "Orders" existed before the push; flow 2 landed during the timed-out import.
        let p = LandsThenTimesOut {
            flows: std::sync::Mutex::new(vec![flow(1, "Orders")]),
            imports: Default::default(),
            land: true,
        };
        let got = import_one(&p, &request(), "Orders", &BTreeSet::from([1])).unwrap();
        assert_eq!(got.id, 2);
        assert_eq!(p.imports.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn a_timed_out_import_that_did_not_land_is_retried() {
        let p = LandsThenTimesOut {
            flows: std::sync::Mutex::new(vec![flow(1, "Orders")]),
            imports: Default::default(),
            land: false,
        };
        let got = import_one(&p, &request(), "Orders", &BTreeSet::from([1])).unwrap();
        assert_eq!(got.id, 3);
        assert_eq!(p.imports.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn the_plan_lists_the_target_once_and_the_report_keeps_archive_order() {
        let dir = tempfile::tempdir().unwrap();
        let archive = both_references(dir.path());
        let platform = faulty(None, false);
        let mut opts = PushOptions::new(
            archive.clone(),
            platform.clone(),
            "2026-01-01T00:00:00Z".into(),
        );
        opts.jobs = 1;
        let sequential = run(&opts).unwrap();
        let names: Vec<String> = sequential.flows.iter().map(|f| f.name.clone()).collect();
        // Into a second, empty target with 4 jobs: the same order, one listing.
        let platform = faulty(None, false);
        let mut opts = PushOptions::new(archive, platform.clone(), "2026-01-01T00:00:00Z".into());
        opts.jobs = 4;
        let parallel = run(&opts).unwrap();
        let got: Vec<String> = parallel.flows.iter().map(|f| f.name.clone()).collect();
        assert_eq!(got, names);
        assert!(parallel.flows.iter().all(|f| f.outcome == Outcome::Created));
        assert_eq!(platform.lists.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Pushed again: everything unchanged, still one listing, nothing imported.
        let again = run(&opts).unwrap();
        assert!(
            again.flows.iter().all(|f| f.plan == Plan::Unchanged),
            "{:?}",
            again.flows
        );
        assert_eq!(platform.lists.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(
            platform.imports.load(std::sync::atomic::Ordering::SeqCst),
            2
        );
    }

    #[test]
    fn the_history_record_holds_every_step_of_parallel_writers() {
        let dir = tempfile::tempdir().unwrap();
        let target = HistoryTarget::new(dir.path(), "prod", "abcdef");
        let recorder = Recorder::new(Some(target.clone()), "a.flowpack", "2026-01-01T00:00:00Z");
        std::thread::scope(|s| {
            s.spawn(|| recorder.saver());
            let workers: Vec<_> = (0..4u64)
                .map(|t| {
                    let recorder = &recorder;
                    s.spawn(move || {
                        for i in 0..50u64 {
                            recorder
                                .add(Entry::Created {
                                    id: t * 100 + i,
                                    name: format!("F{t}-{i}"),
                                })
                                .unwrap();
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().unwrap();
            }
            // The saver writes the finished record, then returns (else the scope would hang).
            recorder.finish();
        });
        assert_eq!(recorder.error(), None);
        let record = history::read(std::path::Path::new(&recorder.path().unwrap())).unwrap();
        assert!(record.complete);
        assert_eq!(record.entries.len(), 200);
        assert_eq!(record.archive.as_deref(), Some("a.flowpack"));
        assert_eq!(record.id, "20260101T000000Z-abcdef");
        // Without a target nothing is recorded and nothing fails.
        let none = Recorder::new(None, "a.flowpack", "2026-01-01T00:00:00Z");
        assert_eq!(
            none.add(Entry::Created {
                id: 1,
                name: "A".into()
            }),
            Ok(None)
        );
        assert_eq!(none.path(), None);
    }
}
