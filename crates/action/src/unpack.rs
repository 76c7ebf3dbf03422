//! `unpack`: verify an archive and extract it into a directory, atomically (entries go to a
//! temporary directory beside the target, renamed into place only when everything verified).

use std::path::PathBuf;

use flowpack_core::archive::{self, ArchiveError, Limits, TrustPolicy, UnpackReport};

use crate::error::{Categorize, Category, Remedy};
use crate::input::{InputError, expect_archive};

/// Errors of unpack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnpackError {
    /// The file is not an archive, or cannot be read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The archive failed a check ([`ArchiveError::Verification`] carries the report), or the
    /// target could not be written.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

impl Categorize for UnpackError {
    fn category(&self) -> Category {
        match self {
            UnpackError::Input(e) => e.category(),
            UnpackError::Archive(e) => e.category(),
        }
    }

    fn remedy(&self) -> Option<Remedy> {
        match self {
            UnpackError::Input(e) => e.remedy(),
            UnpackError::Archive(e) => e.remedy(),
        }
    }
}

/// What to unpack where.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UnpackOptions {
    /// The archive.
    pub archive: PathBuf,
    /// The target directory (must not exist, or be empty).
    pub dir: PathBuf,
    /// The trust policy; without keys the unpack is refused unless `skip_signatures`.
    pub policy: TrustPolicy,
    /// Unpack without checking signatures.
    pub skip_signatures: bool,
    /// Limits for reading.
    pub limits: Limits,
}

impl UnpackOptions {
    /// Unpacks `archive` into `dir`, checking signatures against `policy`.
    pub fn new(archive: PathBuf, dir: PathBuf, policy: TrustPolicy) -> UnpackOptions {
        UnpackOptions {
            archive,
            dir,
            policy,
            skip_signatures: false,
            limits: Limits::default(),
        }
    }
}

/// Verifies and unpacks.
/// An `s3://BUCKET/KEY` archive is downloaded to a private temporary file first.
pub fn run(opts: &UnpackOptions) -> Result<UnpackReport, UnpackError> {
    let spec = opts.archive.to_string_lossy();
    let source = if crate::storage::is_s3(&spec) {
        crate::input::open_archive_spec(&spec, false, None)?
    } else {
        crate::input::ArchiveSource::file(&opts.archive)
    };
    expect_archive(&source.path)?;
    let mut core = archive::UnpackOptions::new(opts.policy.clone());
    core.limits = opts.limits;
    core.skip_signatures = opts.skip_signatures;
    archive::unpack(&source.path, &opts.dir, &core)
        .map_err(|e| crate::input::rename_archive(e, &source.path, &source.shown).into())
}
