//! `history`: what every writing push (and every rollback) did to an environment, one JSON record
//! per run, so that it can be listed and undone.
//!
//! Records live in `<history>/<env>/<yyyymmddThhmmssZ>-<6 hex>.json`, where `<history>` is
//! `.flowpack/history` beside `flowpack.toml` (the current directory without one) unless
//! `--history DIR` names another, and `<env>` is the environment's name (its host and port when
//! it was given as a URL, see [`env_dir_name`]). Every attempt of a push or rollback has a
//! record: it is created with status `pending` before the run's first request (with its
//! [`journal`](crate::journal) beside it, `<id>.journal`), and ends `complete`, `failed` (a
//! refusal, or flows that failed and were handled) or, after a crash, `recovered` by
//! [`crate::recover`]. A `pending` record that no running process holds the environment's lock
//! for is what a crash left behind: push, rollback and backup refuse to run until it is
//! recovered. Records and journals are written with mode `0600` and hold no secret value.
//! Each record carries a sequence number one above the highest in the directory: two runs in the
//! same second still have an order.
//!
//! [`run`] lists the records of an environment, newest first.

use std::path::{Path, PathBuf};

use flowpack_client::{Callback, FlowId, FlowSettings, Webhook};
use std::collections::BTreeMap;
use std::io::Write;

use flowpack_core::fsutil::{WriteError, temp_file_in};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Categorize, Category};

/// The history directory used when `--history` is not given, relative to the directory of
/// `flowpack.toml` (or the current directory).
pub const DEFAULT_DIR: &str = ".flowpack/history";

/// The directory `.flowpack/` is kept in: beside the config file (`config`, default
/// `flowpack.toml` in `cwd`) when it exists, else `cwd`.
pub fn default_base(config: Option<&Path>, cwd: &Path) -> PathBuf {
    let config = config.map_or_else(|| cwd.join(crate::env::CONFIG_FILE), Path::to_path_buf);
    match config.parent() {
        Some(p) if config.exists() && !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => cwd.to_path_buf(),
    }
}

/// The history directory when none is given: [`DEFAULT_DIR`] in [`default_base`].
pub fn default_root(config: Option<&Path>, cwd: &Path) -> PathBuf {
    default_base(config, cwd).join(DEFAULT_DIR)
}

/// What kind of run a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Kind {
    /// A push.
    Push,
    /// A rollback of an earlier record.
    Rollback,
    /// The recovery of an interrupted run.
    Recover,
}

impl Kind {
    /// `push` or `rollback`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Push => "push",
            Kind::Rollback => "rollback",
            Kind::Recover => "recover",
        }
    }
}

/// An old and a new id (webhooks, callbacks of a replaced flow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdPair {
    /// The id on the old flow.
    pub old: u64,
    /// The id on the new flow.
    pub new: u64,
}

/// One thing a push did that a rollback undoes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Entry {
    /// A flow was imported as a new flow (`create`, `duplicate`): undone by deleting it.
    Created {
        /// The new flow.
        id: FlowId,
        /// Its name.
        name: String,
    },
    /// A flow was replaced by a new one (cut-over).
    Replaced(Box<Replaced>),
    /// The enabled or deployed state of an existing flow was changed (`--enable`, `--deploy` on
    /// an `unchanged` flow).
    State {
        /// The flow.
        id: FlowId,
        /// Its name.
        name: String,
        /// `enabled_at` before (`None`: disabled).
        enabled_at_before: Option<String>,
        /// Whether the push changed the enabled state.
        enabled_changed: bool,
        /// The deployed iteration before (`None`: none deployed).
        deployed_before: Option<i64>,
        /// Whether the push deployed another version.
        deployed_changed: bool,
    },
    /// `push --restore-state` brought the state of an existing (`unchanged`) flow to what the
    /// archive's `flow.json` holds: undone by writing back the fields it changed and deploying
    /// the iteration that was deployed.
    Settings(Box<SettingsChange>),
}

/// The state of an existing flow before `push --restore-state` changed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SettingsChange {
    /// The flow.
    pub id: FlowId,
    /// Its name.
    pub name: String,
    /// Its settings before the push (all of them, as the platform returned them).
    pub before: FlowSettings,
    /// The settings fields the push wrote (`enabled_at`, `priority`, `prod_flag`,
    /// `use_queued_time`, `remove_failed_payloads`, `labels`, `notification_groups`,
    /// `layout_direction`).
    pub changed: Vec<String>,
    /// The deployed iteration before (`None`: none deployed).
    pub deployed_before: Option<i64>,
    /// Whether the push deployed another version.
    pub deployed_changed: bool,
}

impl SettingsChange {
    /// The change of flow `id` (named `name`) from the settings `before`: the fields
    /// `changed`, and a deployment when `deployed_changed`.
    pub fn new(
        id: FlowId,
        name: &str,
        before: FlowSettings,
        changed: Vec<String>,
        deployed_before: Option<i64>,
        deployed_changed: bool,
    ) -> SettingsChange {
        SettingsChange {
            id,
            name: name.to_string(),
            before,
            changed,
            deployed_before,
            deployed_changed,
        }
    }
}

/// An export document kept as its JSON text, as the platform sent it: a record of many replaced
/// flows stays about their size in memory (parsed, a document takes many times its size). In
/// the record's file it is the document itself, as JSON.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct DocumentText(Box<serde_json::value::RawValue>);

impl<'de> Deserialize<'de> for DocumentText {
    /// Read through a value: records are entries of an internally tagged enum, which serde
    /// buffers, and raw JSON text cannot be taken from a buffer (reading a record is rare).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<DocumentText, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(d)?;
        let text = serde_json::to_string(&value).map_err(D::Error::custom)?;
        DocumentText::from_json(text).map_err(D::Error::custom)
    }
}

impl DocumentText {
    /// `text`, which must be one JSON value.
    pub fn from_json(text: String) -> Result<DocumentText, serde_json::Error> {
        serde_json::value::RawValue::from_string(text).map(DocumentText)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The document, parsed.
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

impl PartialEq for DocumentText {
    fn eq(&self, other: &DocumentText) -> bool {
        self.get() == other.get()
    }
}

/// A replaced flow, as far as the cut-over got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Replaced {
    /// The flow's name (old and new flow alike).
    pub name: String,
    /// The old flow.
    pub old_id: FlowId,
    /// When the old flow was enabled (`None`: it was disabled).
    pub old_enabled_at: Option<String>,
    /// The old flow's deployed iteration.
    pub old_deployed_iteration: Option<i64>,
    /// The old flow's export document, secret values stripped, as its JSON text: kept only
    /// when the old flow is deleted (`--prune-replaced`), since a rollback then re-imports it.
    #[serde(default)]
    pub old_document: Option<DocumentText>,
    /// The secret values stripped from `old_document`: a re-import needs them from an overlay.
    #[serde(default)]
    pub old_inputs: Vec<flowpack_core::archive::Input>,
    /// The old flow's webhooks (recreated when a pruned replace is undone).
    pub old_webhooks: Vec<Webhook>,
    /// The old flow's callbacks.
    pub old_callbacks: Vec<Callback>,
    /// The new flow, once imported.
    pub new_id: Option<FlowId>,
    /// Webhooks recreated on the new flow.
    pub webhooks: Vec<IdPair>,
    /// Callbacks recreated on the new flow.
    pub callbacks: Vec<IdPair>,
    /// Whether the old flow was disabled by the push.
    pub old_disabled: bool,
    /// The old flow's new name, once renamed.
    pub renamed_to: Option<String>,
    /// Whether the old flow was deleted (`--prune-replaced`).
    pub pruned: bool,
}

/// Where a run's record stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// Running, or interrupted (a crash): the journal says how far it got.
    Pending,
    /// Every step done.
    Complete,
    /// Ended early: refused, or some flows failed (what was undone is in the report). Also what
    /// an older record without a status that did not complete is read as.
    #[default]
    Failed,
    /// Interrupted, then finished or undone by `recover`.
    Recovered,
}

impl Status {
    /// `pending`, `complete`, `failed` or `recovered`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Complete => "complete",
            Status::Failed => "failed",
            Status::Recovered => "recovered",
        }
    }
}

/// The choices of a push that `recover --forward` repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PushChoices {
    /// `fail`, `skip`, `duplicate` or `replace`.
    pub on_conflict: String,
    /// Deploy imported and unchanged flows.
    pub deploy: bool,
    /// Enable them.
    pub enable: bool,
    /// Delete replaced flows.
    pub prune_replaced: bool,
    /// Restore state from `flow.json`.
    pub restore_state: bool,
    /// Create no webhooks or callbacks.
    pub no_webhooks: bool,
    /// Import as marketplace packages.
    pub as_marketplace: bool,
    /// The `--flow` patterns (empty: all).
    pub flows: Vec<String>,
}

/// One run's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Record {
    /// `<yyyymmddThhmmssZ>-<6 hex>`, also the file's stem.
    pub id: String,
    /// The order of records of one environment (1, 2, …).
    pub sequence: u64,
    /// The run's start time (RFC 3339).
    pub time: String,
    /// Push or rollback.
    pub kind: Kind,
    /// The environment.
    pub env: String,
    /// The archive pushed (pushes).
    #[serde(default)]
    pub archive: Option<String>,
    /// The record this rollback undoes (rollbacks).
    #[serde(default)]
    pub undoes: Option<String>,
    /// The rollback that undid this record, once it completed.
    #[serde(default)]
    pub undone_by: Option<String>,
    /// Where the run stands.
    #[serde(default)]
    pub status: Status,
    /// Whether the run got to its end (`status` is `complete`; kept for older readers).
    pub complete: bool,
    /// The environment's identity (its normalised URL, or the local store's path).
    #[serde(default)]
    pub url: Option<String>,
    /// The SHA-256 of the pushed archive's manifest (pushes).
    #[serde(default)]
    pub manifest_sha256: Option<String>,
    /// The choices of the push (pushes), for `recover --forward`.
    #[serde(default)]
    pub choices: Option<PushChoices>,
    /// The ids of the live flows of each name the push handles, before its first write: a flow
    /// of one of these names whose id is not here was created by the run.
    #[serde(default)]
    pub before: BTreeMap<String, Vec<FlowId>>,
    /// When each flow of `before` was enabled (`None`: disabled), so that a recovery without
    /// the run's journal can enable a flow the run disabled. Absent from older records.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub before_enabled: BTreeMap<FlowId, Option<String>>,
    /// How many platform writes the run sent.
    #[serde(default)]
    pub wrote: u64,
    /// Why the run ended early (status `failed`).
    #[serde(default)]
    pub error: Option<String>,
    /// What the run did, in order.
    pub entries: Vec<Entry>,
    /// What a rollback did, one line per step.
    #[serde(default)]
    pub steps: Vec<String>,
}

/// Counts of a record's entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Flows created.
    pub created: usize,
    /// Flows replaced.
    pub replaced: usize,
    /// State changes of existing flows.
    pub state: usize,
}

impl Record {
    /// A new, empty record.
    pub fn new(target: &HistoryTarget, kind: Kind, time: &str) -> Result<Record, HistoryError> {
        let sequence = list(&target.dir)?
            .iter()
            .map(|r| r.sequence)
            .max()
            .unwrap_or(0)
            + 1;
        Ok(Record {
            id: format!("{}-{}", compact_time(time), target.nonce),
            sequence,
            time: time.to_string(),
            kind,
            env: target.env.clone(),
            archive: None,
            undoes: None,
            undone_by: None,
            status: Status::Pending,
            complete: false,
            url: None,
            manifest_sha256: None,
            choices: None,
            before: BTreeMap::new(),
            before_enabled: BTreeMap::new(),
            wrote: 0,
            error: None,
            entries: Vec::new(),
            steps: Vec::new(),
        })
    }

    /// Sets the status (and `complete` with it).
    pub fn set_status(&mut self, status: Status) {
        self.status = status;
        self.complete = matches!(status, Status::Complete | Status::Recovered);
    }

    /// Whether the run wrote anything to the platform.
    pub fn wrote_something(&self) -> bool {
        self.wrote > 0 || !self.entries.is_empty()
    }

    /// The record's journal, beside it in `dir`.
    pub fn journal_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.journal", self.id))
    }

    /// How many flows it created, replaced, changed the state of.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for e in &self.entries {
            match e {
                Entry::Created { .. } => c.created += 1,
                Entry::Replaced(_) => c.replaced += 1,
                Entry::State { .. } | Entry::Settings(_) => c.state += 1,
            }
        }
        c
    }

    /// Writes the record into `dir` atomically (as `<id>.json`).
    /// When `dir` mirrors a shared history in object storage, the record is written back to
    /// the bucket too ([`crate::shared`]).
    pub fn save(&self, dir: &Path) -> Result<PathBuf, HistoryError> {
        let bytes = self.to_bytes();
        let path = Record::write(dir, &self.id, &bytes)?;
        crate::shared::publish(dir, self, &bytes)?;
        Ok(path)
    }

    /// The record as saved (pretty JSON).
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.write_bytes(&mut bytes);
        bytes
    }

    /// [`to_bytes`](Record::to_bytes) into `buf` (cleared first), so one buffer serves every
    /// save of a growing record.
    pub(crate) fn write_bytes(&self, buf: &mut Vec<u8>) {
        buf.clear();
        serde_json::to_writer_pretty(buf, self).expect("a record serialises");
    }

    /// Writes a record's bytes (from [`to_bytes`](Record::to_bytes)) atomically as
    /// `<dir>/<id>.json`, mode `0600`, synced with its directory.
    pub(crate) fn write(dir: &Path, id: &str, bytes: &[u8]) -> Result<PathBuf, HistoryError> {
        let io = |cause: std::io::Error| HistoryError::Io {
            path: dir.display().to_string(),
            cause,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join(format!("{id}.json"));
        let write = || -> std::io::Result<()> {
            let mut tmp = temp_file_in(dir, 0o600)?;
            tmp.as_file_mut().write_all(bytes)?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path).map_err(|e| e.error)?;
            crate::journal::sync_dir(dir)
        };
        write().map_err(|cause| HistoryError::Io {
            path: path.display().to_string(),
            cause,
        })?;
        Ok(path)
    }
}

/// Where a run records itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryTarget {
    /// The environment's directory (`<history>/<env>`).
    pub dir: PathBuf,
    /// The environment's name, as recorded.
    pub env: String,
    /// Six hex digits making the record's id unique (randomness comes from the caller).
    pub nonce: String,
    /// The environment's identity ([`crate::lock::identity`]), recorded in each record.
    pub url: Option<String>,
}

impl HistoryTarget {
    /// Records of environment `env` under `history` (the directory holding one directory per
    /// environment), ids ending in `nonce`.
    pub fn new(history: &Path, env: &str, nonce: &str) -> HistoryTarget {
        HistoryTarget {
            dir: history.join(env_dir_name(env)),
            env: env.to_string(),
            nonce: nonce.to_string(),
            url: None,
        }
    }
}

/// Errors reading or writing the history.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// A directory or record could not be read.
    #[error("{path}: cannot read the history: {cause}")]
    Io {
        /// The file or directory.
        path: String,
        /// Why.
        #[source]
        cause: std::io::Error,
    },
    /// A record could not be written to the shared history in object storage.
    #[error("{location}: cannot write the shared history: {message}")]
    Shared {
        /// The object.
        location: String,
        /// Why.
        message: String,
    },
    /// A record is not a history record.
    #[error("{path}: not a flowpack history record: {message}")]
    Malformed {
        /// The file.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// A record could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// An interrupted run's record is still pending.
    #[error(
        "{env}: the {} recorded as {id} was interrupted and is not recovered yet; nothing was done",
        kind.as_str()
    )]
    Pending {
        /// The environment.
        env: String,
        /// The record.
        id: String,
        /// Push or rollback.
        kind: Kind,
    },
}

impl Categorize for HistoryError {
    fn category(&self) -> Category {
        match self {
            HistoryError::Malformed { .. } => Category::Rejected,
            _ => Category::CouldNotRun,
        }
    }

    fn remedy(&self) -> Option<crate::error::Remedy> {
        match self {
            HistoryError::Pending { env, .. } => {
                Some(crate::error::Remedy::Recover { env: env.clone() })
            }
            _ => None,
        }
    }
}

/// The directory name of an environment: its name, or `host_port` for a URL
/// (`http://127.0.0.1:8080` → `127.0.0.1_8080`).
pub fn env_dir_name(env: &str) -> String {
    let Some((_, rest)) = env.split_once("://") else {
        return env.to_string();
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
            (h.to_string(), p.to_string())
        }
        _ => (
            authority.to_string(),
            if env.starts_with("https") {
                "443"
            } else {
                "80"
            }
            .to_string(),
        ),
    };
    format!(
        "{}_{port}",
        host.trim_start_matches('[').trim_end_matches(']')
    )
    .replace(':', "-")
}

/// `2026-11-29T12:00:00Z` → `20261129T120000Z` (the time in names of replaced flows and
/// records). Other offsets and fractions are dropped; the caller passes UTC.
pub(crate) fn compact_time(rfc3339: &str) -> String {
    let mut out: String = rfc3339
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    out.push('Z');
    out
}

/// Every record in `dir` (none when it does not exist), oldest first.
pub fn list(dir: &Path) -> Result<Vec<Record>, HistoryError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(cause) => {
            return Err(HistoryError::Io {
                path: dir.display().to_string(),
                cause,
            });
        }
    };
    let mut records = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|cause| HistoryError::Io {
                path: dir.display().to_string(),
                cause,
            })?
            .path();
        let is_record = path.extension().is_some_and(|e| e == "json")
            && !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !is_record {
            continue;
        }
        records.push(read(&path)?);
    }
    records.sort_by(|a, b| a.sequence.cmp(&b.sequence).then(a.id.cmp(&b.id)));
    Ok(records)
}

/// Reads one record.
pub fn read(path: &Path) -> Result<Record, HistoryError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|cause| HistoryError::Io {
        path: shown.clone(),
        cause,
    })?;
    let mut record: Record =
        serde_json::from_slice(&bytes).map_err(|e| HistoryError::Malformed {
            path: shown,
            message: e.to_string(),
        })?;
    // A record from before statuses: complete, or ended otherwise (it was not undone by a
    // journal, so it is not pending).
    if record.complete && record.status == Status::Failed {
        record.status = Status::Complete;
    }
    Ok(record)
}

/// The newest `pending` record in `dir`: an interrupted run, when no live run holds the
/// environment's lock.
pub fn pending(dir: &Path) -> Result<Option<Record>, HistoryError> {
    Ok(list(dir)?
        .into_iter()
        .rev()
        .find(|r| r.status == Status::Pending))
}

/// Refuses to go on while `dir` holds a `pending` record (see [`pending`]).
pub fn refuse_pending(dir: &Path, env: &str) -> Result<(), HistoryError> {
    match pending(dir)? {
        Some(r) => Err(HistoryError::Pending {
            env: env.to_string(),
            id: r.id,
            kind: r.kind,
        }),
        None => Ok(()),
    }
}

/// How to list an environment's history.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HistoryOptions {
    /// The environment's history directory (`<history>/<env>`).
    pub dir: PathBuf,
}

impl HistoryOptions {
    /// Lists the records in `dir`.
    pub fn new(dir: PathBuf) -> HistoryOptions {
        HistoryOptions { dir }
    }
}

/// One line of the history.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// The record's id.
    pub id: String,
    /// Its start time.
    pub time: String,
    /// Push or rollback.
    pub kind: Kind,
    /// The archive (pushes).
    pub archive: Option<String>,
    /// The record a rollback undoes.
    pub undoes: Option<String>,
    /// The rollback that undid it.
    pub undone_by: Option<String>,
    /// Whether the run completed.
    pub complete: bool,
    /// Where it stands.
    pub status: Status,
    /// How many platform writes it sent.
    pub wrote: u64,
    /// What it did.
    pub counts: Counts,
}

/// An environment's history, newest first.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct HistoryReport {
    /// The directory read.
    pub dir: String,
    /// The records, newest first.
    pub records: Vec<Summary>,
}

/// Lists the records of one environment, newest first.
pub fn run(opts: &HistoryOptions) -> Result<HistoryReport, HistoryError> {
    let records = list(&opts.dir)?
        .into_iter()
        .rev()
        .map(|r| Summary {
            counts: r.counts(),
            id: r.id,
            time: r.time,
            kind: r.kind,
            archive: r.archive,
            undoes: r.undoes,
            undone_by: r.undone_by,
            complete: r.complete,
            status: r.status,
            wrote: r.wrote,
        })
        .collect();
    Ok(HistoryReport {
        dir: opts.dir.display().to_string(),
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_flows_document_is_kept_as_text_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let target = HistoryTarget::new(dir.path(), "prod", "abcdef");
        let mut record = Record::new(&target, Kind::Push, "2026-01-01T00:00:00Z").unwrap();
        let text = r#"{"flow":{"name":"A","priority":3.50,"versions":[]},"metadata":{}}"#;
        record.entries.push(Entry::Replaced(Box::new(Replaced {
            name: "A".into(),
            old_id: 1,
            old_enabled_at: None,
            old_deployed_iteration: None,
            old_document: Some(DocumentText::from_json(text.into()).unwrap()),
            old_inputs: Vec::new(),
            old_webhooks: Vec::new(),
            old_callbacks: Vec::new(),
            new_id: Some(2),
            webhooks: Vec::new(),
            callbacks: Vec::new(),
            old_disabled: false,
            renamed_to: None,
            pruned: true,
        })));
        let path = record.save(&target.dir).unwrap();
        let read = read(&path).unwrap();
        let Entry::Replaced(r) = &read.entries[0] else {
            panic!("{read:?}")
        };
        // The document as sent, numbers included.
        let doc = r.old_document.as_ref().unwrap();
        assert_eq!(doc.get(), text);
        assert_eq!(
            doc.to_value().unwrap()["flow"]["priority"].to_string(),
            "3.50"
        );
        assert!(DocumentText::from_json("{not json".into()).is_err());
    }

    #[test]
    fn env_directories_are_names_or_host_and_port() {
        assert_eq!(env_dir_name("production"), "production");
        assert_eq!(env_dir_name("http://127.0.0.1:8080"), "127.0.0.1_8080");
        assert_eq!(
            env_dir_name("https://api.example.com/x"),
            "api.example.com_443"
        );
        assert_eq!(env_dir_name("http://example.com"), "example.com_80");
    }

    #[test]
    fn times_are_compact_utc() {
        assert_eq!(compact_time("2026-11-29T12:00:05Z"), "20261129T120005Z");
    }

    #[test]
    fn records_are_listed_in_sequence_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let target = HistoryTarget::new(dir.path(), "prod", "a1b2c3");
        let mut first = Record::new(&target, Kind::Push, "2026-01-01T00:00:00Z").unwrap();
        first.entries.push(Entry::Created {
            id: 4,
            name: "A".into(),
        });
        first.save(&target.dir).unwrap();
        let second_target = HistoryTarget::new(dir.path(), "prod", "000000");
        let second = Record::new(&second_target, Kind::Rollback, "2026-01-01T00:00:00Z").unwrap();
        assert_eq!(second.sequence, 2);
        second.save(&target.dir).unwrap();
        let report = run(&HistoryOptions::new(target.dir.clone())).unwrap();
        let ids: Vec<&str> = report.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["20260101T000000Z-000000", "20260101T000000Z-a1b2c3"]);
        assert_eq!(report.records[1].counts.created, 1);
        std::fs::write(target.dir.join("bad.json"), b"{}").unwrap();
        let err = list(&target.dir).unwrap_err();
        assert!(err.to_string().contains("bad.json"), "{err}");
    }
}
