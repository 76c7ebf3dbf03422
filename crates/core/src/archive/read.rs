//! Reading untrusted archives: structure checks, verification, flow iteration, unpack, sign.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::limits::Limits;
use super::manifest::{FlowRecord, MANIFEST_READ_VERSIONS, Manifest, Package};
use super::settings::FlowSettings;
use super::zipio::{self, Reader, Source};
use super::{ArchiveError, MANIFEST_PATH};
use crate::document::Document;
use crate::sign::{SigningKey, TrustedKey, signature_key_id, trusted_comment};

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
pub struct Archive {
    origin: String,
    reader: Reader,
    limits: Limits,
    entries: Vec<Entry>,
    manifest_bytes: Option<Vec<u8>>,
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

/// Why `name` is not a safe entry path, if it is not.
fn unsafe_path_reason(name: &[u8]) -> Option<&'static str> {
    let Ok(s) = std::str::from_utf8(name) else {
        return Some("the name is not UTF-8");
    };
    if s.is_empty() {
        return Some("the name is empty");
    }
    if s.contains('\0') {
        return Some("the name contains NUL");
    }
    if s.contains('\\') {
        return Some("the name contains a backslash");
    }
    if s.starts_with('/') {
        return Some("the path is absolute");
    }
    let b = s.as_bytes();
    if b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic() {
        return Some("the path starts with a drive letter");
    }
    if s.split('/').any(|c| c == "..") {
        return Some("the path contains '..'");
    }
    if s.split('/').any(|c| c.is_empty() || c == ".") {
        return Some("the path has an empty or '.' component");
    }
    None
}

fn display_name(name: &[u8]) -> String {
    match std::str::from_utf8(name) {
        Ok(s) => s.escape_debug().to_string(),
        Err(_) => name.escape_ascii().to_string(),
    }
}

impl Archive {
    /// Opens `path` and checks its structure. Nothing of the archive is trusted.
    pub fn open(path: &Path, limits: &Limits) -> Result<Archive, ArchiveError> {
        let origin = path.display().to_string();
        let file = File::open(path).map_err(|error| ArchiveError::Io {
            path: origin.clone(),
            error,
        })?;
        let mut reader = Reader::open(file).map_err(|e| match e {
            zipio::OpenError::Zip(e) => ArchiveError::Malformed {
                archive: origin.clone(),
                reason: e.to_string(),
            },
            zipio::OpenError::Layout {
                entry: Some(entry),
                reason,
            } => ArchiveError::Hostile {
                archive: origin.clone(),
                entry: display_name(&entry),
                reason,
            },
            zipio::OpenError::Layout {
                entry: None,
                reason,
            } => ArchiveError::Malformed {
                archive: origin.clone(),
                reason,
            },
        })?;
        if reader.len() > limits.max_entries {
            return Err(ArchiveError::Limit {
                archive: origin,
                reason: format!(
                    "{} entries, more than the limit of {}",
                    reader.len(),
                    limits.max_entries
                ),
            });
        }
        let mut seen = HashSet::new();
        let mut entries = Vec::with_capacity(reader.len());
        for index in 0..reader.len() {
            let raw = reader
                .raw_entry(index)
                .map_err(|e| ArchiveError::Malformed {
                    archive: origin.clone(),
                    reason: format!("entry #{index}: {e}"),
                })?;
            let hostile = |reason: &str| ArchiveError::Hostile {
                archive: origin.clone(),
                entry: display_name(&raw.name),
                reason: reason.to_string(),
            };
            if let Some(reason) = unsafe_path_reason(&raw.name) {
                return Err(hostile(reason));
            }
            if raw.is_symlink {
                return Err(hostile("symlinks are not allowed"));
            }
            if raw.is_dir {
                return Err(hostile("directory entries are not allowed"));
            }
            if let Some(mode) = raw.unix_mode
                && mode & 0o170000 != 0
                && mode & 0o170000 != 0o100000
            {
                return Err(hostile("not a regular file"));
            }
            if raw.encrypted {
                return Err(hostile("encrypted entries are not allowed"));
            }
            if !raw.supported_method {
                return Err(hostile("unsupported compression method"));
            }
            let path = String::from_utf8(raw.name.clone()).map_err(|_| hostile("not UTF-8"))?;
            if !seen.insert(path.clone()) {
                return Err(hostile("duplicate entry name"));
            }
            entries.push(Entry { index, path });
        }
        let mut archive = Archive {
            origin,
            reader,
            limits: *limits,
            entries,
            manifest_bytes: None,
        };
        if let Some(e) = archive
            .entries
            .iter()
            .find(|e| e.path == MANIFEST_PATH)
            .cloned()
        {
            let mut total = 0;
            let bytes = archive.read_document(&e, &mut total)?;
            archive.manifest_bytes = Some(bytes);
        }
        Ok(archive)
    }

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

    /// The parsed manifest.
    pub fn manifest(&self) -> Result<Manifest, ArchiveError> {
        let bad = |reason: String| ArchiveError::Manifest {
            archive: self.origin.clone(),
            reason,
        };
        let bytes = self
            .manifest_bytes
            .as_deref()
            .ok_or_else(|| bad("missing".into()))?;
        self.limits
            .document
            .check(bytes)
            .map_err(|reason| bad(format!("refused before parsing: {reason}")))?;
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        if let Some(err) = manifest_validator().iter_errors(&value).next() {
            return Err(bad(format!(
                "does not match the manifest schema at {:?}: {err}",
                err.instance_path().to_string()
            )));
        }
        let m: Manifest = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        if !MANIFEST_READ_VERSIONS.contains(&m.format_version) {
            return Err(bad(format!(
                "unsupported format_version {} (known: 1, 2)",
                m.format_version
            )));
        }
        semver::Version::parse(&m.package.version)
            .map_err(|e| bad(format!("package.version {:?}: {e}", m.package.version)))?;
        for f in &m.flows {
            if unsafe_path_reason(f.path.as_bytes()).is_some() {
                return Err(bad(format!("flows: unsafe path {:?}", f.path)));
            }
            if m.files.get(&f.path) != Some(&super::manifest::file_digest(&f.sha256)) {
                return Err(bad(format!(
                    "flows: {:?} is not listed in files with the same digest",
                    f.path
                )));
            }
            if let Some(s) = &f.settings
                && Some(s.path.as_str())
                    != f.path
                        .strip_suffix("export.json")
                        .map(|dir| format!("{dir}flow.json"))
                        .as_deref()
            {
                return Err(bad(format!(
                    "flows: settings {:?} of {:?} is not beside it",
                    s.path, f.path
                )));
            }
            if let Some(s) = &f.settings
                && m.files.get(&s.path) != Some(&super::manifest::file_digest(&s.sha256))
            {
                return Err(bad(format!(
                    "flows: settings {:?} is not listed in files with the same digest",
                    s.path
                )));
            }
        }
        Ok(m)
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
        let compressed = self
            .reader
            .raw_entry(entry.index)
            .map(|r| r.compressed_size)
            .unwrap_or(0)
            .max(1);
        let mut read: u64 = 0;
        let mut violation: Option<String> = None;
        let result = self.reader.read_entry(entry.index, |chunk| {
            read += chunk.len() as u64;
            *total += chunk.len() as u64;
            if read > limits.max_entry_size {
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
        Ok(read)
    }

    /// Reads one document entry fully, through the limits and the per-document size bound
    /// (reading stops as soon as the entry passes it).
    fn read_document(&mut self, entry: &Entry, total: &mut u64) -> Result<Vec<u8>, ArchiveError> {
        let bound = self.limits.document;
        let mut bytes = Vec::new();
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
        for e in self.entries.clone() {
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

    /// Runs every check in order, cheapest and most fundamental first: structure (every entry read through the limits)
    /// → manifest parses → signatures against `policy` → every listed entry present with the
    /// right digest → no unlisted entry. Later checks are skipped once one fails.
    pub fn verify(&mut self, policy: &TrustPolicy) -> VerifyReport {
        let mut report = VerifyReport::new(&self.origin);
        // 1. structure: read everything, measured.
        let mut digests: BTreeMap<String, String> = BTreeMap::new();
        let mut total = 0;
        let entries = self.entries.clone();
        for e in &entries {
            let mut h = Sha256::new();
            match self.read_limited(e, &mut total, |c| {
                h.update(c);
                Ok(())
            }) {
                Ok(_) => {
                    digests.insert(e.path.clone(), hex::encode(h.finalize()));
                }
                Err(err) => {
                    report.push(CHECK_STRUCTURE, false, err.to_string());
                    return report.skip_rest();
                }
            }
        }
        report.push(
            CHECK_STRUCTURE,
            true,
            format!("{} entries, {total} bytes uncompressed", entries.len()),
        );
        // 2. manifest
        let manifest = match self.manifest() {
            Ok(m) => m,
            Err(e) => {
                report.push(CHECK_MANIFEST, false, e.to_string());
                return report.skip_rest();
            }
        };
        report.manifest_sha256 = digests.get(MANIFEST_PATH).cloned();
        report.package = Some(manifest.package.clone());
        report.push(
            CHECK_MANIFEST,
            true,
            format!(
                "{}@{} ({}), {}",
                manifest.package.name,
                manifest.package.version,
                manifest.package.kind.as_str(),
                plural(manifest.flows.len(), "flow", "flows")
            ),
        );
        // 3. signatures
        let sig_result = self.check_signatures(&manifest, policy, &mut report);
        match sig_result {
            Ok(Some(detail)) => report.push(CHECK_SIGNATURES, true, detail),
            Ok(None) => {
                let n = self.signature_entries().count();
                report.checks.push(Check {
                    name: CHECK_SIGNATURES,
                    status: CheckStatus::Skipped,
                    detail: format!(
                        "no trusted keys given; {} not checked",
                        plural(n, "signature", "signatures")
                    ),
                });
            }
            Err(detail) => {
                report.push(CHECK_SIGNATURES, false, detail);
                return report.skip_rest();
            }
        }
        // 4. digests
        for (path, want) in &manifest.files {
            let Some(got) = digests.get(path) else {
                report.push(
                    CHECK_DIGESTS,
                    false,
                    format!("entry {path:?} is listed in the manifest but missing"),
                );
                return report.skip_rest();
            };
            if super::manifest::file_digest(got) != *want {
                report.push(
                    CHECK_DIGESTS,
                    false,
                    format!("entry {path:?}: SHA-256 {got} does not match the manifest's {want}"),
                );
                return report.skip_rest();
            }
        }
        report.push(
            CHECK_DIGESTS,
            true,
            format!("{} listed entries match", manifest.files.len()),
        );
        // 5. unlisted
        let unlisted: Vec<&str> = entries
            .iter()
            .map(|e| e.path.as_str())
            .filter(|p| {
                *p != MANIFEST_PATH && !manifest.files.contains_key(*p) && !is_signature_path(p)
            })
            .collect();
        if let Some(first) = unlisted.first() {
            report.push(
                CHECK_UNLISTED,
                false,
                format!(
                    "entry {first:?} is not listed in the manifest ({} unlisted)",
                    unlisted.len()
                ),
            );
        } else {
            report.push(CHECK_UNLISTED, true, "no unlisted entries".into());
        }
        report.ok = report
            .checks
            .iter()
            .all(|c| c.status != CheckStatus::Failed);
        report
    }

    fn signature_entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| is_signature_path(&e.path))
    }

    /// `Ok(Some(detail))` passed, `Ok(None)` not checked, `Err(detail)` failed.
    fn check_signatures(
        &mut self,
        manifest: &Manifest,
        policy: &TrustPolicy,
        report: &mut VerifyReport,
    ) -> Result<Option<String>, String> {
        if policy.keys.is_empty() && policy.threshold == 0 {
            return Ok(None);
        }
        let manifest_bytes = self.manifest_bytes.clone().unwrap_or_default();
        let expected_comment = trusted_comment(
            &manifest.package.name,
            &manifest.package.version,
            &manifest_bytes,
        );
        let mut good: BTreeSet<String> = BTreeSet::new();
        let sig_entries: Vec<Entry> = self.signature_entries().cloned().collect();
        let mut total = 0;
        for e in &sig_entries {
            let bytes = self.read_all(e, &mut total).map_err(|e| e.to_string())?;
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("entry {:?}: not a minisign signature", e.path))?;
            let named = e
                .path
                .trim_start_matches("signatures/")
                .trim_end_matches(".minisig")
                .to_string();
            let Some(id) = signature_key_id(&text) else {
                return Err(format!("entry {:?}: not a minisign signature", e.path));
            };
            if id != named {
                return Err(format!(
                    "entry {:?}: the signature is by key {id}, not {named}",
                    e.path
                ));
            }
            let Some(key) = policy.keys.iter().find(|k| k.key_id() == id) else {
                report.untrusted_signers.push(id);
                continue;
            };
            let comment = key.verify(&manifest_bytes, &text).map_err(|err| {
                format!(
                    "entry {:?}: signature by trusted key {id} does not match flowpack.json ({err})",
                    e.path
                )
            })?;
            if comment != expected_comment {
                return Err(format!(
                    "entry {:?}: the trusted comment {comment:?} does not name this manifest",
                    e.path
                ));
            }
            good.insert(id);
        }
        report.signers = good.iter().cloned().collect();
        let need = policy.threshold.max(1);
        if good.len() < need {
            return Err(format!(
                "{}, {need} required (trusted keys: {})",
                plural(good.len(), "trusted signature", "trusted signatures"),
                policy
                    .keys
                    .iter()
                    .map(TrustedKey::key_id)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(Some(format!(
            "{} ({}), {need} required",
            plural(good.len(), "trusted signature", "trusted signatures"),
            report.signers.join(", ")
        )))
    }

    /// The flows the manifest lists, each read through the limits, checked against its
    /// recorded SHA-256 and parsed. Run [`verify`](Archive::verify) first for the full checks.
    pub fn flows(&mut self) -> Result<VerifiedFlows<'_>, ArchiveError> {
        let manifest = self.manifest()?;
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
            &format!("{origin}!{}", s.path),
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

    fn entry(&self, path: &str) -> Option<Entry> {
        self.entries.iter().find(|e| e.path == path).cloned()
    }
}

fn manifest_validator() -> &'static jsonschema::Validator {
    static V: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        let schema: serde_json::Value = serde_json::from_str(super::manifest::MANIFEST_SCHEMA)
            .expect("the embedded manifest schema is JSON");
        jsonschema::validator_for(&schema).expect("the embedded manifest schema compiles")
    })
}

/// Whether an entry path is a flow's export document (`flows/…/export.json`).
fn is_flow_document(p: &str) -> bool {
    p.starts_with("flows/") && p.ends_with("/export.json")
}

fn is_signature_path(p: &str) -> bool {
    p.strip_prefix("signatures/")
        .and_then(|r| r.strip_suffix(".minisig"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
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
                &format!("{}!{}", self.archive.origin, record.path),
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
                &format!("{}!{}", self.archive.origin, entry.path),
                &self.archive.limits.document,
            )?;
            Ok((entry.path.clone(), doc))
        })())
    }
}

const CHECK_STRUCTURE: &str = "structure";
const CHECK_MANIFEST: &str = "manifest";
const CHECK_SIGNATURES: &str = "signatures";
const CHECK_DIGESTS: &str = "digests";
const CHECK_UNLISTED: &str = "unlisted";
const CHECKS: [&str; 5] = [
    CHECK_STRUCTURE,
    CHECK_MANIFEST,
    CHECK_SIGNATURES,
    CHECK_DIGESTS,
    CHECK_UNLISTED,
];

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The check passed.
    Passed,
    /// The check failed.
    Failed,
    /// Not run (an earlier check failed, or no trusted keys were given).
    Skipped,
}

/// One verification check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `structure`, `manifest`, `signatures`, `digests` or `unlisted`.
    pub name: &'static str,
    /// The outcome.
    pub status: CheckStatus,
    /// What was found, naming the entry at fault.
    pub detail: String,
}

/// What [`Archive::verify`] found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The archive.
    pub archive: String,
    /// Whether no check failed.
    pub ok: bool,
    /// The checks in order.
    pub checks: Vec<Check>,
    /// The package, once the manifest parsed.
    pub package: Option<Package>,
    /// SHA-256 of `flowpack.json`.
    pub manifest_sha256: Option<String>,
    /// Trusted keys whose signatures verified.
    pub signers: Vec<String>,
    /// Key ids of signatures by keys not in the policy (not checked).
    pub untrusted_signers: Vec<String>,
}

impl VerifyReport {
    fn new(archive: &str) -> VerifyReport {
        VerifyReport {
            archive: archive.to_string(),
            ok: false,
            checks: Vec::new(),
            package: None,
            manifest_sha256: None,
            signers: Vec::new(),
            untrusted_signers: Vec::new(),
        }
    }

    /// A report for an archive that could not be opened safely: structure failed.
    pub fn structure_failed(archive: &str, err: &ArchiveError) -> VerifyReport {
        let mut r = VerifyReport::new(archive);
        r.push(CHECK_STRUCTURE, false, err.to_string());
        r.skip_rest()
    }

    fn push(&mut self, name: &'static str, ok: bool, detail: String) {
        self.checks.push(Check {
            name,
            status: if ok {
                CheckStatus::Passed
            } else {
                CheckStatus::Failed
            },
            detail,
        });
    }

    fn skip_rest(mut self) -> VerifyReport {
        for name in CHECKS.iter().skip(self.checks.len()) {
            self.checks.push(Check {
                name,
                status: CheckStatus::Skipped,
                detail: "not run: an earlier check failed".into(),
            });
        }
        self.ok = false;
        self
    }

    /// The first failed check.
    pub fn first_failure(&self) -> Option<&Check> {
        self.checks.iter().find(|c| c.status == CheckStatus::Failed)
    }

    /// Whether the signatures check passed.
    pub fn signatures_passed(&self) -> bool {
        self.checks
            .iter()
            .any(|c| c.name == CHECK_SIGNATURES && c.status == CheckStatus::Passed)
    }
}

/// Opens and verifies `path`. `Err` only when the file cannot be read at all; an unsafe or
/// malformed archive gives a report whose `structure` check failed.
pub fn verify_archive(
    path: &Path,
    limits: &Limits,
    policy: &TrustPolicy,
) -> Result<VerifyReport, ArchiveError> {
    match Archive::open(path, limits) {
        Ok(mut a) => Ok(a.verify(policy)),
        Err(e @ ArchiveError::Io { .. }) => Err(e),
        Err(e) => Ok(VerifyReport::structure_failed(
            &path.display().to_string(),
            &e,
        )),
    }
}

/// How to unpack.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct UnpackOptions {
    /// Limits for reading.
    pub limits: Limits,
    /// Trust policy; unpack refuses when signatures are not checked unless
    /// `skip_signatures`.
    pub policy: TrustPolicy,
    /// Unpack without checking signatures.
    pub skip_signatures: bool,
}

/// What [`unpack`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct UnpackReport {
    /// The target directory.
    pub dir: PathBuf,
    /// Entry paths written, in archive order.
    pub files: Vec<String>,
    /// The verification that preceded it.
    pub verify: VerifyReport,
}

/// Verifies `archive` and extracts it into `dir` (which must not exist or be empty): entries go
/// to a temporary directory beside `dir`, renamed into place only when everything verified.
pub fn unpack(
    archive: &Path,
    dir: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackReport, ArchiveError> {
    let origin = archive.display().to_string();
    let mut a = Archive::open(archive, &opts.limits)?;
    let policy = if opts.skip_signatures {
        TrustPolicy::default()
    } else {
        opts.policy.clone()
    };
    let report = a.verify(&policy);
    let refuse = |summary: String, report: VerifyReport| ArchiveError::Verification {
        archive: origin.clone(),
        summary,
        report: Box::new(report),
    };
    if let Some(f) = report.first_failure() {
        let summary = format!("{} check failed: {}", f.name, f.detail);
        return Err(refuse(summary, report));
    }
    if !opts.skip_signatures && !report.signatures_passed() {
        return Err(refuse(
            "signatures not checked: no trusted key was given and unchecked signatures were not allowed".into(),
            report,
        ));
    }
    let io = |path: &Path, error: std::io::Error| ArchiveError::Io {
        path: path.display().to_string(),
        error,
    };
    if dir.exists() {
        let mut it = std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
        if it.next().is_some() {
            return Err(ArchiveError::TargetNotEmpty {
                path: dir.display().to_string(),
            });
        }
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
    let tmp = crate::fsutil::temp_dir_in(&parent).map_err(|e| io(&parent, e))?;
    // An existing (empty) target keeps its mode; a new one gets 0777 less the umask.
    if let Ok(meta) = std::fs::metadata(dir) {
        std::fs::set_permissions(tmp.path(), meta.permissions()).map_err(|e| io(dir, e))?;
    }
    let manifest = a.manifest()?;
    let mut files = Vec::new();
    let mut total = 0;
    for e in a.entries.clone() {
        let target = tmp.path().join(&e.path);
        if let Some(p) = target.parent() {
            std::fs::create_dir_all(p).map_err(|err| io(p, err))?;
        }
        let mut h = Sha256::new();
        crate::fsutil::write_atomic(&target, |w| {
            a.read_limited(&e, &mut total, |c| {
                h.update(c);
                w.write_all(c)
            })
            .map(|_| ())
        })?;
        let got = hex::encode(h.finalize());
        if let Some(want) = manifest.files.get(&e.path)
            && super::manifest::file_digest(&got) != *want
        {
            return Err(ArchiveError::Digest {
                archive: origin,
                entry: e.path.clone(),
                reason: format!("SHA-256 {got} changed while unpacking"),
            });
        }
        files.push(e.path.clone());
    }
    if dir.exists() {
        std::fs::remove_dir(dir).map_err(|e| io(dir, e))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        io(dir, e)
    })?;
    Ok(UnpackReport {
        dir: dir.to_path_buf(),
        files,
        verify: report,
    })
}

/// How to sign an existing archive.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignArchiveOptions {
    /// Limits for reading.
    pub limits: Limits,
}

/// What [`sign_archive`] did.
#[derive(Debug, Clone, Serialize)]
pub struct SignReport {
    /// The archive.
    pub archive: PathBuf,
    /// The key id that signed.
    pub key_id: String,
    /// Whether a previous signature by the same key was replaced.
    pub replaced: bool,
}

/// Adds `key`'s signature over the archive's manifest, rewriting the archive atomically; every
/// other entry is raw-copied (its bytes unchanged). The archive must pass the structure,
/// manifest and digest checks first.
pub fn sign_archive(
    path: &Path,
    key: &SigningKey,
    opts: &SignArchiveOptions,
) -> Result<SignReport, ArchiveError> {
    let origin = path.display().to_string();
    let mut a = Archive::open(path, &opts.limits)?;
    let report = a.verify(&TrustPolicy::default());
    if let Some(f) = report.first_failure() {
        return Err(ArchiveError::Verification {
            archive: origin,
            summary: format!("{} check failed: {}", f.name, f.detail),
            report: Box::new(report),
        });
    }
    let manifest = a.manifest()?;
    let manifest_bytes = a.manifest_bytes.clone().unwrap_or_default();
    let comment = trusted_comment(
        &manifest.package.name,
        &manifest.package.version,
        &manifest_bytes,
    );
    let text = key.sign(&manifest_bytes, &comment)?;
    let sig_path = format!("signatures/{}.minisig", key.key_id());
    let manifest_index = a.entry(MANIFEST_PATH).map_or(0, |e| e.index);
    let zerr = |e: zipio::ZipError| ArchiveError::Malformed {
        archive: origin.clone(),
        reason: e.to_string(),
    };
    let eopts = a.reader.entry_options(manifest_index, 6).map_err(zerr)?;
    let fresh = zipio::compress(&sig_path, text.as_bytes(), eopts).map_err(zerr)?;
    let mut slots: Vec<(String, Option<usize>)> = a
        .entries
        .iter()
        .filter(|e| e.path != sig_path)
        .map(|e| (e.path.clone(), Some(e.index)))
        .collect();
    let replaced = slots.len() != a.entries.len();
    slots.push((sig_path, None));
    slots.sort_by(|x, y| x.0.as_bytes().cmp(y.0.as_bytes()));
    let mut fresh = Some(fresh);
    let entries: Vec<(String, Source)> = slots
        .into_iter()
        .filter_map(|(p, idx)| match idx {
            Some(i) => Some((p, Source::Spooled(i))),
            None => fresh.take().map(|c| (p, Source::Fresh(c))),
        })
        .collect();
    crate::fsutil::write_atomic(path, |w| {
        zipio::write_sorted(&mut *w, a.reader.archive_mut(), entries)
            .map(|_| ())
            .map_err(|e| ArchiveError::Io {
                path: origin.clone(),
                error: std::io::Error::other(e.to_string()),
            })
    })?;
    Ok(SignReport {
        archive: path.to_path_buf(),
        key_id: key.key_id(),
        replaced,
    })
}

/// `n` with the singular or plural noun: `1 flow`, `2 flows`.
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{ArchiveWriter, FlowInput, ManifestParams, PackageKind, WriterOptions};

    fn packed(dir: &Path) -> PathBuf {
        let path = dir.join("a.flowpack");
        let created = time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
        let mut w = ArchiveWriter::create(&path, WriterOptions::new(created)).unwrap();
        for name in ["A", "B"] {
            let body = format!(
                r#"{{"metadata":{{"company_name":"Acme","flow_name":"{name}","exported_at":"2026-01-01T00:00:00Z"}},"flow":{{"name":"{name}","priority":1,"versions":[]}},"systems":[],"scripts":[],"dependencies":[],"pad":"{}"}}"#,
                "x".repeat(4000)
            );
            w.add_flow(FlowInput {
                bytes: body.into_bytes(),
                origin: name.into(),
                source_id: String::new(),
                name: None,
            })
            .unwrap();
        }
        w.finish(ManifestParams::for_tests(PackageKind::Backup), &[])
            .unwrap();
        path
    }

    #[test]
    fn entry_and_total_size_limits_are_measured_while_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = packed(dir.path());
        let mut a = Archive::open(&path, &Limits::default()).unwrap();
        assert!(a.verify(&TrustPolicy::default()).ok);
        let flows: Vec<String> = a.flows().unwrap().map(|f| f.unwrap().0.name).collect();
        assert_eq!(flows, ["A", "B"]);

        let small_entry = Limits {
            max_entry_size: 4000,
            ..Limits::default()
        };
        let r = verify_archive(&path, &small_entry, &TrustPolicy::default()).unwrap();
        let f = r.first_failure().unwrap();
        assert_eq!(f.name, "structure");
        assert!(
            f.detail.ends_with(
                "entry \"flows/a/export.json\": larger than the limit of 4000 bytes uncompressed"
            ),
            "{}",
            f.detail
        );
        let small_total = Limits {
            max_total_size: 6000,
            ..Limits::default()
        };
        let r = verify_archive(&path, &small_total, &TrustPolicy::default()).unwrap();
        let f = r.first_failure().unwrap();
        assert!(f.detail.contains("entry \"flows/b/export.json\": the archive's total uncompressed size passes the limit of 6000 bytes"), "{}", f.detail);
    }

    #[test]
    fn a_manifest_breaking_the_schema_fails_the_manifest_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.flowpack");
        let manifest: &[u8] = br#"{"format_version": 1, "package": {"name": "p", "version": "1.0.0", "kind": "nightly", "description": ""}}"#;
        std::fs::write(&path, zipio::zip_bytes(&[("flowpack.json", manifest)])).unwrap();
        let r = verify_archive(&path, &Limits::default(), &TrustPolicy::default()).unwrap();
        let f = r.first_failure().unwrap();
        assert_eq!(f.name, "manifest");
        assert!(
            f.detail.contains("does not match the manifest schema"),
            "{}",
            f.detail
        );
    }

    #[test]
    fn unsafe_paths_are_named() {
        for (name, want) in [
            (&b"../x"[..], "the path contains '..'"),
            (b"a/../../x", "the path contains '..'"),
            (b"/etc/passwd", "the path is absolute"),
            (b"C:/x", "the path starts with a drive letter"),
            (b"a\\b", "the name contains a backslash"),
            (b"a\0b", "the name contains NUL"),
            (b"\xff", "the name is not UTF-8"),
            (b"a//b", "the path has an empty or '.' component"),
        ] {
            assert_eq!(unsafe_path_reason(name), Some(want), "{name:?}");
        }
        assert_eq!(unsafe_path_reason(b"flows/a/export.json"), None);
    }
}
