//! `diff`: what differs between two sets of flows — archives, export documents, directories of
//! documents, or the live flows of an environment.
//!
//! Each side is a [`Side`]: `env:NAME` (an environment of `flowpack.toml`; `env:local` the
//! embedded sandbox; `env:url` the platform given by [`EnvSources::url`]), anything else a path
//! (write `./env:x` for a file of that name). A path is read by what it is:
//!
//! - an **archive** (`.flowpack`, or a file starting with a zip header): opened through the safe
//!   reader and indexed from its manifest (each flow's name, entry and SHA-256), checked for
//!   integrity (zip structure, manifest, every listed entry present, no unlisted entry; each
//!   entry read for a comparison is checked against its SHA-256 while it is read), not for
//!   signatures — diff needs no trust policy, and the report says so
//!   ([`SideSummary::signatures_not_checked`]);
//! - an **export document** (any other file);
//! - an **unpacked archive** (a directory with `flowpack.json` at its top): the documents its
//!   manifest lists, in manifest order; a document edited since unpacking is compared as it is
//!   now, with a warning;
//! - any other **directory**: its `*.json` export documents, recursively, in sorted path order,
//!   `flowpack.json` and `flow.json` files skipped (symbolic links to directories are not
//!   followed). A directory without documents is refused: a mistyped path would otherwise
//!   read as "every flow removed".
//!
//! An environment side lists its flows with one paged listing; a flow is exported only when its
//! pair is compared (a flow only one side has is never exported), pairs [`DiffOptions::jobs`] at
//! a time over HTTP. Flows named `<name> (replaced <UTC time>)` — the old flows a replacing push
//! keeps — are left out unless [`DiffOptions::include_replaced`]. A name that two or more live
//! flows of an environment carry is reported as [`FlowStatus::Duplicate`] with their ids, not
//! compared.
//!
//! Sides are indexes — names, digests and places, no JSON text. Two documents with the same
//! SHA-256 are the same without being read; any other pair is read and parsed once when it is
//! compared, within the shared parse budget, and dropped before the next.
//!
//! An overlay ([`DiffOptions::overlay`]) is applied to LEFT first, as `push` would apply it:
//! every LEFT document is migrated to the newest export format, then overlaid. Its keys must
//! match something in LEFT ([`OnUnmatched::Refuse`], as in push) unless
//! [`DiffOptions::on_unmatched`] says to warn.
//!
//! `--flow` patterns ([`DiffOptions::flows`], `*` and `?` globs) narrow both sides; a pattern
//! matching no flow on either side is an error naming it. The comparison itself is
//! [`flowpack_core::diff::compare_sets`], flowpack's one comparison of export documents (rules
//! in [docs/diff.md](https://github.com/flowpack/flowpack/blob/main/docs/diff.md)).
//!
//! A comparison has two halves: the flows' **content** (their export documents) and their
//! **settings** (`flow.json`: enabled, the deployed iteration, priority and flags, labels,
//! notification groups, webhooks and callbacks). Archives of manifest version 2 carry settings,
//! and so does an environment (read as export reads them); an export document, a directory of
//! documents and an older archive carry none. Settings are compared only where both sides of a
//! pair carry them — absence is not a change — and never with [`DiffOptions::content_only`];
//! their changes join the flow's changes under `/settings`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use flowpack_client::{ClientError, Flow, FlowId, ListQuery, Platform, list_all};
use flowpack_core::archive::{Archive, ArchiveError, FlowRecord, FlowSettings, Limits};
use flowpack_core::diff::{
    Change, DiffError as CompareError, DiffReport as ContentReport, DiffResult, FlowDiff,
    FlowStatus, Normalised, changes, normalise_owned, settings_changes,
};
use flowpack_core::migrate::{MigrateError, MigrateOptions, Target, migrate};
use flowpack_core::names::NameFilter;
use flowpack_core::overlay::{
    self, OnUnmatched, OverlayError, OverlayReport, ResolvedOverlay, Targets, check_unmatched,
};
use flowpack_core::{Document, DocumentBound, DocumentError, FormatVersion};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::env::{self, EnvError, EnvSelector, LogFn};
use crate::error::{Categorize, Category, Remedy, plural};
use crate::input::{
    InputError, entry_origin, expect_archive, is_archive, json_files, open_archive_spec,
    parse_budget,
};

/// The prefix of an environment side.
pub(crate) const ENV_PREFIX: &str = "env:";
/// The environment name that stands for [`EnvSources::url`].
pub const URL_ENV: &str = "url";

/// Errors of a diff; each names the side, file, entry, flow or pattern at fault. A diff that
/// cannot run answers no "same" or "different": a front end whose "different" is an exit code
/// of its own maps every one of these to "could not compare".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiffError {
    /// The environment of an `env:` side could not be resolved or opened.
    #[error("{side}: {error}")]
    Env {
        /// The side as given (`env:NAME`).
        side: String,
        /// What went wrong.
        #[source]
        error: EnvError,
    },
    /// An `env:` side whose environment the caller did not open ([`open_environments`]).
    #[error("{side}: the environment was not opened")]
    NotOpened {
        /// The side as given (`env:NAME`).
        side: String,
    },
    /// Listing an environment's flows failed.
    #[error("{side}: listing the flows: {error}")]
    List {
        /// The side.
        side: String,
        /// What the platform said.
        #[source]
        error: Box<ClientError>,
    },
    /// Exporting one flow of an environment failed.
    #[error("{side}: exporting flow {id} ({name:?}): {error}")]
    Export {
        /// The side.
        side: String,
        /// The flow's id.
        id: FlowId,
        /// The flow's name.
        name: String,
        /// What the platform said.
        #[source]
        error: Box<ClientError>,
    },
    /// A path could not be read.
    #[error("{path}: cannot read: {cause}")]
    Read {
        /// The file or directory.
        path: String,
        /// The I/O error.
        #[source]
        cause: std::io::Error,
    },
    /// A directory holds no export document.
    #[error("{path}: no *.json export documents in this directory")]
    NoDocuments {
        /// The directory.
        path: String,
    },
    /// An unpacked archive's `flowpack.json` is not a manifest flowpack can read.
    #[error("{path}: {reason}")]
    Manifest {
        /// The manifest file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An archive failed its integrity checks.
    #[error("{archive}: verification failed ({check}): {detail}")]
    Verification {
        /// The archive.
        archive: String,
        /// The check that failed (`structure`, `manifest`, `digests`, `unlisted`).
        check: String,
        /// What it found.
        detail: String,
    },
    /// An archive entry is unsafe or does not match the manifest.
    #[error("{entry}: {reason}")]
    Entry {
        /// `ARCHIVE!entry`.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `--flow` patterns that match no flow on either side.
    #[error("flow {} {}: {} no flow on either side", if .patterns.len() == 1 { "pattern" } else { "patterns" }, .patterns.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().join(", "), if .patterns.len() == 1 { "matches" } else { "match" })]
    NoMatch {
        /// The patterns, as given.
        patterns: Vec<String>,
    },
    /// JSON that has none of an export document's keys.
    #[error(
        "{origin}: not an export document (none of metadata, flow, systems, scripts, dependencies)"
    )]
    NotADocument {
        /// The file.
        origin: String,
    },
    /// An input file is not what it claims to be (a text file named `.flowpack`, …).
    #[error(transparent)]
    Input(#[from] InputError),
    /// An archive could not be read safely.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A document could not be parsed.
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// The overlay does not fit LEFT (unmatched keys).
    #[error(transparent)]
    Overlay(#[from] OverlayError),
    /// A LEFT document could not be migrated before the overlay was applied.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// Two documents could not be compared.
    #[error(transparent)]
    Compare(#[from] CompareError),
}

impl Categorize for DiffError {
    fn category(&self) -> Category {
        match self {
            DiffError::Env { error, .. } => error.category(),
            DiffError::List { error, .. } | DiffError::Export { error, .. } => error.category(),
            DiffError::Read { .. }
            | DiffError::NotOpened { .. }
            | DiffError::NoDocuments { .. }
            | DiffError::NoMatch { .. } => Category::CouldNotRun,
            DiffError::Manifest { .. }
            | DiffError::Entry { .. }
            | DiffError::NotADocument { .. }
            | DiffError::Verification { .. }
            | DiffError::Compare(_) => Category::Rejected,
            DiffError::Input(e) => e.category(),
            DiffError::Archive(e) => e.category(),
            DiffError::Document(e) => e.category(),
            DiffError::Overlay(e) => e.category(),
            DiffError::Migrate(e) => e.category(),
        }
    }

    fn remedy(&self) -> Option<Remedy> {
        match self {
            DiffError::Env { error, .. } => error.remedy(),
            DiffError::List { error, .. } | DiffError::Export { error, .. } => error.remedy(),
            DiffError::Input(e) => e.remedy(),
            DiffError::Archive(e) => e.remedy(),
            _ => None,
        }
    }
}

/// One side of a diff, as written on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Side {
    /// `env:NAME`: the live flows of an environment.
    Env(String),
    /// `oci://…` or `s3://…`: an archive in an OCI registry or in object storage.
    Oci(String),
    /// A file or directory.
    Path(PathBuf),
}

impl Side {
    /// `env:NAME` is an environment, `oci://…` a registry reference, `s3://…` an object,
    /// anything else a path
    /// (`./env:x` is the file `env:x`).
    pub fn parse(arg: &str) -> Side {
        if let Some(name) = arg.strip_prefix(ENV_PREFIX) {
            Side::Env(name.to_string())
        } else if arg.starts_with("oci://") || arg.starts_with("s3://") {
            Side::Oci(arg.to_string())
        } else {
            Side::Path(PathBuf::from(arg))
        }
    }

    /// How messages name the side: `env:NAME`, the reference, or the path.
    pub fn label(&self) -> String {
        match self {
            Side::Env(name) => format!("{ENV_PREFIX}{name}"),
            Side::Oci(r) => r.clone(),
            Side::Path(p) => p.display().to_string(),
        }
    }
}

/// What a side turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SideKind {
    /// A `.flowpack` archive.
    Archive,
    /// One export document.
    Document,
    /// A directory holding an unpacked archive (`flowpack.json` at its top).
    UnpackedArchive,
    /// A directory of export documents.
    Directory,
    /// The live flows of an environment.
    Environment,
}

impl SideKind {
    /// `archive`, `document`, `unpacked archive`, `directory` or `environment`.
    pub fn as_str(self) -> &'static str {
        match self {
            SideKind::Archive => "archive",
            SideKind::Document => "document",
            SideKind::UnpackedArchive => "unpacked archive",
            SideKind::Directory => "directory",
            SideKind::Environment => "environment",
        }
    }
}

/// What was read for one side.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct SideSummary {
    /// The side as given.
    pub label: String,
    /// What it is.
    pub kind: SideKind,
    /// Flows read (after `--flow` and the replaced-flow rule, for environments).
    pub flows: usize,
    /// An archive whose signatures were not checked (diff reads archives with integrity checks
    /// only): the number of signature entries it carries.
    pub signatures_not_checked: Option<usize>,
    /// Flows of an environment named `… (replaced …)` that were left out.
    pub replaced_left_out: usize,
}

/// Reads an environment variable (API keys of environments).
pub type VarLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What to compare, and how.
#[non_exhaustive]
pub struct DiffOptions {
    /// LEFT (the old side; the overlay applies to it).
    pub left: Side,
    /// RIGHT (the new side; pointers point into it).
    pub right: Side,
    /// The environments of `env:NAME` sides, opened by the caller (by NAME), as push, backup
    /// and export are handed theirs: [`open_environments`] opens them.
    pub environments: BTreeMap<String, EnvSide>,
    /// An overlay applied to LEFT before comparing.
    pub overlay: Option<ResolvedOverlay>,
    /// What overlay keys matching nothing in LEFT do (default: refuse).
    pub on_unmatched: OnUnmatched,
    /// Only flows whose name matches (empty: all).
    pub flows: NameFilter,
    /// Keep flows named `… (replaced …)` on environment sides.
    pub include_replaced: bool,
    /// Compare the documents only, not flow settings (`flow.json`).
    pub content_only: bool,
    /// Pairs compared at once when a side is an environment over HTTP (at least 1): its export
    /// requests in flight.
    pub jobs: usize,
    /// Speak plain HTTP to the registry of an `oci://` side (never automatic).
    pub plain_http: bool,
    /// Registry credentials for `oci://` sides, if any.
    pub credentials: Option<crate::publish::Credentials>,
    /// Told `(done, total)` as names are compared (a progress display).
    pub progress: Option<Arc<dyn Fn(usize, usize) + Send + Sync>>,
    /// Called with the flow's name and both normalised documents (LEFT, RIGHT) of each pair
    /// whose documents differ, while the pair is held (a report that draws the changed flows
    /// takes what it needs here; the diff keeps no document). Called from worker threads, in
    /// no particular order.
    pub on_changed_pair: Option<PairFn>,
}

/// Receives a changed pair's normalised documents: the flow's name, LEFT, RIGHT.
pub type PairFn = Arc<dyn Fn(&str, &Normalised, &Normalised) + Send + Sync>;

/// An environment a side reads, opened by the caller.
#[derive(Clone)]
#[non_exhaustive]
pub struct EnvSide {
    /// Its flows.
    pub platform: Arc<dyn Platform>,
    /// Its URL or database file, for reports (redacted when shown).
    pub location: String,
    /// The embedded store (exported in one thread).
    pub local: bool,
}

impl EnvSide {
    /// The side of an opened environment.
    pub fn new(environment: &env::Environment, connection: &env::Connection) -> EnvSide {
        EnvSide {
            platform: connection.platform.clone(),
            location: environment.location(),
            local: matches!(environment.target, env::Target::Local { .. }),
        }
    }
}

/// Where the environments of `env:` sides are resolved from.
#[non_exhaustive]
pub struct EnvSources {
    /// Where `flowpack.toml` and `.flowpack/` (the `local` store) are looked for.
    pub cwd: PathBuf,
    /// The config file (default: `flowpack.toml` in `cwd`).
    pub config: Option<PathBuf>,
    /// The platform `env:url` stands for (its API key in `FLOWPACK_TOKEN`).
    pub url: Option<String>,
    /// Reads environment variables (API keys).
    pub vars: VarLookup,
    /// Logs each HTTP request (API key masked).
    pub log: Option<LogFn>,
}

impl EnvSources {
    /// Environments from `cwd`'s `flowpack.toml`, API keys from the process's environment.
    pub fn new(cwd: PathBuf) -> EnvSources {
        EnvSources {
            cwd,
            config: None,
            url: None,
            vars: Arc::new(|k| std::env::var(k).ok()),
            log: None,
        }
    }
}

/// Resolves and opens the environments of the `env:` sides among `sides` (`env:url` is
/// [`EnvSources::url`]), keyed by name, for [`DiffOptions::environments`]; an error names the
/// side.
pub fn open_environments(
    sides: &[&Side],
    sources: &EnvSources,
) -> Result<BTreeMap<String, EnvSide>, DiffError> {
    let mut opened = BTreeMap::new();
    for side in sides {
        let Side::Env(name) = side else { continue };
        if opened.contains_key(name) {
            continue;
        }
        let env_err = |error| DiffError::Env {
            side: side.label(),
            error,
        };
        let sel = match (&sources.url, name.as_str()) {
            (Some(url), URL_ENV) => EnvSelector::url(url.clone()),
            _ => {
                let mut s = EnvSelector::named(name);
                s.config = sources.config.clone();
                s
            }
        };
        let environment = env::resolve(&sel, &sources.cwd, &*sources.vars).map_err(env_err)?;
        let conn = env::connect(&environment, sources.log.clone()).map_err(env_err)?;
        opened.insert(name.clone(), EnvSide::new(&environment, &conn));
    }
    Ok(opened)
}

impl DiffOptions {
    /// Compares `left` with `right`; no environment opened, no overlay, every flow, 4 jobs.
    pub fn new(left: Side, right: Side) -> DiffOptions {
        DiffOptions {
            left,
            right,
            environments: BTreeMap::new(),
            overlay: None,
            on_unmatched: OnUnmatched::Refuse,
            flows: NameFilter::default(),
            include_replaced: false,
            content_only: false,
            jobs: 4,
            plain_http: false,
            credentials: None,
            progress: None,
            on_changed_pair: None,
        }
    }
}

/// What a diff found.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DiffReport {
    /// The comparison of the flows' documents; serialises as
    /// `{result, flows: [{name, status, changes: [{pointer, old, new}]}]}`.
    pub content: ContentReport,
    /// What LEFT was.
    pub left: SideSummary,
    /// What RIGHT was.
    pub right: SideSummary,
    /// What the overlay changed in LEFT, per flow (secrets masked).
    pub overlay: Vec<OverlayReport>,
    /// Repeated names, unmatched overlay keys (when allowed), edited unpacked documents.
    pub warnings: Vec<String>,
}

impl DiffReport {
    /// Whether the sides are the same.
    pub fn is_same(&self) -> bool {
        self.content.is_same()
    }
}

/// Where a flow's document is, read when its pair is compared. A side keeps names, digests and
/// places, never JSON text or parsed documents: a pair is read (and parsed once) when it is
/// compared, then dropped, so a diff holds about one pair's documents whatever the sides' sizes.
#[derive(Debug)]
enum Source {
    /// A file, read again (within the per-document bound) when compared.
    File(PathBuf),
    /// An archive entry, read through its side's archive when compared (its SHA-256 checked
    /// against the manifest while it is read).
    Entry(FlowRecord),
    /// A live flow, exported when compared.
    Live(Flow),
}

/// One flow of a side: its name, how messages name it, where its document is.
#[derive(Debug)]
struct Indexed {
    name: String,
    origin: String,
    source: Source,
    /// The SHA-256 (lowercase hex) of the document's bytes, when known without asking a
    /// platform: the manifest's for an archive entry, computed while indexing for a file. Two
    /// flows with the same digest have the same document.
    digest: Option<String>,
}

/// How a side's documents are read again.
enum Reader {
    /// Files (documents, directories, unpacked archives): read from their paths.
    Files,
    /// An archive, opened once (entries are read through it one at a time).
    Archive(Box<Mutex<Archive>>),
    /// An environment: flows are exported when compared.
    Env {
        platform: Arc<dyn Platform>,
        /// The embedded store, which builds each export as a parsed document in this process:
        /// each export takes the whole parse budget while it runs, so it runs alone (no other
        /// export, no parse of a pair).
        local: bool,
    },
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reader::Files => "Files",
            Reader::Archive(_) => "Archive",
            Reader::Env { .. } => "Env",
        })
    }
}

/// The flows of one side, indexed.
#[derive(Debug)]
struct Loaded {
    flows: Vec<Indexed>,
    summary: SideSummary,
    warnings: Vec<String>,
    /// The environment the flows come from (an archive's `source.url`, an environment's
    /// location, redacted), when known: label and notification group ids mean something only
    /// within one environment.
    place: Option<String>,
    reader: Reader,
    /// Keeps a pulled archive's temporary file while its entries are read.
    _pulled: Option<crate::input::ArchiveSource>,
}

impl Loaded {
    fn label(&self) -> &str {
        &self.summary.label
    }

    /// The JSON text of `flow`'s document: read from its file (bounded), its archive entry
    /// (digest-checked while read) or exported.
    fn bytes(&self, flow: &Indexed) -> Result<Vec<u8>, DiffError> {
        match (&flow.source, &self.reader) {
            (Source::File(path), _) => read_document_file(path),
            (Source::Entry(record), Reader::Archive(archive)) => lock(archive)
                .flow_bytes(record)
                .map_err(|e| read_entry_error(self.label(), e)),
            (Source::Live(f), Reader::Env { platform, local }) => {
                let _alone = local.then(|| parse_budget().acquire(u64::MAX));
                platform
                    .export_flow_bytes(f.id)
                    .map_err(|error| DiffError::Export {
                        side: self.label().to_string(),
                        id: f.id,
                        name: f.name.clone(),
                        error: Box::new(error),
                    })
            }
            _ => unreachable!("a side's flows are read by the side's own reader"),
        }
    }

    /// Reads and parses `flow`'s document alone, within the shared parse budget.
    fn document(&self, flow: &Indexed) -> Result<Document, DiffError> {
        let bytes = self.bytes(flow)?;
        let _permit = parse_budget().acquire(charge(&bytes, &flow.origin)?);
        parse_flow(&flow.source, &bytes, &flow.origin)
    }

    /// Whether `flow` can carry settings: an archive entry with a `flow.json`, or a live flow.
    fn carries_settings(&self, flow: &Indexed) -> bool {
        match &flow.source {
            Source::File(_) => false,
            Source::Entry(record) => record.settings.is_some(),
            Source::Live(_) => true,
        }
    }

    /// The SHA-256 of `flow`'s settings entry, for an archive entry that has one.
    fn settings_digest<'a>(&self, flow: &'a Indexed) -> Option<&'a str> {
        match &flow.source {
            Source::Entry(record) => record.settings.as_ref().map(|s| s.sha256.as_str()),
            _ => None,
        }
    }

    /// `flow`'s settings, read when its pair is compared.
    fn settings(&self, flow: &Indexed) -> Result<Option<FlowSettings>, DiffError> {
        match (&flow.source, &self.reader) {
            (Source::Entry(record), Reader::Archive(archive)) => lock(archive)
                .flow_settings(record)
                .map_err(|e| read_entry_error(self.label(), e)),
            (Source::Live(f), Reader::Env { platform, .. }) => {
                live_settings(self.label(), platform.as_ref(), f)
            }
            _ => Ok(None),
        }
    }

    /// The ids of `flows` (all of one name), when this is an environment side with more than
    /// one live flow of that name: a duplicate, which no comparison can pick from.
    fn duplicate_ids(&self, flows: &[&Indexed]) -> Vec<u64> {
        if flows.len() < 2 || flows.iter().any(|f| is_replaced_name(&f.name)) {
            return Vec::new();
        }
        flows
            .iter()
            .filter_map(|f| match &f.source {
                Source::Live(flow) => Some(flow.id),
                _ => None,
            })
            .collect()
    }

    /// Whether reading this side's flows waits on a remote platform (worth doing several at
    /// once).
    fn is_remote(&self) -> bool {
        matches!(&self.reader, Reader::Env { local: false, .. })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a document is charged in the shared parse budget: its JSON values, as everywhere, plus
/// one unit per 16 bytes of text, since a pair's text is held while it is parsed and its
/// strings are copied into the parsed form (a document of a few huge strings has few values
/// but takes its size twice).
fn charge(bytes: &[u8], origin: &str) -> Result<u64, DiffError> {
    let values = DocumentBound::default().cost(bytes, origin)?;
    Ok(values.saturating_add(bytes.len() as u64 / 16))
}

/// Parses a document already measured against the bound ([`charge`]); files must have one of
/// an export document's keys.
fn parse_flow(source: &Source, bytes: &[u8], origin: &str) -> Result<Document, DiffError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|cause| DocumentError::Json {
            path: origin.to_string(),
            cause,
        })?;
    let document = Document::from_value(value, origin)?;
    match source {
        Source::File(_) => expect_document_keys(document, origin),
        _ => Ok(document),
    }
}

/// What comparing one slot of the report takes.
enum Task<'a> {
    /// A flow on both sides.
    Pair(&'a Indexed, &'a Indexed),
    /// Only in LEFT (read only to report what the overlay would change in it).
    Removed(&'a Indexed),
    /// Only in RIGHT.
    Added,
    /// More than one live flow of the name on an environment side.
    Duplicate(Vec<u64>),
}

/// One slot of the report, and what the overlay changed in its LEFT flow.
struct Done {
    flow: FlowDiff,
    overlay: Option<OverlayReport>,
    /// A document whose own name is not the one its side listed it under.
    warnings: Vec<String>,
}

/// Runs a diff.
pub fn run(opts: &DiffOptions) -> Result<DiffReport, DiffError> {
    let mut left = load(&opts.left, opts)?;
    let mut right = load(&opts.right, opts)?;
    let mut warnings = std::mem::take(&mut left.warnings);
    warnings.append(&mut right.warnings);
    check_flow_patterns(opts, &left, &right)?;
    // Overlay keys must match something in LEFT (all of it, as in push), checked before any
    // comparison.
    if let Some(o) = &opts.overlay {
        warnings.extend(unmatched_overlay_keys(o, opts, &left)?);
    }
    let same_place = left.place.is_some() && left.place == right.place;
    let (names, groups) = group_by_name(opts, &left, &right);
    let mut tasks = Vec::new();
    let mut repeated = Vec::new();
    for name in names {
        let (ls, rs) = &groups[name];
        let mut ids = left.duplicate_ids(ls);
        ids.extend(right.duplicate_ids(rs));
        if !ids.is_empty() {
            tasks.push((name, Task::Duplicate(ids)));
            continue;
        }
        if ls.len() > 1 || rs.len() > 1 {
            repeated.push(format!(
                "flow {name:?} occurs {} in LEFT and {} in RIGHT; paired in order",
                plural(ls.len(), "time", "times"),
                plural(rs.len(), "time", "times")
            ));
        }
        for i in 0..ls.len().max(rs.len()) {
            tasks.push((
                name,
                match (ls.get(i), rs.get(i)) {
                    (Some(l), Some(r)) => Task::Pair(l, r),
                    (Some(l), None) => Task::Removed(l),
                    (None, Some(_)) => Task::Added,
                    (None, None) => unreachable!("i is below one of the lengths"),
                },
            ));
        }
    }
    // Several pairs at once only where reading waits on a platform; local reads are done
    // one pair at a time (both cores are busy enough parsing a pair that is read).
    let workers = if left.is_remote() || right.is_remote() {
        opts.jobs.max(1)
    } else {
        1
    };
    let compared = AtomicUsize::new(0);
    let done = run_tasks(&tasks, workers, |name, task| {
        let done = do_task(opts, name, task, (&left, &right), same_place);
        if let Some(progress) = &opts.progress {
            progress(compared.fetch_add(1, Ordering::Relaxed) + 1, tasks.len());
        }
        done
    })?;
    let mut flows = Vec::with_capacity(done.len());
    let mut overlay_reports = Vec::new();
    for d in done {
        flows.push(d.flow);
        overlay_reports.extend(d.overlay);
        warnings.extend(d.warnings);
    }
    let result = if flows.iter().all(|f| f.status == FlowStatus::Same) {
        DiffResult::Same
    } else {
        DiffResult::Different
    };
    warnings.extend(repeated.iter().cloned());
    Ok(DiffReport {
        content: ContentReport {
            result,
            flows,
            warnings: repeated,
        },
        left: left.summary,
        right: right.summary,
        overlay: overlay_reports,
        warnings,
    })
}

/// Runs `each` over `tasks` on up to `workers` threads; the results keep the tasks' order. The
/// first failure (in that order) stops handing out work and is returned.
fn run_tasks<'a, T: Sync, R: Send>(
    tasks: &'a [(&'a str, T)],
    workers: usize,
    each: impl Fn(&'a str, &'a T) -> Result<R, DiffError> + Sync,
) -> Result<Vec<R>, DiffError> {
    flowpack_core::pool::try_map(
        tasks,
        workers,
        || (),
        |(), _, (name, task)| each(name, task),
    )
}

/// One slot of the report: a pair compared (content, then settings), an added or removed flow,
/// or a duplicate.
fn do_task(
    opts: &DiffOptions,
    name: &str,
    task: &Task<'_>,
    (left, right): (&Loaded, &Loaded),
    same_place: bool,
) -> Result<Done, DiffError> {
    let flow = |status, ids, changes| FlowDiff {
        name: name.to_string(),
        status,
        ids,
        changes,
    };
    match task {
        Task::Duplicate(ids) => Ok(Done {
            flow: flow(FlowStatus::Duplicate, ids.clone(), Vec::new()),
            overlay: None,
            warnings: Vec::new(),
        }),
        Task::Added => Ok(Done {
            flow: flow(FlowStatus::Added, Vec::new(), Vec::new()),
            overlay: None,
            warnings: Vec::new(),
        }),
        Task::Removed(l) => {
            let overlay = match &opts.overlay {
                Some(o) => overlay_left(left.document(l)?, name, &l.origin, o)?.1,
                None => None,
            };
            Ok(Done {
                flow: flow(FlowStatus::Removed, Vec::new(), Vec::new()),
                overlay,
                warnings: Vec::new(),
            })
        }
        Task::Pair(l, r) => {
            let Content {
                mut changes,
                overlay,
                warnings,
            } = compare_content(opts, name, (left, l), (right, r))?;
            if !opts.content_only && left.carries_settings(l) && right.carries_settings(r) {
                let unchanged = matches!(
                    (left.settings_digest(l), right.settings_digest(r)),
                    (Some(a), Some(b)) if a.eq_ignore_ascii_case(b)
                );
                if !unchanged && let (Some(ls), Some(rs)) = (left.settings(l)?, right.settings(r)?)
                {
                    changes.extend(settings_changes(
                        &comparable(&ls, same_place),
                        &comparable(&rs, same_place),
                    ));
                }
            }
            let status = if changes.is_empty() {
                FlowStatus::Same
            } else {
                FlowStatus::Changed
            };
            Ok(Done {
                flow: flow(status, Vec::new(), changes),
                overlay,
                warnings,
            })
        }
    }
}

/// The changes between the documents of a pair. Documents with the same digest are the same
/// without being read, unless an overlay is to be applied to LEFT; otherwise both are read and
/// parsed once, together within the shared parse budget (their shares taken at once: taking
/// them one after another could wait on itself), LEFT migrated and overlaid when there is an
/// overlay, and compared.
fn compare_content(
    opts: &DiffOptions,
    name: &str,
    (left, l): (&Loaded, &Indexed),
    (right, r): (&Loaded, &Indexed),
) -> Result<Content, DiffError> {
    if opts.overlay.is_none()
        && let (Some(a), Some(b)) = (&l.digest, &r.digest)
        && a == b
    {
        return Ok(Content::default());
    }
    let lb = left.bytes(l)?;
    let rb = right.bytes(r)?;
    let cost = charge(&lb, &l.origin)?.saturating_add(charge(&rb, &r.origin)?);
    let _permit = parse_budget().acquire(cost);
    let ld = parse_flow(&l.source, &lb, &l.origin)?;
    drop(lb);
    let rd = parse_flow(&r.source, &rb, &r.origin)?;
    drop(rb);
    let warnings = [(l, &ld), (r, &rd)]
        .into_iter()
        .filter_map(|(f, d)| misnamed(f, d))
        .collect();
    let (ld, overlay) = match &opts.overlay {
        Some(o) => overlay_left(ld, name, &l.origin, o)?,
        None => (ld, None),
    };
    let ln = normalise_owned(ld, &l.origin)?;
    let rn = normalise_owned(rd, &r.origin)?;
    let changes = changes(&ln, &rn);
    if !changes.is_empty()
        && let Some(f) = &opts.on_changed_pair
    {
        f(name, &ln, &rn);
    }
    Ok(Content {
        changes,
        overlay,
        warnings,
    })
}

/// What comparing a pair's documents found.
#[derive(Default)]
struct Content {
    changes: Vec<Change>,
    /// What the overlay changed in LEFT.
    overlay: Option<OverlayReport>,
    /// Documents named otherwise than listed.
    warnings: Vec<String>,
}

/// A warning when `flow` was listed (by an archive's manifest, an environment's listing) under
/// another name than its document's own: it is compared under the listed name.
fn misnamed(flow: &Indexed, document: &Document) -> Option<String> {
    let listed_by = match &flow.source {
        Source::Entry(_) => "the manifest",
        Source::Live(_) => "the listing",
        Source::File(_) => return None,
    };
    let own = document.flow_name()?;
    (own != flow.name).then(|| {
        format!(
            "{}: {listed_by} names this flow {:?}, its document {own:?}; compared as {:?}",
            flow.origin, flow.name, flow.name
        )
    })
}

/// As push does: LEFT migrated to the newest format, then overlaid; what the overlay changed,
/// when it changed something.
fn overlay_left(
    mut document: Document,
    name: &str,
    origin: &str,
    o: &ResolvedOverlay,
) -> Result<(Document, Option<OverlayReport>), DiffError> {
    if document.format_version() != FormatVersion::LATEST {
        let mut m = MigrateOptions::new(Target::Latest);
        m.origin = origin.to_string();
        document = migrate(document, &m)?.document;
    }
    let report = overlay::apply(&mut document, name, o);
    Ok((document, (!report.changes.is_empty()).then_some(report)))
}

/// Every `--flow` pattern must match a flow of one side or the other.
fn check_flow_patterns(opts: &DiffOptions, left: &Loaded, right: &Loaded) -> Result<(), DiffError> {
    let names = left
        .flows
        .iter()
        .chain(&right.flows)
        .map(|f| f.name.as_str());
    let unmatched: Vec<String> = opts
        .flows
        .unmatched(names)
        .into_iter()
        .map(str::to_string)
        .collect();
    if unmatched.is_empty() {
        Ok(())
    } else {
        Err(DiffError::NoMatch {
            patterns: unmatched,
        })
    }
}

/// The overlay's keys that match nothing in LEFT, as warnings (an error unless they are
/// allowed). LEFT's documents are read and parsed one at a time.
fn unmatched_overlay_keys(
    o: &ResolvedOverlay,
    opts: &DiffOptions,
    left: &Loaded,
) -> Result<Vec<String>, DiffError> {
    let mut targets = Targets::new();
    for f in &left.flows {
        targets.add(&left.document(f)?);
    }
    Ok(check_unmatched(o.overlay(), &targets, opts.on_unmatched)?
        .into_iter()
        .map(|u| format!("{}: {u}", o.overlay().origin))
        .collect())
}

/// The flows `--flow` selects, grouped by name (LEFT's and RIGHT's), the names in order of
/// first appearance (LEFT, then RIGHT).
type Groups<'a> = HashMap<&'a str, (Vec<&'a Indexed>, Vec<&'a Indexed>)>;

fn group_by_name<'a>(
    opts: &DiffOptions,
    left: &'a Loaded,
    right: &'a Loaded,
) -> (Vec<&'a str>, Groups<'a>) {
    let mut names: Vec<&str> = Vec::new();
    let mut groups: Groups<'a> = HashMap::new();
    for (is_left, side) in [(true, &left.flows), (false, &right.flows)] {
        for f in side.iter().filter(|f| opts.flows.matches(&f.name)) {
            let group = groups.entry(f.name.as_str()).or_insert_with(|| {
                names.push(f.name.as_str());
                (Vec::new(), Vec::new())
            });
            if is_left {
                group.0.push(f);
            } else {
                group.1.push(f);
            }
        }
    }
    (names, groups)
}

/// A flow's settings as compared: label and notification group ids are left out unless both
/// sides come from the same environment (a restore into another environment cannot carry them,
/// and reports so).
fn comparable(settings: &FlowSettings, same_place: bool) -> serde_json::Value {
    let mut v = serde_json::to_value(settings).expect("settings serialise");
    if !same_place && let Some(o) = v.as_object_mut() {
        o.shift_remove("labels");
        o.shift_remove("notification_groups");
    }
    v
}

/// Reads one side.
fn load(side: &Side, opts: &DiffOptions) -> Result<Loaded, DiffError> {
    let label = side.label();
    let loaded = match side {
        Side::Env(name) => load_env(&label, name, opts)?,
        Side::Oci(spec) => {
            // Pulled to a temporary file (media types and digests checked) that lives as long
            // as the side: its entries are read when compared.
            let src = open_archive_spec(spec, opts.plain_http, opts.credentials.as_ref())?;
            let mut loaded = load_archive(&src.shown, &src.path)?;
            loaded._pulled = Some(src);
            loaded
        }
        Side::Path(path) => load_path(&label, path)?,
    };
    Ok(loaded)
}

fn summary(label: &str, kind: SideKind, flows: usize) -> SideSummary {
    SideSummary {
        label: label.to_string(),
        kind,
        flows,
        signatures_not_checked: None,
        replaced_left_out: 0,
    }
}

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> DiffError + '_ {
    move |cause| DiffError::Read {
        path: path.display().to_string(),
        cause,
    }
}

/// Reads a document file within the per-document size bound: a file larger than the bound is
/// refused before it is read (by its size), and reading stops past the bound whatever the file
/// says its size is (a device, a file still growing).
fn read_document_file(path: &Path) -> Result<Vec<u8>, DiffError> {
    use std::io::Read;
    let bound = DocumentBound::default();
    let over = |reason: String| DocumentError::Bound {
        path: path.display().to_string(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(read_error(path))?;
    let meta = file.metadata().map_err(read_error(path))?;
    if meta.is_file() {
        bound.check_size(meta.len()).map_err(over)?;
    }
    let mut bytes = Vec::new();
    file.take(bound.max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error(path))?;
    bound.check_size(bytes.len() as u64).map_err(over)?;
    Ok(bytes)
}

/// A file's document indexed: read (bounded), its digest taken, parsed once for its name.
fn index_file(file: &Path, origin: String) -> Result<Indexed, DiffError> {
    let bytes = read_document_file(file)?;
    let digest = hex::encode(Sha256::digest(&bytes));
    let document = index_document(&bytes, &origin)?;
    Ok(Indexed {
        name: document.flow_name().unwrap_or(&origin).to_string(),
        origin,
        source: Source::File(file.to_path_buf()),
        digest: Some(digest),
    })
}

/// A file, an archive, an unpacked archive or a directory of documents.
fn load_path(label: &str, path: &Path) -> Result<Loaded, DiffError> {
    let meta = std::fs::metadata(path).map_err(read_error(path))?;
    if meta.is_dir() {
        if path.join(MANIFEST).is_file() {
            return load_unpacked(label, path);
        }
        return load_directory(label, path);
    }
    if is_archive(path) {
        return load_archive(label, path);
    }
    Ok(files_side(
        label,
        SideKind::Document,
        vec![index_file(path, label.to_string())?],
        Vec::new(),
    ))
}

fn files_side(label: &str, kind: SideKind, flows: Vec<Indexed>, warnings: Vec<String>) -> Loaded {
    Loaded {
        summary: summary(label, kind, flows.len()),
        flows,
        warnings,
        place: None,
        reader: Reader::Files,
        _pulled: None,
    }
}

/// The top-level keys of an export document (either format version).
const DOCUMENT_KEYS: [&str; 5] = ["metadata", "flow", "systems", "scripts", "dependencies"];

/// Parses a document while indexing a side, within the shared parse budget (the share is
/// given back at once: an index keeps no parsed document).
fn index_document(bytes: &[u8], origin: &str) -> Result<Document, DiffError> {
    let (document, _permit) =
        Document::parse_within(bytes, origin, &DocumentBound::default(), parse_budget())?;
    expect_document_keys(document, origin)
}

/// `document`, unless it has none of a document's keys (a settings or config file in a
/// directory of documents is not a flow that was "added").
fn expect_document_keys(document: Document, origin: &str) -> Result<Document, DiffError> {
    if !DOCUMENT_KEYS
        .iter()
        .any(|k| document.root().contains_key(*k))
    {
        return Err(DiffError::NotADocument {
            origin: origin.to_string(),
        });
    }
    Ok(document)
}

/// An archive's manifest, and the file that marks an unpacked archive.
const MANIFEST: &str = "flowpack.json";
/// A flow's settings file in archives that carry settings (skipped as a document).
const SETTINGS: &str = "flow.json";

/// Whether an entry path is a signature (`signatures/<key id>.minisig`).
fn is_signature_path(p: &str) -> bool {
    p.strip_prefix("signatures/")
        .and_then(|r| r.strip_suffix(".minisig"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// An archive, indexed from its manifest: no flow document is read until its pair is compared.
/// Checked here: the zip structure (central directory, entry names and types), the manifest
/// (schema, flow records listed in `files`), every listed entry present, no unlisted entry, and
/// no flow larger than the per-document bound by its manifest size. Each entry read later is
/// read through the limits and checked against its manifest SHA-256 as it is read. Signatures
/// are not checked.
fn load_archive(label: &str, path: &Path) -> Result<Loaded, DiffError> {
    expect_archive(path)?;
    let archive = Archive::open(path, &Limits::default())
        .map_err(|e| entry_error(label, e))?
        .named(label);
    let failed = |check: &str, detail: String| DiffError::Verification {
        archive: label.to_string(),
        check: check.to_string(),
        detail,
    };
    // Flows, files and source only: the inputs are not compared (not expanded either).
    let manifest = archive
        .manifest_without_inputs()
        .map_err(|e| failed("manifest", e.to_string()))?;
    let present: HashSet<&str> = archive.entry_paths().collect();
    if let Some(missing) = manifest
        .files
        .keys()
        .find(|p| !present.contains(p.as_str()))
    {
        return Err(failed(
            "digests",
            format!(
                "{}: listed in the manifest but missing",
                entry_origin(label, missing)
            ),
        ));
    }
    let unlisted: Vec<&str> = archive
        .entry_paths()
        .filter(|p| *p != MANIFEST && !manifest.files.contains_key(*p) && !is_signature_path(p))
        .collect();
    if let Some(first) = unlisted.first() {
        return Err(failed(
            "unlisted",
            format!(
                "{}: not listed in the manifest ({} unlisted)",
                entry_origin(label, first),
                unlisted.len()
            ),
        ));
    }
    let bound = DocumentBound::default();
    let mut flows = Vec::with_capacity(manifest.flows.len());
    for record in manifest.flows {
        let origin = entry_origin(label, &record.path);
        bound
            .check_size(record.size)
            .map_err(|reason| DocumentError::Bound {
                path: origin.clone(),
                reason,
            })?;
        flows.push(Indexed {
            name: record.name.clone(),
            origin,
            digest: Some(record.sha256.to_ascii_lowercase()),
            source: Source::Entry(record),
        });
    }
    let signatures = archive
        .entry_paths()
        .filter(|p| p.starts_with("signatures/"))
        .count();
    let mut s = summary(label, SideKind::Archive, flows.len());
    s.signatures_not_checked = Some(signatures);
    let source = manifest.source.url;
    Ok(Loaded {
        flows,
        summary: s,
        warnings: Vec::new(),
        place: (!source.is_empty()).then_some(source),
        reader: Reader::Archive(Box::new(Mutex::new(archive))),
        _pulled: None,
    })
}

/// An archive error naming one entry, as `ARCHIVE!entry: reason`; others as they are.
fn entry_error(archive: &str, e: ArchiveError) -> DiffError {
    match e {
        ArchiveError::Hostile { entry, reason, .. }
        | ArchiveError::Digest { entry, reason, .. } => DiffError::Entry {
            entry: entry_origin(archive, &entry),
            reason,
        },
        other => DiffError::Archive(other),
    }
}

/// An entry that failed while it was read for a comparison: the archive failed its integrity
/// check (`structure` for what the limits or the zip reader refused, `digests` for bytes that
/// are not the ones the manifest lists).
fn read_entry_error(archive: &str, e: ArchiveError) -> DiffError {
    let (check, entry, reason) = match e {
        ArchiveError::Hostile { entry, reason, .. } => ("structure", entry, reason),
        ArchiveError::Digest { entry, reason, .. } => ("digests", entry, reason),
        other => return DiffError::Archive(other),
    };
    DiffError::Verification {
        archive: archive.to_string(),
        check: check.to_string(),
        detail: format!("{}: {reason}", entry_origin(archive, &entry)),
    }
}

/// The part of a manifest an unpacked archive is read by (manifest versions 1 and 2 alike).
#[derive(serde::Deserialize)]
struct ManifestFlows {
    flows: Vec<ManifestFlow>,
}

#[derive(serde::Deserialize)]
struct ManifestFlow {
    path: String,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// Whether a manifest path stays inside the directory (relative, no `..`, no root).
fn safe_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.contains('\\')
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// A directory with `flowpack.json` at its top: the documents its manifest lists. A document
/// whose bytes still have the manifest's SHA-256 is named by the manifest (not parsed); an
/// edited one is parsed for its name, with a warning.
fn load_unpacked(label: &str, dir: &Path) -> Result<Loaded, DiffError> {
    let manifest_path = dir.join(MANIFEST);
    let shown = manifest_path.display().to_string();
    let bytes = read_document_file(&manifest_path)?;
    let manifest: ManifestFlows =
        serde_json::from_slice(&bytes).map_err(|e| DiffError::Manifest {
            path: shown.clone(),
            reason: format!("not a flowpack manifest: {e}"),
        })?;
    drop(bytes);
    let mut flows = Vec::new();
    let mut warnings = Vec::new();
    for record in manifest.flows {
        if !safe_relative(&record.path) {
            return Err(DiffError::Manifest {
                path: shown,
                reason: format!(
                    "flows: unsafe path {:?} (not relative to the directory)",
                    record.path
                ),
            });
        }
        let file = dir.join(&record.path);
        let bytes = match read_document_file(&file) {
            Ok(b) => b,
            Err(DiffError::Read { cause, .. }) if cause.kind() == std::io::ErrorKind::NotFound => {
                return Err(DiffError::Manifest {
                    path: shown,
                    reason: format!(
                        "flows: {:?} is listed but {} does not exist",
                        record.path,
                        file.display()
                    ),
                });
            }
            Err(e) => return Err(e),
        };
        let origin = file.display().to_string();
        let digest = hex::encode(Sha256::digest(&bytes));
        let as_packed = record
            .sha256
            .as_deref()
            .map(|want| digest == want.to_ascii_lowercase());
        if as_packed == Some(false) {
            warnings.push(format!(
                "{origin}: differs from the SHA-256 in {MANIFEST} (edited since unpacking); \
                 compared as it is now"
            ));
        }
        let name = match record.name {
            Some(name) if as_packed == Some(true) => name,
            _ => {
                let document = index_document(&bytes, &origin)?;
                document.flow_name().unwrap_or(&origin).to_string()
            }
        };
        flows.push(Indexed {
            name,
            origin,
            source: Source::File(file),
            digest: Some(digest),
        });
    }
    Ok(files_side(
        label,
        SideKind::UnpackedArchive,
        flows,
        warnings,
    ))
}

/// Any other directory: its `*.json` documents, recursively, sorted.
fn load_directory(label: &str, dir: &Path) -> Result<Loaded, DiffError> {
    let mut files = Vec::new();
    collect_documents(dir, &mut files)?;
    if files.is_empty() {
        return Err(DiffError::NoDocuments {
            path: label.to_string(),
        });
    }
    let mut flows = Vec::with_capacity(files.len());
    for file in files {
        let origin = file.display().to_string();
        flows.push(index_file(&file, origin)?);
    }
    Ok(files_side(label, SideKind::Directory, flows, Vec::new()))
}

/// The `*.json` files under `dir` but `flowpack.json` and `flow.json`, in sorted path order.
fn collect_documents(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DiffError> {
    out.extend(json_files(dir, &[MANIFEST, SETTINGS])?);
    Ok(())
}

// Whether `name` is the name a replacing push gives the flow it replaced (the one rule, in
// core).
pub(crate) use flowpack_core::names::is_replaced_name;

/// An environment: one paged listing (no flow is exported until its pair is compared). Flows
/// named as replaced are left out unless asked for.
fn load_env(label: &str, name: &str, opts: &DiffOptions) -> Result<Loaded, DiffError> {
    let Some(opened) = opts.environments.get(name) else {
        return Err(DiffError::NotOpened {
            side: label.to_string(),
        });
    };
    let listed = list_all(opened.platform.as_ref(), &ListQuery::default()).map_err(|error| {
        DiffError::List {
            side: label.to_string(),
            error: Box::new(error),
        }
    })?;
    let mut replaced = 0;
    let flows: Vec<Indexed> = listed
        .into_iter()
        .filter(|f| {
            let left_out = !opts.include_replaced && is_replaced_name(&f.name);
            replaced += usize::from(left_out);
            !left_out
        })
        .filter(|f| opts.flows.matches(&f.name))
        .map(|f| Indexed {
            name: f.name.clone(),
            origin: format!("{label} flow {} ({:?})", f.id, f.name),
            source: Source::Live(f),
            digest: None,
        })
        .collect();
    let mut s = summary(label, SideKind::Environment, flows.len());
    s.replaced_left_out = replaced;
    let mut warnings = Vec::new();
    if replaced > 0 {
        warnings.push(format!(
            "{label}: {} named \"… (replaced …)\" left out (include replaced flows to compare them)",
            plural(replaced, "flow", "flows")
        ));
    }
    Ok(Loaded {
        flows,
        summary: s,
        warnings,
        place: Some(flowpack_client::redacted(&opened.location)),
        reader: Reader::Env {
            platform: opened.platform.clone(),
            local: opened.local,
        },
        _pulled: None,
    })
}

/// A live flow's settings as export writes them into `flow.json`; `None` when the platform
/// does not serve them (a platform without the settings, webhook or callback calls).
fn live_settings(
    label: &str,
    platform: &dyn Platform,
    flow: &Flow,
) -> Result<Option<FlowSettings>, DiffError> {
    match crate::export::flow_settings(platform, flow.id) {
        Ok(settings) => Ok(Some(settings)),
        Err(ClientError::Unsupported { .. }) => Ok(None),
        Err(error) => Err(DiffError::Export {
            side: label.to_string(),
            id: flow.id,
            name: flow.name.clone(),
            error: Box::new(error),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_parse_env_oci_and_paths() {
        assert_eq!(Side::parse("env:local"), Side::Env("local".into()));
        assert_eq!(Side::parse("./env:x"), Side::Path("./env:x".into()));
        assert_eq!(
            Side::parse("oci://r.example/app:1"),
            Side::Oci("oci://r.example/app:1".into())
        );
        assert_eq!(Side::parse("a.flowpack").label(), "a.flowpack");
        assert_eq!(Side::parse("env:prod").label(), "env:prod");
    }

    #[test]
    fn replaced_names_follow_the_one_rule() {
        // `^(?P<name>.*) \(replaced \d{8}T\d{6}Z\)(-\d+)?$`
        assert!(is_replaced_name("Orders (replaced 20261129T120000Z)"));
        assert!(is_replaced_name("Orders (replaced 20261129T120000Z)-2"));
        assert!(is_replaced_name("Orders (replaced 20261129T120000Z)-17"));
        assert!(is_replaced_name(
            "A (replaced 20261129T120000Z) (replaced 20261130T000000Z)"
        ));
        // The name before it may be anything, even empty.
        assert!(is_replaced_name(" (replaced 20261129T120000Z)"));
        assert!(!is_replaced_name("Orders"));
        assert!(!is_replaced_name("Orders (replaced by Invoices)"));
        assert!(!is_replaced_name("Orders (replaced 2026-11-29)"));
        assert!(!is_replaced_name("Orders (replaced 20261129T120000Z-2)"));
        assert!(!is_replaced_name("Orders (replaced 20261129T120000Z)-"));
        assert!(!is_replaced_name("Orders (replaced 20261129T120000Z) "));
        assert!(!is_replaced_name("Orders (replaced 20261129T1200Z)"));
        assert!(!is_replaced_name("Orders(replaced 20261129T120000Z)"));
        assert!(!is_replaced_name("Orders (replaced 20261129T120000Z)\n"));
    }

    #[test]
    fn archive_entries_are_named_archive_bang_entry() {
        let e = entry_error(
            "a.flowpack",
            ArchiveError::Hostile {
                archive: "a.flowpack".into(),
                entry: "../evil.json".into(),
                reason: "the path contains '..'".into(),
            },
        );
        assert_eq!(
            e.to_string(),
            "a.flowpack!../evil.json: the path contains '..'"
        );
        assert_eq!(e.category(), Category::Rejected);
        // An entry that fails while read for a comparison fails the archive's integrity check.
        let e = read_entry_error(
            "a.flowpack",
            ArchiveError::Digest {
                archive: "a.flowpack".into(),
                entry: "flows/x/export.json".into(),
                reason: "SHA-256 1 does not match the manifest's 2".into(),
            },
        );
        assert_eq!(
            e.to_string(),
            "a.flowpack: verification failed (digests): a.flowpack!flows/x/export.json: \
             SHA-256 1 does not match the manifest's 2"
        );
        assert_eq!(e.category(), Category::Rejected);
    }

    #[test]
    fn manifest_paths_must_stay_inside() {
        assert!(safe_relative("flows/a/export.json"));
        assert!(!safe_relative("../x.json"));
        assert!(!safe_relative("/etc/passwd"));
        assert!(!safe_relative("flows/../../x"));
        assert!(!safe_relative("flows\\x"));
        assert!(!safe_relative(""));
    }

    fn doc(name: &str, priority: i64) -> String {
        serde_json::json!({
            "metadata": {"flow_name": name, "exported_at": "2026-01-01T00:00:00Z"},
            "flow": {"name": name, "priority": priority, "versions": [
                {"iteration": 1, "status": "Draft", "steps": [{"id": 1, "type": "trigger", "name": "Start"}]}]},
            "systems": [], "scripts": [], "dependencies": []
        })
        .to_string()
    }

    #[test]
    fn directories_skip_manifests_and_settings_and_sort() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("b/sub")).unwrap();
        std::fs::write(d.join("b/sub/z.json"), doc("Z", 1)).unwrap();
        std::fs::write(d.join("b/a.json"), doc("A", 1)).unwrap();
        std::fs::write(d.join("b/flow.json"), "{}").unwrap();
        std::fs::write(d.join("b/sub/flowpack.json"), "{}").unwrap();
        std::fs::write(d.join("b/notes.txt"), "x").unwrap();
        let loaded = load_path("b", &d.join("b")).unwrap();
        let names: Vec<_> = loaded.flows.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["A", "Z"]);
        assert_eq!(loaded.summary.kind, SideKind::Directory);

        std::fs::create_dir(d.join("empty")).unwrap();
        let err = load_path("empty", &d.join("empty")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "empty: no *.json export documents in this directory"
        );
        let err = load_path("none", &d.join("none")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{}: cannot read", d.join("none").display())),
            "{err}"
        );
        assert_eq!(err.category(), Category::CouldNotRun);
    }

    #[test]
    fn unpacked_archives_follow_their_manifest_and_warn_on_edits() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("flows/a")).unwrap();
        let text = doc("A", 2);
        std::fs::write(d.join("flows/a/export.json"), &text).unwrap();
        let digest = hex::encode(Sha256::digest(text.as_bytes()));
        let manifest = |sha: &str| {
            serde_json::json!({"format_version": 1, "flows": [{"path": "flows/a/export.json", "name": "A", "sha256": sha}]})
                .to_string()
        };
        std::fs::write(d.join(MANIFEST), manifest(&digest)).unwrap();
        let loaded = load_path("u", d).unwrap();
        assert_eq!(loaded.summary.kind, SideKind::UnpackedArchive);
        assert_eq!(loaded.flows.len(), 1);
        assert!(loaded.warnings.is_empty());
        std::fs::write(d.join(MANIFEST), manifest(&"0".repeat(64))).unwrap();
        let loaded = load_path("u", d).unwrap();
        assert!(
            loaded.warnings[0].contains("edited since unpacking"),
            "{:?}",
            loaded.warnings
        );

        std::fs::write(
            d.join(MANIFEST),
            r#"{"flows": [{"path": "../outside.json", "name": "X"}]}"#,
        )
        .unwrap();
        let err = load_path("u", d).unwrap_err();
        assert!(
            err.to_string().contains("unsafe path \"../outside.json\""),
            "{err}"
        );
        assert_eq!(err.category(), Category::Rejected);
    }

    #[test]
    fn unpacked_documents_as_packed_are_named_by_the_manifest_unparsed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("flows/a")).unwrap();
        // Not JSON at all: read for its digest, never parsed while the digest matches.
        let text = b"not parsed";
        std::fs::write(d.join("flows/a/export.json"), text).unwrap();
        let manifest = |sha: &str| {
            serde_json::json!({"flows": [{"path": "flows/a/export.json", "name": "A", "sha256": sha}]})
                .to_string()
        };
        std::fs::write(
            d.join(MANIFEST),
            manifest(&hex::encode(Sha256::digest(text))),
        )
        .unwrap();
        let loaded = load_path("u", d).unwrap();
        assert_eq!(loaded.flows[0].name, "A");
        assert_eq!(
            loaded.flows[0].digest.as_deref(),
            Some(hex::encode(Sha256::digest(text)).as_str())
        );
        // Edited since unpacking: parsed for its name, so not JSON is an error naming it.
        std::fs::write(d.join(MANIFEST), manifest(&"0".repeat(64))).unwrap();
        let err = load_path("u", d).unwrap_err();
        assert!(err.to_string().contains("flows/a/export.json"), "{err}");
    }

    #[test]
    fn a_flow_pattern_matching_nothing_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let (l, r) = (dir.path().join("l.json"), dir.path().join("r.json"));
        std::fs::write(&l, doc("Orders", 2)).unwrap();
        std::fs::write(&r, doc("Orders", 1)).unwrap();
        let mut opts = DiffOptions::new(Side::Path(l.clone()), Side::Path(r.clone()));
        // An env: side whose environment the caller did not open is named.
        let mut unopened = DiffOptions::new(Side::Path(l.clone()), Side::Env("prod".into()));
        unopened.environments =
            open_environments(&[], &EnvSources::new(dir.path().into())).unwrap();
        let err = run(&unopened).unwrap_err();
        assert!(matches!(err, DiffError::NotOpened { .. }), "{err}");
        assert_eq!(err.to_string(), "env:prod: the environment was not opened");
        opts.flows = NameFilter::new(["Ord*", "Invoices"]);
        let err = run(&opts).unwrap_err();
        assert_eq!(
            err.to_string(),
            "flow pattern \"Invoices\": matches no flow on either side"
        );
        opts.flows = NameFilter::new(["Ord*"]);
        let report = run(&opts).unwrap();
        assert!(!report.is_same());
        assert_eq!(report.content.flows[0].changes[0].pointer, "/flow/priority");
    }
}
