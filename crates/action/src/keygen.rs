//! `keygen`: a minisign key pair, `PREFIX.key` (secret, mode 0600) and `PREFIX.pub`, both
//! created exclusively (an existing file is never overwritten).

use flowpack_core::sign::{self, SignError};
pub use flowpack_core::sign::{KeygenOptions, KeygenReport};

/// Errors of keygen: the key library's own (an existing file, a failed write); all "could not
/// run".
pub type KeygenError = SignError;

/// Makes the key pair.
pub fn run(opts: &KeygenOptions) -> Result<KeygenReport, KeygenError> {
    sign::keygen(opts)
}
