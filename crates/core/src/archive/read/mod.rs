//! Reading untrusted archives. Every byte is read through the [`Limits`] (entry size, ratio and
//! total measured while decompressing); nothing the archive says is trusted before it is checked.
//!
//! - `open`: the zip layout, the entry count, each entry's name and type, the manifest's bytes.
//! - `verify`: the manifest parsed and checked; the five checks in order, in a [`VerifyReport`].
//! - `flows`: the listed flows checked against their digests, every flow document, settings.
//! - `unpack`: extraction of a verified archive, atomically.
//! - `sign`: adding a signature, every other entry raw-copied.

mod flows;
mod open;
mod sign;
mod unpack;
mod verify;

pub use flows::{FlowDocuments, VerifiedFlows};
pub use sign::{SignArchiveOptions, SignReport, sign_archive};
pub use unpack::{UnpackOptions, UnpackReport, unpack};
pub use verify::{
    Check, CheckStatus, SignatureCheck, SignatureFailure, SignatureStatus, VerifyReport,
    verify_archive,
};

use super::ArchiveError;
use super::limits::Limits;
use super::zipio::Reader;
use crate::sign::TrustedKey;

/// Which keys are trusted and how many of them must have signed.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TrustPolicy {
    /// Trusted public keys.
    pub keys: Vec<TrustedKey>,
    /// Distinct trusted keys that must have signed; 0 checks no signatures.
    pub threshold: usize,
}

/// One entry that passed the structural checks.
#[derive(Debug, Clone)]
struct Entry {
    index: usize,
    path: String,
}

/// An archive opened for reading. Opening checks the central directory (names, entry types,
/// duplicates, count, encryption); sizes and ratios are checked while entries are read.
/// A clone reads the same open file at positions of its own: one clone per thread reads
/// entries in parallel.
#[derive(Clone)]
pub struct Archive {
    origin: String,
    reader: Reader,
    limits: Limits,
    entries: Vec<Entry>,
    /// Indexes into `entries` in the byte order of their paths: an entry is found by path in
    /// `log n` (readers look up every flow's entry), at 4 bytes per entry.
    by_path: Vec<u32>,
    /// Shared by the clones (at 10,000 flows a manifest is several MB).
    manifest_bytes: Option<std::sync::Arc<[u8]>>,
    /// Entries named `flows/<slug>/export.json` in the central directory: what the manifest's
    /// bound and the entry count are measured against.
    flow_entries: usize,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Archive({}, {} entries)",
            self.origin,
            self.entries.len()
        )
    }
}

impl Archive {
    /// The archive's path as given.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Entry paths, in archive order.
    pub fn entry_paths(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.path.as_str())
    }

    /// The exact bytes of `flowpack.json`, when present.
    pub fn manifest_bytes(&self) -> Option<&[u8]> {
        self.manifest_bytes.as_deref()
    }

    /// Reads one entry through the limits (entry size, ratio, running `total`), measured while
    /// decompressing.
    fn read_limited(
        &mut self,
        entry: &Entry,
        total: &mut u64,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u64, ArchiveError> {
        let limits = self.limits;
        let (compressed, declared) = self
            .reader
            .raw_entry(entry.index)
            .map(|r| (r.compressed_size, r.declared_size))
            .unwrap_or((0, 0));
        let compressed = compressed.max(1);
        let mut read: u64 = 0;
        let mut violation: Option<String> = None;
        let result = self.reader.read_entry(entry.index, |chunk| {
            read += chunk.len() as u64;
            *total += chunk.len() as u64;
            if read > declared {
                violation = Some(format!(
                    "more bytes than the declared uncompressed size of {declared}"
                ));
            } else if read > limits.max_entry_size {
                violation = Some(format!(
                    "larger than the limit of {} bytes uncompressed",
                    limits.max_entry_size
                ));
            } else if read > 1024 && read / compressed > limits.max_ratio {
                violation = Some(format!(
                    "compression ratio over {}:1 (a zip bomb?)",
                    limits.max_ratio
                ));
            } else if *total > limits.max_total_size {
                violation = Some(format!(
                    "the archive's total uncompressed size passes the limit of {} bytes",
                    limits.max_total_size
                ));
            }
            if violation.is_some() {
                return Err(std::io::Error::other("limit"));
            }
            sink(chunk)
        });
        let hostile = |reason: String| ArchiveError::Hostile {
            archive: self.origin.clone(),
            entry: entry.path.clone(),
            reason,
        };
        if let Some(v) = violation {
            return Err(hostile(v));
        }
        result.map_err(|e| hostile(format!("cannot read: {e}")))?;
        // The sizes a zip declares are checked against the bytes measured, so no reader that
        // trusts them (to size a buffer, to show a total) sees another archive than this one.
        if read != declared {
            return Err(hostile(format!(
                "declares {declared} bytes uncompressed but holds {read}"
            )));
        }
        Ok(read)
    }

    /// Reads one document entry fully, through the limits and the per-document size bound
    /// (reading stops as soon as the entry passes it).
    fn read_document(&mut self, entry: &Entry, total: &mut u64) -> Result<Vec<u8>, ArchiveError> {
        let bound = self.limits.document;
        self.read_bounded(entry, total, bound)
    }

    /// Reads one entry fully, through the limits and `bound`'s size (reading stops as soon as
    /// the entry passes it).
    fn read_bounded(
        &mut self,
        entry: &Entry,
        total: &mut u64,
        bound: crate::document::DocumentBound,
    ) -> Result<Vec<u8>, ArchiveError> {
        // Sized by what the entry declares (checked against what it holds as it is read),
        // within the bound: growing by doubling would hold up to twice a large entry.
        let declared = self
            .reader
            .raw_entry(entry.index)
            .map_or(0, |r| r.declared_size);
        let room = usize::try_from(declared.min(bound.max_bytes)).unwrap_or(0);
        let mut bytes = Vec::with_capacity(room);
        let mut over = None;
        let result = self.read_limited(entry, total, |c| {
            if let Err(reason) = bound.check_size((bytes.len() + c.len()) as u64) {
                over = Some(reason);
                return Err(std::io::Error::other("bound"));
            }
            bytes.extend_from_slice(c);
            Ok(())
        });
        if let Some(reason) = over {
            return Err(ArchiveError::Hostile {
                archive: self.origin.clone(),
                entry: entry.path.clone(),
                reason: format!("refused before parsing: {reason}"),
            });
        }
        result?;
        Ok(bytes)
    }

    /// Reads every entry once through the limits (sizes, ratios, total measured while
    /// decompressing), keeping nothing: the structure check, in constant memory.
    pub fn check_structure(&mut self) -> Result<u64, ArchiveError> {
        let mut total = 0;
        for i in 0..self.entries.len() {
            let e = self.entries[i].clone();
            self.read_limited(&e, &mut total, |_| Ok(()))?;
        }
        Ok(total)
    }

    /// Reads one entry fully (through the limits).
    fn read_all(&mut self, entry: &Entry, total: &mut u64) -> Result<Vec<u8>, ArchiveError> {
        let mut bytes = Vec::new();
        self.read_limited(entry, total, |c| {
            bytes.extend_from_slice(c);
            Ok(())
        })?;
        Ok(bytes)
    }

    /// The archive named `shown` in its reports and errors from now on (e.g. the registry
    /// reference of an archive pulled into a temporary file).
    pub fn named(mut self, shown: &str) -> Archive {
        self.origin = shown.to_string();
        self
    }

    /// The limits this archive is read under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn entry(&self, path: &str) -> Option<Entry> {
        let entries = &self.entries;
        self.by_path
            .binary_search_by(|&i| entries[i as usize].path.as_bytes().cmp(path.as_bytes()))
            .ok()
            .map(|at| entries[self.by_path[at] as usize].clone())
    }
}
fn is_signature_path(p: &str) -> bool {
    p.strip_prefix("signatures/")
        .and_then(|r| r.strip_suffix(".minisig"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// `n` with the singular or plural noun: `1 flow`, `2 flows`.
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
