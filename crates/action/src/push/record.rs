//! The push's history record and journal.

use std::sync::OnceLock;

use super::*;
use crate::history::{PushChoices, Status};
use crate::journal::{Journal, Journaled};

/// The shortest time between two saves of the record while the writers run.
pub(super) const SAVE_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// The push's history record: created with status `pending` (and its journal beside it) before
/// the first request, given the ids that existed before once the target was listed, saved again
/// as the steps go (at most every [`SAVE_EVERY`]), and given its final status at the end.
///
/// Saves during the writing phase do not hold up the flows: the workers change the record in
/// memory and wake one saver thread ([`Recorder::saver`]), which writes the newest state
/// (serialised under the lock, written outside it, atomically) until [`Recorder::stop`]. The
/// file may trail the work by [`SAVE_EVERY`]; the journal does not: every entry is appended to it
/// before the writes it describes, and every write's intent is synced before it is sent.
pub(super) struct Recorder {
    pub(super) target: Option<HistoryTarget>,
    pub(super) archive: String,
    pub(super) now: String,
    pub(super) state: Mutex<RecorderState>,
    pub(super) changed: std::sync::Condvar,
    pub(super) journal: OnceLock<Arc<Journal>>,
}

#[derive(Default)]
pub(super) struct RecorderState {
    pub(super) record: Option<Record>,
    pub(super) path: Option<PathBuf>,
    pub(super) error: Option<String>,
    pub(super) dirty: bool,
    pub(super) finished: bool,
}

/// What `recover --forward` needs to repeat the push.
fn choices(opts: &PushOptions) -> PushChoices {
    PushChoices {
        on_conflict: opts.on_conflict.as_str().to_string(),
        deploy: opts.deploy,
        enable: opts.enable,
        prune_replaced: opts.prune_replaced,
        restore_state: opts.restore.restore_state,
        no_webhooks: opts.restore.no_webhooks,
        as_marketplace: opts.as_marketplace,
        flows: opts.flows.patterns().to_vec(),
    }
}

impl Recorder {
    pub(super) fn new(target: Option<HistoryTarget>, archive: &str, now: &str) -> Recorder {
        Recorder {
            target,
            archive: archive.to_string(),
            now: now.to_string(),
            state: Mutex::new(RecorderState::default()),
            changed: std::sync::Condvar::new(),
            journal: OnceLock::new(),
        }
    }

    /// Creates the `pending` record and its journal, before any request. Refuses while the
    /// environment holds a `pending` record of an interrupted run.
    pub(super) fn start(&self, opts: &PushOptions) -> Result<(), HistoryError> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        history::refuse_pending(&target.dir, &target.env)?;
        let mut record = Record::new(target, Kind::Push, &self.now)?;
        record.archive = Some(self.archive.clone());
        record.url = target.url.clone();
        record.choices = Some(choices(opts));
        let path = record.save(&target.dir)?;
        let journal_path = record.journal_path(&target.dir);
        let journal = Journal::create(&journal_path).map_err(|cause| HistoryError::Io {
            path: journal_path.display().to_string(),
            cause,
        })?;
        let _ = self.journal.set(Arc::new(journal));
        let mut state = self.lock();
        state.path = Some(path);
        state.record = Some(record);
        Ok(())
    }

    /// The platform the writing phase uses: every write journaled (when recorded).
    pub(super) fn platform(&self, inner: &Arc<dyn Platform>) -> Arc<dyn Platform> {
        match self.journal.get() {
            Some(j) => Arc::new(Journaled::new(inner.clone(), j.clone())),
            None => inner.clone(),
        }
    }

    /// Records the manifest pushed and the ids that existed before, and saves the record:
    /// before the first write.
    pub(super) fn before_writes(
        &self,
        manifest_sha256: &str,
        before: BTreeMap<String, Vec<FlowId>>,
        before_enabled: BTreeMap<FlowId, Option<String>>,
    ) -> Result<(), HistoryError> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        let mut state = self.lock();
        let Some(record) = state.record.as_mut() else {
            return Ok(());
        };
        record.manifest_sha256 = Some(manifest_sha256.to_string());
        record.before = before;
        record.before_enabled = before_enabled;
        record.save(&target.dir)?;
        Ok(())
    }

    /// Applies `f` to the record and marks it for the saver.
    pub(super) fn update<R>(&self, f: impl FnOnce(&mut Record) -> R) -> Option<R> {
        let mut state = self.lock();
        let r = f(state.record.as_mut()?);
        state.dirty = true;
        drop(state);
        self.changed.notify_one();
        Some(r)
    }

    /// Adds an entry (journaled first: it describes writes about to be sent); its index.
    pub(super) fn add(&self, entry: Entry) -> Result<Option<usize>, String> {
        let mut state = self.lock();
        let Some(record) = state.record.as_mut() else {
            return Ok(None);
        };
        if let Some(j) = self.journal.get() {
            j.entry(&entry)
                .map_err(|e| format!("history: {e}; nothing was written for this flow"))?;
        }
        record.entries.push(entry);
        let index = record.entries.len() - 1;
        state.dirty = true;
        drop(state);
        self.changed.notify_one();
        Ok(Some(index))
    }

    /// Changes the replace recorded at `index`.
    pub(super) fn replaced(&self, index: Option<usize>, f: impl FnOnce(&mut Replaced)) {
        let Some(index) = index else { return };
        self.update(|r| {
            if let Some(Entry::Replaced(rep)) = r.entries.get_mut(index) {
                f(rep);
            }
        });
    }

    /// Every write of flow `name` is done (for `recover --forward`; not synced: a marker lost in
    /// a crash only makes recovery redo that flow).
    pub(super) fn flow_done(&self, name: &str) {
        if let Some(j) = self.journal.get() {
            let _ = j.flow_done(name);
        }
    }

    /// The saver: writes the record when it changed, at most once per [`SAVE_EVERY`], until
    /// [`stop`](Recorder::stop) (then once more). Run on its own thread for the writing phase;
    /// returns at once without a history target.
    pub(super) fn saver(&self) {
        let Some(target) = &self.target else { return };
        // One buffer for every save: a record of many replaced flows is large, and a new
        // buffer per save would be that much memory again each time.
        let mut bytes = Vec::new();
        let mut state = self.lock();
        loop {
            while !state.dirty && !state.finished {
                state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            if !state.dirty {
                return;
            }
            state.dirty = false;
            let Some(record) = &state.record else {
                continue;
            };
            let id = record.id.clone();
            record.write_bytes(&mut bytes);
            drop(state);
            let saved = Record::write(&target.dir, &id, &bytes);
            let at = std::time::Instant::now();
            state = self.lock();
            if let Err(e) = saved {
                state
                    .error
                    .get_or_insert_with(|| format!("the history record could not be updated: {e}"));
            }
            // At most one save per SAVE_EVERY while the writers run (the journal holds every
            // write durably before it is sent; the record trails it): each save serialises the
            // whole record under the lock the writers take and syncs a file, and saving after
            // every step cost a push of 1,000 flows seconds. The last save waits for nothing.
            while !state.finished && at.elapsed() < SAVE_EVERY {
                let left = SAVE_EVERY.saturating_sub(at.elapsed());
                state = self
                    .changed
                    .wait_timeout(state, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }

    /// Lets the saver stop after its last save (the writing phase is over, or a writer
    /// panicked: then the record stays `pending` for `recover`).
    pub(super) fn stop(&self) {
        let mut state = self.lock();
        state.finished = true;
        drop(state);
        self.changed.notify_all();
    }

    /// Gives the record its final status from the push's result and saves it (after the
    /// saver stopped): `complete` when every flow went through, `failed` (with why) otherwise.
    pub(super) fn finish(&self, result: &Result<PushReport, PushError>) {
        let Some(target) = &self.target else { return };
        let mut state = self.lock();
        let Some(record) = state.record.as_mut() else {
            return;
        };
        let failure = match result {
            Err(e) => Some(e.to_string()),
            Ok(r) if r.refused.is_some() => r.refused.clone(),
            Ok(r) if r.failed() => {
                let failed = r
                    .flows
                    .iter()
                    .filter(|f| matches!(f.outcome, Outcome::Failed | Outcome::RolledBack))
                    .count();
                Some(format!(
                    "{} did not go through",
                    plural(failed, "flow", "flows")
                ))
            }
            Ok(_) => None,
        };
        record.wrote = self.journal.get().map_or(0, |j| j.writes());
        record.set_status(if failure.is_some() {
            Status::Failed
        } else {
            Status::Complete
        });
        record.error = failure;
        if let Err(e) = record.save(&target.dir) {
            state
                .error
                .get_or_insert_with(|| format!("the history record could not be updated: {e}"));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RecorderState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn error(&self) -> Option<String> {
        self.lock().error.clone()
    }

    /// The record's file, once the run wrote something (a record of a run that wrote nothing
    /// exists too, but is not worth pointing at).
    pub(super) fn path(&self) -> Option<String> {
        let state = self.lock();
        let wrote = self.journal.get().is_some_and(|j| j.writes() > 0)
            || state.record.as_ref().is_some_and(|r| !r.entries.is_empty());
        state
            .path
            .as_ref()
            .filter(|_| wrote)
            .map(|p| p.display().to_string())
    }
}
