//! `pack`: export documents (files, or directories of them) into one reproducible archive.
//!
//! Inputs are files or directories; a directory contributes its `*.json` files, recursively, in
//! sorted path order, so the same tree always packs the same way. A file given by name that is
//! an archive is refused (unpack it first). Every document is validated (unless the options turn
//! it off); any error finding refuses the whole pack, and nothing is written.
//!
//! A marketplace package (`kind` [`PackageKind::Marketplace`]) installs what runs, not a flow's
//! history: every document is rewritten to its flow's deployed version
//! ([`marketplace::deployed_only`], `import_summary` recomputed) before it is validated and
//! packed, and a flow without a deployed version refuses the pack naming the flow and the file.
//! The manifest's `requires` is computed by the writer from the packed (rewritten) documents
//! with [`marketplace::requires`], the one definition for every kind.
//!
//! With a previous release ([`PackOptions::previous`], a file or an `oci://` reference), the new
//! version number is checked against it ([`marketplace::check_bump`]): the previous archive is
//! verified (structure and digests; signatures are not required), both sides' flows are
//! compared by content digest (so a fresh export of an unchanged flow is no change), and a
//! version that understates the change is refused naming what forced the bump. The archive is
//! written to a temporary file beside the output and renamed into place only when the version
//! is accepted, so a refused version leaves nothing behind.

use std::path::{Path, PathBuf};

use flowpack_client::oci::Credentials;
use flowpack_core::Document;
use flowpack_core::archive::{
    Archive, ArchiveError, ArchiveWriter, FlowInput, Limits, ManifestParams, PackReport,
    PackageKind, TrustPolicy, VerifyReport, WriterOptions, verify_archive,
};
use flowpack_core::document::to_bytes_like;
use flowpack_core::marketplace::{self, BumpReport, MarketplaceError, PackageFacts};
use flowpack_core::sign::SigningKey;

use crate::error::{Categorize, Category, Remedy};
use crate::input::{
    InputError, expect_archive, expect_document, json_files, open_archive_spec, rename_archive,
};

/// Errors packing; each names the input or archive at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// Object storage failed (an `s3://` output: settings, credentials, the store, an object
    /// that exists).
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// An input could not be read or listed.
    #[error("{path}: cannot read: {cause}")]
    Read {
        /// The file or directory.
        path: String,
        /// The I/O error.
        #[source]
        cause: std::io::Error,
    },
    /// The inputs hold no `*.json` document.
    #[error("no *.json documents found in the inputs")]
    NoDocuments,
    /// An input is an archive, not a document.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Packing failed: invalid documents ([`ArchiveError::Invalid`] lists every finding), or
    /// the archive could not be written.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A document cannot go into a marketplace package (no deployed version, several).
    #[error(transparent)]
    Marketplace(Box<MarketplaceError>),
    /// An unpacked archive directory among other inputs ([`crate::repack`] packs one alone).
    #[error(
        "{path}: an unpacked archive directory (it holds flowpack.json) packs back only on its own, not with other inputs"
    )]
    ArchiveDirectory {
        /// The directory.
        path: String,
    },
    /// `previous` was given for a package that is not a marketplace package.
    #[error("a previous release applies to marketplace packages only")]
    PreviousNeedsMarketplace,
    /// The previous release does not verify (structure, manifest or digests).
    #[error("{previous}: the previous package does not verify: {summary}")]
    PreviousInvalid {
        /// The previous release (path, or reference pinned to its digest).
        previous: String,
        /// The first failed check.
        summary: String,
        /// The whole verification report.
        report: Box<VerifyReport>,
    },
    /// The version number understates the change from the previous release; nothing written.
    #[error("{error} (previous package {previous}); nothing written")]
    Bump {
        /// The previous release (path, or reference pinned to its digest).
        previous: String,
        /// What forced the bump ([`MarketplaceError::BumpTooSmall`] and its kin).
        #[source]
        error: Box<MarketplaceError>,
    },
}

impl From<MarketplaceError> for PackError {
    fn from(e: MarketplaceError) -> PackError {
        PackError::Marketplace(Box::new(e))
    }
}

impl Categorize for MarketplaceError {
    /// Every marketplace refusal is about the documents or the version given: rejected; only an
    /// unreadable document keeps the action from running.
    fn category(&self) -> Category {
        match self {
            MarketplaceError::Document(e) => e.category(),
            _ => Category::Rejected,
        }
    }
}

impl Categorize for PackError {
    fn category(&self) -> Category {
        match self {
            PackError::Read { .. }
            | PackError::NoDocuments
            | PackError::ArchiveDirectory { .. }
            | PackError::PreviousNeedsMarketplace => Category::CouldNotRun,
            PackError::Input(e) => e.category(),
            PackError::Storage(e) => e.category(),
            PackError::Archive(e) => e.category(),
            PackError::Marketplace(e) => e.category(),
            PackError::PreviousInvalid { .. } | PackError::Bump { .. } => Category::Rejected,
        }
    }

    fn remedy(&self) -> Option<Remedy> {
        match self {
            PackError::PreviousNeedsMarketplace => Some(Remedy::MarketplaceKind),
            PackError::Input(e) => e.remedy(),
            PackError::Archive(e) => e.remedy(),
            _ => None,
        }
    }
}

/// What to pack into what.
#[derive(Clone)]
#[non_exhaustive]
pub struct PackOptions {
    /// Export documents, or directories of them.
    pub inputs: Vec<PathBuf>,
    /// The archive to write (atomically).
    pub output: PathBuf,
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: semver::Version,
    /// Package kind.
    pub kind: PackageKind,
    /// Package description.
    pub description: String,
    /// The archive's `created_at` (whole seconds are recorded).
    pub created_at: time::OffsetDateTime,
    /// Keys to sign with.
    pub signers: Vec<SigningKey>,
    /// Keep secret values in the documents (they are still listed as inputs).
    pub allow_secrets: bool,
    /// The manifest's `generator` (e.g. `flowpack 0.1.0`).
    pub generator: String,
    /// The previous release of a marketplace package (a file or an `oci://` reference): the
    /// version number must be a large enough bump over it for what changed.
    pub previous: Option<String>,
    /// Speak plain HTTP to the registry of an `oci://` previous release (never automatic).
    pub plain_http: bool,
    /// Registry credentials for an `oci://` previous release, if any.
    pub credentials: Option<Credentials>,
    /// Replace an existing output (atomically; a symlink is replaced, not written through).
    /// Without it an existing output is refused before any work.
    pub force: bool,
}

impl PackOptions {
    /// Packs `inputs` into `output` as a backup `name`@`version` made at `created_at`, unsigned,
    /// secrets stripped.
    pub fn new(
        inputs: Vec<PathBuf>,
        output: PathBuf,
        name: String,
        version: semver::Version,
        created_at: time::OffsetDateTime,
    ) -> PackOptions {
        PackOptions {
            inputs,
            output,
            name,
            version,
            kind: PackageKind::Backup,
            description: String::new(),
            created_at,
            signers: Vec::new(),
            allow_secrets: false,
            generator: format!("flowpack {}", env!("CARGO_PKG_VERSION")),
            previous: None,
            plain_http: false,
            credentials: None,
            force: false,
        }
    }
}

/// What [`run_checked`] did: the archive, and the version check against the previous release.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PackDone {
    /// The archive's path, manifest, digests and signatures.
    pub report: PackReport,
    /// The accepted bump, when a previous release was given.
    pub bump: Option<BumpReport>,
    /// The previous release as checked: the path, or the reference pinned to its digest.
    pub previous: Option<String>,
}

/// Packs the inputs; the report is the archive's (path, manifest, digests, signatures).
pub fn run(opts: &PackOptions) -> Result<PackReport, PackError> {
    run_checked(opts).map(|done| done.report)
}

/// Packs the inputs, and reports the version check against a previous release too.
pub fn run_checked(opts: &PackOptions) -> Result<PackDone, PackError> {
    if let Some(spec) = opts.output.to_str().filter(|o| crate::storage::is_s3(o)) {
        return run_to_s3(opts, spec);
    }
    run_local(opts)
}

/// A pack to `s3://BUCKET/KEY`: refused before any work when the object exists (unless
/// forced); written and verified (integrity) in a private local temporary directory, then
/// uploaded whole, never replacing an object written meanwhile unless forced.
fn run_to_s3(opts: &PackOptions, spec: &str) -> Result<PackDone, PackError> {
    let upload = crate::storage::Upload::prepare(spec, opts.force)?;
    let local = upload.local.clone();
    let mut local_opts = opts.clone();
    local_opts.output = local.clone();
    local_opts.force = false;
    let mut done = run_local(&local_opts)?;
    upload.verify(&local)?;
    upload.finish(opts.force)?;
    done.report.path = PathBuf::from(spec);
    Ok(done)
}

fn run_local(opts: &PackOptions) -> Result<PackDone, PackError> {
    let marketplace = opts.kind == PackageKind::Marketplace;
    if opts.previous.is_some() && !marketplace {
        return Err(PackError::PreviousNeedsMarketplace);
    }
    flowpack_core::fsutil::refuse_existing(&opts.output, opts.force).map_err(ArchiveError::from)?;
    let mut files = Vec::new();
    for input in &opts.inputs {
        collect(input, true, &mut files)?;
    }
    if files.is_empty() {
        return Err(PackError::NoDocuments);
    }
    // The previous release first: a bad reference fails before any work.
    let previous = match &opts.previous {
        Some(spec) => {
            let source = open_archive_spec(spec, opts.plain_http, opts.credentials.as_ref())?;
            let facts = release_facts(&source.path, &source.shown)?;
            Some((source.shown.clone(), facts))
        }
        None => None,
    };
    // With a previous release, write beside the output and rename only once the version is
    // accepted.
    let temp = match previous {
        Some(_) => {
            let dir = match opts.output.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            Some(
                flowpack_core::fsutil::temp_file_in(dir, 0o644).map_err(|cause| {
                    PackError::Read {
                        path: dir.display().to_string(),
                        cause,
                    }
                })?,
            )
        }
        None => None,
    };
    let target = temp.as_ref().map_or(opts.output.as_path(), |t| t.path());
    let mut writer_opts = WriterOptions::new(opts.created_at);
    writer_opts.allow_secrets = opts.allow_secrets;
    // The temporary file of a version check is ours to replace.
    writer_opts.replace = opts.force || temp.is_some();
    let mut writer = ArchiveWriter::create(target, writer_opts)?;
    // One document at a time: read (and, for a marketplace package, rewritten) here, handed to
    // the writer, whose bounded queue makes this wait while its workers are busy. Memory holds
    // the few documents in flight, whatever the number of inputs.
    for file in &files {
        writer.add_flow(read_input(file, marketplace)?)?;
    }
    let mut params = ManifestParams::new(&opts.name, opts.version.clone(), opts.kind);
    params.description = opts.description.clone();
    params.generator = opts.generator.clone();
    let mut report = writer.finish(params, &opts.signers)?;
    let (Some(temp), Some((shown, before))) = (temp, previous) else {
        return Ok(PackDone {
            report,
            bump: None,
            previous: None,
        });
    };
    let after = release_facts(temp.path(), &opts.output.display().to_string())?;
    let bump = marketplace::check_bump(&before, &after).map_err(|error| PackError::Bump {
        previous: shown.clone(),
        error: Box::new(error),
    })?;
    flowpack_core::fsutil::place(temp.into_temp_path(), &opts.output, opts.force)
        .map_err(ArchiveError::from)?;
    report.path = opts.output.clone();
    Ok(PackDone {
        report,
        bump: Some(bump),
        previous: Some(shown),
    })
}

/// One input file as the writer takes it: read within the per-document bound and, for a
/// marketplace package, rewritten to its flow's deployed version.
fn read_input(file: &Path, marketplace: bool) -> Result<FlowInput, PackError> {
    let origin = file.display().to_string();
    let mut bytes = Vec::new();
    flowpack_core::document::read_document_file(
        file,
        &origin,
        &flowpack_core::document::DocumentBound::default(),
        &mut bytes,
    )
    .map_err(InputError::from)?;
    let bytes = if marketplace {
        let doc = Document::from_slice(&bytes, &origin).map_err(InputError::from)?;
        to_bytes_like(marketplace::deployed_only(&doc, &origin)?.value(), &bytes)
    } else {
        bytes
    };
    Ok(FlowInput {
        bytes,
        origin,
        source_id: String::new(),
        name: None,
    })
}

/// What the semver rule compares of a release archive at `path` (named `shown`): verified for
/// structure and digests (signatures are not required), then its version, inputs and each
/// flow's content digest.
fn release_facts(path: &Path, shown: &str) -> Result<PackageFacts, PackError> {
    expect_archive(path)?;
    let named = |e: ArchiveError| rename_archive(e, path, shown);
    let report =
        verify_archive(path, &Limits::default(), &TrustPolicy::default()).map_err(named)?;
    if !report.ok {
        let summary = report
            .first_failure()
            .map(|c| format!("{} check failed: {}", c.name, c.detail))
            .unwrap_or_default();
        return Err(PackError::PreviousInvalid {
            previous: shown.to_string(),
            summary,
            report: Box::new(report),
        });
    }
    let mut archive = Archive::open(path, &Limits::default()).map_err(named)?;
    let manifest = archive.manifest().map_err(named)?;
    // The flows one at a time: each document is dropped once its digest is taken.
    let mut facts = PackageFacts::from_manifest_with_documents(&manifest, &[])?;
    for flow in archive.flows().map_err(named)? {
        let (record, doc) = flow.map_err(named)?;
        facts.set_content_digest(&record, &doc)?;
    }
    Ok(facts)
}

/// Adds `path` (a file given by name, or a directory's `*.json` files, recursively and sorted).
fn collect(path: &Path, named: bool, out: &mut Vec<PathBuf>) -> Result<(), PackError> {
    let read_err = |cause| PackError::Read {
        path: path.display().to_string(),
        cause,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.is_dir() {
        if crate::repack::is_unpacked_archive(path) {
            return Err(PackError::ArchiveDirectory {
                path: path.display().to_string(),
            });
        }
        out.extend(json_files(path, &[])?);
    } else {
        if named {
            expect_document(path)?;
        }
        out.push(path.to_path_buf());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_packed_in_sorted_order_and_archives_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("in/sub")).unwrap();
        for rel in ["in/b.json", "in/a.json", "in/sub/c.json", "in/notes.txt"] {
            std::fs::write(d.join(rel), "{}").unwrap();
        }
        let mut files = Vec::new();
        collect(&d.join("in"), true, &mut files).unwrap();
        let rel: Vec<_> = files.iter().map(|f| f.strip_prefix(d).unwrap()).collect();
        assert_eq!(
            rel,
            [
                Path::new("in/a.json"),
                Path::new("in/b.json"),
                Path::new("in/sub/c.json")
            ]
        );
        std::fs::write(d.join("x.flowpack"), b"PK\x03\x04rest").unwrap();
        let err = collect(&d.join("x.flowpack"), true, &mut files).unwrap_err();
        assert_eq!(err.category(), Category::Rejected);
        assert!(err.to_string().contains("unpack it first"), "{err}");
    }
}
