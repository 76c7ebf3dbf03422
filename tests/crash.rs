//! Crash and race safety of promotion, against the real sandbox: a push killed (SIGKILL) at each
//! of its writes is recovered — undone, or finished — to exactly the state it promised; two
//! pushes at once never both run; several live flows of one name are refused; history records
//! keep no secret.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::promote::{Sandbox, TOKEN, flowpack, json as json_of, ok, pack_sources};
use crate::util::{code, fixture, stderr, stdout};

const NAMES: [&str; 3] = ["Crash A", "Crash B", "Crash C"];

/// Three flows made from the reference document (`changed`: another description and priority)
/// packed into `dir/NAME.flowpack`.
fn pack_three(dir: &Path, name: &str, changed: bool) -> PathBuf {
    let src = dir.join(format!("src-{name}"));
    std::fs::create_dir_all(&src).unwrap();
    let base: Value = serde_json::from_slice(
        &std::fs::read(fixture("reference/export-v2-order-sync.json")).unwrap(),
    )
    .unwrap();
    for (i, flow) in NAMES.iter().enumerate() {
        let mut doc = base.clone();
        doc["flow"]["name"] = (*flow).into();
        if changed {
            doc["flow"]["description"] = format!("{flow}, changed").into();
            doc["flow"]["priority"] = 1.into();
        }
        std::fs::write(src.join(format!("{i}.json")), doc.to_string()).unwrap();
    }
    pack_sources(dir, &src, name, "crash", "1.0.0")
}

/// A sandbox holding the three flows of `v1`, deployed and enabled, each with a webhook and a
/// callback; and a backup of it (`before.flowpack`) that `diff` compares against.
fn prepared(d: &Path, v1: &Path) -> (Sandbox, PathBuf) {
    let _ = std::fs::remove_file(d.join("sandbox.db"));
    let _ = std::fs::remove_dir_all(d.join(".flowpack"));
    let sb = Sandbox::start(d, &[]);
    ok(&flowpack(
        d,
        &[
            "push",
            v1.to_str().unwrap(),
            "--env",
            "prod",
            "--deploy",
            "--enable",
        ],
    ));
    for name in NAMES {
        let id = sb.id_of(name);
        let (s, body) = sb.api(
            "POST",
            &format!("/flows/{id}/webhooks"),
            Some(json!({"status": "active", "format": "json", "body": "{}"})),
        );
        assert!(s == 200 || s == 201, "{body}");
        let (s, body) = sb.api(
            "POST",
            &format!("/flows/{id}/callbacks"),
            Some(json!({"status": "active", "format": "json"})),
        );
        assert!(s == 200 || s == 201, "{body}");
    }
    let before = d.join("before.flowpack");
    let _ = std::fs::remove_file(&before);
    ok(&flowpack(
        d,
        &[
            "export",
            "--env",
            "prod",
            "--all",
            "-o",
            before.to_str().unwrap(),
        ],
    ));
    (sb, before)
}

/// `flowpack push V2 --on-conflict replace --jobs 1`, killed after its `crash_after`-th write
/// when given.
fn replace(d: &Path, v2: &Path, crash_after: Option<u64>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowpack"));
    cmd.args([
        "push",
        v2.to_str().unwrap(),
        "--env",
        "prod",
        "--on-conflict",
        "replace",
        "--jobs",
        "1",
        "--format",
        "json",
    ])
    .current_dir(d)
    .env("PROD_TOKEN", TOKEN);
    if let Some(n) = crash_after {
        cmd.env("FLOWPACK_TEST_CRASH_AFTER", n.to_string());
    }
    cmd.output().expect("run flowpack")
}

/// `flowpack diff LEFT env:prod`, which must say `same`.
fn assert_same(d: &Path, left: &Path, context: &str) {
    let o = flowpack(d, &["diff", left.to_str().unwrap(), "env:prod"]);
    assert_eq!(
        code(&o),
        0,
        "{context}: diff {} env:prod\n{}{}",
        left.display(),
        stdout(&o),
        stderr(&o)
    );
}

/// The one pending record of `prod`, after a crash.
fn pending_records(d: &Path) -> Vec<Value> {
    let dir = d.join(".flowpack/history/prod");
    std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| serde_json::from_slice::<Value>(&std::fs::read(e.path()).unwrap()).unwrap())
        .filter(|r| r["status"] == "pending")
        .collect()
}

#[test]
fn a_replace_killed_at_every_write_is_undone_or_finished_by_recover() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = pack_three(d, "v1", false);
    let v2 = pack_three(d, "v2", true);

    // How many writes the whole replace sends.
    let writes = {
        let (_sb, _before) = prepared(d, &v1);
        let report = json_of(&replace(d, &v2, None));
        assert!(
            report["flows"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f["outcome"] == "replaced"),
            "{report}"
        );
        assert_same(d, &v2, "the uninterrupted replace");
        let record: Value =
            serde_json::from_slice(&std::fs::read(report["history"].as_str().unwrap()).unwrap())
                .unwrap();
        assert_eq!(record["status"], "complete");
        record["wrote"].as_u64().unwrap()
    };
    // Import, deploy, webhook, callback, disable old, enable new, rename old: per flow.
    assert!(writes >= 21, "{writes} writes");

    for n in 1..=writes {
        let (_sb, before) = prepared(d, &v1);
        // Killed right after write n was answered, before its result was journaled.
        let o = replace(d, &v2, Some(n));
        assert_eq!(o.status.signal(), Some(9), "write {n}: {}", stderr(&o));
        assert_eq!(pending_records(d).len(), 1, "write {n}");
        // Nothing else runs on a half-done environment.
        for blocked in [
            vec!["push", v2.to_str().unwrap(), "--env", "prod"],
            vec!["rollback", "--env", "prod"],
            vec!["backup", "--env", "prod", "--dir", "backups"],
        ] {
            let o = flowpack(d, &blocked);
            assert_eq!(code(&o), 2, "write {n}: {blocked:?}: {}", stderr(&o));
            assert!(
                stderr(&o).contains("flowpack recover --env prod"),
                "write {n}: {}",
                stderr(&o)
            );
        }

        // Undo: the environment is as before the push.
        let o = flowpack(d, &["recover", "--env", "prod"]);
        assert_eq!(code(&o), 0, "write {n}: {}{}", stdout(&o), stderr(&o));
        assert!(pending_records(d).is_empty(), "write {n}");
        assert_same(d, &before, &format!("recover after write {n}"));
        let o = flowpack(d, &["recover", "--env", "prod"]);
        assert!(stdout(&o).contains("nothing to recover"), "{}", stdout(&o));

        // The same crash again, then finished forward: the environment is the archive's.
        let o = replace(d, &v2, Some(n));
        assert_eq!(o.status.signal(), Some(9), "write {n}: {}", stderr(&o));
        let o = flowpack(
            d,
            &[
                "recover",
                "--env",
                "prod",
                "--forward",
                v2.to_str().unwrap(),
            ],
        );
        assert_eq!(code(&o), 0, "write {n}: {}{}", stdout(&o), stderr(&o));
        assert_same(d, &v2, &format!("recover --forward after write {n}"));
        // One live flow per name, and nothing pending.
        let o = flowpack(
            d,
            &["diff", v2.to_str().unwrap(), "env:prod", "--format", "json"],
        );
        let flows = json_of(&o)["flows"].as_array().unwrap().len();
        assert_eq!(flows, 3, "write {n}");
        assert!(pending_records(d).is_empty(), "write {n}");
    }
}

#[test]
fn forward_recovery_needs_the_archive_the_record_pushed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = pack_three(d, "v1", false);
    let v2 = pack_three(d, "v2", true);
    let (_sb, before) = prepared(d, &v1);
    let o = replace(d, &v2, Some(2));
    assert_eq!(o.status.signal(), Some(9), "{}", stderr(&o));
    // The forward archive's trust takes --threshold as push does (the environment has no keys).
    let o = flowpack(
        d,
        &[
            "recover",
            "--env",
            "prod",
            "--forward",
            v2.to_str().unwrap(),
            "--threshold",
            "2",
        ],
    );
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("a threshold of 2 needs at least 2 distinct trusted keys, 0 given"),
        "{}",
        stderr(&o)
    );
    assert_eq!(pending_records(d).len(), 1);
    let o = flowpack(
        d,
        &[
            "recover",
            "--env",
            "prod",
            "--forward",
            v1.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("not the archive record"),
        "{}",
        stderr(&o)
    );
    // Nothing was done: still pending, and undone on request.
    assert_eq!(pending_records(d).len(), 1);
    ok(&flowpack(d, &["recover", "--env", "prod"]));
    assert_same(d, &before, "undo after a refused forward");
}

#[test]
fn two_pushes_at_once_one_runs_the_other_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = pack_three(d, "v1", false);
    let v2 = pack_three(d, "v2", true);
    let (sb, _before) = prepared(d, &v1);
    drop(sb);
    // A slow platform, so the two runs overlap.
    let sb = Sandbox::start(d, &["--latency-ms", "150"]);
    let lock_dir = d.join("locks");
    let start = |archive: &Path| {
        Command::new(env!("CARGO_BIN_EXE_flowpack"))
            .args([
                "push",
                archive.to_str().unwrap(),
                "--env",
                "prod",
                "--on-conflict",
                "replace",
            ])
            .current_dir(d)
            .env("PROD_TOKEN", TOKEN)
            .env("FLOWPACK_LOCK_DIR", &lock_dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Another copy of v2 with other content: both pushes would replace every flow.
    let v3 = {
        let src = d.join("src-v3");
        std::fs::create_dir_all(&src).unwrap();
        for (i, e) in std::fs::read_dir(d.join("src-v2"))
            .unwrap()
            .flatten()
            .enumerate()
        {
            let mut doc: Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
            doc["flow"]["priority"] = 2.into();
            std::fs::write(src.join(format!("{i}.json")), doc.to_string()).unwrap();
        }
        pack_sources(d, &src, "v3", "crash", "1.0.1")
    };
    let a = start(&v2);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let b = start(&v3);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let mut codes = [code(&a), code(&b)];
    codes.sort_unstable();
    assert_eq!(codes, [0, 2], "a: {}\nb: {}", stderr(&a), stderr(&b));
    let refused = if code(&a) == 2 { &a } else { &b };
    assert!(
        stderr(refused).contains("prod is locked by `push` of prod (pid"),
        "{}",
        stderr(refused)
    );
    // One live flow per name: the others are the replaced ones, disabled and renamed.
    let flows = sb.flows();
    for name in NAMES {
        let live: Vec<_> = flows.iter().filter(|f| f.1 == name).collect();
        assert_eq!(live.len(), 1, "{name}: {flows:?}");
        assert!(live[0].2, "{name} enabled: {flows:?}");
    }
    let enabled = flows.iter().filter(|f| f.2).count();
    assert_eq!(enabled, 3, "{flows:?}");
}

#[test]
fn several_live_flows_of_one_name_are_refused_whatever_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = pack_three(d, "v1", false);
    let (sb, _before) = prepared(d, &v1);
    // A second live "Crash A", identical to the archive's.
    let first = sb.id_of("Crash A");
    let (_, versions) = sb.api("GET", &format!("/flows/{first}/versions"), None);
    let version = versions["data"][0]["id"].as_u64().unwrap();
    let (s, body) = sb.api(
        "POST",
        &format!("/flows/{first}/duplicate"),
        Some(json!({"flow_version_id": version})),
    );
    assert!(s == 200 || s == 201, "{body}");
    let copy = body["data"]["id"].as_u64().unwrap();
    let (s, body) = sb.api(
        "PUT",
        &format!("/flows/{copy}"),
        Some(json!({"flow": {"name": "Crash A"}})),
    );
    assert_eq!(s, 200, "{body}");
    for policy in ["fail", "skip", "replace"] {
        let o = flowpack(
            d,
            &[
                "push",
                v1.to_str().unwrap(),
                "--env",
                "prod",
                "--enable",
                "--on-conflict",
                policy,
            ],
        );
        assert_eq!(code(&o), 1, "{policy}: {}{}", stdout(&o), stderr(&o));
        let out = format!("{}{}", stdout(&o), stderr(&o));
        assert!(out.contains(&format!("ids {first}, {copy}")), "{out}");
    }
    // Nothing was written: the copy is still disabled.
    assert!(sb.flows().iter().any(|f| f.0 == copy && !f.2));
    // The other flows still go through on their own.
    let o = flowpack(
        d,
        &[
            "push",
            v1.to_str().unwrap(),
            "--env",
            "prod",
            "--flow",
            "Crash B",
            "--flow",
            "Crash C",
        ],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // diff env: reports the name, never picks one.
    let o = flowpack(d, &["diff", v1.to_str().unwrap(), "env:prod"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn rollback_after_a_push_that_wrote_nothing_undoes_the_last_one_that_did() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = pack_three(d, "v1", false);
    let v2 = pack_three(d, "v2", true);
    let (sb, _before) = prepared(d, &v1);
    let ids: Vec<u64> = NAMES.iter().map(|n| sb.id_of(n)).collect();
    // A conflict refused before any write: recorded as an attempt that wrote nothing.
    let o = flowpack(d, &["push", v2.to_str().unwrap(), "--env", "prod"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let o = flowpack(d, &["rollback", "--env", "prod", "--dry-run"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("skipped   "), "{out}");
    assert!(out.contains("(it wrote nothing)"), "{out}");
    assert!(
        out.starts_with("skipped") && out.contains("would undo"),
        "{out}"
    );
    // The rollback undoes the setup push (which created the flows), not the refused attempt.
    ok(&flowpack(d, &["rollback", "--env", "prod"]));
    let left: Vec<u64> = sb.flows().iter().map(|f| f.0).collect();
    assert!(ids.iter().all(|id| !left.contains(id)), "{left:?}");
}

#[test]
fn records_of_a_pruning_replace_hold_no_secret_and_its_rollback_needs_the_overlay() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = pack_three(d, "v1", false);
    let v2 = pack_three(d, "v2", true);
    let (sb, _before) = prepared(d, &v1);
    // The live flows carry a credential the overlay set (as a real promotion would).
    let secret = "s3cr3t-api-token-9f1c";
    std::fs::write(
        d.join("prod.toml"),
        format!("[secrets.\"Shopify\".\"Admin API token\"]\ntoken = \"{secret}\"\n"),
    )
    .unwrap();
    let before_ids: Vec<u64> = NAMES.iter().map(|n| sb.id_of(n)).collect();
    for id in &before_ids {
        let (s, body) = sb.api("DELETE", &format!("/flows/{id}"), None);
        assert!(s == 200 || s == 204, "{body}");
    }
    ok(&flowpack(
        d,
        &[
            "push",
            v1.to_str().unwrap(),
            "--env",
            "prod",
            "--overlay",
            "prod.toml",
            "--enable",
        ],
    ));
    let o = flowpack(
        d,
        &[
            "push",
            v2.to_str().unwrap(),
            "--env",
            "prod",
            "--overlay",
            "prod.toml",
            "--on-conflict",
            "replace",
            "--prune-replaced",
        ],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // No history file holds the secret, and each is private.
    let hist = d.join(".flowpack/history/prod");
    for e in std::fs::read_dir(&hist).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        assert!(
            !text.contains(secret),
            "{} holds the secret",
            e.path().display()
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(&e.metadata().unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "{}", e.path().display());
    }
    // Undoing the prune re-imports the deleted flows: refused without the overlay, naming
    // the value it needs, then done with it.
    let o = flowpack(d, &["rollback", "--env", "prod"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("token"), "{}", stderr(&o));
    assert_eq!(sb.flows().len(), 3, "nothing was written: {:?}", sb.flows());
    ok(&flowpack(
        d,
        &["rollback", "--env", "prod", "--overlay", "prod.toml"],
    ));
    assert_same(d, &v1, "the pruned flows re-imported");
}
