//! Archives (`.flowpack`): pack, verify, read and unpack signed, reproducible zips. The format
//! is specified in [docs/archive-format.md](https://github.com/flowpack/flowpack/blob/main/docs/archive-format.md).
//!
//! - [`ArchiveWriter`] packs export documents streamed in one by one (compression and hashing on
//!   worker threads, compressed entries spooled to disk, entries written in path order).
//! - [`Archive::open`] reads an archive without trusting it; [`verify_archive`] runs every check in
//!   order and returns a [`VerifyReport`]; [`Archive::flows`] yields the verified flow documents;
//!   [`unpack`] extracts a verified archive atomically.
//! - [`sign_archive`] adds a signature without touching the other entries' bytes.
//! - [`FlowSettings`] is a flow's `flow.json` (manifest version 2): written with
//!   [`ArchiveWriter::add_flow_with_settings`], read back with [`Archive::flow_settings`].
//!
//! The `zip` crate is used only in `zipio`.

mod limits;
mod manifest;
mod read;
pub(crate) use read::plural;
mod settings;
mod write;
mod zipio;

pub use limits::Limits;
pub use manifest::{
    BackupRecord, FlowRecord, Input, InputKind, MANIFEST_FORMAT_VERSION, MANIFEST_READ_VERSIONS,
    MANIFEST_SCHEMA, Manifest, Package, PackageKind, RequiredDependency, RequiredScript,
    RequiredSystem, Requires, SettingsRecord, SourceInfo, manifest_from_slice,
};
pub use read::{
    Archive, Check, CheckStatus, FlowDocuments, SignArchiveOptions, SignReport, SignatureCheck,
    SignatureFailure, SignatureStatus, TrustPolicy, UnpackOptions, UnpackReport, VerifiedFlows,
    VerifyReport, sign_archive, unpack, verify_archive,
};
pub use settings::{
    Callback, FLOW_SETTINGS_FILE, FLOW_SETTINGS_FORMAT, FlowSettings, SettingsError, Webhook,
};
pub use write::{
    ArchiveWriter, FlowInput, FlowSender, MAX_SLUG, ManifestParams, PackReport, WriterOptions,
    slugify, strip_document_secrets,
};

/// How every message, report and document origin names entry `entry` of archive `archive`:
/// `ARCHIVE!entry`, e.g. `app.flowpack!flows/orders/export.json` (a JSON pointer into it follows
/// as `#/pointer`).
pub fn entry_name(archive: &str, entry: &str) -> String {
    format!("{archive}!{entry}")
}

/// The manifest's entry path.
pub(crate) const MANIFEST_PATH: &str = "flowpack.json";

/// Errors packing or reading an archive; each names the archive, entry or input at fault. An
/// entry is named `ARCHIVE!entry` (see [`entry_name`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
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
    #[error("{archive}!{entry}: {reason}")]
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
    #[error("{archive}!{entry}: {reason}")]
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
    /// A flow's `flow.json` is not a settings document this build reads.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] crate::sign::SignError),
    /// Input documents failed validation (every error finding, per input).
    #[error("{} failed validation", plural(.0.len(), "input document", "input documents"))]
    Invalid(Vec<(String, Vec<crate::validate::Finding>)>),
    /// Invalid pack parameters.
    #[error("{0}")]
    Params(String),
    /// An archive just written failed the writer's own check; it was not put in place.
    #[error("{archive}: the archive written does not read back ({reason}); nothing was written")]
    SelfCheck {
        /// The output the archive was meant for.
        archive: String,
        /// What the check found.
        reason: String,
    },
    /// A worker thread panicked.
    #[error("a packing worker thread failed")]
    Worker,
}

// Constructors of the option structs that `read` declares (they are `#[non_exhaustive]`: other
// crates start from these and set the public fields they need).

impl TrustPolicy {
    /// Trust `keys`, requiring `threshold` distinct ones of them to have signed (0 checks no
    /// signatures).
    pub fn new(keys: Vec<crate::sign::TrustedKey>, threshold: usize) -> TrustPolicy {
        TrustPolicy { keys, threshold }
    }
}

impl UnpackOptions {
    /// Unpack under `policy` with the default limits, refusing unchecked signatures.
    pub fn new(policy: TrustPolicy) -> UnpackOptions {
        UnpackOptions {
            policy,
            ..UnpackOptions::default()
        }
    }
}

impl SignArchiveOptions {
    /// Sign, reading the archive within `limits`.
    pub fn new(limits: Limits) -> SignArchiveOptions {
        SignArchiveOptions { limits }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::sign::TrustedKey;

    fn fixture(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(path)
    }

    /// An archive made by flowpack 0.1.0 (manifest version 1) still verifies against its key,
    /// reads into today's model, and yields its flows; it has no settings.
    #[test]
    fn a_version_1_archive_verifies_and_reads() {
        let key = TrustedKey::load(&fixture("keys/test.pub")).unwrap();
        let mut a =
            Archive::open(&fixture("legacy/manifest-v1.flowpack"), &Limits::default()).unwrap();
        let report = a.verify(&TrustPolicy {
            keys: vec![key],
            threshold: 1,
        });
        assert!(report.first_failure().is_none(), "{report:?}");
        assert!(report.signatures_passed());
        let m = a.manifest().unwrap();
        assert_eq!(m.format_version, 1);
        assert_eq!(m.package.name, "legacy-pack");
        let names: Vec<&str> = m.requires.systems.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["HubSpot", "NetSuite", "Shopify"]);
        assert!(m.requires.systems.iter().all(|s| s.protocol.is_none()));
        assert!(m.flows.iter().all(|f| f.settings.is_none()));
        for f in &m.flows {
            assert_eq!(a.flow_settings(f).unwrap(), None);
        }
        let flows: Vec<String> = a.flows().unwrap().map(|r| r.unwrap().0.name).collect();
        assert_eq!(
            flows,
            [
                "Shopify > HubSpot Customers",
                "Shopify > NetSuite Orders",
                "Stock sync"
            ]
        );
    }

    #[test]
    fn a_version_1_archive_unpacks() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let opts = UnpackOptions {
            policy: TrustPolicy {
                keys: vec![TrustedKey::load(&fixture("keys/test.pub")).unwrap()],
                threshold: 1,
            },
            ..UnpackOptions::default()
        };
        let report = unpack(&fixture("legacy/manifest-v1.flowpack"), &target, &opts).unwrap();
        assert_eq!(report.files.len(), 5, "{:?}", report.files);
        let stock = std::fs::read(target.join("flows/stock-sync/export.json")).unwrap();
        assert_eq!(stock.len(), 1468);
    }
}
