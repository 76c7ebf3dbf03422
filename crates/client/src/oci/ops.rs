//! An artifact file in and out of a registry: [`publish_file`] uploads a file as the one layer
//! of an artifact manifest, [`pull`] and [`pull_to_temp`] download it with its media types,
//! size and digest checked. What the file is (a flowpack archive) is the caller's business:
//! flowpack-action reads the archive's manifest for the annotations and verifies what was
//! pulled. No printing; reports returned.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tempfile::TempPath;

use super::client::{Access, RegistryClient, RegistryOptions};
use super::manifest::{
    ANNOTATION_TITLE, Descriptor, EMPTY_CONFIG, EMPTY_DIGEST, ImageManifest, LAYER_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
};
use super::reference::{check_digest, check_tag};
use super::{OciError, Reference};

/// What the manifest says about a published file, besides its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArtifactInfo {
    /// The tag written when the reference has none (flowpack: the package version, with
    /// `+build` metadata as `_build`, as tags allow no `+`).
    pub default_tag: String,
    /// The layer's file name (its `org.opencontainers.image.title` annotation).
    pub title: String,
    /// The manifest's annotations; empty values are left out.
    pub annotations: BTreeMap<String, String>,
}

impl ArtifactInfo {
    /// An artifact tagged `default_tag` when the reference has no tag, its layer named `title`.
    pub fn new(default_tag: impl Into<String>, title: impl Into<String>) -> ArtifactInfo {
        ArtifactInfo {
            default_tag: default_tag.into(),
            title: title.into(),
            annotations: BTreeMap::new(),
        }
    }
}

/// What [`publish_file`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishReport {
    /// `oci://HOST/REPO:TAG@sha256:<hex>`.
    pub reference: String,
    /// The tag written.
    pub tag: String,
    /// The manifest digest.
    pub digest: String,
    /// The layer's digest (the file's SHA-256).
    pub layer_digest: String,
    /// The file's size.
    pub size: u64,
    /// Whether the file's bytes were uploaded (`false`: the repository had them already).
    pub uploaded: bool,
}

/// Publishes `file` to `reference` as an OCI artifact: the empty config blob, the file's exact
/// bytes as the one layer (streamed from disk, skipped when the repository has them), then the
/// manifest with `info`'s annotations under the reference's tag — `info.default_tag` when the
/// reference has none.
pub fn publish_file(
    file: &Path,
    reference: &Reference,
    info: &ArtifactInfo,
    registry: &RegistryOptions,
) -> Result<PublishReport, OciError> {
    reference.check_publishable()?;
    let tag = match &reference.tag {
        Some(t) => t.clone(),
        None => info.default_tag.clone(),
    };
    check_tag(&tag).map_err(|reason| OciError::Reference {
        reference: reference.to_string(),
        reason: format!("the package version cannot be a tag: {reason}"),
    })?;
    let reference = reference.with_tag(&tag);
    let io = |error: std::io::Error| OciError::Io {
        path: file.display().to_string(),
        error,
    };
    let path = file;
    let mut file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let layer_digest = format!("sha256:{}", hex::encode(hasher.finalize()));

    let client = RegistryClient::new(&reference, Access::Push, registry.clone());
    client.upload_bytes(EMPTY_DIGEST, EMPTY_CONFIG)?;
    let uploaded = client.upload_file(&layer_digest, &file, size)?;

    let layer = Descriptor {
        media_type: LAYER_MEDIA_TYPE.to_string(),
        digest: layer_digest.clone(),
        size,
        annotations: BTreeMap::from([(ANNOTATION_TITLE.to_string(), info.title.clone())]),
    };
    let annotations = info
        .annotations
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let bytes = serde_json::to_vec(&ImageManifest::for_archive(layer, annotations))
        .expect("a manifest serialises");
    let digest = client.put_manifest(&tag, MANIFEST_MEDIA_TYPE, &bytes)?;
    Ok(PublishReport {
        reference: reference.pinned(&digest),
        tag,
        digest,
        layer_digest,
        size,
        uploaded,
    })
}

/// The largest layer [`FetchOptions::default`] accepts: 16 GiB (flowpack-action sets the
/// archive limit on the total uncompressed size, which no valid archive's zip can exceed).
pub const DEFAULT_MAX_SIZE: u64 = 16 * 1024 * 1024 * 1024;

/// How to download an artifact ([`pull`], [`pull_to_temp`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetchOptions {
    /// Connection, credentials, retries.
    pub registry: RegistryOptions,
    /// Largest layer accepted, in bytes; a layer that declares more is refused before any
    /// download, one that sends more is cut off. Default [`DEFAULT_MAX_SIZE`].
    pub max_size: u64,
    /// Replace an existing output file.
    pub force: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            registry: RegistryOptions::default(),
            max_size: DEFAULT_MAX_SIZE,
            force: false,
        }
    }
}

/// A downloaded archive in a temporary file (removed on drop unless persisted), its size and
/// digest checked, not yet verified as an archive.
#[derive(Debug)]
pub struct PulledArchive {
    temp: TempPath,
    /// The reference pulled.
    pub reference: Reference,
    /// The manifest digest (what the tag resolved to).
    pub digest: String,
    /// The layer's digest.
    pub layer_digest: String,
    /// The archive's size.
    pub size: u64,
    /// The manifest's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// What [`PulledArchive::persist`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PullReport {
    /// `oci://HOST/REPO[:TAG]@sha256:<hex>`.
    pub reference: String,
    /// The manifest digest.
    pub digest: String,
    /// The layer's digest (the archive's SHA-256).
    pub layer_digest: String,
    /// The archive's size.
    pub size: u64,
    /// Where it was written.
    pub path: PathBuf,
}

impl PulledArchive {
    /// The temporary file holding the archive (verify it here before persisting).
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// `oci://HOST/REPO[:TAG]@sha256:<hex>`.
    pub fn pinned(&self) -> String {
        self.reference.pinned(&self.digest)
    }

    /// The temporary file (removed on drop unless persisted) and the report of it as written
    /// to `out`, for a caller that puts the file in place itself.
    pub fn into_parts(self, out: &Path) -> (TempPath, PullReport) {
        let report = PullReport {
            reference: self.pinned(),
            digest: self.digest,
            layer_digest: self.layer_digest,
            size: self.size,
            path: out.to_path_buf(),
        };
        (self.temp, report)
    }

    /// Renames the archive to `out` (same directory as the temporary file, so atomic); an
    /// existing `out` is replaced only with `force`, checked without a race.
    pub fn persist(self, out: &Path, force: bool) -> Result<PullReport, OciError> {
        let (temp, report) = self.into_parts(out);
        let result = if force {
            temp.persist(out)
        } else {
            temp.persist_noclobber(out)
        };
        result.map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                OciError::Exists {
                    path: out.display().to_string(),
                }
            } else {
                OciError::Io {
                    path: out.display().to_string(),
                    error: e.error,
                }
            }
        })?;
        Ok(report)
    }
}

/// Pulls `reference` into a temporary file beside `out`; the caller verifies it and calls
/// [`PulledArchive::persist`]. An existing `out` is refused up front unless `options.force`.
pub fn pull(
    reference: &Reference,
    out: &Path,
    options: &FetchOptions,
) -> Result<PulledArchive, OciError> {
    if !options.force && out.exists() {
        return Err(OciError::Exists {
            path: out.display().to_string(),
        });
    }
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    pull_to_temp(reference, dir, options)
}

/// Pulls `reference` into a temporary file in `dir` (`.flowpack-tmp.<pid>.<random>`; such files
/// of processes that are gone are removed first): fetches the
/// manifest (checking its digest against a `@sha256:` reference and the registry's
/// `Docker-Content-Digest`), checks that it is a flowpack artifact (manifest media type,
/// artifactType, exactly one archive layer), refuses a layer over `options.max_size`, and
/// streams the layer with its size and digest checked. For commands that take `oci://`
/// references in place of files (`verify`, `inspect`, `diff`, `push`).
pub fn pull_to_temp(
    reference: &Reference,
    dir: &Path,
    options: &FetchOptions,
) -> Result<PulledArchive, OciError> {
    let target = reference
        .manifest_reference()
        .ok_or_else(|| OciError::Reference {
            reference: reference.to_string(),
            reason: "pull needs a tag or a digest (oci://HOST/REPO:TAG or …@sha256:HEX)".into(),
        })?;
    let invalid = |reason: String| OciError::Invalid {
        reference: reference.to_string(),
        reason,
    };
    let client = RegistryClient::new(reference, Access::Pull, options.registry.clone());
    let fetched = client.get_manifest(target, MANIFEST_MEDIA_TYPE)?;
    if let Some(want) = &reference.digest
        && &fetched.digest != want
    {
        return Err(OciError::Digest {
            what: format!("manifest {reference}"),
            expected: want.clone(),
            actual: fetched.digest,
        });
    }
    if !fetched.content_type.is_empty() && fetched.content_type != MANIFEST_MEDIA_TYPE {
        return Err(invalid(format!(
            "the registry serves a {:?}, not an OCI image manifest ({MANIFEST_MEDIA_TYPE:?})",
            fetched.content_type
        )));
    }
    let manifest: ImageManifest = serde_json::from_slice(&fetched.bytes)
        .map_err(|e| invalid(format!("the manifest does not parse: {e}")))?;
    let layer = manifest.archive_layer().map_err(invalid)?;
    check_digest(&layer.digest).map_err(|r| invalid(format!("layer {r}")))?;
    if layer.size > options.max_size {
        return Err(OciError::TooLarge {
            what: format!(
                "{reference}: layer {} of {} bytes",
                layer.digest, layer.size
            ),
            limit: options.max_size,
        });
    }
    let io = |error: std::io::Error| OciError::Io {
        path: dir.display().to_string(),
        error,
    };
    remove_stale_temporaries(dir);
    let mut temp = archive_temp(dir).map_err(io)?;
    client.download_blob(&layer.digest, layer.size, temp.as_file_mut())?;
    temp.as_file().sync_all().map_err(io)?;
    Ok(PulledArchive {
        temp: temp.into_temp_path(),
        reference: reference.clone(),
        digest: fetched.digest,
        layer_digest: layer.digest.clone(),
        size: layer.size,
        annotations: manifest.annotations,
    })
}

/// Removes `.flowpack-tmp.<pid>.*` files in `dir` left by a run that was killed: those whose
/// process is gone (Linux: no `/proc/<pid>`; elsewhere nothing is removed). Best effort.
fn remove_stale_temporaries(dir: &Path) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let own = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(".flowpack-tmp."))
            .and_then(|rest| rest.split('.').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != own
            && !Path::new(&format!("/proc/{pid}")).exists()
            && entry.file_type().is_ok_and(|t| t.is_file())
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The temporary file an archive is downloaded into, in `dir`: mode 0644 less the umask, as any
/// file the user asks for (an archive holds no secret), so the pulled file gets it too.
fn archive_temp(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&format!(".flowpack-tmp.{}.", std::process::id()))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn pulled_archives_are_0644_less_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        let umask = u32::from_str_radix(umask.split_whitespace().nth(1).unwrap(), 8).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let temp = archive_temp(dir.path()).unwrap();
        let mode = temp.as_file().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644 & !umask);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn stale_temporaries_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join(".flowpack-tmp.999999999.abc123");
        let alive = dir
            .path()
            .join(format!(".flowpack-tmp.{}.def456", std::process::id()));
        let parent = dir.path().join(".flowpack-tmp.1.ghi789");
        let other = dir.path().join("orders.flowpack");
        for p in [&dead, &alive, &parent, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        remove_stale_temporaries(dir.path());
        assert!(!dead.exists());
        assert!(alive.exists());
        assert!(parent.exists(), "pid 1 is alive");
        assert!(other.exists());
    }
}
