//! `publish`: an archive into an OCI registry, as an artifact whose one layer holds the
//! archive's exact bytes (the registry protocol lives in [`flowpack_client::oci`]).

use std::path::PathBuf;

pub use flowpack_client::oci::Credentials;
use flowpack_client::oci::{self, OciError, PublishReport, Reference};

use crate::error::{Categorize, Category, Remedy};

/// How to publish.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PublishOptions {
    /// The archive.
    pub archive: PathBuf,
    /// Where to: `oci://HOST[:PORT]/REPO[:TAG]` (without a tag, the package version).
    pub reference: String,
    /// Speak plain HTTP to the registry (never automatic).
    pub plain_http: bool,
    /// Registry credentials (basic auth or the token flow), if any.
    pub credentials: Option<Credentials>,
}

impl PublishOptions {
    /// Publish `archive` to `reference` over HTTPS, without credentials.
    pub fn new(archive: impl Into<PathBuf>, reference: impl Into<String>) -> PublishOptions {
        PublishOptions {
            archive: archive.into(),
            reference: reference.into(),
            plain_http: false,
            credentials: None,
        }
    }
}

impl Categorize for OciError {
    /// Not found, a foreign artifact, content not matching its digest, a bad archive: the input
    /// is rejected; the network, authentication and usage: could not run.
    fn category(&self) -> Category {
        if self.rejects_input() {
            Category::Rejected
        } else {
            Category::CouldNotRun
        }
    }

    fn remedy(&self) -> Option<Remedy> {
        match self {
            OciError::Exists { .. } => Some(Remedy::Overwrite),
            OciError::NotTls { .. } => Some(Remedy::PlainHttp),
            _ => None,
        }
    }
}

/// Publishes the archive; the report's `reference` is pinned to the manifest digest.
pub fn run(opts: &PublishOptions) -> Result<PublishReport, OciError> {
    let reference = Reference::parse(&opts.reference)?;
    let mut options = oci::PublishOptions::default();
    options.registry.plain_http = opts.plain_http;
    options.registry.credentials = opts.credentials.clone();
    oci::publish(&opts.archive, &reference, &options)
}
