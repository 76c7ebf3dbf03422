//! `backup`: every flow of an environment into `DIR/<env>-<yyyymmddThhmmssZ>.flowpack`, checked
//! after writing, then the oldest of the environment's own backups beyond a number deleted.
//!
//! The export is [`crate::export::run`] (documents, `flow.json` settings, inputs, signatures).
//! The time in the name is the UTC `created_at` from the options; a name already taken gets
//! `-2`, `-3`, …. What was written is verified with the environment's trust policy when it has
//! keys, else for integrity (structure, manifest, digests, no unlisted entry).
//!
//! Retention is careful because it deletes: a file is one of this environment's own backups only
//! when its name matches `<env>-<yyyymmddThhmmssZ>[-N].flowpack` exactly AND its manifest names
//! the environment as `source.environment`. Any other file (another environment's backups, a
//! copy renamed by hand, an unreadable archive) is never deleted. Nothing is deleted when the
//! verification failed or when no number to keep is given; the backup just written is always
//! kept. "Oldest" is by the time in the name, then by the `-N` suffix.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use flowpack_client::Platform;
use flowpack_core::archive::{Archive, Limits, SourceInfo, TrustPolicy, verify_archive};
use flowpack_core::sign::SigningKey;

use crate::error::{Categorize, Category, Remedy};
use crate::export::{self, ExportError, ExportOptions, ProgressFn, Selection, default_version};

/// Errors of a backup; each names the file or the environment at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// `keep` was 0: that would delete the backup just made.
    #[error(
        "keeping 0 backups would delete every backup, the new one too; keep at least 1 (or keep all)"
    )]
    KeepZero,
    /// The directory could not be created or listed.
    #[error("{path}: {error}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// The export failed (nothing was written).
    #[error(transparent)]
    Export(#[from] ExportError),
    /// The archive written did not verify; nothing was deleted.
    #[error(
        "{path}: the backup just written did not verify ({check}: {detail}); no older backup \
         was deleted"
    )]
    Verification {
        /// The backup.
        path: PathBuf,
        /// The check that failed.
        check: String,
        /// What it found.
        detail: String,
    },
    /// An old backup could not be deleted.
    #[error("{path}: cannot delete this old backup: {error}")]
    Delete {
        /// The backup.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
}

impl Categorize for BackupError {
    fn category(&self) -> Category {
        match self {
            BackupError::Export(e) => e.category(),
            BackupError::Verification { .. } => Category::Rejected,
            BackupError::KeepZero | BackupError::Dir { .. } | BackupError::Delete { .. } => {
                Category::CouldNotRun
            }
        }
    }

    fn remedy(&self) -> Option<Remedy> {
        match self {
            BackupError::KeepZero => Some(Remedy::KeepAtLeastOne),
            BackupError::Export(e) => e.remedy(),
            _ => None,
        }
    }
}

/// What to back up, where, and how many to keep.
#[non_exhaustive]
pub struct BackupOptions {
    /// The environment.
    pub platform: Arc<dyn Platform>,
    /// Its name (file names and the manifest's `source.environment`) and URL (stored redacted).
    pub source: SourceInfo,
    /// The directory of the backups (created when missing).
    pub dir: PathBuf,
    /// How many of the environment's own backups to keep, the new one included; `None` keeps
    /// all.
    pub keep: Option<usize>,
    /// The time of the backup (name, `created_at`, default package version).
    pub created_at: time::OffsetDateTime,
    /// Keys to sign with.
    pub signers: Vec<SigningKey>,
    /// The policy the new backup is verified with (the environment's trusted keys; none:
    /// integrity only).
    pub policy: TrustPolicy,
    /// Export requests in flight.
    pub jobs: usize,
    /// Export progress.
    pub progress: Option<ProgressFn>,
}

impl BackupOptions {
    /// Backs up `platform` (named by `source.environment`) into `dir` at `created_at`, keeping
    /// every backup; unsigned, integrity-checked, 4 jobs.
    pub fn new(
        platform: Arc<dyn Platform>,
        source: SourceInfo,
        dir: PathBuf,
        created_at: time::OffsetDateTime,
    ) -> BackupOptions {
        BackupOptions {
            platform,
            source,
            dir,
            keep: None,
            created_at,
            signers: Vec::new(),
            policy: TrustPolicy::default(),
            jobs: 4,
            progress: None,
        }
    }
}

/// What a backup did.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct BackupReport {
    /// The backup written.
    pub path: PathBuf,
    /// The environment.
    pub environment: String,
    /// Flows in it.
    pub flows: usize,
    /// SHA-256 of its manifest.
    pub manifest_sha256: String,
    /// Key ids of its signatures.
    pub signatures: Vec<String>,
    /// Whether signatures were checked (the environment has trusted keys) or integrity only.
    pub signatures_checked: bool,
    /// The environment's own backups kept, oldest first (the new one last).
    pub kept: Vec<PathBuf>,
    /// The old backups deleted, oldest first.
    pub deleted: Vec<PathBuf>,
}

/// The part of backup file names before the time: the environment's name with a URL's scheme
/// dropped and every character other than ASCII letters, digits, `.`, `_` and `-` made `-`.
pub(crate) fn file_prefix(environment: &str) -> String {
    let name = environment
        .split_once("://")
        .map_or(environment, |(_, rest)| rest);
    let name: String = name
        .trim_end_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with('.') {
        format!("env{name}")
    } else {
        name
    }
}

/// `yyyymmddThhmmssZ` of `t` in UTC.
pub fn stamp(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// When `file_name` is `<prefix>-<yyyymmddThhmmssZ>[-N].flowpack` exactly (N ≥ 2 without
/// leading zeros), its time and N (1 without a suffix), the order of backups.
pub(crate) fn parse_name(prefix: &str, file_name: &str) -> Option<(String, u64)> {
    let rest = file_name
        .strip_prefix(prefix)?
        .strip_prefix('-')?
        .strip_suffix(".flowpack")?;
    let (time, suffix) = rest.split_at_checked(16)?;
    let b = time.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..8) && b[8] == b'T' && digits(9..15) && b[15] == b'Z') {
        return None;
    }
    let n = match suffix {
        "" => 1,
        s => {
            let n = s.strip_prefix('-')?;
            if n.is_empty() || n.starts_with('0') || !n.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            n.parse().ok().filter(|n| *n >= 2)?
        }
    };
    Some((time.to_string(), n))
}

/// The environment's own backups in `dir`, oldest first: names matching the pattern whose
/// manifest's `source.environment` is `environment`.
pub(crate) fn own_backups(dir: &Path, environment: &str) -> Result<Vec<PathBuf>, BackupError> {
    let prefix = file_prefix(environment);
    let dir_error = |error| BackupError::Dir {
        path: dir.to_path_buf(),
        error,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(dir_error)? {
        let entry = entry.map_err(dir_error)?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Some(order) = parse_name(&prefix, &name) else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let names_env = Archive::open(&path, &Limits::default())
            .and_then(|a| a.manifest())
            .is_ok_and(|m| m.source.environment == environment);
        if names_env {
            found.push((order, path));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Runs a backup.
pub fn run(opts: &BackupOptions) -> Result<BackupReport, BackupError> {
    if opts.keep == Some(0) {
        return Err(BackupError::KeepZero);
    }
    std::fs::create_dir_all(&opts.dir).map_err(|error| BackupError::Dir {
        path: opts.dir.clone(),
        error,
    })?;
    let environment = opts.source.environment.clone();
    let base = format!("{}-{}", file_prefix(&environment), stamp(opts.created_at));
    let mut path = opts.dir.join(format!("{base}.flowpack"));
    let mut n = 2;
    while path.exists() {
        path = opts.dir.join(format!("{base}-{n}.flowpack"));
        n += 1;
    }
    let mut export = ExportOptions::new(
        Arc::clone(&opts.platform),
        opts.source.clone(),
        Selection::All { name: None },
        path.clone(),
        environment.clone(),
        default_version(opts.created_at),
        opts.created_at,
    );
    export.signers = opts.signers.clone();
    export.jobs = opts.jobs;
    export.progress = opts.progress.clone();
    let written = export::run(&export)?;
    let verified = verify_archive(&path, &Limits::default(), &opts.policy).map_err(|e| {
        BackupError::Verification {
            path: path.clone(),
            check: "structure".into(),
            detail: e.to_string(),
        }
    })?;
    if let Some(failed) = verified.first_failure() {
        return Err(BackupError::Verification {
            path,
            check: failed.name.to_string(),
            detail: failed.detail.clone(),
        });
    }
    let mut own = own_backups(&opts.dir, &environment)?;
    let mut deleted = Vec::new();
    if let Some(keep) = opts.keep {
        // The new backup is kept whatever the order says.
        own.retain(|p| *p != path);
        let excess = (own.len() + 1).saturating_sub(keep);
        for old in own.drain(..excess.min(own.len())) {
            std::fs::remove_file(&old).map_err(|error| BackupError::Delete {
                path: old.clone(),
                error,
            })?;
            deleted.push(old);
        }
        own.push(path.clone());
    }
    Ok(BackupReport {
        path,
        environment,
        flows: written.pack.manifest.flows.len(),
        manifest_sha256: written.pack.manifest_sha256.clone(),
        signatures: written.pack.signatures.clone(),
        signatures_checked: verified.signatures_passed(),
        kept: own,
        deleted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_pattern_exactly() {
        assert_eq!(
            parse_name("prod", "prod-20261129T120000Z.flowpack"),
            Some(("20261129T120000Z".into(), 1))
        );
        assert_eq!(
            parse_name("prod", "prod-20261129T120000Z-12.flowpack"),
            Some(("20261129T120000Z".into(), 12))
        );
        for other in [
            "prod-eu-20261129T120000Z.flowpack",
            "prod-20261129T120000Z.flowpack.bak",
            "prod-20261129T120000Z-1.flowpack",
            "prod-20261129T120000Z-02.flowpack",
            "prod-20261129T120000Z-.flowpack",
            "prod-20261129T1200Z.flowpack",
            "prod-2026112xT120000Z.flowpack",
            "xprod-20261129T120000Z.flowpack",
            "prod-20261129T120000Z (copy).flowpack",
        ] {
            assert_eq!(parse_name("prod", other), None, "{other}");
        }
    }

    fn store() -> Arc<dyn Platform> {
        let store =
            flowpack_sandbox::Store::open_in_memory(flowpack_sandbox::StoreOptions::default())
                .unwrap();
        let doc = include_str!("../../../fixtures/reference/export-v2-order-sync.json");
        store
            .import_flow(&flowpack_client::ImportRequest {
                document: serde_json::from_str(doc).unwrap(),
                as_marketplace: false,
                idempotency_key: None,
            })
            .unwrap();
        Arc::new(store)
    }

    fn backup(
        platform: &Arc<dyn Platform>,
        env: &str,
        dir: &Path,
        at: i64,
        keep: Option<usize>,
    ) -> Result<BackupReport, BackupError> {
        let source = SourceInfo {
            environment: env.into(),
            url: "https://user:pw@core.example.com/api?key=k".into(),
            company: String::new(),
        };
        let t = time::OffsetDateTime::from_unix_timestamp(at).unwrap();
        let mut opts = BackupOptions::new(Arc::clone(platform), source, dir.to_path_buf(), t);
        opts.keep = keep;
        run(&opts)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn retention_deletes_only_the_oldest_own_backups() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let p = store();
        let first = backup(&p, "prod", d, 1_767_323_045, None).unwrap();
        assert_eq!(
            first.path.file_name().unwrap(),
            "prod-20260102T030405Z.flowpack"
        );
        assert_eq!(first.flows, 1);
        let manifest = Archive::open(&first.path, &Limits::default())
            .unwrap()
            .manifest()
            .unwrap();
        assert_eq!(manifest.source.url, "https://core.example.com/api");
        assert!(manifest.flows[0].settings.is_some());
        // The same second: -2.
        let clash = backup(&p, "prod", d, 1_767_323_045, None).unwrap();
        assert_eq!(
            clash.path.file_name().unwrap(),
            "prod-20260102T030405Z-2.flowpack"
        );
        // Foreign files: a text file with a backup's name, a renamed copy, notes, another
        // environment's backups (one under a name of this environment's pattern).
        std::fs::write(d.join("prod-20200101T000000Z.flowpack"), "not an archive").unwrap();
        std::fs::copy(&first.path, d.join("prod-old-copy.flowpack")).unwrap();
        std::fs::write(d.join("notes.txt"), "keep me").unwrap();
        let other = backup(&p, "prod-eu", d, 1_700_000_000, None).unwrap();
        let staging = backup(&p, "staging", d, 1_600_000_000, None).unwrap();
        std::fs::rename(&staging.path, d.join("prod-20100101T000000Z.flowpack")).unwrap();
        assert_eq!(
            own_backups(d, "prod").unwrap(),
            [first.path.clone(), clash.path.clone()]
        );
        let third = backup(&p, "prod", d, 1_767_323_046, Some(2)).unwrap();
        assert_eq!(third.deleted, std::slice::from_ref(&first.path));
        assert_eq!(third.kept, [clash.path.clone(), third.path.clone()]);
        assert_eq!(
            names(d),
            [
                "notes.txt",
                "prod-20100101T000000Z.flowpack",
                "prod-20200101T000000Z.flowpack",
                "prod-20260102T030405Z-2.flowpack",
                "prod-20260102T030406Z.flowpack",
                "prod-eu-20231114T221320Z.flowpack",
                "prod-old-copy.flowpack",
            ]
        );
        assert!(other.path.exists());
        let fourth = backup(&p, "prod", d, 1_767_323_047, Some(1)).unwrap();
        assert_eq!(fourth.deleted.len(), 2);
        assert_eq!(fourth.kept, std::slice::from_ref(&fourth.path));
        assert_eq!(names(d).len(), 6);
        let err = backup(&p, "prod", d, 1_767_323_048, Some(0)).unwrap_err();
        assert!(matches!(err, BackupError::KeepZero));
        assert_eq!(err.category(), Category::CouldNotRun);
        assert_eq!(names(d).len(), 6);
    }

    #[test]
    fn a_backup_that_does_not_verify_deletes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let p = store();
        let old = backup(&p, "prod", d, 1_767_323_045, None).unwrap();
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/keys/test.pub");
        let policy =
            crate::trust::policy(&crate::trust::TrustOptions::new(vec![key], None)).unwrap();
        let source = SourceInfo {
            environment: "prod".into(),
            ..SourceInfo::default()
        };
        let t = time::OffsetDateTime::from_unix_timestamp(1_767_323_100).unwrap();
        let mut opts = BackupOptions::new(Arc::clone(&p), source, d.to_path_buf(), t);
        opts.keep = Some(1);
        opts.policy = policy;
        let err = run(&opts).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "{}: the backup just written did not verify (signatures: ",
                d.join("prod-20260102T030500Z.flowpack").display()
            )),
            "{text}"
        );
        assert!(text.ends_with("no older backup was deleted"), "{text}");
        assert_eq!(err.category(), Category::Rejected);
        assert!(old.path.exists());
    }

    #[test]
    fn prefixes_are_file_names() {
        assert_eq!(file_prefix("production"), "production");
        assert_eq!(file_prefix("http://127.0.0.1:8080/"), "127.0.0.1-8080");
        assert_eq!(file_prefix("a/../b"), "a-..-b");
        assert_eq!(file_prefix(".."), "env..");
        let t = time::OffsetDateTime::from_unix_timestamp(1_767_323_045).unwrap();
        assert_eq!(stamp(t), "20260102T030405Z");
    }
}
