//! Archives (`.flowpack`, DESIGN §6): pack, verify, read and unpack signed, reproducible zips.
//!
//! - [`ArchiveWriter`] packs export documents streamed in one by one (compression and hashing on
//!   worker threads, compressed entries spooled to disk, entries written in path order).
//! - [`Archive::open`] reads an archive without trusting it; [`verify_archive`] runs every check in
//!   order and returns a [`VerifyReport`]; [`Archive::flows`] yields the verified flow documents;
//!   [`unpack`] extracts a verified archive atomically.
//! - [`sign_archive`] adds a signature without touching the other entries' bytes.
//!
//! The `zip` crate is used only in `zipio`.

mod limits;
mod manifest;
mod read;
mod write;
mod zipio;

pub use limits::Limits;
pub use manifest::{
    FlowRecord, Input, InputKind, MANIFEST_FORMAT_VERSION, MANIFEST_SCHEMA, Manifest, Package,
    PackageKind, Requires, SourceInfo,
};
pub use read::{
    Archive, Check, CheckStatus, FlowDocuments, SignArchiveOptions, SignReport, TrustPolicy,
    UnpackOptions, UnpackReport, VerifiedFlows, VerifyReport, sign_archive, unpack, verify_archive,
};
pub use write::{ArchiveWriter, FlowInput, ManifestParams, PackReport, WriterOptions, slugify};

/// The manifest's entry path.
pub const MANIFEST_PATH: &str = "flowpack.json";

/// Errors packing or reading an archive; each names the archive, entry or input at fault.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// An atomic write failed.
    #[error(transparent)]
    Write(#[from] crate::fsutil::WriteError),
    /// The file is not a readable zip (truncated, malformed, not a zip).
    #[error("{archive}: not a readable zip archive: {reason}")]
    Malformed {
        /// The archive.
        archive: String,
        /// What the zip reader said.
        reason: String,
    },
    /// An entry breaks a safety rule.
    #[error("{archive}: entry {entry:?}: {reason}")]
    Hostile {
        /// The archive.
        archive: String,
        /// The entry name (lossy for non-UTF-8 names).
        entry: String,
        /// The rule it breaks.
        reason: String,
    },
    /// The archive breaks a whole-archive limit.
    #[error("{archive}: {reason}")]
    Limit {
        /// The archive.
        archive: String,
        /// The limit broken.
        reason: String,
    },
    /// An input document could not be packed.
    #[error(transparent)]
    Document(#[from] crate::document::DocumentError),
    /// The manifest is missing or invalid.
    #[error("{archive}: flowpack.json: {reason}")]
    Manifest {
        /// The archive.
        archive: String,
        /// What is wrong.
        reason: String,
    },
    /// A flow entry does not match its manifest record.
    #[error("{archive}: entry {entry:?}: {reason}")]
    Digest {
        /// The archive.
        archive: String,
        /// The entry.
        entry: String,
        /// What differs.
        reason: String,
    },
    /// Verification failed (the report says which check).
    #[error("{archive}: verification failed: {summary}")]
    Verification {
        /// The archive.
        archive: String,
        /// The first failed check.
        summary: String,
        /// The full report.
        report: Box<VerifyReport>,
    },
    /// The unpack target exists and is not empty.
    #[error("{path}: the target directory exists and is not empty")]
    TargetNotEmpty {
        /// The target directory.
        path: String,
    },
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] crate::sign::SignError),
    /// Input documents failed validation (every error finding, per input).
    #[error("{} input document(s) failed validation", .0.len())]
    Invalid(Vec<(String, Vec<crate::validate::Finding>)>),
    /// Invalid pack parameters.
    #[error("{0}")]
    Params(String),
    /// A worker thread panicked.
    #[error("a packing worker thread failed")]
    Worker,
}
