//! Verification: the manifest parsed and checked, then the five checks in order (structure,
//! manifest, signatures, digests, unlisted), each a step of [`Archive::verify`], in a
//! [`VerifyReport`].

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::super::limits::Limits;
use super::super::manifest::{self, Manifest, Package};
use super::super::{ArchiveError, MANIFEST_PATH, entry_name};
use super::open::unsafe_path_reason;
use super::{Archive, Entry, TrustPolicy, is_signature_path, plural};
use crate::sign::{TrustedKey, signature_key_id, trusted_comment};

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

/// The SHA-256 of every entry's uncompressed bytes, in entry order (32 bytes per entry; an
/// entry is found by its path through the archive's index).
type Digests = Vec<[u8; 32]>;

impl Archive {
    /// The parsed manifest.
    pub fn manifest(&self) -> Result<Manifest, ArchiveError> {
        self.read_manifest(true).map(|(m, _)| m)
    }

    /// The parsed manifest, checked whole like [`manifest`](Archive::manifest) (every rule, its
    /// inputs' included), but with a version-3 manifest's `inputs` left empty instead of
    /// expanded once per flow using them: for readers that need the flows, files and package
    /// only (verify, unpack, diff, the flows), so that reading an archive of many flows does
    /// not cost its inputs many times over. Version-1 and -2 manifests keep their inputs.
    pub fn manifest_without_inputs(&self) -> Result<Manifest, ArchiveError> {
        self.read_manifest(false).map(|(m, _)| m)
    }

    /// The manifest read and checked; without `expand`, a version-3 manifest's inputs as
    /// written beside it (see [`manifest::read_manifest`]).
    pub(crate) fn read_manifest(
        &self,
        expand: bool,
    ) -> Result<(Manifest, Option<Vec<manifest::CompactInput>>), ArchiveError> {
        let bad = |reason: String| ArchiveError::Manifest {
            archive: self.origin.clone(),
            reason,
        };
        let bytes = self
            .manifest_bytes
            .as_deref()
            .ok_or_else(|| bad("missing".into()))?;
        self.limits
            .manifest_bound(self.flow_entries)
            .check(bytes)
            .map_err(|reason| bad(format!("refused before parsing: {reason}")))?;
        // Typed fields straight from the bytes (every schema rule checked on them): no
        // generic JSON value, whose tree would cost several times the manifest's size.
        let (m, compact) = manifest::read_manifest(bytes, expand).map_err(bad)?;
        semver::Version::parse(&m.package.version)
            .map_err(|e| bad(format!("package.version {:?}: {e}", m.package.version)))?;
        check_flow_records(&m).map_err(bad)?;
        let allowed = self.limits.entries_allowed(m.flows.len());
        if self.entries.len() > allowed {
            return Err(bad(format!(
                "the archive holds {} entries, more than the {allowed} its {} allow",
                self.entries.len(),
                plural(m.flows.len(), "flow", "flows")
            )));
        }
        Ok((m, compact))
    }

    /// Runs every check in order, cheapest and most fundamental first: structure (every entry read through the limits)
    /// → manifest parses → signatures against `policy` → every listed entry present with the
    /// right digest → no unlisted entry. Later checks are skipped once one fails.
    pub fn verify(&mut self, policy: &TrustPolicy) -> VerifyReport {
        self.verify_with(policy, false)
    }

    /// [`verify`](Archive::verify), except that the flow documents the manifest lists are not
    /// read: only their presence is checked (and their declared sizes counted in the archive's
    /// total). The caller reads every one of them afterwards with
    /// [`flow_bytes`](Archive::flow_bytes), which reads through the same limits and checks the
    /// listed SHA-256, and trusts nothing of the archive before all have passed. For a reader
    /// that reads every flow anyway (push's check pass): each document is decompressed once.
    pub fn verify_deferring_flows(&mut self, policy: &TrustPolicy) -> VerifyReport {
        self.verify_with(policy, true)
    }

    fn verify_with(&mut self, policy: &TrustPolicy, defer_flows: bool) -> VerifyReport {
        let mut report = VerifyReport::new(&self.origin);
        // The flow documents left to the caller (none when the manifest does not parse: its
        // check reports that).
        let mut deferred = vec![false; if defer_flows { self.entries.len() } else { 0 }];
        if let (true, Ok(m)) = (defer_flows, self.manifest_without_inputs()) {
            for f in &m.flows {
                if let Some(e) = self.entry(&f.path) {
                    deferred[e.index] = true;
                }
            }
        }
        let digests = match self.verify_structure(&deferred) {
            Ok((digests, detail)) => {
                report.push(CHECK_STRUCTURE, true, detail);
                digests
            }
            Err(detail) => return report.fail(CHECK_STRUCTURE, detail),
        };
        let manifest = match self.manifest_without_inputs() {
            Ok(m) => m,
            Err(e) => return report.fail(CHECK_MANIFEST, e.to_string()),
        };
        report.manifest_sha256 = self
            .entry(MANIFEST_PATH)
            .map(|e| hex::encode(digests[e.index]));
        report.package = Some(manifest.package.clone());
        report.push(CHECK_MANIFEST, true, manifest_detail(&manifest));
        match self.check_signatures(&manifest, policy, &mut report) {
            Ok(Some(detail)) => report.push(CHECK_SIGNATURES, true, detail),
            Ok(None) => {
                let detail = format!(
                    "no trusted keys given; {} not checked",
                    plural(self.signature_entries().count(), "signature", "signatures")
                );
                report.skip(CHECK_SIGNATURES, detail);
            }
            Err(detail) => return report.fail(CHECK_SIGNATURES, detail),
        }
        match self.verify_digests(&manifest, &digests, &deferred) {
            Ok(detail) => report.push(CHECK_DIGESTS, true, detail),
            Err(detail) => return report.fail(CHECK_DIGESTS, detail),
        }
        match self.verify_unlisted(&manifest) {
            Ok(detail) => report.push(CHECK_UNLISTED, true, detail),
            Err(detail) => report.push(CHECK_UNLISTED, false, detail),
        }
        report.ok = report
            .checks
            .iter()
            .all(|c| c.status != CheckStatus::Failed);
        report
    }

    /// Check 1, structure: every entry but the `deferred` ones (by position) read once through
    /// the limits, hashed on the way, on one thread per core (each with its own reader of the
    /// file). When the declared sizes sum within the archive's total, each entry is read
    /// against its own declared size (so the bytes read sum within it too); otherwise every
    /// entry is read in order with one running total, as a lie about a size is named where it
    /// is found. The first failure in archive order is the one reported.
    fn verify_structure(&mut self, deferred: &[bool]) -> Result<(Digests, String), String> {
        let count = self.entries.len();
        let max_total = self.limits.max_total_size;
        let sizes: Vec<u64> = self
            .entries
            .iter()
            .map(|e| {
                self.reader
                    .raw_entry(e.index)
                    .map_or(0, |r| r.declared_size)
            })
            .collect();
        let total = sizes.iter().fold(0u64, |t, s| t.saturating_add(*s));
        // Entries are in zip order: entry `e.index` is at `digests[e.index]`.
        let mut digests: Digests = vec![[0; 32]; count];
        if total > max_total {
            // Some size is a lie or the archive is too big: read in archive order with one
            // running total, so the entry at fault is the one named. One entry cloned at a
            // time (not the whole list: its paths grow with the flows).
            let mut measured = 0;
            for i in 0..count {
                let e = self.entries[i].clone();
                let mut h = Sha256::new();
                self.read_limited(&e, &mut measured, |c| {
                    h.update(c);
                    Ok(())
                })
                .map_err(|err| err.to_string())?;
                digests[e.index] = h.finalize().into();
            }
            return Ok((
                digests,
                format!("{count} entries, {measured} bytes uncompressed"),
            ));
        }
        let work: Vec<usize> = (0..count)
            .filter(|i| !deferred.get(*i).copied().unwrap_or(false))
            .collect();
        // One reader of the file per thread (an archive's clones read on their own); a thread
        // for every 8 entries at most.
        let jobs = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(work.len() / 8 + 1);
        let this = &*self;
        let read = crate::pool::try_map(
            &work,
            jobs,
            || this.clone(),
            |archive, _, &i| {
                let entry = archive.entries[i].clone();
                let mut h = Sha256::new();
                // Each entry within the total checked above: the running total is the entry's.
                archive
                    .read_limited(&entry, &mut 0, |c| {
                        h.update(c);
                        Ok(())
                    })
                    .map(|_| <[u8; 32]>::from(h.finalize()))
                    .map_err(|err| err.to_string())
            },
        )?;
        for (&i, digest) in work.iter().zip(read) {
            digests[self.entries[i].index] = digest;
        }
        let read_total: u64 = work.iter().map(|i| sizes[*i]).sum();
        let detail = if work.len() == count {
            format!("{count} entries, {read_total} bytes uncompressed")
        } else {
            format!(
                "{} entries, {read_total} bytes uncompressed; {} flow documents ({} bytes) \
                 checked as they are read",
                work.len(),
                count - work.len(),
                total - read_total
            )
        };
        Ok((digests, detail))
    }

    /// Check 4, digests: every entry the manifest lists is present with the listed SHA-256.
    fn verify_digests(
        &self,
        manifest: &Manifest,
        digests: &Digests,
        deferred: &[bool],
    ) -> Result<String, String> {
        for (path, want) in &manifest.files {
            let entry = entry_name(&self.origin, path);
            let Some(e) = self.entry(path) else {
                return Err(format!("{entry}: listed in the manifest but missing"));
            };
            if deferred.get(e.index).copied().unwrap_or(false) {
                // Present: its digest is the reader's to check as it reads it.
                continue;
            }
            let Some(got) = digests.get(e.index) else {
                return Err(format!("{entry}: listed in the manifest but missing"));
            };
            let got = hex::encode(got);
            if manifest::file_digest(&got) != *want {
                return Err(format!(
                    "{entry}: SHA-256 {got} does not match the manifest's {want}"
                ));
            }
        }
        Ok(format!("{} listed entries match", manifest.files.len()))
    }

    /// Check 5, unlisted: no entry besides the manifest, the signatures and the listed ones.
    fn verify_unlisted(&self, manifest: &Manifest) -> Result<String, String> {
        let unlisted: Vec<&str> = self
            .entries
            .iter()
            .map(|e| e.path.as_str())
            .filter(|p| {
                *p != MANIFEST_PATH && !manifest.files.contains_key(*p) && !is_signature_path(p)
            })
            .collect();
        match unlisted.first() {
            Some(first) => Err(format!(
                "{}: not listed in the manifest ({} unlisted)",
                entry_name(&self.origin, first),
                unlisted.len()
            )),
            None => Ok("no unlisted entries".into()),
        }
    }

    fn signature_entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| is_signature_path(&e.path))
    }

    /// Check 3, signatures: `Ok(Some(detail))` passed, `Ok(None)` not checked, `Err(detail)`
    /// failed. Every signature entry is listed in `report.signatures` (trusted, untrusted or
    /// invalid), whether the policy checks signatures or not; the trusted signers and the
    /// untrusted key ids go to `report.signers` and `report.untrusted_signers`, and a failure's
    /// cause to `report.signature_failure`.
    fn check_signatures(
        &mut self,
        manifest: &Manifest,
        policy: &TrustPolicy,
        report: &mut VerifyReport,
    ) -> Result<Option<String>, String> {
        // The manifest's bytes lent out while the signature entries are read (not copied: they
        // grow with the flows), and put back whatever the outcome.
        let taken = self.manifest_bytes.take();
        let result = self.check_signatures_over(
            taken.as_deref().unwrap_or_default(),
            manifest,
            policy,
            report,
        );
        self.manifest_bytes = taken;
        result
    }

    /// [`check_signatures`](Archive::check_signatures) over the manifest's `manifest_bytes`.
    fn check_signatures_over(
        &mut self,
        manifest_bytes: &[u8],
        manifest: &Manifest,
        policy: &TrustPolicy,
        report: &mut VerifyReport,
    ) -> Result<Option<String>, String> {
        let checking = !(policy.keys.is_empty() && policy.threshold == 0);
        let expected_comment = trusted_comment(
            &manifest.package.name,
            &manifest.package.version,
            manifest_bytes,
        );
        let mut good: BTreeSet<String> = BTreeSet::new();
        let sig_entries: Vec<Entry> = self.signature_entries().cloned().collect();
        let mut total = 0;
        for e in &sig_entries {
            let bytes = self.read_all(e, &mut total).map_err(|e| e.to_string())?;
            let sig = check_signature_entry(
                &self.origin,
                &e.path,
                bytes,
                manifest_bytes,
                &expected_comment,
                policy,
            );
            match sig.status {
                SignatureStatus::Trusted => {
                    good.insert(sig.key_id.clone());
                }
                SignatureStatus::Untrusted => report.untrusted_signers.push(sig.key_id.clone()),
                SignatureStatus::Invalid => {}
            }
            report.signatures.push(sig);
        }
        // Trusted first, then untrusted, then invalid; archive order within each.
        report.signatures.sort_by_key(|s| s.status);
        report.signers = good.iter().cloned().collect();
        if !checking {
            return Ok(None);
        }
        if let Some(bad) = report
            .signatures
            .iter()
            .find(|s| s.status == SignatureStatus::Invalid)
        {
            report.signature_failure = Some(SignatureFailure::Invalid {
                key_id: bad.key_id.clone(),
            });
            return Err(bad.detail.clone());
        }
        threshold_detail(&good, policy, report).map(Some)
    }
}

/// Every flow record's path is safe and listed in `files` with its digest; its settings, when
/// it has them, sit beside it and are listed too.
fn check_flow_records(m: &Manifest) -> Result<(), String> {
    for f in &m.flows {
        if unsafe_path_reason(f.path.as_bytes()).is_some() {
            return Err(format!("flows: unsafe path {:?}", f.path));
        }
        if m.files.get(&f.path) != Some(&manifest::file_digest(&f.sha256)) {
            return Err(format!(
                "flows: {:?} is not listed in files with the same digest",
                f.path
            ));
        }
        let Some(s) = &f.settings else {
            continue;
        };
        let beside = f
            .path
            .strip_suffix("export.json")
            .map(|dir| format!("{dir}flow.json"));
        if Some(s.path.as_str()) != beside.as_deref() {
            return Err(format!(
                "flows: settings {:?} of {:?} is not beside it",
                s.path, f.path
            ));
        }
        if m.files.get(&s.path) != Some(&manifest::file_digest(&s.sha256)) {
            return Err(format!(
                "flows: settings {:?} is not listed in files with the same digest",
                s.path
            ));
        }
    }
    Ok(())
}

/// The manifest check's detail: `name@version (kind), N flows`.
fn manifest_detail(manifest: &Manifest) -> String {
    format!(
        "{}@{} ({}), {}",
        manifest.package.name,
        manifest.package.version,
        manifest.package.kind.as_str(),
        plural(manifest.flows.len(), "flow", "flows")
    )
}

/// One `signatures/<key-id>.minisig` entry: a minisign signature by the key its name says; by
/// a trusted key, it verifies over the manifest's exact bytes and carries `expected_comment`.
/// A signature by a key outside the policy is not checked (it is `untrusted`).
fn check_signature_entry(
    origin: &str,
    path: &str,
    bytes: Vec<u8>,
    manifest_bytes: &[u8],
    expected_comment: &str,
    policy: &TrustPolicy,
) -> SignatureCheck {
    let entry = entry_name(origin, path);
    let named = path
        .trim_start_matches("signatures/")
        .trim_end_matches(".minisig")
        .to_string();
    let result = |key_id: String, status: SignatureStatus, detail: String| SignatureCheck {
        entry: path.to_string(),
        key_id,
        status,
        detail,
    };
    let Some(text) = String::from_utf8(bytes).ok() else {
        return result(
            named,
            SignatureStatus::Invalid,
            format!("{entry}: not a minisign signature"),
        );
    };
    let Some(id) = signature_key_id(&text) else {
        return result(
            named,
            SignatureStatus::Invalid,
            format!("{entry}: not a minisign signature"),
        );
    };
    if id != named {
        return result(
            named.clone(),
            SignatureStatus::Invalid,
            format!("{entry}: the signature is by key {id}, not {named}"),
        );
    }
    let Some(key) = policy.keys.iter().find(|k| k.key_id() == id) else {
        return result(
            id.clone(),
            SignatureStatus::Untrusted,
            format!("by key {id}, which is not trusted (not checked)"),
        );
    };
    match key.verify(manifest_bytes, &text) {
        Err(err) => result(
            id.clone(),
            SignatureStatus::Invalid,
            format!("{entry}: signature by trusted key {id} does not match flowpack.json ({err})"),
        ),
        Ok(comment) if comment != expected_comment => result(
            id,
            SignatureStatus::Invalid,
            format!("{entry}: the trusted comment {comment:?} does not name this manifest"),
        ),
        Ok(_) => result(
            id.clone(),
            SignatureStatus::Trusted,
            format!("by trusted key {id}, verified"),
        ),
    }
}

/// The signatures check's outcome once no entry was invalid: enough distinct trusted signers
/// for the policy's threshold (at least one), or why not — unsigned, signed by untrusted keys
/// only, or short of the threshold — recorded in `report.signature_failure`.
fn threshold_detail(
    good: &BTreeSet<String>,
    policy: &TrustPolicy,
    report: &mut VerifyReport,
) -> Result<String, String> {
    let need = policy.threshold.max(1);
    let trusted = || {
        policy
            .keys
            .iter()
            .map(TrustedKey::key_id)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let required = format!(
        "{} required (trusted keys: {})",
        plural(need, "trusted signature", "trusted signatures"),
        trusted()
    );
    if good.len() >= need {
        return Ok(format!(
            "{} ({}), {need} required",
            plural(good.len(), "trusted signature", "trusted signatures"),
            report.signers.join(", ")
        ));
    }
    let untrusted = report.untrusted_signers.clone();
    let (failure, detail) = if report.signatures.is_empty() {
        (
            SignatureFailure::Unsigned,
            format!("the archive is not signed; {required}"),
        )
    } else if good.is_empty() {
        (
            SignatureFailure::Untrusted {
                key_ids: untrusted.clone(),
            },
            format!(
                "signed only by {} {}, not trusted; {required}",
                if untrusted.len() == 1 { "key" } else { "keys" },
                untrusted.join(", ")
            ),
        )
    } else {
        let also = if untrusted.is_empty() {
            String::new()
        } else {
            format!(
                "; also signed by untrusted {} {}",
                if untrusted.len() == 1 { "key" } else { "keys" },
                untrusted.join(", ")
            )
        };
        (
            SignatureFailure::Short {
                have: good.len(),
                need,
            },
            format!(
                "{} ({}), {need} required: {} short (trusted keys: {}){also}",
                plural(good.len(), "trusted signature", "trusted signatures"),
                report.signers.join(", "),
                need - good.len(),
                trusted()
            ),
        )
    };
    report.signature_failure = Some(failure);
    Err(detail)
}

/// How one signature entry fared against the trust policy (ordered as reports list them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureStatus {
    /// By a trusted key; it verifies over this manifest.
    Trusted,
    /// By a key outside the trust policy: not checked, counts for nothing.
    Untrusted,
    /// Not a valid signature of this manifest (by a trusted key that does not verify, or not a
    /// minisign signature by the key its name says).
    Invalid,
}

/// One signature entry of the archive.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureCheck {
    /// The entry, `signatures/<key-id>.minisig`.
    pub entry: String,
    /// The key id (from the signature; from the entry's name when the signature is unreadable).
    pub key_id: String,
    /// Trusted, untrusted or invalid.
    pub status: SignatureStatus,
    /// What was found.
    pub detail: String,
}

/// Why the signatures check failed, for a caller to say what fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "cause", rename_all = "lowercase")]
#[non_exhaustive]
pub enum SignatureFailure {
    /// The archive carries no signature at all.
    Unsigned,
    /// Signed, but only by keys outside the trust policy.
    Untrusted {
        /// The signing keys' ids.
        key_ids: Vec<String>,
    },
    /// A signature that does not verify (the first one found).
    Invalid {
        /// Its key id.
        key_id: String,
    },
    /// Fewer distinct trusted signers than the threshold.
    Short {
        /// Trusted signatures that verified.
        have: usize,
        /// The threshold.
        need: usize,
    },
}

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
    /// Every signature entry with its status: trusted, then untrusted, then invalid (archive
    /// order within each).
    pub signatures: Vec<SignatureCheck>,
    /// Why the signatures check failed, when it did for a reason of the signatures themselves.
    pub signature_failure: Option<SignatureFailure>,
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
            signatures: Vec::new(),
            signature_failure: None,
        }
    }

    /// A report for an archive that could not be opened safely: structure failed.
    pub fn structure_failed(archive: &str, err: &ArchiveError) -> VerifyReport {
        VerifyReport::new(archive).fail(CHECK_STRUCTURE, err.to_string())
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

    /// Records `name` as not run, saying why.
    fn skip(&mut self, name: &'static str, detail: String) {
        self.checks.push(Check {
            name,
            status: CheckStatus::Skipped,
            detail,
        });
    }

    /// Records `name` as failed and every later check as not run.
    fn fail(mut self, name: &'static str, detail: String) -> VerifyReport {
        self.push(name, false, detail);
        for name in CHECKS.iter().skip(self.checks.len()) {
            self.skip(name, "not run: an earlier check failed".into());
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::archive::zipio;
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
                "a.flowpack!flows/a/export.json: larger than the limit of 4000 bytes uncompressed"
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
        assert!(f.detail.contains("a.flowpack!flows/b/export.json: the archive's total uncompressed size passes the limit of 6000 bytes"), "{}", f.detail);
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
}
