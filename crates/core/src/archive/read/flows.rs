//! The flows of an archive: the ones its manifest lists (checked against their digests), every
//! flow document entry whatever the manifest says, and a flow's settings.

use sha2::{Digest, Sha256};

use super::super::manifest::FlowRecord;
use super::super::settings::FlowSettings;
use super::super::{ArchiveError, entry_name};
use super::{Archive, Entry};
use crate::document::Document;

impl Archive {
    /// The flows the manifest lists, each read through the limits, checked against its
    /// recorded SHA-256 and parsed. Run [`verify`](Archive::verify) first for the full checks.
    pub fn flows(&mut self) -> Result<VerifiedFlows<'_>, ArchiveError> {
        let manifest = self.manifest_without_inputs()?;
        Ok(VerifiedFlows {
            archive: self,
            records: manifest.flows.into_iter(),
            total: 0,
        })
    }

    /// Every `flows/…/export.json` entry as a document with its entry path, in archive order,
    /// whatever the manifest says (for `validate` and `inspect` of an archive).
    pub fn flow_documents(&mut self) -> FlowDocuments<'_> {
        let entries: Vec<Entry> = self
            .entries
            .iter()
            .filter(|e| is_flow_document(&e.path))
            .cloned()
            .collect();
        FlowDocuments {
            archive: self,
            entries: entries.into_iter(),
            total: 0,
        }
    }

    /// The settings (`flow.json`) of the flow `record`, read through the limits and checked
    /// against the SHA-256 its record lists; `None` when the flow has none (version-1 archives).
    pub fn flow_settings(
        &mut self,
        record: &FlowRecord,
    ) -> Result<Option<FlowSettings>, ArchiveError> {
        let Some(s) = &record.settings else {
            return Ok(None);
        };
        let origin = self.origin.clone();
        let digest = |reason: String| ArchiveError::Digest {
            archive: origin.clone(),
            entry: s.path.clone(),
            reason,
        };
        let entry = self
            .entry(&s.path)
            .ok_or_else(|| digest("listed in the manifest but missing".into()))?;
        let bytes = self.read_all(&entry, &mut 0)?;
        let got = hex::encode(Sha256::digest(&bytes));
        if got != s.sha256 {
            return Err(digest(format!(
                "SHA-256 {got} does not match the manifest's {}",
                s.sha256
            )));
        }
        Ok(Some(FlowSettings::from_slice(
            &bytes,
            &entry_name(&origin, &s.path),
        )?))
    }

    /// The bytes of the flow document `record` names, read through the limits and the
    /// per-document size bound and checked against the SHA-256 the manifest lists, unparsed:
    /// for callers that read a flow again after [`flows`](Archive::flows) (to hold no parsed
    /// documents in between) and parse it themselves, e.g. within a
    /// [`ParseBudget`](crate::budget::ParseBudget).
    pub fn flow_bytes(&mut self, record: &FlowRecord) -> Result<Vec<u8>, ArchiveError> {
        self.read_flow(record, &mut 0)
    }

    /// The paths of every `flows/…/export.json` entry, in archive order, whatever the manifest
    /// says (what [`flow_documents`](Archive::flow_documents) reads).
    pub fn flow_entry_paths(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| is_flow_document(&e.path))
            .map(|e| e.path.clone())
            .collect()
    }

    /// The bytes of the entry `path`, read through the limits and the per-document size bound,
    /// unparsed and not checked against the manifest: for callers that parse documents
    /// themselves (e.g. within a [`ParseBudget`](crate::budget::ParseBudget)).
    pub fn document_bytes(&mut self, path: &str) -> Result<Vec<u8>, ArchiveError> {
        let entry = self.entry(path).ok_or_else(|| ArchiveError::Digest {
            archive: self.origin.clone(),
            entry: path.to_string(),
            reason: "no such entry".into(),
        })?;
        self.read_document(&entry, &mut 0)
    }

    /// A flow document's bytes, checked against the digest of its manifest record.
    fn read_flow(&mut self, record: &FlowRecord, total: &mut u64) -> Result<Vec<u8>, ArchiveError> {
        let origin = self.origin.clone();
        let digest = |reason: String| ArchiveError::Digest {
            archive: origin.clone(),
            entry: record.path.clone(),
            reason,
        };
        let entry = self
            .entry(&record.path)
            .ok_or_else(|| digest("listed in the manifest but missing".into()))?;
        let bytes = self.read_document(&entry, total)?;
        let got = hex::encode(Sha256::digest(&bytes));
        if got != record.sha256 {
            return Err(digest(format!(
                "SHA-256 {got} does not match the manifest's {}",
                record.sha256
            )));
        }
        Ok(bytes)
    }
}

/// Whether an entry path is a flow's export document (`flows/…/export.json`).
fn is_flow_document(p: &str) -> bool {
    p.starts_with("flows/") && p.ends_with("/export.json")
}

/// Iterator over the verified flows of an archive: `(record, document)`.
pub struct VerifiedFlows<'a> {
    archive: &'a mut Archive,
    records: std::vec::IntoIter<FlowRecord>,
    total: u64,
}

impl Iterator for VerifiedFlows<'_> {
    type Item = Result<(FlowRecord, Document), ArchiveError>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = self.records.next()?;
        Some((|| {
            let bytes = self.archive.read_flow(&record, &mut self.total)?;
            let doc = Document::from_slice_bounded(
                &bytes,
                &entry_name(&self.archive.origin, &record.path),
                &self.archive.limits.document,
            )?;
            Ok((record, doc))
        })())
    }
}

/// Iterator over every flow document entry: `(entry path, document)`.
pub struct FlowDocuments<'a> {
    archive: &'a mut Archive,
    entries: std::vec::IntoIter<Entry>,
    total: u64,
}

impl Iterator for FlowDocuments<'_> {
    type Item = Result<(String, Document), ArchiveError>;

    fn next(&mut self) -> Option<Self::Item> {
        let entry = self.entries.next()?;
        Some((|| {
            let bytes = self.archive.read_document(&entry, &mut self.total)?;
            let doc = Document::from_slice_bounded(
                &bytes,
                &entry_name(&self.archive.origin, &entry.path),
                &self.archive.limits.document,
            )?;
            Ok((entry.path.clone(), doc))
        })())
    }
}
