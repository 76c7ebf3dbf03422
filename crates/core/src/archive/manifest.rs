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
pub(crate) fn compact_inputs(per_flow: &[&[Input]]) -> Vec<CompactInput> {
    let mut out: Vec<CompactInput> = Vec::new();
    let mut index: BTreeMap<InputKey, usize> = BTreeMap::new();
    for (at, inputs) in per_flow.iter().enumerate() {
        for input in *inputs {
            let key = input_key(input);
            match index.get(&key) {
                Some(&e) => {
                    if out[e].flows.last() != Some(&at) {
                        out[e].flows.push(at);
                    }
                }
                None => {
                    index.insert(key, out.len());
                    out.push(CompactInput {
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
    }
    out
}

/// The model's `inputs` from the version-3 form: flow by flow in the order of `flows`, each
/// flow's inputs in the order of the entries. An index past the flows is an error.
/// A manifest from its JSON value: version 3 lists each input once with its flows' indexes, the
/// model lists them per flow, so they are expanded here (every reader of a manifest, an
/// archive's or an unpacked directory's, goes through this).
pub fn manifest_from_value(mut value: serde_json::Value) -> Result<Manifest, String> {
    let compact = if value["format_version"].as_u64().is_some_and(|v| v >= 3) {
        let listed = std::mem::replace(&mut value["inputs"], serde_json::Value::Array(vec![]));
        Some(
            serde_json::from_value::<Vec<CompactInput>>(listed)
                .map_err(|e| format!("inputs: {e}"))?,
        )
    } else {
        None
    };
    let mut m: Manifest = serde_json::from_value(value).map_err(|e| e.to_string())?;
    if let Some(compact) = compact {
        m.inputs = expand_inputs(&m.flows, &compact)?;
    }
    Ok(m)
}

pub(crate) fn expand_inputs(
    flows: &[FlowRecord],
    compact: &[CompactInput],
) -> Result<Vec<Input>, String> {
    let mut per_flow: Vec<Vec<usize>> = vec![Vec::new(); flows.len()];
    for (e, c) in compact.iter().enumerate() {
        for &f in &c.flows {
            let slot = per_flow.get_mut(f).ok_or_else(|| {
                format!(
                    "inputs[{e}] names flow index {f}, past the {} flows",
                    flows.len()
                )
            })?;
            if slot.last() != Some(&e) {
                slot.push(e);
            }
        }
    }
    let mut out = Vec::new();
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
