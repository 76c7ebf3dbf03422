//! `s3://` locations end to end against a real SeaweedFS (tests/weed.rs).

use flowpack_action::storage::{MAX_OBJECT_BYTES, S3Location, SINGLE_PUT_MAX, StorageError, Store};

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::platform::pack_reference;
use crate::util::{code, stderr, stdout};
use crate::weed::{self, Weed};

#[test]
fn the_test_store_starts_refuses_anonymous_reads_and_stops() {
    let store = Weed::start();
    let url = format!("{}/{}/", store.endpoint, store.bucket);
    assert_eq!(weed::curl(&[&url]), "200", "a signed listing");
    let anonymous = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &url])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&anonymous.stdout), "403");
}

fn vars(store: &Weed) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: std::collections::HashMap<&'static str, String> = store.env().into_iter().collect();
    move |name: &str| vars.get(name).cloned()
}

fn open(store: &Weed, prefix: &str) -> Store {
    Store::open_with(
        &S3Location::parse(&store.url(prefix)).unwrap(),
        None,
        &vars(store),
    )
    .unwrap()
}

#[test]
fn objects_are_written_whole_listed_read_back_and_never_replaced_unasked() {
    let store = Weed::start();
    let s3 = open(&store, "p");
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::write(&small, b"hello object storage").unwrap();
    // Above the single-PUT bound: a multipart upload of two parts.
    let big = dir.path().join("big");
    let big_bytes: Vec<u8> = (0..(SINGLE_PUT_MAX as usize + 1234))
        .map(|i| (i % 251) as u8)
        .collect();
    std::fs::write(&big, &big_bytes).unwrap();

    s3.put_file(&small, "p/small", false).unwrap();
    s3.put_file(&big, "p/big", false).unwrap();
    assert_eq!(s3.head("p/small").unwrap(), Some(20));
    assert_eq!(s3.head("p/absent").unwrap(), None);
    let listed: Vec<(String, u64)> = s3
        .list("p/")
        .unwrap()
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    assert_eq!(
        listed,
        [
            ("p/big".to_string(), big_bytes.len() as u64),
            ("p/small".to_string(), 20)
        ]
    );

    let got = s3
        .get_to_temp("p/big", dir.path(), MAX_OBJECT_BYTES)
        .unwrap();
    assert_eq!(std::fs::read(got.path()).unwrap(), big_bytes);
    let got = s3
        .get_to_temp("p/small", dir.path(), MAX_OBJECT_BYTES)
        .unwrap();
    assert_eq!(std::fs::read(got.path()).unwrap(), b"hello object storage");
    // Within the limit only.
    let err = s3.get_to_temp("p/small", dir.path(), 10).unwrap_err();
    assert!(matches!(err, StorageError::Mismatch { .. }), "{err}");

    // Never replaced unless asked.
    std::fs::write(&small, b"other").unwrap();
    let err = s3.put_file(&small, "p/small", false).unwrap_err();
    assert!(matches!(err, StorageError::Exists { .. }), "{err}");
    let err = s3.put_file(&small, "p/big", false).unwrap_err();
    assert!(matches!(err, StorageError::Exists { .. }), "{err}");
    s3.put_file(&small, "p/small", true).unwrap();
    let got = s3
        .get_to_temp("p/small", dir.path(), MAX_OBJECT_BYTES)
        .unwrap();
    assert_eq!(std::fs::read(got.path()).unwrap(), b"other");

    s3.delete("p/small").unwrap();
    s3.delete("p/small").unwrap();
    assert_eq!(s3.head("p/small").unwrap(), None);
    let err = s3
        .get_to_temp("p/small", dir.path(), MAX_OBJECT_BYTES)
        .unwrap_err();
    assert!(matches!(err, StorageError::NotFound { .. }), "{err}");
}

#[test]
fn wrong_credentials_and_a_missing_bucket_are_named() {
    let store = Weed::start();
    let loc = S3Location::parse(&store.url("p")).unwrap();
    let good = vars(&store);
    let wrong_secret = |name: &str| {
        if name == "AWS_SECRET_ACCESS_KEY" {
            Some("not-the-secret".to_string())
        } else {
            good(name)
        }
    };
    let s3 = Store::open_with(&loc, None, &wrong_secret).unwrap();
    let err = s3.list("p/").unwrap_err();
    assert!(matches!(err, StorageError::Credentials { .. }), "{err}");
    assert!(err.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{err}");
    assert!(!err.to_string().contains("not-the-secret"), "{err}");

    let missing = S3Location::parse("s3://no-such-bucket/p").unwrap();
    let s3 = Store::open_with(&missing, None, &good).unwrap();
    let err = s3.list("p/").unwrap_err();
    assert!(matches!(err, StorageError::NoSuchBucket { .. }), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let err = s3.put_file(&file, "p/f", false).unwrap_err();
    assert!(matches!(err, StorageError::NoSuchBucket { .. }), "{err}");
}

/// Runs flowpack in `cwd` with the store's variables (every AWS_* variable of the parent
/// removed first), `over` replacing or (empty value) removing some.
fn flowpack(cwd: &Path, store: &Weed, over: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowpack"));
    cmd.args(args)
        .current_dir(cwd)
        .env("SOURCE_DATE_EPOCH", "1767225600");
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in store.env() {
        cmd.env(k, v);
    }
    for (k, v) in over {
        if v.is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    cmd.output().expect("run flowpack")
}

#[test]
fn backups_in_a_bucket_are_kept_listed_pushed_and_compared() {
    let store = Weed::start();
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let archive = pack_reference(d);
    let o = flowpack(
        d,
        &store,
        &[],
        &["push", archive.to_str().unwrap(), "--env", "local"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let dir = store.url("nightly");
    for (i, at) in ["1767225600", "1767312000", "1767398400"]
        .iter()
        .enumerate()
    {
        let o = flowpack(
            d,
            &store,
            &[("SOURCE_DATE_EPOCH", at)],
            &[
                "backup", "--env", "local", "--dir", &dir, "--keep", "2", "--format", "json",
            ],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let report: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["sequence"], i as u64 + 1, "{report}");
        assert!(
            report["path"]
                .as_str()
                .unwrap()
                .starts_with("s3://flowpack/nightly/local-"),
            "{report}"
        );
        assert_eq!(
            report["deleted"].as_array().unwrap().len(),
            usize::from(i == 2)
        );
    }
    // Another object under the prefix is never deleted.
    std::fs::write(d.join("notes.txt"), "keep me").unwrap();
    let s3 = open(&store, "nightly");
    s3.put_file(
        &d.join("notes.txt"),
        "nightly/local-20260101T000000Z-000009.flowpack",
        false,
    )
    .unwrap();

    let o = flowpack(d, &store, &[], &["backups", &dir, "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    let backups = list["backups"].as_array().unwrap();
    let seqs: Vec<u64> = backups
        .iter()
        .map(|b| b["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 2], "newest first, the oldest deleted: {list}");
    assert_eq!(backups[0]["env"], "local");
    assert_eq!(backups[0]["created"], "2026-01-03T00:00:00Z");
    assert_eq!(backups[0]["flows"], 1);
    assert_eq!(backups[0]["name"], "local-20260103T000000Z-000003.flowpack");
    assert!(backups[0]["size"].as_u64().unwrap() > 0);
    let o = flowpack(d, &store, &[], &["backups", &dir, "--verify"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.starts_with("ENV    CREATED (UTC)"), "{text}");
    assert!(
        text.contains("local-20260103T000000Z-000003.flowpack"),
        "{text}"
    );
    assert!(
        s3.head("nightly/local-20260101T000000Z-000009.flowpack")
            .unwrap()
            .is_some()
    );
    let o = flowpack(
        d,
        &store,
        &[],
        &["backups", &dir, "--env", "other", "--format", "json"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        serde_json::from_slice::<Value>(&o.stdout).unwrap()["backups"],
        json!([])
    );

    // Read back as an input: verify, inspect, push into another environment, diff.
    let newest = format!("{dir}/local-20260103T000000Z-000003.flowpack");
    let o = flowpack(d, &store, &[], &["verify", &newest]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains(&newest), "{}", stdout(&o));
    let o = flowpack(d, &store, &[], &["inspect", &newest]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let other = tempfile::tempdir().unwrap();
    let o = flowpack(
        other.path(),
        &store,
        &[],
        &["push", &newest, "--env", "local"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = flowpack(other.path(), &store, &[], &["diff", &newest, "env:local"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let o = flowpack(
        d,
        &store,
        &[],
        &["verify", &format!("{dir}/absent.flowpack")],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));

    // Anonymous reads stay refused by the store.
    let url = format!(
        "{}/{}/nightly/local-20260103T000000Z-000003.flowpack",
        store.endpoint, store.bucket
    );
    let anonymous = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &url])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&anonymous.stdout), "403");
    assert_eq!(weed::curl(&[&url]), "200");
}

#[test]
fn credentials_and_buckets_that_do_not_work_are_exit_2_and_named() {
    let store = Weed::start();
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let dir = store.url("nightly");
    let o = flowpack(
        d,
        &store,
        &[("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")],
        &["backups", &dir],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("AWS_SECRET_ACCESS_KEY"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("wrong-secret-value"), "{}", stderr(&o));
    let o = flowpack(d, &store, &[("AWS_ACCESS_KEY_ID", "")], &["backups", &dir]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the variable AWS_ACCESS_KEY_ID is not set"),
        "{}",
        stderr(&o)
    );
    let o = flowpack(
        d,
        &store,
        &[],
        &[
            "backup",
            "--env",
            "local",
            "--dir",
            "s3://no-such-bucket/nightly",
        ],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the bucket no-such-bucket does not exist"),
        "{}",
        stderr(&o)
    );
    let o = flowpack(d, &store, &[("AWS_ALLOW_HTTP", "")], &["backups", &dir]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("plain HTTP is not allowed"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_storage_table_in_flowpack_toml_names_the_endpoint_and_the_key_variables() {
    let store = Weed::start();
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    std::fs::write(
        d.join("flowpack.toml"),
        format!(
            "[storage.\"s3://{}\"]\nendpoint = \"{}\"\nregion = \"us-east-1\"\nallow_http = true\n\
             access_key_id_env = \"TEAM_S3_KEY\"\nsecret_access_key_env = \"TEAM_S3_SECRET\"\n",
            store.bucket, store.endpoint
        ),
    )
    .unwrap();
    // None of the AWS_* variables: the table and its variables are enough.
    let none: Vec<(&str, &str)> = store.env().iter().map(|(k, _)| (*k, "")).collect();
    let mut team = none.clone();
    team.extend([
        ("TEAM_S3_KEY", weed::ACCESS_KEY),
        ("TEAM_S3_SECRET", weed::SECRET_KEY),
    ]);
    let dir = store.url("team");
    let o = flowpack(
        d,
        &store,
        &team,
        &["backup", "--env", "local", "--dir", &dir, "--quiet"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = flowpack(d, &store, &team, &["backups", &dir, "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list["backups"].as_array().unwrap().len(), 1, "{list}");

    let mut wrong = none.clone();
    wrong.extend([
        ("TEAM_S3_KEY", weed::ACCESS_KEY),
        ("TEAM_S3_SECRET", "nope-nope"),
    ]);
    let o = flowpack(d, &store, &wrong, &["backups", &dir]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("TEAM_S3_SECRET"), "{}", stderr(&o));
    let o = flowpack(d, &store, &none, &["backups", &dir]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the variable TEAM_S3_KEY is not set"),
        "{}",
        stderr(&o)
    );

    // The keys themselves are refused in the file.
    std::fs::write(
        d.join("flowpack.toml"),
        format!(
            "[storage.\"s3://{}\"]\naccess_key_id = \"AKIA\"\n",
            store.bucket
        ),
    )
    .unwrap();
    let o = flowpack(d, &store, &[], &["backups", &dir]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("access_key_id"), "{}", stderr(&o));
}

#[test]
fn an_object_whose_bytes_do_not_match_their_recorded_digest_is_refused() {
    let store = Weed::start();
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let archive = pack_reference(d);
    let url = format!("{}/{}/in/app.flowpack", store.endpoint, store.bucket);
    // Written by another tool, with a SHA-256 in the metadata that is not the body's.
    let wrong = format!("x-amz-meta-flowpack-sha256: {}", "0".repeat(64));
    assert_eq!(
        weed::curl(&[
            "-X",
            "PUT",
            "-H",
            &wrong,
            "-T",
            archive.to_str().unwrap(),
            &url
        ]),
        "200"
    );
    let o = flowpack(d, &store, &[], &["verify", &store.url("in/app.flowpack")]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("differs from the"), "{}", stderr(&o));
    // The same bytes without a recorded digest read and verify.
    assert_eq!(
        weed::curl(&["-X", "PUT", "-T", archive.to_str().unwrap(), &url]),
        "200"
    );
    let o = flowpack(d, &store, &[], &["verify", &store.url("in/app.flowpack")]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn export_writes_to_a_bucket_whole_and_never_over_an_object_unless_forced() {
    let store = Weed::start();
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let archive = pack_reference(d);
    let o = flowpack(
        d,
        &store,
        &[],
        &["push", archive.to_str().unwrap(), "--env", "local"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = store.url("exports/local.flowpack");
    let export = |force: bool| {
        let mut args = vec!["export", "--env", "local", "--all", "-o", &out];
        if force {
            args.push("--force");
        }
        flowpack(d, &store, &[], &args)
    };
    let o = export(false);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with(&format!("{out}: 1 flow from local")),
        "{}",
        stdout(&o)
    );
    let o = export(false);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already exists; not replaced"),
        "{}",
        stderr(&o)
    );
    let o = export(true);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = flowpack(d, &store, &[], &["verify", &out]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // Nothing else under the prefix: no temporary or partial objects.
    let keys: Vec<String> = open(&store, "exports")
        .list("exports/")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, ["exports/local.flowpack"]);
}

#[test]
fn pack_writes_to_a_bucket_whole_and_never_over_an_object_unless_forced() {
    let store = Weed::start();
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let doc = crate::util::fixture("reference/export-v2-order-sync.json");
    let out = store.url("releases/app-1.0.0.flowpack");
    let pack = |out: &str, force: bool| {
        let mut args = vec![
            "pack",
            doc.to_str().unwrap(),
            "-o",
            out,
            "--name",
            "app",
            "--version",
            "1.0.0",
            "--kind",
            "release",
        ];
        if force {
            args.push("--force");
        }
        flowpack(d, &store, &[], &args)
    };
    let o = pack(&out, false);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains(&out), "{}", stdout(&o));
    let o = pack(&out, false);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already exists; not replaced"),
        "{}",
        stderr(&o)
    );
    let o = pack(&out, true);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = flowpack(d, &store, &[], &["verify", &out]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // Nothing was written locally.
    assert!(!d.join("s3:").exists());
    let o = flowpack(
        d,
        &store,
        &[],
        &[
            "unpack",
            &out,
            "-d",
            "unpacked",
            "--insecure-skip-signatures",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(d.join("unpacked/flowpack.json").is_file());
    // An unpacked archive directory packs back into a bucket the same way.
    let repacked = store.url("releases/app-1.0.1.flowpack");
    let repack = |force: bool| {
        let mut args = vec!["pack", "unpacked", "-o", &repacked, "--version", "1.0.1"];
        if force {
            args.push("--force");
        }
        flowpack(d, &store, &[], &args)
    };
    let o = repack(false);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains(&repacked), "{}", stdout(&o));
    let o = repack(false);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already exists; not replaced"),
        "{}",
        stderr(&o)
    );
    let o = flowpack(d, &store, &[], &["verify", &repacked]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("1.0.1"), "{}", stdout(&o));
}

/// A working directory of its own (another machine) whose `prod` is the sandbox at `url` with
/// its history in the bucket at `history`.
fn machine(url: &str, history: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("flowpack.toml"),
        format!(
            "[env.prod]\nurl = \"{url}\"\ntoken_env = \"PROD_TOKEN\"\nhistory = \"{history}\"\n"
        ),
    )
    .unwrap();
    dir
}

/// How many flows the sandbox at `url` holds.
fn flow_count(url: &str) -> u64 {
    let out = Command::new("curl")
        .args(["-sSf", "-H", "Authorization: Bearer team-token"])
        .arg(format!("{url}/api/v1/flows?per_page=1"))
        .output()
        .unwrap();
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    body["meta"]["total"].as_u64().unwrap()
}

fn team_push(cwd: &Path, store: &Weed, archive: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowpack"));
    cmd.args([
        "push",
        archive.to_str().unwrap(),
        "--env",
        "prod",
        "--on-conflict",
        "replace",
    ])
    .current_dir(cwd)
    .env("PROD_TOKEN", "team-token")
    // Each machine its own local lock directory: only the bucket's lock is shared.
    .env("FLOWPACK_LOCK_DIR", cwd.join("locks"))
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in store.env() {
        cmd.env(k, v);
    }
    cmd
}

#[test]
fn two_machines_sharing_a_history_in_a_bucket_cannot_both_hold_the_lock() {
    let store = Weed::start();
    let work = tempfile::tempdir().unwrap();
    let archive = pack_reference(work.path());
    // A slow platform, so that the first push still runs when the second starts.
    let sb =
        crate::util::SandboxProcess::start(work.path(), "team-token", &["--latency-ms", "300"]);
    let history = store.url("team/history");
    let (a, b) = (machine(&sb.url, &history), machine(&sb.url, &history));
    let s3 = open(&store, "team");

    let first = team_push(a.path(), &store, &archive).spawn().unwrap();
    // Wait for the first push's lock object (and its pending record) in the bucket.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let keys: Vec<String> = s3
            .list("team/")
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        if keys.iter().any(|k| k.starts_with("team/history/.locks/"))
            && keys.iter().any(|k| k.ends_with(".pending"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no lock object: {keys:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let lock = s3
        .list("team/history/.locks/")
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let held: Value = serde_json::from_slice(
        &std::fs::read(
            s3.get_to_temp(&lock.key, work.path(), 1 << 20)
                .unwrap()
                .path(),
        )
        .unwrap(),
    )
    .unwrap();
    for field in [
        "host",
        "pid",
        "user",
        "command",
        "env",
        "url",
        "started",
        "lease_until",
    ] {
        assert!(held.get(field).is_some(), "{field}: {held}");
    }
    assert_eq!(held["command"], "push");
    assert!(held["lease_until"].as_str().unwrap() > held["started"].as_str().unwrap());

    let second = team_push(b.path(), &store, &archive).output().unwrap();
    assert_eq!(code(&second), 2, "{}", stderr(&second));
    let err = stderr(&second);
    assert!(
        err.contains(&format!(
            "prod is locked by `push` of prod (pid {}",
            held["pid"]
        )),
        "{err}"
    );
    assert!(err.contains("s3://flowpack/team/history/.locks/"), "{err}");

    let first = first.wait_with_output().unwrap();
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    // The lock is gone, the record complete in the bucket, no pending object left.
    let keys: Vec<String> = s3
        .list("team/")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert!(!keys.iter().any(|k| k.contains("/.locks/")), "{keys:?}");
    assert!(!keys.iter().any(|k| k.ends_with(".pending")), "{keys:?}");
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with("team/history/prod/") && k.ends_with(".json"))
            .count(),
        1,
        "{keys:?}"
    );

    // Now the other machine pushes, and its history shows both runs.
    let second = team_push(b.path(), &store, &archive).output().unwrap();
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let o = Command::new(env!("CARGO_BIN_EXE_flowpack"))
        .args(["history", "--env", "prod", "--format", "json"])
        .current_dir(a.path())
        .env("PROD_TOKEN", "team-token")
        .envs(store.env())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["records"].as_array().unwrap().len(), 2, "{report}");
}

#[test]
fn a_pending_record_in_the_bucket_stops_every_machine_until_one_recovers_it() {
    let store = Weed::start();
    let work = tempfile::tempdir().unwrap();
    let archive = pack_reference(work.path());
    let sb = crate::util::SandboxProcess::start(work.path(), "team-token", &[]);
    let history = store.url("h");
    let (a, b) = (machine(&sb.url, &history), machine(&sb.url, &history));
    let s3 = open(&store, "h");
    // Machine a is killed after its first write: its pending record stays in the bucket.
    let o = team_push(a.path(), &store, &archive)
        .env("FLOWPACK_TEST_CRASH_AFTER", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), None, "killed: {}", stderr(&o));
    assert_eq!(flow_count(&sb.url), 1, "the killed push imported its flow");
    let keys: Vec<String> = s3.list("h/").unwrap().into_iter().map(|o| o.key).collect();
    let pending: Vec<&String> = keys.iter().filter(|k| k.ends_with(".pending")).collect();
    assert_eq!(pending.len(), 1, "{keys:?}");
    let record: Value = serde_json::from_slice(
        &std::fs::read(
            s3.get_to_temp(pending[0], work.path(), 1 << 20)
                .unwrap()
                .path(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(record["status"], "pending");
    assert!(record["before"].is_object(), "the before-set: {record}");
    // Machine b saw the run early (its mirror holds the record as first created, without the
    // before-set): the bucket's newer copy replaces it, as b has no journal of that run.
    let mirror = b.path().join(".flowpack/shared-history/flowpack/h/prod");
    std::fs::create_dir_all(&mirror).unwrap();
    let mut early = record.clone();
    early["before"] = json!({});
    std::fs::write(
        mirror.join(format!("{}.json", record["id"].as_str().unwrap())),
        early.to_string(),
    )
    .unwrap();
    // Its lock: a lease that ran out is taken over (made to look expired here).
    let lock = keys.iter().find(|k| k.contains("/.locks/")).unwrap();
    let mut held: Value = serde_json::from_slice(
        &std::fs::read(s3.get_to_temp(lock, work.path(), 1 << 20).unwrap().path()).unwrap(),
    )
    .unwrap();
    held["lease_until"] = "2020-01-01T00:00:00Z".into();
    s3.put_bytes(
        lock,
        held.to_string().as_bytes(),
        flowpack_action::storage::Precondition::Always,
    )
    .unwrap();

    // The other machine refuses to push, naming recover.
    let o = team_push(b.path(), &store, &archive).output().unwrap();
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("flowpack recover --env prod"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("took over the lock"), "{}", stderr(&o));
    // It recovers from the pending record and the platform's listing.
    let o = Command::new(env!("CARGO_BIN_EXE_flowpack"))
        .args(["recover", "--env", "prod"])
        .current_dir(b.path())
        .env("PROD_TOKEN", "team-token")
        .env("FLOWPACK_LOCK_DIR", b.path().join("locks"))
        .envs(store.env())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // Without the journal (it stayed on machine a), the import is found from the before-set
    // and the listing, and undone.
    assert_eq!(flow_count(&sb.url), 0, "{}", stdout(&o));
    let keys: Vec<String> = s3.list("h/").unwrap().into_iter().map(|o| o.key).collect();
    assert!(!keys.iter().any(|k| k.ends_with(".pending")), "{keys:?}");
    assert!(
        keys.iter()
            .any(|k| k.starts_with("h/prod/") && k.ends_with(".journal")),
        "the recovery's record and journal: {keys:?}"
    );
    // Machine a, too, sees it recovered and pushes again.
    let o = team_push(a.path(), &store, &archive).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // A lock with a live lease from a machine that is gone: refused until `unlock` removes it.
    held["host"] = "gone-runner".into();
    held["lease_until"] = "2999-01-01T00:00:00Z".into();
    s3.put_bytes(
        lock,
        held.to_string().as_bytes(),
        flowpack_action::storage::Precondition::Always,
    )
    .unwrap();
    let o = team_push(b.path(), &store, &archive).output().unwrap();
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("on gone-runner"), "{}", stderr(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_flowpack"))
        .args(["unlock", "--env", "prod"])
        .current_dir(b.path())
        .env("PROD_TOKEN", "team-token")
        .env("FLOWPACK_LOCK_DIR", b.path().join("locks"))
        .envs(store.env())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("removed the lock of `push` of prod")
            && stdout(&o).contains("on gone-runner"),
        "{}",
        stdout(&o)
    );
    assert_eq!(s3.head(lock).unwrap(), None);
    let o = team_push(b.path(), &store, &archive).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn a_killed_upload_leaves_no_object_and_the_next_write_aborts_it() {
    let store = Weed::start();
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    // A flow whose description is incompressible and large: an archive above the single-PUT
    // bound, so it goes as a multipart upload.
    let mut doc: Value = serde_json::from_slice(
        &std::fs::read(crate::util::fixture("reference/export-v2-order-sync.json")).unwrap(),
    )
    .unwrap();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: String = (0..12 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                    [(state % 64) as usize],
            )
        })
        .collect();
    doc["flow"]["description"] = noise.into();
    std::fs::write(d.join("big.json"), doc.to_string()).unwrap();
    let target = store.url("up/big.flowpack");
    let pack = |over: &[(&str, &str)]| {
        flowpack(
            d,
            &store,
            over,
            &[
                "pack",
                "big.json",
                "-o",
                &target,
                "--name",
                "big",
                "--version",
                "1.0.0",
                "--kind",
                "release",
            ],
        )
    };
    let o = pack(&[("FLOWPACK_TEST_CRASH_AFTER_PART", "1")]);
    assert_eq!(o.status.code(), None, "killed mid-upload: {}", stderr(&o));
    let s3 = open(&store, "up");
    assert_eq!(s3.list("up/").unwrap(), [], "no object under the prefix");
    let uploads = s3.list_uploads("up/").unwrap();
    assert_eq!(
        uploads.len(),
        1,
        "the killed upload is unfinished: {uploads:?}"
    );
    assert_eq!(uploads[0].0, "up/big.flowpack");
    // The next write under the prefix aborts it (stale at once, for the test), and succeeds.
    let o = pack(&[("FLOWPACK_TEST_STALE_UPLOAD_SECS", "0")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(s3.list_uploads("up/").unwrap(), []);
    let listed = s3.list("up/").unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].size > SINGLE_PUT_MAX, "{listed:?}");
    let o = flowpack(d, &store, &[], &["verify", &target]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn a_held_lock_has_its_lease_renewed_while_the_run_lasts() {
    let store = Weed::start();
    let work = tempfile::tempdir().unwrap();
    let archive = pack_reference(work.path());
    // A slow platform: the push lasts several seconds.
    let sb =
        crate::util::SandboxProcess::start(work.path(), "team-token", &["--latency-ms", "800"]);
    let a = machine(&sb.url, &store.url("renew"));
    let s3 = open(&store, "renew");
    let push = team_push(a.path(), &store, &archive)
        .env("FLOWPACK_TEST_RENEW_MS", "200")
        .spawn()
        .unwrap();
    let lease = || -> Option<String> {
        let lock = s3.list("renew/.locks/").unwrap().into_iter().next()?;
        let obj = s3.get_small(&lock.key, 1 << 20).unwrap()?;
        let held: Value = serde_json::from_slice(&obj.bytes).unwrap();
        Some(held["lease_until"].as_str().unwrap().to_string())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let first = loop {
        if let Some(l) = lease() {
            break l;
        }
        assert!(std::time::Instant::now() < deadline, "no lock object");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let later = lease().expect("the lock is still held");
    assert!(later > first, "renewed: {first} then {later}");
    let out = push.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(lease(), None, "released");
}

#[test]
fn publish_takes_an_archive_from_a_bucket_and_the_registry_gets_its_exact_bytes() {
    let store = Weed::start();
    let reg = crate::oci::registry::Registry::start();
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let doc = crate::util::fixture("reference/export-v2-order-sync.json");
    let object = store.url("releases/app-1.0.0.flowpack");
    let o = flowpack(
        d,
        &store,
        &[],
        &[
            "pack",
            doc.to_str().unwrap(),
            "-o",
            &object,
            "--name",
            "app",
            "--version",
            "1.0.0",
            "--kind",
            "release",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let target = reg.reference("team/app");
    let o = flowpack(
        d,
        &store,
        &[],
        &["publish", &object, &target, "--plain-http"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with(&format!("{target}:1.0.0@sha256:")),
        "{}",
        stdout(&o)
    );
    // What the registry holds is the object's bytes.
    let o = flowpack(
        d,
        &store,
        &[],
        &[
            "pull",
            &format!("{target}:1.0.0"),
            "-o",
            "pulled.flowpack",
            "--plain-http",
            "--insecure-skip-signatures",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let local = d.join("local.flowpack");
    let o = flowpack(
        d,
        &store,
        &[],
        &[
            "pack",
            doc.to_str().unwrap(),
            "-o",
            "local.flowpack",
            "--name",
            "app",
            "--version",
            "1.0.0",
            "--kind",
            "release",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        std::fs::read(d.join("pulled.flowpack")).unwrap(),
        std::fs::read(local).unwrap(),
        "packing is reproducible, so the pulled archive is the object's bytes"
    );
    // A missing object is named, and nothing is published.
    let missing = store.url("releases/none.flowpack");
    let o = flowpack(
        d,
        &store,
        &[],
        &["publish", &missing, &target, "--plain-http"],
    );
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("releases/none.flowpack"),
        "{}",
        stderr(&o)
    );
}

/// The flows of the sandbox at `url`: id, name and when enabled, by id.
fn flows_of(url: &str) -> Vec<(u64, String, Value)> {
    let out = Command::new("curl")
        .args(["-sSf", "-H", "Authorization: Bearer team-token"])
        .arg(format!("{url}/api/v1/flows?per_page=100"))
        .output()
        .unwrap();
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut flows: Vec<(u64, String, Value)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_u64().unwrap(),
                f["name"].as_str().unwrap().to_string(),
                f["enabled_at"].clone(),
            )
        })
        .collect();
    flows.sort_by_key(|f| f.0);
    flows
}

#[test]
fn a_replace_killed_on_one_machine_is_undone_on_another_names_and_state_included() {
    let store = Weed::start();
    let work = tempfile::tempdir().unwrap();
    let v1 = pack_reference(work.path());
    // The same flow, changed: pushing it replaces the live one.
    let mut doc: Value = serde_json::from_slice(
        &std::fs::read(crate::util::fixture("reference/export-v2-order-sync.json")).unwrap(),
    )
    .unwrap();
    doc["flow"]["description"] = "Changed, so that the push replaces it.".into();
    let changed = work.path().join("changed.json");
    std::fs::write(&changed, doc.to_string()).unwrap();
    let v2 = work.path().join("v2.flowpack");
    let o = Command::new(env!("CARGO_BIN_EXE_flowpack"))
        .args([
            "pack",
            changed.to_str().unwrap(),
            "-o",
            v2.to_str().unwrap(),
        ])
        .args(["--name", "app", "--version", "2.0.0", "--kind", "release"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let sb = crate::util::SandboxProcess::start(work.path(), "team-token", &[]);
    let history = store.url("h");
    let (a, b) = (machine(&sb.url, &history), machine(&sb.url, &history));
    let o = team_push(a.path(), &store, &v1)
        .arg("--enable")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let before = flows_of(&sb.url);
    assert_eq!(before.len(), 1, "{before:?}");
    assert!(before[0].2.is_string(), "enabled: {before:?}");
    // Machine a is killed once the old flow is disabled and renamed (import, disable the old
    // flow, enable the new one, rename the old one).
    let o = team_push(a.path(), &store, &v2)
        .env("FLOWPACK_TEST_CRASH_AFTER", "4")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), None, "killed: {}", stderr(&o));
    let during = flows_of(&sb.url);
    assert!(
        during.iter().any(|f| f.0 == before[0].0
            && flowpack_core::names::replaced_original(&f.1) == Some(before[0].1.as_str())
            && f.2.is_null()),
        "the old flow renamed and disabled: {during:?}"
    );
    // Its lock's lease made to look expired, then machine b recovers without a's journal.
    let s3 = open(&store, "h");
    let keys: Vec<String> = s3.list("h/").unwrap().into_iter().map(|o| o.key).collect();
    let lock = keys.iter().find(|k| k.contains("/.locks/")).unwrap();
    let mut held: Value = serde_json::from_slice(
        &std::fs::read(s3.get_to_temp(lock, work.path(), 1 << 20).unwrap().path()).unwrap(),
    )
    .unwrap();
    held["lease_until"] = "2020-01-01T00:00:00Z".into();
    s3.put_bytes(
        lock,
        held.to_string().as_bytes(),
        flowpack_action::storage::Precondition::Always,
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_flowpack"))
        .args(["recover", "--env", "prod"])
        .current_dir(b.path())
        .env("PROD_TOKEN", "team-token")
        .env("FLOWPACK_LOCK_DIR", b.path().join("locks"))
        .envs(store.env())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // Prod as before the push: the old flow, its name, its id, enabled; the new one gone.
    let after = flows_of(&sb.url);
    assert_eq!(after.len(), 1, "{}\n{after:?}", stdout(&o));
    assert_eq!(after, before, "{}", stdout(&o));
}

#[test]
fn a_push_whose_lock_is_taken_over_stops_naming_it_and_leaves_its_record_pending() {
    let store = Weed::start();
    let work = tempfile::tempdir().unwrap();
    let archive = pack_reference(work.path());
    // A slow platform: the takeover lands while the push still plans.
    let sb =
        crate::util::SandboxProcess::start(work.path(), "team-token", &["--latency-ms", "700"]);
    let history = store.url("h");
    let a = machine(&sb.url, &history);
    let s3 = open(&store, "h");
    let push = team_push(a.path(), &store, &archive)
        .env("FLOWPACK_TEST_RENEW_MS", "100")
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let lock = loop {
        let keys: Vec<String> = s3.list("h/").unwrap().into_iter().map(|o| o.key).collect();
        if let Some(k) = keys.iter().find(|k| k.contains("/.locks/")) {
            break k.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no lock: {keys:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // Another run takes the lock over (a write conditional on its ETag, as a takeover is).
    let held = s3.get_small(&lock, 1 << 20).unwrap().unwrap();
    let mut object: Value = serde_json::from_slice(&held.bytes).unwrap();
    object["host"] = "other-runner".into();
    object["lease_until"] = "2999-01-01T00:00:00Z".into();
    s3.put_bytes(
        &lock,
        object.to_string().as_bytes(),
        flowpack_action::storage::Precondition::Etag(&held.etag),
    )
    .unwrap();
    let o = push.wait_with_output().unwrap();
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains(&format!("s3://flowpack/{lock}"))
            && stderr(&o).contains("taken over by")
            && stderr(&o).contains("other-runner"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(
        flow_count(&sb.url),
        0,
        "nothing written after the lock was lost"
    );
    // The record stays pending in the bucket, and the lock is the new holder's.
    let keys: Vec<String> = s3.list("h/").unwrap().into_iter().map(|o| o.key).collect();
    assert!(keys.iter().any(|k| k.ends_with(".pending")), "{keys:?}");
    let now: Value =
        serde_json::from_slice(&s3.get_small(&lock, 1 << 20).unwrap().unwrap().bytes).unwrap();
    assert_eq!(now["host"], "other-runner");
    // Once that lock is gone, the same machine sees its run pending (the bucket's copy wins
    // over the record it finished only locally) and recovers it.
    s3.delete(&lock).unwrap();
    let o = team_push(a.path(), &store, &archive).output().unwrap();
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("flowpack recover --env prod"),
        "{}",
        stderr(&o)
    );
    let o = Command::new(env!("CARGO_BIN_EXE_flowpack"))
        .args(["recover", "--env", "prod"])
        .current_dir(a.path())
        .env("PROD_TOKEN", "team-token")
        .env("FLOWPACK_LOCK_DIR", a.path().join("locks"))
        .envs(store.env())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let o = team_push(a.path(), &store, &archive).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(flow_count(&sb.url), 1);
}
