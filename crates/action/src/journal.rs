//! The write-ahead journal of a push or rollback: what it is about to write to the platform,
//! made durable before the write is sent, and what came of it.
//!
//! Each run that writes has a journal beside its history record, `<id>.journal` (mode `0600`),
//! one JSON object per line:
//!
//! - an **intent**, appended and synced before the request is sent:
//!   `{"seq": 3, "op": "import", "flow": "Orders", "detail": {"key": "…"}}` — `op` one of
//!   [`Op`], `flow` the flow's id, or its name for an import (the flow has no id yet), `detail`
//!   what else identifies the write (the idempotency key, the new name, the version);
//! - its **result**, appended after the response: `{"seq": 3, "done": {"id": 31}}` (the ids
//!   the platform assigned) or `{"seq": 3, "failed": "…"}`;
//! - a history **entry** (a replaced flow's state before, a created flow…), appended before the
//!   writes it describes: `{"entry": {…}}`;
//! - a flow's **completion**: `{"flow_done": "Orders"}`, once every write of that flow is done.
//!
//! Syncs are grouped: a writer waits only until some sync covers its line, so parallel writers
//! share one `fdatasync` instead of queueing one each; results, entries and completions are not
//! synced on their own (the next intent's sync covers them; a result lost in a crash is found
//! again from the platform, a lost completion makes recovery redo that flow). A torn last line
//! (a crash mid-append) is ignored when reading.
//!
//! [`Journaled`] wraps a [`Platform`] so that every write it sends is journaled this way, by
//! whichever code sends it (push, the restore of webhooks and state, rollback): no write can
//! bypass the journal. Nothing secret is journaled: an import's intent names the flow and its
//! idempotency key, never the document; a webhook's update its HMAC algorithm, never the key.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use flowpack_client::{
    Callback, CallbackId, CallbackRequest, ClientError, Flow, FlowId, FlowSettings,
    FlowSettingsUpdate, FlowUpdate, FlowVersion, ImportRequest, ListQuery, Page, Platform,
    VersionId, Webhook, WebhookId, WebhookRequest,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::history::Entry;

/// What a journaled write does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Op {
    /// `POST /flows/import`.
    Import,
    /// `PUT /flows/{flow}/versions/{version}` (deploy).
    Deploy,
    /// `PUT /flows/{flow}` enabling it.
    Enable,
    /// `PUT /flows/{flow}` disabling it.
    Disable,
    /// `PUT /flows/{flow}` changing only the priority.
    Update,
    /// `PUT /flows/{flow}` changing only the name.
    Rename,
    /// `DELETE /flows/{flow}`.
    Delete,
    /// `PUT /flows/{flow}` with settings.
    UpdateSettings,
    /// `PATCH /flows/{flow}/layout-direction`.
    Layout,
    /// `POST /flows/{flow}/webhooks`.
    WebhookCreate,
    /// `PUT /flows/{flow}/webhooks/{webhook}`.
    WebhookUpdate,
    /// `DELETE /flows/{flow}/webhooks/{webhook}`.
    WebhookDelete,
    /// `POST /flows/{flow}/callbacks`.
    CallbackCreate,
    /// `PUT /flows/{flow}/callbacks/{callback}`.
    CallbackUpdate,
    /// `DELETE /flows/{flow}/callbacks/{callback}`.
    CallbackDelete,
}

/// The flow a write is about: its id, or its name when it has no id yet (an import).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FlowRef {
    /// An existing flow.
    Id(FlowId),
    /// The name a flow will be imported under.
    Name(String),
}

/// One line of a journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Line {
    /// A write about to be sent.
    Intent {
        /// Its number within the journal (1, 2, …).
        seq: u64,
        /// What it does.
        op: Op,
        /// The flow.
        flow: FlowRef,
        /// What else identifies it.
        #[serde(default)]
        detail: Value,
    },
    /// The write `seq` succeeded.
    Done {
        /// The intent's number.
        seq: u64,
        /// The ids the platform answered with.
        done: Value,
    },
    /// The write `seq` failed (it may still have happened: a timeout).
    Failed {
        /// The intent's number.
        seq: u64,
        /// The error.
        failed: String,
    },
    /// A history entry, recorded before the writes it describes.
    Entry {
        /// The entry.
        entry: Entry,
    },
    /// Every write of this flow is done.
    FlowDone {
        /// The flow's name.
        flow_done: String,
    },
}

/// An open journal, appended to by any number of threads.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Serialises appends (one line is one `write`).
    append: Mutex<u64>,
    /// Serialises syncs.
    sync: Mutex<()>,
    /// Lines known to be on disk.
    synced: AtomicU64,
    /// The last intent's number.
    seq: AtomicU64,
    /// Writes journaled (intents).
    writes: AtomicU64,
}

fn write_error(path: &Path, e: &std::io::Error) -> String {
    format!("{}: cannot write the journal: {e}", path.display())
}

impl Journal {
    /// Creates `path` (mode `0600`; it must not exist) and syncs its directory, so the journal
    /// exists before anything is written.
    pub fn create(path: &Path) -> std::io::Result<Journal> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            append: Mutex::new(0),
            sync: Mutex::new(()),
            synced: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many writes were journaled (intents appended).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Appends one line; its position (1, 2, …).
    fn append(&self, line: &Line) -> Result<u64, String> {
        let mut text = serde_json::to_vec(line).expect("a journal line serialises");
        text.push(b'\n');
        let mut count = self.append.lock().unwrap_or_else(|e| e.into_inner());
        (&self.file)
            .write_all(&text)
            .map_err(|e| write_error(&self.path, &e))?;
        *count += 1;
        Ok(*count)
    }

    /// Waits until line `n` is on disk: one sync covers every line appended before it began.
    fn sync_to(&self, n: u64) -> Result<(), String> {
        if self.synced.load(Ordering::SeqCst) >= n {
            return Ok(());
        }
        let _one = self.sync.lock().unwrap_or_else(|e| e.into_inner());
        if self.synced.load(Ordering::SeqCst) >= n {
            return Ok(());
        }
        let upto = *self.append.lock().unwrap_or_else(|e| e.into_inner());
        self.file
            .sync_data()
            .map_err(|e| write_error(&self.path, &e))?;
        self.synced.fetch_max(upto, Ordering::SeqCst);
        Ok(())
    }

    /// Records the intent of a write, durably; its number.
    pub fn intent(&self, op: Op, flow: FlowRef, detail: Value) -> Result<u64, String> {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let n = self.append(&Line::Intent {
            seq,
            op,
            flow,
            detail,
        })?;
        self.sync_to(n)?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(seq)
    }

    /// Records what a write answered (not synced on its own: the next intent's sync covers it,
    /// and a result lost in a crash is looked up on the platform).
    pub fn result(&self, seq: u64, outcome: Result<Value, String>) {
        let line = match outcome {
            Ok(done) => Line::Done { seq, done },
            Err(failed) => Line::Failed { seq, failed },
        };
        // A result that cannot be written is recovered from the platform like a lost one.
        let _ = self.append(&line);
    }

    /// Records a history entry before the writes it describes (made durable by their intents).
    pub fn entry(&self, entry: &Entry) -> Result<(), String> {
        self.append(&Line::Entry {
            entry: entry.clone(),
        })
        .map(|_| ())
    }

    /// Records that every write of flow `name` is done. Not synced on its own (like results:
    /// the next intent's sync covers it): a marker lost in a crash only makes recovery redo
    /// that flow, and a sync of its own held each writer for one more `fdatasync` per flow.
    pub fn flow_done(&self, name: &str) -> Result<(), String> {
        self.append(&Line::FlowDone {
            flow_done: name.to_string(),
        })
        .map(|_| ())
    }
}

/// Syncs a directory, so a file created in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads a journal: its lines in order; a torn last line (a crash mid-append) is left out.
pub fn read(path: &Path) -> Result<Vec<Line>, String> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: cannot read the journal: {e}", path.display())),
    };
    let mut lines = Vec::new();
    let parts: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    let last = parts.len().saturating_sub(1);
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Line>(part) {
            Ok(line) => lines.push(line),
            // Only the last line can be torn; anything else is a damaged journal.
            Err(_) if i == last => {}
            Err(e) => {
                return Err(format!(
                    "{}: line {}: not a journal line: {e}",
                    path.display(),
                    i + 1
                ));
            }
        }
    }
    Ok(lines)
}

/// A [`Platform`] whose every write is journaled (see the module docs); reads pass through.
pub struct Journaled {
    inner: std::sync::Arc<dyn Platform>,
    journal: std::sync::Arc<Journal>,
    #[cfg(feature = "test-hooks")]
    crash_after: Option<u64>,
}

impl Journaled {
    /// Journals `inner`'s writes in `journal`.
    pub fn new(inner: std::sync::Arc<dyn Platform>, journal: std::sync::Arc<Journal>) -> Journaled {
        Journaled {
            inner,
            journal,
            #[cfg(feature = "test-hooks")]
            crash_after: std::env::var("FLOWPACK_TEST_CRASH_AFTER")
                .ok()
                .and_then(|v| v.parse().ok()),
        }
    }

    /// One write: the intent made durable, the request, the result.
    fn write<T>(
        &self,
        op: Op,
        flow: FlowRef,
        detail: Value,
        request: impl FnOnce() -> String,
        send: impl FnOnce() -> Result<T, ClientError>,
        ids: impl FnOnce(&T) -> Value,
    ) -> Result<T, ClientError> {
        // A lock in the bucket that was lost: the shared history can no longer be written, so
        // nothing more is sent (the record stays pending for recover).
        if let Some(detail) = crate::shared::lease_lost() {
            return Err(ClientError::NotSent {
                request: request(),
                reason: flowpack_client::NotSentReason::Unrecorded { detail },
            });
        }
        let seq = self
            .journal
            .intent(op, flow, detail)
            .map_err(|detail| ClientError::NotSent {
                request: request(),
                reason: flowpack_client::NotSentReason::Unrecorded { detail },
            })?;
        let result = send();
        self.crash_hook(seq);
        self.journal.result(
            seq,
            match &result {
                Ok(t) => Ok(ids(t)),
                Err(e) => Err(e.to_string()),
            },
        );
        result
    }

    /// Tests only (`test-hooks` feature): `FLOWPACK_TEST_CRASH_AFTER=N` kills the process with
    /// SIGKILL right after the N-th write was answered, before its result is journaled — the
    /// worst moment for a crash.
    #[cfg(feature = "test-hooks")]
    fn crash_hook(&self, seq: u64) {
        if self.crash_after == Some(seq) {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
    }

    #[cfg(not(feature = "test-hooks"))]
    fn crash_hook(&self, _seq: u64) {}
}

fn flow_id(f: &Flow) -> Value {
    json!({"id": f.id})
}

impl Platform for Journaled {
    fn list_flows(&self, query: &ListQuery) -> Result<Page<Flow>, ClientError> {
        self.inner.list_flows(query)
    }
    fn show_flow(&self, id: FlowId) -> Result<Flow, ClientError> {
        self.inner.show_flow(id)
    }
    fn export_flow(&self, id: FlowId) -> Result<Value, ClientError> {
        self.inner.export_flow(id)
    }
    fn export_flow_bytes(&self, id: FlowId) -> Result<Vec<u8>, ClientError> {
        self.inner.export_flow_bytes(id)
    }
    fn builds_exports_in_process(&self) -> bool {
        self.inner.builds_exports_in_process()
    }
    fn import_flow(&self, request: &ImportRequest) -> Result<Flow, ClientError> {
        let name = request.document["flow"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.write(
            Op::Import,
            FlowRef::Name(name),
            json!({"key": request.idempotency_key}),
            || "POST /api/v1/flows/import".into(),
            || self.inner.import_flow(request),
            flow_id,
        )
    }
    fn list_versions(&self, flow: FlowId) -> Result<Vec<FlowVersion>, ClientError> {
        self.inner.list_versions(flow)
    }
    fn deploy_version(
        &self,
        flow: FlowId,
        version: VersionId,
        deployed_at: &str,
    ) -> Result<FlowVersion, ClientError> {
        self.write(
            Op::Deploy,
            FlowRef::Id(flow),
            json!({"version": version}),
            || format!("PUT /api/v1/flows/{flow}/versions/{version}"),
            || self.inner.deploy_version(flow, version, deployed_at),
            |v| json!({"version": v.id, "iteration": v.iteration}),
        )
    }
    fn update_flow(&self, flow: FlowId, update: &FlowUpdate) -> Result<Flow, ClientError> {
        let (op, detail) = match &update.enabled_at {
            Some(Some(at)) => (Op::Enable, json!({"enabled_at": at})),
            Some(None) => (Op::Disable, Value::Null),
            None => (Op::Update, json!({"priority": update.priority})),
        };
        self.write(
            op,
            FlowRef::Id(flow),
            detail,
            || format!("PUT /api/v1/flows/{flow}"),
            || self.inner.update_flow(flow, update),
            flow_id,
        )
    }
    fn delete_flow(&self, flow: FlowId) -> Result<(), ClientError> {
        self.write(
            Op::Delete,
            FlowRef::Id(flow),
            Value::Null,
            || format!("DELETE /api/v1/flows/{flow}"),
            || self.inner.delete_flow(flow),
            |()| Value::Null,
        )
    }
    fn show_flow_settings(&self, flow: FlowId) -> Result<FlowSettings, ClientError> {
        self.inner.show_flow_settings(flow)
    }
    fn update_flow_settings(
        &self,
        flow: FlowId,
        update: &FlowSettingsUpdate,
    ) -> Result<FlowSettings, ClientError> {
        let only_name = FlowSettingsUpdate {
            name: update.name.clone(),
            ..FlowSettingsUpdate::default()
        };
        let (op, detail) = match &update.name {
            Some(name) if *update == only_name => (Op::Rename, json!({"to": name})),
            _ => (Op::UpdateSettings, Value::Null),
        };
        self.write(
            op,
            FlowRef::Id(flow),
            detail,
            || format!("PUT /api/v1/flows/{flow}"),
            || self.inner.update_flow_settings(flow, update),
            |_| json!({"id": flow}),
        )
    }
    fn set_layout_direction(&self, flow: FlowId, direction: &str) -> Result<(), ClientError> {
        self.write(
            Op::Layout,
            FlowRef::Id(flow),
            json!({"layout_direction": direction}),
            || format!("PATCH /api/v1/flows/{flow}/layout-direction"),
            || self.inner.set_layout_direction(flow, direction),
            |()| Value::Null,
        )
    }
    fn list_webhooks(&self, flow: FlowId) -> Result<Vec<Webhook>, ClientError> {
        self.inner.list_webhooks(flow)
    }
    fn create_webhook(
        &self,
        flow: FlowId,
        request: &WebhookRequest,
    ) -> Result<Webhook, ClientError> {
        self.write(
            Op::WebhookCreate,
            FlowRef::Id(flow),
            Value::Null,
            || format!("POST /api/v1/flows/{flow}/webhooks"),
            || self.inner.create_webhook(flow, request),
            |w| json!({"webhook": w.id}),
        )
    }
    fn update_webhook(
        &self,
        flow: FlowId,
        webhook: WebhookId,
        request: &WebhookRequest,
    ) -> Result<Webhook, ClientError> {
        self.write(
            Op::WebhookUpdate,
            FlowRef::Id(flow),
            json!({"webhook": webhook, "hmac_algorithm": request.hmac_algorithm}),
            || format!("PUT /api/v1/flows/{flow}/webhooks/{webhook}"),
            || self.inner.update_webhook(flow, webhook, request),
            |w| json!({"webhook": w.id}),
        )
    }
    fn delete_webhook(&self, flow: FlowId, webhook: WebhookId) -> Result<(), ClientError> {
        self.write(
            Op::WebhookDelete,
            FlowRef::Id(flow),
            json!({"webhook": webhook}),
            || format!("DELETE /api/v1/flows/{flow}/webhooks/{webhook}"),
            || self.inner.delete_webhook(flow, webhook),
            |()| Value::Null,
        )
    }
    fn list_callbacks(&self, flow: FlowId) -> Result<Vec<Callback>, ClientError> {
        self.inner.list_callbacks(flow)
    }
    fn create_callback(
        &self,
        flow: FlowId,
        request: &CallbackRequest,
    ) -> Result<Callback, ClientError> {
        self.write(
            Op::CallbackCreate,
            FlowRef::Id(flow),
            Value::Null,
            || format!("POST /api/v1/flows/{flow}/callbacks"),
            || self.inner.create_callback(flow, request),
            |c| json!({"callback": c.id}),
        )
    }
    fn update_callback(
        &self,
        flow: FlowId,
        callback: CallbackId,
        request: &CallbackRequest,
    ) -> Result<Callback, ClientError> {
        self.write(
            Op::CallbackUpdate,
            FlowRef::Id(flow),
            json!({"callback": callback}),
            || format!("PUT /api/v1/flows/{flow}/callbacks/{callback}"),
            || self.inner.update_callback(flow, callback, request),
            |c| json!({"callback": c.id}),
        )
    }
    fn delete_callback(&self, flow: FlowId, callback: CallbackId) -> Result<(), ClientError> {
        self.write(
            Op::CallbackDelete,
            FlowRef::Id(flow),
            json!({"callback": callback}),
            || format!("DELETE /api/v1/flows/{flow}/callbacks/{callback}"),
            || self.inner.delete_callback(flow, callback),
            |()| Value::Null,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.journal");
        let j = Journal::create(&path).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let seq = j
            .intent(
                Op::Import,
                FlowRef::Name("Orders".into()),
                json!({"key": "k"}),
            )
            .unwrap();
        j.result(seq, Ok(json!({"id": 31})));
        let seq2 = j.intent(Op::Disable, FlowRef::Id(12), Value::Null).unwrap();
        j.result(seq2, Err("HTTP 500".into()));
        j.flow_done("Orders").unwrap();
        assert_eq!(j.writes(), 2);
        // A crash in the middle of an append.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"seq\":3,\"op\":\"ren")
            .unwrap();
        let lines = read(&path).unwrap();
        assert_eq!(
            lines,
            vec![
                Line::Intent {
                    seq: 1,
                    op: Op::Import,
                    flow: FlowRef::Name("Orders".into()),
                    detail: json!({"key": "k"}),
                },
                Line::Done {
                    seq: 1,
                    done: json!({"id": 31}),
                },
                Line::Intent {
                    seq: 2,
                    op: Op::Disable,
                    flow: FlowRef::Id(12),
                    detail: Value::Null,
                },
                Line::Failed {
                    seq: 2,
                    failed: "HTTP 500".into(),
                },
                Line::FlowDone {
                    flow_done: "Orders".into(),
                },
            ]
        );
        // A journal is never created over another one.
        assert!(Journal::create(&path).is_err());
    }

    #[test]
    fn parallel_intents_are_all_on_disk_with_distinct_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.journal");
        let j = Journal::create(&path).unwrap();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let j = &j;
                s.spawn(move || {
                    for i in 0..25u64 {
                        let seq = j.intent(Op::Delete, FlowRef::Id(t * 100 + i), Value::Null);
                        j.result(seq.unwrap(), Ok(Value::Null));
                    }
                });
            }
        });
        let lines = read(&path).unwrap();
        let mut seqs: Vec<u64> = lines
            .iter()
            .filter_map(|l| match l {
                Line::Intent { seq, .. } => Some(*seq),
                _ => None,
            })
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
        assert_eq!(lines.len(), 200);
    }
}
