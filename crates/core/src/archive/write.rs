//! Packing: a streaming [`ArchiveWriter`] with parallel compression and bounded memory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::budget::ParseBudget;
use crate::document::DocumentBound;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::manifest::{
    BackupRecord, FlowRecord, Input, InputKind, MANIFEST_FORMAT_VERSION, Manifest, Package,
    PackageKind, Requires, SettingsRecord, SourceInfo, file_digest,
};
use super::settings::{FLOW_SETTINGS_FILE, FlowSettings};
use super::zipio::{self, Compressed, EntryOptions, Source, Spool};
use super::{ArchiveError, MANIFEST_PATH};
use crate::document::{Document, to_bytes_like};
use crate::secrets::{SecretKind, SecretRules, find_secrets};
use crate::sign::{SigningKey, trusted_comment};

/// How to pack.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WriterOptions {
    /// The archive's `created_at` and every entry's timestamp (from `SOURCE_DATE_EPOCH` or the
    /// caller's clock; the library never reads the clock).
    pub created_at: time::OffsetDateTime,
    /// Deflate level, 0-9 (default 6).
    pub compression_level: u32,
    /// Compression worker threads (at least 1).
    pub threads: usize,
    /// Keep secret values instead of stripping them (they are still listed as inputs).
    pub allow_secrets: bool,
    /// Which keys are credentials.
    pub secret_rules: SecretRules,
    /// Validate each document (on the worker); error findings other than FP0801 (secret values,
    /// which packing strips) fail the pack, all listed in [`ArchiveError::Invalid`].
    pub validate: bool,
    /// Replace an existing output (atomically; a symlink is replaced, not written through).
    /// Without it an output that exists is refused when the writer is created, and nothing
    /// that appeared meanwhile is replaced when the archive is put in place.
    pub replace: bool,
    /// The parse budget the workers parse within (default: one of their own). A caller that
    /// parses large documents itself while feeding the writer (an export from an embedded
    /// store) shares it, so its parses and the workers' never add up past one budget.
    pub budget: Option<Arc<ParseBudget>>,
}

impl WriterOptions {
    /// Defaults: level 6, one thread per available core, secrets stripped.
    pub fn new(created_at: time::OffsetDateTime) -> WriterOptions {
        WriterOptions {
            created_at,
            compression_level: 6,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            allow_secrets: false,
            secret_rules: SecretRules::default(),
            validate: true,
            replace: true,
            budget: None,
        }
    }
}

/// One export document to pack.
#[derive(Debug, Clone)]
pub struct FlowInput {
    /// The document's bytes as exported.
    pub bytes: Vec<u8>,
    /// Where it came from (a file path, `flow 42`), for error messages.
    pub origin: String,
    /// The flow's id in the source environment (empty when unknown).
    pub source_id: String,
    /// The flow's name; `None` takes it from the document.
    pub name: Option<String>,
}

/// The manifest fields the caller decides ([`ManifestParams::new`], then set the rest).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ManifestParams {
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: semver::Version,
    /// Package kind.
    pub kind: PackageKind,
    /// Free text.
    pub description: String,
    /// Written as `generator`, e.g. `flowpack 0.1.0`.
    pub generator: String,
    /// Where the flows came from; an empty `company` is filled from the documents when they
    /// all name the same one.
    pub source: SourceInfo,
    /// The backup record of an environment's backup (manifest `backup`), if it is one.
    pub backup: Option<BackupRecord>,
    /// Inputs an earlier packing made required (secrets it stripped): an input the documents
    /// still have is listed as required again, though its value is empty by now. Repacking an
    /// unpacked archive passes its manifest's inputs.
    pub required_inputs: Vec<Input>,
}

impl ManifestParams {
    /// Parameters for package `name@version` of `kind`: no description, generator
    /// `flowpack-core <version of this crate>`, source unknown.
    pub fn new(name: &str, version: semver::Version, kind: PackageKind) -> ManifestParams {
        ManifestParams {
            name: name.to_string(),
            version,
            kind,
            description: String::new(),
            generator: format!("flowpack-core {}", env!("CARGO_PKG_VERSION")),
            source: SourceInfo::default(),
            backup: None,
            required_inputs: Vec::new(),
        }
    }

    /// Parameters for tests: `p@1.0.0` of `kind`, by `test`.
    #[cfg(test)]
    pub(crate) fn for_tests(kind: PackageKind) -> ManifestParams {
        ManifestParams {
            generator: "test".into(),
            ..ManifestParams::new("p", semver::Version::new(1, 0, 0), kind)
        }
    }
}

/// What a pack produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PackReport {
    /// The archive written.
    pub path: PathBuf,
    /// The manifest written into it.
    pub manifest: Manifest,
    /// SHA-256 (hex) of `flowpack.json`'s bytes.
    pub manifest_sha256: String,
    /// Key ids that signed it.
    pub signatures: Vec<String>,
    /// How many secret values were stripped.
    pub secrets_stripped: usize,
}

struct Job {
    seq: u64,
    input: FlowInput,
    settings: Option<FlowSettings>,
}

/// A flow's settings entry, hashed and compressed on a worker.
struct PackedSettings {
    sha256: String,
    size: u64,
}

struct Packed {
    seq: u64,
    name: String,
    source_id: String,
    slug: String,
    export_format: u32,
    steps: u64,
    sha256: [u8; 32],
    size: u64,
    company: Option<String>,
    /// What this one document requires (`marketplace::requires`, the one definition of what a
    /// document requires; the manifest's `requires` is the union over the flows).
    requires: Requires,
    inputs: Vec<Input>,
    stripped: usize,
    settings: Option<PackedSettings>,
}

/// What the writer keeps of one packed flow until `finish`: its record's facts, its inputs as
/// indexes into the [`Collected`] table of distinct inputs, and the spool indices of its export
/// document and settings entries. What a flow requires and its company are folded into the
/// collection's sets as it arrives, so the flow keeps no copy of them.
struct Spooled {
    seq: u64,
    name: String,
    source_id: String,
    slug: String,
    export_format: u32,
    steps: u64,
    sha256: [u8; 32],
    size: u64,
    stripped: usize,
    settings: Option<(PackedSettings, usize)>,
    inputs: Box<[u32]>,
    document: usize,
}

/// What the collector gathered: the spool, the flows in arrival order, and what is shared
/// between them (distinct inputs, the union of what they require, their companies).
struct Collected {
    spool: Spool,
    packed: Vec<Spooled>,
    /// Every distinct input (its `flow` left empty: each flow names it by index).
    inputs: Vec<Input>,
    requires: RequiresUnion,
    companies: BTreeSet<String>,
}

/// The union of what the flows require.
#[derive(Default)]
struct RequiresUnion {
    export_format: u32,
    systems: BTreeSet<super::manifest::RequiredSystem>,
    scripts: BTreeSet<super::manifest::RequiredScript>,
    dependencies: BTreeSet<super::manifest::RequiredDependency>,
}

impl RequiresUnion {
    fn add(&mut self, r: Requires) {
        self.export_format = self.export_format.max(r.export_format);
        self.systems.extend(r.systems);
        self.scripts.extend(r.scripts);
        self.dependencies.extend(r.dependencies);
    }
}

/// Distinct inputs, each kept once whatever the number of flows using it.
#[derive(Default)]
struct InputTable {
    inputs: Vec<Input>,
    index: BTreeMap<InputId, u32>,
}

/// An input's identity without its flow: kind, name, system, auth, key, webhook, required.
type InputId = (
    InputKind,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<u32>,
    bool,
);

impl InputTable {
    /// The index of `input` (its flow ignored), added when new.
    fn intern(&mut self, input: Input) -> u32 {
        let Input {
            flow: _,
            kind,
            name,
            system,
            auth,
            key,
            webhook,
            required,
        } = input;
        let id = (kind, name, system, auth, key, webhook, required);
        if let Some(&at) = self.index.get(&id) {
            return at;
        }
        let at = u32::try_from(self.inputs.len()).unwrap_or(u32::MAX);
        let (kind, name, system, auth, key, webhook, required) = id.clone();
        self.inputs.push(Input {
            flow: String::new(),
            kind,
            name,
            system,
            auth,
            key,
            webhook,
            required,
        });
        self.index.insert(id, at);
        at
    }
}

/// What a worker hands the collector: the flow, its compressed document and settings.
type WorkerResult = Result<(Packed, Compressed, Option<Compressed>), ArchiveError>;

/// A streaming archive writer: [`add_flow`](ArchiveWriter::add_flow) hands each document to a
/// pool of worker threads (parse, strip secrets, hash, compress) and returns at once unless the
/// bounded queue is full; a collector spools compressed entries to an anonymous temporary file;
/// [`finish`](ArchiveWriter::finish) writes the manifest, signatures and the sorted entries to
/// the output atomically. Memory is bounded by the few documents in flight.
pub struct ArchiveWriter {
    out: PathBuf,
    opts: WriterOptions,
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    collector: Option<JoinHandle<Result<Collected, ArchiveError>>>,
    next_seq: Arc<AtomicU64>,
}

/// A cloneable handle that feeds documents to an [`ArchiveWriter`] from other threads (e.g. the
/// workers of an export). Every `FlowSender` must be dropped before
/// [`ArchiveWriter::finish`], which waits for the queue to close.
#[derive(Clone)]
pub struct FlowSender {
    tx: SyncSender<Job>,
    next_seq: Arc<AtomicU64>,
}

impl FlowSender {
    /// Queues one document; blocks while the workers are saturated.
    pub fn send(&self, input: FlowInput) -> Result<(), ArchiveError> {
        self.queue(input, None)
    }

    /// Queues one document with its settings, written as `flows/<slug>/flow.json` beside its
    /// `export.json`, listed in `files` and referenced from the flow's `settings`; each webhook
    /// with an HMAC secret key becomes a required input of kind `webhook_secret`.
    pub fn send_with_settings(
        &self,
        input: FlowInput,
        settings: FlowSettings,
    ) -> Result<(), ArchiveError> {
        self.queue(input, Some(settings))
    }

    fn queue(&self, input: FlowInput, settings: Option<FlowSettings>) -> Result<(), ArchiveError> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        self.tx
            .send(Job {
                seq,
                input,
                settings,
            })
            .map_err(|_| ArchiveError::Worker)
    }
}

fn entry_options(opts: &WriterOptions) -> EntryOptions {
    let t = opts.created_at.to_offset(time::UtcOffset::UTC);
    EntryOptions {
        level: opts.compression_level,
        mtime: (
            u16::try_from(t.year()).unwrap_or(1980),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
        ),
    }
}

impl ArchiveWriter {
    /// Starts an archive to be written at `out` (nothing appears there before `finish`). An
    /// existing `out` is refused here unless [`WriterOptions::replace`].
    pub fn create(out: &Path, opts: WriterOptions) -> Result<ArchiveWriter, ArchiveError> {
        crate::fsutil::refuse_existing(out, opts.replace)?;
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let spool_file = tempfile::tempfile_in(&dir).map_err(|error| ArchiveError::Io {
            path: dir.display().to_string(),
            error,
        })?;
        let threads = opts.threads.max(1);
        let (job_tx, job_rx) = sync_channel::<Job>(threads);
        let (res_tx, res_rx) = sync_channel::<WorkerResult>(threads);
        // The workers parse within one budget: documents near the per-document bound are
        // parsed one at a time, however many workers there are.
        let budget = opts.budget.clone().unwrap_or_default();
        let wopts = opts.clone();
        // The one worker pool, fed by the job queue until every sender is dropped.
        let workers = vec![std::thread::spawn(move || {
            crate::pool::stream(
                job_rx.into_iter(),
                threads,
                |job| pack_one(job, &wopts, &budget),
                |r| match res_tx.send(r) {
                    Ok(()) => std::ops::ControlFlow::Continue(()),
                    Err(_) => std::ops::ControlFlow::Break(()),
                },
            )
        })];
        let collector = std::thread::spawn(move || collect(res_rx, Spool::new(spool_file)));
        Ok(ArchiveWriter {
            out: out.to_path_buf(),
            opts,
            jobs: Some(job_tx),
            workers,
            collector: Some(collector),
            next_seq: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Queues one document; blocks while the workers are saturated. Errors about the document
    /// itself (not JSON, …) are returned by [`finish`](ArchiveWriter::finish).
    pub fn add_flow(&mut self, input: FlowInput) -> Result<(), ArchiveError> {
        self.sender()?.send(input)
    }

    /// Queues one document with its settings (see [`FlowSender::send_with_settings`]).
    pub fn add_flow_with_settings(
        &mut self,
        input: FlowInput,
        settings: FlowSettings,
    ) -> Result<(), ArchiveError> {
        self.sender()?.send_with_settings(input, settings)
    }

    /// A handle to add documents from other threads (drop every one before `finish`).
    pub(crate) fn sender(&self) -> Result<FlowSender, ArchiveError> {
        Ok(FlowSender {
            tx: self.jobs.clone().ok_or(ArchiveError::Worker)?,
            next_seq: Arc::clone(&self.next_seq),
        })
    }

    /// Waits for the workers, writes the manifest, signs it with each of `signers`, and writes
    /// the archive atomically in path order. Before the archive is renamed into place the
    /// writer checks it as a reader will (the zip's directory and the manifest read back, the
    /// flows' digests reused from writing); an archive that fails never
    /// appears at the output.
    pub fn finish(
        self,
        params: ManifestParams,
        signers: &[SigningKey],
    ) -> Result<PackReport, ArchiveError> {
        self.finish_checked(params, signers, |_| Ok(()))
    }

    /// [`finish`](ArchiveWriter::finish), and `check` runs on the finished archive (a temporary
    /// file beside the output) after the writer's own check and before the rename: an error
    /// from it leaves nothing at the output.
    pub fn finish_checked(
        mut self,
        params: ManifestParams,
        signers: &[SigningKey],
        check: impl FnOnce(&Path) -> Result<(), ArchiveError>,
    ) -> Result<PackReport, ArchiveError> {
        drop(self.jobs.take());
        for w in self.workers.drain(..) {
            w.join().map_err(|_| ArchiveError::Worker)?;
        }
        let collected = self
            .collector
            .take()
            .ok_or(ArchiveError::Worker)?
            .join()
            .map_err(|_| ArchiveError::Worker)??;
        if params.name.trim().is_empty() {
            return Err(ArchiveError::Params("the package name is empty".into()));
        }
        let Collected {
            spool,
            packed,
            inputs,
            requires,
            companies,
        } = collected;
        let placed = place(packed);
        let shared = Shared {
            inputs: &inputs,
            requires,
            companies,
        };
        let (manifest, compact) = build_manifest(&self.opts, &params, &placed, shared)?;
        let manifest_bytes =
            super::manifest::manifest_bytes(&manifest, &compact).map_err(ArchiveError::Params)?;
        // The reader's limits, checked here: an archive the writer finishes, every reader
        // accepts (the manifest by its own bound, which grows with the flows).
        let limits = super::Limits::default();
        let over = |reason: String| ArchiveError::Limit {
            archive: self.out.display().to_string(),
            reason,
        };
        limits
            .manifest_bound_written(manifest.flows.len())
            .measure(&manifest_bytes)
            .map_err(|reason| {
                over(format!(
                    "the manifest ({} bytes for {}) would pass its bound: {reason}; nothing was \
                     written",
                    manifest_bytes.len(),
                    super::plural(manifest.flows.len(), "flow", "flows")
                ))
            })?;
        let manifest_sha256 = hex::encode(Sha256::digest(&manifest_bytes));
        let eopts = entry_options(&self.opts);
        let zerr = |e: zipio::ZipError| ArchiveError::Io {
            path: self.out.display().to_string(),
            error: std::io::Error::other(e.to_string()),
        };
        let manifest_entry =
            zipio::compress(MANIFEST_PATH, &manifest_bytes, eopts).map_err(zerr)?;
        let comment = trusted_comment(&params.name, &params.version.to_string(), &manifest_bytes);
        let mut sigs = BTreeMap::new();
        for key in signers {
            sigs.insert(key.key_id(), key.sign(&manifest_bytes, &comment)?);
        }
        let mut entries = vec![(MANIFEST_PATH.to_string(), Source::Fresh(manifest_entry))];
        entries.extend(flow_entries(&placed));
        for (id, text) in &sigs {
            let name = format!("signatures/{id}.minisig");
            let c = zipio::compress(&name, text.as_bytes(), eopts).map_err(zerr)?;
            entries.push((name, Source::Fresh(c)));
        }
        let allowed = limits.entries_allowed(manifest.flows.len());
        if entries.len() > allowed {
            return Err(over(format!(
                "{} entries, more than the limit of {allowed} for {}; nothing was written",
                entries.len(),
                super::plural(manifest.flows.len(), "flow", "flows")
            )));
        }
        let mut spool = spool.into_reader().map_err(zerr)?;
        let out = self.out.clone();
        crate::fsutil::write_checked(
            &out,
            self.opts.replace,
            |w| {
                zipio::write_sorted(&mut *w, &mut spool, entries)
                    .map(|_| ())
                    .map_err(|e| ArchiveError::Io {
                        path: out.display().to_string(),
                        error: std::io::Error::other(e.to_string()),
                    })
            },
            |tmp| {
                check_written(tmp, &out, (&manifest, &compact), &manifest_sha256)?;
                check(tmp)
            },
        )?;
        let secrets_stripped = placed.iter().map(|(_, s)| s.stripped).sum();
        Ok(PackReport {
            path: self.out.clone(),
            manifest,
            manifest_sha256,
            signatures: sigs.into_keys().collect(),
            secrets_stripped,
        })
    }
}

/// The writer's own check of the archive it wrote at `tmp` (to be renamed to `out`), before
/// the rename: the zip's layout and central directory are read back as every reader opens
/// them (entry names, types, count), the manifest is read and parsed as readers parse it (its
/// bound, schema and records), its bytes must be those written, and every entry it lists must
/// be there. The flows' digests were computed while writing and are not read again.
fn check_written(
    tmp: &Path,
    out: &Path,
    (written, compact): (&Manifest, &[super::manifest::CompactInput]),
    manifest_sha256: &str,
) -> Result<(), ArchiveError> {
    let shown = out.display().to_string();
    let failed = |reason: String| ArchiveError::SelfCheck {
        archive: shown.clone(),
        reason,
    };
    let tmp_shown = tmp.display().to_string();
    let reword = |e: ArchiveError| failed(e.to_string().replace(&tmp_shown, &shown));
    let archive = super::Archive::open(tmp, &super::Limits::default()).map_err(reword)?;
    let bytes = archive
        .manifest_bytes()
        .ok_or_else(|| failed("the manifest is missing".into()))?;
    if hex::encode(Sha256::digest(bytes)) != manifest_sha256 {
        return Err(failed(
            "the manifest read back differs from the one written".into(),
        ));
    }
    // Read as readers read it, its inputs left as written (one entry per distinct input):
    // compared with the written entries they expand from, and everything else field by field,
    // so the check holds no second copy of the inputs expanded per flow.
    let (read, read_compact) = archive.read_manifest(false).map_err(reword)?;
    let Manifest {
        format_version,
        package,
        created_at,
        generator,
        source,
        flows,
        files,
        requires,
        inputs: _,
        backup,
    } = written;
    let same = read.format_version == *format_version
        && read.package == *package
        && read.created_at == *created_at
        && read.generator == *generator
        && read.source == *source
        && read.flows == *flows
        && read.files == *files
        && read.requires == *requires
        && read.backup == *backup
        && read_compact.as_deref() == Some(compact);
    if !same {
        return Err(failed(
            "the manifest read back differs from the one written".into(),
        ));
    }
    let present: BTreeSet<&str> = archive.entry_paths().collect();
    if let Some(missing) = read.files.keys().find(|p| !present.contains(p.as_str())) {
        return Err(failed(format!("{missing} is listed but missing")));
    }
    Ok(())
}

/// The packed flows in a stable order (slug, name, source id, digest, arrival), each under its
/// directory `flows/<slug>/`: the first of a slug keeps it bare, later ones get `-2`, `-3`, …;
/// sorted by the directory's bytes.
fn place(mut packed: Vec<Spooled>) -> Vec<(String, Spooled)> {
    packed.sort_by(|a, b| {
        (&a.slug, &a.name, &a.source_id, &a.sha256, a.seq).cmp(&(
            &b.slug,
            &b.name,
            &b.source_id,
            &b.sha256,
            b.seq,
        ))
    });
    let mut used = BTreeSet::new();
    let mut placed = Vec::with_capacity(packed.len());
    for spooled in packed {
        let mut slug = spooled.slug.clone();
        let mut n = 1;
        while !used.insert(slug.clone()) {
            n += 1;
            slug = format!("{}-{n}", spooled.slug);
        }
        placed.push((format!("flows/{slug}/"), spooled));
    }
    placed.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    placed
}

/// The flows' entries (`export.json`, and `flow.json` when there is one), copied from the
/// spool, in byte order of their paths ("flows/a-2/…" sorts before "flows/a/…").
fn flow_entries(placed: &[(String, Spooled)]) -> Vec<(String, Source)> {
    let mut entries = Vec::new();
    for (dir, spooled) in placed {
        entries.push((format!("{dir}export.json"), spooled.document));
        if let Some((_, index)) = spooled.settings {
            entries.push((format!("{dir}{FLOW_SETTINGS_FILE}"), index));
        }
    }
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    entries
        .into_iter()
        .map(|(path, index)| (path, Source::Spooled(index)))
        .collect()
}

impl Drop for ArchiveWriter {
    fn drop(&mut self) {
        drop(self.jobs.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if let Some(c) = self.collector.take() {
            let _ = c.join();
        }
    }
}

/// What the flows share, gathered by the collector: distinct inputs, the union of what they
/// require, their companies.
struct Shared<'a> {
    inputs: &'a [Input],
    requires: RequiresUnion,
    companies: BTreeSet<String>,
}

fn build_manifest(
    opts: &WriterOptions,
    params: &ManifestParams,
    placed: &[(String, Spooled)],
    shared: Shared<'_>,
) -> Result<(Manifest, Vec<super::manifest::CompactInput>), ArchiveError> {
    let created_at = opts
        .created_at
        .to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| ArchiveError::Params(format!("created_at: {e}")))?;
    let mut flows = Vec::with_capacity(placed.len());
    let mut files = BTreeMap::new();
    for (dir, p) in placed {
        let path = format!("{dir}export.json");
        let sha256 = hex::encode(p.sha256);
        let settings = p.settings.as_ref().map(|(s, _)| SettingsRecord {
            path: format!("{dir}{FLOW_SETTINGS_FILE}"),
            sha256: s.sha256.clone(),
            size: s.size,
        });
        if let Some(s) = &settings {
            files.insert(s.path.clone(), file_digest(&s.sha256));
        }
        files.insert(path.clone(), file_digest(&sha256));
        flows.push(FlowRecord {
            path,
            name: p.name.clone(),
            source_id: p.source_id.clone(),
            export_format: p.export_format,
            steps: p.steps,
            sha256,
            size: p.size,
            settings,
        });
    }
    // Written once per distinct input with its flows' indexes; the model's inputs in the order
    // a reader gives them back (flow by flow, each flow's in the order of first use over the
    // archive), so the manifest read back is the one written. Inputs an earlier packing made
    // required (secrets it stripped) stay required, though their values are empty by now.
    let required_before = |input: &Input| {
        params.required_inputs.iter().any(|r| {
            r.required
                && Input {
                    required: true,
                    ..r.clone()
                } == Input {
                    required: true,
                    ..input.clone()
                }
        })
    };
    let mut compactor = super::manifest::Compactor::default();
    for (at, (_, p)) in placed.iter().enumerate() {
        for &i in p.inputs.iter() {
            let shared_input = &shared.inputs[i as usize];
            if params.required_inputs.is_empty() || shared_input.required {
                compactor.add(at, shared_input);
            } else {
                let input = Input {
                    flow: p.name.clone(),
                    ..shared_input.clone()
                };
                let required = required_before(&input);
                compactor.add(at, &Input { required, ..input });
            }
        }
    }
    let compact = compactor.finish();
    let inputs = super::manifest::expand_inputs(&flows, &compact).map_err(ArchiveError::Params)?;
    let mut source = params.source.clone();
    let mut companies = shared.companies;
    if source.company.is_empty() && companies.len() == 1 {
        source.company = companies.pop_first().unwrap_or_default();
    }
    let r = shared.requires;
    let manifest = Manifest {
        format_version: MANIFEST_FORMAT_VERSION,
        package: Package {
            name: params.name.clone(),
            version: params.version.to_string(),
            kind: params.kind,
            description: params.description.clone(),
        },
        created_at,
        generator: params.generator.clone(),
        source,
        flows,
        files,
        requires: Requires {
            export_format: r.export_format,
            systems: r.systems.into_iter().collect(),
            scripts: r.scripts.into_iter().collect(),
            dependencies: r.dependencies.into_iter().collect(),
        },
        inputs,
        backup: params.backup.clone(),
    };
    Ok((manifest, compact))
}

fn collect(rx: Receiver<WorkerResult>, mut spool: Spool) -> Result<Collected, ArchiveError> {
    let mut packed = Vec::new();
    let mut table = InputTable::default();
    let mut requires = RequiresUnion::default();
    let mut companies = BTreeSet::new();
    // Entries in the spool so far (a flow adds one, or two with its settings).
    let mut spooled = 0;
    let mut first_err = None;
    let mut invalid = Vec::new();
    for item in rx {
        match item {
            Err(ArchiveError::Invalid(mut list)) => invalid.append(&mut list),
            Ok((p, c, settings)) if first_err.is_none() => {
                let document = spooled;
                let added = spool.add(c).and_then(|()| match settings {
                    Some(s) => spool.add(s).map(|()| Some(document + 1)),
                    None => Ok(None),
                });
                match added {
                    Ok(settings_at) => {
                        spooled = document + 1 + usize::from(settings_at.is_some());
                        let Packed {
                            seq,
                            name,
                            source_id,
                            slug,
                            export_format,
                            steps,
                            sha256,
                            size,
                            company,
                            requires: required,
                            inputs,
                            stripped,
                            settings,
                        } = p;
                        requires.add(required);
                        companies.insert(company.unwrap_or_default());
                        packed.push(Spooled {
                            seq,
                            name,
                            source_id,
                            slug,
                            export_format,
                            steps,
                            sha256,
                            size,
                            stripped,
                            settings: settings.zip(settings_at),
                            inputs: inputs.into_iter().map(|i| table.intern(i)).collect(),
                            document,
                        });
                    }
                    Err(e) => {
                        first_err = Some(ArchiveError::Io {
                            path: "spool".into(),
                            error: std::io::Error::other(e.to_string()),
                        })
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    invalid.sort_by(|a: &(String, _), b| a.0.cmp(&b.0));
    match first_err {
        Some(e) => Err(e),
        None if !invalid.is_empty() => Err(ArchiveError::Invalid(invalid)),
        None => Ok(Collected {
            spool,
            packed,
            inputs: table.inputs,
            requires,
            companies,
        }),
    }
}

fn pack_one(job: Job, opts: &WriterOptions, budget: &ParseBudget) -> WorkerResult {
    let Job {
        seq,
        input,
        settings,
    } = job;
    let (mut doc, _permit) = Document::parse_within(
        &input.bytes,
        &input.origin,
        &DocumentBound::default(),
        budget,
    )?;
    if opts.validate {
        // Secrets are not refused (they are stripped below, after one scan): the secret rule
        // is left out.
        let report = crate::validate::validate_checks(
            &doc,
            &crate::validate::ValidateOptions {
                secret_rules: opts.secret_rules.clone(),
            },
            false,
        );
        let errors: Vec<_> = report
            .findings
            .into_iter()
            .filter(|f| f.severity == crate::validate::Severity::Error)
            .collect();
        if !errors.is_empty() {
            return Err(ArchiveError::Invalid(vec![(input.origin, errors)]));
        }
    }
    let name = input
        .name
        .clone()
        .or_else(|| doc.flow_name().map(str::to_string))
        .unwrap_or_else(|| input.origin.clone());
    let (mut inputs, stripped) = strip_secrets(&mut doc, &name, opts);
    let bytes = if stripped > 0 {
        to_bytes_like(doc.value(), &input.bytes)
    } else {
        input.bytes
    };
    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    let steps = crate::summary::summarised_version(&doc).map_or(0, |v| v.steps().count() as u64);
    let requires = crate::marketplace::requires(std::slice::from_ref(&doc));
    let company = doc
        .metadata()
        .and_then(|m| m.get("company_name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let zerr = |e: zipio::ZipError| ArchiveError::Io {
        path: input.origin.clone(),
        error: std::io::Error::other(e.to_string()),
    };
    let compressed =
        zipio::compress(&format!("spool/{seq}"), &bytes, entry_options(opts)).map_err(zerr)?;
    let (packed_settings, compressed_settings) = match settings {
        Some(settings) => {
            inputs.extend(
                settings
                    .webhook_secrets()
                    .map(|index| Input::webhook_secret(&name, index)),
            );
            let bytes = settings.to_bytes();
            let c = zipio::compress(
                &format!("spool/{seq}/settings"),
                &bytes,
                entry_options(opts),
            )
            .map_err(zerr)?;
            let packed = PackedSettings {
                sha256: hex::encode(Sha256::digest(&bytes)),
                size: bytes.len() as u64,
            };
            (Some(packed), Some(c))
        }
        None => (None, None),
    };
    Ok((
        Packed {
            seq,
            slug: slugify(&name),
            name,
            source_id: input.source_id,
            export_format: doc.format_version().number(),
            steps,
            sha256,
            size: bytes.len() as u64,
            company,
            requires,
            inputs,
            stripped,
            settings: packed_settings,
        },
        compressed,
        compressed_settings,
    ))
}

/// Blanks every filled secret value of `doc` (flow `flow`) as packing does, and lists what was
/// blanked as the required inputs an overlay must supply to import it again: what history
/// records keep instead of the values.
pub fn strip_document_secrets(doc: &mut Document, flow: &str) -> Vec<Input> {
    let opts = WriterOptions::new(time::OffsetDateTime::UNIX_EPOCH);
    let (inputs, _) = strip_secrets(doc, flow, &opts);
    inputs.into_iter().filter(|i| i.required).collect()
}

/// Lists the document's inputs (secrets, empty slots, systems) and, unless secrets are allowed,
/// blanks every filled secret. Returns the inputs and how many values were blanked.
fn strip_secrets(doc: &mut Document, flow: &str, opts: &WriterOptions) -> (Vec<Input>, usize) {
    let slots = find_secrets(doc.value(), &opts.secret_rules);
    let mut inputs: Vec<Input> = Vec::new();
    let mut stripped = 0;
    for slot in &slots {
        let input = match &slot.kind {
            SecretKind::Variable { name } => {
                Input::new(flow, InputKind::Variable, name, slot.filled)
            }
            SecretKind::Credential { key } => {
                credential_input(doc.value(), flow, &slot.pointer, key, slot.filled)
            }
        };
        // A value the archive carries (`--allow-secrets`) is listed, but not required of the
        // target: only a stripped value must be supplied again.
        let required = slot.filled && !opts.allow_secrets;
        if let Some(existing) = inputs
            .iter_mut()
            .find(|i| i.kind == input.kind && i.name == input.name)
        {
            existing.required |= required;
        } else {
            inputs.push(Input { required, ..input });
        }
        if slot.filled
            && !opts.allow_secrets
            && let Some(v) = doc.value_mut().pointer_mut(&slot.pointer)
        {
            *v = Value::String(String::new());
            stripped += 1;
        }
    }
    // Plain variables the source left empty are inputs too (the platform asks for a value).
    let mut empty_vars = Vec::new();
    if let Some(flow_view) = doc.flow() {
        for version in flow_view.versions() {
            for var in version.variables() {
                let empty = var
                    .value()
                    .is_none_or(|v| v.as_str() == Some("") || v.is_null());
                if let (Some(key), true) = (var.key(), empty) {
                    empty_vars.push(key.to_string());
                }
            }
        }
    }
    for key in empty_vars {
        if !inputs
            .iter()
            .any(|i| i.kind == InputKind::Variable && i.name == key)
        {
            inputs.push(Input::new(flow, InputKind::Variable, &key, false));
        }
    }
    let systems: Vec<String> = doc
        .systems()
        .filter_map(|s| s.name().map(str::to_string))
        .collect();
    for s in systems {
        if !inputs
            .iter()
            .any(|i| i.kind == InputKind::System && i.name == s)
        {
            inputs.push(Input::new(flow, InputKind::System, &s, false));
        }
    }
    (inputs, stripped)
}

/// The input of a credential: under a system, its system, auth implementation and key (named
/// `<system name>/<auth implementation name>/<key>`, the key an overlay's `[secrets]` table
/// uses); anywhere else, named by its JSON pointer with only `key` set.
fn credential_input(doc: &Value, flow: &str, pointer: &str, key: &str, required: bool) -> Input {
    let tokens: Vec<&str> = pointer.split('/').skip(1).collect();
    if let [
        "systems",
        si,
        "system",
        "authentication_implementations",
        ai,
        "credentials",
        _,
    ] = tokens.as_slice()
    {
        let sys = doc
            .pointer(&format!("/systems/{si}/system/name"))
            .and_then(Value::as_str);
        let auth = doc
            .pointer(&format!(
                "/systems/{si}/system/authentication_implementations/{ai}/name"
            ))
            .and_then(Value::as_str);
        if let (Some(sys), Some(auth)) = (sys, auth) {
            return Input::credential(flow, sys, auth, key, required);
        }
    }
    Input {
        key: Some(key.to_string()),
        ..Input::new(flow, InputKind::Credential, pointer, required)
    }
}

/// The longest slug [`slugify`] gives, in bytes (ASCII): with a `-N` suffix for a repeated slug
/// and `flows/…/export.json` around it, far under every file system's name and path limits.
pub const MAX_SLUG: usize = 64;

/// The slug of a flow name: lowercase ASCII letters and digits, other runs become one `-`;
/// `flow` when nothing is left. A slug longer than [`MAX_SLUG`] is shortened deterministically:
/// its first 55 characters, `-`, and the first 8 hex digits of the SHA-256 of the whole name (so
/// long names that share a beginning still get different slugs, the same name always the same).
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        return "flow".to_string();
    }
    if out.len() > MAX_SLUG {
        let digest = hex::encode(Sha256::digest(name.as_bytes()));
        out.truncate(MAX_SLUG - 9);
        while out.ends_with('-') {
            out.pop();
        }
        out.push('-');
        out.push_str(&digest[..8]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, priority: u32) -> Vec<u8> {
        format!(
            r#"{{"metadata":{{"company_name":"Acme","flow_name":"{name}","exported_at":"2026-01-01T00:00:00Z"}},
            "flow":{{"name":"{name}","priority":{priority},"versions":[]}},"systems":[],"scripts":[],"dependencies":[]}}"#
        )
        .into_bytes()
    }

    fn pack(dir: &Path, out: &str, order: &[(&str, u32)]) -> (Vec<u8>, PackReport) {
        let created = time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
        let mut opts = WriterOptions::new(created);
        opts.threads = 3;
        let path = dir.join(out);
        let mut w = ArchiveWriter::create(&path, opts).unwrap();
        for (i, (name, prio)) in order.iter().enumerate() {
            w.add_flow(FlowInput {
                bytes: doc(name, *prio),
                origin: format!("doc{i}"),
                source_id: String::new(),
                name: None,
            })
            .unwrap();
        }
        let report = w
            .finish(ManifestParams::for_tests(PackageKind::Release), &[])
            .unwrap();
        (std::fs::read(&path).unwrap(), report)
    }

    #[test]
    fn the_order_documents_arrive_in_does_not_change_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let flows = [
            ("Orders", 1),
            ("Orders", 2),
            ("Customers!", 3),
            ("orders", 4),
        ];
        let (a, report) = pack(dir.path(), "a.flowpack", &flows);
        let mut reversed = flows;
        reversed.reverse();
        let (b, _) = pack(dir.path(), "b.flowpack", &reversed);
        assert_eq!(a, b);
        let paths: Vec<&str> = report
            .manifest
            .flows
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(
            paths,
            [
                "flows/customers/export.json",
                "flows/orders-2/export.json",
                "flows/orders-3/export.json",
                "flows/orders/export.json",
            ]
        );
        // The bare slug goes to the first in (name, source id, digest) order: "Orders" < "orders".
        assert_eq!(report.manifest.flows[3].name, "Orders");
    }

    #[test]
    fn documents_sent_from_several_threads_pack_like_sequential_ones() {
        let dir = tempfile::tempdir().unwrap();
        let flows = [("A", 1), ("B", 2), ("C", 3), ("D", 4)];
        let (sequential, _) = pack(dir.path(), "s.flowpack", &flows);
        let created = time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
        let path = dir.path().join("t.flowpack");
        let w = ArchiveWriter::create(&path, WriterOptions::new(created)).unwrap();
        std::thread::scope(|scope| {
            for (i, (name, prio)) in flows.iter().enumerate() {
                let tx = w.sender().unwrap();
                scope.spawn(move || {
                    tx.send(FlowInput {
                        bytes: doc(name, *prio),
                        origin: format!("doc{i}"),
                        source_id: String::new(),
                        name: None,
                    })
                    .unwrap();
                });
            }
        });
        w.finish(ManifestParams::for_tests(PackageKind::Release), &[])
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), sequential);
    }

    fn settings_of(n: i64) -> FlowSettings {
        use crate::archive::{Callback, Webhook};
        let mut s = FlowSettings::new(true, Some(n));
        s.webhooks.push(Webhook::new("active", "json"));
        s.webhooks.push(Webhook {
            hmac_algorithm: Some("sha256".into()),
            has_hmac_secret_key: true,
            ..Webhook::new("active", "xml")
        });
        s.callbacks.push(Callback::new("failed", "json"));
        s
    }

    /// Packs "Orders" (with settings) and "Orders" again and "Customers" (without) in `order`.
    fn pack_with_settings(dir: &Path, out: &str, reverse: bool) -> Vec<u8> {
        let created = time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
        let mut opts = WriterOptions::new(created);
        opts.threads = 2;
        let path = dir.join(out);
        let mut w = ArchiveWriter::create(&path, opts).unwrap();
        let mut flows = vec![
            ("Orders", 1, Some(settings_of(1))),
            ("Orders", 2, Some(settings_of(2))),
            ("Customers", 3, None),
        ];
        if reverse {
            flows.reverse();
        }
        for (i, (name, prio, settings)) in flows.into_iter().enumerate() {
            let input = FlowInput {
                bytes: doc(name, prio),
                origin: format!("doc{i}"),
                source_id: String::new(),
                name: None,
            };
            match settings {
                Some(s) => w.add_flow_with_settings(input, s).unwrap(),
                None => w.add_flow(input).unwrap(),
            }
        }
        w.finish(ManifestParams::for_tests(PackageKind::Backup), &[])
            .unwrap();
        std::fs::read(&path).unwrap()
    }

    #[test]
    fn settings_entries_are_listed_hashed_read_back_and_reproducible() {
        use crate::archive::{Archive, Limits, TrustPolicy};
        let dir = tempfile::tempdir().unwrap();
        let a = pack_with_settings(dir.path(), "a.flowpack", false);
        let b = pack_with_settings(dir.path(), "b.flowpack", true);
        assert_eq!(
            a, b,
            "the order flows arrive in does not change the archive"
        );
        let mut archive =
            Archive::open(&dir.path().join("a.flowpack"), &Limits::default()).unwrap();
        let paths: Vec<&str> = archive.entry_paths().collect();
        assert_eq!(
            paths,
            [
                "flowpack.json",
                "flows/customers/export.json",
                "flows/orders-2/export.json",
                "flows/orders-2/flow.json",
                "flows/orders/export.json",
                "flows/orders/flow.json",
            ]
        );
        let report = archive.verify(&TrustPolicy::default());
        assert!(report.first_failure().is_none(), "{report:?}");
        let m = archive.manifest().unwrap();
        assert_eq!(m.format_version, 3);
        assert_eq!(m.flows[0].settings, None);
        let orders = &m.flows[2];
        let record = orders.settings.as_ref().unwrap();
        assert_eq!(record.path, "flows/orders/flow.json");
        assert_eq!(m.files[&record.path], format!("sha256:{}", record.sha256));
        let mut iteration = |i: usize| {
            archive
                .flow_settings(&m.flows[i])
                .unwrap()
                .map(|s| s.deployed_iteration)
        };
        assert_eq!(iteration(0), None);
        assert_eq!(iteration(1), Some(Some(2)));
        assert_eq!(iteration(2), Some(Some(1)));
        assert_eq!(archive.flow_settings(orders).unwrap(), Some(settings_of(1)));
        let webhook_inputs: Vec<(&str, Option<u32>, bool)> = m
            .inputs
            .iter()
            .filter(|i| i.kind == InputKind::WebhookSecret)
            .map(|i| (i.flow.as_str(), i.webhook, i.required))
            .collect();
        assert_eq!(
            webhook_inputs,
            [("Orders", Some(1), true), ("Orders", Some(1), true)]
        );
        // The manifest validates against its schema.
        let schema: Value = serde_json::from_str(crate::archive::MANIFEST_SCHEMA).unwrap();
        let value = serde_json::from_slice(archive.manifest_bytes().unwrap()).unwrap();
        assert!(jsonschema::validator_for(&schema).unwrap().is_valid(&value));
        // Flow documents are the export documents only.
        assert_eq!(archive.flow_documents().count(), 3);
    }

    #[test]
    fn a_settings_entry_that_does_not_match_its_digest_is_refused() {
        use crate::archive::{Archive, Limits};
        let dir = tempfile::tempdir().unwrap();
        pack_with_settings(dir.path(), "a.flowpack", false);
        let mut archive =
            Archive::open(&dir.path().join("a.flowpack"), &Limits::default()).unwrap();
        let mut m = archive.manifest().unwrap();
        let record = m.flows[2].settings.as_mut().unwrap();
        let real = std::mem::replace(&mut record.sha256, "0".repeat(64));
        let err = archive.flow_settings(&m.flows[2]).unwrap_err();
        assert!(
            err.to_string().ends_with(&format!(
                "a.flowpack!flows/orders/flow.json: SHA-256 {real} does not match the manifest's {}",
                "0".repeat(64)
            )),
            "{err}"
        );
    }

    fn writer(path: &Path, replace: bool) -> Result<ArchiveWriter, ArchiveError> {
        let created = time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
        let mut opts = WriterOptions::new(created);
        opts.threads = 1;
        opts.replace = replace;
        let mut w = ArchiveWriter::create(path, opts)?;
        w.add_flow(FlowInput {
            bytes: doc("Orders", 2),
            origin: "doc".into(),
            source_id: String::new(),
            name: None,
        })?;
        Ok(w)
    }

    #[test]
    fn an_archive_that_fails_a_check_never_appears_and_outputs_are_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a.flowpack");
        let params = || ManifestParams::for_tests(PackageKind::Release);
        // A failing check: nothing at the output, no temporary file left.
        let err = writer(&out, false)
            .unwrap()
            .finish_checked(params(), &[], |tmp| {
                assert!(tmp.exists() && tmp != out);
                Err(ArchiveError::SelfCheck {
                    archive: out.display().to_string(),
                    reason: "no".into(),
                })
            })
            .unwrap_err();
        assert!(matches!(err, ArchiveError::SelfCheck { .. }), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Written; then refused without replace, replaced with it.
        writer(&out, false).unwrap().finish(params(), &[]).unwrap();
        let before = std::fs::read(&out).unwrap();
        let Err(err) = writer(&out, false) else {
            panic!("an existing output was not refused")
        };
        assert!(
            matches!(&err, ArchiveError::Write(e) if e.exists()),
            "{err}"
        );
        // An output that appears while the archive is written is not replaced either.
        let w = writer(&dir.path().join("b.flowpack"), false).unwrap();
        std::fs::write(dir.path().join("b.flowpack"), b"theirs").unwrap();
        let err = w.finish(params(), &[]).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::Write(e) if e.exists()),
            "{err}"
        );
        assert_eq!(
            std::fs::read(dir.path().join("b.flowpack")).unwrap(),
            b"theirs"
        );
        writer(&out, true).unwrap().finish(params(), &[]).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), before);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_manifest_past_its_bound_is_refused_when_writing() {
        // One flow whose name alone is over 1 MiB + 1 KiB: a manifest no reader of a
        // one-flow archive would accept under the writer's bound.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a.flowpack");
        let created = time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
        let mut opts = WriterOptions::new(created);
        opts.validate = false;
        let mut w = ArchiveWriter::create(&out, opts).unwrap();
        w.add_flow(FlowInput {
            bytes: doc(&"é".repeat(600_000), 2),
            origin: "doc".into(),
            source_id: String::new(),
            name: None,
        })
        .unwrap();
        let err = w
            .finish(ManifestParams::for_tests(PackageKind::Release), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the manifest (")
                && err.contains("bytes for 1 flow) would pass its bound"),
            "{err}"
        );
        assert!(!out.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_writers_own_check_compares_what_it_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let (_, report) = pack(dir.path(), "a.flowpack", &[("Orders", 2)]);
        let path = dir.path().join("a.flowpack");
        let shown = dir.path().join("shown.flowpack");
        let compact = super::super::Archive::open(&path, &super::super::Limits::default())
            .unwrap()
            .read_manifest(false)
            .unwrap()
            .1
            .unwrap();
        check_written(
            &path,
            &shown,
            (&report.manifest, &compact),
            &report.manifest_sha256,
        )
        .unwrap();
        let mut other = report.manifest.clone();
        other.package.description = "changed".into();
        let err =
            check_written(&path, &shown, (&other, &compact), &report.manifest_sha256).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "{}: the archive written does not read back",
                shown.display()
            )),
            "{err}"
        );
        let err = check_written(&path, &shown, (&report.manifest, &compact), &"0".repeat(64))
            .unwrap_err();
        assert!(matches!(err, ArchiveError::SelfCheck { .. }), "{err}");
        // A file that is no archive: named by the output, not the temporary file.
        std::fs::write(&path, b"not a zip").unwrap();
        let err = check_written(
            &path,
            &shown,
            (&report.manifest, &compact),
            &report.manifest_sha256,
        )
        .unwrap_err()
        .to_string();
        assert!(
            !err.contains("a.flowpack") && err.contains("shown.flowpack"),
            "{err}"
        );
    }

    fn doc_with(name: &str, vars: &[usize], systems: &[usize]) -> Vec<u8> {
        let vars: Vec<Value> = vars
            .iter()
            .map(|v| serde_json::json!({"key": format!("K{v}"), "value": "", "is_secret": false}))
            .collect();
        let systems: Vec<Value> = systems
            .iter()
            .map(|s| serde_json::json!({"system": {"name": format!("S{s}")}}))
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "metadata": {"company_name": "Acme", "flow_name": name},
            "flow": {"name": name, "priority": 2, "versions": [{"variables": vars}]},
            "systems": systems, "scripts": [], "dependencies": []
        }))
        .unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Whatever the flows (names alike, inputs shared or not, in any order), the archive the
        /// writer finishes verifies, and its manifest reads back as the one written.
        #[test]
        fn every_archive_written_verifies_and_reads_back(
            flows in proptest::collection::vec(
                (
                    0usize..3,
                    proptest::collection::vec(0usize..4, 0..4),
                    proptest::collection::vec(0usize..2, 0..3),
                ),
                1..8,
            )
        ) {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("a.flowpack");
            let created = time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
            let mut opts = WriterOptions::new(created);
            opts.threads = 2;
            opts.validate = false;
            let mut w = ArchiveWriter::create(&out, opts).unwrap();
            for (i, (name, vars, systems)) in flows.iter().enumerate() {
                w.add_flow(FlowInput {
                    bytes: doc_with(["A", "B", "C"][*name], vars, systems),
                    origin: format!("doc{i}"),
                    source_id: i.to_string(),
                    name: None,
                })
                .unwrap();
            }
            let report = w
                .finish(ManifestParams::for_tests(PackageKind::Release), &[])
                .unwrap();
            let mut archive = super::super::Archive::open(&out, &super::super::Limits::default()).unwrap();
            let verified = archive.verify(&super::super::TrustPolicy::default());
            proptest::prop_assert!(verified.first_failure().is_none(), "{:?}", verified);
            let read = archive.manifest().unwrap();
            proptest::prop_assert_eq!(&read, &report.manifest);
            let listed: usize = flows
                .iter()
                .map(|(_, vars, systems)| {
                    let v: BTreeSet<_> = vars.iter().collect();
                    let s: BTreeSet<_> = systems.iter().collect();
                    v.len() + s.len()
                })
                .sum();
            proptest::prop_assert_eq!(read.inputs.len(), listed);
        }
    }

    #[test]
    fn slugs_are_lowercase_dashes() {
        assert_eq!(
            slugify("Shopify > NetSuite Orders"),
            "shopify-netsuite-orders"
        );
        assert_eq!(slugify("  ***  "), "flow");
        assert_eq!(slugify("Ünïcode Flow 2"), "n-code-flow-2");
        // Long names: shortened to MAX_SLUG with a hash of the whole name.
        let long = "Orders ".repeat(43);
        let slug = slugify(&long);
        assert_eq!(slug.len(), MAX_SLUG);
        assert!(slug.starts_with("orders-orders-"), "{slug}");
        assert_eq!(&slug[MAX_SLUG - 9..MAX_SLUG - 8], "-");
        assert_eq!(slugify(&long), slug);
        assert_ne!(slugify(&format!("{long}x")), slug);
        let exact = "a".repeat(MAX_SLUG);
        assert_eq!(slugify(&exact), exact);
    }
}
