//! The one way a trust policy is made from keys and a threshold, used by verify, unpack and
//! push alike.
//!
//! Rules:
//! - no keys and no threshold: signatures are not checked (integrity still is);
//! - keys and no threshold: one trusted signature is needed;
//! - a threshold of 0 is refused: it would make keys that nobody has to sign with;
//! - a threshold N needs at least N *distinct* trusted keys (the same key given twice counts
//!   once), with or without keys given — a threshold with no keys is refused, never silently
//!   turned into "nothing checked".

use std::path::PathBuf;

use flowpack_core::archive::TrustPolicy;
use flowpack_core::sign::{SignError, TrustedKey};

use crate::error::{Categorize, Category, plural};

/// Errors making a trust policy; all are usage or configuration errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// A threshold of 0.
    #[error(
        "threshold 0 is not allowed: at least 1 trusted signature must be required \
         (give no trusted keys to skip the signature check)"
    )]
    ZeroThreshold,
    /// Fewer distinct keys than the threshold.
    #[error(
        "a threshold of {threshold} needs at least {threshold} distinct trusted keys, {given} given"
    )]
    NotEnoughKeys {
        /// The threshold asked for.
        threshold: usize,
        /// Distinct keys given.
        given: usize,
    },
    /// A key file could not be loaded.
    #[error(transparent)]
    Key(#[from] SignError),
}

impl Categorize for TrustError {
    fn category(&self) -> Category {
        Category::CouldNotRun
    }
}

/// Where a policy's keys come from and how many must have signed.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TrustOptions {
    /// Public key files (minisign format).
    pub keys: Vec<PathBuf>,
    /// Distinct trusted keys that must have signed; `None`: 1 when keys are given, else 0.
    pub threshold: Option<usize>,
}

impl TrustOptions {
    /// Keys and an optional threshold.
    pub fn new(keys: Vec<PathBuf>, threshold: Option<usize>) -> TrustOptions {
        TrustOptions { keys, threshold }
    }
}

/// The policy for an archive going into (or coming out of) `env`: the environment's
/// `trusted_keys` and then `extra_keys`, `threshold` when given, else the environment's (see the
/// module docs for the rules). Push, recover and backup use it.
pub fn for_environment(
    env: &crate::env::Environment,
    extra_keys: &[PathBuf],
    threshold: Option<usize>,
) -> Result<TrustPolicy, TrustError> {
    let mut keys = env.trusted_keys.clone();
    keys.extend(extra_keys.iter().cloned());
    policy(&TrustOptions::new(keys, threshold.or(env.threshold)))
}

/// Loads the keys and checks the threshold (see the module docs for the rules).
pub fn policy(opts: &TrustOptions) -> Result<TrustPolicy, TrustError> {
    if opts.threshold == Some(0) {
        return Err(TrustError::ZeroThreshold);
    }
    let mut keys: Vec<TrustedKey> = Vec::new();
    for path in &opts.keys {
        let key = TrustedKey::load(path)?;
        if !keys.iter().any(|k| k.key_id() == key.key_id()) {
            keys.push(key);
        }
    }
    let threshold = opts
        .threshold
        .unwrap_or(if keys.is_empty() { 0 } else { 1 });
    if threshold > keys.len() {
        return Err(TrustError::NotEnoughKeys {
            threshold,
            given: keys.len(),
        });
    }
    Ok(TrustPolicy::new(keys, threshold))
}

/// How a policy is described in messages: `2 of 3 trusted keys`, or `no signature check`.
pub fn describe(policy: &TrustPolicy) -> String {
    if policy.threshold == 0 {
        "no signature check".to_string()
    } else {
        format!(
            "{} of {}",
            policy.threshold,
            plural(policy.keys.len(), "trusted key", "trusted keys")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(dir: &std::path::Path, name: &str) -> PathBuf {
        let r = flowpack_core::sign::keygen(&flowpack_core::sign::KeygenOptions::new(
            dir.join(name),
            None,
        ))
        .unwrap();
        r.public_key
    }

    #[test]
    fn thresholds_need_distinct_keys_and_zero_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = key(dir.path(), "a");
        let b = key(dir.path(), "b");
        let p = policy(&TrustOptions::new(vec![], None)).unwrap();
        assert_eq!((p.keys.len(), p.threshold), (0, 0));
        let p = policy(&TrustOptions::new(vec![a.clone(), b.clone()], None)).unwrap();
        assert_eq!((p.keys.len(), p.threshold), (2, 1));
        assert_eq!(describe(&p), "1 of 2 trusted keys");
        assert!(matches!(
            policy(&TrustOptions::new(vec![a.clone()], Some(0))),
            Err(TrustError::ZeroThreshold)
        ));
        assert!(matches!(
            policy(&TrustOptions::new(vec![], Some(0))),
            Err(TrustError::ZeroThreshold)
        ));
        // A threshold with no keys is refused, not "nothing checked".
        assert!(matches!(
            policy(&TrustOptions::new(vec![], Some(1))),
            Err(TrustError::NotEnoughKeys {
                threshold: 1,
                given: 0
            })
        ));
        // The same key twice is one key.
        let err = policy(&TrustOptions::new(vec![a.clone(), a.clone()], Some(2))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a threshold of 2 needs at least 2 distinct trusted keys, 1 given"
        );
        let p = policy(&TrustOptions::new(vec![a, b], Some(2))).unwrap();
        assert_eq!(p.threshold, 2);
    }
}
