//! The archive manifest `flowpack.json` and its JSON Schema (versions 1, 2 and 3, specified in
//! [docs/archive-format.md](https://github.com/flowpack/flowpack/blob/main/docs/archive-format.md)).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The manifest's JSON Schema (draft 2020-12), embedded; it accepts versions 1, 2 and 3.
pub const MANIFEST_SCHEMA: &str = include_str!("../../schemas/manifest.schema.json");

/// The manifest format version this build writes.
pub const MANIFEST_FORMAT_VERSION: u32 = 3;

/// The manifest format versions this build reads (a version-1 manifest reads into the same
/// model: no flow has settings, `requires` items carry only names; versions 1 and 2 have no
/// `backup`).
pub const MANIFEST_READ_VERSIONS: [u32; 3] = [1, 2, 3];

/// The archive's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// 3 when written by this build; 1 or 2 in archives of earlier releases.
    pub format_version: u32,
    /// What the package is.
    pub package: Package,
    /// When the archive was made (RFC 3339).
    pub created_at: String,
    /// What made it, e.g. `flowpack 0.1.0`.
    pub generator: String,
    /// Where the flows came from.
    pub source: SourceInfo,
    /// One entry per flow, in path order.
    pub flows: Vec<FlowRecord>,
    /// Every entry except the manifest and signatures: path → `sha256:<hex>` of its
    /// uncompressed bytes.
    pub files: BTreeMap<String, String>,
    /// What an installer needs.
    pub requires: Requires,
    /// Values an installer supplies (stripped secrets, empty slots, systems, webhook secrets).
    pub inputs: Vec<Input>,
    /// What a backup of an environment is (version 3, only in archives written as backups of
    /// an environment): the environment, its sequence number, its time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupRecord>,
}

/// The `backup` of a version-3 manifest: which environment the archive backs up and where it
/// stands among that environment's backups. Retention orders backups by `sequence`, never by
/// time or file name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    /// The environment's name.
    pub env: String,
    /// The environment's base URL (redacted: no user information, query or fragment).
    pub url: String,
    /// One above the highest sequence of the environment's backups in the same place when it
    /// was written (the first is 1).
    pub sequence: u64,
    /// When the backup was made (RFC 3339, UTC), as `created_at`.
    pub created: String,
}

/// Package metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// Package name.
    pub name: String,
    /// Semantic version.
    pub version: String,
    /// What kind of package.
    pub kind: PackageKind,
    /// Free text.
    pub description: String,
}

/// The kind of package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum PackageKind {
    /// A backup of an environment.
    #[default]
    Backup,
    /// A release promoted across environments.
    Release,
    /// A marketplace package.
    Marketplace,
}

impl PackageKind {
    /// `backup`, `release` or `marketplace`.
    pub fn as_str(self) -> &'static str {
        match self {
            PackageKind::Backup => "backup",
            PackageKind::Release => "release",
            PackageKind::Marketplace => "marketplace",
        }
    }
}

/// Where the flows came from (each field may be empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SourceInfo {
    /// Environment name.
    pub environment: String,
    /// Platform URL (never with userinfo or query).
    pub url: String,
    /// Company profile name.
    pub company: String,
}

/// One flow of the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// Entry path, `flows/<slug>/export.json`.
    pub path: String,
    /// The flow's name.
    pub name: String,
    /// The flow's id in the source environment (empty when unknown).
    pub source_id: String,
    /// The export format version of the document.
    pub export_format: u32,
    /// Number of steps in the version the platform summarises (the deployed one, else the newest).
    pub steps: u64,
    /// SHA-256 (hex) of the entry's uncompressed bytes.
    pub sha256: String,
    /// Uncompressed size in bytes.
    pub size: u64,
    /// The flow's settings entry `flows/<slug>/flow.json`; `None` when the archive carries none
    /// for this flow (always in version-1 manifests).
    #[serde(default)]
    pub settings: Option<SettingsRecord>,
}

/// Where a flow's settings (`flow.json`) are and what their bytes hash to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsRecord {
    /// Entry path, `flows/<slug>/flow.json` (beside the flow's `export.json`).
    pub path: String,
    /// SHA-256 (hex) of the entry's uncompressed bytes.
    pub sha256: String,
    /// Uncompressed size in bytes.
    pub size: u64,
}

/// What installing the package needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Requires {
    /// The highest export format version among the flows.
    pub export_format: u32,
    /// Connector systems, sorted by name and protocol, unique.
    pub systems: Vec<RequiredSystem>,
    /// Scripts, sorted by name and language, unique.
    pub scripts: Vec<RequiredScript>,
    /// The documents' `dependencies`, sorted, unique (empty in version-1 manifests).
    #[serde(default)]
    pub dependencies: Vec<RequiredDependency>,
}

/// A connector system the package needs. Version-1 manifests list bare names (read with
/// `protocol: None`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "NamedItem")]
pub struct RequiredSystem {
    /// The system's name.
    pub name: String,
    /// Its protocol (`REST`, `SOAP`, …) as the document says; `None` when it says none.
    pub protocol: Option<String>,
}

/// A script the package needs. Version-1 manifests list bare names (read with
/// `language: None`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "NamedItem")]
pub struct RequiredScript {
    /// The script's name.
    pub name: String,
    /// Its language as the document says; `None` when it says none.
    pub language: Option<String>,
}

/// One of the documents' `dependencies` (opaque to flowpack).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequiredDependency {
    /// The dependency's `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The dependency's `name`.
    pub name: String,
}

/// A `requires` item as either version writes it: a bare name (1) or an object (2).
#[derive(Deserialize)]
#[serde(untagged)]
enum NamedItem {
    Name(String),
    Object {
        name: String,
        #[serde(default, alias = "language")]
        protocol: Option<String>,
    },
}

impl From<NamedItem> for RequiredSystem {
    fn from(item: NamedItem) -> RequiredSystem {
        match item {
            NamedItem::Name(name) => RequiredSystem {
                name,
                protocol: None,
            },
            NamedItem::Object { name, protocol } => RequiredSystem { name, protocol },
        }
    }
}

impl From<NamedItem> for RequiredScript {
    fn from(item: NamedItem) -> RequiredScript {
        match item {
            NamedItem::Name(name) => RequiredScript {
                name,
                language: None,
            },
            NamedItem::Object { name, protocol } => RequiredScript {
                name,
                language: protocol,
            },
        }
    }
}

/// The kind of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// A flow variable (key).
    Variable,
    /// A connector system (name) the target must provide.
    System,
    /// A credential of a system's authentication implementation.
    Credential,
    /// The HMAC secret key of one of the flow's webhooks (manifest version 2).
    WebhookSecret,
}

impl InputKind {
    /// `variable`, `system`, `credential` or `webhook_secret`.
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::Variable => "variable",
            InputKind::System => "system",
            InputKind::Credential => "credential",
            InputKind::WebhookSecret => "webhook_secret",
        }
    }
}

/// A value an installer supplies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// The flow's name.
    pub flow: String,
    /// What it is.
    pub kind: InputKind,
    /// Its name: the variable key, the system name, `<system>/<auth implementation>/<key>` for
    /// a credential under a system (else the JSON pointer of the value), or
    /// `webhooks/<N>/hmac_secret_key` for a webhook secret.
    pub name: String,
    /// The system a credential belongs to (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The authentication implementation a credential belongs to (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// The credential's key (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// For a webhook secret: the webhook's 0-based position in the flow's `flow.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<u32>,
    /// Whether a push must supply it (a stripped secret) or may go on without it.
    pub required: bool,
}

impl Input {
    /// An input with only a name (a variable, a system, or a credential known by its pointer).
    pub fn new(flow: &str, kind: InputKind, name: &str, required: bool) -> Input {
        Input {
            flow: flow.to_string(),
            kind,
            name: name.to_string(),
            system: None,
            auth: None,
            key: None,
            webhook: None,
            required,
        }
    }

    /// A credential of `system`'s authentication implementation `auth`, named
    /// `<system>/<auth>/<key>`.
    pub fn credential(flow: &str, system: &str, auth: &str, key: &str, required: bool) -> Input {
        Input {
            system: Some(system.to_string()),
            auth: Some(auth.to_string()),
            key: Some(key.to_string()),
            ..Input::new(
                flow,
                InputKind::Credential,
                &format!("{system}/{auth}/{key}"),
                required,
            )
        }
    }

    /// The HMAC secret key of webhook `index` (0-based position in `flow.json`), always required.
    pub fn webhook_secret(flow: &str, index: u32) -> Input {
        Input {
            webhook: Some(index),
            ..Input::new(
                flow,
                InputKind::WebhookSecret,
                &format!("webhooks/{index}/hmac_secret_key"),
                true,
            )
        }
    }
}

/// An input as a version-3 manifest lists it: once per distinct input (kind, name, system,
/// auth, key, webhook, required), with the indexes into `flows` of the flows that use it, in
/// ascending order. The model keeps [`Input`] per flow; this is only the written form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CompactInput {
    kind: InputKind,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook: Option<u32>,
    required: bool,
    flows: Vec<usize>,
}

type InputKey = (
    InputKind,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<u32>,
    bool,
);

fn input_key(i: &Input) -> InputKey {
    (
        i.kind,
        i.name.clone(),
        i.system.clone(),
        i.auth.clone(),
        i.key.clone(),
        i.webhook,
        i.required,
    )
}

/// The version-3 form of `inputs`: one entry per distinct input, in order of first use, with
/// the flows using it; `per_flow[i]` are the inputs of flow `i` (the writer knows which flow
/// each input is of: names alone would not tell flows of the same name apart).
#[cfg(test)]
pub(crate) fn compact_inputs(per_flow: &[&[Input]]) -> Vec<CompactInput> {
    let mut c = Compactor::default();
    for (at, inputs) in per_flow.iter().enumerate() {
        for input in *inputs {
            c.add(at, input);
        }
    }
    c.finish()
}

/// Builds the version-3 form of `inputs` flow by flow: one entry per distinct input, in order
/// of first use, with the flows using it.
#[derive(Default)]
pub(crate) struct Compactor {
    out: Vec<CompactInput>,
    index: BTreeMap<InputKey, usize>,
}

impl Compactor {
    /// Adds `input` as one of flow `at`'s (flows are added in ascending order).
    pub(crate) fn add(&mut self, at: usize, input: &Input) {
        let key = input_key(input);
        match self.index.get(&key) {
            Some(&e) => {
                if self.out[e].flows.last() != Some(&at) {
                    self.out[e].flows.push(at);
                }
            }
            None => {
                self.index.insert(key, self.out.len());
                self.out.push(CompactInput {
                    kind: input.kind,
                    name: input.name.clone(),
                    system: input.system.clone(),
                    auth: input.auth.clone(),
                    key: input.key.clone(),
                    webhook: input.webhook,
                    required: input.required,
                    flows: vec![at],
                });
            }
        }
    }

    /// The entries, in order of first use.
    pub(crate) fn finish(self) -> Vec<CompactInput> {
        self.out
    }
}

/// Reads a manifest's bytes (any version this build reads) into the model, straight into typed
/// fields — never a generic JSON value, so a manifest of 100,000 flows costs its records, not a
/// tree of values several times its size — and checks every rule of the manifest schema
/// ([`MANIFEST_SCHEMA`]) on them. Version 3 lists each input once with its flows' indexes, the
/// model lists them per flow, so they are expanded here (every reader of a manifest, an
/// archive's or an unpacked directory's, goes through this). Errors say `not valid JSON: …`,
/// `unsupported format_version …` or `does not match the manifest schema at "/pointer": …`.
pub fn manifest_from_slice(bytes: &[u8]) -> Result<Manifest, String> {
    read_manifest(bytes, true).map(|(m, _)| m)
}

/// [`manifest_from_slice`], checking every rule alike; without `expand`, a version-3
/// manifest's inputs are not expanded per flow: the model's `inputs` stay empty and the entries
/// as written are returned beside it (for readers that need the flows and files only — verify,
/// unpack, diff — so a manifest of many flows does not cost its inputs once per flow using
/// them). Versions 1 and 2 list their inputs per flow as written, and the model keeps them.
pub(crate) fn read_manifest(
    bytes: &[u8],
    expand: bool,
) -> Result<(Manifest, Option<Vec<CompactInput>>), String> {
    let schema =
        |at: &str, what: &str| format!("does not match the manifest schema at {at:?}: {what}");
    let json = |e: serde_json::Error| match e.classify() {
        serde_json::error::Category::Data => schema("", &e.to_string()),
        _ => format!("not valid JSON: {e}"),
    };
    // The version first (the rest of the document skipped unbuilt): what shape to expect.
    #[derive(Deserialize)]
    struct Version {
        format_version: u64,
    }
    let version = serde_json::from_slice::<Version>(bytes)
        .map_err(json)?
        .format_version;
    let format_version = u32::try_from(version)
        .ok()
        .filter(|v| MANIFEST_READ_VERSIONS.contains(v))
        .ok_or_else(|| {
            format!(
                "unsupported format_version {version} (known: {})",
                MANIFEST_READ_VERSIONS.map(|v| v.to_string()).join(", ")
            )
        })?;
    let raw: RawManifest = serde_json::from_slice(bytes).map_err(json)?;
    raw.into_manifest(format_version, expand)
        .map_err(|(at, what)| schema(&at, &what))
}

/// Deserializes a field that may be absent: `None` when it is, `Some` when it is there (with
/// `#[serde(default)]`); a `null` is only accepted where `T` accepts one.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A manifest of any version as written, in typed fields; [`RawManifest::into_manifest`]
/// checks what the schema says beyond the types and builds the model.
#[derive(Deserialize)]
struct RawManifest {
    package: Package,
    created_at: String,
    generator: String,
    source: SourceInfo,
    flows: Vec<RawFlow>,
    files: BTreeMap<String, String>,
    requires: RawRequires,
    inputs: Vec<RawInput>,
    #[serde(default, deserialize_with = "present")]
    backup: Option<BackupRecord>,
}

#[derive(Deserialize)]
struct RawFlow {
    path: String,
    name: String,
    source_id: String,
    export_format: u32,
    steps: u64,
    sha256: String,
    size: u64,
    /// Absent (`None`), `null` (`Some(None)`) or a record.
    #[serde(default, deserialize_with = "present")]
    settings: Option<Option<SettingsRecord>>,
}

#[derive(Deserialize)]
struct RawRequires {
    export_format: u64,
    systems: Vec<RawNamed>,
    scripts: Vec<RawNamed>,
    #[serde(default, deserialize_with = "present")]
    dependencies: Option<Vec<RequiredDependency>>,
}

/// A `requires` system or script: a bare name (version 1) or an object (later versions), whose
/// `protocol` (systems) or `language` (scripts) must be there, a string or `null`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawNamed {
    Name(String),
    Object {
        name: String,
        #[serde(default, deserialize_with = "present")]
        protocol: Option<Option<String>>,
        #[serde(default, deserialize_with = "present")]
        language: Option<Option<String>>,
    },
}

/// An input as any version lists it: per flow (`flow`, versions 1 and 2) or once with its
/// flows' indexes (`flows`, version 3).
#[derive(Deserialize)]
struct RawInput {
    #[serde(default, deserialize_with = "present")]
    flow: Option<String>,
    #[serde(default, deserialize_with = "present")]
    flows: Option<Vec<usize>>,
    kind: InputKind,
    name: String,
    /// Absent (`None`), `null` (`Some(None)`, version 1 only) or a string; so `auth`, `key`.
    #[serde(default, deserialize_with = "present")]
    system: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    auth: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    key: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    webhook: Option<u32>,
    required: bool,
}

/// Where a rule is broken (a JSON pointer) and what it says.
type Broken = (String, String);

/// Whether `s` is 64 lowercase hex digits.
fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `s` is `flows/<slug>/<file>` with a slug of `[a-z0-9][a-z0-9-]*`.
fn is_flow_path(s: &str, file: &str) -> bool {
    s.strip_prefix("flows/")
        .and_then(|r| r.strip_suffix(file))
        .and_then(|r| r.strip_suffix('/'))
        .is_some_and(|slug| {
            slug.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && slug
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Whether `s` is an RFC 3339 date-time as the schema's pattern has it:
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
fn is_timestamp(s: &str) -> bool {
    fn digits(s: &[u8]) -> bool {
        s.iter().all(u8::is_ascii_digit)
    }
    let b = s.as_bytes();
    if b.len() < 20
        || !digits(&b[0..4])
        || b[4] != b'-'
        || !digits(&b[5..7])
        || b[7] != b'-'
        || !digits(&b[8..10])
        || b[10] != b'T'
        || !digits(&b[11..13])
        || b[13] != b':'
        || !digits(&b[14..16])
        || b[16] != b':'
        || !digits(&b[17..19])
    {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        b"Z" => true,
        [sign, h1, h2, b':', m1, m2] => {
            matches!(sign, b'+' | b'-') && digits(&[*h1, *h2, *m1, *m2])
        }
        _ => false,
    }
}

impl RawManifest {
    /// The model, once every rule of the schema for `version` holds.
    fn into_manifest(
        self,
        version: u32,
        expand: bool,
    ) -> Result<(Manifest, Option<Vec<CompactInput>>), Broken> {
        let broken = |at: String, what: &str| Err((at, what.to_string()));
        if self.package.name.is_empty() {
            return broken("/package/name".into(), "empty");
        }
        if !is_timestamp(&self.created_at) {
            return broken("/created_at".into(), "not an RFC 3339 date-time");
        }
        let mut flows = Vec::with_capacity(self.flows.len());
        for (i, f) in self.flows.into_iter().enumerate() {
            let at = |field: &str| format!("/flows/{i}/{field}");
            if !is_flow_path(&f.path, "export.json") {
                return broken(at("path"), "not flows/<slug>/export.json");
            }
            if !matches!(f.export_format, 1 | 2) {
                return broken(at("export_format"), "neither 1 nor 2");
            }
            if !is_sha256_hex(&f.sha256) {
                return broken(at("sha256"), "not 64 lowercase hex digits");
            }
            let settings = match (version, f.settings) {
                (1, None) => None,
                (1, Some(_)) => return broken(at("settings"), "not in version 1"),
                (_, None) => return broken(at("settings"), "missing (null or a record)"),
                (_, Some(s)) => s,
            };
            if let Some(s) = &settings {
                if !is_flow_path(&s.path, "flow.json") {
                    return broken(at("settings/path"), "not flows/<slug>/flow.json");
                }
                if !is_sha256_hex(&s.sha256) {
                    return broken(at("settings/sha256"), "not 64 lowercase hex digits");
                }
            }
            flows.push(FlowRecord {
                path: f.path,
                name: f.name,
                source_id: f.source_id,
                export_format: f.export_format,
                steps: f.steps,
                sha256: f.sha256,
                size: f.size,
                settings,
            });
        }
        if let Some((path, _)) = self
            .files
            .iter()
            .find(|(_, v)| !v.strip_prefix("sha256:").is_some_and(is_sha256_hex))
        {
            return broken(
                format!("/files/{}", pointer_token(path)),
                "not sha256:<64 lowercase hex digits>",
            );
        }
        let requires = self.requires.into_requires(version)?;
        if let Some(b) = &self.backup {
            if version < 3 {
                return broken("/backup".into(), "only in version 3");
            }
            if b.env.is_empty() {
                return broken("/backup/env".into(), "empty");
            }
            if b.sequence == 0 {
                return broken("/backup/sequence".into(), "below 1");
            }
            if !is_timestamp(&b.created) {
                return broken("/backup/created".into(), "not an RFC 3339 date-time");
            }
        }
        let (inputs, compact) = inputs_of(self.inputs, version, &flows, expand)?;
        let manifest = Manifest {
            format_version: version,
            package: self.package,
            created_at: self.created_at,
            generator: self.generator,
            source: self.source,
            flows,
            files: self.files,
            requires,
            inputs,
            backup: self.backup,
        };
        Ok((manifest, compact))
    }
}

/// A key as a JSON pointer token (`~` and `/` escaped).
fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl RawRequires {
    fn into_requires(self, version: u32) -> Result<Requires, Broken> {
        let export_format = u32::try_from(self.export_format).map_err(|_| {
            (
                "/requires/export_format".to_string(),
                "too large".to_string(),
            )
        })?;
        // Version 1: bare names; later versions: objects naming their protocol or language.
        let named = |items: Vec<RawNamed>, list: &str, detail: &str| {
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    let at = format!("/requires/{list}/{i}");
                    match (version, item) {
                        (1, RawNamed::Name(name)) => Ok((name, None)),
                        (1, RawNamed::Object { .. }) => Err((at, "not a name".to_string())),
                        (_, RawNamed::Name(_)) => {
                            Err((at, format!("not an object with name and {detail}")))
                        }
                        (
                            _,
                            RawNamed::Object {
                                name,
                                protocol,
                                language,
                            },
                        ) => {
                            let detail_of = if detail == "protocol" {
                                protocol
                            } else {
                                language
                            };
                            detail_of.map(|d| (name, d)).ok_or_else(|| {
                                (
                                    format!("{at}/{detail}"),
                                    "missing (a string or null)".into(),
                                )
                            })
                        }
                    }
                })
                .collect::<Result<Vec<_>, Broken>>()
        };
        let systems = named(self.systems, "systems", "protocol")?
            .into_iter()
            .map(|(name, protocol)| RequiredSystem { name, protocol })
            .collect();
        let scripts = named(self.scripts, "scripts", "language")?
            .into_iter()
            .map(|(name, language)| RequiredScript { name, language })
            .collect();
        let dependencies = match (version, self.dependencies) {
            (1, d) => d.unwrap_or_default(),
            (_, Some(d)) => d,
            (_, None) => {
                return Err(("/requires/dependencies".into(), "missing (a list)".into()));
            }
        };
        Ok(Requires {
            export_format,
            systems,
            scripts,
            dependencies,
        })
    }
}

/// The model's inputs from the manifest's: version 3's compact entries expanded flow by flow,
/// earlier versions' as they are; each entry checked against its version's rules.
fn inputs_of(
    raw: Vec<RawInput>,
    version: u32,
    flows: &[FlowRecord],
    expand: bool,
) -> Result<(Vec<Input>, Option<Vec<CompactInput>>), Broken> {
    let mut listed = Vec::new();
    let mut compact = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let at = |field: &str| format!("/inputs/{i}/{field}");
        let broken = |field: &str, what: &str| Err((at(field), what.to_string()));
        if version == 1 && r.kind == InputKind::WebhookSecret {
            return broken("kind", "webhook_secret is not in version 1");
        }
        if version >= 2 && r.kind == InputKind::WebhookSecret && r.webhook.is_none() {
            return broken("webhook", "missing (a webhook secret names its webhook)");
        }
        // A part of a credential is a string from version 2 on (version 1 wrote none).
        let part = |value: Option<Option<String>>, field: &str| match value {
            Some(None) if version >= 2 => Err((at(field), "null, not a string".to_string())),
            v => Ok(v.flatten()),
        };
        let (system, auth, key) = (
            part(r.system, "system")?,
            part(r.auth, "auth")?,
            part(r.key, "key")?,
        );
        match (version, r.flow, r.flows) {
            (3, Some(_), _) => return broken("flow", "not in version 3 (flows lists them)"),
            (3, None, None) => return broken("flows", "missing"),
            (3, None, Some(f)) if f.is_empty() => return broken("flows", "empty"),
            (3, None, Some(f)) => compact.push(CompactInput {
                kind: r.kind,
                name: r.name,
                system,
                auth,
                key,
                webhook: r.webhook,
                required: r.required,
                flows: f,
            }),
            (_, _, Some(_)) => return broken("flows", "only in version 3"),
            (_, None, None) => return broken("flow", "missing"),
            (_, Some(flow), None) => listed.push(Input {
                flow,
                kind: r.kind,
                name: r.name,
                system,
                auth,
                key,
                webhook: r.webhook,
                required: r.required,
            }),
        }
    }
    if version < 3 {
        return Ok((listed, None));
    }
    let past = |e: String| ("/inputs".to_string(), e);
    if expand {
        Ok((expand_inputs(flows, &compact).map_err(past)?, None))
    } else {
        check_flow_indexes(flows.len(), &compact).map_err(past)?;
        Ok((Vec::new(), Some(compact)))
    }
}

/// Every flow index of the version-3 entries is one of the `flows` flows.
fn check_flow_indexes(flows: usize, compact: &[CompactInput]) -> Result<(), String> {
    for (e, c) in compact.iter().enumerate() {
        if let Some(f) = c.flows.iter().find(|&&f| f >= flows) {
            return Err(format!(
                "inputs[{e}] names flow index {f}, past the {flows} flows"
            ));
        }
    }
    Ok(())
}

/// The model's `inputs` from the version-3 form: flow by flow in the order of `flows`, each
/// flow's inputs in the order of the entries. An index past the flows is an error.
pub(crate) fn expand_inputs(
    flows: &[FlowRecord],
    compact: &[CompactInput],
) -> Result<Vec<Input>, String> {
    check_flow_indexes(flows.len(), compact)?;
    let mut per_flow: Vec<Vec<usize>> = vec![Vec::new(); flows.len()];
    let mut count = 0;
    for (e, c) in compact.iter().enumerate() {
        for &f in &c.flows {
            let slot = &mut per_flow[f];
            if slot.last() != Some(&e) {
                slot.push(e);
                count += 1;
            }
        }
    }
    // Sized once: growing by doubling would hold up to twice the inputs at the switch.
    let mut out = Vec::with_capacity(count);
    for (flow, entries) in flows.iter().zip(per_flow) {
        for e in entries {
            let c = &compact[e];
            out.push(Input {
                flow: flow.name.clone(),
                kind: c.kind,
                name: c.name.clone(),
                system: c.system.clone(),
                auth: c.auth.clone(),
                key: c.key.clone(),
                webhook: c.webhook,
                required: c.required,
            });
        }
    }
    Ok(out)
}

/// The manifest as written into `flowpack.json` (pretty, a trailing newline): version 3 and
/// later with `compact` as its `inputs` (which must expand to `m.inputs`).
pub(crate) fn manifest_bytes(m: &Manifest, compact: &[CompactInput]) -> Result<Vec<u8>, String> {
    #[derive(Serialize)]
    struct Written<'a> {
        format_version: u32,
        package: &'a Package,
        created_at: &'a str,
        generator: &'a str,
        source: &'a SourceInfo,
        flows: &'a [FlowRecord],
        files: &'a BTreeMap<String, String>,
        requires: &'a Requires,
        inputs: &'a [CompactInput],
        #[serde(skip_serializing_if = "Option::is_none")]
        backup: Option<&'a BackupRecord>,
    }
    let mut bytes = if m.format_version >= 3 {
        serde_json::to_vec_pretty(&Written {
            format_version: m.format_version,
            package: &m.package,
            created_at: &m.created_at,
            generator: &m.generator,
            source: &m.source,
            flows: &m.flows,
            files: &m.files,
            requires: &m.requires,
            inputs: compact,
            backup: m.backup.as_ref(),
        })
    } else {
        serde_json::to_vec_pretty(m)
    }
    .map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Formats a digest as the manifest's `files` value.
pub(crate) fn file_digest(hex: &str) -> String {
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator() -> jsonschema::Validator {
        let schema: serde_json::Value = serde_json::from_str(MANIFEST_SCHEMA).unwrap();
        jsonschema::validator_for(&schema).unwrap()
    }

    fn v1() -> serde_json::Value {
        serde_json::json!({
            "format_version": 1,
            "package": {"name": "p", "version": "1.0.0", "kind": "backup", "description": ""},
            "created_at": "2026-01-01T00:00:00Z", "generator": "flowpack",
            "source": {"environment": "", "url": "", "company": ""},
            "flows": [{"path": "flows/a/export.json", "name": "A", "source_id": "", "export_format": 2,
                "steps": 1, "sha256": "0".repeat(64), "size": 2}],
            "files": {"flows/a/export.json": format!("sha256:{}", "0".repeat(64))},
            "requires": {"export_format": 2, "systems": ["Shopify"], "scripts": ["Map"]},
            "inputs": [{"flow": "A", "kind": "credential", "name": "Shopify/Token/token", "required": true}]
        })
    }

    #[test]
    fn the_schema_is_valid_json_schema_and_rejects_a_bad_kind() {
        let v = validator();
        let mut m = v1();
        assert!(v.is_valid(&m));
        m["package"]["kind"] = "nightly".into();
        assert!(!v.is_valid(&m));
    }

    #[test]
    fn a_version_1_manifest_reads_into_the_version_2_model() {
        let m: Manifest = serde_json::from_value(v1()).unwrap();
        assert_eq!(m.flows[0].settings, None);
        assert_eq!(
            m.requires.systems,
            [RequiredSystem {
                name: "Shopify".into(),
                protocol: None
            }]
        );
        assert_eq!(m.requires.scripts[0].language, None);
        assert!(m.requires.dependencies.is_empty());
        assert_eq!(m.inputs[0].system, None);
    }

    #[test]
    fn the_schema_holds_each_version_to_its_own_shape() {
        let v = validator();
        // Version-2 shapes under format_version 1 are refused, and the other way round.
        let mut m = v1();
        m["flows"][0]["settings"] = serde_json::Value::Null;
        assert!(!v.is_valid(&m));
        let mut m = v1();
        m["format_version"] = 2.into();
        assert!(!v.is_valid(&m), "bare requires names in version 2");
        let mut m: Manifest = serde_json::from_value(v1()).unwrap();
        m.format_version = 2;
        m.inputs.push(Input::webhook_secret("A", 0));
        let mut value = serde_json::to_value(&m).unwrap();
        assert!(v.is_valid(&value), "{value}");
        assert_eq!(value["flows"][0]["settings"], serde_json::Value::Null);
        assert_eq!(
            value["requires"]["systems"][0]["protocol"],
            serde_json::Value::Null
        );
        assert_eq!(value["inputs"][1]["kind"], "webhook_secret");
        value["inputs"][1]
            .as_object_mut()
            .unwrap()
            .remove("webhook");
        assert!(!v.is_valid(&value), "a webhook secret names its webhook");
        let mut value = serde_json::to_value(&m).unwrap();
        value["format_version"] = 4.into();
        assert!(!v.is_valid(&value));
        // Version 3: compact inputs, and they are required there.
        let mut value = serde_json::to_value(&m).unwrap();
        value["format_version"] = 3.into();
        assert!(!v.is_valid(&value), "listed inputs in version 3");
        m.format_version = 3;
        let compact = compact_inputs(&[&m.inputs]);
        let mut value: serde_json::Value =
            serde_json::from_slice(&manifest_bytes(&m, &compact).unwrap()).unwrap();
        assert!(v.is_valid(&value), "{value}");
        assert_eq!(value["inputs"][1]["flows"], serde_json::json!([0]));
        value["inputs"][1]
            .as_object_mut()
            .unwrap()
            .remove("webhook");
        assert!(!v.is_valid(&value), "a webhook secret names its webhook");
        value["format_version"] = 2.into();
        assert!(!v.is_valid(&value), "compact inputs in version 2");
        // `backup` only in version 3, and whole there.
        m.backup = Some(BackupRecord {
            env: "prod".into(),
            url: "https://core.example.com".into(),
            sequence: 7,
            created: "2026-01-01T00:00:00Z".into(),
        });
        let mut value: serde_json::Value =
            serde_json::from_slice(&manifest_bytes(&m, &compact).unwrap()).unwrap();
        assert_eq!(value["backup"]["sequence"], 7);
        assert!(v.is_valid(&value), "{value}");
        value["format_version"] = 2.into();
        assert!(!v.is_valid(&value), "no backup in version 2");
        value["format_version"] = 3.into();
        value["backup"]["sequence"] = 0.into();
        assert!(!v.is_valid(&value), "sequences start at 1");
        value["backup"].as_object_mut().unwrap().remove("sequence");
        assert!(!v.is_valid(&value));
        let read: Manifest = serde_json::from_value(v1()).unwrap();
        assert_eq!(read.backup, None);
    }

    fn record(name: &str) -> FlowRecord {
        FlowRecord {
            path: format!("flows/{}/export.json", name.to_lowercase()),
            name: name.into(),
            source_id: String::new(),
            export_format: 2,
            steps: 0,
            sha256: "0".repeat(64),
            size: 0,
            settings: None,
        }
    }

    #[test]
    fn compact_inputs_list_each_input_once_and_expand_back_flow_by_flow() {
        // Two flows named alike keep their own inputs.
        let flows = [record("A"), record("B"), record("B"), record("C")];
        let token = |f: &str| Input::credential(f, "Shopify", "Token", "token", true);
        let per_flow = [
            vec![
                token("A"),
                Input::new("A", InputKind::Variable, "PIN", false),
            ],
            vec![token("B")],
            vec![
                Input::new("B", InputKind::Variable, "PIN", false),
                token("B"),
            ],
            vec![Input::webhook_secret("C", 0)],
        ];
        let refs: Vec<&[Input]> = per_flow.iter().map(Vec::as_slice).collect();
        let compact = compact_inputs(&refs);
        assert_eq!(compact.len(), 3);
        assert_eq!(compact[0].flows, [0, 1, 2]);
        assert_eq!(compact[1].flows, [0, 2]);
        assert_eq!(compact[2].flows, [3]);
        // Expanded flow by flow, each flow's inputs in entry order.
        let inputs: Vec<Input> = [
            &per_flow[0][..],
            &per_flow[1][..],
            &[per_flow[2][1].clone(), per_flow[2][0].clone()][..],
            &per_flow[3][..],
        ]
        .concat();
        assert_eq!(expand_inputs(&flows, &compact).unwrap(), inputs);
        let mut bad = compact.clone();
        bad[2].flows = vec![4];
        assert!(
            expand_inputs(&flows, &bad)
                .unwrap_err()
                .contains("inputs[2] names flow index 4, past the 4 flows")
        );
    }

    /// A version-2 and a version-3 manifest (as the writer writes them) with a flow that has
    /// settings, requires of every kind, inputs of every kind and (version 3) a backup record.
    fn v2_and_v3() -> [serde_json::Value; 2] {
        let mut m: Manifest = serde_json::from_value(v1()).unwrap();
        m.format_version = 2;
        m.flows[0].settings = Some(SettingsRecord {
            path: "flows/a/flow.json".into(),
            sha256: "1".repeat(64),
            size: 3,
        });
        m.files.insert(
            "flows/a/flow.json".into(),
            format!("sha256:{}", "1".repeat(64)),
        );
        m.requires.systems[0].protocol = Some("REST".into());
        m.requires.dependencies.push(RequiredDependency {
            kind: "package".into(),
            name: "x".into(),
        });
        m.inputs = vec![
            Input::credential("A", "Shopify", "Token", "token", true),
            Input::webhook_secret("A", 0),
            Input::new("A", InputKind::Variable, "PIN", false),
        ];
        let v2 = serde_json::to_value(&m).unwrap();
        m.format_version = 3;
        m.backup = Some(BackupRecord {
            env: "prod".into(),
            url: "https://core.example.com".into(),
            sequence: 7,
            created: "2026-01-01T00:00:00+01:00".into(),
        });
        let compact = compact_inputs(&[&m.inputs]);
        let v3 = serde_json::from_slice(&manifest_bytes(&m, &compact).unwrap()).unwrap();
        [v2, v3]
    }

    /// The typed reader accepts exactly what the schema accepts, on valid manifests of each
    /// version and on a breach of each rule the schema states; what it reads back is the model
    /// the writer wrote.
    #[test]
    fn the_typed_reader_holds_every_rule_of_the_schema() {
        use serde_json::{Value, json};
        let v = validator();
        let [v2, v3] = v2_and_v3();
        type Edit = fn(&mut Value);
        let edits: &[(&str, Edit)] = &[
            ("as written", |_| {}),
            ("no package name", |m| m["package"]["name"] = "".into()),
            ("bad kind", |m| m["package"]["kind"] = "nightly".into()),
            ("no description", |m| {
                m["package"].as_object_mut().unwrap().remove("description");
            }),
            ("created_at", |m| {
                m["created_at"] = "2026-01-01 00:00:00".into()
            }),
            ("created_at fraction", |m| {
                m["created_at"] = "2026-01-01T00:00:00.123Z".into()
            }),
            ("created_at offset", |m| {
                m["created_at"] = "2026-01-01T00:00:00+0100".into()
            }),
            ("no source", |m| {
                m.as_object_mut().unwrap().remove("source");
            }),
            ("flow path", |m| {
                m["flows"][0]["path"] = "flows/A/export.json".into()
            }),
            ("flow path dot", |m| {
                m["flows"][0]["path"] = "flows/-a/export.json".into()
            }),
            ("flow path deep", |m| {
                m["flows"][0]["path"] = "flows/a/b/export.json".into()
            }),
            ("export_format", |m| {
                m["flows"][0]["export_format"] = 3.into()
            }),
            ("steps", |m| m["flows"][0]["steps"] = (-1).into()),
            ("sha256 upper", |m| {
                m["flows"][0]["sha256"] = "A".repeat(64).into()
            }),
            ("sha256 short", |m| {
                m["flows"][0]["sha256"] = "a".repeat(63).into()
            }),
            ("no settings", |m| {
                m["flows"][0].as_object_mut().unwrap().remove("settings");
            }),
            ("null settings", |m| m["flows"][0]["settings"] = Value::Null),
            (
                "settings path",
                |m| {
                    m["flows"][0]["settings"] =
                        json!({"path": "flows/a/x.json", "sha256": "1".repeat(64), "size": 3})
                },
            ),
            (
                "settings digest",
                |m| {
                    m["flows"][0]["settings"] =
                        json!({"path": "flows/a/flow.json", "sha256": "x", "size": 3})
                },
            ),
            ("files digest", |m| {
                m["files"]["flows/a/export.json"] = "0".repeat(64).into()
            }),
            ("files not a string", |m| m["files"]["other/x"] = 1.into()),
            ("requires names", |m| {
                m["requires"]["systems"] = json!(["Shopify"])
            }),
            ("requires objects", |m| {
                m["requires"]["systems"] = json!([{"name": "Shopify", "protocol": null}])
            }),
            ("requires no protocol", |m| {
                m["requires"]["systems"] = json!([{"name": "Shopify"}])
            }),
            ("scripts no language", |m| {
                m["requires"]["scripts"] = json!([{"name": "Map"}])
            }),
            ("scripts language", |m| {
                m["requires"]["scripts"] = json!([{"name": "Map", "language": "js"}])
            }),
            ("no dependencies", |m| {
                m["requires"]
                    .as_object_mut()
                    .unwrap()
                    .remove("dependencies");
            }),
            ("negative export_format", |m| {
                m["requires"]["export_format"] = (-2).into()
            }),
            ("backup", |m| {
                m["backup"] = json!({"env": "prod", "url": "", "sequence": 1,
                    "created": "2026-01-01T00:00:00Z"})
            }),
            ("backup sequence 0", |m| {
                m["backup"] = json!({"env": "prod", "url": "", "sequence": 0,
                    "created": "2026-01-01T00:00:00Z"})
            }),
            ("backup no env", |m| {
                m["backup"] = json!({"env": "", "url": "", "sequence": 2,
                    "created": "2026-01-01T00:00:00Z"})
            }),
            (
                "backup created",
                |m| m["backup"] = json!({"env": "p", "url": "", "sequence": 2, "created": "x"}),
            ),
            ("null backup", |m| m["backup"] = Value::Null),
            ("input flow", |m| m["inputs"][0]["flow"] = "A".into()),
            ("input no flow", |m| {
                m["inputs"][0].as_object_mut().unwrap().remove("flow");
            }),
            ("input flows", |m| m["inputs"][0]["flows"] = json!([0])),
            ("input no flows", |m| {
                m["inputs"][0].as_object_mut().unwrap().remove("flows");
            }),
            ("input empty flows", |m| m["inputs"][0]["flows"] = json!([])),
            ("input flow index past", |m| {
                m["inputs"][0]["flows"] = json!([5])
            }),
            ("input kind", |m| m["inputs"][0]["kind"] = "token".into()),
            ("webhook kind", |m| {
                m["inputs"][0]["kind"] = "webhook_secret".into()
            }),
            ("null system", |m| m["inputs"][0]["system"] = Value::Null),
            ("no required", |m| {
                m["inputs"][0].as_object_mut().unwrap().remove("required");
            }),
            ("extra field", |m| m["extra"] = json!({"anything": [1, 2]})),
        ];
        // Rules the schema cannot state (a flow index past the flows) are the reader's own.
        let readers_own = ["input flow index past"];
        let mut accepted = 0;
        for (base, label) in [(v1(), "v1"), (v2, "v2"), (v3, "v3")] {
            let written = manifest_from_slice(&serde_json::to_vec(&base).unwrap()).unwrap();
            if label != "v3" {
                assert_eq!(
                    written,
                    serde_json::from_value::<Manifest>(base.clone()).unwrap()
                );
            }
            for (name, edit) in edits {
                let mut m = base.clone();
                edit(&mut m);
                let bytes = serde_json::to_vec(&m).unwrap();
                let typed = manifest_from_slice(&bytes);
                let schema = v.is_valid(&m) && !readers_own.contains(name);
                assert_eq!(
                    typed.is_ok(),
                    schema,
                    "{label} {name}: the schema says {schema}, the reader {typed:?}"
                );
                if let Err(e) = typed {
                    assert!(
                        e.starts_with("does not match the manifest schema at "),
                        "{e}"
                    );
                } else {
                    accepted += 1;
                }
            }
        }
        assert!(accepted > 3 * 3, "too few edits accepted: {accepted}");
        // The version first: another version, or none, is named as such.
        let mut m = v1();
        m["format_version"] = 4.into();
        let e = manifest_from_slice(&serde_json::to_vec(&m).unwrap()).unwrap_err();
        assert_eq!(e, "unsupported format_version 4 (known: 1, 2, 3)");
        let e = manifest_from_slice(b"{\"format_version\": 1,").unwrap_err();
        assert!(e.starts_with("not valid JSON: "), "{e}");
        let e = manifest_from_slice(b"{\"package\": {}}").unwrap_err();
        assert!(e.contains("missing field `format_version`"), "{e}");
    }

    #[test]
    fn credential_inputs_carry_their_parts_and_the_name_overlays_use() {
        let i = Input::credential("A", "Shopify", "Admin API token", "token", true);
        assert_eq!(i.name, "Shopify/Admin API token/token");
        let v = serde_json::to_value(&i).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"flow": "A", "kind": "credential", "name": "Shopify/Admin API token/token",
                "system": "Shopify", "auth": "Admin API token", "key": "token", "required": true})
        );
    }
}
