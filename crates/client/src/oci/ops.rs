//! `publish` and `pull`: archives in and out of a registry. No printing; reports returned.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use flowpack_core::archive::{Archive, Limits};
use sha2::{Digest, Sha256};
use tempfile::TempPath;

use super::client::{Access, RegistryClient, RegistryOptions};
use super::manifest::{
    ANNOTATION_CREATED, ANNOTATION_DESCRIPTION, ANNOTATION_MANIFEST_SHA256, ANNOTATION_TITLE,
    ANNOTATION_VERSION, Descriptor, EMPTY_CONFIG, EMPTY_DIGEST, ImageManifest, LAYER_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
};
use super::reference::{check_digest, check_tag};
use super::{OciError, Reference};

/// How to publish.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PublishOptions {
    /// Connection, credentials, retries.
    pub registry: RegistryOptions,
    /// Limits for reading the archive's manifest.
    pub limits: Limits,
}

/// What [`publish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishReport {
    /// `oci://HOST/REPO:TAG@sha256:<hex>`.
    pub reference: String,
    /// The tag written.
    pub tag: String,
    /// The manifest digest.
    pub digest: String,
    /// The layer's digest (the archive's SHA-256).
    pub layer_digest: String,
    /// The archive's size.
    pub size: u64,
    /// Whether the archive's bytes were uploaded (`false`: the repository had them already).
    pub uploaded: bool,
}

/// Publishes `archive` to `reference` as an OCI artifact: the empty config blob, the archive's
/// exact bytes as the one layer (streamed from disk, skipped when the repository has them), then
/// the manifest under the reference's tag — the package version when the reference has none
/// (`+build` metadata becomes `_build`, as tags allow no `+`).
///
/// The archive's manifest must parse (its name, version, creation time and description become
/// annotations, the SHA-256 of `flowpack.json` the `dev.flowpack.manifest.sha256` one); its
/// signatures and entries are not verified here — `pull` verifies after download.
pub fn publish(
    archive: &Path,
    reference: &Reference,
    options: &PublishOptions,
) -> Result<PublishReport, OciError> {
    if reference.digest.is_some() {
        return Err(OciError::Reference {
            reference: reference.to_string(),
            reason: "publish writes a tag: give oci://HOST/REPO:TAG (or no tag for the package \
                     version), not a digest"
                .into(),
        });
    }
    let opened = Archive::open(archive, &options.limits)?;
    let manifest = opened.manifest()?;
    let manifest_sha256 = hex::encode(Sha256::digest(opened.manifest_bytes().unwrap_or_default()));
    drop(opened);
    let tag = match &reference.tag {
        Some(t) => t.clone(),
        None => manifest.package.version.replace('+', "_"),
    };
    check_tag(&tag).map_err(|reason| OciError::Reference {
        reference: reference.to_string(),
        reason: format!("the package version cannot be a tag: {reason}"),
    })?;
    let reference = reference.with_tag(&tag);

    let io = |error: std::io::Error| OciError::Io {
        path: archive.display().to_string(),
        error,
    };
    let mut file = File::open(archive).map_err(io)?;
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

    let client = RegistryClient::new(&reference, Access::Push, options.registry.clone());
    client.upload_bytes(EMPTY_DIGEST, EMPTY_CONFIG)?;
    let uploaded = client.upload_file(&layer_digest, &file, size)?;

    let package = &manifest.package;
    let layer = Descriptor {
        media_type: LAYER_MEDIA_TYPE.to_string(),
        digest: layer_digest.clone(),
        size,
        annotations: BTreeMap::from([(
            ANNOTATION_TITLE.to_string(),
            format!("{}-{}.flowpack", package.name, package.version),
        )]),
    };
    let mut annotations = BTreeMap::new();
    for (key, value) in [
        (ANNOTATION_VERSION, package.version.as_str()),
        (ANNOTATION_CREATED, manifest.created_at.as_str()),
        (ANNOTATION_DESCRIPTION, package.description.as_str()),
        (ANNOTATION_MANIFEST_SHA256, manifest_sha256.as_str()),
    ] {
        if !value.is_empty() {
            annotations.insert(key.to_string(), value.to_string());
        }
    }
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

/// How to pull.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PullOptions {
    /// Connection, credentials, retries.
    pub registry: RegistryOptions,
    /// Largest archive accepted, in bytes; a layer that declares more is refused before any
    /// download, one that sends more is cut off. Defaults to the archive limit on the total
    /// uncompressed size (1 GiB), which no valid archive's zip can exceed.
    pub max_size: u64,
    /// Replace an existing output file.
    pub force: bool,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            registry: RegistryOptions::default(),
            max_size: Limits::default().max_total_size,
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
    options: &PullOptions,
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
    options: &PullOptions,
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
