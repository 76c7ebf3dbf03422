//! `push`: an archive into an environment.
//!
//! Order: verify the archive against the trust policy (every entry but the flow documents,
//! which the local check reads first, each through the limits and against its digest: a flow
//! failing there refuses the push as verification does) → read every flow, those chosen with
//! `--flow` (all without it) checked: their export format, the overlay applied → check the
//! manifest's inputs (no write before all of this passed; the target's listing, a read, is
//! requested while it runs) → list the target's flows once (paged) and plan each
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
//! flow is enabled), so a re-push stays a no-op. With `--restore-state`, an `unchanged` flow's
//! state is also made what the archive's `flow.json` says ([`crate::restore::restore_state`]'s
//! fields), its settings before recorded in the history so a rollback writes them back.
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
//! the record is written before the first write and saved again as the steps go (by one saver
//! thread beside the writers, at most every quarter second, so the file trails the work by
//! that; the journal, synced before each write, does not trail it).
//!
//! The writing phase overlaps each flow's preparation with the requests in flight: two threads
//! read and prepare the import requests ahead of the writers, at most `4 × jobs` flows ahead
//! (and within the parse budget).
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
    ClientError, Flow, FlowId, FlowSettingsUpdate, FlowUpdate, FlowVersion, ImportRequest,
    ListQuery, Platform, find_by_name, list_all,
};
use flowpack_core::archive::{
    Archive, ArchiveError, FlowRecord, FlowSettings, Input, InputKind, Limits, Manifest,
    PackageKind, TrustPolicy,
};
use flowpack_core::budget::{ParseBudget, Permit};
use flowpack_core::diff::{Change, changes, normalise_owned};
use flowpack_core::document::VersionStatus;
use flowpack_core::migrate::{MigrateOptions, Target, migrate};
use flowpack_core::names::NameFilter;
use flowpack_core::overlay::{self, OverlayReport, ResolvedOverlay, describe_input_kind};
use flowpack_core::{Document, DocumentBound, FormatVersion};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Categorize, Category, Remedy, plural};
use crate::history::{
    self, DocumentText, Entry, HistoryError, HistoryTarget, IdPair, Kind, Record, Replaced,
    SettingsChange,
};
use crate::input::{InputError, entry_origin, expect_archive, rename_archive};
use crate::restore::{FlowRestoreReport, RestoreError, apply_state, plan_state};

/// How many changes of a conflict the plan carries.
pub const PLAN_CHANGES: usize = 5;

/// The default number of flows written at once.
pub const DEFAULT_JOBS: usize = 4;

/// What to do with a flow whose name exists in the target with different content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum OnConflict {
    /// Refuse the whole push before anything is written.
    #[default]
    Fail,
    /// Leave the existing flow, import nothing for it.
    Skip,
    /// Import anyway (a second flow of that name).
    Duplicate,
    /// Cut over to a newly imported flow; the old one is disabled and renamed (or deleted).
    Replace,
}

impl OnConflict {
    /// `fail`, `skip`, `duplicate` or `replace`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnConflict::Fail => "fail",
            OnConflict::Skip => "skip",
            OnConflict::Duplicate => "duplicate",
            OnConflict::Replace => "replace",
        }
    }

    /// The policy named `fail`, `skip`, `duplicate` or `replace`.
    pub fn parse(name: &str) -> Option<OnConflict> {
        [
            OnConflict::Fail,
            OnConflict::Skip,
            OnConflict::Duplicate,
            OnConflict::Replace,
        ]
        .into_iter()
        .find(|c| c.as_str() == name)
    }
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
    /// Told how far the push is (planning, then writing).
    pub progress: Option<PushProgressFn>,
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
            progress: None,
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
    /// Several live flows carry that name: the flow is refused, whatever the conflict policy.
    Duplicate,
}

impl Plan {
    /// `create`, `unchanged`, `conflict` or `replace`.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Create => "create",
            Plan::Unchanged => "unchanged",
            Plan::Conflict => "conflict",
            Plan::Replace => "replace",
            Plan::Duplicate => "duplicate",
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
    /// The ids of the live flows sharing the name (plan `duplicate`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub duplicates: Vec<FlowId>,
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
    /// Which of `warnings` is the one about optional inputs the overlay does not supply.
    #[serde(skip)]
    pub inputs_warning: Option<usize>,
    /// Those inputs, each with the flows that have it (what that warning lists).
    #[serde(skip)]
    pub optional_inputs: Vec<OptionalInput>,
}

/// An optional input the overlay does not supply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OptionalInput {
    /// What it is, as an overlay would name it (`variable "REGION"`, `credential
    /// [secrets."Shopify"."key"].token`).
    pub input: String,
    /// The flows that have it.
    pub flows: Vec<String>,
}

/// How far a push is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PushProgress {
    /// Planning (the live flows compared) or writing.
    pub phase: PushPhase,
    /// Flows done in this phase.
    pub done: usize,
    /// Flows in this phase.
    pub total: usize,
    /// Flows replaced so far.
    pub replaced: usize,
    /// Flows failed so far.
    pub failed: usize,
}

/// The phase a [`PushProgress`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushPhase {
    /// Comparing the archive's flows with the live ones.
    Planning,
    /// Writing.
    Writing,
}

/// Called as flows are planned and written.
pub type PushProgressFn = Arc<dyn Fn(PushProgress) + Send + Sync>;

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
        /// The signatures' own cause, when the signatures check failed.
        failure: Option<flowpack_core::archive::SignatureFailure>,
    },
    /// Required inputs not supplied, or a document in a format the target does not take.
    /// A message of several lines (one ending in lines to copy into an overlay) says that
    /// nothing was written first, so the lines to copy stay as they are.
    #[error("{}", nothing_written(.0))]
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
            PushError::History(e) => e.remedy(),
            PushError::Refused(Refused::Verification {
                failure: Some(f), ..
            }) => Some(crate::error::failure_remedy(f)),
            PushError::Client(e) => e.remedy(),
            _ => None,
        }
    }
}

/// `message; nothing was written`, or for a message of several lines `nothing was written:
/// message`, keeping its last line (TOML to copy) clean.
fn nothing_written(message: &str) -> String {
    if message.contains('\n') {
        format!("nothing was written: {message}")
    } else {
        format!("{message}; nothing was written")
    }
}

// Whether `name` is what a replace left behind (the one rule, in core).
pub(crate) use flowpack_core::names::is_replaced_name;

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

mod local;
mod plan;
mod record;
mod write;

use local::*;
use plan::*;
use record::*;
use write::*;
pub(crate) use write::{delete_if_present, set_enabled, versions_of};

/// Pushes an archive (see the module docs).
pub fn run(opts: &PushOptions) -> Result<PushReport, PushError> {
    let origin = opts
        .shown
        .clone()
        .unwrap_or_else(|| opts.archive.display().to_string());
    // Every attempt that may write has its record (and journal) from the start.
    let recorder = Recorder::new(
        opts.history.clone().filter(|_| !opts.dry_run),
        &origin,
        &opts.now,
    );
    recorder.start(opts)?;
    let mut result = run_recorded(opts, &origin, &recorder);
    recorder.finish(&result);
    if let Ok(report) = &mut result {
        if let Some(e) = recorder.error() {
            report.warnings.push(e);
        }
        report.history = recorder.path();
    }
    result
}

/// [`run`] once its record exists.
fn run_recorded(
    opts: &PushOptions,
    origin: &str,
    recorder: &Recorder,
) -> Result<PushReport, PushError> {
    let origin = origin.to_string();
    let (mut archive, manifest, manifest_sha256) = open_verified(opts, &origin)?;
    let settings = crate::restore::archive_settings(&mut archive, &manifest)?;
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
        inputs_warning: None,
        optional_inputs: Vec::new(),
    };
    let source = Source {
        bound: archive.limits().document,
        readers: Mutex::new(vec![archive]),
        origin: origin.clone(),
        budget: ParseBudget::default(),
    };
    // Everything local first (the listing of the target is requested meanwhile: a read, sent
    // before the local checks end; no write is), then the plan from that one listing.
    let (checked, listed) = std::thread::scope(|s| {
        let listing = s.spawn(|| list_target(opts));
        let checked = check_local(opts, &source, &manifest, &settings, &mut report);
        let listed = listing
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (checked, listed)
    });
    let candidates = checked?;
    let (lives, existing_ids, before, before_enabled) =
        plan(opts, &source, &candidates, listed?, &mut report)?;
    if let Some(refusal) = duplicate_refusal(&report.flows) {
        report.refused = Some(refusal);
        return Ok(report);
    }
    if let Some(refusal) = conflict_refusal(opts, &report.flows) {
        report.refused = Some(refusal);
        return Ok(report);
    }
    if opts.dry_run {
        preview_state(
            opts,
            &settings,
            &manifest.source.url,
            &candidates,
            &lives,
            &mut report,
        );
        return Ok(report);
    }
    recorder.before_writes(&manifest_sha256, before, before_enabled)?;
    let platform = recorder.platform(&opts.platform);
    let ctx = Ctx {
        platform: platform.as_ref(),
        opts,
        settings,
        source_url: manifest.source.url.clone(),
        manifest_sha256,
        as_marketplace,
        existing_ids,
        recorder,
        warnings: Mutex::new(Vec::new()),
        source: &source,
        // Four imports per writer prepared ahead: a preparer that is descheduled for a moment
        // does not stall the writers. What they hold is bounded by the parse budget.
        ahead: Ahead::new(opts.jobs * 4),
        strip_budget: ParseBudget::default(),
        attempt: match &opts.history {
            Some(h) if !opts.dry_run => format!("{} {}", opts.now, h.nonce),
            _ => opts.now.clone(),
        },
    };
    write_all(ctx, &candidates, &lives, &mut report)?;
    Ok(report)
}

/// Opens and verifies the archive against the trust policy: the archive, its manifest and the
/// manifest's SHA-256.
fn open_verified(
    opts: &PushOptions,
    origin: &str,
) -> Result<(Archive, Manifest, String), PushError> {
    expect_archive(&opts.archive)?;
    let mut archive = Archive::open(&opts.archive, &Limits::default())
        .map_err(|e| rename_archive(e, &opts.archive, origin))?
        .named(origin);
    // The flow documents' digests are checked by the local check, which reads each of them
    // first (one decompression each, not two).
    let verified = archive.verify_deferring_flows(&opts.policy);
    if let Some(failed) = verified.first_failure() {
        return Err(Refused::Verification {
            archive: origin.to_string(),
            check: failed.name.to_string(),
            detail: failed.detail.clone(),
            failure: verified.signature_failure.clone(),
        }
        .into());
    }
    let manifest = archive.manifest()?;
    let sha256 = verified.manifest_sha256.clone().unwrap_or_default();
    Ok((archive, manifest, sha256))
}

/// The refusal of a plan in which a flow's name is carried by several live flows: which one
/// to compare, replace or leave is not flowpack's to guess, whatever the conflict policy.
fn duplicate_refusal(flows: &[FlowReport]) -> Option<String> {
    let duplicated: Vec<String> = flows
        .iter()
        .filter(|f| f.plan == Plan::Duplicate)
        .map(|f| {
            let ids: Vec<String> = f.duplicates.iter().map(u64::to_string).collect();
            format!("{:?} (ids {})", f.name, ids.join(", "))
        })
        .collect();
    if duplicated.is_empty() {
        return None;
    }
    Some(format!(
        "several live flows carry the name of {}: {} (rename or delete all but one of each, or push the other flows alone)",
        plural(duplicated.len(), "flow", "flows"),
        duplicated.join(", ")
    ))
}

/// The refusal of a plan with conflicts when no conflict policy was chosen.
fn conflict_refusal(opts: &PushOptions, flows: &[FlowReport]) -> Option<String> {
    let conflicts: Vec<&str> = flows
        .iter()
        .filter(|f| f.plan == Plan::Conflict)
        .map(|f| f.name.as_str())
        .collect();
    if conflicts.is_empty() || opts.on_conflict != OnConflict::Fail {
        return None;
    }
    Some(format!(
        "{} in the target with different content: {} (a conflict policy is needed: skip, duplicate or replace)",
        if conflicts.len() == 1 {
            "1 flow exists".to_string()
        } else {
            format!("{} exist", plural(conflicts.len(), "flow", "flows"))
        },
        conflicts.join(", ")
    ))
}

/// Runs `f` over `items` on up to `jobs` threads; the results in the items' order (the one
/// worker pool).
use flowpack_core::pool::map as parallel;

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
                input(
                    "A",
                    InputKind::Credential,
                    "Mailchimp/OAuth 2.0/client_secret",
                ),
                input(
                    "B",
                    InputKind::Credential,
                    "Mailchimp/OAuth 2.0/client_secret",
                ),
            ],
            true,
        );
        // A credential is named as the overlay names it, for one flow or several.
        assert_eq!(
            warning.as_deref(),
            Some(
                "3 optional inputs are not supplied by the overlay; set in the target after the push if the flows need them:\n  \
                 variable \"REGION\" of flows \"A\", \"B\"\n  \
                 credential [secrets.\"Shopify\".\"key\"].token of flow \"B\"\n  \
                 credential [secrets.\"Mailchimp\".\"OAuth 2.0\"].client_secret of flows \"A\", \"B\""
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
        /// A bug in the platform code: the import of this flow panics.
        panic_on_import_of: Option<&'static str>,
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
            if let Some(n) = self.panic_on_import_of
                && r.document["flow"]["name"] == n
            {
                panic!("a bug while importing {n}");
            }
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
        let refs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/reference");
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
            panic_on_import_of: None,
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
    fn a_panicking_writer_ends_the_push_without_hanging_or_a_complete_record() {
        let dir = tempfile::tempdir().unwrap();
        let archive = both_references(dir.path());
        let platform = Arc::new(Faulty {
            panic_on_import_of: Some("Shopify > NetSuite Orders"),
            ..Arc::into_inner(faulty(None, false)).unwrap()
        });
        let mut opts = PushOptions::new(archive, platform, "2026-01-01T00:00:00Z".into());
        let target = HistoryTarget::new(&dir.path().join("history"), "prod", "abcdef");
        opts.history = Some(target.clone());
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&opts)));
            let _ = done_tx.send(result.is_err());
        });
        // The saver and the preparer stop with the writers: the push ends (by the panic).
        let panicked = done_rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the push ended");
        assert!(panicked);
        let records: Vec<_> = std::fs::read_dir(&target.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        // The record and its journal; the record stays pending, for `recover`.
        let record = records
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "json"))
            .unwrap();
        assert_eq!(records.len(), 2, "{records:?}");
        assert_eq!(
            history::read(record).unwrap().status,
            history::Status::Pending
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
    fn the_history_record_and_journal_hold_every_step_of_parallel_writers() {
        let dir = tempfile::tempdir().unwrap();
        let target = HistoryTarget::new(dir.path(), "prod", "abcdef");
        let recorder = Recorder::new(Some(target.clone()), "a.flowpack", "2026-01-01T00:00:00Z");
        let opts = PushOptions::new(
            "a.flowpack".into(),
            faulty(None, false),
            "2026-01-01T00:00:00Z".into(),
        );
        recorder.start(&opts).unwrap();
        // The record exists, pending, before anything is written; so does its journal.
        let path = dir.path().join("prod/20260101T000000Z-abcdef.json");
        let first = history::read(&path).unwrap();
        assert_eq!(first.status, history::Status::Pending);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
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
            // The saver writes the last state, then returns (else the scope would hang).
            recorder.stop();
        });
        assert_eq!(recorder.error(), None);
        let record = history::read(&path).unwrap();
        assert_eq!(record.entries.len(), 200);
        assert_eq!(record.archive.as_deref(), Some("a.flowpack"));
        let journaled = crate::journal::read(&record.journal_path(&target.dir)).unwrap();
        assert_eq!(journaled.len(), 200);
        // A second push refuses while this one is pending (it was never finished).
        let second = Recorder::new(Some(target.clone()), "b.flowpack", "2026-01-01T00:00:01Z");
        let err = second.start(&opts).unwrap_err();
        assert!(matches!(err, HistoryError::Pending { .. }), "{err}");
        // Without a target nothing is recorded and nothing fails.
        let none = Recorder::new(None, "a.flowpack", "2026-01-01T00:00:00Z");
        none.start(&opts).unwrap();
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
