//! `verify`: an archive's structure, manifest, signatures (against a trust policy made by
//! [`crate::trust::policy`]), every entry's digest and that no entry is unlisted.
//!
//! A file that is not a zip at all (a text file named `x.flowpack`, an export document) gets a
//! report whose `structure` check failed, saying what the file is and what to do instead.
//!
//! The archive may be an `oci://` reference: it is pulled into a temporary file first (media
//! types, the layer's size and digest checked), and the report names it pinned to the digest
//! its tag resolved to (`oci://HOST/REPO:TAG@sha256:<hex>`).

use std::path::PathBuf;

use flowpack_client::oci::Credentials;
use flowpack_core::archive::{
    ArchiveError, CheckStatus, Limits, TrustPolicy, VerifyReport, verify_archive,
};

use crate::error::{Categorize, Category, Remedy};
use crate::input::{InputError, expect_archive, open_archive_spec_within, rename_archive};

/// Errors of verify: only a file that cannot be read at all (everything else is in the report).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The file could not be read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The archive could not be read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

impl Categorize for VerifyError {
    fn category(&self) -> Category {
        match self {
            VerifyError::Input(e) => e.category(),
            VerifyError::Archive(e) => e.category(),
        }
    }

    fn remedy(&self) -> Option<Remedy> {
        match self {
            VerifyError::Input(e) => e.remedy(),
            VerifyError::Archive(e) => e.remedy(),
        }
    }
}

/// What to verify, against which keys.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// The archive: a path, or an `oci://HOST[:PORT]/REPO(:TAG|@sha256:HEX)` reference.
    pub archive: PathBuf,
    /// The trust policy (threshold 0: signatures are reported as not checked).
    pub policy: TrustPolicy,
    /// Limits for reading.
    pub limits: Limits,
    /// Speak plain HTTP to the registry of an `oci://` archive (never automatic).
    pub plain_http: bool,
    /// Registry credentials for an `oci://` archive, if any.
    pub credentials: Option<Credentials>,
    /// Overall time limit of the pull of an `oci://` archive (default 10 minutes; `None`:
    /// none).
    pub deadline: Option<std::time::Duration>,
}

impl VerifyOptions {
    /// Verifies `archive` against `policy` with the default limits.
    pub fn new(archive: PathBuf, policy: TrustPolicy) -> VerifyOptions {
        VerifyOptions {
            archive,
            policy,
            limits: Limits::default(),
            plain_http: false,
            credentials: None,
            deadline: Some(flowpack_client::oci::DEFAULT_DEADLINE),
        }
    }
}

/// Verifies the archive. `Err` only when it cannot be read; `report.ok` says whether it passed.
/// For an `oci://` archive, the report's `archive` is the reference pinned to its digest.
pub fn run(opts: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
    let source = open_archive_spec_within(
        &opts.archive.to_string_lossy(),
        opts.plain_http,
        opts.credentials.as_ref(),
        opts.deadline,
    )?;
    match expect_archive(&source.path) {
        Ok(()) => {}
        Err(e) if e.category() == Category::Rejected => return Ok(not_an_archive(opts, &e)),
        Err(e) => return Err(e.into()),
    }
    let mut report = verify_archive(&source.path, &opts.limits, &opts.policy)
        .map_err(|e| rename_archive(e, &source.path, &source.shown))?;
    let from = source.path.display().to_string();
    if from != source.shown {
        // Details name entries `ARCHIVE!entry`: the reference given, not the pulled file.
        for check in &mut report.checks {
            check.detail = check.detail.replace(&from, &source.shown);
        }
    }
    report.archive = source.shown.clone();
    Ok(report)
}

/// A report whose structure check failed with `why`.
fn not_an_archive(opts: &VerifyOptions, why: &InputError) -> VerifyReport {
    let shown = opts.archive.display().to_string();
    let mut report = VerifyReport::structure_failed(
        &shown,
        &ArchiveError::Malformed {
            archive: shown.clone(),
            reason: String::new(),
        },
    );
    if let Some(check) = report
        .checks
        .iter_mut()
        .find(|c| c.status == CheckStatus::Failed)
    {
        check.detail = why.to_string();
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_file_fails_the_structure_check_as_not_an_archive() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.flowpack");
        std::fs::write(&f, "just text\n").unwrap();
        let report = run(&VerifyOptions::new(f, TrustPolicy::default())).unwrap();
        assert!(!report.ok);
        let failed = report.first_failure().unwrap();
        assert_eq!(failed.name, "structure");
        assert!(
            failed.detail.contains("not a flowpack archive"),
            "{}",
            failed.detail
        );
    }
}
