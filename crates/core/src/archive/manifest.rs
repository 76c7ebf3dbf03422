//! The archive manifest `flowpack.json` (DESIGN §6) and its JSON Schema.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The manifest's JSON Schema (draft 2020-12), embedded.
pub const MANIFEST_SCHEMA: &str = include_str!("../../../../schemas/manifest.schema.json");

/// The manifest format version this build writes and reads.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;

/// The archive's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always 1.
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
    /// Values an installer supplies (stripped secrets, empty slots, systems).
    pub inputs: Vec<Input>,
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
    /// Platform URL.
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
    /// Number of steps in the flow's last version.
    pub steps: u64,
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
    /// Connector system names (sorted, unique).
    pub systems: Vec<String>,
    /// Script names (sorted, unique).
    pub scripts: Vec<String>,
}

/// The kind of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// A flow variable (key).
    Variable,
    /// A connector system (name) the target must provide.
    System,
    /// A credential `<system>/<auth implementation>/<key>`.
    Credential,
}

/// A value an installer supplies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// The flow's name.
    pub flow: String,
    /// What it is.
    pub kind: InputKind,
    /// Its name (variable key, system name, or overlay `[secrets]` key).
    pub name: String,
    /// Whether a push must supply it (a stripped secret) or may go on without it.
    pub required: bool,
}

/// Formats a digest as the manifest's `files` value.
pub fn file_digest(hex: &str) -> String {
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_is_valid_json_schema_and_rejects_a_bad_kind() {
        let schema: serde_json::Value = serde_json::from_str(MANIFEST_SCHEMA).unwrap();
        let v = jsonschema::validator_for(&schema).unwrap();
        let mut m = serde_json::json!({
            "format_version": 1,
            "package": {"name": "p", "version": "1.0.0", "kind": "backup", "description": ""},
            "created_at": "2026-01-01T00:00:00Z", "generator": "flowpack",
            "source": {"environment": "", "url": "", "company": ""},
            "flows": [], "files": {}, "requires": {"export_format": 2, "systems": [], "scripts": []},
            "inputs": []
        });
        assert!(v.is_valid(&m));
        m["package"]["kind"] = "nightly".into();
        assert!(!v.is_valid(&m));
    }
}
