//! End-to-end tests of `flowpack publish` and `flowpack pull` against a real registry (Debian's
//! `docker-registry`, distribution 2.8, started per test on 127.0.0.1), and of the commands that
//! take `oci://` references where they read an archive (`verify`, `inspect`, `pack --previous`).

#[allow(dead_code)]
#[path = "../crates/client/tests/common/fake.rs"]
mod fake;
#[path = "../crates/client/tests/common/registry.rs"]
pub(crate) mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use registry::Registry;

use crate::util::{code, fixture, stderr, stdout};

fn run(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flowpack"));
    c.args(args)
        .current_dir(cwd)
        .env_remove("FLOWPACK_REGISTRY_USER")
        .env_remove("FLOWPACK_REGISTRY_PASSWORD")
        .env_remove("FLOWPACK_KEY_PASSWORD")
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run flowpack")
}

/// Packs the reference fixtures into `dir/name` signed by `dir/k.key`.
fn signed_archive(dir: &Path, name: &str) -> PathBuf {
    if !dir.join("k.key").exists() {
        let o = run(dir, &["keygen", "-o", "k", "--unencrypted"], &[]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    let r = fixture("reference").display().to_string();
    let o = run(
        dir,
        &[
            "pack",
            &r,
            "-o",
            name,
            "--name",
            "demo",
            "--version",
            "1.2.0",
            "--sign",
            "k.key",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    dir.join(name)
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".flowpack-tmp."))
        .collect()
}

#[test]
fn publish_prints_the_digest_and_pull_by_tag_or_digest_gives_the_same_bytes() {
    let reg = Registry::start();
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let archive = signed_archive(d, "a.flowpack");
    let target = reg.reference("team/demo");
    let o = run(d, &["publish", "a.flowpack", &target, "--plain-http"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let printed = stdout(&o).trim().to_string();
    let prefix = format!("{target}:1.2.0@sha256:");
    assert!(printed.starts_with(&prefix), "{printed}");
    assert_eq!(printed.len(), prefix.len() + 64, "{printed}");
    let digest = &printed[printed.len() - 71..];

    let by_digest = format!("{target}@{digest}");
    for (i, r) in [format!("{target}:1.2.0"), by_digest, printed.clone()]
        .iter()
        .enumerate()
    {
        let out = format!("pulled-{i}.flowpack");
        let o = run(
            d,
            &[
                "pull",
                r,
                "-o",
                &out,
                "--plain-http",
                "--trusted-key",
                "k.pub",
            ],
            &[],
        );
        assert_eq!(code(&o), 0, "{r}: {}", stderr(&o));
        assert!(stdout(&o).contains(digest), "{}", stdout(&o));
        assert!(stdout(&o).contains("verified"), "{}", stdout(&o));
        assert_eq!(
            std::fs::read(d.join(&out)).unwrap(),
            std::fs::read(&archive).unwrap(),
            "{r}"
        );
    }

    // An existing OUT needs --force.
    let pull = |extra: &[&str]| {
        let mut args = vec![
            "pull",
            printed.as_str(),
            "-o",
            "pulled-0.flowpack",
            "--plain-http",
            "--insecure-skip-signatures",
        ];
        args.extend_from_slice(extra);
        run(d, &args, &[])
    };
    let o = pull(&[]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("already exists and replacing it was not allowed\nhint: use --force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(code(&pull(&["--force"])), 0);
    // Written 0644 less the umask, like any file the user asks for.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let umask = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    let umask = u32::from_str_radix(umask.split_whitespace().nth(1).unwrap(), 8).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(d.join("pulled-0.flowpack"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o644 & !umask);

    // Signatures are required unless explicitly skipped.
    let o = run(
        d,
        &["pull", &printed, "-o", "x.flowpack", "--plain-http"],
        &[],
    );
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--trusted-key"), "{}", stderr(&o));
    assert!(!d.join("x.flowpack").exists());
    assert!(leftovers(d).is_empty(), "{:?}", leftovers(d));
}

#[test]
fn unknown_tags_digests_and_foreign_artifacts_are_refused_with_exit_1() {
    let reg = Registry::start();
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    signed_archive(d, "a.flowpack");
    let o = run(
        d,
        &[
            "publish",
            "a.flowpack",
            &reg.reference("team/demo"),
            "--plain-http",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let missing = format!("sha256:{}", "0".repeat(64));
    for (r, want) in [
        (reg.reference("team/demo:9.9.9"), "MANIFEST_UNKNOWN"),
        (
            reg.reference(&format!("team/demo@{missing}")),
            "MANIFEST_UNKNOWN",
        ),
        (reg.reference("team/nothing:1.0.0"), "not found (404)"),
    ] {
        let o = run(
            d,
            &[
                "pull",
                &r,
                "-o",
                "out.flowpack",
                "--plain-http",
                "--insecure-skip-signatures",
            ],
            &[],
        );
        assert_eq!(code(&o), 1, "{r}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{r}: {}", stderr(&o));
        assert!(!d.join("out.flowpack").exists());
    }

    // Not an OCI image manifest at all: a plain-HTTP URL typo and a malformed reference are
    // usage errors (2).
    let o = run(
        d,
        &[
            "pull",
            "https://example.invalid/x",
            "-o",
            "o.flowpack",
            "--insecure-skip-signatures",
        ],
        &[],
    );
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("must start with oci://"),
        "{}",
        stderr(&o)
    );

    // A foreign artifact (a Helm-like chart) in the same registry.
    use flowpack_client::oci::{self, Access, Reference, RegistryClient, RegistryOptions};
    let r = Reference::parse(&reg.reference("team/chart:1.0.0")).unwrap();
    let mut opts = RegistryOptions::new();
    opts.plain_http = true;
    let client = RegistryClient::new(&r, Access::Push, opts);
    let config = br#"{"name":"chart"}"#;
    let config_digest = oci::sha256_digest(config);
    client.upload_bytes(&config_digest, config).unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[]}}"#,
        oci::MANIFEST_MEDIA_TYPE,
        config.len()
    );
    client
        .put_manifest("1.0.0", oci::MANIFEST_MEDIA_TYPE, manifest.as_bytes())
        .unwrap();
    let o = run(
        d,
        &[
            "pull",
            &r.to_string(),
            "-o",
            "out.flowpack",
            "--plain-http",
            "--insecure-skip-signatures",
        ],
        &[],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "not a flowpack archive: artifactType is \"application/vnd.cncf.helm.config.v1+json\""
        ),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("out.flowpack").exists());
}

#[test]
fn pull_verifies_and_a_tampered_archive_leaves_nothing_behind() {
    let reg = Registry::start();
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let archive = signed_archive(d, "a.flowpack");
    // A flipped byte in a flow document, rezipped: still a valid zip, its hash now wrong.
    let x = d.join("x");
    let o = crate::util::peer("unzip")
        .args([
            "-q",
            &archive.display().to_string(),
            "-d",
            &x.display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let flow = "flows/shopify-netsuite-orders/export.json";
    let mut bytes = std::fs::read(x.join(flow)).unwrap();
    bytes[10] ^= 0x20;
    std::fs::write(x.join(flow), bytes).unwrap();
    let mut names: Vec<String> = Vec::new();
    let listing = crate::util::peer("unzip")
        .args(["-Z1", &archive.display().to_string()])
        .output()
        .unwrap();
    names.extend(
        String::from_utf8(listing.stdout)
            .unwrap()
            .lines()
            .map(String::from),
    );
    let mut args = vec![
        "-q".to_string(),
        "-X".into(),
        d.join("tampered.flowpack").display().to_string(),
    ];
    args.extend(names);
    let o = crate::util::peer("zip")
        .args(&args)
        .current_dir(&x)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    let target = reg.reference("team/demo:tampered");
    let o = run(
        d,
        &["publish", "tampered.flowpack", &target, "--plain-http"],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(
        d,
        &[
            "pull",
            &target,
            "-o",
            "out.flowpack",
            "--plain-http",
            "--trusted-key",
            "k.pub",
        ],
        &[],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("digests check failed"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains(flow), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("verification failed; nothing written to out.flowpack"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("out.flowpack").exists());
    assert!(leftovers(d).is_empty(), "{:?}", leftovers(d));

    // An untampered archive signed by another key is refused by the signature check.
    let o = run(d, &["keygen", "-o", "other", "--unencrypted"], &[]);
    assert_eq!(code(&o), 0);
    let good = reg.reference("team/demo:good");
    assert_eq!(
        code(&run(
            d,
            &["publish", "a.flowpack", &good, "--plain-http"],
            &[]
        )),
        0
    );
    let o = run(
        d,
        &[
            "pull",
            &good,
            "-o",
            "out.flowpack",
            "--plain-http",
            "--trusted-key",
            "other.pub",
        ],
        &[],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("signatures check failed"),
        "{}",
        stdout(&o)
    );
    assert!(!d.join("out.flowpack").exists());
}

#[test]
fn a_registry_demanding_credentials_gets_them_from_the_environment_never_printed() {
    const PASSWORD: &str = "Reg1stry-pa55-word";
    let reg = Registry::start_with_auth("ci-bot", PASSWORD);
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    signed_archive(d, "a.flowpack");
    let target = reg.reference("team/demo:1.2.0");

    let o = run(d, &["publish", "a.flowpack", &target, "--plain-http"], &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("authentication failed (401): the registry demands credentials: set FLOWPACK_REGISTRY_USER and FLOWPACK_REGISTRY_PASSWORD"),
        "{}",
        stderr(&o)
    );

    let creds = [
        ("FLOWPACK_REGISTRY_USER", "ci-bot"),
        ("FLOWPACK_REGISTRY_PASSWORD", PASSWORD),
    ];
    let wrong = [
        ("FLOWPACK_REGISTRY_USER", "ci-bot"),
        ("FLOWPACK_REGISTRY_PASSWORD", "nope-nope"),
    ];
    let only_user = [("FLOWPACK_REGISTRY_USER", "ci-bot")];
    let o = run(
        d,
        &["publish", "a.flowpack", &target, "--plain-http"],
        &wrong,
    );
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("were refused"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("nope-nope"));
    let o = run(
        d,
        &["publish", "a.flowpack", &target, "--plain-http"],
        &only_user,
    );
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("FLOWPACK_REGISTRY_PASSWORD is not"),
        "{}",
        stderr(&o)
    );

    let o = run(
        d,
        &["publish", "a.flowpack", &target, "--plain-http"],
        &creds,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let published = stdout(&o);
    let o2 = run(
        d,
        &[
            "pull",
            &target,
            "-o",
            "out.flowpack",
            "--plain-http",
            "--trusted-key",
            "k.pub",
        ],
        &creds,
    );
    assert_eq!(code(&o2), 0, "{}", stderr(&o2));
    for text in [published, stderr(&o), stdout(&o2), stderr(&o2)] {
        assert!(!text.contains(PASSWORD), "{text}");
    }
}

#[test]
fn verify_and_inspect_read_oci_references_and_show_the_digest_a_tag_resolved_to() {
    let reg = Registry::start();
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    signed_archive(d, "a.flowpack");
    let target = reg.reference("team/demo:1.2.0");
    let o = run(d, &["publish", "a.flowpack", &target, "--plain-http"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let pinned = stdout(&o).trim().to_string();
    assert!(pinned.starts_with(&format!("{target}@sha256:")), "{pinned}");
    let tmp = d.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let tmp_env = tmp.display().to_string();
    let env = [("TMPDIR", tmp_env.as_str())];

    let o = run(
        d,
        &["verify", &target, "--plain-http", "--trusted-key", "k.pub"],
        &env,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("{pinned}: verified")),
        "{}",
        stdout(&o)
    );
    // Signed by another key: the signature check fails (exit 1), naming the reference.
    let o = run(d, &["keygen", "-o", "other", "--unencrypted"], &[]);
    assert_eq!(code(&o), 0);
    let o = run(
        d,
        &[
            "verify",
            &target,
            "--plain-http",
            "--trusted-key",
            "other.pub",
        ],
        &env,
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("{pinned}: signatures check failed")),
        "{}",
        stdout(&o)
    );

    let o = run(d, &["inspect", &target, "--plain-http"], &env);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().next(), Some(pinned.as_str()));
    assert!(
        stdout(&o).contains("package         demo@1.2.0"),
        "{}",
        stdout(&o)
    );
    let o = run(
        d,
        &["inspect", &target, "--plain-http", "--format", "json"],
        &env,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["archive"], pinned.as_str());
    assert_eq!(v["flows"].as_array().unwrap().len(), 2);

    // An unknown tag is refused (exit 1) naming it.
    let missing = reg.reference("team/demo:9.9.9");
    let o = run(d, &["verify", &missing, "--plain-http"], &env);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));

    // diff takes a reference as a side: the published archive against itself on disk is the
    // same; an unknown tag cannot be compared (2, like diff(1)).
    let o = run(d, &["diff", &target, "a.flowpack", "--plain-http"], &env);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("same: 2 flows compared"),
        "{}",
        stdout(&o)
    );
    let o = run(d, &["diff", &missing, "a.flowpack", "--plain-http"], &env);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));

    // push takes a reference too: pulled, verified against the trust policy, then pushed into
    // the embedded environment; the report names the pinned reference.
    let o = run(
        d,
        &[
            "push",
            &target,
            "--env",
            "local",
            "--plain-http",
            "--trusted-key",
            "k.pub",
            "--format",
            "json",
        ],
        &env,
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["archive"], pinned.as_str());
    assert_eq!(v["flows"].as_array().unwrap().len(), 2);
    assert!(
        v["flows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["outcome"] == "created"),
        "{v}"
    );
    // So does the history record (not the temporary file the archive was pulled into).
    let records: Vec<_> = std::fs::read_dir(d.join(".flowpack/history/local"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&records[0]).unwrap()).unwrap();
    assert_eq!(record["archive"], pinned.as_str(), "{record}");
    let o = run(
        d,
        &["push", &missing, "--env", "local", "--plain-http"],
        &env,
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    // The pulled temporary files are gone once the command ends.
    assert!(leftovers(&tmp).is_empty(), "{:?}", leftovers(&tmp));
}

#[test]
fn a_layer_whose_bytes_do_not_match_its_digest_is_refused_by_verify_and_inspect() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let archive = std::fs::read(signed_archive(d, "a.flowpack")).unwrap();
    let mut tampered = archive.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x20;
    let (host, layer_digest) = fake::artifact("team/demo", "1.2.0", &archive, tampered);
    let tmp = d.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let tmp_env = tmp.display().to_string();
    let env = [("TMPDIR", tmp_env.as_str())];
    let target = format!("oci://{host}/team/demo:1.2.0");
    for command in ["verify", "inspect"] {
        let o = run(d, &[command, &target, "--plain-http"], &env);
        assert_eq!(code(&o), 1, "{command}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("content does not match"),
            "{command}: {}",
            stderr(&o)
        );
        assert!(stderr(&o).contains(&layer_digest), "{}", stderr(&o));
    }
    assert!(leftovers(&tmp).is_empty(), "{:?}", leftovers(&tmp));
}

#[test]
fn pack_previous_takes_an_oci_reference_and_checks_the_bump_against_it() {
    use crate::marketplace::{pack_market, reference, renamed, write_flows};

    let reg = Registry::start();
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let base = reference();
    let v1 = write_flows(d, "v1", &[base.clone(), renamed(&base, "Refunds")]);
    let o = pack_market(d, &v1, "shop-1.4.0.flowpack", "1.4.0", &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let repo = reg.reference("vendor/shop");
    let o = run(
        d,
        &["publish", "shop-1.4.0.flowpack", &repo, "--plain-http"],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let pinned = stdout(&o).trim().to_string();
    let previous = format!("{repo}:1.4.0");
    assert!(
        pinned.starts_with(&format!("{previous}@sha256:")),
        "{pinned}"
    );

    let v2 = write_flows(d, "v2", &[base]);
    let prev = ["--previous", previous.as_str(), "--plain-http"];
    let o = pack_market(d, &v2, "shop-1.5.0.flowpack", "1.5.0", &prev);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "flow `Refunds` was removed: needs 2.0.0 or later, got 1.5.0 (previous package {pinned}); nothing written"
        )),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("shop-1.5.0.flowpack").exists());
    let o = pack_market(d, &v2, "shop-2.0.0.flowpack", "2.0.0", &prev);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("version 2.0.0 over 1.4.0 of {pinned}")),
        "{}",
        stdout(&o)
    );
    // An unknown previous release is refused before anything is packed.
    let missing = format!("{repo}:0.9.0");
    let o = pack_market(
        d,
        &v2,
        "shop-x.flowpack",
        "2.0.0",
        &["--previous", &missing, "--plain-http"],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
    assert!(!d.join("shop-x.flowpack").exists());
}

/// A registry that answers every request with a manifest body that never ends: one byte every
/// 300 ms (never idle long enough for the idle timeout).
fn trickling_registry() -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                }
                let mut s = reader.into_inner();
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n\
                     Content-Length: 100000\r\nConnection: close\r\n\r\n"
                );
                while s.write_all(b" ").and_then(|()| s.flush()).is_ok() {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                }
            });
        }
    });
    host
}

#[test]
fn pull_verify_and_inspect_stop_at_the_timeout_with_exit_2() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let host = trickling_registry();
    let target = format!("oci://{host}/team/demo:1.2.0");
    let out = d.join("out.flowpack");
    let out = out.to_str().unwrap();
    for args in [
        vec!["pull", &target, "-o", out, "--insecure-skip-signatures"],
        vec!["verify", &target],
        vec!["inspect", &target],
    ] {
        let started = std::time::Instant::now();
        let mut args = args.clone();
        args.extend(["--plain-http", "--timeout", "1"]);
        let o = run(d, &args, &[]);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!(
                "GET http://{host}/v2/team/demo/manifests/1.2.0: not finished within the overall \
                 time limit of 1 s; stopped"
            )),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
    assert!(!d.join("out.flowpack").exists());
}
