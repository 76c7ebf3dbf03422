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
use flowpack_core::archive::ArchiveError;
use flowpack_core::fsutil::WriteError;
use flowpack_core::migrate::MigrateError;
use flowpack_core::overlay::OverlayError;
use flowpack_core::sign::SignError;
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

/// Errors that know their [`Category`].
pub trait Categorize: std::error::Error {
    /// Whether this error rejected the input or kept the action from running.
    fn category(&self) -> Category;
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
}

impl Categorize for SignError {
    /// Keys are the user's own files: every key problem is "could not run".
    fn category(&self) -> Category {
        Category::CouldNotRun
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
            | ArchiveError::Invalid(_) => Category::Rejected,
            ArchiveError::Document(e) => e.category(),
            ArchiveError::Sign(e) => e.category(),
            ArchiveError::Write(e) => e.category(),
            _ => Category::CouldNotRun,
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
    /// The platform refusing content (422, 413) rejects the input; authentication, permissions,
    /// missing objects, rate limits, server errors and the network keep the action from running.
    fn category(&self) -> Category {
        match self {
            ClientError::Validation { .. } | ClientError::TooLarge { .. } => Category::Rejected,
            _ => Category::CouldNotRun,
        }
    }
}

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
    fn plural_says_one_or_many() {
        assert_eq!(plural(1, "step", "steps"), "1 step");
        assert_eq!(plural(0, "step", "steps"), "0 steps");
        assert_eq!(plural(2, "entry", "entries"), "2 entries");
    }
}
