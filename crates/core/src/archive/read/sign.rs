//! Signing an existing archive: one signature entry added or replaced, every other entry
//! raw-copied.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::super::limits::Limits;
use super::super::zipio::{self, Source};
use super::super::{ArchiveError, MANIFEST_PATH};
use super::{Archive, TrustPolicy};
use crate::sign::{SigningKey, trusted_comment};

/// How to sign an existing archive.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignArchiveOptions {
    /// Limits for reading.
    pub limits: Limits,
}

/// What [`sign_archive`] did.
#[derive(Debug, Clone, Serialize)]
pub struct SignReport {
    /// The archive.
    pub archive: PathBuf,
    /// The key id that signed.
    pub key_id: String,
    /// Whether a previous signature by the same key was replaced.
    pub replaced: bool,
}

/// Adds `key`'s signature over the archive's manifest, rewriting the archive atomically; every
/// other entry is raw-copied (its bytes unchanged). The archive must pass the structure,
/// manifest and digest checks first.
pub fn sign_archive(
    path: &Path,
    key: &SigningKey,
    opts: &SignArchiveOptions,
) -> Result<SignReport, ArchiveError> {
    let origin = path.display().to_string();
    let mut a = Archive::open(path, &opts.limits)?;
    let report = a.verify(&TrustPolicy::default());
    if let Some(f) = report.first_failure() {
        return Err(ArchiveError::Verification {
            archive: origin,
            summary: format!("{} check failed: {}", f.name, f.detail),
            report: Box::new(report),
        });
    }
    let manifest = a.manifest_without_inputs()?;
    let manifest_bytes = a.manifest_bytes.clone().unwrap_or_default();
    let comment = trusted_comment(
        &manifest.package.name,
        &manifest.package.version,
        &manifest_bytes,
    );
    let text = key.sign(&manifest_bytes, &comment)?;
    let sig_path = format!("signatures/{}.minisig", key.key_id());
    let manifest_index = a.entry(MANIFEST_PATH).map_or(0, |e| e.index);
    let zerr = |e: zipio::ZipError| ArchiveError::Malformed {
        archive: origin.clone(),
        reason: e.to_string(),
    };
    let eopts = a.reader.entry_options(manifest_index, 6).map_err(zerr)?;
    let fresh = zipio::compress(&sig_path, text.as_bytes(), eopts).map_err(zerr)?;
    let mut slots: Vec<(String, Option<usize>)> = a
        .entries
        .iter()
        .filter(|e| e.path != sig_path)
        .map(|e| (e.path.clone(), Some(e.index)))
        .collect();
    let replaced = slots.len() != a.entries.len();
    slots.push((sig_path, None));
    slots.sort_by(|x, y| x.0.as_bytes().cmp(y.0.as_bytes()));
    let mut fresh = Some(fresh);
    let entries: Vec<(String, Source)> = slots
        .into_iter()
        .filter_map(|(p, idx)| match idx {
            Some(i) => Some((p, Source::Spooled(i))),
            None => fresh.take().map(|c| (p, Source::Fresh(c))),
        })
        .collect();
    crate::fsutil::write_atomic(path, |w| {
        zipio::write_sorted(&mut *w, a.reader.archive_mut(), entries)
            .map(|_| ())
            .map_err(|e| ArchiveError::Io {
                path: origin.clone(),
                error: std::io::Error::other(e.to_string()),
            })
    })?;
    Ok(SignReport {
        archive: path.to_path_buf(),
        key_id: key.key_id(),
        replaced,
    })
}
