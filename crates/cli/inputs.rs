//! What `validate` and `inspect` read: an export document, or every flow document of an archive.
//!
//! A path is an archive when its name ends in `.flowpack` or its first bytes are a zip's local
//! header. Archives are opened with the default [`Limits`] (so hostile archives are refused with
//! the entry named), and their flow documents are read one at a time. `validate` and `inspect`
//! look at content; `flowpack verify` checks digests and signatures.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use flowpack_core::archive::{Archive, FlowSettings, Limits, Manifest};
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

/// What one command-line path held.
pub enum Loaded {
    /// A plain export document.
    Document(Input),
    /// An archive: its manifest and flow documents.
    Archive {
        /// The archive's manifest.
        manifest: Box<Manifest>,
        /// Its flow documents, in entry order.
        flows: Vec<Input>,
        /// The flows' settings (`flow.json`, manifest version 2) by the export document's entry
        /// path, each checked against its digest.
        settings: std::collections::BTreeMap<String, FlowSettings>,
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

/// Loads a document or an archive's documents; errors name the file or entry.
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    load_with(path, &mut Vec::new(), true)
}

/// [`load`] reading a plain document through `buf`, a buffer the caller reuses from file to file
/// (no fresh pages to fault in for every document), keeping the bytes only when `keep_bytes`.
pub fn load_with(path: &Path, buf: &mut Vec<u8>, keep_bytes: bool) -> anyhow::Result<Loaded> {
    let shown = path.display().to_string();
    if !is_archive(path) {
        buf.clear();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(buf))
            .map_err(|cause| DocumentError::Read {
                path: shown.clone(),
                cause,
            })?;
        let document = Document::from_slice(buf, &shown)?;
        return Ok(Loaded::Document(Input {
            origin: shown,
            bytes: keep_bytes.then(|| buf.clone()),
            document,
        }));
    }
    let mut archive = Archive::open(path, &Limits::default())?;
    // Flow entries first: reading them measures sizes and ratios, so a bomb is named as such
    // even when its manifest is broken too.
    let mut flows = Vec::new();
    for item in archive.flow_documents() {
        let (entry, document) =
            item.with_context(|| format!("{shown}: reading a flow document"))?;
        flows.push(Input {
            origin: format!("{shown}!{entry}"),
            bytes: None,
            document,
        });
    }
    let manifest = archive.manifest()?;
    let mut settings = std::collections::BTreeMap::new();
    for record in &manifest.flows {
        if let Some(s) = archive.flow_settings(record)? {
            settings.insert(record.path.clone(), s);
        }
    }
    Ok(Loaded::Archive {
        manifest: Box::new(manifest),
        flows,
        settings,
    })
}
