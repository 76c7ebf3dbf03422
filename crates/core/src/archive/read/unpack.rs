//! Unpacking: verify, refuse unless every check (signatures included) passed, extract into a
//! temporary directory beside the target, rename it into place.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::super::ArchiveError;
use super::super::limits::Limits;
use super::super::manifest;
use super::{Archive, TrustPolicy, VerifyReport};

/// How to unpack.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct UnpackOptions {
    /// Limits for reading.
    pub limits: Limits,
    /// Trust policy; unpack refuses when signatures are not checked unless
    /// `skip_signatures`.
    pub policy: TrustPolicy,
    /// Unpack without checking signatures.
    pub skip_signatures: bool,
}

/// What [`unpack`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct UnpackReport {
    /// The target directory.
    pub dir: PathBuf,
    /// Entry paths written, in archive order.
    pub files: Vec<String>,
    /// The verification that preceded it.
    pub verify: VerifyReport,
}

/// Verifies `archive` and extracts it into `dir` (which must not exist or be empty): entries go
/// to a temporary directory beside `dir`, renamed into place only when everything verified.
pub fn unpack(
    archive: &Path,
    dir: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackReport, ArchiveError> {
    let mut a = Archive::open(archive, &opts.limits)?;
    let report = verify_for_unpack(&mut a, opts)?;
    let tmp = prepare_target(dir)?;
    let files = extract_entries(&mut a, tmp.path())?;
    move_into_place(tmp, dir)?;
    Ok(UnpackReport {
        dir: dir.to_path_buf(),
        files,
        verify: report,
    })
}

/// Verifies `a`, refusing when a check failed or (unless skipped) signatures were not checked.
fn verify_for_unpack(a: &mut Archive, opts: &UnpackOptions) -> Result<VerifyReport, ArchiveError> {
    let policy = if opts.skip_signatures {
        TrustPolicy::default()
    } else {
        opts.policy.clone()
    };
    let report = a.verify(&policy);
    let refuse = |summary: String, report: VerifyReport| ArchiveError::Verification {
        archive: a.origin.clone(),
        summary,
        report: Box::new(report),
    };
    if let Some(f) = report.first_failure() {
        let summary = format!("{} check failed: {}", f.name, f.detail);
        return Err(refuse(summary, report));
    }
    if !opts.skip_signatures && !report.signatures_passed() {
        return Err(refuse(
            "signatures not checked: no trusted key was given and unchecked signatures were not allowed".into(),
            report,
        ));
    }
    Ok(report)
}

fn io(path: &Path, error: std::io::Error) -> ArchiveError {
    ArchiveError::Io {
        path: path.display().to_string(),
        error,
    }
}

/// Refuses a non-empty `dir`; creates its parent and a temporary directory in it (with the mode
/// of an existing, empty `dir`; else 0777 less the umask).
fn prepare_target(dir: &Path) -> Result<tempfile::TempDir, ArchiveError> {
    if dir.exists() {
        let mut it = std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
        if it.next().is_some() {
            return Err(ArchiveError::TargetNotEmpty {
                path: dir.display().to_string(),
            });
        }
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
    let tmp = crate::fsutil::temp_dir_in(&parent).map_err(|e| io(&parent, e))?;
    if let Ok(meta) = std::fs::metadata(dir) {
        std::fs::set_permissions(tmp.path(), meta.permissions()).map_err(|e| io(dir, e))?;
    }
    Ok(tmp)
}

/// Writes every entry under `tmp`, in archive order, through the limits, checking each listed
/// entry's SHA-256 once more as it is written; the entry paths written.
fn extract_entries(a: &mut Archive, tmp: &Path) -> Result<Vec<String>, ArchiveError> {
    let manifest = a.manifest_without_inputs()?;
    let mut files = Vec::new();
    let mut total = 0;
    for i in 0..a.entries.len() {
        let e = a.entries[i].clone();
        let target = tmp.join(&e.path);
        if let Some(p) = target.parent() {
            std::fs::create_dir_all(p).map_err(|err| io(p, err))?;
        }
        let mut h = Sha256::new();
        crate::fsutil::write_atomic(&target, |w| {
            a.read_limited(&e, &mut total, |c| {
                h.update(c);
                w.write_all(c)
            })
            .map(|_| ())
        })?;
        let got = hex::encode(h.finalize());
        if let Some(want) = manifest.files.get(&e.path)
            && manifest::file_digest(&got) != *want
        {
            return Err(ArchiveError::Digest {
                archive: a.origin.clone(),
                entry: e.path.clone(),
                reason: format!("SHA-256 {got} changed while unpacking"),
            });
        }
        files.push(e.path.clone());
    }
    Ok(files)
}

/// Replaces the (empty) `dir` with `tmp`; on failure `tmp` is removed.
fn move_into_place(tmp: tempfile::TempDir, dir: &Path) -> Result<(), ArchiveError> {
    if dir.exists() {
        std::fs::remove_dir(dir).map_err(|e| io(dir, e))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        io(dir, e)
    })
}
