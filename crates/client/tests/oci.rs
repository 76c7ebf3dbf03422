//! The OCI registry client and the publish/pull operations against a real registry (Debian's
//! `docker-registry`), and against a scripted one for what a real registry will not do.

#[path = "common/fake.rs"]
mod fake;
#[path = "common/registry.rs"]
mod registry;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowpack_client::oci::{
    self, Access, ArtifactInfo, Credentials, Descriptor, FetchOptions, ImageManifest, OciError,
    Reference, RegistryClient, RegistryOptions,
};
use registry::Registry;
use sha2::{Digest, Sha256};

/// A file to publish (the registry client does not care what it holds), in a directory that
/// lives as long as the returned guard.
fn artifact_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo-1.0.0.flowpack");
    let bytes: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// What flowpack-action says of package `demo` 1.0.0.
fn artifact_info() -> ArtifactInfo {
    let mut info = ArtifactInfo::new("1.0.0", "demo-1.0.0.flowpack");
    info.annotations.extend([
        (oci::ANNOTATION_VERSION.to_string(), "1.0.0".to_string()),
        (
            oci::ANNOTATION_CREATED.to_string(),
            "2026-01-01T00:00:00Z".to_string(),
        ),
        (oci::ANNOTATION_DESCRIPTION.to_string(), String::new()),
        (oci::ANNOTATION_MANIFEST_SHA256.to_string(), "ab".repeat(32)),
    ]);
    info
}

fn plain() -> RegistryOptions {
    let mut o = RegistryOptions::new();
    o.plain_http = true;
    o.sleep = Arc::new(|_| {});
    o
}

fn pull_options(registry: RegistryOptions) -> FetchOptions {
    let mut o = FetchOptions::default();
    o.registry = registry;
    o
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".flowpack-tmp."))
        .collect()
}

#[test]
fn publish_then_pull_by_tag_and_digest_gives_the_same_bytes() {
    let reg = Registry::start();
    let (_dir, archive) = artifact_file();
    let bytes = std::fs::read(&archive).unwrap();
    let reference = Reference::parse(&reg.reference("team/demo")).unwrap();
    let report = oci::publish_file(&archive, &reference, &artifact_info(), &plain()).unwrap();
    // No tag given: the default tag (flowpack's package version) is the tag.
    assert_eq!(report.tag, "1.0.0");
    assert_eq!(
        report.layer_digest,
        format!("sha256:{}", sha256_hex(&bytes))
    );
    assert_eq!(report.size, bytes.len() as u64);
    assert!(report.uploaded);
    assert_eq!(
        report.reference,
        format!("oci://{}/team/demo:1.0.0@{}", reg.host, report.digest)
    );

    // The manifest is laid out as documented, its digest that of its bytes.
    let client = RegistryClient::new(&reference, Access::Pull, plain());
    let fetched = client
        .get_manifest("1.0.0", oci::MANIFEST_MEDIA_TYPE)
        .unwrap();
    assert_eq!(fetched.digest, report.digest);
    let m: ImageManifest = serde_json::from_slice(&fetched.bytes).unwrap();
    assert_eq!(m.artifact_type.as_deref(), Some(oci::ARTIFACT_TYPE));
    assert_eq!(m.config.media_type, oci::EMPTY_MEDIA_TYPE);
    assert_eq!(m.config.digest, oci::EMPTY_DIGEST);
    let layer = m.archive_layer().unwrap();
    assert_eq!(layer.digest, report.layer_digest);
    assert_eq!(
        layer
            .annotations
            .get(oci::ANNOTATION_TITLE)
            .map(String::as_str),
        Some("demo-1.0.0.flowpack")
    );
    assert_eq!(
        m.annotations
            .get(oci::ANNOTATION_VERSION)
            .map(String::as_str),
        Some("1.0.0")
    );
    assert!(m.annotations.contains_key(oci::ANNOTATION_CREATED));
    assert_eq!(
        m.annotations[oci::ANNOTATION_MANIFEST_SHA256],
        "ab".repeat(32)
    );
    // Empty annotations are left out.
    assert!(!m.annotations.contains_key(oci::ANNOTATION_DESCRIPTION));

    // A second publish finds the blob and writes the same manifest.
    let again = oci::publish_file(
        &archive,
        &reference.with_tag("stable"),
        &artifact_info(),
        &plain(),
    )
    .unwrap();
    assert!(!again.uploaded);
    assert_eq!(again.digest, report.digest);

    let out = tempfile::tempdir().unwrap();
    for r in [
        format!("oci://{}/team/demo:stable", reg.host),
        format!("oci://{}/team/demo@{}", reg.host, report.digest),
    ] {
        let dest = out.path().join("pulled.flowpack");
        let mut opts = pull_options(plain());
        opts.force = true;
        let pulled = oci::pull(&Reference::parse(&r).unwrap(), &dest, &opts).unwrap();
        assert_eq!(pulled.digest, report.digest);
        assert_eq!(std::fs::read(pulled.path()).unwrap(), bytes);
        let done = pulled.persist(&dest, true).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), bytes, "{r}");
        assert!(
            done.reference.ends_with(&report.digest),
            "{}",
            done.reference
        );
        assert!(temp_files(out.path()).is_empty());
    }

    // An existing output is refused without force, before anything is downloaded.
    let dest = out.path().join("pulled.flowpack");
    let err = oci::pull(
        &Reference::parse(&report.reference).unwrap(),
        &dest,
        &pull_options(plain()),
    )
    .unwrap_err();
    assert!(matches!(err, OciError::Exists { .. }), "{err}");
}

#[test]
fn unknown_tags_and_digests_are_rejected_by_name() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sha256:{}", "0".repeat(64));
    for r in [
        reg.reference("team/none:1.0.0"),
        reg.reference(&format!("team/none@{missing}")),
    ] {
        let err = oci::pull_to_temp(
            &Reference::parse(&r).unwrap(),
            dir.path(),
            &pull_options(plain()),
        )
        .unwrap_err();
        assert!(err.rejects_input(), "{err}");
        let text = err.to_string();
        assert!(text.contains("not found (404)"), "{text}");
        assert!(
            text.contains("MANIFEST_UNKNOWN") || text.contains("NAME_UNKNOWN"),
            "{text}"
        );
    }
    assert!(temp_files(dir.path()).is_empty());
}

#[test]
fn a_foreign_artifact_is_refused_naming_its_type() {
    let reg = Registry::start();
    let reference = Reference::parse(&reg.reference("team/chart:1.0.0")).unwrap();
    let client = RegistryClient::new(&reference, Access::Push, plain());
    let config = br#"{"name":"chart"}"#;
    let layer = b"not an archive";
    let digest = |b: &[u8]| format!("sha256:{}", sha256_hex(b));
    client.upload_bytes(&digest(config), config).unwrap();
    client.upload_bytes(&digest(layer), layer).unwrap();
    let m = ImageManifest {
        schema_version: 2,
        media_type: Some(oci::MANIFEST_MEDIA_TYPE.into()),
        artifact_type: None,
        config: Descriptor {
            media_type: "application/vnd.cncf.helm.config.v1+json".into(),
            digest: digest(config),
            size: config.len() as u64,
            annotations: BTreeMap::new(),
        },
        layers: vec![Descriptor {
            media_type: "application/vnd.cncf.helm.chart.content.v1.tar+gzip".into(),
            digest: digest(layer),
            size: layer.len() as u64,
            annotations: BTreeMap::new(),
        }],
        annotations: BTreeMap::new(),
    };
    client
        .put_manifest(
            "1.0.0",
            oci::MANIFEST_MEDIA_TYPE,
            &serde_json::to_vec(&m).unwrap(),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = oci::pull_to_temp(&reference, dir.path(), &pull_options(plain())).unwrap_err();
    assert!(err.rejects_input(), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "{reference}: not a flowpack archive: artifactType is \
             \"application/vnd.cncf.helm.config.v1+json\", not a flowpack archive \
             (\"application/vnd.flowpack.archive.v1\")"
        )
    );
}

#[test]
fn basic_auth_registry_needs_the_credentials_and_never_shows_them() {
    let reg = Registry::start_with_auth("ci", "pa55-w0rd-xyz");
    let (_dir, archive) = artifact_file();
    let reference = Reference::parse(&reg.reference("team/demo:1.0.0")).unwrap();

    let err = oci::publish_file(&archive, &reference, &artifact_info(), &plain()).unwrap_err();
    // A caller decides on the reason (ask for credentials), not on the words.
    assert!(
        matches!(
            err,
            OciError::Unauthenticated {
                reason: oci::AuthFailure::NoCredentials,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.rejects_input());
    assert!(
        err.to_string()
            .contains("the registry demands credentials: set FLOWPACK_REGISTRY_USER and FLOWPACK_REGISTRY_PASSWORD"),
        "{err}"
    );

    let mut wrong = plain();
    wrong.credentials = Some(Credentials::new("ci", "not-the-password"));
    let err = oci::publish_file(&archive, &reference, &artifact_info(), &wrong).unwrap_err();
    assert!(
        matches!(
            err,
            OciError::Unauthenticated {
                reason: oci::AuthFailure::CredentialsRefused,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("were refused"), "{err}");
    assert!(!err.to_string().contains("not-the-password"), "{err}");

    let mut right = plain();
    right.credentials = Some(Credentials::new("ci", "pa55-w0rd-xyz"));
    let report = oci::publish_file(&archive, &reference, &artifact_info(), &right).unwrap();
    assert!(!format!("{report:?}").contains("pa55"));
    let dir = tempfile::tempdir().unwrap();
    let pulled = oci::pull_to_temp(&reference, dir.path(), &pull_options(right)).unwrap();
    assert_eq!(
        std::fs::read(pulled.path()).unwrap(),
        std::fs::read(&archive).unwrap()
    );
    assert!(!format!("{pulled:?}").contains("pa55"));
}

/// A scripted registry serving the artifact `a:1` whose layer is `served` while the descriptor
/// claims the digest and size of `claimed`.
fn scripted_registry(claimed: &[u8], served: &[u8]) -> String {
    fake::artifact("a", "1", claimed, served.to_vec()).0
}

#[test]
fn a_layer_whose_bytes_do_not_match_its_digest_is_refused_and_removed() {
    for served in [
        &b"the archive, tampered"[..],
        &b"the archive, sent"[..],
        &b"short"[..],
    ] {
        let host = scripted_registry(b"the archive, sent!", served);
        let dir = tempfile::tempdir().unwrap();
        let reference = Reference::parse(&format!("oci://{host}/a:1")).unwrap();
        let err = oci::pull_to_temp(&reference, dir.path(), &pull_options(plain())).unwrap_err();
        assert!(matches!(err, OciError::Digest { .. }), "{err}");
        assert!(err.rejects_input());
        assert!(err.to_string().contains("content does not match"), "{err}");
        assert!(
            temp_files(dir.path()).is_empty(),
            "a temporary file was left"
        );
    }
    // The same registry serving the right bytes is fine.
    let host = scripted_registry(b"the archive, sent!", b"the archive, sent!");
    let dir = tempfile::tempdir().unwrap();
    let reference = Reference::parse(&format!("oci://{host}/a:1")).unwrap();
    let pulled = oci::pull_to_temp(&reference, dir.path(), &pull_options(plain())).unwrap();
    assert_eq!(std::fs::read(pulled.path()).unwrap(), b"the archive, sent!");
}

#[test]
fn a_layer_over_the_size_limit_is_refused_before_download() {
    let host = scripted_registry(b"0123456789", b"0123456789");
    let dir = tempfile::tempdir().unwrap();
    let reference = Reference::parse(&format!("oci://{host}/a:1")).unwrap();
    let mut opts = pull_options(plain());
    opts.max_size = 9;
    let err = oci::pull_to_temp(&reference, dir.path(), &opts).unwrap_err();
    assert!(matches!(err, OciError::TooLarge { limit: 9, .. }), "{err}");
}

#[test]
fn bearer_challenge_fetches_a_token_with_the_credentials() {
    let realm_host = Arc::new(Mutex::new(String::new()));
    let realm = realm_host.clone();
    let (host, seen) = fake::serve(move |req| {
        if req.line.starts_with("GET /token?") {
            let ok = req.header("authorization") == Some("Basic Y2k6czNjcjN0");
            return if ok {
                (200, vec![], br#"{"token":"tok-abc"}"#.to_vec())
            } else {
                (401, vec![], b"{}".to_vec())
            };
        }
        if req.header("authorization") == Some("Bearer tok-abc") {
            return (
                404,
                vec![],
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
                    .to_vec(),
            );
        }
        let r = realm.lock().unwrap().clone();
        (
            401,
            vec![(
                "WWW-Authenticate".into(),
                format!(
                    r#"Bearer realm="http://{r}/token",service="fake",scope="repository:team/a:pull""#
                ),
            )],
            b"{}".to_vec(),
        )
    });
    *realm_host.lock().unwrap() = host.clone();
    let reference = Reference::parse(&format!("oci://{host}/team/a:1")).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let mut opts = plain();
    opts.credentials = Some(Credentials::new("ci", "s3cr3t"));
    let err = oci::pull_to_temp(&reference, dir.path(), &pull_options(opts)).unwrap_err();
    // Authenticated: the registry's answer is now about the tag.
    assert!(matches!(err, OciError::NotFound { .. }), "{err}");
    let seen = seen.lock().unwrap().clone();
    let lines: Vec<&str> = seen.iter().map(|s| s.line.as_str()).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[1].starts_with("GET /token?service=fake&scope=repository%3Ateam%2Fa%3Apull "),
        "{lines:?}"
    );
    assert_eq!(seen[2].header("authorization"), Some("Bearer tok-abc"));

    // Without credentials the token service refuses: an authentication error, no secret shown.
    let err = oci::pull_to_temp(&reference, dir.path(), &pull_options(plain())).unwrap_err();
    assert!(
        matches!(
            err,
            OciError::Unauthenticated {
                reason: oci::AuthFailure::NoCredentials,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("set FLOWPACK_REGISTRY_USER"),
        "{err}"
    );
}

#[test]
fn busy_registries_are_retried_with_retry_after_and_bounded() {
    let count = Arc::new(Mutex::new(0u32));
    let c = count.clone();
    let (host, _) = fake::serve(move |_| {
        let mut n = c.lock().unwrap();
        *n += 1;
        if *n <= 2 {
            (
                503,
                vec![("Retry-After".into(), "2".into())],
                b"busy".to_vec(),
            )
        } else {
            (
                404,
                vec![],
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
                    .to_vec(),
            )
        }
    });
    let slept = Arc::new(Mutex::new(Vec::new()));
    let rec = slept.clone();
    let mut opts = plain();
    opts.sleep = Arc::new(move |d| rec.lock().unwrap().push(d));
    let reference = Reference::parse(&format!("oci://{host}/a:1")).unwrap();
    let client = RegistryClient::new(&reference, Access::Pull, opts.clone());
    let err = client
        .get_manifest("1", oci::MANIFEST_MEDIA_TYPE)
        .unwrap_err();
    assert!(matches!(err, OciError::NotFound { .. }), "{err}");
    assert_eq!(client.retries(), 2);
    assert_eq!(*slept.lock().unwrap(), vec![Duration::from_secs(2); 2]);

    // Always busy: bounded attempts, then the status is reported.
    let (host, seen) = fake::serve(|_| (502, vec![], b"bad gateway".to_vec()));
    opts.max_attempts = 3;
    let reference = Reference::parse(&format!("oci://{host}/a:1")).unwrap();
    let client = RegistryClient::new(&reference, Access::Pull, opts);
    let err = client
        .get_manifest("1", oci::MANIFEST_MEDIA_TYPE)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("GET http://{host}/v2/a/manifests/1: HTTP 502 after 3 attempts: bad gateway")
    );
    assert_eq!(seen.lock().unwrap().len(), 3);
}

/// A registry serving one flowpack manifest whose layer arrives in `chunks` pieces, `gap` apart.
fn trickling_registry(layer: &'static [u8], chunks: usize, gap: Duration) -> String {
    use std::io::{BufRead, BufReader, Write};
    let digest = format!("sha256:{}", sha256_hex(layer));
    let manifest = serde_json::to_vec(&ImageManifest::for_archive(
        Descriptor {
            media_type: oci::LAYER_MEDIA_TYPE.into(),
            digest: digest.clone(),
            size: layer.len() as u64,
            annotations: BTreeMap::new(),
        },
        BTreeMap::new(),
    ))
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
            }
            let mut s = reader.into_inner();
            if line.contains("/manifests/") {
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    oci::MANIFEST_MEDIA_TYPE,
                    manifest.len()
                );
                let _ = s.write_all(&manifest);
                continue;
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                layer.len()
            );
            for piece in layer.chunks(layer.len().div_ceil(chunks)) {
                let _ = s.write_all(piece);
                let _ = s.flush();
                std::thread::sleep(gap);
            }
        }
    });
    host
}

#[test]
fn transfers_have_an_idle_timeout_not_an_overall_one() {
    let layer: &'static [u8] = b"0123456789abcdefghij";
    let dir = tempfile::tempdir().unwrap();
    let mut opts = plain();
    // Margins wide enough for a loaded machine: gaps of an eighth of the timeout while moving,
    // four times the timeout when stalled.
    opts.idle_timeout = Duration::from_secs(2);
    opts.max_attempts = 1;

    // Moving: 10 pieces 250 ms apart take 2.5 s in all, longer than the idle timeout.
    let host = trickling_registry(layer, 10, Duration::from_millis(250));
    let reference = Reference::parse(&format!("oci://{host}/a:1")).unwrap();
    let pulled = oci::pull_to_temp(&reference, dir.path(), &pull_options(opts.clone())).unwrap();
    assert_eq!(std::fs::read(pulled.path()).unwrap(), layer);
    drop(pulled);

    // Stalled: the second piece comes 8 s after the first.
    let host = trickling_registry(layer, 2, Duration::from_secs(8));
    let reference = Reference::parse(&format!("oci://{host}/a:1")).unwrap();
    let started = std::time::Instant::now();
    let err = oci::pull_to_temp(&reference, dir.path(), &pull_options(opts)).unwrap_err();
    assert!(matches!(err, OciError::Transport { .. }), "{err}");
    assert!(
        err.to_string().contains("broke off after 10 bytes"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(temp_files(dir.path()).is_empty());
}

#[test]
fn a_pull_has_an_overall_deadline_however_the_bytes_trickle() {
    let layer: &'static [u8] = b"0123456789abcdefghij";
    let dir = tempfile::tempdir().unwrap();
    let mut opts = plain();
    opts.idle_timeout = Duration::from_millis(700);
    opts.deadline = Some(Duration::from_secs(1));
    // Moving, one byte every 300 ms: the idle timeout never fires, the deadline does.
    let host = trickling_registry(layer, 20, Duration::from_millis(300));
    let reference = Reference::parse(&format!("oci://{host}/a:1")).unwrap();
    let started = std::time::Instant::now();
    let err = oci::pull_to_temp(&reference, dir.path(), &pull_options(opts)).unwrap_err();
    assert!(matches!(err, OciError::Deadline { .. }), "{err:?}");
    assert!(!err.rejects_input());
    let digest = format!("sha256:{}", sha256_hex(layer));
    assert_eq!(
        err.to_string(),
        format!(
            "GET http://{host}/v2/a/blobs/{digest}: not finished within the overall time limit \
             of 1 s; stopped"
        )
    );
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "{:?}",
        started.elapsed()
    );
    assert!(temp_files(dir.path()).is_empty());
    assert_eq!(RegistryOptions::new().deadline, Some(oci::DEFAULT_DEADLINE));
}

#[test]
fn connection_failures_are_retried_then_reported() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let slept = Arc::new(Mutex::new(Vec::new()));
    let rec = slept.clone();
    let mut opts = plain();
    opts.max_attempts = 3;
    opts.jitter = Arc::new(|| 0.5);
    opts.sleep = Arc::new(move |d| rec.lock().unwrap().push(d));
    let reference = Reference::parse(&format!("oci://127.0.0.1:{port}/a:1")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = oci::pull_to_temp(&reference, dir.path(), &pull_options(opts)).unwrap_err();
    assert!(
        matches!(err, OciError::Transport { attempts: 3, .. }),
        "{err}"
    );
    assert!(!err.rejects_input());
    // 250 ms doubled, times the fixed jitter 0.5.
    assert_eq!(
        *slept.lock().unwrap(),
        vec![Duration::from_millis(125), Duration::from_millis(250)]
    );
}

#[test]
fn what_cannot_heal_is_not_retried_and_408_is() {
    // A 400 is the registry's last word.
    let (host, seen) = fake::serve(|_| (400, vec![], b"bad request".to_vec()));
    let reference = Reference::parse(&format!("oci://{host}/a:1")).unwrap();
    let client = RegistryClient::new(&reference, Access::Pull, plain());
    let err = client
        .get_manifest("1", oci::MANIFEST_MEDIA_TYPE)
        .unwrap_err();
    assert!(
        matches!(
            err,
            OciError::Status {
                status: 400,
                attempts: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!((client.retries(), seen.lock().unwrap().len()), (0, 1));

    // A 408 is tried again.
    let count = Arc::new(Mutex::new(0u32));
    let c = count.clone();
    let (host, _) = fake::serve(move |_| {
        let mut n = c.lock().unwrap();
        *n += 1;
        if *n == 1 {
            (408, vec![], b"slow".to_vec())
        } else {
            (404, vec![], b"{}".to_vec())
        }
    });
    let reference = Reference::parse(&format!("oci://{host}/a:1")).unwrap();
    let client = RegistryClient::new(&reference, Access::Pull, plain());
    let err = client
        .get_manifest("1", oci::MANIFEST_MEDIA_TYPE)
        .unwrap_err();
    assert!(matches!(err, OciError::NotFound { .. }), "{err}");
    assert_eq!(client.retries(), 1);

    // TLS to a plain-HTTP registry: one connection, and an error saying so.
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let connections = Arc::new(AtomicUsize::new(0));
    let n = connections.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            n.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 512];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        }
    });
    let mut opts = plain();
    opts.plain_http = false;
    let reference = Reference::parse(&format!("oci://{host}/a:1")).unwrap();
    let client = RegistryClient::new(&reference, Access::Pull, opts);
    let err = client
        .get_manifest("1", oci::MANIFEST_MEDIA_TYPE)
        .unwrap_err();
    assert!(matches!(err, OciError::NotTls { .. }), "{err:?}");
    assert_eq!(connections.load(Ordering::SeqCst), 1);
    assert_eq!(client.retries(), 0);
}
