//! `backup`: every flow of an environment into `DIR/<env>-<yyyymmddThhmmssZ>-<seq>.flowpack`,
//! verified before it is put in place, then the environment's own backups beyond what the
//! retention rules keep deleted.
//!
//! The export is [`crate::export::run_checked`] (documents, `flow.json` settings, inputs,
//! signatures; flows a replacing push renamed aside are left out unless asked for). The time in
//! the name is the UTC `created_at` from the options; `seq` is a counter of at least six digits,
//! one above the highest sequence of the environment's backups in the directory, and is recorded
//! in the manifest's `backup: {env, url, sequence, created}` (manifest version 3). The archive
//! is written to a temporary file beside its name and verified there with the environment's
//! trust policy when it has keys, else for integrity (structure, manifest, digests, no unlisted
//! entry); only a backup that verifies is put in place, under its name created exclusively: a
//! name taken meanwhile (two backups at once) is never replaced — the sequence goes up by one
//! and the backup is made again. A backup that fails its check leaves no file in the directory.
//!
//! Retention is careful because it deletes. A file is one of this environment's own backups only
//! when its name is `<env>-<yyyymmddThhmmssZ>-<seq>.flowpack` and its manifest's `backup` names
//! the environment with that sequence, or (a backup written before sequences) its name is
//! `<env>-<yyyymmddThhmmssZ>[-N].flowpack` and its manifest's `source.environment` names the
//! environment. Any other file (another environment's backups, a copy renamed by hand, an
//! unreadable archive) is never deleted. Backups are ordered by sequence, never by time or name:
//! those written before sequences count as sequence 0, ordered among themselves by their
//! manifest's `created_at`, older than any sequenced one. [`Retention`] says what stays; a backup
//! kept by any rule stays, the backup just written always stays, and nothing is deleted when the
//! verification failed or when no rule is given.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flowpack_client::Platform;
use flowpack_core::archive::{
    Archive, ArchiveError, BackupRecord, Limits, SourceInfo, TrustPolicy, verify_archive,
};
use flowpack_core::sign::SigningKey;

use crate::error::{Categorize, Category, Remedy};
use crate::export::{self, ExportError, ExportOptions, ProgressFn, Selection, default_version};
use crate::storage::{S3Location, StorageError, Store};

/// Errors of a backup; each names the file or the environment at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// A number to keep was 0.
    #[error(
        "keeping 0 backups would delete every backup but the new one; keep at least 1 (or keep all)"
    )]
    KeepZero,
    /// The directory could not be created or listed.
    #[error("{path}: {error}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        error: std::io::Error,
    },
    /// The export failed (nothing was written).
    #[error(transparent)]
    Export(#[from] ExportError),
    /// The archive written did not verify; it was removed and nothing was deleted.
    #[error(
        "{path}: the backup did not verify ({check}: {detail}); it was not kept, and no older \
         backup was deleted"
    )]
    Verification {
        /// The backup's name.
        path: PathBuf,
        /// The check that failed.
        check: String,
        /// What it found.
        detail: String,
    },
    /// Object storage failed (settings, credentials, the store unreachable, an upload refused).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An old backup could not be deleted.
    #[error("{path}: cannot delete this old backup: {error}")]
    Delete {
        /// The backup.
        path: PathBuf,
        /// What the system said.
        #[source]
        error: std::io::Error,
    },
}

impl Categorize for BackupError {
    fn category(&self) -> Category {
        match self {
            BackupError::Export(e) => e.category(),
            BackupError::Storage(e) => e.category(),
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

/// Which of an environment's backups stay. Each rule keeps some; a backup kept by any rule
/// stays; the backup just written always stays. No rule at all keeps every backup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// The backups with the N highest sequences.
    pub keep: Option<usize>,
    /// The newest backup of each of the last N UTC days that have one.
    pub daily: Option<usize>,
    /// The newest backup of each of the last N ISO weeks (UTC) that have one.
    pub weekly: Option<usize>,
    /// The newest backup of each of the last N UTC months that have one.
    pub monthly: Option<usize>,
}

impl Retention {
    /// Whether any rule is given (without one nothing is deleted).
    pub fn is_set(&self) -> bool {
        self.keep.is_some()
            || self.daily.is_some()
            || self.weekly.is_some()
            || self.monthly.is_some()
    }
}

/// What to back up, where, and how many to keep.
#[non_exhaustive]
pub struct BackupOptions {
    /// The environment.
    pub platform: Arc<dyn Platform>,
    /// Its name (file names, the manifest's `source.environment` and `backup.env`) and URL
    /// (stored redacted).
    pub source: SourceInfo,
    /// The directory of the backups (created when missing).
    pub dir: PathBuf,
    /// How many of the environment's own backups to keep, the new one included; `None` keeps
    /// all (unless another retention rule is given).
    pub keep: Option<usize>,
    /// The other retention rules (daily, weekly, monthly); its `keep` is ignored for the field
    /// above.
    pub retention: Retention,
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
    /// Keep the flows a replacing push renamed aside (`<name> (replaced <time>)`); left out
    /// by default.
    pub include_replaced: bool,
}

impl BackupOptions {
    /// Backs up `platform` (named by `source.environment`) into `dir` at `created_at`, keeping
    /// every backup; unsigned, integrity-checked, 4 jobs, replaced flows left out.
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
            retention: Retention::default(),
            created_at,
            signers: Vec::new(),
            policy: TrustPolicy::default(),
            jobs: 4,
            progress: None,
            include_replaced: false,
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
    /// Its sequence among the environment's backups in the directory.
    pub sequence: u64,
    /// Flows in it.
    pub flows: usize,
    /// SHA-256 of its manifest.
    pub manifest_sha256: String,
    /// Key ids of its signatures.
    pub signatures: Vec<String>,
    /// Whether signatures were checked (the environment has trusted keys) or integrity only.
    pub signatures_checked: bool,
    /// The environment's own backups kept, oldest first (the new one last, unless a
    /// concurrent backup came after it).
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

/// The file name of backup `sequence` of the environment with file prefix `prefix` at `t`.
pub(crate) fn backup_name(prefix: &str, t: time::OffsetDateTime, sequence: u64) -> String {
    format!("{prefix}-{}-{sequence:06}.flowpack", stamp(t))
}

/// What a backup's file name says after the environment's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NameSuffix {
    /// `-<seq>`, six digits or more (a sequenced backup).
    Sequence(u64),
    /// Nothing, or `-N` with N ≥ 2 without leading zeros (a backup written before sequences).
    Legacy,
}

/// When `file_name` is `<prefix>-<yyyymmddThhmmssZ>[-DIGITS].flowpack`: what the suffix may
/// be. `-123456` is both a sequence and a legacy `-N`: the manifest tells them apart.
pub(crate) fn parse_name(prefix: &str, file_name: &str) -> Option<Vec<NameSuffix>> {
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
    if suffix.is_empty() {
        return Some(vec![NameSuffix::Legacy]);
    }
    let n = suffix.strip_prefix('-')?;
    if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let value: u64 = n.parse().ok()?;
    let mut out = Vec::new();
    if n.len() >= 6 && value >= 1 {
        out.push(NameSuffix::Sequence(value));
    }
    if !n.starts_with('0') && value >= 2 {
        out.push(NameSuffix::Legacy);
    }
    (!out.is_empty()).then_some(out)
}

/// One of the environment's own backups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    /// The file.
    pub(crate) path: PathBuf,
    /// Its sequence (0 for a backup written before sequences).
    pub(crate) sequence: u64,
    /// When it was made (the manifest's `backup.created`, else `created_at`).
    pub(crate) created: time::OffsetDateTime,
}

impl Found {
    /// The order of backups: sequence, then (among those written before sequences) time, then
    /// name.
    fn order(&self) -> (u64, time::OffsetDateTime, &Path) {
        (self.sequence, self.created, &self.path)
    }
}

fn parse_time(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// The environment's own backups in `dir`, oldest first (see the module docs for what counts
/// and the order).
pub(crate) fn own_backups(dir: &Path, environment: &str) -> Result<Vec<Found>, BackupError> {
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
        let Some(suffixes) = parse_name(&prefix, &name) else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        if let Some((sequence, created)) = classify(&path, environment, &suffixes) {
            found.push(Found {
                path,
                sequence,
                created,
            });
        }
    }
    found.sort_by(|a, b| a.order().cmp(&b.order()));
    Ok(found)
}

/// Whether the archive at `path`, whose name has `suffixes`, is one of `environment`'s own
/// backups: its sequence (0 before sequences) and time.
fn classify(
    path: &Path,
    environment: &str,
    suffixes: &[NameSuffix],
) -> Option<(u64, time::OffsetDateTime)> {
    let manifest = Archive::open(path, &Limits::default())
        .and_then(|a| a.manifest_without_inputs())
        .ok()?;
    let own = match &manifest.backup {
        Some(b) => (b.env == environment && suffixes.contains(&NameSuffix::Sequence(b.sequence)))
            .then(|| (b.sequence, parse_time(&b.created))),
        None => (manifest.source.environment == environment
            && suffixes.contains(&NameSuffix::Legacy))
        .then(|| (0, parse_time(&manifest.created_at))),
    };
    match own {
        Some((sequence, Some(created))) => Some((sequence, created)),
        _ => None,
    }
}

/// The environment's own backups under an `s3://` location, oldest first, their paths the
/// objects' `s3://` URLs. Each candidate (by name) is downloaded into `work` to read its
/// manifest; `cache` keeps what was found per key across calls.
fn own_backups_s3(
    store: &Store,
    location: &S3Location,
    environment: &str,
    work: &Path,
    cache: &mut BTreeMap<String, Option<Found>>,
) -> Result<Vec<Found>, BackupError> {
    let prefix = file_prefix(environment);
    let under = location.key("");
    let mut found = Vec::new();
    for object in store.list(&under)? {
        let Some(name) = object.key.strip_prefix(&under) else {
            continue;
        };
        if name.contains('/') {
            continue;
        }
        let Some(suffixes) = parse_name(&prefix, name) else {
            continue;
        };
        if let Some(known) = cache.get(&object.key) {
            found.extend(known.clone());
            continue;
        }
        let own = match store.get_to_temp(&object.key, work, crate::storage::MAX_OBJECT_BYTES) {
            Ok(local) => {
                classify(local.path(), environment, &suffixes).map(|(sequence, created)| Found {
                    path: PathBuf::from(location.url_of(&object.key)),
                    sequence,
                    created,
                })
            }
            // Deleted meanwhile, or not what the store announced: not a backup to count.
            Err(StorageError::NotFound { .. } | StorageError::Mismatch { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        cache.insert(object.key.clone(), own.clone());
        found.extend(own);
    }
    found.sort_by(|a, b| a.order().cmp(&b.order()));
    Ok(found)
}

/// Which of `found` (oldest first) `rules` keep, by index; `new` always stays. Without any
/// rule, every one.
pub(crate) fn kept_indexes(found: &[Found], rules: &Retention, new: &Path) -> BTreeSet<usize> {
    if !rules.is_set() {
        return (0..found.len()).collect();
    }
    let mut kept: BTreeSet<usize> = found
        .iter()
        .enumerate()
        .filter(|(_, f)| f.path == new)
        .map(|(i, _)| i)
        .collect();
    if let Some(n) = rules.keep {
        kept.extend(found.len().saturating_sub(n)..found.len());
    }
    let utc = |f: &Found| f.created.to_offset(time::UtcOffset::UTC);
    let mut by_period = |n: Option<usize>, key: &dyn Fn(time::OffsetDateTime) -> (i32, u32)| {
        let Some(n) = n else { return };
        // found is oldest first, so the last backup of a period is its newest.
        let mut newest: BTreeMap<(i32, u32), usize> = BTreeMap::new();
        for (i, f) in found.iter().enumerate() {
            newest.insert(key(utc(f)), i);
        }
        kept.extend(newest.values().rev().take(n).copied());
    };
    by_period(rules.daily, &|t| (t.year(), u32::from(t.ordinal())));
    by_period(rules.weekly, &|t| {
        let (year, week, _) = t.to_iso_week_date();
        (year, u32::from(week))
    });
    by_period(rules.monthly, &|t| {
        (t.year(), u32::from(u8::from(t.month())))
    });
    kept
}

/// Exports the backup `sequence` to `path` and verifies it there: `Ok(Err(_))` is an export
/// error the caller may retry (a name taken), `Ok(Ok((written, signatures checked)))` a backup
/// in place.
fn build(
    opts: &BackupOptions,
    path: &Path,
    shown: &str,
    sequence: u64,
    created: &str,
) -> Result<Result<(export::ExportReport, bool), ExportError>, BackupError> {
    let environment = opts.source.environment.clone();
    let mut export = ExportOptions::new(
        Arc::clone(&opts.platform),
        opts.source.clone(),
        Selection::All { name: None },
        path.to_path_buf(),
        environment.clone(),
        default_version(opts.created_at),
        opts.created_at,
    );
    export.signers = opts.signers.clone();
    export.jobs = opts.jobs;
    export.progress = opts.progress.clone();
    export.include_replaced = opts.include_replaced;
    export.backup = Some(BackupRecord {
        env: environment,
        url: flowpack_client::redacted(&opts.source.url),
        sequence,
        created: created.to_string(),
    });
    let mut failure = None;
    let mut checked = false;
    let result = export::run_checked(&export, |tmp| {
        let (check, detail) = match verify_archive(tmp, &Limits::default(), &opts.policy) {
            Ok(report) => match report.first_failure() {
                None => {
                    checked = report.signatures_passed();
                    return Ok(());
                }
                Some(failed) => (failed.name.to_string(), failed.detail.clone()),
            },
            Err(e) => ("structure".to_string(), e.to_string()),
        };
        let detail = detail.replace(&tmp.display().to_string(), shown);
        failure = Some(BackupError::Verification {
            path: PathBuf::from(shown),
            check,
            detail,
        });
        Err(ArchiveError::SelfCheck {
            archive: shown.to_string(),
            reason: "the backup did not verify".into(),
        })
    });
    if let Some(failure) = failure {
        return Err(failure);
    }
    Ok(result.map(|written| (written, checked)))
}

/// Runs a backup.
pub fn run(opts: &BackupOptions) -> Result<BackupReport, BackupError> {
    let rules = Retention {
        keep: opts.keep,
        ..opts.retention
    };
    if [rules.keep, rules.daily, rules.weekly, rules.monthly].contains(&Some(0)) {
        return Err(BackupError::KeepZero);
    }
    let created = opts
        .created_at
        .to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| BackupError::Dir {
            path: opts.dir.clone(),
            error: std::io::Error::other(e.to_string()),
        })?;
    if let Some(spec) = opts.dir.to_str().filter(|d| crate::storage::is_s3(d)) {
        return run_s3(opts, &rules, spec, &created);
    }
    std::fs::create_dir_all(&opts.dir).map_err(|error| BackupError::Dir {
        path: opts.dir.clone(),
        error,
    })?;
    let environment = opts.source.environment.clone();
    let prefix = file_prefix(&environment);
    let mut sequence = own_backups(&opts.dir, &environment)?
        .iter()
        .map(|f| f.sequence)
        .max()
        .unwrap_or(0)
        + 1;
    // A name taken by a backup written meanwhile: the next sequence, made again. Bounded, so
    // a directory that refuses every name (not writable as expected) cannot loop forever.
    let (path, written, signatures_checked) = loop {
        let path = opts
            .dir
            .join(backup_name(&prefix, opts.created_at, sequence));
        match build(opts, &path, &path.display().to_string(), sequence, &created)? {
            Ok((written, checked)) => break (path, written, checked),
            Err(ExportError::Archive(ArchiveError::Write(e)))
                if e.exists() && sequence < u64::MAX =>
            {
                sequence += 1;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let own = own_backups(&opts.dir, &environment)?;
    let keep = kept_indexes(&own, &rules, &path);
    let (kept, deleted) = retain(own, &keep, |found| {
        std::fs::remove_file(&found.path).map_err(|error| BackupError::Delete {
            path: found.path.clone(),
            error,
        })
    })?;
    Ok(report(
        path,
        environment,
        sequence,
        &written,
        signatures_checked,
        kept,
        deleted,
    ))
}

/// Deletes the backups of `own` whose index `keep` does not hold (with `delete`, which stops
/// at the first failure): the paths kept and deleted, in `own`'s order.
fn retain(
    own: Vec<Found>,
    keep: &BTreeSet<usize>,
    mut delete: impl FnMut(&Found) -> Result<(), BackupError>,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>), BackupError> {
    let mut kept = Vec::new();
    let mut deleted = Vec::new();
    for (i, found) in own.into_iter().enumerate() {
        if keep.contains(&i) {
            kept.push(found.path);
        } else {
            delete(&found)?;
            deleted.push(found.path);
        }
    }
    Ok((kept, deleted))
}

/// The report of a backup written at `path` (a file or an object's `s3://` URL).
fn report(
    path: PathBuf,
    environment: String,
    sequence: u64,
    written: &export::ExportReport,
    signatures_checked: bool,
    kept: Vec<PathBuf>,
    deleted: Vec<PathBuf>,
) -> BackupReport {
    BackupReport {
        path,
        environment,
        sequence,
        flows: written.pack.manifest.flows.len(),
        manifest_sha256: written.pack.manifest_sha256.clone(),
        signatures: written.pack.signatures.clone(),
        signatures_checked,
        kept,
        deleted,
    }
}

/// A backup to `s3://BUCKET/PREFIX`: built and verified in a private local directory, then
/// uploaded under its name, created only when absent (a name taken meanwhile: the next
/// sequence, made again); then retention as in a directory, deleting objects.
fn run_s3(
    opts: &BackupOptions,
    rules: &Retention,
    spec: &str,
    created: &str,
) -> Result<BackupReport, BackupError> {
    let location = S3Location::parse(spec)?;
    let store = Store::open_configured(&location)?;
    store.check()?;
    let work = tempfile::Builder::new()
        .prefix(".flowpack-backup-")
        .tempdir()
        .map_err(|error| BackupError::Dir {
            path: std::env::temp_dir(),
            error,
        })?;
    let environment = opts.source.environment.clone();
    let prefix = file_prefix(&environment);
    let mut cache = BTreeMap::new();
    let mut sequence = own_backups_s3(&store, &location, &environment, work.path(), &mut cache)?
        .iter()
        .map(|f| f.sequence)
        .max()
        .unwrap_or(0)
        + 1;
    let (path, written, signatures_checked) = loop {
        let name = backup_name(&prefix, opts.created_at, sequence);
        let key = location.key(&name);
        let shown = location.url_of(&key);
        let local = work.path().join(&name);
        let (written, checked) = build(opts, &local, &shown, sequence, created)??;
        let uploaded = store.put_file(&local, &key, false);
        let _ = std::fs::remove_file(&local);
        match uploaded {
            Ok(()) => break (PathBuf::from(shown), written, checked),
            Err(StorageError::Exists { .. }) if sequence < u64::MAX => sequence += 1,
            Err(e) => return Err(e.into()),
        }
    };
    let own = own_backups_s3(&store, &location, &environment, work.path(), &mut cache)?;
    let keep = kept_indexes(&own, rules, &path);
    let (kept, deleted) = retain(own, &keep, |found| {
        let url = found.path.to_string_lossy().into_owned();
        let key = url
            .strip_prefix(&format!("s3://{}/", location.bucket))
            .unwrap_or(&url);
        Ok(store.delete(key)?)
    })?;
    Ok(report(
        path,
        environment,
        sequence,
        &written,
        signatures_checked,
        kept,
        deleted,
    ))
}

/// One backup found at a location.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct ListedBackup {
    /// The environment backed up.
    pub env: String,
    /// When (UTC, RFC 3339).
    pub created: String,
    /// Its sequence among the environment's backups.
    pub sequence: u64,
    /// Flows in it.
    pub flows: usize,
    /// Its size in bytes.
    pub size: u64,
    /// Key ids of its signatures.
    pub signed_by: Vec<String>,
    /// Its file or object name.
    pub name: String,
    /// Whether it verified (only when asked to check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// The first failed check when it did not verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// The backups at a location, newest first.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct BackupList {
    /// The backups.
    pub backups: Vec<ListedBackup>,
}

/// What to list.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ListOptions {
    /// A directory or `s3://BUCKET/PREFIX`.
    pub location: String,
    /// Only this environment's backups.
    pub env: Option<String>,
    /// Check each backup with this policy (`None`: only read each manifest and signatures).
    pub verify: Option<TrustPolicy>,
}

impl ListOptions {
    /// Every backup at `location`, not checked.
    pub fn new(location: impl Into<String>) -> ListOptions {
        ListOptions {
            location: location.into(),
            env: None,
            verify: None,
        }
    }
}

/// Describes the backup at `path` named `name`, when it is one (a manifest `backup` record
/// whose environment and sequence its name carries).
fn describe(path: &Path, name: &str, size: u64, opts: &ListOptions) -> Option<ListedBackup> {
    let manifest = Archive::open(path, &Limits::default())
        .and_then(|a| a.manifest_without_inputs())
        .ok()?;
    let record = manifest.backup.as_ref()?;
    if opts.env.as_ref().is_some_and(|e| *e != record.env) {
        return None;
    }
    let suffixes = parse_name(&file_prefix(&record.env), name)?;
    if !suffixes.contains(&NameSuffix::Sequence(record.sequence)) {
        return None;
    }
    let policy = opts.verify.clone().unwrap_or_default();
    let (signed_by, verified, failure) = match verify_archive(path, &Limits::default(), &policy) {
        Ok(report) => {
            let failure = report.first_failure().map(|f| {
                format!(
                    "{}: {}",
                    f.name,
                    f.detail.replace(&path.display().to_string(), name)
                )
            });
            (
                report.signatures.iter().map(|s| s.key_id.clone()).collect(),
                failure.is_none(),
                failure,
            )
        }
        Err(e) => (Vec::new(), false, Some(format!("structure: {e}"))),
    };
    Some(ListedBackup {
        env: record.env.clone(),
        created: record.created.clone(),
        sequence: record.sequence,
        flows: manifest.flows.len(),
        size,
        signed_by,
        name: name.to_string(),
        verified: opts.verify.is_some().then_some(verified),
        failure: opts.verify.is_some().then_some(failure).flatten(),
    })
}

/// Lists the backups at a directory or `s3://` location, newest first (by time, then
/// sequence). Files or objects that are not backups are left out.
pub fn list(opts: &ListOptions) -> Result<BackupList, BackupError> {
    let mut backups = Vec::new();
    if crate::storage::is_s3(&opts.location) {
        let location = S3Location::parse(&opts.location)?;
        let store = Store::open_configured(&location)?;
        let work = tempfile::Builder::new()
            .prefix(".flowpack-backups-")
            .tempdir()
            .map_err(|error| BackupError::Dir {
                path: std::env::temp_dir(),
                error,
            })?;
        let under = location.key("");
        for object in store.list(&under)? {
            let Some(name) = object.key.strip_prefix(&under) else {
                continue;
            };
            if name.contains('/') || !name.ends_with(".flowpack") {
                continue;
            }
            let local =
                match store.get_to_temp(&object.key, work.path(), crate::storage::MAX_OBJECT_BYTES)
                {
                    Ok(local) => local,
                    Err(StorageError::NotFound { .. }) => continue,
                    Err(e) => return Err(e.into()),
                };
            backups.extend(describe(local.path(), name, local.size, opts));
        }
    } else {
        let dir = PathBuf::from(&opts.location);
        let dir_error = |error| BackupError::Dir {
            path: dir.clone(),
            error,
        };
        for entry in std::fs::read_dir(&dir).map_err(dir_error)? {
            let entry = entry.map_err(dir_error)?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() || !name.ends_with(".flowpack") {
                continue;
            }
            backups.extend(describe(&entry.path(), &name, meta.len(), opts));
        }
    }
    backups.sort_by(|a, b| {
        let key = |x: &ListedBackup| (parse_time(&x.created), x.sequence, x.name.clone());
        key(b).cmp(&key(a))
    });
    Ok(BackupList { backups })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_pattern_exactly() {
        use NameSuffix::{Legacy, Sequence};
        assert_eq!(
            parse_name("prod", "prod-20261129T120000Z.flowpack"),
            Some(vec![Legacy])
        );
        assert_eq!(
            parse_name("prod", "prod-20261129T120000Z-12.flowpack"),
            Some(vec![Legacy])
        );
        assert_eq!(
            parse_name("prod", "prod-20261129T120000Z-000012.flowpack"),
            Some(vec![Sequence(12)])
        );
        assert_eq!(
            parse_name("prod", "prod-20261129T120000Z-123456.flowpack"),
            Some(vec![Sequence(123_456), Legacy])
        );
        assert_eq!(
            parse_name("prod", "prod-20261129T120000Z-1234567.flowpack"),
            Some(vec![Sequence(1_234_567), Legacy])
        );
        for other in [
            "prod-eu-20261129T120000Z.flowpack",
            "prod-20261129T120000Z.flowpack.bak",
            "prod-20261129T120000Z-1.flowpack",
            "prod-20261129T120000Z-02.flowpack",
            "prod-20261129T120000Z-000000.flowpack",
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
        let doc = include_str!("../fixtures/reference/export-v2-order-sync.json");
        store
            .import_flow(&flowpack_client::ImportRequest {
                document: serde_json::from_str(doc).unwrap(),
                as_marketplace: false,
                idempotency_key: None,
            })
            .unwrap();
        Arc::new(store)
    }

    fn backup_with(
        platform: &Arc<dyn Platform>,
        env: &str,
        dir: &Path,
        at: i64,
        retention: Retention,
    ) -> Result<BackupReport, BackupError> {
        let source = SourceInfo {
            environment: env.into(),
            url: "https://user:pw@core.example.com/api?key=k".into(),
            company: String::new(),
        };
        let t = time::OffsetDateTime::from_unix_timestamp(at).unwrap();
        let mut opts = BackupOptions::new(Arc::clone(platform), source, dir.to_path_buf(), t);
        opts.keep = retention.keep;
        opts.retention = retention;
        run(&opts)
    }

    fn backup(
        platform: &Arc<dyn Platform>,
        env: &str,
        dir: &Path,
        at: i64,
        keep: Option<usize>,
    ) -> Result<BackupReport, BackupError> {
        let retention = Retention {
            keep,
            ..Retention::default()
        };
        backup_with(platform, env, dir, at, retention)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// A backup as flowpack wrote them before sequences: `name`, manifest version 2 style
    /// (no `backup`), made at `at`.
    fn legacy(platform: &Arc<dyn Platform>, env: &str, dir: &Path, name: &str, at: i64) {
        let t = time::OffsetDateTime::from_unix_timestamp(at).unwrap();
        let source = SourceInfo {
            environment: env.into(),
            ..SourceInfo::default()
        };
        let opts = ExportOptions::new(
            Arc::clone(platform),
            source,
            Selection::All { name: None },
            dir.join(name),
            env.into(),
            default_version(t),
            t,
        );
        export::run(&opts).unwrap();
    }

    #[test]
    fn retention_deletes_only_the_oldest_own_backups() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let p = store();
        let first = backup(&p, "prod", d, 1_767_323_045, None).unwrap();
        assert_eq!(
            first.path.file_name().unwrap(),
            "prod-20260102T030405Z-000001.flowpack"
        );
        assert_eq!((first.flows, first.sequence), (1, 1));
        let manifest = Archive::open(&first.path, &Limits::default())
            .unwrap()
            .manifest()
            .unwrap();
        assert_eq!(manifest.source.url, "https://core.example.com/api");
        assert_eq!(manifest.format_version, 3);
        assert_eq!(
            manifest.backup,
            Some(BackupRecord {
                env: "prod".into(),
                url: "https://core.example.com/api".into(),
                sequence: 1,
                created: "2026-01-02T03:04:05Z".into(),
            })
        );
        assert!(manifest.flows[0].settings.is_some());
        // The same second, and a clock gone back: the sequence still grows.
        let clash = backup(&p, "prod", d, 1_767_323_045, None).unwrap();
        assert_eq!(
            clash.path.file_name().unwrap(),
            "prod-20260102T030405Z-000002.flowpack"
        );
        let back = backup(&p, "prod", d, 1_767_000_000, None).unwrap();
        assert_eq!(
            back.path.file_name().unwrap(),
            "prod-20251229T092000Z-000003.flowpack"
        );
        // Foreign files: a text file with a backup's name, a renamed copy, notes, another
        // environment's backups (one under a name of this environment's pattern, one under a
        // sequenced name of this environment), a backup renamed to another sequence.
        std::fs::write(d.join("prod-20200101T000000Z.flowpack"), "not an archive").unwrap();
        std::fs::copy(&first.path, d.join("prod-old-copy.flowpack")).unwrap();
        std::fs::copy(&first.path, d.join("prod-20260102T030405Z-000009.flowpack")).unwrap();
        std::fs::write(d.join("notes.txt"), "keep me").unwrap();
        let other = backup(&p, "prod-eu", d, 1_700_000_000, None).unwrap();
        let staging = backup(&p, "staging", d, 1_600_000_000, None).unwrap();
        std::fs::rename(&staging.path, d.join("prod-20100101T000000Z.flowpack")).unwrap();
        let staging = backup(&p, "staging", d, 1_600_000_000, None).unwrap();
        std::fs::rename(
            &staging.path,
            d.join("prod-20100101T000000Z-000050.flowpack"),
        )
        .unwrap();
        let own: Vec<PathBuf> = own_backups(d, "prod")
            .unwrap()
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(
            own,
            [first.path.clone(), clash.path.clone(), back.path.clone()]
        );
        let fourth = backup(&p, "prod", d, 1_767_323_046, Some(2)).unwrap();
        assert_eq!(fourth.sequence, 4);
        assert_eq!(fourth.deleted, [first.path.clone(), clash.path.clone()]);
        assert_eq!(fourth.kept, [back.path.clone(), fourth.path.clone()]);
        assert_eq!(
            names(d),
            [
                "notes.txt",
                "prod-20100101T000000Z-000050.flowpack",
                "prod-20100101T000000Z.flowpack",
                "prod-20200101T000000Z.flowpack",
                "prod-20251229T092000Z-000003.flowpack",
                "prod-20260102T030405Z-000009.flowpack",
                "prod-20260102T030406Z-000004.flowpack",
                "prod-eu-20231114T221320Z-000001.flowpack",
                "prod-old-copy.flowpack",
            ]
        );
        assert!(other.path.exists());
        let fifth = backup(&p, "prod", d, 1_767_323_047, Some(1)).unwrap();
        assert_eq!(fifth.deleted.len(), 2);
        assert_eq!(fifth.kept, std::slice::from_ref(&fifth.path));
        assert_eq!(names(d).len(), 8);
        let err = backup(&p, "prod", d, 1_767_323_048, Some(0)).unwrap_err();
        assert!(matches!(err, BackupError::KeepZero));
        assert_eq!(err.category(), Category::CouldNotRun);
        assert_eq!(names(d).len(), 8);
    }

    #[test]
    fn legacy_backups_are_sequence_0_ordered_by_their_manifest_time() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let p = store();
        // Named out of time order: -2 is the older by its manifest.
        legacy(
            &p,
            "prod",
            d,
            "prod-20260101T000000Z.flowpack",
            1_767_300_000,
        );
        legacy(
            &p,
            "prod",
            d,
            "prod-20260101T000000Z-2.flowpack",
            1_767_200_000,
        );
        legacy(
            &p,
            "prod",
            d,
            "prod-20250101T000000Z.flowpack",
            1_767_400_000,
        );
        let own: Vec<String> = own_backups(d, "prod")
            .unwrap()
            .iter()
            .map(|f| {
                assert_eq!(f.sequence, 0);
                f.path.file_name().unwrap().to_string_lossy().into_owned()
            })
            .collect();
        assert_eq!(
            own,
            [
                "prod-20260101T000000Z-2.flowpack",
                "prod-20260101T000000Z.flowpack",
                "prod-20250101T000000Z.flowpack",
            ]
        );
        // A sequenced backup with an older clock is still newer than every legacy one.
        let new = backup(&p, "prod", d, 1_000_000_000, Some(2)).unwrap();
        assert_eq!(new.sequence, 1);
        assert_eq!(new.deleted.len(), 2);
        assert_eq!(
            names(d),
            [
                "prod-20010909T014640Z-000001.flowpack",
                "prod-20250101T000000Z.flowpack",
            ]
        );
    }

    #[test]
    fn a_taken_name_is_never_replaced_the_sequence_goes_up() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let p = store();
        // Someone else's file under the name the next backup would take.
        std::fs::write(d.join("prod-20260102T030405Z-000001.flowpack"), "theirs").unwrap();
        let b = backup(&p, "prod", d, 1_767_323_045, None).unwrap();
        assert_eq!(b.sequence, 2);
        assert_eq!(
            std::fs::read(d.join("prod-20260102T030405Z-000001.flowpack")).unwrap(),
            b"theirs"
        );
    }

    #[test]
    fn backups_at_once_never_share_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let p = store();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (p, d) = (Arc::clone(&p), d.clone());
                std::thread::spawn(move || backup(&p, "prod", &d, 1_767_323_045, None).unwrap())
            })
            .collect();
        let mut sequences: Vec<u64> = threads
            .into_iter()
            .map(|t| t.join().unwrap().sequence)
            .collect();
        sequences.sort_unstable();
        sequences.dedup();
        assert_eq!(sequences.len(), 4, "{sequences:?}");
        assert_eq!(names(&d).len(), 4);
        let own = own_backups(&d, "prod").unwrap();
        assert_eq!(own.len(), 4);
    }

    fn at(day: u32, hour: u8) -> i64 {
        // 2026-01-01 is a Thursday (ISO week 1 of 2026).
        let date = time::Date::from_calendar_date(2026, time::Month::January, 1).unwrap()
            + time::Duration::days(i64::from(day));
        date.with_hms(hour, 0, 0)
            .unwrap()
            .assume_utc()
            .unix_timestamp()
    }

    #[test]
    fn daily_weekly_monthly_keep_the_newest_of_each_period() {
        let found: Vec<Found> = [
            at(0, 1),
            at(0, 9),
            at(1, 3),
            at(3, 5),
            at(4, 5),
            at(33, 0),
            at(34, 0),
            at(34, 2),
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| Found {
            path: PathBuf::from(format!("b{i}")),
            sequence: i as u64 + 1,
            created: time::OffsetDateTime::from_unix_timestamp(*t).unwrap(),
        })
        .collect();
        let kept = |r: Retention| -> Vec<usize> {
            kept_indexes(&found, &r, Path::new("none"))
                .into_iter()
                .collect()
        };
        let none = Retention::default();
        assert_eq!(kept(none), (0..8).collect::<Vec<_>>());
        let daily = Retention {
            daily: Some(3),
            ..none
        };
        // Days 34, 33, 4: the newest of day 34 is index 7.
        assert_eq!(kept(daily), [4, 5, 7]);
        // ISO weeks: days 0-3 are week 1 (Thu-Sun), day 4 is week 2, days 33-34 week 6.
        let weekly = Retention {
            weekly: Some(2),
            ..none
        };
        assert_eq!(kept(weekly), [4, 7]);
        let monthly = Retention {
            monthly: Some(5),
            ..none
        };
        assert_eq!(kept(monthly), [4, 7]);
        let both = Retention {
            keep: Some(1),
            daily: Some(5),
            ..none
        };
        assert_eq!(kept(both), [2, 3, 4, 5, 7]);
        // The new one stays whatever the rules say.
        let r = Retention {
            keep: Some(1),
            ..none
        };
        let with_new: Vec<usize> = kept_indexes(&found, &r, Path::new("b0"))
            .into_iter()
            .collect();
        assert_eq!(with_new, [0, 7]);
        // A clock gone back: the newest of a day is the highest sequence, not the latest time.
        let mut back = found.clone();
        back[1].created = back[0].created - time::Duration::hours(1);
        let days: Vec<usize> = kept_indexes(
            &back,
            &Retention {
                daily: Some(8),
                ..none
            },
            Path::new("none"),
        )
        .into_iter()
        .collect();
        assert!(days.contains(&1) && !days.contains(&0), "{days:?}");
    }

    #[test]
    fn a_backup_that_does_not_verify_leaves_nothing_and_deletes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let p = store();
        let old = backup(&p, "prod", d, 1_767_323_045, None).unwrap();
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys/test.pub");
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
                "{}: the backup did not verify (signatures: ",
                d.join("prod-20260102T030500Z-000002.flowpack").display()
            )),
            "{text}"
        );
        assert!(text.ends_with("no older backup was deleted"), "{text}");
        assert!(!text.contains(".flowpack-tmp"), "{text}");
        assert_eq!(err.category(), Category::Rejected);
        assert!(old.path.exists());
        assert_eq!(
            names(d),
            [old.path.file_name().unwrap().to_string_lossy().into_owned()]
        );
    }

    #[test]
    fn replaced_flows_are_left_out_unless_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let p = store();
        let doc: serde_json::Value = serde_json::from_str(include_str!(
            "../fixtures/reference/export-v2-order-sync.json"
        ))
        .unwrap();
        let id = p
            .import_flow(&flowpack_client::ImportRequest {
                document: doc,
                as_marketplace: false,
                idempotency_key: None,
            })
            .unwrap()
            .id;
        p.update_flow_settings(
            id,
            &flowpack_client::FlowSettingsUpdate {
                name: Some("Orders (replaced 20261129T120000Z)".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let without = backup(&p, "prod", d, 1_767_323_045, None).unwrap();
        assert_eq!(without.flows, 1);
        let source = SourceInfo {
            environment: "prod".into(),
            ..SourceInfo::default()
        };
        let t = time::OffsetDateTime::from_unix_timestamp(1_767_323_046).unwrap();
        let mut opts = BackupOptions::new(Arc::clone(&p), source, d.to_path_buf(), t);
        opts.include_replaced = true;
        assert_eq!(run(&opts).unwrap().flows, 2);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
        /// Any clocks (equal, going back) and any `keep`: exactly the newest by write order
        /// stay.
        #[test]
        fn keep_n_keeps_the_newest_by_write_order(
            offsets in proptest::collection::vec(-3i64..3, 1..7),
            keep in 1usize..4,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let p = store();
            let mut written = Vec::new();
            let mut clock = 1_767_323_045;
            for o in offsets {
                clock += o;
                let b = backup(&p, "prod", d, clock, Some(keep)).unwrap();
                written.push(b.path);
            }
            let newest: Vec<PathBuf> =
                written[written.len().saturating_sub(keep)..].to_vec();
            let mut left: Vec<PathBuf> =
                std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()).collect();
            left.sort();
            let mut want = newest.clone();
            want.sort();
            proptest::prop_assert_eq!(left, want);
        }
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
