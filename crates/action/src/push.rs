//! `push`: an archive into an environment.
//!
//! Order: verify the archive against the trust policy → read every flow → check its export
//! format → apply the overlay → check the manifest's inputs (all of this before any request) →
//! look every flow up by exact name and plan `create` | `unchanged` | `conflict` → refuse on
//! conflicts (`--on-conflict fail`, the default) → import, deploy, enable.
//!
//! `unchanged` means the live flow's export equals what would be imported once both are
//! normalised ([`normalise`]): `metadata` is ignored (it describes the export act: when, by whom,
//! from which company, the import summary, the format stamp); on `flow`, `is_enabled` and any
//! `id`/`created_at`/`updated_at`/`enabled_at` are dropped; on each version, `status`,
//! `is_deployed`, `is_editable`, `id`, `flow_id`, `deployed_at`, `created_at`, `updated_at` are
//! dropped. Everything else — name, description, priority, iterations, steps, connections,
//! routes, variables, schedules, systems (credentials included), scripts, dependencies — must
//! be equal.
//!
//! Each import carries an `Idempotency-Key`: hex SHA-256 of the manifest's SHA-256, the flow's
//! path, the push's start time and the SHA-256 of the document sent (after the overlay), one per
//! line. A retry within one push reuses it; another push (a `--on-conflict duplicate`, a re-push
//! after the flow was deleted, a different overlay) gets a new one, so the platform's replay of a
//! key never hides a wanted import. Across runs, the plan (a lookup by name) is what prevents
//! duplicates.
//! After a transport failure (timeout, dropped connection) the flow is looked up by name first:
//! a flow of that name that did not exist before the push is taken as the import's result;
//! otherwise the import is retried (3 attempts in all).
//!
//! Failures: anything found before the first write (verification, formats, inputs, conflicts)
//! refuses the whole push ([`PushError::Refused`], rejected); a platform that cannot be reached
//! or does not accept the API key before the first write is [`PushError::Client`] (could not
//! run); a flow whose import fails after its retries is reported as `failed` with the other
//! flows' outcomes ([`PushReport::failed`]).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use flowpack_client::{
    ClientError, Flow, FlowId, FlowUpdate, ImportRequest, Platform, find_by_name,
};
use flowpack_core::archive::{
    Archive, ArchiveError, Input, InputKind, Limits, PackageKind, TrustPolicy,
};
use flowpack_core::document::VersionStatus;
use flowpack_core::migrate::{MigrateOptions, Target, migrate};
use flowpack_core::overlay::{self, OverlayReport, ResolvedOverlay, describe_input};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Categorize, Category, plural};
use crate::input::{InputError, entry_origin, expect_archive};

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
}

/// How to push.
#[derive(Clone)]
#[non_exhaustive]
pub struct PushOptions {
    /// The archive.
    pub archive: PathBuf,
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
    /// Deploy the imported version matching the archive's deployed one (else the draft).
    pub deploy: bool,
    /// Enable the imported flows.
    pub enable: bool,
    /// Import as marketplace packages (also for archives of kind `marketplace`).
    pub as_marketplace: bool,
    /// The target's export format version.
    pub export_format: u32,
    /// The push's start time (RFC 3339): `deployed_at`, `enabled_at` and the idempotency keys.
    pub now: String,
    /// What to restore from `flow.json` (restore wiring).
    pub restore: crate::restore::RestoreOptions,
}

impl PushOptions {
    /// Pushes `archive` into `platform` at time `now` (RFC 3339): no signature check, no
    /// overlay, conflicts refuse, export format 2, nothing deployed or enabled.
    pub fn new(archive: PathBuf, platform: Arc<dyn Platform>, now: String) -> PushOptions {
        PushOptions {
            archive,
            platform,
            policy: TrustPolicy::default(),
            overlay: None,
            dry_run: false,
            on_conflict: OnConflict::Fail,
            deploy: false,
            enable: false,
            as_marketplace: false,
            export_format: 2,
            now,
            restore: crate::restore::RestoreOptions::default(), // restore wiring
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
}

impl Plan {
    /// `create`, `unchanged` or `conflict`.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Create => "create",
            Plan::Unchanged => "unchanged",
            Plan::Conflict => "conflict",
        }
    }
}

/// What happened to one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Outcome {
    /// Planned only (dry run, or the push was refused).
    Planned,
    /// Imported as a new flow.
    Created,
    /// Imported next to an existing flow of that name (`--on-conflict duplicate`).
    Duplicated,
    /// Already there, nothing written.
    Unchanged,
    /// A conflict left alone (`--on-conflict skip`).
    Skipped,
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
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
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
    /// The new flow's id.
    pub id: Option<FlowId>,
    /// The version deployed (`--deploy`).
    pub deployed_version: Option<u64>,
    /// Whether it was enabled (`--enable`).
    pub enabled: bool,
    /// The error, when `outcome` is `failed`.
    pub error: Option<String>,
    /// Webhooks, callbacks and state restored from `flow.json` (restore wiring).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored: Option<crate::restore::FlowRestoreReport>,
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
    /// Why nothing was written, when the push was refused after planning (conflicts).
    pub refused: Option<String>,
    /// One entry per flow, in archive order.
    pub flows: Vec<FlowReport>,
    /// What the overlay changed, per flow (secrets masked).
    pub overlay: Vec<OverlayReport>,
    /// Notes: one warning listing the optional inputs the overlay does not supply (each input
    /// once, naming its flows).
    pub warnings: Vec<String>,
}

impl PushReport {
    /// Whether any flow failed or the push was refused.
    pub fn failed(&self) -> bool {
        self.refused.is_some() || self.flows.iter().any(|f| f.outcome == Outcome::Failed)
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
        }
    }
}

/// The normalised form compared for `unchanged` (see the module docs).
pub fn normalise(doc: &Value) -> Value {
    let mut v = doc.clone();
    if let Some(root) = v.as_object_mut() {
        root.shift_remove("metadata");
        if let Some(flow) = root.get_mut("flow").and_then(Value::as_object_mut) {
            for k in ["is_enabled", "id", "created_at", "updated_at", "enabled_at"] {
                flow.shift_remove(k);
            }
            if let Some(versions) = flow.get_mut("versions").and_then(Value::as_array_mut) {
                for version in versions.iter_mut().filter_map(Value::as_object_mut) {
                    for k in [
                        "status",
                        "is_deployed",
                        "is_editable",
                        "id",
                        "flow_id",
                        "deployed_at",
                        "created_at",
                        "updated_at",
                    ] {
                        version.shift_remove(k);
                    }
                }
            }
        }
    }
    v
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

struct Candidate {
    path: String,
    name: String,
    document: Value,
    deployed_iteration: Option<i64>,
}

/// The one warning of a push about optional inputs the overlay does not supply (`None` when
/// there are none): one line per input, however many flows carry it (naming them all). Systems
/// are left out: one the overlay does not rename keeps its name.
fn input_warning(optional: &[Input]) -> Option<String> {
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
        "{} not supplied by the overlay; set in the target after the push if the flows need {}:",
        if grouped.len() == 1 {
            "1 optional input is".to_string()
        } else {
            format!("{} optional inputs are", grouped.len())
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

/// Runs a push.
pub fn run(opts: &PushOptions) -> Result<PushReport, PushError> {
    let origin = opts.archive.display().to_string();
    expect_archive(&opts.archive)?;
    let mut archive = Archive::open(&opts.archive, &Limits::default())?;
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
    let manifest_sha256 = verified.manifest_sha256.clone().unwrap_or_default();
    let settings = crate::restore::archive_settings(&mut archive, &manifest)?; // restore wiring
    let as_marketplace = opts.as_marketplace || manifest.package.kind == PackageKind::Marketplace;

    let mut report = PushReport {
        archive: origin.clone(),
        package: format!("{}@{}", manifest.package.name, manifest.package.version),
        dry_run: opts.dry_run,
        refused: None,
        flows: Vec::new(),
        overlay: Vec::new(),
        warnings: Vec::new(),
    };

    // Everything local first: formats, overlay, inputs.
    let mut candidates = Vec::new();
    let mut format_errors = Vec::new();
    for item in archive.flows()? {
        let (record, mut doc) = item?;
        // Migrate to the target's export format; a migration that would lose
        // something refuses the push before any request, naming the flow and what would be lost.
        if doc.format_version().number() != opts.export_format {
            let mut mopts = MigrateOptions::new(Target::Version(u64::from(opts.export_format)));
            mopts.origin = entry_origin(&origin, &record.path);
            match migrate(doc, &mopts) {
                Ok(migrated) => {
                    doc = migrated.document;
                    // Send what the platform itself would have exported: no stamp.
                    doc.unstamp_format_version();
                }
                Err(e) => {
                    format_errors.push(format!("flow {:?}: {e}", record.name));
                    continue;
                }
            }
        }
        let name = doc
            .flow()
            .and_then(|f| f.name())
            .unwrap_or(record.name.as_str())
            .to_string();
        if let Some(o) = &opts.overlay {
            report.overlay.push(overlay::apply(&mut doc, &name, o));
        }
        let deployed_iteration = doc.flow().and_then(|f| {
            f.versions()
                .find(|v| v.status() == Some(VersionStatus::Deployed))
                .and_then(|v| v.iteration())
        });
        candidates.push(Candidate {
            path: record.path,
            name,
            document: doc.into_value(),
            deployed_iteration,
        });
    }
    if !format_errors.is_empty() {
        return Err(Refused::Content(format_errors.join("; ")).into());
    }
    let inputs = crate::restore::inputs_to_check(&manifest.inputs, opts.restore.no_webhooks); // restore wiring
    match overlay::check_inputs(&inputs, opts.overlay.as_ref()) {
        // A system the overlay does not rename keeps its name: nothing to warn about. Empty
        // credentials and variables do need a value on the target, so they are named.
        Ok(optional) => report.warnings.extend(input_warning(&optional)),
        Err(e) => return Err(Refused::Content(e.to_string()).into()),
    }

    // The plan.
    let platform = opts.platform.as_ref();
    let mut existing_ids = BTreeSet::new();
    for c in &candidates {
        let existing = find_by_name(platform, &c.name)?;
        existing_ids.extend(existing.iter().map(|f| f.id));
        let mut plan = Plan::Create;
        let mut existing_id = None;
        let wanted = normalise(&c.document);
        for flow in &existing {
            existing_id.get_or_insert(flow.id);
            let live = platform.export_flow(flow.id)?;
            if normalise(&live) == wanted {
                plan = Plan::Unchanged;
                existing_id = Some(flow.id);
                break;
            }
            plan = Plan::Conflict;
        }
        report.flows.push(FlowReport {
            name: c.name.clone(),
            path: c.path.clone(),
            plan,
            outcome: Outcome::Planned,
            existing_id,
            id: None,
            deployed_version: None,
            enabled: false,
            error: None,
            restored: None, // restore wiring
        });
    }
    let conflicts: Vec<&str> = report
        .flows
        .iter()
        .filter(|f| f.plan == Plan::Conflict)
        .map(|f| f.name.as_str())
        .collect();
    if !conflicts.is_empty() && opts.on_conflict == OnConflict::Fail {
        report.refused = Some(format!(
            "{} in the target with different content: {} (use --on-conflict skip|duplicate)",
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

    for (c, flow) in candidates.iter().zip(report.flows.iter_mut()) {
        match (flow.plan, opts.on_conflict) {
            (Plan::Unchanged, _) => {
                flow.outcome = Outcome::Unchanged;
                flow.id = flow.existing_id;
                continue;
            }
            (Plan::Conflict, OnConflict::Skip) => {
                flow.outcome = Outcome::Skipped;
                continue;
            }
            _ => {}
        }
        let request = ImportRequest {
            document: c.document.clone(),
            as_marketplace,
            idempotency_key: Some(idempotency_key(
                &manifest_sha256,
                &c.path,
                &opts.now,
                &c.document,
            )),
        };
        // restore wiring: webhooks, callbacks and state from flow.json after the import.
        let restored = |flow: &mut FlowReport| {
            let id = flow.id.unwrap_or_default();
            let (s, o, url) = (
                settings.get(&c.path),
                opts.overlay.as_ref(),
                &manifest.source.url,
            );
            crate::restore::restore_flow(platform, id, &c.name, s, o, url, &opts.restore, &opts.now)
                .map(|r| flow.restored = r)
        };
        match import_one(platform, &request, &c.name, &existing_ids)
            .and_then(|f| finish_one(platform, f, c, opts, flow))
        {
            Ok(()) => {
                if let Err(e) = restored(flow) {
                    // restore wiring: the flow was created but not completely restored.
                    flow.outcome = Outcome::Failed;
                    flow.error = Some(e.to_string());
                    continue;
                }
                flow.outcome = if flow.plan == Plan::Conflict {
                    Outcome::Duplicated
                } else {
                    Outcome::Created
                };
            }
            Err(ClientError::Unauthenticated { request }) => {
                return Err(PushError::Client(ClientError::Unauthenticated { request }));
            }
            Err(e) => {
                flow.outcome = Outcome::Failed;
                flow.error = Some(e.to_string());
            }
        }
    }
    Ok(report)
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

/// Deploys and enables an imported flow as asked.
fn finish_one(
    platform: &dyn Platform,
    flow: Flow,
    candidate: &Candidate,
    opts: &PushOptions,
    out: &mut FlowReport,
) -> Result<(), ClientError> {
    out.id = Some(flow.id);
    if opts.deploy {
        let versions = match flow.versions {
            Some(v) if !v.is_empty() => v,
            _ => platform.list_versions(flow.id)?,
        };
        let target = candidate
            .deployed_iteration
            .and_then(|it| versions.iter().find(|v| v.iteration == it))
            .or_else(|| versions.iter().find(|v| v.status == "Draft"));
        if let Some(v) = target {
            platform.deploy_version(flow.id, v.id, &opts.now)?;
            out.deployed_version = Some(v.id);
        }
    }
    if opts.enable {
        platform.update_flow(
            flow.id,
            &FlowUpdate {
                enabled_at: Some(Some(opts.now.clone())),
                priority: None,
            },
        )?;
        out.enabled = true;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(flow: &str, kind: InputKind, name: &str) -> Input {
        Input::new(flow, kind, name, false)
    }

    #[test]
    fn inputs_missing_from_the_overlay_are_one_warning_per_push() {
        let warning = input_warning(&[
            input("A", InputKind::Variable, "REGION"),
            input("B", InputKind::Variable, "REGION"),
            input("B", InputKind::System, "Shopify"),
            input("B", InputKind::Credential, "Shopify/key/token"),
        ]);
        assert_eq!(
            warning.as_deref(),
            Some(
                "2 optional inputs are not supplied by the overlay; set in the target after the push if the flows need them:\n  \
                 variable \"REGION\" of flows \"A\", \"B\"\n  \
                 credential [secrets.\"Shopify\".\"key\"].token of flow \"B\""
            )
        );
        assert_eq!(
            input_warning(&[input("A", InputKind::System, "Shopify")]),
            None
        );
        assert!(
            input_warning(&[input("A", InputKind::Variable, "X")])
                .unwrap()
                .starts_with("1 optional input is not supplied by the overlay; set in the target after the push if the flows need it:")
        );
    }

    #[test]
    fn normalise_ignores_metadata_ids_and_import_set_statuses() {
        let pushed = serde_json::json!({
            "metadata": {"exported_at": "2026-01-01T00:00:00Z", "format_version": 2},
            "flow": {"name": "A", "is_enabled": true, "priority": 2, "versions": [
                {"iteration": 7, "status": "Deployed", "is_deployed": true, "is_editable": false, "steps": [{"id": 1}]}
            ]},
            "systems": []
        });
        let live = serde_json::json!({
            "metadata": {"exported_at": "2026-02-02T00:00:00Z"},
            "flow": {"name": "A", "is_enabled": false, "priority": 2, "versions": [
                {"iteration": 7, "status": "Inactive", "is_deployed": false, "is_editable": true, "steps": [{"id": 1}]}
            ]},
            "systems": []
        });
        assert_eq!(normalise(&pushed), normalise(&live));
        let mut changed = live.clone();
        changed["flow"]["versions"][0]["steps"][0]["id"] = 2.into();
        assert_ne!(normalise(&pushed), normalise(&changed));
        changed = live;
        changed["flow"]["priority"] = 1.into();
        assert_ne!(normalise(&pushed), normalise(&changed));
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
                .contains("HTTP 500 after 6 attempt(s)")
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
}
