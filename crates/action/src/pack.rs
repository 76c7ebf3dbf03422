//! `pack`: export documents (files, or directories of them) into one reproducible archive.
//!
//! Inputs are files or directories; a directory contributes its `*.json` files, recursively, in
//! sorted path order, so the same tree always packs the same way. A file given by name that is
//! an archive is refused (unpack it first). Every document is validated (unless the options turn
//! it off); any error finding refuses the whole pack, and nothing is written.

use std::path::{Path, PathBuf};

use flowpack_core::archive::{
    ArchiveError, ArchiveWriter, FlowInput, ManifestParams, PackReport, PackageKind, WriterOptions,
};
use flowpack_core::sign::SigningKey;

use crate::error::{Categorize, Category};
use crate::input::{InputError, expect_document, json_files};

/// Errors packing; each names the input or archive at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// An input could not be read or listed.
    #[error("{path}: cannot read: {cause}")]
    Read {
        /// The file or directory.
        path: String,
        /// The I/O error.
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
}

impl Categorize for PackError {
    fn category(&self) -> Category {
        match self {
            PackError::Read { .. } | PackError::NoDocuments => Category::CouldNotRun,
            PackError::Input(e) => e.category(),
            PackError::Archive(e) => e.category(),
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
        }
    }
}

/// Packs the inputs; the report is the archive's (path, manifest, digests, signatures).
pub fn run(opts: &PackOptions) -> Result<PackReport, PackError> {
    let mut files = Vec::new();
    for input in &opts.inputs {
        collect(input, true, &mut files)?;
    }
    if files.is_empty() {
        return Err(PackError::NoDocuments);
    }
    let mut writer_opts = WriterOptions::new(opts.created_at);
    writer_opts.allow_secrets = opts.allow_secrets;
    let mut writer = ArchiveWriter::create(&opts.output, writer_opts)?;
    for file in &files {
        let bytes = std::fs::read(file).map_err(|cause| PackError::Read {
            path: file.display().to_string(),
            cause,
        })?;
        writer.add_flow(FlowInput {
            bytes,
            origin: file.display().to_string(),
            source_id: String::new(),
            name: None,
        })?;
    }
    let mut params = ManifestParams::new(&opts.name, opts.version.clone(), opts.kind);
    params.description = opts.description.clone();
    params.generator = opts.generator.clone();
    Ok(writer.finish(params, &opts.signers)?)
}

/// Adds `path` (a file given by name, or a directory's `*.json` files, recursively and sorted).
fn collect(path: &Path, named: bool, out: &mut Vec<PathBuf>) -> Result<(), PackError> {
    let read_err = |cause| PackError::Read {
        path: path.display().to_string(),
        cause,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.is_dir() {
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
