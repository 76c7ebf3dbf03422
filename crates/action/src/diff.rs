//! `diff`: what differs between two sets of flows — archives, export documents, directories of
//! documents, or the live flows of an environment.
//!
//! Each side is a [`Side`]: `env:NAME` (an environment of `flowpack.toml`; `env:local` the
//! embedded sandbox; `env:url` the platform given by [`DiffOptions::url`]), anything else a path
//! (write `./env:x` for a file of that name). A path is read by what it is:
//!
//! - an **archive** (`.flowpack`, or a file starting with a zip header): opened through the safe
//!   reader and checked for integrity (structure, manifest, digests, unlisted entries), not for
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
//! An environment side lists its flows with one paged listing and exports those selected with
//! bounded concurrency ([`DiffOptions::jobs`]). Flows named `<name> (replaced <UTC time>)` — the
//! old flows a replacing push keeps — are left out unless [`DiffOptions::include_replaced`].
//!
//! An overlay ([`DiffOptions::overlay`]) is applied to LEFT first, as `push` would apply it:
//! every LEFT document is migrated to the newest export format, then overlaid. Its keys must
//! match something in LEFT ([`OnUnmatched::Refuse`], as in push) unless
//! [`DiffOptions::on_unmatched`] says to warn.
//!
//! `--flow` patterns ([`DiffOptions::flows`], `*` and `?` globs) narrow both sides; a pattern
//! matching no flow on either side is an error naming it. The comparison itself is
//! [`flowpack_core::diff::compare_sets`], flowpack's one comparison of export documents (rules
//! in `docs/diff.md`).
//!
//! A comparison has two halves: the flows' **content** (their export documents) and their
//! **settings** (`flow.json`: enabled, the deployed iteration, priority and flags, labels,
//! notification groups, webhooks and callbacks). Archives of manifest version 2 carry settings,
//! and so does an environment (read as export reads them); an export document, a directory of
//! documents and an older archive carry none. Settings are compared only where both sides of a
//! pair carry them — absence is not a change — and never with [`DiffOptions::content_only`];
//! their changes join the flow's changes under `/settings`.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use flowpack_client::{ClientError, Flow, FlowId, ListQuery, Platform, list_all};
use flowpack_core::archive::{Archive, ArchiveError, FlowSettings, Limits, TrustPolicy};
use flowpack_core::budget::Permit;
use flowpack_core::diff::{
    DiffError as CompareError, DiffOptions as CompareOptions, DiffReport as ContentReport,
    DiffResult, FlowDocument, FlowStatus, compare_sets_owned, settings_changes,
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
/// The environment name that stands for [`DiffOptions::url`].
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
        error: EnvError,
    },
    /// Listing an environment's flows failed.
    #[error("{side}: listing the flows: {error}")]
    List {
        /// The side.
        side: String,
        /// What the platform said.
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
        error: Box<ClientError>,
    },
    /// A path could not be read.
    #[error("{path}: cannot read: {cause}")]
    Read {
        /// The file or directory.
        path: String,
        /// The I/O error.
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
            DiffError::Read { .. } | DiffError::NoDocuments { .. } | DiffError::NoMatch { .. } => {
                Category::CouldNotRun
            }
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
    /// `oci://…`: an archive in an OCI registry (not read by this build).
    Oci(String),
    /// A file or directory.
    Path(PathBuf),
}

impl Side {
    /// `env:NAME` is an environment, `oci://…` a registry reference, anything else a path
    /// (`./env:x` is the file `env:x`).
    pub fn parse(arg: &str) -> Side {
        if let Some(name) = arg.strip_prefix(ENV_PREFIX) {
            Side::Env(name.to_string())
        } else if arg.starts_with("oci://") {
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
    /// Export requests in flight per environment side (at least 1).
    pub jobs: usize,
    /// Speak plain HTTP to the registry of an `oci://` side (never automatic).
    pub plain_http: bool,
    /// Registry credentials for `oci://` sides, if any.
    pub credentials: Option<crate::publish::Credentials>,
}

impl DiffOptions {
    /// Compares `left` with `right`, environments resolved from `cwd` with the process's
    /// environment variables; no overlay, every flow, 4 jobs.
    pub fn new(left: Side, right: Side, cwd: PathBuf) -> DiffOptions {
        DiffOptions {
            left,
            right,
            cwd,
            config: None,
            url: None,
            vars: Arc::new(|k| std::env::var(k).ok()),
            log: None,
            overlay: None,
            on_unmatched: OnUnmatched::Refuse,
            flows: NameFilter::default(),
            include_replaced: false,
            content_only: false,
            jobs: 4,
            plain_http: false,
            credentials: None,
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

/// Where a flow's document is read from when its pair is compared. Sides are indexed first
/// (each document parsed once for its name, then dropped) and documents parsed again one pair
/// at a time, so memory holds two parsed documents, not two parsed sides: a parsed document
/// takes several times its JSON text.
#[derive(Debug)]
enum Source {
    /// A file, read and parsed again when compared.
    File(PathBuf),
    /// The document's JSON text (an archive entry, an export), parsed when compared.
    Bytes(Vec<u8>),
}

/// One flow of a side: its name, how messages name it, where its document is.
#[derive(Debug)]
struct Indexed {
    name: String,
    origin: String,
    source: Source,
    /// The flow's settings, when its side carries them.
    settings: Option<FlowSettings>,
}

impl Indexed {
    /// Indexes a parsed document (its name as [`FlowDocument::name`] gives it).
    fn new(origin: String, source: Source, document: &Document) -> Indexed {
        Indexed {
            name: document.flow_name().unwrap_or(&origin).to_string(),
            origin,
            source,
            settings: None,
        }
    }

    /// The document's JSON text again (read from its file, or kept).
    fn bytes(&self) -> Result<std::borrow::Cow<'_, [u8]>, DiffError> {
        Ok(match &self.source {
            Source::File(path) => {
                std::borrow::Cow::Owned(std::fs::read(path).map_err(read_error(path))?)
            }
            Source::Bytes(bytes) => std::borrow::Cow::Borrowed(bytes),
        })
    }

    /// Parses `bytes` (from [`bytes`](Indexed::bytes)) again.
    fn parse(&self, bytes: &[u8]) -> Result<FlowDocument, DiffError> {
        let document = match &self.source {
            Source::File(_) => parse_document(bytes, &self.origin)?,
            Source::Bytes(_) => Document::from_slice(bytes, &self.origin)?,
        };
        Ok(FlowDocument {
            origin: self.origin.clone(),
            document,
        })
    }
}

/// The documents of one name on both sides, parsed together within the shared parse budget
/// (their counted values taken at once: taking them one after another could wait on itself).
fn load_pair<'a>(
    ls: &[&Indexed],
    rs: &[&Indexed],
) -> Result<(Vec<FlowDocument>, Vec<FlowDocument>, Permit<'a>), DiffError> {
    let bound = DocumentBound::default();
    let mut texts = Vec::with_capacity(ls.len() + rs.len());
    let mut cost = 0u64;
    for f in ls.iter().chain(rs) {
        let bytes = f.bytes()?;
        cost = cost.saturating_add(bound.cost(&bytes, &f.origin)?);
        texts.push(bytes);
    }
    let permit = parse_budget().acquire(cost);
    let mut docs = ls
        .iter()
        .chain(rs)
        .zip(&texts)
        .map(|(f, bytes)| f.parse(bytes))
        .collect::<Result<Vec<_>, _>>()?;
    let rights = docs.split_off(ls.len());
    Ok((docs, rights, permit))
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
    let mut flows = Vec::new();
    let mut repeated = Vec::new();
    let mut overlay_reports = Vec::new();
    for name in names {
        let (ls, rs) = &groups[name];
        let part = compare_name(opts, name, ls, rs, same_place, &mut overlay_reports)?;
        flows.extend(part.flows);
        repeated.extend(part.warnings);
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
/// allowed). LEFT's documents are parsed one at a time.
fn unmatched_overlay_keys(
    o: &ResolvedOverlay,
    opts: &DiffOptions,
    left: &Loaded,
) -> Result<Vec<String>, DiffError> {
    let mut targets = Targets::new();
    for f in &left.flows {
        let (mut one, _, _permit) = load_pair(&[f], &[])?;
        targets.add(&one.remove(0).document);
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

/// Compares the flows named `name` (only their documents are parsed at once): LEFT's overlaid
/// first (its changes added to `overlay_reports`), then the settings of each pair unless
/// `--content-only`.
fn compare_name(
    opts: &DiffOptions,
    name: &str,
    ls: &[&Indexed],
    rs: &[&Indexed],
    same_place: bool,
    overlay_reports: &mut Vec<OverlayReport>,
) -> Result<ContentReport, DiffError> {
    let (loaded, rights, _permit) = load_pair(ls, rs)?;
    let mut lefts = Vec::with_capacity(ls.len());
    for mut flow in loaded {
        if let Some(o) = &opts.overlay {
            // As push: migrated to the newest format, then overlaid.
            if flow.document.format_version() != FormatVersion::LATEST {
                let mut m = MigrateOptions::new(Target::Latest);
                m.origin = flow.origin.clone();
                flow.document = migrate(flow.document, &m)?.document;
            }
            let report = overlay::apply(&mut flow.document, name, o);
            if !report.changes.is_empty() {
                overlay_reports.push(report);
            }
        }
        lefts.push(flow);
    }
    let mut part = compare_sets_owned(lefts, rights, &CompareOptions::default())?;
    if !opts.content_only {
        // compare_sets pairs the flows of one name in order, as `ls` and `rs` are.
        let pairs = ls.iter().zip(rs.iter());
        for (flow, (l, r)) in part.flows.iter_mut().zip(pairs) {
            if let (Some(ls), Some(rs)) = (&l.settings, &r.settings) {
                let more =
                    settings_changes(&comparable(ls, same_place), &comparable(rs, same_place));
                if !more.is_empty() {
                    flow.status = FlowStatus::Changed;
                    flow.changes.extend(more);
                }
            }
        }
    }
    Ok(part)
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
            // Pulled to a temporary file (media types and digests checked) that lives while
            // the side is read; the flows keep their JSON text, so it may go afterwards.
            let src = open_archive_spec(spec, opts.plain_http, opts.credentials.as_ref())?;
            load_archive(&src.shown, &src.path)?
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
    let bytes = std::fs::read(path).map_err(read_error(path))?;
    let document = index_document(&bytes, label)?;
    Ok(Loaded {
        flows: vec![Indexed::new(
            label.to_string(),
            Source::File(path.to_path_buf()),
            &document,
        )],
        summary: summary(label, SideKind::Document, 1),
        warnings: Vec::new(),
        place: None,
    })
}

/// The top-level keys of an export document (either format version).
const DOCUMENT_KEYS: [&str; 5] = ["metadata", "flow", "systems", "scripts", "dependencies"];

/// [`parse_document`] while indexing a side, within the shared parse budget (the share is
/// given back at once: an index keeps no parsed document). Not for the comparison, which
/// parses under its own share ([`load_pair`]).
fn index_document(bytes: &[u8], origin: &str) -> Result<Document, DiffError> {
    let (document, _permit) =
        Document::parse_within(bytes, origin, &DocumentBound::default(), parse_budget())?;
    expect_document_keys(document, origin)
}

/// Parses a document read from a file, refusing JSON that has none of a document's keys (a
/// settings or config file in a directory of documents is not a flow that was "added").
fn parse_document(bytes: &[u8], origin: &str) -> Result<Document, DiffError> {
    expect_document_keys(Document::from_slice(bytes, origin)?, origin)
}

/// `document`, unless it has none of a document's keys.
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

/// An archive: integrity checked (not signatures), its flows in manifest order.
fn load_archive(label: &str, path: &Path) -> Result<Loaded, DiffError> {
    expect_archive(path)?;
    let mut archive = Archive::open(path, &Limits::default()).map_err(|e| entry_error(label, e))?;
    let verified = archive.verify(&TrustPolicy::default());
    if let Some(failed) = verified.first_failure() {
        return Err(DiffError::Verification {
            archive: label.to_string(),
            check: failed.name.to_string(),
            detail: relabel(&failed.detail, path, label),
        });
    }
    let signatures = archive
        .entry_paths()
        .filter(|p| p.starts_with("signatures/"))
        .count();
    let mut flows = Vec::new();
    let mut records = Vec::new();
    for record in archive.manifest()?.flows {
        // The entry's JSON text is kept (digest-checked, as packed), the parsed document
        // dropped once indexed.
        let bytes = archive
            .flow_bytes(&record)
            .map_err(|e| entry_error(label, e))?;
        let origin = entry_origin(label, &record.path);
        let (document, _permit) =
            Document::parse_within(&bytes, &origin, &DocumentBound::default(), parse_budget())?;
        let indexed = Indexed::new(origin, Source::Bytes(bytes), &document);
        records.push(record);
        flows.push(indexed);
    }
    for (flow, record) in flows.iter_mut().zip(&records) {
        flow.settings = archive
            .flow_settings(record)
            .map_err(|e| entry_error(label, e))?;
    }
    let mut s = summary(label, SideKind::Archive, flows.len());
    s.signatures_not_checked = Some(signatures);
    let source = archive.manifest()?.source.url;
    Ok(Loaded {
        flows,
        summary: s,
        warnings: Vec::new(),
        place: (!source.is_empty()).then_some(source),
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

/// A verification detail naming the archive as `label` rather than the file it was read from
/// (a pulled archive's temporary file): entries stay named `ARCHIVE!entry`.
fn relabel(detail: &str, path: &Path, label: &str) -> String {
    let from = path.display().to_string();
    if from.is_empty() || from == label {
        detail.to_string()
    } else {
        detail.replace(&from, label)
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
}

/// Whether a manifest path stays inside the directory (relative, no `..`, no root).
fn safe_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.contains('\\')
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// A directory with `flowpack.json` at its top: the documents its manifest lists.
fn load_unpacked(label: &str, dir: &Path) -> Result<Loaded, DiffError> {
    let manifest_path = dir.join(MANIFEST);
    let shown = manifest_path.display().to_string();
    let bytes = std::fs::read(&manifest_path).map_err(read_error(&manifest_path))?;
    let manifest: ManifestFlows =
        serde_json::from_slice(&bytes).map_err(|e| DiffError::Manifest {
            path: shown.clone(),
            reason: format!("not a flowpack manifest: {e}"),
        })?;
    let mut flows = Vec::new();
    let mut warnings = Vec::new();
    for record in &manifest.flows {
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
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DiffError::Manifest {
                    path: shown,
                    reason: format!(
                        "flows: {:?} is listed but {} does not exist",
                        record.path,
                        file.display()
                    ),
                });
            }
            Err(cause) => return Err(read_error(&file)(cause)),
        };
        let origin = file.display().to_string();
        if let Some(want) = &record.sha256
            && hex::encode(Sha256::digest(&bytes)) != want.to_ascii_lowercase()
        {
            warnings.push(format!(
                "{origin}: differs from the SHA-256 in {MANIFEST} (edited since unpacking); \
                 compared as it is now"
            ));
        }
        let document = index_document(&bytes, &origin)?;
        flows.push(Indexed::new(origin, Source::File(file), &document));
    }
    Ok(Loaded {
        summary: summary(label, SideKind::UnpackedArchive, flows.len()),
        flows,
        warnings,
        place: None,
    })
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
        let bytes = std::fs::read(&file).map_err(read_error(&file))?;
        let origin = file.display().to_string();
        let document = index_document(&bytes, &origin)?;
        flows.push(Indexed::new(origin, Source::File(file), &document));
    }
    Ok(Loaded {
        summary: summary(label, SideKind::Directory, flows.len()),
        flows,
        warnings: Vec::new(),
        place: None,
    })
}

/// The `*.json` files under `dir` but `flowpack.json` and `flow.json`, in sorted path order.
fn collect_documents(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DiffError> {
    out.extend(json_files(dir, &[MANIFEST, SETTINGS])?);
    Ok(())
}

// Whether `name` is the name a replacing push gives the flow it replaced (the one rule, in
// core).
pub(crate) use flowpack_core::names::is_replaced_name;

/// An environment: one paged listing, then the selected flows exported with bounded
/// concurrency, in listing order.
fn load_env(label: &str, name: &str, opts: &DiffOptions) -> Result<Loaded, DiffError> {
    let env_err = |error| DiffError::Env {
        side: label.to_string(),
        error,
    };
    let sel = match (&opts.url, name) {
        (Some(url), URL_ENV) => EnvSelector::url(url.clone()),
        _ => {
            let mut s = EnvSelector::named(name);
            s.config = opts.config.clone();
            s
        }
    };
    let environment = env::resolve(&sel, &opts.cwd, &*opts.vars).map_err(env_err)?;
    let conn = env::connect(&environment, opts.log.clone()).map_err(env_err)?;
    let listed = list_all(conn.platform.as_ref(), &ListQuery::default()).map_err(|error| {
        DiffError::List {
            side: label.to_string(),
            error: Box::new(error),
        }
    })?;
    let mut replaced = 0;
    let selected: Vec<Flow> = listed
        .into_iter()
        .filter(|f| {
            let left_out = !opts.include_replaced && is_replaced_name(&f.name);
            replaced += usize::from(left_out);
            !left_out
        })
        .filter(|f| opts.flows.matches(&f.name))
        .collect();
    let flows = export_all(label, conn.platform.as_ref(), &selected, opts.jobs)?;
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
        place: Some(flowpack_client::redacted(&environment.location())),
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

/// Exports and indexes `flows` on up to `jobs` threads (each export parsed once, its JSON text
/// kept); the result keeps their order. The first failure (in that order) stops handing out
/// work and is returned.
fn export_all(
    label: &str,
    platform: &dyn Platform,
    flows: &[Flow],
    jobs: usize,
) -> Result<Vec<Indexed>, DiffError> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Vec<Mutex<Option<Result<Indexed, DiffError>>>> =
        flows.iter().map(|_| Mutex::new(None)).collect();
    let workers = jobs.max(1).min(flows.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(flow) = flows.get(i) else { break };
                    let origin = format!("{label} flow {} ({:?})", flow.id, flow.name);
                    let result = platform
                        .export_flow_bytes(flow.id)
                        .map_err(|error| DiffError::Export {
                            side: label.to_string(),
                            id: flow.id,
                            name: flow.name.clone(),
                            error: Box::new(error),
                        })
                        .and_then(|bytes| {
                            // Parsed within the shared budget: `jobs` exports at the
                            // per-document bound are not parsed at once.
                            let (document, _permit) = Document::parse_within(
                                &bytes,
                                &origin,
                                &DocumentBound::default(),
                                parse_budget(),
                            )?;
                            let mut indexed = Indexed::new(origin, Source::Bytes(bytes), &document);
                            indexed.settings = live_settings(label, platform, flow)?;
                            Ok(indexed)
                        });
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    let mut out = Vec::with_capacity(flows.len());
    let mut first_error = None;
    for slot in slots {
        match slot.into_inner().ok().flatten() {
            Some(Ok(doc)) => out.push(doc),
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
            // Not exported: work stopped after a failure.
            None => {}
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(out),
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
    fn replaced_names_need_the_utc_stamp() {
        assert!(is_replaced_name("Orders (replaced 20261129T120000Z)"));
        assert!(is_replaced_name("Orders (replaced 20261129T120000Z)-2"));
        assert!(!is_replaced_name("Orders"));
        assert!(!is_replaced_name("Orders (replaced by Invoices)"));
        assert!(!is_replaced_name("Orders (replaced 2026-11-29)"));
        assert!(!is_replaced_name("Orders (replaced 20261129T120000Z-)"));
    }

    #[test]
    fn archive_entries_are_named_archive_bang_entry() {
        assert_eq!(
            relabel(
                "/tmp/.flowpack-tmp.1/a.flowpack!flows/x/export.json: cannot read: bad",
                Path::new("/tmp/.flowpack-tmp.1/a.flowpack"),
                "oci://r.example/a:1"
            ),
            "oci://r.example/a:1!flows/x/export.json: cannot read: bad"
        );
        assert_eq!(
            relabel(
                "a.flowpack!flows/x/export.json: SHA-256 1 does not match",
                Path::new("a.flowpack"),
                "a.flowpack"
            ),
            "a.flowpack!flows/x/export.json: SHA-256 1 does not match"
        );
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
    fn a_flow_pattern_matching_nothing_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let (l, r) = (dir.path().join("l.json"), dir.path().join("r.json"));
        std::fs::write(&l, doc("Orders", 2)).unwrap();
        std::fs::write(&r, doc("Orders", 1)).unwrap();
        let mut opts = DiffOptions::new(
            Side::Path(l.clone()),
            Side::Path(r.clone()),
            dir.path().to_path_buf(),
        );
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
