//! `rollback`: undoes the newest push of an environment not yet undone (or a chosen one), from
//! its history record ([`crate::history`]).
//!
//! The entries of the record are undone newest first:
//!
//! - a created flow is deleted;
//! - a replaced flow: the new flow is deleted first (so the two never run together), then the
//!   old one gets its name back and its enabled state (when the push disabled it) and deployed
//!   iteration restored. A replace done with `--prune-replaced` deleted the old flow: it is
//!   re-imported from the export document the record holds, deployed, given its webhooks and
//!   callbacks and enabled as it was, with a warning naming what cannot return (the flow's id,
//!   webhook ids, HMAC secrets);
//! - a state change (`--enable`, `--deploy` on an unchanged flow) is reverted; a version
//!   deployed where none was cannot be undeployed (the API has no such call) and is warned
//!   about.
//!
//! Every step is idempotent (a flow already gone is fine, a name or state already restored is
//! written again to the same value, a re-imported flow is found by name), and the rollback stops
//! at the first failing step, so running it again after a half-way failure finishes the job.
//! The rollback is itself recorded (kind `rollback`, `undoes`; `pending` with a journal while it
//! runs, like a push); the undone record gets `undone_by` once every step succeeded.
//!
//! Which record: the newest push that wrote something and is not undone yet (records of
//! attempts that wrote nothing are skipped, and the report says so), or the one `--to` names (a
//! record that wrote nothing is a no-op that says so). A `pending` record (an interrupted run)
//! refuses the rollback: `recover` deals with it, from its journal.
//!
//! Records keep no secret value: a flow the push deleted is re-imported from its export with
//! the secrets stripped, so the rollback takes the overlay that supplies them, and refuses
//! before its first write, naming every value missing, without it.

use std::sync::Arc;

use flowpack_client::{
    ClientError, FlowId, FlowSettingsUpdate, ImportRequest, Platform, find_by_name,
};
use flowpack_core::Document;
use flowpack_core::overlay::{self, OverlayError, ResolvedOverlay};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Categorize, Category};
use crate::history::{
    self, Entry, HistoryError, HistoryTarget, Kind, Record, Replaced, SettingsChange, Status,
};
use crate::journal::{Journal, Journaled};
use crate::push::{delete_if_present, set_enabled, versions_of};
use crate::restore::field;

/// How to roll back.
#[derive(Clone)]
#[non_exhaustive]
pub struct RollbackOptions {
    /// The environment.
    pub platform: Arc<dyn Platform>,
    /// Its history (where the records are, and the nonce of the rollback's own record).
    pub history: HistoryTarget,
    /// The record to undo (default: the newest push not yet undone).
    pub to: Option<String>,
    /// Say what would be done, do nothing.
    pub dry_run: bool,
    /// The rollback's start time (RFC 3339, UTC).
    pub now: String,
    /// Supplies the secret values of flows to re-import (their recorded exports have none).
    pub overlay: Option<ResolvedOverlay>,
}

impl RollbackOptions {
    /// Undoes the newest push recorded in `history` on `platform`, at time `now`.
    pub fn new(platform: Arc<dyn Platform>, history: HistoryTarget, now: String) -> Self {
        RollbackOptions {
            platform,
            history,
            to: None,
            dry_run: false,
            now,
            overlay: None,
        }
    }
}

/// One step of a rollback.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct StepReport {
    /// What the step does, e.g. `delete flow 12 ("Orders", created)`.
    pub description: String,
    /// Whether it was done (false in a dry run, or after a failure).
    pub done: bool,
    /// Why it failed.
    pub error: Option<String>,
}

/// What a rollback did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RollbackReport {
    /// The record undone.
    pub undone: String,
    /// A dry run.
    pub dry_run: bool,
    /// The steps, in order.
    pub steps: Vec<StepReport>,
    /// What cannot be restored.
    pub warnings: Vec<String>,
    /// The rollback's own record (not in a dry run).
    pub record: Option<String>,
    /// Newer records passed over because their run wrote nothing.
    pub skipped: Vec<String>,
    /// The record undone wrote nothing: there was nothing to undo.
    pub wrote_nothing: bool,
}

impl RollbackReport {
    /// Whether a step failed.
    pub fn failed(&self) -> bool {
        self.steps.iter().any(|s| s.error.is_some())
    }
}

/// Errors of a rollback.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RollbackError {
    /// No push of the environment is left to undo.
    #[error("{dir}: nothing to undo: no push recorded here that is not undone already")]
    NothingToUndo {
        /// The history directory.
        dir: String,
    },
    /// `--to` names no push record.
    #[error("{dir}: no push record {id:?} (see `flowpack history`)")]
    UnknownRecord {
        /// The history directory.
        dir: String,
        /// The id given.
        id: String,
    },
    /// `--to` names a record that was undone already.
    #[error("record {id} was undone already by {by}")]
    AlreadyUndone {
        /// The record.
        id: String,
        /// The rollback that undid it.
        by: String,
    },
    /// The history could not be read or written, or holds an interrupted run.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// A flow to re-import needs secret values no overlay supplies.
    #[error(transparent)]
    Inputs(#[from] OverlayError),
}

impl Categorize for RollbackError {
    fn category(&self) -> Category {
        match self {
            RollbackError::History(e) => e.category(),
            RollbackError::Inputs(e) => e.category(),
            _ => Category::Rejected,
        }
    }

    fn remedy(&self) -> Option<crate::error::Remedy> {
        match self {
            RollbackError::History(e) => e.remedy(),
            _ => None,
        }
    }
}

enum Step<'a> {
    Delete {
        id: FlowId,
        name: &'a str,
        why: &'a str,
    },
    Rename {
        id: FlowId,
        to: &'a str,
    },
    Enable {
        id: FlowId,
        name: &'a str,
        at: Option<&'a str>,
    },
    Deploy {
        id: FlowId,
        name: &'a str,
        iteration: i64,
    },
    Reimport(&'a Replaced),
    /// Settings fields written back to what they were (`push --restore-state` on an existing
    /// flow).
    Settings {
        id: FlowId,
        name: &'a str,
        fields: &'a [String],
        update: FlowSettingsUpdate,
        layout: Option<&'a str>,
    },
}

impl Step<'_> {
    fn describe(&self) -> String {
        match self {
            Step::Delete { id, name, why } => format!("delete flow {id} ({name:?}, {why})"),
            Step::Rename { id, to } => format!("rename flow {id} back to {to:?}"),
            Step::Enable { id, name, at } => match at {
                Some(_) => format!("enable flow {id} ({name:?}) again"),
                None => format!("disable flow {id} ({name:?}) again"),
            },
            Step::Deploy {
                id,
                name,
                iteration,
            } => format!("deploy iteration {iteration} of flow {id} ({name:?}) again"),
            Step::Reimport(r) => format!(
                "re-import the deleted flow {:?} (was flow {}) from its recorded export",
                r.name, r.old_id
            ),
            Step::Settings {
                id, name, fields, ..
            } => format!("set {} of flow {id} ({name:?}) back", fields.join(", ")),
        }
    }
}

/// The steps undoing one record, newest entry first.
fn steps<'a>(record: &'a Record, warnings: &mut Vec<String>) -> Vec<Step<'a>> {
    let mut out = Vec::new();
    for entry in record.entries.iter().rev() {
        match entry {
            Entry::Created { id, name } => out.push(Step::Delete {
                id: *id,
                name,
                why: "created by the push",
            }),
            Entry::Replaced(r) => {
                if let Some(new) = r.new_id {
                    out.push(Step::Delete {
                        id: new,
                        name: &r.name,
                        why: "imported by the replace",
                    });
                }
                if r.pruned {
                    warnings.push(format!(
                        "flow {:?} was deleted when it was replaced (pruned): it is re-imported from its recorded export; its id ({}), webhook ids and HMAC secrets cannot return",
                        r.name, r.old_id
                    ));
                    out.push(Step::Reimport(r));
                    continue;
                }
                if r.renamed_to.is_some() {
                    out.push(Step::Rename {
                        id: r.old_id,
                        to: &r.name,
                    });
                }
                if r.old_disabled {
                    out.push(Step::Enable {
                        id: r.old_id,
                        name: &r.name,
                        at: r.old_enabled_at.as_deref(),
                    });
                }
            }
            Entry::State {
                id,
                name,
                enabled_at_before,
                enabled_changed,
                deployed_before,
                deployed_changed,
            } => {
                if *enabled_changed {
                    out.push(Step::Enable {
                        id: *id,
                        name,
                        at: enabled_at_before.as_deref(),
                    });
                }
                if *deployed_changed {
                    deploy_back(&mut out, warnings, *id, name, *deployed_before);
                }
            }
            Entry::Settings(change) => {
                settings_back(&mut out, warnings, change);
                if change.deployed_changed {
                    deploy_back(
                        &mut out,
                        warnings,
                        change.id,
                        &change.name,
                        change.deployed_before,
                    );
                }
            }
        }
    }
    out
}

/// Deploys the iteration that was deployed before the push, when there was one.
fn deploy_back<'a>(
    out: &mut Vec<Step<'a>>,
    warnings: &mut Vec<String>,
    id: FlowId,
    name: &'a str,
    before: Option<i64>,
) {
    match before {
        Some(iteration) => out.push(Step::Deploy { id, name, iteration }),
        None => warnings.push(format!(
            "flow {id} ({name:?}): the push deployed a version where none was deployed; the platform cannot undeploy, so it stays deployed"
        )),
    }
}

/// Writes back the settings fields a push changed on an existing flow, from the settings it
/// recorded before.
fn settings_back<'a>(out: &mut Vec<Step<'a>>, warnings: &mut Vec<String>, c: &'a SettingsChange) {
    let before = &c.before;
    let mut update = FlowSettingsUpdate::default();
    let mut layout = None;
    for field in &c.changed {
        match field.as_str() {
            field::ENABLED_AT => update.enabled_at = Some(before.enabled_at.clone()),
            field::PRIORITY => update.priority = before.priority,
            field::PROD_FLAG => update.prod_flag = Some(before.prod_flag),
            field::USE_QUEUED_TIME => update.use_queued_time = Some(before.use_queued_time),
            field::REMOVE_FAILED_PAYLOADS => {
                update.remove_failed_payloads = Some(before.remove_failed_payloads);
            }
            field::LABELS => update.labels = Some(before.labels.clone()),
            field::NOTIFICATION_GROUPS => {
                update.notification_groups = Some(before.notification_groups.clone());
            }
            field::LAYOUT_DIRECTION => match &before.layout_direction {
                Some(d) => layout = Some(d.as_str()),
                None => warnings.push(format!(
                    "flow {} ({:?}): it had no layout direction before the push, and one cannot be removed",
                    c.id, c.name
                )),
            },
            other => warnings.push(format!(
                "flow {} ({:?}): the record names a settings field this version does not know: {other:?}",
                c.id, c.name
            )),
        }
    }
    if update != FlowSettingsUpdate::default() || layout.is_some() {
        out.push(Step::Settings {
            id: c.id,
            name: &c.name,
            fields: &c.changed,
            update,
            layout,
        });
    }
}

/// Runs one step (`documents`: the re-import documents, by old flow id).
fn apply(
    p: &dyn Platform,
    step: &Step<'_>,
    record: &Record,
    documents: &std::collections::BTreeMap<FlowId, serde_json::Value>,
    now: &str,
) -> Result<(), ClientError> {
    match step {
        Step::Delete { id, .. } => delete_if_present(p, *id),
        Step::Rename { id, to } => p
            .update_flow_settings(
                *id,
                &FlowSettingsUpdate {
                    name: Some((*to).to_string()),
                    ..FlowSettingsUpdate::default()
                },
            )
            .map(|_| ()),
        Step::Enable { id, at, .. } => set_enabled(p, *id, at.map(str::to_string)),
        Step::Deploy { id, iteration, .. } => deploy_iteration(p, *id, *iteration, now),
        Step::Reimport(r) => match documents.get(&r.old_id) {
            Some(doc) => reimport(p, r, record, doc, now),
            None => Err(ClientError::NotSent {
                request: format!("POST /api/v1/flows/import (flow {:?})", r.name),
                reason: flowpack_client::NotSentReason::NoDocument,
            }),
        },
        Step::Settings {
            id, update, layout, ..
        } => {
            if *update != FlowSettingsUpdate::default() {
                p.update_flow_settings(*id, update)?;
            }
            match layout {
                Some(direction) => p.set_layout_direction(*id, direction),
                None => Ok(()),
            }
        }
    }
}

fn deploy_iteration(
    p: &dyn Platform,
    id: FlowId,
    iteration: i64,
    now: &str,
) -> Result<(), ClientError> {
    let flow = p.show_flow(id)?;
    let versions = versions_of(p, &flow)?;
    match versions.iter().find(|v| v.iteration == iteration) {
        Some(v) if v.is_deployed => Ok(()),
        Some(v) => p.deploy_version(id, v.id, now).map(|_| ()),
        None => Err(ClientError::NotFound {
            request: format!("GET /api/v1/flows/{id}/versions"),
            message: format!("flow {id} has no iteration {iteration} any more"),
        }),
    }
}

/// The document a pruned flow is re-imported from: its recorded export (secrets stripped) with
/// the overlay applied, which must supply every stripped secret.
fn reimport_document(
    r: &Replaced,
    overlay: Option<&ResolvedOverlay>,
) -> Result<serde_json::Value, RollbackError> {
    overlay::check_inputs(&r.old_inputs, overlay)?;
    let origin = format!("the recorded export of flow {}", r.old_id);
    let malformed = |message: String| {
        RollbackError::History(HistoryError::Malformed {
            path: origin.clone(),
            message,
        })
    };
    let text = r
        .old_document
        .as_ref()
        .ok_or_else(|| malformed("the record holds no export of the deleted flow".into()))?;
    let mut doc = Document::from_slice(text.get().as_bytes(), &origin)
        .map_err(|e| malformed(e.to_string()))?;
    if let Some(o) = overlay {
        overlay::apply(&mut doc, &r.name, o);
    }
    Ok(doc.into_value())
}

/// Re-imports a pruned flow (or takes the one a previous run re-imported), then restores its
/// deployed version, webhooks, callbacks and enabled state.
fn reimport(
    p: &dyn Platform,
    r: &Replaced,
    record: &Record,
    document: &serde_json::Value,
    now: &str,
) -> Result<(), ClientError> {
    let existing = find_by_name(p, &r.name)?
        .into_iter()
        .find(|f| Some(f.id) != r.new_id);
    let flow = match existing {
        Some(f) => f,
        None => {
            let mut key = Sha256::new();
            key.update(format!("rollback\n{}\n{}\n", record.id, r.old_id).as_bytes());
            let document = document.clone();
            let flow = p.import_flow(&ImportRequest {
                document,
                as_marketplace: false,
                idempotency_key: Some(hex::encode(key.finalize())),
            })?;
            for w in &r.old_webhooks {
                crate::restore::recreate_webhook(p, flow.id, w)?;
            }
            for c in &r.old_callbacks {
                crate::restore::recreate_callback(p, flow.id, c)?;
            }
            flow
        }
    };
    if let Some(it) = r.old_deployed_iteration {
        deploy_iteration(p, flow.id, it, now)?;
    }
    if r.old_enabled_at.is_some() {
        set_enabled(p, flow.id, r.old_enabled_at.clone())?;
    }
    Ok(())
}

/// Undoes one push (see the module docs).
pub fn run(opts: &RollbackOptions) -> Result<RollbackReport, RollbackError> {
    let dir = &opts.history.dir;
    history::refuse_pending(dir, &opts.history.env)?;
    let records = history::list(dir)?;
    let mut skipped = Vec::new();
    let target = choose(opts, &records, &mut skipped)?;
    let mut report = undo(opts, target, Kind::Rollback, true)?;
    report.skipped = skipped;
    Ok(report)
}

/// The record to undo: the one `--to` names, else the newest push that wrote something and is
/// not undone (newer ones that wrote nothing go into `skipped`).
fn choose<'r>(
    opts: &RollbackOptions,
    records: &'r [Record],
    skipped: &mut Vec<String>,
) -> Result<&'r Record, RollbackError> {
    let shown = opts.history.dir.display().to_string();
    if let Some(id) = &opts.to {
        let r = records
            .iter()
            .find(|r| &r.id == id && r.kind == Kind::Push)
            .ok_or_else(|| RollbackError::UnknownRecord {
                dir: shown,
                id: id.clone(),
            })?;
        if let Some(by) = &r.undone_by {
            return Err(RollbackError::AlreadyUndone {
                id: id.clone(),
                by: by.clone(),
            });
        }
        return Ok(r);
    }
    for r in records.iter().rev() {
        if r.kind != Kind::Push || r.undone_by.is_some() {
            continue;
        }
        if r.wrote_something() {
            return Ok(r);
        }
        skipped.push(r.id.clone());
    }
    Err(RollbackError::NothingToUndo { dir: shown })
}

/// Undoes `target`'s entries, recording the run as a record of kind `kind` (a rollback, or a
/// recovery); with `mark`, `target` gets `undone_by` when every step succeeded.
pub(crate) fn undo(
    opts: &RollbackOptions,
    target: &Record,
    kind: Kind,
    mark: bool,
) -> Result<RollbackReport, RollbackError> {
    let dir = &opts.history.dir;
    let mut report = RollbackReport {
        undone: target.id.clone(),
        dry_run: opts.dry_run,
        steps: Vec::new(),
        warnings: Vec::new(),
        record: None,
        skipped: Vec::new(),
        wrote_nothing: !target.wrote_something(),
    };
    let plan = steps(target, &mut report.warnings);
    // Every flow to re-import must be importable before the first write.
    let mut documents = std::collections::BTreeMap::new();
    for step in &plan {
        if let Step::Reimport(r) = step {
            documents.insert(r.old_id, reimport_document(r, opts.overlay.as_ref())?);
        }
    }
    if opts.dry_run {
        report.steps = plan
            .iter()
            .map(|s| StepReport {
                description: s.describe(),
                done: false,
                error: None,
            })
            .collect();
        return Ok(report);
    }
    if report.wrote_nothing {
        return Ok(report);
    }
    let mut own = Record::new(&opts.history, kind, &opts.now)?;
    own.undoes = Some(target.id.clone());
    own.url = opts.history.url.clone();
    report.record = Some(own.save(dir)?.display().to_string());
    let journal_path = own.journal_path(dir);
    let journal = Arc::new(
        Journal::create(&journal_path).map_err(|cause| HistoryError::Io {
            path: journal_path.display().to_string(),
            cause,
        })?,
    );
    let journaled = Journaled::new(opts.platform.clone(), journal.clone());
    let mut failed = false;
    for step in &plan {
        let description = step.describe();
        if failed {
            report.steps.push(StepReport {
                description,
                done: false,
                error: None,
            });
            continue;
        }
        match apply(&journaled, step, target, &documents, &opts.now) {
            Ok(()) => {
                own.steps.push(description.clone());
                own.save(dir)?;
                report.steps.push(StepReport {
                    description,
                    done: true,
                    error: None,
                });
            }
            Err(e) => {
                failed = true;
                own.steps.push(format!("{description}: failed: {e}"));
                own.save(dir)?;
                report.steps.push(StepReport {
                    description,
                    done: false,
                    error: Some(format!(
                        "{e}; nothing after this step was done: run the rollback again"
                    )),
                });
            }
        }
    }
    own.wrote = journal.writes();
    own.set_status(if failed {
        Status::Failed
    } else {
        Status::Complete
    });
    own.save(dir)?;
    if !failed && mark {
        let mut undone = target.clone();
        undone.undone_by = Some(own.id.clone());
        if undone.status == Status::Pending {
            undone.set_status(Status::Recovered);
        }
        undone.save(dir)?;
    }
    Ok(report)
}
