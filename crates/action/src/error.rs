//! The one classification of failures shared by every action.
//!
//! Every error an action returns answers [`Categorize::category`]: either the input was
//! *rejected* (an invalid, malformed or hostile document or archive, a failed verification, a
//! refused push) or the action *could not run* (bad usage, the user's own files unreadable,
//! configuration, authentication, the platform unreachable). A command-line front end maps the
//! two to its exit codes in one place; the `flowpack` binary uses 1 and 2.
//!
//! The errors of the libraries underneath (core, client, the embedded sandbox) are classified
//! here too, so an action error that wraps one simply delegates.

use flowpack_client::ClientError;
use flowpack_core::DocumentError;
use flowpack_core::archive::{ArchiveError, SignatureFailure, VerifyReport};
use flowpack_core::fsutil::WriteError;
use flowpack_core::migrate::MigrateError;
use flowpack_core::overlay::OverlayError;
use flowpack_core::sign::SignError;
#[cfg(feature = "local")]
use flowpack_sandbox::StoreError;

/// What kind of failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Category {
    /// The input was rejected or a check failed: invalid, malformed or hostile input, failed
    /// verification, a refused push.
    Rejected,
    /// The action could not run: usage, unreadable files of the user's own, configuration,
    /// authentication, network.
    CouldNotRun,
}

/// What a caller could supply or allow to get past an error, in the library's own terms.
///
/// The libraries name no front end's flags or settings in their messages; a front end maps each
/// remedy to its own spelling (the `flowpack` binary prints it as a `hint:` line naming the flag).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Remedy {
    /// A trusted public key, or explicitly allowing archives whose signatures are not checked.
    TrustedKey,
    /// The password of an encrypted secret key.
    KeyPassword,
    /// A conflict policy for flows that exist in the target with different content (skip,
    /// duplicate or replace).
    ConflictPolicy,
    /// An environment: a name from the configuration (or `local`), or a base URL.
    Environment,
    /// Permission to replace an existing output file.
    Overwrite,
    /// A previous release only applies to marketplace packages: ask for that kind.
    MarketplaceKind,
    /// A number of backups to keep of at least 1 (or none, to keep all).
    KeepAtLeastOne,
    /// Leave webhooks out, or supply their HMAC secret keys in the overlay.
    SkipWebhooks,
    /// An export document was given where an archive is expected: pack it first.
    PackDocument {
        /// The document.
        path: String,
        /// A file name for the archive.
        suggested: String,
    },
    /// An archive was given where an export document is expected: unpack it first.
    UnpackArchive {
        /// The archive.
        path: String,
    },
    /// An API key belongs in the token, not in the base URL.
    TokenNotUrl,
    /// An interrupted run of the environment must be recovered first (undone, or finished with
    /// the archive it pushed).
    Recover {
        /// The environment's name.
        env: String,
    },
    /// A lock left by a run on another host is removed once that run is known to be over.
    Unlock {
        /// The environment's name.
        env: String,
    },
    /// There is no configuration file: make one.
    CreateConfig,
    /// The archive is not signed: sign it with a key that is trusted.
    SignArchive,
    /// Signed only by keys that are not trusted: trust one of them (if it is the caller's), or
    /// sign with a trusted key.
    TrustSigner {
        /// The untrusted signing keys' ids.
        key_ids: Vec<String>,
    },
    /// A signature does not verify: the archive changed after signing or the signature is
    /// damaged; get the archive again or sign it again.
    InvalidSignature {
        /// The key id of the signature.
        key_id: String,
    },
    /// Fewer trusted signatures than the threshold: sign with more trusted keys, or lower the
    /// threshold.
    MoreSignatures {
        /// How many more are needed.
        short: usize,
    },
    /// The platform speaks plain HTTP: its URL should say `http://`.
    HttpUrl,
    /// The registry speaks plain HTTP: allow plain HTTP for it.
    PlainHttp,
}

/// What gets past a verification's failed signatures check (`None` when it passed, was not
/// run, or failed for a reason the signatures themselves do not give).
pub fn signature_remedy(report: &VerifyReport) -> Option<Remedy> {
    report.signature_failure.as_ref().map(failure_remedy)
}

/// What gets past a signature failure.
pub fn failure_remedy(failure: &SignatureFailure) -> Remedy {
    match failure {
        SignatureFailure::Unsigned => Remedy::SignArchive,
        SignatureFailure::Untrusted { key_ids } => Remedy::TrustSigner {
            key_ids: key_ids.clone(),
        },
        SignatureFailure::Invalid { key_id } => Remedy::InvalidSignature {
            key_id: key_id.clone(),
        },
        SignatureFailure::Short { have, need } => Remedy::MoreSignatures {
            short: need.saturating_sub(*have),
        },
        // A cause this build does not know: sign with a trusted key.
        _ => Remedy::SignArchive,
    }
}

/// Errors that know their [`Category`].
pub trait Categorize: std::error::Error {
    /// Whether this error rejected the input or kept the action from running.
    fn category(&self) -> Category;

    /// What the caller could supply or allow to get past this error, if anything.
    fn remedy(&self) -> Option<Remedy> {
        None
    }
}

impl Categorize for DocumentError {
    fn category(&self) -> Category {
        match self {
            DocumentError::Read { .. } => Category::CouldNotRun,
            _ => Category::Rejected,
        }
    }
}

impl Categorize for WriteError {
    fn category(&self) -> Category {
        Category::CouldNotRun
    }

    fn remedy(&self) -> Option<Remedy> {
        self.exists().then_some(Remedy::Overwrite)
    }
}

impl Categorize for SignError {
    /// Keys are the user's own files: every key problem is "could not run".
    fn category(&self) -> Category {
        Category::CouldNotRun
    }

    fn remedy(&self) -> Option<Remedy> {
        matches!(self, SignError::NeedsPassword { .. }).then_some(Remedy::KeyPassword)
    }
}

impl Categorize for ArchiveError {
    fn category(&self) -> Category {
        match self {
            ArchiveError::Malformed { .. }
            | ArchiveError::Hostile { .. }
            | ArchiveError::Limit { .. }
            | ArchiveError::Manifest { .. }
            | ArchiveError::Digest { .. }
            | ArchiveError::Verification { .. }
            | ArchiveError::SelfCheck { .. }
            | ArchiveError::Invalid(_) => Category::Rejected,
            ArchiveError::Document(e) => e.category(),
            ArchiveError::Sign(e) => e.category(),
            ArchiveError::Write(e) => e.category(),
            _ => Category::CouldNotRun,
        }
    }

    /// A verification that failed no check but checked no signature wants a trusted key; one
    /// whose signatures failed wants what fixes their cause.
    fn remedy(&self) -> Option<Remedy> {
        match self {
            ArchiveError::Verification { report, .. }
                if report.first_failure().is_none() && !report.signatures_passed() =>
            {
                Some(Remedy::TrustedKey)
            }
            ArchiveError::Verification { report, .. } => signature_remedy(report),
            ArchiveError::Sign(e) => e.remedy(),
            ArchiveError::Write(e) => e.remedy(),
            _ => None,
        }
    }
}

impl Categorize for MigrateError {
    fn category(&self) -> Category {
        match self {
            MigrateError::UnknownTarget { .. } => Category::CouldNotRun,
            _ => Category::Rejected,
        }
    }
}

impl Categorize for OverlayError {
    /// An overlay is the user's configuration; only required inputs it does not supply reject
    /// the archive being pushed.
    fn category(&self) -> Category {
        match self {
            OverlayError::MissingInputs { .. } => Category::Rejected,
            _ => Category::CouldNotRun,
        }
    }
}

impl Categorize for ClientError {
    /// The platform refusing content (422, 413) rejects the input, and so does a response past
    /// a bound (a body longer than a document may be, paging that does not add up); authentication, permissions,
    /// missing objects, rate limits, server errors and the network keep the action from running.
    fn category(&self) -> Category {
        match self {
            ClientError::Validation { .. }
            | ClientError::TooLarge { .. }
            | ClientError::ResponseTooLarge { .. }
            | ClientError::Paging { .. } => Category::Rejected,
            _ => Category::CouldNotRun,
        }
    }

    fn remedy(&self) -> Option<Remedy> {
        match self {
            ClientError::UrlCredentials { .. } => Some(Remedy::TokenNotUrl),
            ClientError::NotTls { .. } => Some(Remedy::HttpUrl),
            _ => None,
        }
    }
}

#[cfg(feature = "local")]
impl Categorize for StoreError {
    fn category(&self) -> Category {
        Category::CouldNotRun
    }
}

/// `n` followed by `one` or `many`: `plural(1, "flow", "flows")` is `1 flow`.
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_archives_are_rejected_unreadable_ones_could_not_run() {
        let hostile = ArchiveError::Hostile {
            archive: "a.flowpack".into(),
            entry: "../x".into(),
            reason: "the path contains '..'".into(),
        };
        assert_eq!(hostile.category(), Category::Rejected);
        let io = ArchiveError::Io {
            path: "a.flowpack".into(),
            error: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(io.category(), Category::CouldNotRun);
        let auth = ClientError::Unauthenticated {
            request: "GET /api/v1/flows".into(),
        };
        assert_eq!(auth.category(), Category::CouldNotRun);
    }

    #[test]
    fn remedies_say_what_is_missing_through_wrappers() {
        let password = SignError::NeedsPassword {
            path: "k.key".into(),
        };
        assert_eq!(password.remedy(), Some(Remedy::KeyPassword));
        assert_eq!(
            ArchiveError::Sign(password).remedy(),
            Some(Remedy::KeyPassword)
        );
        let url = ClientError::UrlCredentials {
            url: "https://core.example.com/".into(),
        };
        assert_eq!(url.remedy(), Some(Remedy::TokenNotUrl));
        let io = ArchiveError::Io {
            path: "a.flowpack".into(),
            error: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(io.remedy(), None);
        assert_eq!(
            crate::backup::BackupError::KeepZero.remedy(),
            Some(Remedy::KeepAtLeastOne)
        );
        assert_eq!(
            crate::env::EnvError::NoEnvironment.remedy(),
            Some(Remedy::Environment)
        );
    }

    #[test]
    fn each_signature_failure_has_its_own_remedy() {
        assert_eq!(
            failure_remedy(&SignatureFailure::Unsigned),
            Remedy::SignArchive
        );
        assert_eq!(
            failure_remedy(&SignatureFailure::Untrusted {
                key_ids: vec!["AB".into()]
            }),
            Remedy::TrustSigner {
                key_ids: vec!["AB".into()]
            }
        );
        assert_eq!(
            failure_remedy(&SignatureFailure::Invalid {
                key_id: "AB".into()
            }),
            Remedy::InvalidSignature {
                key_id: "AB".into()
            }
        );
        assert_eq!(
            failure_remedy(&SignatureFailure::Short { have: 1, need: 3 }),
            Remedy::MoreSignatures { short: 2 }
        );
    }

    #[test]
    fn plural_says_one_or_many() {
        assert_eq!(plural(1, "step", "steps"), "1 step");
        assert_eq!(plural(0, "step", "steps"), "0 steps");
        assert_eq!(plural(2, "entry", "entries"), "2 entries");
    }
}
