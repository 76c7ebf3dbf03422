//! `keygen`: a minisign key pair, `PREFIX.key` (secret, mode 0600) and `PREFIX.pub`, both
//! created exclusively (an existing file is never overwritten).

use std::path::PathBuf;

use flowpack_core::sign::{self, KeygenReport, SignError};

/// Errors of keygen: the key library's own (an existing file, a failed write); all "could not
/// run".
pub type KeygenError = SignError;

/// Where to write the pair and how to protect the secret key.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeygenOptions {
    /// Path prefix of the two files.
    pub prefix: PathBuf,
    /// The secret key's password; `None` writes it unencrypted.
    pub password: Option<String>,
}

impl KeygenOptions {
    /// A pair at `prefix`, the secret key encrypted with `password` when given.
    pub fn new(prefix: PathBuf, password: Option<String>) -> KeygenOptions {
        KeygenOptions { prefix, password }
    }
}

/// Makes the key pair.
pub fn run(opts: &KeygenOptions) -> Result<KeygenReport, KeygenError> {
    sign::keygen(&sign::KeygenOptions::new(
        opts.prefix.clone(),
        opts.password.clone(),
    ))
}
