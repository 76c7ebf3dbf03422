//! `verify`: an archive's structure, manifest, signatures (against a trust policy made by
//! [`crate::trust::policy`]), every entry's digest and that no entry is unlisted.
//!
//! A file that is not a zip at all (a text file named `x.flowpack`, an export document) gets a
//! report whose `structure` check failed, saying what the file is and what to do instead.

use std::path::PathBuf;

use flowpack_core::archive::{
    ArchiveError, CheckStatus, Limits, TrustPolicy, VerifyReport, verify_archive,
};

use crate::error::{Categorize, Category};
use crate::input::{InputError, expect_archive};

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
}

/// What to verify, against which keys.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// The archive.
    pub archive: PathBuf,
    /// The trust policy (threshold 0: signatures are reported as not checked).
    pub policy: TrustPolicy,
    /// Limits for reading.
    pub limits: Limits,
}

impl VerifyOptions {
    /// Verifies `archive` against `policy` with the default limits.
    pub fn new(archive: PathBuf, policy: TrustPolicy) -> VerifyOptions {
        VerifyOptions {
            archive,
            policy,
            limits: Limits::default(),
        }
    }
}

/// Verifies the archive. `Err` only when it cannot be read; `report.ok` says whether it passed.
pub fn run(opts: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
    match expect_archive(&opts.archive) {
        Ok(()) => {}
        Err(e) if e.category() == Category::Rejected => return Ok(not_an_archive(opts, &e)),
        Err(e) => return Err(e.into()),
    }
    Ok(verify_archive(&opts.archive, &opts.limits, &opts.policy)?)
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
