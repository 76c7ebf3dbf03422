//! What `validate` and `inspect` read: an export document, or every flow document of an archive.
//!
//! A path is an archive when its name ends in `.flowpack` or its first bytes are a zip's local
//! header. Archives are opened with the default [`Limits`] (so hostile archives are refused with
//! the entry named), and their flow documents are read one at a time. `validate` and `inspect`
//! look at content; `flowpack verify` checks digests and signatures.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use flowpack_core::archive::{Archive, Limits, Manifest};
use flowpack_core::{Document, DocumentError};

/// One document to look at: where it came from (`file`, or `archive!entry`), its bytes when read
/// from a plain file (for SARIF line numbers), and the parsed document.
pub struct Input {
    /// `FILE` or `ARCHIVE!flows/<slug>/export.json`.
    pub origin: String,
    /// The file's bytes (plain files only).
    pub bytes: Option<Vec<u8>>,
    /// The document.
    pub document: Document,
}

/// What one command-line path held, each document already turned into a `T` by the caller (so
/// only one parsed document is alive at a time).
pub enum Loaded<T> {
    /// A plain export document.
    Document(T),
    /// An archive: its manifest and flow documents.
    Archive {
        /// The archive's manifest.
        manifest: Box<Manifest>,
        /// What became of its flow documents, in entry order.
        flows: Vec<T>,
    },
}

/// Whether `path` is an archive (by name, else by its first bytes).
pub fn is_archive(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e == "flowpack") {
        return true;
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|_| magic == *b"PK\x03\x04")
}

/// Loads a document or an archive's documents, passing each to `each`; errors name the file or
/// entry.
pub fn load<T>(path: &Path, each: impl FnMut(Input) -> T) -> anyhow::Result<Loaded<T>> {
    load_with(path, &mut Vec::new(), true, each)
}

/// [`load`] reading a plain document through `buf`, a buffer the caller reuses from file to file
/// (no fresh pages to fault in for every document), keeping the bytes only when `keep_bytes`.
///
/// An archive is read in bounded memory: every entry is first read through the limits keeping
/// nothing (so a bomb is named as such), then the manifest is checked, then the flow documents
/// are parsed one at a time, each checked against the per-document bound before it is parsed.
pub fn load_with<T>(
    path: &Path,
    buf: &mut Vec<u8>,
    keep_bytes: bool,
    mut each: impl FnMut(Input) -> T,
) -> anyhow::Result<Loaded<T>> {
    let shown = path.display().to_string();
    if !is_archive(path) {
        buf.clear();
        let limits = Limits::default();
        let len = std::fs::metadata(path)
            .map_err(|cause| DocumentError::Read {
                path: shown.clone(),
                cause,
            })?
            .len();
        limits
            .document
            .check_size(len)
            .map_err(|reason| DocumentError::Bound {
                path: shown.clone(),
                reason,
            })?;
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(buf))
            .map_err(|cause| DocumentError::Read {
                path: shown.clone(),
                cause,
            })?;
        let document = Document::from_slice(buf, &shown)?;
        return Ok(Loaded::Document(each(Input {
            origin: shown,
            bytes: keep_bytes.then(|| buf.clone()),
            document,
        })));
    }
    let mut archive = Archive::open(path, &Limits::default())?;
    archive.check_structure()?;
    let manifest = archive.manifest()?;
    let mut flows = Vec::new();
    for item in archive.flow_documents() {
        let (entry, document) =
            item.with_context(|| format!("{shown}: reading a flow document"))?;
        flows.push(each(Input {
            origin: format!("{shown}!{entry}"),
            bytes: None,
            document,
        }));
    }
    Ok(Loaded::Archive {
        manifest: Box::new(manifest),
        flows,
    })
}
