//! Marketplace packages: the deployed-only rule, what a package requires, and the semver rule
//! between two releases of one package.
//!
//! # Deployed only
//!
//! A marketplace package installs what runs, not a flow's history: the platform's blueprint
//! rule is that a package carries each flow's **deployed** version and nothing else.
//! [`deployed_only`] rewrites a document accordingly. The deployed version is the one whose
//! `status` is `Deployed`; this holds for both export format versions (version-1 versions carry
//! `status` too, and validation already requires `is_deployed` to agree with it). A flow with no
//! such version, or with several, is refused naming the flow and the file.
//!
//! Every other version is dropped and `metadata.import_summary` is recomputed with
//! [`compute_import_summary`] (in place when present; otherwise added to a version-2 document
//! before `metadata.format_version`, or last). Version 1 has no import summary, so a version-1
//! document gets one only when it already carried one. Everything else is kept as it was: key
//! order, fields flowpack does not model and the exact text of every number.
//!
//! Two consequences worth knowing:
//! - a version-1 document carries no `iteration`; migrating it derives the iteration from the
//!   version's position, so its deployed version becomes iteration 1 of the rewritten document;
//! - a document without a `metadata.format_version` stamp has its format detected from its steps.
//!   When the kept version alone would be detected differently (a version-1 deployed version
//!   without steps reads as version 2), the original format is stamped into
//!   `metadata.format_version`, so the rewritten document is read as what it is.
//!
//! # Requires
//!
//! [`requires`] lists what installing the documents needs: systems `{name, protocol}`, scripts
//! `{name, language}` and dependencies `{type, name}` as the documents declare them, each sorted
//! and deduplicated, and the highest export format version among the documents (0 for none).
//! Entries without a name (which validation reports) are left out.
//!
//! # The semver rule
//!
//! [`check_bump`] compares two releases of a package, each described by [`PackageFacts`]
//! (version, flow name → content digest, inputs), and refuses a version number that understates
//! the change:
//!
//! | change | bump needed |
//! |---|---|
//! | a flow removed (a renamed flow is a removal and an addition) | major |
//! | a new required input, or an optional input that became required | major |
//! | a new flow | minor |
//! | a new optional input | minor |
//! | anything else: a flow's content digest changed, an input removed or made optional | patch |
//!
//! The inputs of a new flow are new inputs: a new flow with a required input needs a major
//! bump, because an installer's existing overlay no longer supplies everything. The inputs of a
//! removed flow are covered by the removal.
//!
//! Before 1.0.0 the rules move one place right: a major change bumps the minor number
//! (`0.4.3` → `0.5.0`), and minor and patch changes bump the patch number (`0.4.3` → `0.4.4`).
//! A lower version is refused; the same version is accepted only when nothing changed (build
//! metadata is ignored, as semver precedence says). A pre-release of the version needed counts
//! (`2.0.0-rc.1` after `1.4.0` with a flow removed); after a pre-release, any higher version is
//! accepted, since pre-releases promise no compatibility.
//!
//! ```
//! use flowpack_core::marketplace::{check_bump, PackageFacts};
//!
//! let v1 = PackageFacts::new(
//!     "1.4.0".parse().unwrap(),
//!     [("Orders".to_string(), "aa".to_string()), ("Refunds".to_string(), "bb".to_string())],
//!     [],
//! )
//! .unwrap();
//! let v2 = PackageFacts::new(
//!     "1.5.0".parse().unwrap(),
//!     [("Refunds".to_string(), "bb".to_string())],
//!     [],
//! )
//! .unwrap();
//! let err = check_bump(&v1, &v2).unwrap_err();
//! assert_eq!(err.to_string(), "flow `Orders` was removed: needs 2.0.0 or later, got 1.5.0");
//! ```

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use semver::Version;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::archive::{FlowRecord, Manifest};
use crate::diff::{DiffError, normalise};
use crate::document::{Document, DocumentError, FormatVersion, VersionStatus};
use crate::summary::compute_import_summary;

/// How many changes an error message names before it says "and N more".
const NAMED_CHANGES: usize = 3;

/// Why a document cannot go into a marketplace package, or why a version number is refused.
/// Each message names the file, flow or version at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MarketplaceError {
    /// The flow has no version whose status is `Deployed`.
    #[error(
        "{origin}: flow `{flow}` has no deployed version; a marketplace package carries only each \
         flow's deployed version: deploy one, or pack a release instead"
    )]
    NoDeployedVersion {
        /// The file (or archive entry) the document came from.
        origin: String,
        /// The flow's name (`(unnamed)` when the document names none).
        flow: String,
    },
    /// More than one version has status `Deployed`, so which one runs is unclear.
    #[error(
        "{origin}: flow `{flow}` has {} versions with status Deployed ({}); a marketplace package \
         carries exactly one",
        .pointers.len(),
        .pointers.join(", ")
    )]
    SeveralDeployedVersions {
        /// The file (or archive entry) the document came from.
        origin: String,
        /// The flow's name.
        flow: String,
        /// The JSON pointers of the deployed versions.
        pointers: Vec<String>,
    },
    /// The rewritten document could not be read back (only for a document whose stamped format
    /// version is unknown, which reading it would already have refused).
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// A document could not be normalised for its content digest.
    #[error(transparent)]
    Digest(#[from] DiffError),
    /// A package version is not a semantic version.
    #[error("package `{package}`: version `{version}` is not a semantic version: {reason}")]
    BadVersion {
        /// The package's name.
        package: String,
        /// The version as written.
        version: String,
        /// What the semver parser said.
        reason: String,
    },
    /// Two flows of one package share a name, so releases cannot be compared flow by flow.
    #[error(
        "package `{package}`: two flows are named `{flow}`; flow names must be unique to compare \
         releases"
    )]
    DuplicateFlow {
        /// The package's name (empty for facts built from plain data).
        package: String,
        /// The shared name.
        flow: String,
    },
    /// The new version is lower than the previous one.
    #[error("version {got} is lower than the previous package's version {previous}")]
    LowerVersion {
        /// The previous package's version.
        previous: Version,
        /// The new version.
        got: Version,
    },
    /// The new version equals the previous one but the content changed.
    #[error(
        "version {version} is the previous package's version, but the content differs ({}): \
         give the package a higher version",
        describe(.changes)
    )]
    SameVersionChanged {
        /// The version both packages carry.
        version: Version,
        /// What changed.
        changes: Vec<Change>,
    },
    /// The new version does not bump enough for the changes.
    #[error(
        "{}: needs {needed} or later, got {got}{}",
        describe(.forcing),
        if .needed.major == 0 { " (before 1.0.0 a breaking change bumps the minor number)" } else { "" }
    )]
    BumpTooSmall {
        /// The changes that forced the bump (those at the level needed).
        forcing: Vec<Change>,
        /// The lowest version the changes allow.
        needed: Version,
        /// The version given.
        got: Version,
    },
}

/// `a; b; c (and 2 more)`.
fn describe(changes: &[Change]) -> String {
    let mut out = changes
        .iter()
        .take(NAMED_CHANGES)
        .map(Change::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if changes.len() > NAMED_CHANGES {
        out.push_str(&format!(" (and {} more)", changes.len() - NAMED_CHANGES));
    }
    out
}

/// Rewrites a document for a marketplace package: only the flow's deployed version is kept and
/// `metadata.import_summary` is recomputed (see the module docs). `origin` (a path or archive
/// entry) names the document in errors.
///
/// ```
/// use flowpack_core::Document;
/// use flowpack_core::marketplace::deployed_only;
///
/// let doc = Document::from_slice(br#"{"metadata":{"flow_name":"A"},"flow":{"name":"A",
///   "versions":[{"iteration":1,"status":"Deployed","is_deployed":true,"steps":[]},
///               {"iteration":2,"status":"Draft","is_deployed":false,"steps":[]}]},
///   "systems":[],"scripts":[],"dependencies":[]}"#, "a.json").unwrap();
/// let packed = deployed_only(&doc, "a.json").unwrap();
/// assert_eq!(packed.flow().unwrap().versions().count(), 1);
///
/// let draft_only = Document::from_slice(br#"{"flow":{"name":"B","versions":[
///   {"status":"Draft","steps":[]}]}}"#, "b.json").unwrap();
/// let err = deployed_only(&draft_only, "b.json").unwrap_err();
/// assert!(err.to_string().starts_with("b.json: flow `B` has no deployed version"));
/// ```
pub fn deployed_only(doc: &Document, origin: &str) -> Result<Document, MarketplaceError> {
    let flow_name = doc.flow_name().unwrap_or("(unnamed)").to_string();
    let deployed: Vec<usize> = doc
        .flow()
        .map(|flow| {
            flow.versions()
                .filter(|v| v.status() == Some(VersionStatus::Deployed))
                .map(|v| v.index())
                .collect()
        })
        .unwrap_or_default();
    let keep = match deployed.as_slice() {
        [] => {
            return Err(MarketplaceError::NoDeployedVersion {
                origin: origin.to_string(),
                flow: flow_name,
            });
        }
        [one] => *one,
        several => {
            return Err(MarketplaceError::SeveralDeployedVersions {
                origin: origin.to_string(),
                flow: flow_name,
                pointers: several
                    .iter()
                    .map(|i| format!("/flow/versions/{i}"))
                    .collect(),
            });
        }
    };

    let format = doc.format_version();
    let mut value = doc.value().clone();
    let versions = value
        .pointer_mut("/flow/versions")
        .and_then(Value::as_array_mut)
        .expect("a deployed version was found in flow.versions");
    let kept = versions.swap_remove(keep);
    *versions = vec![kept];

    let mut out = Document::from_value(value, origin)?;
    if out.format_version() != format {
        out.stamp_format_version(format);
    }
    let has_summary = out
        .metadata()
        .is_some_and(|m| m.contains_key("import_summary"));
    if format == FormatVersion::V2 || has_summary {
        let summary = compute_import_summary(&out);
        if let Some(metadata) = out
            .value_mut()
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
        {
            set_import_summary(metadata, summary);
        }
    }
    Ok(out)
}

/// Replaces `import_summary` in place, or inserts it before `format_version` (else last), so a
/// stamp stays the last key flowpack wrote.
fn set_import_summary(metadata: &mut Map<String, Value>, summary: Value) {
    if let Some(existing) = metadata.get_mut("import_summary") {
        *existing = summary;
    } else {
        let at = metadata
            .keys()
            .position(|k| k == "format_version")
            .unwrap_or(metadata.len());
        metadata.shift_insert(at, "import_summary".to_string(), summary);
    }
}

/// What installing a package needs: the manifest's `requires` object, the same types the
/// archive manifest (version 2) carries.
pub use crate::archive::{RequiredDependency, RequiredScript, RequiredSystem, Requires};

/// What installing these documents needs (see the module docs).
///
/// ```
/// use flowpack_core::Document;
/// use flowpack_core::marketplace::requires;
///
/// let doc = Document::from_slice(br#"{"flow":{"name":"A","versions":[]},
///   "systems":[{"system":{"name":"Shopify","protocol":"HTTP"}}],
///   "scripts":[{"name":"Tidy","language":"javascript"}],
///   "dependencies":[{"type":"script","name":"Tidy"}]}"#, "a.json").unwrap();
/// let r = requires(&[doc.clone(), doc]);
/// assert_eq!(r.systems.len(), 1);
/// assert_eq!(r.scripts[0].language.as_deref(), Some("javascript"));
/// assert_eq!(r.dependencies[0].kind, "script");
/// assert_eq!(r.export_format, 2);
/// ```
pub fn requires(docs: &[Document]) -> Requires {
    let mut systems = BTreeSet::new();
    let mut scripts = BTreeSet::new();
    let mut dependencies = BTreeSet::new();
    let mut export_format = 0;
    for doc in docs {
        export_format = export_format.max(doc.format_version().number());
        for system in doc.systems() {
            if let Some(name) = system.name() {
                systems.insert(RequiredSystem {
                    name: name.to_string(),
                    protocol: system
                        .raw()
                        .get("protocol")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                });
            }
        }
        for script in doc.scripts() {
            if let Some(name) = script.name() {
                scripts.insert(RequiredScript {
                    name: name.to_string(),
                    language: script.language().map(str::to_string),
                });
            }
        }
        for (kind, name) in doc.dependencies() {
            if let (Some(kind), Some(name)) = (kind, name) {
                dependencies.insert(RequiredDependency {
                    kind: kind.to_string(),
                    name: name.to_string(),
                });
            }
        }
    }
    Requires {
        export_format,
        systems: systems.into_iter().collect(),
        scripts: scripts.into_iter().collect(),
        dependencies: dependencies.into_iter().collect(),
    }
}

/// The SHA-256 (hex) of a document's content: the document as `flowpack diff` compares it
/// (migrated to the newest format, metadata and platform-set state dropped, secrets masked),
/// written with object keys sorted. A fresh export of an unchanged flow has the same content
/// digest, unlike the archive's byte digest, which covers `exported_at`. Array order counts,
/// so reordering steps changes the digest (a patch bump, never a missed one).
pub fn content_digest(doc: &Document, origin: &str) -> Result<String, MarketplaceError> {
    let normalised = normalise(doc, origin)?;
    let canonical = sorted_keys(normalised.value());
    let bytes = serde_json::to_vec(&canonical).expect("a JSON value serialises");
    Ok(hex::encode(Sha256::digest(&bytes)))
}

fn sorted_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted_keys(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}

/// One input of a package: a value an installer supplies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InputFact {
    /// The flow's name.
    pub flow: String,
    /// The manifest's `kind` (`variable`, `system`, `credential`, `webhook_secret`).
    pub kind: String,
    /// The input's name as the manifest lists it.
    pub name: String,
    /// Whether a push must supply it.
    pub required: bool,
}

/// What the semver rule compares of one release: its version, each flow's content digest by
/// name, and its inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageFacts {
    /// The package's version.
    #[serde(serialize_with = "version_text")]
    pub version: Version,
    /// Flow name → content digest (any string that changes when the flow's content does).
    pub flows: BTreeMap<String, String>,
    /// The inputs; an input listed both required and optional counts as required.
    pub inputs: BTreeSet<InputFact>,
}

impl PackageFacts {
    /// Facts from plain data. Two flows of one name are refused ([`MarketplaceError::DuplicateFlow`]).
    pub fn new(
        version: Version,
        flows: impl IntoIterator<Item = (String, String)>,
        inputs: impl IntoIterator<Item = InputFact>,
    ) -> Result<PackageFacts, MarketplaceError> {
        Self::build("", version, flows, inputs)
    }

    /// Facts from an archive's manifest: `package.version`, each flow's `sha256` by `name`,
    /// and `inputs`. The manifest's digest covers the document's bytes, `exported_at`
    /// included; to compare content only, build the facts with [`PackageFacts::new`] and
    /// [`content_digest`].
    pub(crate) fn from_manifest(manifest: &Manifest) -> Result<PackageFacts, MarketplaceError> {
        let package = &manifest.package.name;
        let version = Version::parse(&manifest.package.version).map_err(|e| {
            MarketplaceError::BadVersion {
                package: package.clone(),
                version: manifest.package.version.clone(),
                reason: e.to_string(),
            }
        })?;
        let flows = manifest
            .flows
            .iter()
            .map(|f| (f.name.clone(), f.sha256.clone()));
        let inputs = manifest.inputs.iter().map(|i| InputFact {
            flow: i.flow.clone(),
            kind: serde_json::to_value(i.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            name: i.name.clone(),
            required: i.required,
        });
        Self::build(package, version, flows, inputs)
    }

    /// Facts from an archive's manifest and its verified flows (as
    /// [`Archive::flows`](crate::archive::Archive::flows) yields them), each flow's digest being
    /// its [`content_digest`]: so a fresh export of an unchanged flow is no change. Flows the
    /// manifest lists but `flows` lacks keep the manifest's byte digest.
    pub fn from_manifest_with_documents(
        manifest: &Manifest,
        flows: &[(FlowRecord, Document)],
    ) -> Result<PackageFacts, MarketplaceError> {
        let mut facts = PackageFacts::from_manifest(manifest)?;
        for (record, doc) in flows {
            facts.set_content_digest(record, doc)?;
        }
        Ok(facts)
    }

    /// Takes the flow `record`'s digest from its verified document `doc` ([`content_digest`]):
    /// what [`from_manifest_with_documents`](PackageFacts::from_manifest_with_documents) does for
    /// each flow, for callers that read an archive's flows one at a time (holding no document
    /// longer than its own turn).
    pub fn set_content_digest(
        &mut self,
        record: &FlowRecord,
        doc: &Document,
    ) -> Result<(), MarketplaceError> {
        let digest = content_digest(doc, &record.path)?;
        self.flows.insert(record.name.clone(), digest);
        Ok(())
    }

    fn build(
        package: &str,
        version: Version,
        flows: impl IntoIterator<Item = (String, String)>,
        inputs: impl IntoIterator<Item = InputFact>,
    ) -> Result<PackageFacts, MarketplaceError> {
        let mut map = BTreeMap::new();
        for (name, digest) in flows {
            if map.contains_key(&name) {
                return Err(MarketplaceError::DuplicateFlow {
                    package: package.to_string(),
                    flow: name,
                });
            }
            map.insert(name, digest);
        }
        Ok(PackageFacts {
            version,
            flows: map,
            inputs: inputs.into_iter().collect(),
        })
    }

    /// Input identity (flow, kind, name) → required.
    fn input_map(&self) -> BTreeMap<(&str, &str, &str), bool> {
        let mut out: BTreeMap<(&str, &str, &str), bool> = BTreeMap::new();
        for i in &self.inputs {
            *out.entry((&i.flow, &i.kind, &i.name)).or_default() |= i.required;
        }
        out
    }
}

/// How large a version bump a change needs (before the 0.x shift).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bump {
    /// The patch number.
    Patch,
    /// The minor number.
    Minor,
    /// The major number.
    Major,
}

impl Bump {
    /// `patch`, `minor` or `major`.
    pub fn as_str(self) -> &'static str {
        match self {
            Bump::Patch => "patch",
            Bump::Minor => "minor",
            Bump::Major => "major",
        }
    }

    /// The lowest version after `previous` that this bump allows (the 0.x shift applied).
    pub(crate) fn minimum_after(self, previous: &Version) -> Version {
        let (major, minor, patch) = (previous.major, previous.minor, previous.patch);
        match (major, self) {
            (0, Bump::Major) => Version::new(0, minor + 1, 0),
            (0, _) => Version::new(0, minor, patch + 1),
            (_, Bump::Major) => Version::new(major + 1, 0, 0),
            (_, Bump::Minor) => Version::new(major, minor + 1, 0),
            (_, Bump::Patch) => Version::new(major, minor, patch + 1),
        }
    }
}

/// One difference between two releases, and the bump it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A flow of the previous release is gone (a renamed flow is removed and added).
    FlowRemoved {
        /// The flow's name.
        flow: String,
    },
    /// A flow is new.
    FlowAdded {
        /// The flow's name.
        flow: String,
    },
    /// A flow's content digest changed.
    FlowChanged {
        /// The flow's name.
        flow: String,
    },
    /// An input is new (the inputs of a new flow included).
    InputAdded {
        /// The input.
        input: InputFact,
    },
    /// An optional input became required.
    InputNowRequired {
        /// The input, as the new release lists it.
        input: InputFact,
    },
    /// A required input became optional.
    InputNowOptional {
        /// The input, as the new release lists it.
        input: InputFact,
    },
    /// An input of a flow that remains is gone.
    InputRemoved {
        /// The input, as the previous release listed it.
        input: InputFact,
    },
}

impl Change {
    /// The bump this change needs.
    pub fn bump(&self) -> Bump {
        match self {
            Change::FlowRemoved { .. } | Change::InputNowRequired { .. } => Bump::Major,
            Change::InputAdded { input } if input.required => Bump::Major,
            Change::FlowAdded { .. } | Change::InputAdded { .. } => Bump::Minor,
            Change::FlowChanged { .. }
            | Change::InputNowOptional { .. }
            | Change::InputRemoved { .. } => Bump::Patch,
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let input = |i: &InputFact| format!("{} input `{}` of flow `{}`", i.kind, i.name, i.flow);
        match self {
            Change::FlowRemoved { flow } => write!(f, "flow `{flow}` was removed"),
            Change::FlowAdded { flow } => write!(f, "flow `{flow}` was added"),
            Change::FlowChanged { flow } => write!(f, "flow `{flow}` changed"),
            Change::InputAdded { input: i } => write!(
                f,
                "{} {} was added",
                if i.required { "required" } else { "optional" },
                input(i)
            ),
            Change::InputNowRequired { input: i } => write!(f, "{} became required", input(i)),
            Change::InputNowOptional { input: i } => write!(f, "{} became optional", input(i)),
            Change::InputRemoved { input: i } => write!(f, "{} was removed", input(i)),
        }
    }
}

/// The outcome of an accepted version number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BumpReport {
    /// The previous release's version.
    #[serde(serialize_with = "version_text")]
    pub previous: Version,
    /// The new release's version.
    #[serde(serialize_with = "version_text")]
    pub next: Version,
    /// The bump the changes need; `None` when nothing changed.
    pub needed: Option<Bump>,
    /// The lowest version the changes allow; `None` when nothing changed.
    #[serde(serialize_with = "optional_version_text")]
    pub minimum: Option<Version>,
    /// Every change, the largest bumps first, then flow by flow.
    pub changes: Vec<Change>,
}

/// Versions serialise as their text (`1.4.0`).
fn version_text<S: serde::Serializer>(v: &Version, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn optional_version_text<S: serde::Serializer>(
    v: &Option<Version>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// The changes from `previous` to `next`, largest bumps first, then by flow name.
pub fn changes(previous: &PackageFacts, next: &PackageFacts) -> Vec<Change> {
    let mut out = Vec::new();
    for (flow, digest) in &previous.flows {
        match next.flows.get(flow) {
            None => out.push(Change::FlowRemoved { flow: flow.clone() }),
            Some(d) if d != digest => out.push(Change::FlowChanged { flow: flow.clone() }),
            Some(_) => {}
        }
    }
    for flow in next.flows.keys() {
        if !previous.flows.contains_key(flow) {
            out.push(Change::FlowAdded { flow: flow.clone() });
        }
    }
    let before = previous.input_map();
    let after = next.input_map();
    let fact = |(flow, kind, name): (&str, &str, &str), required: bool| InputFact {
        flow: flow.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        required,
    };
    for (&key, &required) in &after {
        let input = fact(key, required);
        match before.get(&key) {
            None => out.push(Change::InputAdded { input }),
            Some(false) if required => out.push(Change::InputNowRequired { input }),
            Some(true) if !required => out.push(Change::InputNowOptional { input }),
            Some(_) => {}
        }
    }
    for (&key, &required) in &before {
        // A removed flow's inputs go with it; the removal already needs the largest bump.
        if !after.contains_key(&key) && next.flows.contains_key(key.0) {
            out.push(Change::InputRemoved {
                input: fact(key, required),
            });
        }
    }
    out.sort_by(|a, b| {
        b.bump()
            .cmp(&a.bump())
            .then_with(|| flow_of(a).cmp(flow_of(b)))
    });
    out
}

fn flow_of(c: &Change) -> &str {
    match c {
        Change::FlowRemoved { flow }
        | Change::FlowAdded { flow }
        | Change::FlowChanged { flow } => flow,
        Change::InputAdded { input }
        | Change::InputNowRequired { input }
        | Change::InputNowOptional { input }
        | Change::InputRemoved { input } => &input.flow,
    }
}

/// Checks that `next`'s version is a large enough bump over `previous`'s for what changed (the
/// semver rule in the module docs). The error names what forced the bump:
/// "flow `Orders` was removed: needs 2.0.0 or later, got 1.4.0".
pub fn check_bump(
    previous: &PackageFacts,
    next: &PackageFacts,
) -> Result<BumpReport, MarketplaceError> {
    let changes = changes(previous, next);
    let needed = changes.iter().map(Change::bump).max();
    let minimum = needed.map(|b| b.minimum_after(&previous.version));
    match next.version.cmp_precedence(&previous.version) {
        Ordering::Less => {
            return Err(MarketplaceError::LowerVersion {
                previous: previous.version.clone(),
                got: next.version.clone(),
            });
        }
        Ordering::Equal if !changes.is_empty() => {
            return Err(MarketplaceError::SameVersionChanged {
                version: next.version.clone(),
                changes,
            });
        }
        Ordering::Equal => {}
        Ordering::Greater => {
            if let (Some(needed), Some(minimum)) = (needed, &minimum) {
                let triple = |v: &Version| (v.major, v.minor, v.patch);
                if previous.version.pre.is_empty() && triple(&next.version) < triple(minimum) {
                    return Err(MarketplaceError::BumpTooSmall {
                        forcing: changes.into_iter().filter(|c| c.bump() == needed).collect(),
                        needed: minimum.clone(),
                        got: next.version.clone(),
                    });
                }
            }
        }
    }
    Ok(BumpReport {
        previous: previous.version.clone(),
        next: next.version.clone(),
        needed,
        minimum,
        changes,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;
    use crate::validate::{Severity, ValidateOptions, validate};

    const V2: &[u8] = include_bytes!("../fixtures/reference/export-v2-order-sync.json");

    fn doc(v: Value) -> Document {
        Document::from_value(v, "test.json").unwrap()
    }

    fn errors(d: &Document) -> Vec<String> {
        validate(d, &ValidateOptions::default())
            .findings
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| format!("{} {} {}", f.code, f.pointer, f.message))
            .collect()
    }

    #[test]
    fn the_reference_keeps_its_deployed_version_and_nothing_else_changes() {
        let original = Document::from_slice(V2, "export-v2-order-sync.json").unwrap();
        let packed = deployed_only(&original, "export-v2-order-sync.json").unwrap();
        let versions: Vec<_> = packed.flow().unwrap().versions().collect();
        assert_eq!(versions.len(), 1);
        assert_eq!(versions[0].iteration(), Some(7));
        assert_eq!(versions[0].status(), Some(VersionStatus::Deployed));
        assert_eq!(errors(&packed), Vec::<String>::new());

        // Exactly the original with the draft dropped and the summary recomputed, in the same
        // key order.
        let mut expected = original.value().clone();
        let deployed = expected["flow"]["versions"][0].clone();
        expected["flow"]["versions"] = Value::Array(vec![deployed]);
        expected["metadata"]["import_summary"] = compute_import_summary(&packed);
        assert_eq!(
            serde_json::to_string(packed.value()).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
        // The deployed version was the summarised one, so the reference's counts stand.
        for key in ["setup_required", "imported_resources", "dependencies"] {
            assert_eq!(
                packed.value()["metadata"]["import_summary"][key],
                original.value()["metadata"]["import_summary"][key],
                "{key}"
            );
        }
    }

    #[test]
    fn the_migrate_fixtures_are_packed_or_refused_naming_flow_and_file() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/migrate/input");
        let mut packed = Vec::new();
        let mut refused = Vec::new();
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        for path in paths {
            let file = path.file_name().unwrap().to_str().unwrap().to_string();
            let original = Document::read(&path).unwrap();
            assert_eq!(original.format_version(), FormatVersion::V1, "{file}");
            match deployed_only(&original, &path.display().to_string()) {
                Ok(out) => {
                    assert_eq!(out.flow().unwrap().versions().count(), 1, "{file}");
                    let kept = out.flow().unwrap().versions().next().unwrap();
                    assert_eq!(kept.status(), Some(VersionStatus::Deployed), "{file}");
                    assert_eq!(errors(&out), Vec::<String>::new(), "{file}");
                    // Version 1 has no import summary and gets none.
                    assert_eq!(out.format_version(), FormatVersion::V1, "{file}");
                    assert_eq!(out.metadata(), original.metadata(), "{file}");
                    packed.push(file);
                }
                Err(e) => {
                    let flow = original.flow_name().unwrap();
                    assert!(
                        matches!(&e, MarketplaceError::NoDeployedVersion { .. }),
                        "{file}: {e}"
                    );
                    assert_eq!(
                        e.to_string(),
                        format!(
                            "{}: flow `{flow}` has no deployed version; a marketplace package \
                             carries only each flow's deployed version: deploy one, or pack a \
                             release instead",
                            path.display()
                        )
                    );
                    refused.push(file);
                }
            }
        }
        assert_eq!(packed, ["v2.branch_routes.json", "v2.two_versions.json"]);
        assert_eq!(
            refused,
            [
                "v2.empty_routes.json",
                "v2.legacy_reference.json",
                "v2.unknown_fields.json"
            ]
        );
    }

    #[test]
    fn a_v1_document_keeps_the_version_whose_status_is_deployed() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/migrate/input/v2.two_versions.json");
        let original = Document::read(&path).unwrap();
        let out = deployed_only(&original, "two_versions.json").unwrap();
        let deployed = original
            .flow()
            .unwrap()
            .versions()
            .find(|v| v.status_str() == Some("Deployed"))
            .unwrap();
        assert_eq!(
            &out.value()["flow"]["versions"][0],
            &Value::Object(deployed.raw().clone())
        );
    }

    #[test]
    fn several_deployed_versions_are_refused_naming_them() {
        let d = doc(json!({"flow":{"name":"Orders","versions":[
            {"status":"Deployed","steps":[]},{"status":"Draft","steps":[]},
            {"status":"Deployed","steps":[]}]}}));
        let e = deployed_only(&d, "orders.json").unwrap_err();
        assert_eq!(
            e.to_string(),
            "orders.json: flow `Orders` has 2 versions with status Deployed (/flow/versions/0, \
             /flow/versions/2); a marketplace package carries exactly one"
        );
    }

    #[test]
    fn a_document_without_versions_or_flow_is_refused() {
        let d = doc(json!({"metadata":{"flow_name":"Meta name"},"flow":{"versions":[]}}));
        let e = deployed_only(&d, "m.json").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("m.json: flow `Meta name` has no deployed version"),
            "{e}"
        );
        let d = doc(json!({"metadata":{}}));
        let e = deployed_only(&d, "n.json").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("n.json: flow `(unnamed)` has no deployed version"),
            "{e}"
        );
        // `is_deployed` alone does not make a version the deployed one: `status` decides.
        let d =
            doc(json!({"flow":{"name":"X","versions":[{"status":"Draft","is_deployed":true}]}}));
        assert!(matches!(
            deployed_only(&d, "x.json"),
            Err(MarketplaceError::NoDeployedVersion { .. })
        ));
    }

    #[test]
    fn unknown_fields_key_order_and_exact_numbers_survive() {
        let text = r#"{"zeta":{"b":1,"a":2},"metadata":{"x_first":true,"company_name":"Acme","flow_name":"F","import_summary":{"stale":1},"x_last":18446744073709551616},"flow":{"name":"F","x_flow":1.50,"versions":[{"iteration":1,"status":"Inactive","steps":[]},{"x_v":"k","iteration":2,"status":"Deployed","is_deployed":true,"steps":[{"id":123456789012345678901234567890,"type":"trigger","name":"T","x_step":[1e+2,-0.0]}]},{"iteration":3,"status":"Draft","steps":[]}],"x_after":null},"systems":[],"scripts":[],"dependencies":[],"omega":0.1000}"#;
        let original = Document::from_slice(text.as_bytes(), "f.json").unwrap();
        let out = deployed_only(&original, "f.json").unwrap();
        let summary = serde_json::to_string(&compute_import_summary(&out)).unwrap();
        let expected = format!(
            r#"{{"zeta":{{"b":1,"a":2}},"metadata":{{"x_first":true,"company_name":"Acme","flow_name":"F","import_summary":{summary},"x_last":18446744073709551616}},"flow":{{"name":"F","x_flow":1.50,"versions":[{{"x_v":"k","iteration":2,"status":"Deployed","is_deployed":true,"steps":[{{"id":123456789012345678901234567890,"type":"trigger","name":"T","x_step":[1e+2,-0.0]}}]}}],"x_after":null}},"systems":[],"scripts":[],"dependencies":[],"omega":0.1000}}"#
        );
        assert_eq!(serde_json::to_string(out.value()).unwrap(), expected);
        assert_eq!(
            out.value()["metadata"]["import_summary"]["imported_resources"]["flow_steps"],
            1
        );
    }

    #[test]
    fn a_v2_document_without_a_summary_gets_one_before_the_stamp() {
        let d = doc(json!({"metadata":{"flow_name":"F","format_version":2},
            "flow":{"name":"F","versions":[{"status":"Deployed","steps":[
                {"id":1,"type":"connector","name":"C"}]}]},
            "systems":[],"scripts":[],"dependencies":[]}));
        let out = deployed_only(&d, "f.json").unwrap();
        let keys: Vec<&str> = out.metadata().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["flow_name", "import_summary", "format_version"]);
        assert_eq!(
            out.value()["metadata"]["import_summary"]["imported_resources"]["connectors"],
            1
        );
    }

    #[test]
    fn a_v1_document_whose_deployed_version_has_no_steps_stays_version_1() {
        let d = doc(
            json!({"metadata":{"flow_name":"F"},"flow":{"name":"F","versions":[
            {"status":"Deployed","is_deployed":true,"steps":[]},
            {"status":"Draft","is_deployed":false,"steps":[{"name":"M","microservice":"map"}]}]}}),
        );
        assert_eq!(d.format_version(), FormatVersion::V1);
        let out = deployed_only(&d, "f.json").unwrap();
        assert_eq!(out.format_version(), FormatVersion::V1);
        assert_eq!(out.value()["metadata"]["format_version"], 1);
        assert!(out.value()["metadata"].get("import_summary").is_none());
        // When the kept steps still say version 1, nothing is stamped.
        let d = doc(
            json!({"metadata":{"flow_name":"F"},"flow":{"name":"F","versions":[
            {"status":"Deployed","is_deployed":true,"steps":[{"name":"M","microservice":"map"}]},
            {"status":"Draft","is_deployed":false,"steps":[]}]}}),
        );
        let out = deployed_only(&d, "f.json").unwrap();
        assert!(out.value()["metadata"].get("format_version").is_none());
    }

    #[test]
    fn requires_lists_systems_scripts_and_dependencies_sorted_and_unique() {
        let a = doc(json!({"flow":{"name":"A","versions":[]},
            "systems":[{"system":{"name":"Shopify","protocol":"HTTP"}},
                       {"system":{"name":"NetSuite","protocol":"SOAP"}},
                       {"system":{"label":"no name"}}],
            "scripts":[{"name":"Tidy","language":"javascript"},{"language":"python"}],
            "dependencies":[{"type":"script","name":"Tidy"},{"type":"system","name":"Shopify"},
                            {"name":"no type"}]}));
        let b = doc(json!({"flow":{"name":"B","versions":[]},
            "systems":[{"system":{"name":"Shopify","protocol":"HTTP"}},
                       {"system":{"name":"Shopify"}}],
            "scripts":[{"name":"Tidy","language":"javascript"},{"name":"Audit","language":"php"}],
            "dependencies":[{"type":"script","name":"Tidy"}]}));
        let v1 = Document::from_slice(
            include_bytes!("../fixtures/reference/export-v1-legacy.json"),
            "v1",
        )
        .unwrap();
        let r = requires(std::slice::from_ref(&v1));
        assert_eq!(r.export_format, 1);
        assert_eq!(r.scripts, []);
        let r = requires(&[a, b, v1]);
        assert_eq!(r.export_format, 2);
        let value = serde_json::to_value(&r).unwrap();
        assert_eq!(
            value,
            json!({
                "export_format": 2,
                "systems": [
                    {"name": "HubSpot", "protocol": "HTTP"},
                    {"name": "NetSuite", "protocol": "SOAP"},
                    {"name": "Shopify", "protocol": null},
                    {"name": "Shopify", "protocol": "HTTP"}
                ],
                "scripts": [
                    {"name": "Audit", "language": "php"},
                    {"name": "Tidy", "language": "javascript"}
                ],
                "dependencies": [
                    {"type": "script", "name": "Tidy"},
                    {"type": "system", "name": "Shopify"}
                ]
            })
        );
        let back: Requires = serde_json::from_value(value).unwrap();
        assert_eq!(back, r);
        assert_eq!(requires(&[]), Requires::default());
    }

    #[test]
    fn content_digest_ignores_the_export_act_but_not_the_flow() {
        let original = Document::from_slice(V2, "v2").unwrap();
        let mut reexport = original.value().clone();
        reexport["metadata"]["exported_at"] = "2027-01-01T00:00:00Z".into();
        reexport["flow"]["is_enabled"] = true.into();
        // Key order is not content either.
        let flow = reexport["flow"].as_object_mut().unwrap();
        let name = flow.shift_remove("name").unwrap();
        flow.insert("name".into(), name);
        let d0 = content_digest(&original, "v2").unwrap();
        assert_eq!(d0.len(), 64);
        assert_eq!(content_digest(&doc(reexport.clone()), "re").unwrap(), d0);
        reexport["flow"]["versions"][0]["steps"][0]["name"] = "Renamed step".into();
        assert_ne!(content_digest(&doc(reexport), "re").unwrap(), d0);

        // A version-1 document and its migration to version 2 have the same content.
        let v1 = Document::from_slice(
            include_bytes!("../fixtures/reference/export-v1-legacy.json"),
            "v1",
        )
        .unwrap();
        let migrated = crate::migrate::migrate(
            v1.clone(),
            &crate::migrate::MigrateOptions::new(crate::migrate::Target::Latest),
        )
        .unwrap()
        .document;
        assert_eq!(
            content_digest(&v1, "v1").unwrap(),
            content_digest(&migrated, "v1 migrated").unwrap()
        );
    }

    #[test]
    fn re_exporting_an_unchanged_flow_needs_no_new_version_but_a_change_does() {
        let facts_of = |version: &str, value: Value| {
            let packed = deployed_only(&doc(value), "orders.json").unwrap();
            let name = packed.flow_name().unwrap().to_string();
            let digest = content_digest(&packed, "orders.json").unwrap();
            PackageFacts::new(version.parse().unwrap(), [(name, digest)], []).unwrap()
        };
        let original: Value = serde_json::from_slice(V2).unwrap();
        let previous = facts_of("1.4.0", original.clone());
        let mut reexport = original.clone();
        reexport["metadata"]["exported_at"] = "2027-03-03T00:00:00Z".into();
        // A new draft is not packed, so it is no change either.
        reexport["flow"]["versions"][1]["steps"] = json!([]);
        assert!(check_bump(&previous, &facts_of("1.4.0", reexport.clone())).is_ok());
        reexport["flow"]["versions"][0]["steps"][1]["name"] = "Fetch orders".into();
        assert_eq!(
            check_bump(&previous, &facts_of("1.4.0", reexport.clone()))
                .unwrap_err()
                .to_string(),
            "version 1.4.0 is the previous package's version, but the content differs (flow \
             `Shopify > NetSuite Orders` changed): give the package a higher version"
        );
        assert!(check_bump(&previous, &facts_of("1.4.1", reexport)).is_ok());
    }

    // ---- the semver rule ----

    fn input(flow: &str, kind: &str, name: &str, required: bool) -> InputFact {
        InputFact {
            flow: flow.into(),
            kind: kind.into(),
            name: name.into(),
            required,
        }
    }

    fn facts(version: &str, flows: &[(&str, &str)], inputs: &[InputFact]) -> PackageFacts {
        PackageFacts::new(
            version.parse().unwrap(),
            flows.iter().map(|(n, d)| (n.to_string(), d.to_string())),
            inputs.iter().cloned(),
        )
        .unwrap()
    }

    /// The previous release most tests start from: two flows, one required and one optional
    /// input.
    fn base(version: &str) -> PackageFacts {
        facts(
            version,
            &[("Orders", "o1"), ("Refunds", "r1")],
            &[
                input("Orders", "credential", "Shopify/Admin/token", true),
                input("Orders", "variable", "PAGE_SIZE", false),
            ],
        )
    }

    fn with_version(f: &PackageFacts, version: &str) -> PackageFacts {
        PackageFacts {
            version: version.parse().unwrap(),
            ..f.clone()
        }
    }

    fn refused(prev: &PackageFacts, next: &PackageFacts) -> String {
        check_bump(prev, next).unwrap_err().to_string()
    }

    #[test]
    fn a_removed_flow_needs_a_major_bump() {
        let prev = base("1.4.0");
        let mut next = with_version(&prev, "1.5.0");
        next.flows.remove("Orders");
        next.inputs.clear();
        assert_eq!(
            refused(&prev, &next),
            "flow `Orders` was removed: needs 2.0.0 or later, got 1.5.0"
        );
        let ok = check_bump(&prev, &with_version(&next, "2.0.0")).unwrap();
        assert_eq!(ok.needed, Some(Bump::Major));
        assert_eq!(ok.minimum, Some(Version::new(2, 0, 0)));
        // The removed flow's inputs are not reported separately.
        assert_eq!(
            ok.changes,
            [Change::FlowRemoved {
                flow: "Orders".into()
            }]
        );
    }

    #[test]
    fn a_renamed_flow_is_a_removal_and_an_addition() {
        let prev = base("1.4.0");
        let mut next = with_version(&prev, "1.5.0");
        let digest = next.flows.remove("Refunds").unwrap();
        next.flows.insert("Refunds (EU)".into(), digest);
        assert_eq!(
            refused(&prev, &next),
            "flow `Refunds` was removed: needs 2.0.0 or later, got 1.5.0"
        );
        let ok = check_bump(&prev, &with_version(&next, "2.0.0")).unwrap();
        assert_eq!(
            ok.changes,
            [
                Change::FlowRemoved {
                    flow: "Refunds".into()
                },
                Change::FlowAdded {
                    flow: "Refunds (EU)".into()
                }
            ]
        );
    }

    #[test]
    fn a_new_required_input_needs_a_major_bump() {
        let prev = base("1.4.0");
        let mut next = with_version(&prev, "1.9.0");
        next.inputs
            .insert(input("Refunds", "credential", "Stripe/Key/api_key", true));
        assert_eq!(
            refused(&prev, &next),
            "required credential input `Stripe/Key/api_key` of flow `Refunds` was added: needs \
             2.0.0 or later, got 1.9.0"
        );
        assert!(check_bump(&prev, &with_version(&next, "2.0.0")).is_ok());
    }

    #[test]
    fn an_optional_input_that_becomes_required_needs_a_major_bump() {
        let prev = base("1.4.0");
        let mut next = with_version(&prev, "1.5.0");
        next.inputs
            .remove(&input("Orders", "variable", "PAGE_SIZE", false));
        next.inputs
            .insert(input("Orders", "variable", "PAGE_SIZE", true));
        assert_eq!(
            refused(&prev, &next),
            "variable input `PAGE_SIZE` of flow `Orders` became required: needs 2.0.0 or later, \
             got 1.5.0"
        );
    }

    #[test]
    fn a_new_flow_needs_at_least_a_minor_bump() {
        let prev = base("1.4.0");
        let mut next = with_version(&prev, "1.4.1");
        next.flows.insert("Returns".into(), "x".into());
        assert_eq!(
            refused(&prev, &next),
            "flow `Returns` was added: needs 1.5.0 or later, got 1.4.1"
        );
        let ok = check_bump(&prev, &with_version(&next, "1.5.0")).unwrap();
        assert_eq!(ok.needed, Some(Bump::Minor));
        // A larger bump than needed is fine.
        assert!(check_bump(&prev, &with_version(&next, "2.0.0")).is_ok());
    }

    #[test]
    fn a_new_flow_with_a_required_input_needs_a_major_bump() {
        let prev = base("1.4.0");
        let mut next = with_version(&prev, "1.5.0");
        next.flows.insert("Returns".into(), "x".into());
        next.inputs
            .insert(input("Returns", "credential", "Shopify/Admin/token", true));
        assert_eq!(
            refused(&prev, &next),
            "required credential input `Shopify/Admin/token` of flow `Returns` was added: needs \
             2.0.0 or later, got 1.5.0"
        );
    }

    #[test]
    fn a_new_optional_input_needs_at_least_a_minor_bump() {
        let prev = base("1.4.0");
        let mut next = with_version(&prev, "1.4.1");
        next.inputs
            .insert(input("Refunds", "variable", "REGION", false));
        assert_eq!(
            refused(&prev, &next),
            "optional variable input `REGION` of flow `Refunds` was added: needs 1.5.0 or later, \
             got 1.4.1"
        );
        assert!(check_bump(&prev, &with_version(&next, "1.5.0")).is_ok());
    }

    #[test]
    fn any_other_change_needs_at_least_a_patch_bump() {
        let prev = base("1.4.0");
        // A changed digest.
        let mut changed = with_version(&prev, "1.4.1");
        changed.flows.insert("Orders".into(), "o2".into());
        let ok = check_bump(&prev, &changed).unwrap();
        assert_eq!(ok.needed, Some(Bump::Patch));
        assert_eq!(ok.minimum, Some(Version::new(1, 4, 1)));
        // A removed input and a required input made optional.
        let mut relaxed = with_version(&prev, "1.4.1");
        relaxed.inputs = [input("Orders", "credential", "Shopify/Admin/token", false)].into();
        let ok = check_bump(&prev, &relaxed).unwrap();
        assert_eq!(ok.needed, Some(Bump::Patch));
        let shown: Vec<String> = ok.changes.iter().map(Change::to_string).collect();
        assert_eq!(
            shown,
            [
                "credential input `Shopify/Admin/token` of flow `Orders` became optional",
                "variable input `PAGE_SIZE` of flow `Orders` was removed"
            ]
        );
        // Each of them at the same version is refused.
        assert_eq!(
            refused(&prev, &with_version(&changed, "1.4.0")),
            "version 1.4.0 is the previous package's version, but the content differs (flow \
             `Orders` changed): give the package a higher version"
        );
    }

    #[test]
    fn the_same_version_is_accepted_only_without_changes() {
        let prev = base("1.4.0");
        let ok = check_bump(&prev, &prev).unwrap();
        assert_eq!(ok.needed, None);
        assert_eq!(ok.minimum, None);
        assert!(ok.changes.is_empty());
        // Build metadata does not make another version.
        assert!(check_bump(&prev, &with_version(&prev, "1.4.0+rebuild.2")).is_ok());
        let mut next = with_version(&prev, "1.4.0+rebuild.2");
        next.flows.insert("Returns".into(), "x".into());
        assert!(matches!(
            check_bump(&prev, &next),
            Err(MarketplaceError::SameVersionChanged { .. })
        ));
    }

    #[test]
    fn a_lower_version_is_refused_even_without_changes() {
        let prev = base("1.4.0");
        assert_eq!(
            refused(&prev, &with_version(&prev, "1.3.9")),
            "version 1.3.9 is lower than the previous package's version 1.4.0"
        );
        assert_eq!(
            refused(&prev, &with_version(&prev, "1.4.0-rc.1")),
            "version 1.4.0-rc.1 is lower than the previous package's version 1.4.0"
        );
    }

    #[test]
    fn before_1_0_0_the_rules_move_one_place_right() {
        let prev = base("0.4.3");
        let mut removed = with_version(&prev, "0.4.4");
        removed.flows.remove("Refunds");
        assert_eq!(
            refused(&prev, &removed),
            "flow `Refunds` was removed: needs 0.5.0 or later, got 0.4.4 (before 1.0.0 a \
             breaking change bumps the minor number)"
        );
        assert!(check_bump(&prev, &with_version(&removed, "0.5.0")).is_ok());
        assert!(check_bump(&prev, &with_version(&removed, "1.0.0")).is_ok());

        // A new flow (minor) and a changed flow (patch) both need a patch bump.
        let mut added = with_version(&prev, "0.4.4");
        added.flows.insert("Returns".into(), "x".into());
        let ok = check_bump(&prev, &added).unwrap();
        assert_eq!(ok.needed, Some(Bump::Minor));
        assert_eq!(ok.minimum, Some(Version::new(0, 4, 4)));
        let mut changed = with_version(&prev, "0.4.4");
        changed.flows.insert("Orders".into(), "o2".into());
        assert!(check_bump(&prev, &changed).is_ok());
        assert!(matches!(
            check_bump(&prev, &with_version(&added, "0.4.3")),
            Err(MarketplaceError::SameVersionChanged { .. })
        ));
        // A new required input is breaking before 1.0.0 too.
        let mut required = with_version(&prev, "0.4.9");
        required
            .inputs
            .insert(input("Refunds", "variable", "X", true));
        assert_eq!(
            refused(&prev, &required),
            "required variable input `X` of flow `Refunds` was added: needs 0.5.0 or later, got \
             0.4.9 (before 1.0.0 a breaking change bumps the minor number)"
        );
    }

    #[test]
    fn minimum_after_applies_each_rule() {
        let v = |s: &str| Version::parse(s).unwrap();
        assert_eq!(Bump::Major.minimum_after(&v("1.4.2")), v("2.0.0"));
        assert_eq!(Bump::Minor.minimum_after(&v("1.4.2")), v("1.5.0"));
        assert_eq!(Bump::Patch.minimum_after(&v("1.4.2")), v("1.4.3"));
        assert_eq!(Bump::Major.minimum_after(&v("0.4.2")), v("0.5.0"));
        assert_eq!(Bump::Minor.minimum_after(&v("0.4.2")), v("0.4.3"));
        assert_eq!(Bump::Patch.minimum_after(&v("0.4.2")), v("0.4.3"));
        assert_eq!(Bump::Major.minimum_after(&v("0.0.7")), v("0.1.0"));
    }

    #[test]
    fn pre_releases() {
        let prev = base("1.4.0");
        let mut removed = with_version(&prev, "2.0.0-rc.1");
        removed.flows.remove("Refunds");
        // A pre-release of the version needed counts…
        assert!(check_bump(&prev, &removed).is_ok());
        // …one of a lower version does not.
        assert_eq!(
            refused(&prev, &with_version(&removed, "1.5.0-rc.1")),
            "flow `Refunds` was removed: needs 2.0.0 or later, got 1.5.0-rc.1"
        );
        // After a pre-release, any higher version is accepted.
        let rc = with_version(&prev, "2.0.0-rc.1");
        assert!(check_bump(&rc, &with_version(&removed, "2.0.0-rc.2")).is_ok());
        assert!(check_bump(&rc, &with_version(&removed, "2.0.0")).is_ok());
    }

    #[test]
    fn many_forcing_changes_are_named_up_to_three() {
        let prev = facts(
            "3.1.0",
            &[("A", "a"), ("B", "b"), ("C", "c"), ("D", "d"), ("E", "e")],
            &[],
        );
        let next = facts("3.2.0", &[("E", "e2"), ("F", "f")], &[]);
        assert_eq!(
            refused(&prev, &next),
            "flow `A` was removed; flow `B` was removed; flow `C` was removed (and 1 more): needs \
             4.0.0 or later, got 3.2.0"
        );
        let ok = check_bump(&prev, &with_version(&next, "4.0.0")).unwrap();
        let bumps: Vec<Bump> = ok.changes.iter().map(Change::bump).collect();
        assert_eq!(
            bumps,
            [
                Bump::Major,
                Bump::Major,
                Bump::Major,
                Bump::Major,
                Bump::Minor,
                Bump::Patch
            ]
        );
    }

    #[test]
    fn facts_from_a_manifest() {
        let manifest: Manifest = serde_json::from_value(json!({
            "format_version": 1,
            "package": {"name": "shop-sync", "version": "1.4.0", "kind": "marketplace",
                        "description": ""},
            "created_at": "2026-01-01T00:00:00Z", "generator": "flowpack",
            "source": {"environment": "", "url": "", "company": ""},
            "flows": [
                {"path": "flows/orders/export.json", "name": "Orders", "source_id": "1",
                 "export_format": 2, "steps": 3, "sha256": "aa", "size": 10},
                {"path": "flows/refunds/export.json", "name": "Refunds", "source_id": "2",
                 "export_format": 2, "steps": 3, "sha256": "bb", "size": 10}
            ],
            "files": {},
            "requires": {"export_format": 2, "systems": [], "scripts": []},
            "inputs": [
                {"flow": "Orders", "kind": "credential", "name": "Shopify/Admin/token",
                 "required": true},
                {"flow": "Orders", "kind": "variable", "name": "PAGE_SIZE", "required": false}
            ]
        }))
        .unwrap();
        let f = PackageFacts::from_manifest(&manifest).unwrap();
        assert_eq!(
            f,
            facts(
                "1.4.0",
                &[("Orders", "aa"), ("Refunds", "bb")],
                &base("1.4.0").inputs.into_iter().collect::<Vec<_>>()
            )
        );

        // With the documents, digests are content digests.
        let reference = Document::from_slice(V2, "v2").unwrap();
        let with_docs = PackageFacts::from_manifest_with_documents(
            &manifest,
            &[(manifest.flows[0].clone(), reference.clone())],
        )
        .unwrap();
        assert_eq!(
            with_docs.flows["Orders"],
            content_digest(&reference, "v2").unwrap()
        );
        assert_eq!(with_docs.flows["Refunds"], "bb");
        assert_eq!(with_docs.inputs, f.inputs);

        let mut bad = manifest.clone();
        bad.package.version = "1.4".into();
        let e = PackageFacts::from_manifest(&bad).unwrap_err().to_string();
        assert!(
            e.starts_with("package `shop-sync`: version `1.4` is not a semantic version: "),
            "{e}"
        );
        let mut dup = manifest;
        dup.flows[1].name = "Orders".into();
        assert_eq!(
            PackageFacts::from_manifest(&dup).unwrap_err().to_string(),
            "package `shop-sync`: two flows are named `Orders`; flow names must be unique to \
             compare releases"
        );
    }
}
