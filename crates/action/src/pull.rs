//! `pull`: an archive out of an OCI registry — media types and the layer's digest checked while
//! it streams into a temporary file, the archive verified against the trust policy, and only
//! then renamed into place, so nothing unverified is ever left at the output path.

use std::path::PathBuf;

use flowpack_client::oci::{self, Credentials, OciError, PullReport, Reference};
use flowpack_core::archive::{ArchiveError, Limits, TrustPolicy, VerifyReport, verify_archive};

use flowpack_core::fsutil::{WriteError, place, refuse_existing};

use crate::error::{Categorize, Category, Remedy};

/// How to pull.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PullOptions {
    /// What: `oci://HOST[:PORT]/REPO:TAG` or `…/REPO@sha256:HEX`.
    pub reference: String,
    /// Where to write the archive.
    pub output: PathBuf,
    /// Replace the output if it exists.
    pub force: bool,
    /// Speak plain HTTP to the registry (never automatic).
    pub plain_http: bool,
    /// Registry credentials, if any.
    pub credentials: Option<Credentials>,
    /// Overall time limit of the transfer (default 10 minutes; `None`: none).
    pub deadline: Option<std::time::Duration>,
    /// The keys that must have signed it; a threshold of 0 accepts an unsigned archive (its
    /// digests are still checked).
    pub policy: TrustPolicy,
}

impl PullOptions {
    /// Pull `reference` into `output`, verified against `policy`.
    pub fn new(
        reference: impl Into<String>,
        output: impl Into<PathBuf>,
        policy: TrustPolicy,
    ) -> PullOptions {
        PullOptions {
            reference: reference.into(),
            output: output.into(),
            force: false,
            plain_http: false,
            credentials: None,
            deadline: Some(oci::DEFAULT_DEADLINE),
            policy,
        }
    }
}

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PullError {
    /// The registry, the reference or the transfer.
    #[error(transparent)]
    Registry(#[from] OciError),
    /// The archive could not be checked at all.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The archive did not verify; nothing was written.
    #[error("{reference}: verification failed; nothing written to {output}")]
    Verification {
        /// The pinned reference.
        reference: String,
        /// The output path.
        output: String,
        /// The verification report.
        report: Box<VerifyReport>,
    },
    /// The output exists (and was not to be replaced) or could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl Categorize for PullError {
    fn category(&self) -> Category {
        match self {
            PullError::Registry(e) => e.category(),
            PullError::Archive(e) => e.category(),
            PullError::Verification { .. } => Category::Rejected,
            PullError::Write(e) => e.category(),
        }
    }

    fn remedy(&self) -> Option<Remedy> {
        match self {
            PullError::Registry(e) => e.remedy(),
            PullError::Archive(e) => e.remedy(),
            PullError::Verification { report, .. } => crate::error::signature_remedy(report),
            PullError::Write(e) => e.remedy(),
        }
    }
}

/// What a pull did: the transfer and the verification.
#[derive(Debug)]
#[non_exhaustive]
pub struct PullDone {
    /// Where the archive went, its digests and size.
    pub pulled: PullReport,
    /// The verification of what was written.
    pub verified: VerifyReport,
}

/// Pulls, verifies, then renames into place.
pub fn run(opts: &PullOptions) -> Result<PullDone, PullError> {
    let reference = Reference::parse(&opts.reference)?;
    refuse_existing(&opts.output, opts.force)?;
    let mut options = oci::FetchOptions::default();
    options.max_size = Limits::default().max_total_size;
    options.registry.plain_http = opts.plain_http;
    options.registry.credentials = opts.credentials.clone();
    options.registry.deadline = opts.deadline;
    options.force = opts.force;
    let pulled = oci::pull(&reference, &opts.output, &options)?;
    let mut verified = verify_archive(pulled.path(), &Limits::default(), &opts.policy)?;
    verified.archive = pulled.pinned();
    if !verified.ok {
        return Err(PullError::Verification {
            reference: pulled.pinned(),
            output: opts.output.display().to_string(),
            report: Box::new(verified),
        });
    }
    let (temp, pulled) = pulled.into_parts(&opts.output);
    place(temp, &opts.output, opts.force)?;
    Ok(PullDone { pulled, verified })
}
