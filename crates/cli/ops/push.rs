//! `push`: an archive into an environment (DESIGN §8).
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
//! Each import carries `Idempotency-Key` = hex SHA-256 of (manifest SHA-256 ‖ `\n` ‖ flow path).
//! After a transport failure (timeout, dropped connection) the flow is looked up by name first:
//! a flow of that name that did not exist before the push is taken as the import's result;
//! otherwise the import is retried (3 attempts in all).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use flowpack_client::{
    ClientError, Flow, FlowId, FlowUpdate, ImportRequest, Platform, find_by_name,
};
use flowpack_core::archive::{Archive, Limits, PackageKind, TrustPolicy};
use flowpack_core::document::{FormatVersion, VersionStatus};
use flowpack_core::overlay::{self, OverlayReport, ResolvedOverlay, describe_input};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What to do with a flow whose name exists in the target with different content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
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
    /// The time used for `deployed_at` and `enabled_at` (RFC 3339).
    pub now: String,
}

/// The plan for one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
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

/// One flow of the report.
#[derive(Debug, Clone, Serialize)]
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
}

/// What a push did.
#[derive(Debug, Clone, Serialize)]
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
    /// Optional inputs not supplied, and other notes.
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

/// The `Idempotency-Key` of one flow of an archive.
pub fn idempotency_key(manifest_sha256: &str, path: &str) -> String {
    let mut h = Sha256::new();
    h.update(manifest_sha256.as_bytes());
    h.update(b"\n");
    h.update(path.as_bytes());
    hex::encode(h.finalize())
}

struct Candidate {
    path: String,
    name: String,
    document: Value,
    deployed_iteration: Option<i64>,
}

/// Runs a push.
pub fn push(opts: &PushOptions) -> Result<PushReport> {
    let origin = opts.archive.display().to_string();
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
        let format = doc.format_version();
        if format.number() != opts.export_format {
            format_errors.push(if format == FormatVersion::V1 && opts.export_format == 2 {
                format!(
                    "{origin}:{}: flow {:?} is export format 1 and the target takes format 2; \
                     this build cannot migrate it (run `flowpack migrate --to 2` and pack again)",
                    record.path, record.name
                )
            } else {
                format!(
                    "{origin}:{}: flow {:?} is export format {} and the target takes format {}",
                    record.path,
                    record.name,
                    format.number(),
                    opts.export_format
                )
            });
            continue;
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
    match overlay::check_inputs(&manifest.inputs, opts.overlay.as_ref()) {
        Ok(optional) => report.warnings.extend(optional.iter().map(|i| {
            format!(
                "{} is not supplied by the overlay; the flow may need it set after the push",
                describe_input(i)
            )
        })),
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
            "{} flow(s) exist in the target with different content: {} (use --on-conflict skip|duplicate)",
            conflicts.len(),
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
            idempotency_key: Some(idempotency_key(&manifest_sha256, &c.path)),
        };
        match import_one(platform, &request, &c.name, &existing_ids)
            .and_then(|f| finish_one(platform, f, c, opts, flow))
        {
            Ok(()) => {
                flow.outcome = if flow.plan == Plan::Conflict {
                    Outcome::Duplicated
                } else {
                    Outcome::Created
                };
            }
            Err(ClientError::Unauthenticated { request }) => {
                return Err(ClientError::Unauthenticated { request }.into());
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
    fn idempotency_key_depends_on_manifest_and_path() {
        let a = idempotency_key("abc", "flows/a/export.json");
        assert_eq!(a.len(), 64);
        assert_ne!(a, idempotency_key("abd", "flows/a/export.json"));
        assert_ne!(a, idempotency_key("abc", "flows/b/export.json"));
        assert_eq!(a, idempotency_key("abc", "flows/a/export.json"));
    }
}
