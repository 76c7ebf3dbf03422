//! `recover`: finishes what an interrupted push or rollback (killed, crashed, the machine lost)
//! left half-done, from its `pending` record and journal ([`crate::journal`]).
//!
//! First the record is **reconciled** with the platform, since a crash can fall between a write
//! and the record of its result:
//!
//! - the history entries are taken from the journal where the record file trails it (every
//!   entry is journaled before the writes it describes);
//! - **orphans**, flows the run imported whose ids it never recorded, are the live flows whose
//!   names the journal's import intents name and whose ids are not among the ids that name had
//!   before the run (the record's before-set);
//! - a replaced flow's progress is read off the platform: the new flow (an orphan of its name
//!   when its id was not recorded), whether the old flow is disabled, renamed or gone;
//! - without the journal (the run was on another machine, its record shared in a bucket), the
//!   replaces are found from the before-set: a flow of it that now bears a replaced-name of its
//!   name (`flowpack_core::names::replaced_original`), or that was enabled before
//!   (`Record::before_enabled`) and is now disabled, is taken as a replaced flow, so the undo
//!   renames it back and enables it again.
//!
//! Then, by default, everything the run did is **undone** with the steps of `rollback` (and
//! recorded as a run of kind `recover`): afterwards the environment is as it was before the
//! push. With `--forward ARCHIVE` the run is **finished** instead: the flows the journal marks
//! done are kept, the half-done ones undone, and the same archive (its manifest must be the
//! record's) is pushed again with the record's choices, which completes the rest (flows already
//! there are `unchanged`).
//!
//! An interrupted rollback (or recovery) is finished by undoing its target again: every undo
//! step is idempotent. The record ends `recovered`. With nothing pending, recover says so and
//! succeeds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use flowpack_client::{ClientError, FlowId, ListQuery, Platform, list_all};
use flowpack_core::archive::{Archive, Limits, TrustPolicy};
use flowpack_core::overlay::ResolvedOverlay;
use serde::Serialize;

use crate::error::{Categorize, Category};
use crate::history::{self, Entry, HistoryError, HistoryTarget, Kind, Record, Replaced, Status};
use crate::journal::{self, Line, Op};
use crate::push::{self, OnConflict, PushError, PushOptions, PushReport};
use crate::rollback::{RollbackError, RollbackOptions, RollbackReport};

/// How to recover.
#[derive(Clone)]
#[non_exhaustive]
pub struct RecoverOptions {
    /// The environment.
    pub platform: Arc<dyn Platform>,
    /// Its history (and the nonce of the recovery's own record).
    pub history: HistoryTarget,
    /// The recovery's start time (RFC 3339, UTC).
    pub now: String,
    /// Supplies the secret values of flows to re-import (an undone prune).
    pub overlay: Option<ResolvedOverlay>,
    /// Finish the push instead of undoing it: the push to run again (archive, trust policy,
    /// overlay, its own history target). Its choices (conflict policy, `--deploy`, …) are
    /// replaced by the interrupted push's.
    pub forward: Option<PushOptions>,
}

impl RecoverOptions {
    /// Undoes whatever interrupted run `history` holds on `platform`, at time `now`.
    pub fn new(platform: Arc<dyn Platform>, history: HistoryTarget, now: String) -> Self {
        RecoverOptions {
            platform,
            history,
            now,
            overlay: None,
            forward: None,
        }
    }
}

/// What a recovery did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RecoverReport {
    /// The interrupted record (`None`: nothing was pending).
    pub record: Option<String>,
    /// Its kind.
    pub kind: Option<Kind>,
    /// How many writes its journal shows it sent.
    pub journaled_writes: u64,
    /// Flows it imported without recording their ids, found by name.
    pub orphans: Vec<FlowId>,
    /// Flows it had finished (kept by `--forward`).
    pub kept: Vec<String>,
    /// The undo.
    pub undo: Option<RollbackReport>,
    /// The push run again (`--forward`).
    pub push: Option<PushReport>,
}

impl RecoverReport {
    /// Whether a step failed.
    pub fn failed(&self) -> bool {
        self.undo.as_ref().is_some_and(RollbackReport::failed)
            || self.push.as_ref().is_some_and(PushReport::failed)
    }
}

/// Errors of a recovery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoverError {
    /// The history could not be read or written.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The platform could not be read to reconcile the record.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The undo could not run.
    #[error(transparent)]
    Rollback(#[from] RollbackError),
    /// The push run again failed before writing.
    #[error(transparent)]
    Push(#[from] PushError),
    /// The journal could not be read.
    #[error("{0}")]
    Journal(String),
    /// `--forward` with an archive other than the one the record pushed.
    #[error(
        "{archive}: not the archive record {record} pushed (manifest sha256 {got}, the record's is {expected}); nothing was written"
    )]
    OtherArchive {
        /// The archive given.
        archive: String,
        /// The record.
        record: String,
        /// The record's manifest digest.
        expected: String,
        /// The archive's.
        got: String,
    },
    /// `--forward` for a run that is not a push.
    #[error(
        "record {record} is a {kind}, which can only be finished by undoing it; nothing was written"
    )]
    NotAPush {
        /// The record.
        record: String,
        /// Its kind.
        kind: &'static str,
    },
}

impl Categorize for RecoverError {
    fn category(&self) -> Category {
        match self {
            RecoverError::History(e) => e.category(),
            RecoverError::Client(e) => e.category(),
            RecoverError::Rollback(e) => e.category(),
            RecoverError::Push(e) => e.category(),
            RecoverError::OtherArchive { .. } => Category::Rejected,
            _ => Category::CouldNotRun,
        }
    }
}

/// Recovers the environment's interrupted run (see the module docs).
pub fn run(opts: &RecoverOptions) -> Result<RecoverReport, RecoverError> {
    let dir = &opts.history.dir;
    let mut report = RecoverReport {
        record: None,
        kind: None,
        journaled_writes: 0,
        orphans: Vec::new(),
        kept: Vec::new(),
        undo: None,
        push: None,
    };
    // A recovery or rollback interrupted while undoing is redone by undoing its target again;
    // the newest pending run is the one to finish.
    let Some(pending) = history::pending(dir)? else {
        return Ok(report);
    };
    report.record = Some(pending.id.clone());
    report.kind = Some(pending.kind);
    let lines = journal::read(&pending.journal_path(dir)).map_err(RecoverError::Journal)?;
    report.journaled_writes = lines
        .iter()
        .filter(|l| matches!(l, Line::Intent { .. }))
        .count() as u64;
    let rollback = RollbackOptions {
        overlay: opts.overlay.clone(),
        ..RollbackOptions::new(
            opts.platform.clone(),
            opts.history.clone(),
            opts.now.clone(),
        )
    };
    if pending.kind != Kind::Push {
        if opts.forward.is_some() {
            return Err(RecoverError::NotAPush {
                record: pending.id.clone(),
                kind: pending.kind.as_str(),
            });
        }
        return finish_undo(opts, &rollback, pending, report);
    }
    if let Some(forward) = &opts.forward {
        check_archive(forward, &pending)?;
    }
    let mut record = pending;
    // No journal: the run was on another machine (a shared history in object storage keeps
    // the journal local while the run goes on, and its record from the start).
    let journal_here = record.journal_path(dir).exists();
    report.orphans = reconcile(opts.platform.as_ref(), &mut record, &lines, journal_here)?;
    let Some(forward) = &opts.forward else {
        let undo = crate::rollback::undo(&rollback, &record, Kind::Recover, false)?;
        if !undo.failed() {
            record.undone_by = undo.record.as_deref().map(record_id);
            close(dir, &mut record, "interrupted; undone by recover")?;
        } else {
            // Keep the reconciled state (orphans named) for the next attempt.
            record.save(dir)?;
        }
        report.undo = Some(undo);
        return Ok(report);
    };
    // Forward: keep what the journal marks done, undo the rest, push again.
    let done: BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| match l {
            Line::FlowDone { flow_done } => Some(flow_done.as_str()),
            _ => None,
        })
        .collect();
    let (kept, unfinished): (Vec<Entry>, Vec<Entry>) = record
        .entries
        .iter()
        .cloned()
        .partition(|e| done.contains(entry_name(e)));
    report.kept = kept.iter().map(|e| entry_name(e).to_string()).collect();
    let mut half = record.clone();
    half.entries = unfinished;
    let undo = crate::rollback::undo(&rollback, &half, Kind::Recover, false)?;
    let failed = undo.failed();
    report.undo = Some(undo);
    if failed {
        record.save(dir)?;
        return Ok(report);
    }
    record.entries = kept;
    close(
        dir,
        &mut record,
        "interrupted; finished by recovering forward",
    )?;
    let mut push_opts = forward.clone();
    apply_choices(&mut push_opts, &record);
    report.push = Some(push::run(&push_opts)?);
    Ok(report)
}

/// `…/20261129T120000Z-3fa9c1.json` → `20261129T120000Z-3fa9c1`.
fn record_id(path: &str) -> String {
    std::path::Path::new(path)
        .file_stem()
        .map_or_else(|| path.to_string(), |s| s.to_string_lossy().into_owned())
}

/// Marks the interrupted record `recovered`.
fn close(dir: &std::path::Path, record: &mut Record, why: &str) -> Result<(), HistoryError> {
    record.set_status(Status::Recovered);
    record.error = Some(why.to_string());
    record.save(dir).map(|_| ())
}

/// An interrupted rollback or recovery: its target undone again (idempotent steps).
fn finish_undo(
    opts: &RecoverOptions,
    rollback: &RollbackOptions,
    mut pending: Record,
    mut report: RecoverReport,
) -> Result<RecoverReport, RecoverError> {
    let dir = &opts.history.dir;
    let target = pending
        .undoes
        .as_ref()
        .and_then(|id| history::list(dir).ok()?.into_iter().find(|r| &r.id == id));
    match target {
        Some(target) if target.status != Status::Pending => {
            let undo = crate::rollback::undo(rollback, &target, Kind::Recover, true)?;
            if !undo.failed() {
                close(dir, &mut pending, "interrupted; finished by recover")?;
            }
            report.undo = Some(undo);
        }
        // Its target is itself interrupted (a recovery killed before it finished): the target
        // is recovered next, from its own journal.
        _ => close(
            dir,
            &mut pending,
            "interrupted; its target is recovered instead",
        )?,
    }
    Ok(report)
}

/// `--forward` needs the archive the record pushed.
fn check_archive(forward: &PushOptions, record: &Record) -> Result<(), RecoverError> {
    let shown = forward
        .shown
        .clone()
        .unwrap_or_else(|| forward.archive.display().to_string());
    let mut archive = Archive::open(&forward.archive, &Limits::default())
        .map_err(|e| RecoverError::Push(PushError::Archive(e)))?;
    let got = archive
        .verify(&TrustPolicy::default())
        .manifest_sha256
        .unwrap_or_default();
    let expected = record.manifest_sha256.clone().unwrap_or_default();
    if got != expected {
        return Err(RecoverError::OtherArchive {
            archive: shown,
            record: record.id.clone(),
            expected,
            got,
        });
    }
    Ok(())
}

/// The interrupted push's choices, for the push run again.
fn apply_choices(opts: &mut PushOptions, record: &Record) {
    let Some(c) = &record.choices else { return };
    opts.on_conflict = OnConflict::parse(&c.on_conflict).unwrap_or_default();
    opts.deploy = c.deploy;
    opts.enable = c.enable;
    opts.prune_replaced = c.prune_replaced;
    opts.restore.restore_state = c.restore_state;
    opts.restore.no_webhooks = c.no_webhooks;
    opts.as_marketplace = c.as_marketplace;
    opts.flows = flowpack_core::names::NameFilter::new(c.flows.iter().cloned());
}

/// The flow an entry is about.
fn entry_name(e: &Entry) -> &str {
    match e {
        Entry::Created { name, .. } | Entry::State { name, .. } => name,
        Entry::Replaced(r) => &r.name,
        Entry::Settings(s) => &s.name,
    }
}

/// Brings `record` up to what happened (see the module docs); the orphans found. Without the
/// journal (`journal_here` false: the run was on another machine), every name of the
/// before-set counts as one the run may have imported: a flow of that name the before-set does
/// not hold is an orphan.
fn reconcile(
    p: &dyn Platform,
    record: &mut Record,
    lines: &[Line],
    journal_here: bool,
) -> Result<Vec<FlowId>, ClientError> {
    // Entries the record file had not caught up with.
    let journaled: Vec<&Entry> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Entry { entry } => Some(entry),
            _ => None,
        })
        .collect();
    for e in journaled.iter().skip(record.entries.len()) {
        record.entries.push((*e).clone());
    }
    // What the journal says was imported, by name: the ids answered, if any.
    let mut results: BTreeMap<u64, FlowId> = BTreeMap::new();
    for l in lines {
        if let Line::Done { seq, done } = l
            && let Some(id) = done.get("id").and_then(serde_json::Value::as_u64)
        {
            results.insert(*seq, id);
        }
    }
    let mut imported: BTreeMap<String, BTreeSet<FlowId>> = BTreeMap::new();
    if !journal_here {
        for name in record.before.keys() {
            imported.entry(name.clone()).or_default();
        }
    }
    for l in lines {
        if let Line::Intent {
            seq,
            op: Op::Import,
            flow: journal::FlowRef::Name(name),
            ..
        } = l
        {
            let ids = imported.entry(name.clone()).or_default();
            ids.extend(results.get(seq));
        }
    }
    if imported.is_empty()
        && !record
            .entries
            .iter()
            .any(|e| matches!(e, Entry::Replaced(_)))
    {
        return Ok(Vec::new());
    }
    let live = list_all(p, &ListQuery::default())?;
    let before =
        |name: &str, id: FlowId| record.before.get(name).is_some_and(|ids| ids.contains(&id));
    let mut orphans = Vec::new();
    for flow in &live {
        if let Some(ids) = imported.get_mut(&flow.name)
            && !before(&flow.name, flow.id)
            && ids.insert(flow.id)
        {
            orphans.push(flow.id);
        }
    }
    let by_id: BTreeMap<FlowId, &flowpack_client::Flow> = live.iter().map(|f| (f.id, f)).collect();
    if !journal_here {
        // Without the journal the record holds no entry of a replace: a flow of the before-set
        // that now bears a replaced-name of its name was renamed by the run, and one enabled
        // before (as the before-set records) that is now disabled was disabled by it.
        for flow in &live {
            let renamed = flowpack_core::names::replaced_original(&flow.name);
            let name = renamed.unwrap_or(&flow.name);
            let disabled = flow.enabled_at.is_none()
                && record
                    .before_enabled
                    .get(&flow.id)
                    .is_some_and(Option::is_some);
            let known = record.entries.iter().any(|e| match e {
                Entry::Replaced(r) => r.old_id == flow.id,
                _ => false,
            });
            if known || !before(name, flow.id) || (renamed.is_none() && !disabled) {
                continue;
            }
            let new_id = imported.get(name).and_then(|ids| {
                ids.iter()
                    .find(|id| by_id.contains_key(id) && !before(name, **id))
                    .copied()
            });
            record.entries.push(Entry::Replaced(Box::new(Replaced {
                name: name.to_string(),
                old_id: flow.id,
                old_enabled_at: record.before_enabled.get(&flow.id).cloned().flatten(),
                old_deployed_iteration: None,
                old_document: None,
                old_inputs: Vec::new(),
                old_webhooks: Vec::new(),
                old_callbacks: Vec::new(),
                new_id,
                webhooks: Vec::new(),
                callbacks: Vec::new(),
                old_disabled: false,
                renamed_to: None,
                pruned: false,
            })));
        }
    }
    let mut claimed: BTreeSet<FlowId> = BTreeSet::new();
    for e in &mut record.entries {
        match e {
            Entry::Replaced(r) => {
                if r.new_id.is_none() {
                    r.new_id = imported
                        .get(&r.name)
                        .and_then(|ids| ids.iter().find(|id| by_id.contains_key(id)).copied());
                }
                claimed.extend(r.new_id);
                match by_id.get(&r.old_id) {
                    None => r.pruned = true,
                    Some(old) => {
                        r.renamed_to = (old.name != r.name).then(|| old.name.clone());
                        r.old_disabled = r.old_enabled_at.is_some() && old.enabled_at.is_none();
                    }
                }
            }
            Entry::Created { id, .. } => {
                claimed.insert(*id);
            }
            _ => {}
        }
    }
    // Every imported flow no entry accounts for is deleted by the undo.
    for (name, ids) in &imported {
        for id in ids {
            if claimed.insert(*id) && by_id.contains_key(id) {
                record.entries.push(Entry::Created {
                    id: *id,
                    name: name.clone(),
                });
            }
        }
    }
    Ok(orphans)
}
