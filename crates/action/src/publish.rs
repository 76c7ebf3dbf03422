//! `publish`: an archive into an OCI registry, as an artifact whose one layer holds the
//! archive's exact bytes (the registry protocol lives in [`flowpack_client::oci`]; the archive's
//! manifest gives the tag and the annotations).

use std::path::PathBuf;

use flowpack_client::oci::{self, ArtifactInfo, OciError, Reference};
pub use flowpack_client::oci::{Credentials, PublishReport};
use flowpack_core::archive::{Archive, ArchiveError, Limits};
use sha2::{Digest, Sha256};

use crate::error::{Categorize, Category, Remedy};

/// How to publish.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PublishOptions {
    /// The archive: a file, or an `s3://BUCKET/KEY` object (downloaded to a private temporary
    /// file within the archive limits first).
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

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The registry, the reference or the transfer.
    #[error(transparent)]
    Registry(#[from] OciError),
    /// The archive's manifest could not be read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// An `s3://` archive could not be downloaded (settings, credentials, the store, the
    /// object's size or content).
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
}

impl Categorize for PublishError {
    fn category(&self) -> Category {
        match self {
            PublishError::Registry(e) => e.category(),
            PublishError::Archive(e) => e.category(),
            PublishError::Input(e) => e.category(),
        }
    }

    fn remedy(&self) -> Option<Remedy> {
        match self {
            PublishError::Registry(e) => e.remedy(),
            PublishError::Archive(e) => e.remedy(),
            PublishError::Input(e) => e.remedy(),
        }
    }
}

/// Publishes the archive under the reference's tag (without one, the package version; `+build`
/// metadata becomes `_build`, as tags allow no `+`); the report's `reference` is pinned to the
/// manifest digest.
///
/// The archive's manifest must parse: its name, version, creation time and description become
/// annotations, the SHA-256 of `flowpack.json` the `dev.flowpack.manifest.sha256` one. Its
/// signatures and entries are not verified here — `pull` verifies after download.
pub fn run(opts: &PublishOptions) -> Result<PublishReport, PublishError> {
    let reference = Reference::parse(&opts.reference)?;
    // A digest reference is refused before the archive is read, whatever it holds.
    reference.check_publishable()?;
    // An archive in object storage is downloaded first (the file published is what was
    // checked); a local path is read where it is.
    let source = match opts.archive.to_str() {
        Some(spec) if crate::storage::is_s3(spec) => {
            crate::input::open_archive_spec(spec, false, None)?
        }
        _ => crate::input::ArchiveSource::file(&opts.archive),
    };
    let info = artifact_info(
        &Archive::open(&source.path, &Limits::default())
            .map_err(|e| crate::input::rename_archive(e, &source.path, &source.shown))?,
    )?;
    let mut registry = oci::RegistryOptions::default();
    registry.plain_http = opts.plain_http;
    registry.credentials = opts.credentials.clone();
    Ok(oci::publish_file(
        &source.path,
        &reference,
        &info,
        &registry,
    )?)
}

/// The tag, layer title and annotations an archive is published with.
fn artifact_info(archive: &Archive) -> Result<ArtifactInfo, ArchiveError> {
    let manifest = archive.manifest()?;
    let manifest_sha256 = hex::encode(Sha256::digest(archive.manifest_bytes().unwrap_or_default()));
    let package = &manifest.package;
    let mut info = ArtifactInfo::new(
        package.version.replace('+', "_"),
        format!("{}-{}.flowpack", package.name, package.version),
    );
    for (key, value) in [
        (oci::ANNOTATION_VERSION, package.version.as_str()),
        (oci::ANNOTATION_CREATED, manifest.created_at.as_str()),
        (oci::ANNOTATION_DESCRIPTION, package.description.as_str()),
        (oci::ANNOTATION_MANIFEST_SHA256, manifest_sha256.as_str()),
    ] {
        info.annotations.insert(key.to_string(), value.to_string());
    }
    Ok(info)
}
