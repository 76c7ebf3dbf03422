//! The environment lock: one writer at a time per platform.
//!
//! `push`, `rollback` and `recover` hold an **exclusive** lock for their whole run; `backup` and
//! `export` hold a **shared** one (any number of them at once, none while a push runs: a backup
//! waits for a push to end rather than capturing half of it).
//!
//! The lock is keyed by the environment's identity ([`identity`]: the normalised base URL, or
//! the embedded store's absolute path), not its name in `flowpack.toml`, so two names for one
//! platform share one lock, and a different history directory does not split it. Lock files
//! live machine-wide in `$FLOWPACK_LOCK_DIR` (default `/tmp/flowpack-locks`, created mode
//! `1777`), named `<first 16 hex digits of sha256(identity)>.lock` (mode `0644`; they hold no
//! secret). They are held with `flock(2)`, which the kernel releases when the process ends,
//! however it ends: a lock is never left held by a process that is gone.
//!
//! An exclusive holder writes who it is into the file (`{host, pid, user, command, env, url,
//! started}`) and empties it on release; a shared holder writes the same into
//! `<hex>.shared.<pid>`. A refusal names the holder. A file still naming a holder when the lock
//! is taken was left by a process that died: on this host it is taken over with a warning; a
//! holder on another host (a lock directory on a shared file system) is never taken over
//! silently: the lock is refused until [`unlock`] removes it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::env::{Environment, Target};
use crate::error::{Categorize, Category};

/// The variable naming the lock directory.
pub const LOCK_DIR_VAR: &str = "FLOWPACK_LOCK_DIR";

/// The lock directory without [`LOCK_DIR_VAR`].
pub const DEFAULT_LOCK_DIR: &str = "/tmp/flowpack-locks";

/// How long a backup or export waits for a push by default (seconds).
pub const DEFAULT_SHARED_WAIT: u64 = 300;

/// The identity of an environment: what its lock and journal are keyed by. An HTTP platform is
/// its base URL with the scheme and host in lower case, the port written out and no trailing
/// `/` or `/api/v1`; the embedded store is `local:` and its database's absolute path.
pub fn identity(env: &Environment) -> String {
    match &env.target {
        Target::Http { url, .. } => normalise_url(url),
        Target::Local { db } => {
            let absolute = std::path::absolute(db).unwrap_or_else(|_| db.clone());
            format!("local:{}", absolute.display())
        }
    }
}

/// `HTTPS://Api.Example.com/api/v1/` → `https://api.example.com:443`.
fn normalise_url(url: &str) -> String {
    let base = crate::env::base_url(url);
    let Some((scheme, rest)) = base.split_once("://") else {
        return base;
    };
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let mut host = authority.to_ascii_lowercase();
    // `[::1]:8080`, `host:8080`: a port is digits after the last `:` outside the brackets.
    let after_host = host
        .rsplit_once(']')
        .map_or(host.as_str(), |(_, rest)| rest);
    let has_port = after_host
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if !has_port {
        host.push_str(if scheme == "https" { ":443" } else { ":80" });
    }
    format!("{scheme}://{host}{}", path.trim_end_matches('/'))
}

/// Exclusive (push, rollback, recover) or shared (backup, export).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Mode {
    /// One holder, no shared holders.
    Exclusive,
    /// Any number of shared holders, no exclusive one.
    Shared,
}

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Holder {
    /// The host name.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// The user name (`$USER`, else the uid).
    pub user: String,
    /// The command (`push`, `backup`, …).
    pub command: String,
    /// The environment's name.
    pub env: String,
    /// Its identity ([`identity`]).
    pub url: String,
    /// When the lock was taken (RFC 3339).
    pub started: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` of {} (pid {} on {}, user {}, since {})",
            self.command, self.env, self.pid, self.host, self.user, self.started
        )
    }
}

/// What to lock.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LockOptions {
    /// The lock directory.
    pub dir: PathBuf,
    /// The environment's name (for messages and the holder record).
    pub env: String,
    /// Its identity ([`identity`]).
    pub identity: String,
    /// Exclusive or shared.
    pub mode: Mode,
    /// How long to wait for a live holder (zero: refuse at once).
    pub wait: Duration,
    /// The command taking it.
    pub command: String,
    /// The time (RFC 3339) recorded as `started`.
    pub now: String,
}

impl LockOptions {
    /// A lock of `env` in mode `mode` for `command`, in [`lock_dir`], not waiting.
    pub fn new(env: &Environment, mode: Mode, command: &str, now: &str) -> LockOptions {
        LockOptions {
            dir: lock_dir(&|k| std::env::var(k).ok()),
            env: env.name.clone(),
            identity: identity(env),
            mode,
            wait: Duration::ZERO,
            command: command.to_string(),
            now: now.to_string(),
        }
    }

    /// The lock file.
    pub fn path(&self) -> PathBuf {
        let digest = hex::encode(Sha256::digest(self.identity.as_bytes()));
        self.dir.join(format!("{}.lock", &digest[..16]))
    }
}

/// `$FLOWPACK_LOCK_DIR`, else [`DEFAULT_LOCK_DIR`].
pub fn lock_dir(lookup: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    lookup(LOCK_DIR_VAR)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_LOCK_DIR), PathBuf::from)
}

/// Errors taking or removing a lock.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// A live process holds the lock.
    #[error("{env} is locked by {holder}; {}", waited_text(*.waited))]
    Held {
        /// The environment.
        env: String,
        /// Who holds it (the first shared holder for a shared lock).
        holder: Box<Holder>,
        /// How long this run waited.
        waited: Duration,
    },
    /// A live process holds the lock, and it did not say who it is.
    #[error("{env} is locked (lock file {path}, holder unknown); {}", waited_text(*.waited))]
    HeldUnknown {
        /// The environment.
        env: String,
        /// The lock file.
        path: String,
        /// How long this run waited.
        waited: Duration,
    },
    /// The lock file names a holder on another host.
    #[error(
        "{env} is locked by {holder} on another host; it is not taken over, but can be removed once that run is known to be over"
    )]
    Foreign {
        /// The environment.
        env: String,
        /// The holder.
        holder: Box<Holder>,
    },
    /// `unlock` of a lock a live process on this host holds.
    #[error("{env}: the lock is held by a running process, {holder}: not removed")]
    Live {
        /// The environment.
        env: String,
        /// The holder.
        holder: Box<Holder>,
    },
    /// The lock directory or file could not be used.
    #[error("{path}: cannot use the lock: {cause}")]
    Io {
        /// The file or directory.
        path: String,
        /// Why.
        #[source]
        cause: std::io::Error,
    },
}

fn waited_text(waited: Duration) -> String {
    if waited.is_zero() {
        "not waiting for it".to_string()
    } else {
        format!("gave up after waiting {} s", waited.as_secs())
    }
}

impl Categorize for LockError {
    fn category(&self) -> Category {
        Category::CouldNotRun
    }

    fn remedy(&self) -> Option<crate::error::Remedy> {
        match self {
            LockError::Foreign { env, .. } => {
                Some(crate::error::Remedy::Unlock { env: env.clone() })
            }
            _ => None,
        }
    }
}

/// A held lock; released when dropped (and by the kernel if the process dies).
#[derive(Debug)]
pub struct EnvLock {
    file: File,
    mode: Mode,
    path: PathBuf,
    shared_note: Option<PathBuf>,
    /// A warning for the caller: the lock was taken over from a process that died.
    pub took_over: Option<String>,
}

impl EnvLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for EnvLock {
    fn drop(&mut self) {
        if let Some(note) = &self.shared_note {
            let _ = std::fs::remove_file(note);
        }
        if self.mode == Mode::Exclusive {
            let _ = self.file.set_len(0);
        }
        let _ = self.file.unlock();
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> LockError + '_ {
    move |cause| LockError::Io {
        path: path.display().to_string(),
        cause,
    }
}

/// Makes the lock directory (mode `1777`, so every user's runs share it) and opens the lock file.
fn open(opts: &LockOptions) -> Result<(File, PathBuf), LockError> {
    if !opts.dir.is_dir() {
        std::fs::create_dir_all(&opts.dir).map_err(io_error(&opts.dir))?;
        std::fs::set_permissions(&opts.dir, std::fs::Permissions::from_mode(0o1777))
            .map_err(io_error(&opts.dir))?;
    }
    let path = opts.path();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&path)
        .map_err(io_error(&path))?;
    Ok((file, path))
}

/// This process as the holder of a lock of `env` (identity `url`) for `command`, since
/// `started`.
pub(crate) fn holder_here(env: &str, url: &str, command: &str, started: &str) -> Holder {
    Holder {
        host: this_host(),
        pid: std::process::id(),
        user: this_user(),
        command: command.to_string(),
        env: env.to_string(),
        url: url.to_string(),
        started: started.to_string(),
    }
}

/// Whether `holder` is a process of this host that is still alive.
pub(crate) fn held_here_by_live(holder: &Holder) -> bool {
    holder.host == this_host() && alive(holder.pid)
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

fn this_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            std::fs::metadata("/proc/self")
                .map(|m| std::os::unix::fs::MetadataExt::uid(&m).to_string())
                .unwrap_or_else(|_| "unknown".into())
        })
}

fn alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(64 * 1024).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// The shared holders' notes that name a live process.
fn shared_holders(path: &Path) -> Vec<Holder> {
    let (Some(dir), Some(stem)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.shared.", stem.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        match serde_json::from_str::<Holder>(&text) {
            Ok(h) if alive(h.pid) => out.push(h),
            // A note left by a shared holder that died.
            _ => {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    out
}

/// Takes the lock (see the module docs), waiting up to `opts.wait` for a live holder.
pub fn acquire(opts: &LockOptions) -> Result<EnvLock, LockError> {
    let (mut file, path) = open(opts)?;
    let started = Instant::now();
    loop {
        let got = match opts.mode {
            Mode::Exclusive => file.try_lock(),
            Mode::Shared => file.try_lock_shared(),
        };
        match got {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {
                if started.elapsed() >= opts.wait {
                    return Err(refusal(opts, &mut file, &path, started.elapsed()));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error(&path)(e)),
        }
    }
    // Taken. A holder still named in the file died without releasing its record.
    let mut took_over = None;
    if let Some(left) = read_holder(&mut file) {
        if left.host != this_host() {
            let _ = file.unlock();
            return Err(LockError::Foreign {
                env: opts.env.clone(),
                holder: Box::new(left),
            });
        }
        if opts.mode == Mode::Exclusive {
            took_over = Some(format!(
                "took over the lock of {left}, which is no longer running"
            ));
        }
    }
    let me = Holder {
        host: this_host(),
        pid: std::process::id(),
        user: this_user(),
        command: opts.command.clone(),
        env: opts.env.clone(),
        url: opts.identity.clone(),
        started: opts.now.clone(),
    };
    let text = serde_json::to_vec(&me).expect("a holder serialises");
    let mut shared_note = None;
    match opts.mode {
        Mode::Exclusive => {
            let mut write = || -> std::io::Result<()> {
                file.set_len(0)?;
                file.rewind()?;
                file.write_all(&text)?;
                file.sync_data()
            };
            write().map_err(io_error(&path))?;
        }
        Mode::Shared => {
            let note = PathBuf::from(format!("{}.shared.{}", path.display(), me.pid));
            std::fs::write(&note, &text).map_err(io_error(&note))?;
            shared_note = Some(note);
        }
    }
    Ok(EnvLock {
        file,
        mode: opts.mode,
        path,
        shared_note,
        took_over,
    })
}

fn refusal(opts: &LockOptions, file: &mut File, path: &Path, waited: Duration) -> LockError {
    let holder = read_holder(file).or_else(|| shared_holders(path).into_iter().next());
    match holder {
        Some(h) => LockError::Held {
            env: opts.env.clone(),
            holder: Box::new(h),
            waited,
        },
        None => LockError::HeldUnknown {
            env: opts.env.clone(),
            path: path.display().to_string(),
            waited,
        },
    }
}

/// What [`unlock`] did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct UnlockReport {
    /// The lock file.
    pub path: String,
    /// The holder whose record was removed (`None`: the lock named nobody).
    pub removed: Option<Holder>,
}

/// Removes a lock left by a run that is over (on another host, or a process that died): refused
/// while a live process on this host holds it.
pub fn unlock(opts: &LockOptions) -> Result<UnlockReport, LockError> {
    let (mut file, path) = open(opts)?;
    let shown = path.display().to_string();
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = read_holder(&mut file)
                .or_else(|| shared_holders(&path).into_iter().next())
                .unwrap_or_else(|| Holder {
                    host: this_host(),
                    pid: 0,
                    user: "unknown".into(),
                    command: "unknown".into(),
                    env: opts.env.clone(),
                    url: opts.identity.clone(),
                    started: "unknown".into(),
                });
            return Err(LockError::Live {
                env: opts.env.clone(),
                holder: Box::new(holder),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io_error(&path)(e)),
    }
    let removed = read_holder(&mut file);
    file.set_len(0).map_err(io_error(&path))?;
    let _ = file.unlock();
    Ok(UnlockReport {
        path: shown,
        removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path, mode: Mode) -> LockOptions {
        LockOptions {
            dir: dir.to_path_buf(),
            env: "prod".into(),
            identity: "http://127.0.0.1:8080".into(),
            mode,
            wait: Duration::ZERO,
            command: "push".into(),
            now: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn urls_are_normalised_to_one_identity() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "HTTP://127.0.0.1:8080/api/v1/",
        ] {
            assert_eq!(normalise_url(url), "http://127.0.0.1:8080", "{url}");
        }
        assert_eq!(
            normalise_url("https://API.example.com/api/v1"),
            "https://api.example.com:443"
        );
        assert_eq!(
            normalise_url("http://example.com/tenant/a/"),
            "http://example.com:80/tenant/a"
        );
    }

    #[test]
    fn an_exclusive_lock_names_its_holder_and_is_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(&opts(dir.path(), Mode::Exclusive)).unwrap();
        assert!(first.took_over.is_none());
        // flock locks belong to the open file description: a second open in this process
        // conflicts like another process would.
        let err = acquire(&opts(dir.path(), Mode::Exclusive)).unwrap_err();
        let LockError::Held { holder, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(holder.pid, std::process::id());
        assert_eq!(holder.command, "push");
        assert!(
            err.to_string().contains("is locked by `push` of prod"),
            "{err}"
        );
        let err = acquire(&opts(dir.path(), Mode::Shared)).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        drop(first);
        // Released: the file is empty again and the next run takes it without a warning.
        assert_eq!(
            std::fs::read(opts(dir.path(), Mode::Exclusive).path()).unwrap(),
            b""
        );
        let again = acquire(&opts(dir.path(), Mode::Exclusive)).unwrap();
        assert!(again.took_over.is_none());
    }

    #[test]
    fn shared_holders_coexist_and_keep_an_exclusive_one_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut backup = opts(dir.path(), Mode::Shared);
        backup.command = "backup".into();
        let a = acquire(&backup).unwrap();
        let b = acquire(&backup).unwrap();
        let err = acquire(&opts(dir.path(), Mode::Exclusive)).unwrap_err();
        assert!(err.to_string().contains("`backup` of prod"), "{err}");
        drop((a, b));
        acquire(&opts(dir.path(), Mode::Exclusive)).unwrap();
    }

    #[test]
    fn waiting_takes_the_lock_once_the_holder_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(&opts(dir.path(), Mode::Exclusive)).unwrap();
        let path = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let mut o = opts(&path, Mode::Exclusive);
            o.wait = Duration::from_secs(20);
            let t = Instant::now();
            acquire(&o).map(|_| t.elapsed())
        });
        std::thread::sleep(Duration::from_millis(400));
        drop(held);
        let waited = waiter.join().unwrap().unwrap();
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
    }

    #[test]
    fn a_dead_holder_on_this_host_is_taken_over_and_one_on_another_host_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(dir.path(), Mode::Exclusive);
        std::fs::create_dir_all(&o.dir).unwrap();
        let dead = Holder {
            host: this_host(),
            pid: 4_194_304,
            user: "ops".into(),
            command: "push".into(),
            env: "prod".into(),
            url: o.identity.clone(),
            started: "2025-12-31T23:00:00Z".into(),
        };
        std::fs::write(o.path(), serde_json::to_vec(&dead).unwrap()).unwrap();
        let lock = acquire(&o).unwrap();
        let warning = lock.took_over.clone().unwrap();
        assert!(warning.contains("pid 4194304"), "{warning}");
        drop(lock);
        let foreign = Holder {
            host: "build-7.example".into(),
            ..dead
        };
        std::fs::write(o.path(), serde_json::to_vec(&foreign).unwrap()).unwrap();
        let err = acquire(&o).unwrap_err();
        assert!(matches!(err, LockError::Foreign { .. }), "{err}");
        assert!(err.to_string().contains("build-7.example"), "{err}");
        // unlock removes it, naming it; then the lock is free.
        let report = unlock(&o).unwrap();
        assert_eq!(report.removed.unwrap().host, "build-7.example");
        acquire(&o).unwrap();
    }

    #[test]
    fn unlock_refuses_a_live_holder() {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(dir.path(), Mode::Exclusive);
        let _held = acquire(&o).unwrap();
        let err = unlock(&o).unwrap_err();
        assert!(matches!(err, LockError::Live { .. }), "{err}");
    }
}
