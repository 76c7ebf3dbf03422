//! `repack`: an unpacked archive directory (what `unpack` writes: `flowpack.json` at its top,
//! `flows/<slug>/export.json` and `flow.json`) packed back into an archive.
//!
//! The directory's manifest gives what the archive was: the package (name, version, kind,
//! description — each may be overridden), where its flows came from, each flow's name, source
//! id and settings, and which inputs were required (secrets stripped when it was first packed).
//! Documents and settings are packed with the bytes they have on disk, so an archive unpacked
//! and packed again with the same `created_at` (and the same flowpack) is byte-for-byte the
//! archive it came from, unless it was signed (signatures are made again only with signing
//! keys). An edited document is packed as edited; documents are validated as `pack` validates
//! them, except in a backup, which keeps what the platform had (as `export` does). A `*.json`
//! file the manifest does not list is refused, naming it: nothing is left out silently.

use std::path::{Component, Path, PathBuf};

use flowpack_core::archive::{
    ArchiveError, ArchiveWriter, FlowInput, FlowSettings, Manifest, ManifestParams, PackReport,
    PackageKind, SettingsError, WriterOptions,
};
use flowpack_core::sign::SigningKey;

use crate::error::{Categorize, Category, Remedy};
use crate::input::{InputError, json_files};

/// Errors repacking; each names the file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepackError {
    /// A file of the directory could not be read.
    #[error("{path}: cannot read: {cause}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        cause: std::io::Error,
    },
    /// The directory's `flowpack.json` is not a manifest flowpack reads.
    #[error("{path}: not an archive manifest: {reason}")]
    Manifest {
        /// The manifest file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A `*.json` file the manifest does not list.
    #[error(
        "{path}: not listed in {manifest}; an unpacked archive packs back only what its manifest lists"
    )]
    Unlisted {
        /// The file.
        path: String,
        /// The manifest.
        manifest: String,
    },
    /// A flow's `flow.json` is not a settings document this build reads.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The directory could not be listed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Packing failed (invalid documents, the archive could not be written).
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Object storage failed (an `s3://` output: settings, credentials, the store, an object
    /// that exists).
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// The output exists and replacing it was not allowed.
    #[error("{path}: exists; nothing was written")]
    Exists {
        /// The output.
        path: String,
    },
}

impl Categorize for RepackError {
    fn category(&self) -> Category {
        match self {
            RepackError::Manifest { .. } | RepackError::Unlisted { .. } => Category::Rejected,
            RepackError::Settings(_) => Category::Rejected,
            RepackError::Input(e) => e.category(),
            RepackError::Archive(e) => e.category(),
            RepackError::Storage(e) => e.category(),
            RepackError::Read { .. } | RepackError::Exists { .. } => Category::CouldNotRun,
        }
    }

    fn remedy(&self) -> Option<Remedy> {
        match self {
            RepackError::Exists { .. } => Some(Remedy::Overwrite),
            RepackError::Archive(e) => e.remedy(),
            RepackError::Storage(e) => e.remedy(),
            _ => None,
        }
    }
}

/// Which directory to pack into which archive, and what to change of its package.
#[derive(Clone)]
#[non_exhaustive]
pub struct RepackOptions {
    /// The unpacked archive directory.
    pub dir: PathBuf,
    /// The archive to write (atomically).
    pub output: PathBuf,
    /// The archive's `created_at` (whole seconds are recorded).
    pub created_at: time::OffsetDateTime,
    /// Keys to sign with.
    pub signers: Vec<SigningKey>,
    /// The manifest's `generator` (e.g. `flowpack 0.1.0`).
    pub generator: String,
    /// Another package name (default: the manifest's).
    pub name: Option<String>,
    /// Another package version (default: the manifest's).
    pub version: Option<semver::Version>,
    /// Another package kind (default: the manifest's).
    pub kind: Option<PackageKind>,
    /// Another description (default: the manifest's).
    pub description: Option<String>,
    /// Keep secret values the documents hold (they are still listed as inputs).
    pub allow_secrets: bool,
    /// Replace an existing output.
    pub force: bool,
}

impl RepackOptions {
    /// Packs `dir` into `output` at `created_at`, unsigned, its package as the manifest says.
    pub fn new(dir: PathBuf, output: PathBuf, created_at: time::OffsetDateTime) -> RepackOptions {
        RepackOptions {
            dir,
            output,
            created_at,
            signers: Vec::new(),
            generator: format!("flowpack {}", env!("CARGO_PKG_VERSION")),
            name: None,
            version: None,
            kind: None,
            description: None,
            allow_secrets: false,
            force: false,
        }
    }
}

/// The manifest at the top of an unpacked archive directory.
pub const MANIFEST_FILE: &str = "flowpack.json";

/// Whether `path` is an unpacked archive directory: a directory with `flowpack.json` at its top.
pub fn is_unpacked_archive(path: &Path) -> bool {
    path.is_dir() && path.join(MANIFEST_FILE).is_file()
}

/// Packs the directory back into an archive: a file, or an `s3://BUCKET/KEY` object (refused
/// before any work when it exists, unless forced; written and verified in a private local
/// temporary directory, then uploaded whole).
pub fn run(opts: &RepackOptions) -> Result<PackReport, RepackError> {
    let Some(spec) = opts.output.to_str().filter(|o| crate::storage::is_s3(o)) else {
        return run_local(opts);
    };
    let upload = crate::storage::Upload::prepare(spec, opts.force)?;
    let mut local = opts.clone();
    local.output = upload.local.clone();
    local.force = false;
    let mut report = run_local(&local)?;
    upload.verify(&upload.local)?;
    upload.finish(opts.force)?;
    report.path = PathBuf::from(spec);
    Ok(report)
}

fn run_local(opts: &RepackOptions) -> Result<PackReport, RepackError> {
    let manifest_path = opts.dir.join(MANIFEST_FILE);
    let shown = manifest_path.display().to_string();
    let bad = |reason: String| RepackError::Manifest {
        path: shown.clone(),
        reason,
    };
    let manifest: Manifest =
        flowpack_core::archive::manifest_from_slice(&read(&manifest_path)?).map_err(bad)?;
    let version = match &opts.version {
        Some(v) => v.clone(),
        None => semver::Version::parse(&manifest.package.version).map_err(|e| {
            bad(format!(
                "package.version {:?}: {e}",
                manifest.package.version
            ))
        })?,
    };
    // Every listed path is a plain relative path inside the directory.
    let mut listed = vec![manifest_path.clone()];
    for f in &manifest.flows {
        let mut paths = vec![&f.path];
        paths.extend(f.settings.as_ref().map(|s| &s.path));
        for p in paths {
            if !Path::new(p)
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
            {
                return Err(bad(format!("flows: unsafe path {p:?}")));
            }
            listed.push(opts.dir.join(p));
        }
    }
    for file in json_files(&opts.dir, &[])? {
        if !listed.contains(&file) {
            return Err(RepackError::Unlisted {
                path: file.display().to_string(),
                manifest: shown.clone(),
            });
        }
    }
    if !opts.force && std::fs::symlink_metadata(&opts.output).is_ok() {
        return Err(RepackError::Exists {
            path: opts.output.display().to_string(),
        });
    }
    let kind = opts.kind.unwrap_or(manifest.package.kind);
    let mut writer_opts = WriterOptions::new(opts.created_at);
    writer_opts.allow_secrets = opts.allow_secrets;
    // A backup keeps what the platform had, as export packs it.
    writer_opts.validate = kind != PackageKind::Backup;
    let mut writer = ArchiveWriter::create(&opts.output, writer_opts)?;
    for f in &manifest.flows {
        let path = opts.dir.join(&f.path);
        let input = FlowInput {
            bytes: read(&path)?,
            origin: path.display().to_string(),
            source_id: f.source_id.clone(),
            name: Some(f.name.clone()),
        };
        match &f.settings {
            Some(s) => {
                let settings_path = opts.dir.join(&s.path);
                let settings = FlowSettings::from_slice(
                    &read(&settings_path)?,
                    &settings_path.display().to_string(),
                )?;
                writer.add_flow_with_settings(input, settings)?;
            }
            None => writer.add_flow(input)?,
        }
    }
    let mut params = ManifestParams::new(
        opts.name.as_deref().unwrap_or(&manifest.package.name),
        version,
        kind,
    );
    params.description = opts
        .description
        .clone()
        .unwrap_or_else(|| manifest.package.description.clone());
    params.generator = opts.generator.clone();
    params.source = manifest.source.clone();
    params.required_inputs = manifest.inputs.clone();
    // A backup keeps its record (environment, sequence), so it is still that backup.
    params.backup = manifest.backup.clone();
    Ok(writer.finish(params, &opts.signers)?)
}

fn read(path: &Path) -> Result<Vec<u8>, RepackError> {
    std::fs::read(path).map_err(|cause| RepackError::Read {
        path: path.display().to_string(),
        cause,
    })
}
