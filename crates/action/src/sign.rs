//! `sign`: add a signature to an archive (over its `flowpack.json`); every other entry keeps its
//! bytes. The archive is checked first; a file that is not an archive is refused.

use std::path::PathBuf;

use flowpack_core::archive::{self, ArchiveError, Limits, SignArchiveOptions, SignReport};
use flowpack_core::sign::SigningKey;

use crate::error::{Categorize, Category, Remedy};
use crate::input::{InputError, expect_archive};

/// Errors of sign.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The file is not an archive (a document: pack it first), or cannot be read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The archive failed its checks or could not be rewritten.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

impl Categorize for SignError {
    fn category(&self) -> Category {
        match self {
            SignError::Input(e) => e.category(),
            SignError::Archive(e) => e.category(),
        }
    }

    fn remedy(&self) -> Option<Remedy> {
        match self {
            SignError::Input(e) => e.remedy(),
            SignError::Archive(e) => e.remedy(),
        }
    }
}

/// What to sign with which key.
#[derive(Clone)]
#[non_exhaustive]
pub struct SignOptions {
    /// The archive (rewritten atomically).
    pub archive: PathBuf,
    /// The secret key, already loaded (and decrypted).
    pub key: SigningKey,
    /// Limits for reading.
    pub limits: Limits,
}

impl SignOptions {
    /// Signs `archive` with `key`.
    pub fn new(archive: PathBuf, key: SigningKey) -> SignOptions {
        SignOptions {
            archive,
            key,
            limits: Limits::default(),
        }
    }
}

/// Signs the archive.
pub fn run(opts: &SignOptions) -> Result<SignReport, SignError> {
    expect_archive(&opts.archive)?;
    Ok(archive::sign_archive(
        &opts.archive,
        &opts.key,
        &SignArchiveOptions::new(opts.limits),
    )?)
}
