//! The push history, lock and journal shared by several machines through object storage
//! (`--history s3://BUCKET/PREFIX`, or `history = "s3://…"` of an environment in
//! `flowpack.toml`).
//!
//! **Lock.** Besides the machine's own lock ([`crate::lock`], still taken), a run that writes
//! holds the object `<history>/.locks/<hex>.lock` (the same `<hex>` as the local lock file:
//! keyed by the environment's identity). It is created with `If-None-Match: *`, so of two
//! machines only one can create it, and holds the holder's JSON `{host, pid, user, command, env,
//! url, started, lease_until}`. The lease is five minutes from the last renewal; a thread renews
//! it every minute while the lock is held, each renewal a write conditional on the ETag of the
//! one before (`If-Match`). A lock whose lease ran out (its holder died or lost the store) is
//! taken over by a write conditional on its ETag, so two machines cannot both take it over. A
//! live holder is named in the refusal. A renewal refused (the lock changed: taken over) or not
//! achieved before the lease ran out marks the lock lost ([`lease_lost`]): every journaled
//! platform write is then refused unsent, and no record is written back but as `pending`, so
//! the run stops with its record pending in the bucket. A renewal that fails within the lease
//! prints a warning on stderr and is tried again. The lock is deleted (conditional on its ETag) when the
//! run ends.
//!
//! **History and journal.** The records are kept in a local mirror of the environment's
//! directory (`.flowpack/shared-history/BUCKET/PREFIX/ENV` beside `flowpack.toml`), which every
//! command refreshes from the bucket before it reads it, and every command that records writes
//! its changes back:
//! - a `pending` record is `<history>/<env>/<id>.pending`, created with `If-None-Match: *` as
//!   soon as the record exists (before any request to the platform) and replaced (conditional on
//!   its ETag) when the ids that existed before are added, before the first write;
//! - the journal is a local file while the run goes on; when the record's status changes from
//!   `pending`, the record (`<id>.json`) and its journal (`<id>.journal`) are uploaded, then the
//!   `.pending` object is deleted.
//!
//! A run killed on one machine leaves its `.pending` object: every machine's push, rollback and
//! backup then refuse, as they do for a local `pending` record, and `recover` on any machine
//! works from the record it holds (the ids that existed before) and the platform's listing (on
//! the machine that ran the push, also from its journal).
//!
//! The store must support conditional writes (`If-None-Match: *` and `If-Match` on `PUT`):
//! AWS S3 and SeaweedFS do.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Categorize, Category};
use crate::history::{HistoryError, Record, Status};
use crate::lock::Holder;
use crate::storage::{Precondition, S3Location, StorageError, Store};

/// How long a lock's lease lasts after its last renewal.
pub const LEASE: Duration = Duration::from_secs(5 * 60);

/// How often a held lock's lease is renewed.
pub const RENEW_EVERY: Duration = Duration::from_secs(60);

/// The local mirror of a shared history, relative to the directory of `flowpack.toml`.
pub const MIRROR_DIR: &str = ".flowpack/shared-history";

/// The largest record or lock object read.
const MAX_RECORD_BYTES: u64 = 256 * 1024 * 1024;

/// The lock object's content: the holder and its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LockObject {
    /// Who holds it.
    #[serde(flatten)]
    pub holder: Holder,
    /// Until when (RFC 3339, UTC): a lock not renewed by then is taken over.
    pub lease_until: String,
}

/// Errors of a shared history.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SharedError {
    /// Another run holds the environment's lock in the bucket.
    #[error(
        "{env} is locked by {holder} (lock {lock}, lease until {lease_until}); {}",
        if waited.is_zero() { "not waiting for it".to_string() } else { format!("gave up after waiting {} s", waited.as_secs()) }
    )]
    Held {
        /// The environment.
        env: String,
        /// The holder.
        holder: Box<Holder>,
        /// The lock object.
        lock: String,
        /// Its lease.
        lease_until: String,
        /// How long this run waited.
        waited: Duration,
    },
    /// `unlock` of a lock a live process on this host holds.
    #[error("{env}: the lock {lock} is held by a running process, {holder}: not removed")]
    Live {
        /// The environment.
        env: String,
        /// The holder.
        holder: Box<Holder>,
        /// The lock object.
        lock: String,
    },
    /// The lock object holds something else than a lock.
    #[error("{lock}: not a flowpack lock ({message}); remove it once no run holds it")]
    Malformed {
        /// The lock object.
        lock: String,
        /// What is wrong.
        message: String,
    },
    /// The store could not be used.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The local mirror could not be written.
    #[error(transparent)]
    History(#[from] HistoryError),
}

impl Categorize for SharedError {
    fn category(&self) -> Category {
        match self {
            SharedError::Storage(e) => e.category(),
            SharedError::History(e) => e.category(),
            _ => Category::CouldNotRun,
        }
    }

    fn remedy(&self) -> Option<crate::error::Remedy> {
        match self {
            SharedError::History(e) => e.remedy(),
            _ => None,
        }
    }
}

/// What to open.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SharedOptions {
    /// The shared history (`s3://BUCKET/PREFIX`), holding one directory per environment.
    pub location: S3Location,
    /// The local mirror (holding one directory per environment, as the bucket).
    pub mirror: PathBuf,
    /// The environment's name.
    pub env: String,
    /// Its identity ([`crate::lock::identity`]).
    pub identity: String,
    /// The command (`push`, `rollback`, …).
    pub command: String,
    /// The time (RFC 3339) recorded as `started`.
    pub now: String,
    /// Whether to take the lock in the bucket (push, rollback, recover).
    pub lock: bool,
    /// How long to wait for a live holder.
    pub wait: Duration,
}

impl SharedOptions {
    /// Opening `location` for `command` of environment `env` (with identity `identity`),
    /// mirrored under `mirror`, without the lock.
    pub fn new(
        location: S3Location,
        mirror: PathBuf,
        env: &str,
        identity: &str,
        command: &str,
        now: &str,
    ) -> SharedOptions {
        SharedOptions {
            location,
            mirror,
            env: env.to_string(),
            identity: identity.to_string(),
            command: command.to_string(),
            now: now.to_string(),
            lock: false,
            wait: Duration::ZERO,
        }
    }
}

/// An open shared history: the mirror refreshed, the lock held (when asked), and every record
/// saved into the mirror's environment directory written back to the bucket, until dropped.
#[derive(Debug)]
pub struct SharedHistory {
    dir: PathBuf,
    lock: Option<BucketLock>,
    /// A warning for the caller: the lock was taken over from a holder whose lease ran out.
    pub took_over: Option<String>,
}

impl SharedHistory {
    /// The mirror's directory of the environment: where its records are read and saved.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The lock object, when held.
    pub fn lock_object(&self) -> Option<String> {
        self.lock.as_ref().map(|l| l.shown.clone())
    }
}

impl Drop for SharedHistory {
    fn drop(&mut self) {
        let mut remotes = REMOTES.lock().unwrap_or_else(|e| e.into_inner());
        remotes.retain(|(d, _)| d != &self.dir);
    }
}

/// Where the records of a mirrored directory go.
#[derive(Debug)]
struct Remote {
    store: Arc<Store>,
    /// `<history prefix>/<env>`.
    prefix: String,
    /// The ETags of the `.pending` objects that exist, by record id.
    pending: Mutex<HashMap<String, String>>,
}

/// The mirrored directories of the shared histories open in this process.
static REMOTES: Mutex<Vec<(PathBuf, Arc<Remote>)>> = Mutex::new(Vec::new());

/// Set by the renewal thread when the bucket lock held by this process was lost: taken over
/// by another run, or not renewed before its lease ran out. What happened, naming the lock.
static LOST: Mutex<Option<String>> = Mutex::new(None);

/// Why the bucket lock this process holds was lost (taken over, or its lease ran out), if it was: every journaled
/// platform write checks it first ([`crate::journal::Journaled`]), and no record but a
/// `pending` one is written back to the bucket after it.
pub fn lease_lost() -> Option<String> {
    LOST.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Writes a record just saved into `dir` back to the bucket when `dir` mirrors a shared
/// history (see the module docs); nothing otherwise.
pub(crate) fn publish(dir: &Path, record: &Record, bytes: &[u8]) -> Result<(), HistoryError> {
    let remote = {
        let remotes = REMOTES.lock().unwrap_or_else(|e| e.into_inner());
        match remotes.iter().find(|(d, _)| d == dir) {
            Some((_, r)) => r.clone(),
            None => return Ok(()),
        }
    };
    let failed = |key: &str, e: StorageError| HistoryError::Shared {
        location: remote.store.location().url_of(key),
        message: e.to_string(),
    };
    let id = &record.id;
    let pending_key = format!("{}/{id}.pending", remote.prefix);
    if let Some(lost) = lease_lost() {
        // Another run may be recovering this one: its record stays `pending` in the bucket.
        return Err(HistoryError::Shared {
            location: remote.store.location().url_of(&pending_key),
            message: format!("{lost}; the record is left pending for `recover`"),
        });
    }
    let mut pending = remote.pending.lock().unwrap_or_else(|e| e.into_inner());
    if record.status == Status::Pending {
        let precondition = match pending.get(id) {
            Some(etag) => Precondition::Etag(etag),
            None => Precondition::Absent,
        };
        let etag = remote
            .store
            .put_bytes(&pending_key, bytes, precondition)
            .map_err(|e| failed(&pending_key, e))?;
        pending.insert(id.clone(), etag);
        return Ok(());
    }
    let key = format!("{}/{id}.json", remote.prefix);
    remote
        .store
        .put_bytes(&key, bytes, Precondition::Always)
        .map_err(|e| failed(&key, e))?;
    let journal = record.journal_path(dir);
    if journal.is_file() {
        let key = format!("{}/{id}.journal", remote.prefix);
        remote
            .store
            .put_file(&journal, &key, true)
            .map_err(|e| failed(&key, e))?;
    }
    remote
        .store
        .delete(&pending_key)
        .map_err(|e| failed(&pending_key, e))?;
    pending.remove(id);
    Ok(())
}

/// The lock object's key for an environment identity under the history prefix.
fn lock_key(location: &S3Location, identity: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(identity.as_bytes()));
    location.key(&format!(".locks/{}.lock", &digest[..16]))
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Opens the shared history (see the module docs): the lock taken when asked, the mirror of
/// the environment's directory refreshed from the bucket, and the records saved into it written
/// back until the [`SharedHistory`] is dropped.
pub fn open(opts: &SharedOptions) -> Result<SharedHistory, SharedError> {
    let store = Arc::new(Store::open_configured(&opts.location)?);
    open_with(opts, store)
}

/// [`open`] with a store already opened.
pub fn open_with(opts: &SharedOptions, store: Arc<Store>) -> Result<SharedHistory, SharedError> {
    store.check()?;
    let (lock, took_over) = if opts.lock {
        let (lock, took_over) = BucketLock::acquire(store.clone(), opts)?;
        (Some(lock), took_over)
    } else {
        (None, None)
    };
    let env_dir = crate::history::env_dir_name(&opts.env);
    let dir = opts.mirror.join(&env_dir);
    let prefix = opts.location.key(&env_dir);
    let pending = refresh(&store, &prefix, &dir)?;
    let remote = Arc::new(Remote {
        store,
        prefix,
        pending: Mutex::new(pending),
    });
    let mut remotes = REMOTES.lock().unwrap_or_else(|e| e.into_inner());
    remotes.retain(|(d, _)| d != &dir);
    remotes.push((dir.clone(), remote));
    Ok(SharedHistory {
        dir,
        lock,
        took_over,
    })
}

/// Brings the bucket's records of one environment into the mirror `dir`: each `<id>.json` and
/// `<id>.journal`, and each `<id>.pending` as a `pending` record (unless the mirror holds that
/// record with its journal: then it was this machine's run, and its copy is the newer). The
/// ETags of the `.pending` objects.
fn refresh(
    store: &Store,
    prefix: &str,
    dir: &Path,
) -> Result<HashMap<String, String>, SharedError> {
    let mut pending = HashMap::new();
    let io = |cause| HistoryError::Io {
        path: dir.display().to_string(),
        cause,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let listed = store.list(&format!("{prefix}/"))?;
    for object in &listed {
        let Some(name) = object.key.strip_prefix(&format!("{prefix}/")) else {
            continue;
        };
        if name.contains('/') || name.starts_with('.') {
            continue;
        }
        let (id, kind) = match name.rsplit_once('.') {
            Some((id, kind @ ("json" | "journal" | "pending"))) => (id, kind),
            _ => continue,
        };
        let local_record = dir.join(format!("{id}.json"));
        if kind == "journal" {
            let local = dir.join(name);
            if local.is_file() {
                continue;
            }
            let got = store.get_to_temp(&object.key, dir, MAX_RECORD_BYTES)?;
            std::fs::copy(got.path(), &local).map_err(io)?;
            set_private(&local).map_err(io)?;
            continue;
        }
        if kind == "pending"
            && dir.join(format!("{id}.journal")).is_file()
            && local_pending(&local_record)
        {
            // This machine's own run (its journal is here, its record still pending): its
            // record is the newer. Only the ETag is needed. (A run that lost its lock finished
            // its record only here: the bucket's `pending` copy wins.)
            if let Some(obj) = store.get_small(&object.key, MAX_RECORD_BYTES)? {
                pending.insert(id.to_string(), obj.etag);
            }
            continue;
        }
        let Some(obj) = store.get_small(&object.key, MAX_RECORD_BYTES)? else {
            continue;
        };
        if kind == "pending" {
            pending.insert(id.to_string(), obj.etag.clone());
        }
        let record: Record =
            serde_json::from_slice(&obj.bytes).map_err(|e| HistoryError::Malformed {
                path: store.location().url_of(&object.key),
                message: e.to_string(),
            })?;
        if record.id != id {
            return Err(HistoryError::Malformed {
                path: store.location().url_of(&object.key),
                message: format!("it holds the record {}", record.id),
            }
            .into());
        }
        Record::write(dir, id, &obj.bytes)?;
    }
    // A record the bucket completed (its `.json` there, no `.pending`) wins over a mirror that
    // still says `pending` (the run was recovered elsewhere): written above.
    Ok(pending)
}

/// Whether `path` holds a `pending` record.
fn local_pending(path: &Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Record>(&bytes).ok())
        .is_some_and(|r| r.status == Status::Pending)
}

fn set_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// How often the lease is renewed: [`RENEW_EVERY`]; in test builds (`test-hooks`)
/// `FLOWPACK_TEST_RENEW_MS` overrides it.
fn renew_every() -> Duration {
    #[cfg(feature = "test-hooks")]
    if let Some(ms) = std::env::var("FLOWPACK_TEST_RENEW_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Duration::from_millis(ms);
    }
    RENEW_EVERY
}

/// What [`unlock`] removed.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BucketUnlock {
    /// The lock object.
    pub lock: String,
    /// The holder it named, with its lease (`None`: there was no lock).
    pub removed: Option<LockObject>,
}

/// Removes the environment's lock object from the shared history at `location`, left by a run
/// that is over (killed, or its machine gone): refused while it names a live process on this
/// host. Deleted only while it is the lock read (`If-Match`), so a lock taken meanwhile stays.
pub fn unlock(
    location: &S3Location,
    env: &str,
    identity: &str,
) -> Result<BucketUnlock, SharedError> {
    let store = Store::open_configured(location)?;
    store.check()?;
    let key = lock_key(location, identity);
    let shown = location.url_of(&key);
    let Some(found) = store.get_small(&key, 64 * 1024)? else {
        return Ok(BucketUnlock {
            lock: shown,
            removed: None,
        });
    };
    let current: LockObject =
        serde_json::from_slice(&found.bytes).map_err(|e| SharedError::Malformed {
            lock: shown.clone(),
            message: e.to_string(),
        })?;
    if crate::lock::held_here_by_live(&current.holder) {
        return Err(SharedError::Live {
            env: env.to_string(),
            holder: Box::new(current.holder),
            lock: shown,
        });
    }
    store.delete_if(&key, &found.etag)?;
    Ok(BucketUnlock {
        lock: shown,
        removed: Some(current),
    })
}

/// The lock object held, its lease renewed by a thread until dropped.
#[derive(Debug)]
struct BucketLock {
    store: Arc<Store>,
    key: String,
    shown: String,
    etag: Arc<Mutex<String>>,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

impl BucketLock {
    fn acquire(
        store: Arc<Store>,
        opts: &SharedOptions,
    ) -> Result<(BucketLock, Option<String>), SharedError> {
        let key = lock_key(&opts.location, &opts.identity);
        let shown = opts.location.url_of(&key);
        let holder = crate::lock::holder_here(&opts.env, &opts.identity, &opts.command, &opts.now);
        let body = |holder: &Holder| -> Vec<u8> {
            let object = LockObject {
                holder: holder.clone(),
                lease_until: rfc3339(time::OffsetDateTime::now_utc() + LEASE),
            };
            serde_json::to_vec_pretty(&object).expect("a lock serialises")
        };
        let started = Instant::now();
        let mut took_over = None;
        let etag = loop {
            match store.put_bytes(&key, &body(&holder), Precondition::Absent) {
                Ok(etag) => break etag,
                Err(StorageError::Exists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            let Some(found) = store.get_small(&key, 64 * 1024)? else {
                continue; // released meanwhile
            };
            let current: LockObject =
                serde_json::from_slice(&found.bytes).map_err(|e| SharedError::Malformed {
                    lock: shown.clone(),
                    message: e.to_string(),
                })?;
            let lease = time::OffsetDateTime::parse(
                &current.lease_until,
                &time::format_description::well_known::Rfc3339,
            )
            .map_err(|e| SharedError::Malformed {
                lock: shown.clone(),
                message: format!("lease_until: {e}"),
            })?;
            if lease < time::OffsetDateTime::now_utc() {
                match store.put_bytes(&key, &body(&holder), Precondition::Etag(&found.etag)) {
                    Ok(etag) => {
                        took_over = Some(format!(
                            "took over the lock {shown} of {}, whose lease ran out at {}",
                            current.holder, current.lease_until
                        ));
                        break etag;
                    }
                    // Another run took it over first, or its holder renewed it.
                    Err(StorageError::Exists { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let waited = started.elapsed();
            if waited >= opts.wait {
                return Err(SharedError::Held {
                    env: opts.env.clone(),
                    holder: Box::new(current.holder),
                    lock: shown,
                    lease_until: current.lease_until,
                    waited: opts.wait,
                });
            }
            std::thread::sleep(Duration::from_millis(500).min(opts.wait - waited));
        };
        let etag = Arc::new(Mutex::new(etag));
        *LOST.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let (stop, stopped) = mpsc::channel::<()>();
        let renewer = {
            let store = store.clone();
            let key = key.clone();
            let shown = shown.clone();
            let etag = etag.clone();
            std::thread::spawn(move || {
                let mut valid_until = Instant::now() + LEASE;
                let mut lease_until = rfc3339(time::OffsetDateTime::now_utc() + LEASE);
                let lost = |why: String| {
                    *LOST.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
                };
                // Renewed until told to stop (or the sender is dropped), or lost.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(renew_every())
                {
                    let mut current = etag.lock().unwrap_or_else(|e| e.into_inner());
                    let next = body(&holder);
                    match store.put_bytes(&key, &next, Precondition::Etag(&current)) {
                        Ok(new) => {
                            *current = new;
                            valid_until = Instant::now() + LEASE;
                            if let Ok(o) = serde_json::from_slice::<LockObject>(&next) {
                                lease_until = o.lease_until;
                            }
                        }
                        Err(StorageError::Exists { .. }) => {
                            let by = store
                                .get_small(&key, 64 * 1024)
                                .ok()
                                .flatten()
                                .and_then(|o| serde_json::from_slice::<LockObject>(&o.bytes).ok())
                                .map_or_else(
                                    || "another run, or it was removed".to_string(),
                                    |o| o.holder.to_string(),
                                );
                            lost(format!(
                                "the lock {shown} was lost: it was taken over by {by} (the renewal of its lease was refused, the lock having changed)"
                            ));
                            return;
                        }
                        Err(e) if Instant::now() >= valid_until => {
                            lost(format!(
                                "the lock {shown} was lost: its lease ran out at {lease_until} without being renewed ({e})"
                            ));
                            return;
                        }
                        Err(e) => {
                            // Still ours until the lease runs out: said, and tried again.
                            let said = format!(
                                "warning: could not renew the lease of the lock {shown} (valid until {lease_until}): {e}"
                            );
                            eprintln!("{}", said.replace(|c: char| c.is_control(), "?"));
                        }
                    }
                }
            })
        };
        Ok((
            BucketLock {
                store,
                key,
                shown,
                etag,
                stop: Some(stop),
                renewer: Some(renewer),
            },
            took_over,
        ))
    }
}

impl Drop for BucketLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
        let etag = self.etag.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // Only our own lock: one taken over meanwhile is left to its new holder.
        let _ = self.store.delete_if(&self.key, &etag);
        *LOST.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_object_is_named_as_the_local_lock_file() {
        let identity = "https://flows.example.com:443";
        let local = crate::lock::LockOptions {
            dir: PathBuf::from("/locks"),
            env: "prod".into(),
            identity: identity.into(),
            mode: crate::lock::Mode::Exclusive,
            wait: Duration::ZERO,
            command: "push".into(),
            now: "2026-01-01T00:00:00Z".into(),
        };
        let name = local
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let at = S3Location::parse("s3://team/history").unwrap();
        assert_eq!(lock_key(&at, identity), format!("history/.locks/{name}"));
        let root = S3Location::parse("s3://team").unwrap();
        assert_eq!(lock_key(&root, identity), format!(".locks/{name}"));
        assert_eq!(name.len(), 16 + ".lock".len());
    }

    #[test]
    fn a_lock_object_is_the_holder_and_its_lease() {
        let holder =
            crate::lock::holder_here("prod", "http://h:80", "push", "2026-01-01T00:00:00Z");
        let object = LockObject {
            holder: holder.clone(),
            lease_until: rfc3339(time::OffsetDateTime::from_unix_timestamp(1_767_225_900).unwrap()),
        };
        let json: serde_json::Value = serde_json::to_value(&object).unwrap();
        assert_eq!(json["lease_until"], "2026-01-01T00:05:00Z");
        for field in ["host", "pid", "user", "command", "env", "url", "started"] {
            assert!(json.get(field).is_some(), "{field}: {json}");
        }
        let back: LockObject = serde_json::from_value(json).unwrap();
        assert_eq!(back.holder, holder);
    }
}
