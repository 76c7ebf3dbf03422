//! The OCI image manifest and descriptor, as far as flowpack writes and reads them.
//!
//! Small serde types rather than the `oci-spec` crate: flowpack needs two structs, and
//! `oci-spec` brings `derive_builder`, `getset`, `strum` and `regex` (not optional) for the
//! whole image and runtime specs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `mediaType` of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// `artifactType` of a flowpack archive.
pub const ARTIFACT_TYPE: &str = "application/vnd.flowpack.archive.v1";
/// The layer holding the archive's exact bytes.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.flowpack.archive.v1+zip";
/// The empty config (OCI 1.1 artifacts).
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty config's bytes.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// The empty config's digest.
pub const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// Annotation: the layer's file name.
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
/// Annotation: the package version.
pub const ANNOTATION_VERSION: &str = "org.opencontainers.image.version";
/// Annotation: when the archive was made (RFC 3339).
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
/// Annotation: the package description.
pub const ANNOTATION_DESCRIPTION: &str = "org.opencontainers.image.description";
/// Annotation: SHA-256 (bare hex) of the archive's `flowpack.json`.
pub const ANNOTATION_MANIFEST_SHA256: &str = "dev.flowpack.manifest.sha256";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The content's media type.
    pub media_type: String,
    /// `sha256:<hex>` of the content.
    pub digest: String,
    /// The content's size in bytes.
    pub size: u64,
    /// Annotations; left out when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image manifest (version 1.1 fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`MANIFEST_MEDIA_TYPE`]; optional when reading (the response's `Content-Type` says it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Annotations; left out when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    /// The manifest of a flowpack archive: empty config, one layer.
    pub fn for_archive(layer: Descriptor, annotations: BTreeMap<String, String>) -> ImageManifest {
        ImageManifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
            artifact_type: Some(ARTIFACT_TYPE.to_string()),
            config: Descriptor {
                media_type: EMPTY_MEDIA_TYPE.to_string(),
                digest: EMPTY_DIGEST.to_string(),
                size: EMPTY_CONFIG.len() as u64,
                annotations: BTreeMap::new(),
            },
            layers: vec![layer],
            annotations,
        }
    }

    /// The one archive layer, after checking that this is a flowpack artifact; the error says
    /// which field is wrong.
    pub fn archive_layer(&self) -> Result<&Descriptor, String> {
        if self.schema_version != 2 {
            return Err(format!("schemaVersion is {}, not 2", self.schema_version));
        }
        if let Some(mt) = &self.media_type
            && mt != MANIFEST_MEDIA_TYPE
        {
            return Err(format!("mediaType is {mt:?}, not {MANIFEST_MEDIA_TYPE:?}"));
        }
        // OCI 1.1: without artifactType, the config's media type is the artifact type.
        let artifact = self
            .artifact_type
            .as_deref()
            .unwrap_or(self.config.media_type.as_str());
        if artifact != ARTIFACT_TYPE {
            return Err(format!(
                "artifactType is {artifact:?}, not a flowpack archive ({ARTIFACT_TYPE:?})"
            ));
        }
        let archives: Vec<&Descriptor> = self
            .layers
            .iter()
            .filter(|l| l.media_type == LAYER_MEDIA_TYPE)
            .collect();
        match (archives.as_slice(), self.layers.len()) {
            ([one], 1) => Ok(one),
            ([], _) => Err(format!(
                "no layer of media type {LAYER_MEDIA_TYPE:?} (layers: {})",
                self.layers
                    .iter()
                    .map(|l| format!("{:?}", l.media_type))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => Err(format!(
                "{} layers, a flowpack archive has exactly one",
                self.layers.len()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn layer() -> Descriptor {
        Descriptor {
            media_type: LAYER_MEDIA_TYPE.into(),
            digest: format!("sha256:{}", "ab".repeat(32)),
            size: 10,
            annotations: BTreeMap::from([(ANNOTATION_TITLE.into(), "demo-1.0.0.flowpack".into())]),
        }
    }

    #[test]
    fn the_empty_config_digest_is_that_of_its_bytes() {
        assert_eq!(
            EMPTY_DIGEST,
            format!("sha256:{}", hex::encode(Sha256::digest(EMPTY_CONFIG)))
        );
    }

    #[test]
    fn serialises_in_spec_order_and_leaves_out_empty_annotations() {
        let m = ImageManifest::for_archive(layer(), BTreeMap::new());
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{MANIFEST_MEDIA_TYPE}","artifactType":"{ARTIFACT_TYPE}","config":{{"mediaType":"{EMPTY_MEDIA_TYPE}","digest":"{EMPTY_DIGEST}","size":2}},"layers":[{{"mediaType":"{LAYER_MEDIA_TYPE}","digest":"sha256:{}","size":10,"annotations":{{"org.opencontainers.image.title":"demo-1.0.0.flowpack"}}}}]}}"#,
                "ab".repeat(32)
            )
        );
        assert_eq!(m.archive_layer().unwrap(), &layer());
    }

    #[test]
    fn refuses_other_artifacts_naming_the_field() {
        let mut m = ImageManifest::for_archive(layer(), BTreeMap::new());
        m.artifact_type = Some("application/vnd.cncf.helm.config.v1+json".into());
        assert!(
            m.archive_layer()
                .unwrap_err()
                .contains("artifactType is \"application/vnd.cncf.helm")
        );
        let mut m = ImageManifest::for_archive(layer(), BTreeMap::new());
        m.layers[0].media_type = "application/vnd.oci.image.layer.v1.tar+gzip".into();
        assert!(
            m.archive_layer()
                .unwrap_err()
                .contains("no layer of media type")
        );
        let mut m = ImageManifest::for_archive(layer(), BTreeMap::new());
        m.layers.push(layer());
        assert!(m.archive_layer().unwrap_err().contains("2 layers"));
        let mut m = ImageManifest::for_archive(layer(), BTreeMap::new());
        m.media_type = Some("application/vnd.oci.image.index.v1+json".into());
        assert!(m.archive_layer().unwrap_err().contains("mediaType is"));
        // Without artifactType, a config of the artifact's type is accepted.
        let mut m = ImageManifest::for_archive(layer(), BTreeMap::new());
        m.artifact_type = None;
        m.config.media_type = ARTIFACT_TYPE.into();
        assert!(m.archive_layer().is_ok());
    }
}
