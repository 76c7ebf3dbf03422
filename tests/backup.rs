//! End-to-end tests of `flowpack backup` (and of what export writes into `flow.json`) against the
//! real `flowpack-sandbox` binary.

use std::path::Path;

use flowpack_client::{
    CallbackRequest, FlowId, FlowSettingsUpdate, HttpOptions, HttpPlatform, Platform,
    WebhookRequest, find_by_name,
};
use serde_json::{Value, json};

use crate::platform::{ORDER_SYNC, Sandbox, TOKEN, pack_reference, run, start_sandbox};
use crate::util::{code, fixture, stderr, stdout};

const HMAC_SECRET: &str = "hmac-TopSecret-93f1c2";

fn client(url: &str) -> HttpPlatform {
    HttpPlatform::new(HttpOptions::new(url, TOKEN)).unwrap()
}

/// A sandbox source holding the reference flow (deployed, enabled, with two webhooks — one with
/// an HMAC secret — two callbacks and non-default settings) and the legacy archive's two other
/// flows as pushed (not deployed, disabled).
fn prepare_source(dir: &Path, url: &str) -> FlowId {
    let archive = pack_reference(dir);
    let o = run(
        dir,
        Some(TOKEN),
        &[],
        &[
            "push",
            archive.to_str().unwrap(),
            "--url",
            url,
            "--deploy",
            "--enable",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // The archive made before flow.json existed still pushes.
    let legacy = fixture("legacy/manifest-v1.flowpack");
    let o = run(
        dir,
        Some(TOKEN),
        &[],
        &[
            "push",
            legacy.to_str().unwrap(),
            "--url",
            url,
            "--format",
            "json",
        ],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let outcomes: Vec<&str> = report["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["outcome"].as_str().unwrap())
        .collect();
    // It holds the reference flow too: that one is unchanged.
    assert_eq!(outcomes, ["created", "unchanged", "created"], "{report}");

    let p = client(url);
    let id = find_by_name(&p, ORDER_SYNC).unwrap()[0].id;
    p.create_webhook(
        id,
        &WebhookRequest {
            status: Some("active".into()),
            format: Some("json".into()),
            body: Some(Some("{\"order\": \"{{id}}\"}".into())),
            ..WebhookRequest::default()
        },
    )
    .unwrap();
    let signed = p
        .create_webhook(
            id,
            &WebhookRequest {
                status: Some("paused".into()),
                format: Some("form".into()),
                ..WebhookRequest::default()
            },
        )
        .unwrap();
    p.update_webhook(
        id,
        signed.id,
        &WebhookRequest {
            hmac_algorithm: Some(Some("sha256".into())),
            hmac_secret_key: Some(Some(HMAC_SECRET.into())),
            ..WebhookRequest::default()
        },
    )
    .unwrap();
    for (status, format) in [("failed", "json"), ("succeeded", "xml")] {
        p.create_callback(
            id,
            &CallbackRequest {
                status: Some(status.into()),
                format: Some(format.into()),
            },
        )
        .unwrap();
    }
    p.update_flow_settings(
        id,
        &FlowSettingsUpdate {
            priority: Some(2),
            prod_flag: Some(true),
            use_queued_time: Some(true),
            labels: Some(vec![3, 11]),
            notification_groups: Some(vec![5]),
            ..FlowSettingsUpdate::default()
        },
    )
    .unwrap();
    p.set_layout_direction(id, "vertical").unwrap();
    id
}

fn write_config(dir: &Path, url: &str, envs: &[&str]) {
    let mut text = String::new();
    for env in envs {
        text.push_str(&format!(
            "[env.{env}]\nurl = \"{url}\"\ntoken_env = \"SOURCE_KEY\"\n"
        ));
    }
    std::fs::write(dir.join("flowpack.toml"), text).unwrap();
}

fn backup(dir: &Path, env: &str, at: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["backup", "--env", env, "--dir", "backups"];
    args.extend_from_slice(extra);
    run(
        dir,
        None,
        &[("SOURCE_KEY", TOKEN), ("SOURCE_DATE_EPOCH", at)],
        &args,
    )
}

/// Every file under `root`, recursively.
fn files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_backup_holds_webhooks_callbacks_and_state_but_never_the_hmac_secret() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let sandbox = start_sandbox(d);
    prepare_source(d, &sandbox.url);
    write_config(d, &sandbox.url, &["source"]);

    let o = backup(
        d,
        "source",
        "1767225600",
        &["--format", "json", "--verbose"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for text in [stdout(&o), stderr(&o)] {
        assert!(!text.contains(HMAC_SECRET), "{text}");
    }
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["flows"], 3, "{report}");
    assert_eq!(report["environment"], "source");
    assert_eq!(report["deleted"], json!([]));
    assert_eq!(
        report["path"],
        "backups/source-20260101T000000Z-000001.flowpack"
    );
    let path = d.join("backups/source-20260101T000000Z-000001.flowpack");

    // The archive verifies; no entry holds the secret, and its bytes do not either.
    let o = run(d, None, &[], &["verify", path.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let raw = std::fs::read(&path).unwrap();
    assert!(
        !raw.windows(HMAC_SECRET.len())
            .any(|w| w == HMAC_SECRET.as_bytes())
    );
    let out = d.join("unpacked");
    let o = run(
        d,
        None,
        &[],
        &[
            "unpack",
            path.to_str().unwrap(),
            "-d",
            out.to_str().unwrap(),
            "--insecure-skip-signatures",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let all = files(&out);
    for f in &all {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(!text.contains(HMAC_SECRET), "{}", f.display());
    }
    let settings: Vec<_> = all.iter().filter(|f| f.ends_with("flow.json")).collect();
    assert_eq!(settings.len(), 3, "every flow has its flow.json: {all:?}");

    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("flowpack.json")).unwrap()).unwrap();
    assert_eq!(manifest["source"]["environment"], "source");
    assert_eq!(manifest["package"]["kind"], "backup");
    let record = manifest["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == ORDER_SYNC)
        .unwrap();
    let flow_json = out.join(record["settings"]["path"].as_str().unwrap());
    let settings: Value = serde_json::from_slice(&std::fs::read(flow_json).unwrap()).unwrap();
    assert_eq!(
        settings,
        json!({
            "format": 1,
            "enabled": true,
            "deployed_iteration": 7,
            "priority": 2,
            "prod_flag": true,
            "use_queued_time": true,
            "remove_failed_payloads": false,
            "layout_direction": "vertical",
            "labels": [3, 11],
            "notification_groups": [5],
            "webhooks": [
                {"status": "active", "format": "json", "body": "{\"order\": \"{{id}}\"}",
                 "hmac_algorithm": null, "has_hmac_secret_key": false},
                {"status": "paused", "format": "form", "body": null,
                 "hmac_algorithm": "sha256", "has_hmac_secret_key": true}
            ],
            "callbacks": [
                {"status": "failed", "format": "json"},
                {"status": "succeeded", "format": "xml"}
            ]
        })
    );
    let secrets: Vec<&Value> = manifest["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "webhook_secret")
        .collect();
    assert_eq!(
        secrets,
        [
            &json!({"kind": "webhook_secret", "name": "webhooks/1/hmac_secret_key", "webhook": 1,
                 "required": true,
                 "flows": [manifest["flows"].as_array().unwrap().iter()
                     .position(|f| f["name"] == ORDER_SYNC).unwrap()]})
        ]
    );
    // The legacy flows were pushed without deploying or enabling: their state says so.
    let legacy: Vec<Value> = all
        .iter()
        .filter(|f| f.ends_with("flow.json"))
        .map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap())
        .filter(|s: &Value| s["webhooks"] == json!([]))
        .collect();
    assert_eq!(legacy.len(), 2);
    for s in legacy {
        assert_eq!(
            (&s["enabled"], &s["deployed_iteration"]),
            (&json!(false), &Value::Null)
        );
    }
}

/// A sandbox in `d` holding the reference flow, pushed as packed.
fn sandbox_with_reference(d: &Path) -> Sandbox {
    let sandbox = start_sandbox(d);
    let archive = pack_reference(d);
    let o = run(
        d,
        Some(TOKEN),
        &[],
        &["push", archive.to_str().unwrap(), "--url", &sandbox.url],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    sandbox
}

#[test]
fn retention_deletes_only_the_oldest_own_backups_of_the_environment() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let sandbox = sandbox_with_reference(d);
    write_config(d, &sandbox.url, &["prod", "staging"]);
    let dir = d.join("backups");

    // The directory is created; the summary is one line.
    let o = backup(d, "prod", "1767225600", &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let line = stdout(&o);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.starts_with(
            "backups/prod-20260101T000000Z-000001.flowpack: 1 flow from prod, manifest sha256 "
        ) && line
            .contains("unsigned, verified (integrity); all backups kept, 0 old backups deleted"),
        "{line}"
    );
    // The same second again: the next sequence.
    let o = backup(d, "prod", "1767225600", &["--quiet"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    // Another environment's backup, and foreign files, some named like prod's backups.
    let o = backup(d, "staging", "1767000000", &["--quiet"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    std::fs::write(dir.join("notes.txt"), "hands off").unwrap();
    std::fs::write(dir.join("prod-20200101T000000Z.flowpack"), "not an archive").unwrap();
    std::fs::copy(
        dir.join("prod-20260101T000000Z-000001.flowpack"),
        dir.join("prod-20260101T000000Z-000001.flowpack.bak"),
    )
    .unwrap();
    std::fs::copy(
        dir.join("staging-20251229T092000Z-000001.flowpack"),
        dir.join("prod-20100101T000000Z.flowpack"),
    )
    .unwrap();
    std::fs::copy(
        dir.join("staging-20251229T092000Z-000001.flowpack"),
        dir.join("prod-20100101T000000Z-000007.flowpack"),
    )
    .unwrap();

    let o = backup(
        d,
        "prod",
        "1767225660",
        &["--keep", "2", "--format", "json"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["sequence"], 3);
    assert_eq!(
        report["deleted"],
        json!(["backups/prod-20260101T000000Z-000001.flowpack"])
    );
    assert_eq!(
        names(&dir),
        [
            "notes.txt",
            "prod-20100101T000000Z-000007.flowpack",
            "prod-20100101T000000Z.flowpack",
            "prod-20200101T000000Z.flowpack",
            "prod-20260101T000000Z-000001.flowpack.bak",
            "prod-20260101T000000Z-000002.flowpack",
            "prod-20260101T000100Z-000003.flowpack",
            "staging-20251229T092000Z-000001.flowpack",
        ]
    );

    // --keep 0 is a usage error and changes nothing.
    let o = backup(d, "prod", "1767225720", &["--keep", "0"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--keep 0"), "{}", stderr(&o));
    assert_eq!(names(&dir).len(), 8);

    // --keep 1 leaves prod's newest only, and every foreign file.
    let o = backup(d, "prod", "1767225720", &["--keep", "1", "--quiet"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        names(&dir),
        [
            "notes.txt",
            "prod-20100101T000000Z-000007.flowpack",
            "prod-20100101T000000Z.flowpack",
            "prod-20200101T000000Z.flowpack",
            "prod-20260101T000000Z-000001.flowpack.bak",
            "prod-20260101T000200Z-000004.flowpack",
            "staging-20251229T092000Z-000001.flowpack",
        ]
    );
}

/// The case: a fixed SOURCE_DATE_EPOCH, five backups with `--keep 2`, the environment
/// changed between runs: the last two runs stay, whatever the names' times say.
#[test]
fn a_fixed_clock_keeps_the_last_runs_by_sequence() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let sandbox = sandbox_with_reference(d);
    write_config(d, &sandbox.url, &["prod"]);
    let dir = d.join("backups");
    let mut digests = Vec::new();
    for run_no in 1..=5 {
        // A clock that stands still, then goes back.
        let at = if run_no < 4 {
            "1767225600"
        } else {
            "1767000000"
        };
        let o = backup(d, "prod", at, &["--keep", "2", "--format", "json"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let report: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["sequence"], run_no);
        digests.push(report["manifest_sha256"].as_str().unwrap().to_string());
    }
    assert_eq!(
        names(&dir),
        [
            "prod-20251229T092000Z-000004.flowpack",
            "prod-20251229T092000Z-000005.flowpack",
        ]
    );
    // Daily/weekly/monthly rules: one backup per day kept, the new one always.
    let o = backup(
        d,
        "prod",
        "1767225600",
        &["--keep-daily", "1", "--format", "json"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["sequence"], 6);
    assert_eq!(names(&dir), ["prod-20260101T000000Z-000006.flowpack"]);
    let o = backup(d, "prod", "1767225600", &["--keep-weekly", "0"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--keep-weekly 0"), "{}", stderr(&o));
}

#[test]
fn a_backup_that_fails_its_trust_policy_deletes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let sandbox = sandbox_with_reference(d);
    write_config(d, &sandbox.url, &["prod"]);
    let o = backup(d, "prod", "1767225600", &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // The environment now trusts a key the next backup is not signed with.
    let key = fixture("keys/test.pub");
    std::fs::write(
        d.join("flowpack.toml"),
        format!(
            "[env.prod]\nurl = \"{}\"\ntoken_env = \"SOURCE_KEY\"\ntrusted_keys = [{:?}]\n",
            sandbox.url,
            key.display().to_string()
        ),
    )
    .unwrap();
    let o = backup(d, "prod", "1767225660", &["--keep", "1"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("did not verify") && stderr(&o).contains("no older backup was deleted"),
        "{}",
        stderr(&o)
    );
    // Nothing of the failed backup is left in the directory.
    assert_eq!(
        names(&d.join("backups")),
        ["prod-20260101T000000Z-000001.flowpack"]
    );
    // Signed with the trusted key, it verifies with signatures and retention runs.
    let o = backup(
        d,
        "prod",
        "1767225720",
        &[
            "--keep",
            "1",
            "--sign",
            fixture("keys/test.key").to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o)
            .contains("verified (signatures and integrity); 1 backup kept, 1 old backup deleted"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        names(&d.join("backups")),
        ["prod-20260101T000200Z-000002.flowpack"]
    );
}

/// In `d`: a prepared source sandbox, its backup (the archive's path) and an empty target
/// sandbox (in `d/target`).
fn backup_and_empty_target(d: &Path) -> (Sandbox, std::path::PathBuf, Sandbox) {
    let source = start_sandbox(d);
    prepare_source(d, &source.url);
    write_config(d, &source.url, &["source"]);
    let o = backup(d, "source", "1767225600", &["--quiet"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let target_dir = d.join("target");
    std::fs::create_dir(&target_dir).unwrap();
    let target = start_sandbox(&target_dir);
    (
        source,
        d.join("backups/source-20260101T000000Z-000001.flowpack"),
        target,
    )
}

#[test]
fn push_restores_webhooks_callbacks_and_state_into_an_empty_environment() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let (source, archive, target) = backup_and_empty_target(d);
    let a = archive.to_str().unwrap();
    let tp = client(&target.url);

    // Without the HMAC secret the restore is refused, naming it, and writes nothing.
    let o = run(d, Some(TOKEN), &[], &["push", a, "--url", &target.url]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("webhooks/1/hmac_secret_key")
            && err.contains(&format!("[flows.\"{ORDER_SYNC}\".webhooks.1]")),
        "{err}"
    );
    assert!(find_by_name(&tp, ORDER_SYNC).unwrap().is_empty());
    // Skipping webhooks needs no secret.
    let o = run(
        d,
        Some(TOKEN),
        &[],
        &[
            "push",
            a,
            "--url",
            &target.url,
            "--no-webhooks",
            "--dry-run",
        ],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));

    write_restore_overlay(d);
    let o = push_restore(d, a, &target.url, &["--verbose"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    for text in [stdout(&o), stderr(&o)] {
        assert!(!text.contains(HMAC_SECRET), "{text}");
    }
    let out = stdout(&o);
    assert!(out.contains("2 webhooks created (ids "), "{out}");
    assert!(
        out.contains("not restored: labels [3, 11]: ids of the environment the archive came from"),
        "{out}"
    );

    // Every field, flow by flow, through the API.
    let sp = client(&source.url);
    let flows = flowpack_client::list_all(&sp, &flowpack_client::ListQuery::default()).unwrap();
    assert_eq!(flows.len(), 3);
    for f in flows {
        let restored = find_by_name(&tp, &f.name).unwrap();
        assert_eq!(restored.len(), 1, "{}", f.name);
        let (s, r) = (f.id, restored[0].id);
        let (ss, rs) = (
            sp.show_flow_settings(s).unwrap(),
            tp.show_flow_settings(r).unwrap(),
        );
        assert_eq!(
            ss.enabled_at.is_some(),
            rs.enabled_at.is_some(),
            "{}",
            f.name
        );
        assert_eq!(
            (
                &ss.description,
                ss.priority,
                ss.prod_flag,
                ss.use_queued_time,
                ss.remove_failed_payloads,
                &ss.layout_direction
            ),
            (
                &rs.description,
                rs.priority,
                rs.prod_flag,
                rs.use_queued_time,
                rs.remove_failed_payloads,
                &rs.layout_direction
            ),
            "{}",
            f.name
        );
        // Another environment: label and notification group ids are not carried over.
        assert!(rs.labels.is_empty() && rs.notification_groups.is_empty());
        let deployed = |p: &HttpPlatform, id| {
            p.list_versions(id)
                .unwrap()
                .into_iter()
                .filter(|v| v.is_deployed)
                .map(|v| v.iteration)
                .collect::<Vec<_>>()
        };
        assert_eq!(deployed(&sp, s), deployed(&tp, r), "{}", f.name);
        let hooks = |p: &HttpPlatform, id| {
            p.list_webhooks(id)
                .unwrap()
                .into_iter()
                .map(|w| {
                    (
                        w.status,
                        w.format,
                        w.body,
                        w.hmac_algorithm,
                        w.has_hmac_secret_key,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(hooks(&sp, s), hooks(&tp, r), "{}", f.name);
        let callbacks = |p: &HttpPlatform, id| {
            p.list_callbacks(id)
                .unwrap()
                .into_iter()
                .map(|c| (c.status, c.format))
                .collect::<Vec<_>>()
        };
        assert_eq!(callbacks(&sp, s), callbacks(&tp, r), "{}", f.name);
    }
    let id = find_by_name(&tp, ORDER_SYNC).unwrap()[0].id;
    assert_eq!(tp.list_webhooks(id).unwrap().len(), 2);
    assert!(tp.list_webhooks(id).unwrap()[1].has_hmac_secret_key);

    // diff of the backup and the restored environment: the same, settings included (labels and
    // notification groups are ids of the source environment, not compared across).
    let diff = |extra: &[&str]| {
        let mut args = vec!["diff", a, "env:url", "--url", &target.url];
        args.extend_from_slice(extra);
        run(d, Some(TOKEN), &[], &args)
    };
    let o = diff(&[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("same: 3 flows compared"),
        "{}",
        stdout(&o)
    );
    // A settings-only change in the target is a difference, at a pointer under /settings.
    let hook = tp.list_webhooks(id).unwrap()[0].id;
    tp.update_webhook(
        id,
        hook,
        &flowpack_client::WebhookRequest {
            status: Some("paused".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let o = diff(&["--format", "json"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let changed: Vec<&Value> = v["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "changed")
        .collect();
    assert_eq!(changed.len(), 1, "{v}");
    assert_eq!(changed[0]["name"], ORDER_SYNC);
    assert_eq!(
        changed[0]["changes"],
        json!([{"pointer": "/settings/webhooks/0/status", "old": "active", "new": "paused"}]),
        "{v}"
    );
    // --content-only leaves settings out.
    let o = diff(&["--content-only"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
}

/// A replace takes the new flow's webhooks and callbacks from the archive's flow.json (with the
/// HMAC secret from the overlay), not from the flow it replaces.
#[test]
fn replace_takes_webhooks_and_callbacks_from_the_archives_flow_json() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let source = start_sandbox(d);
    prepare_source(d, &source.url);
    write_config(d, &source.url, &["source"]);
    let o = backup(d, "source", "1767225600", &["--quiet"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let archive = d.join("backups/source-20260101T000000Z-000001.flowpack");
    let a = archive.to_str().unwrap();

    // The target holds the same flow with other content and no webhooks.
    let target_dir = d.join("target");
    std::fs::create_dir(&target_dir).unwrap();
    let target = start_sandbox(&target_dir);
    let reference = pack_reference(&target_dir);
    let o = run(
        d,
        Some(TOKEN),
        &[],
        &["push", reference.to_str().unwrap(), "--url", &target.url],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let tp = client(&target.url);
    let old = find_by_name(&tp, ORDER_SYNC).unwrap()[0].id;
    tp.update_flow_settings(
        old,
        &FlowSettingsUpdate {
            priority: Some(5),
            ..FlowSettingsUpdate::default()
        },
    )
    .unwrap();
    // The old flow has the first of the backup's webhooks: the new flow's takes it over.
    let taken_over = tp
        .create_webhook(
            old,
            &WebhookRequest {
                status: Some("active".into()),
                format: Some("json".into()),
                body: Some(Some("{\"order\": \"{{id}}\"}".into())),
                ..WebhookRequest::default()
            },
        )
        .unwrap();

    write_restore_overlay(d);
    let o = run(
        d,
        Some(TOKEN),
        &[("HOOK_SECRET", HMAC_SECRET)],
        &[
            "push",
            a,
            "--url",
            &target.url,
            "--overlay",
            "restore.toml",
            "--on-conflict",
            "replace",
            "--history",
            "hist",
        ],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // The report says which webhook replaces which, names the new one, and says to point the
    // senders at them (as a replace copying the old flow's webhooks does).
    let out = stdout(&o);
    let new_hooks: Vec<u64> = {
        let id = find_by_name(&tp, ORDER_SYNC).unwrap()[0].id;
        tp.list_webhooks(id).unwrap().iter().map(|w| w.id).collect()
    };
    assert!(
        out.contains(&format!("webhook {} → {}", taken_over.id, new_hooks[0])),
        "{out}"
    );
    assert!(
        out.contains(&format!("webhook {} created (new)", new_hooks[1])),
        "{out}"
    );
    assert!(
        out.contains("point the senders at the new flow's webhooks"),
        "{out}"
    );
    assert!(!stdout(&o).contains(HMAC_SECRET) && !stderr(&o).contains(HMAC_SECRET));
    let live = find_by_name(&tp, ORDER_SYNC).unwrap();
    assert_eq!(live.len(), 1, "{live:?}");
    let new = live[0].id;
    assert_ne!(new, old);
    let hooks = tp.list_webhooks(new).unwrap();
    assert_eq!(
        hooks
            .iter()
            .map(|w| (w.status.as_str(), w.format.as_str(), w.has_hmac_secret_key))
            .collect::<Vec<_>>(),
        [("active", "json", false), ("paused", "form", true)]
    );
    assert_eq!(tp.list_callbacks(new).unwrap().len(), 2);
    assert_eq!(tp.list_webhooks(old).unwrap().len(), 1);
}

/// `flowpack push ARCHIVE --url URL --overlay restore.toml --restore-state EXTRA…` in `d`, the
/// HMAC secret the overlay reads in `HOOK_SECRET`.
fn push_restore(d: &Path, archive: &str, url: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "push",
        archive,
        "--url",
        url,
        "--overlay",
        "restore.toml",
        "--restore-state",
    ];
    args.extend_from_slice(extra);
    run(d, Some(TOKEN), &[("HOOK_SECRET", HMAC_SECRET)], &args)
}

/// `restore.toml`: the overlay supplying the HMAC secret of the order sync's second webhook from
/// `HOOK_SECRET`.
fn write_restore_overlay(d: &Path) {
    std::fs::write(
        d.join("restore.toml"),
        format!(
            "[flows.\"{ORDER_SYNC}\".webhooks.1]\nhmac_secret_key = \"${{env:HOOK_SECRET}}\"\n"
        ),
    )
    .unwrap();
}

/// `push --restore-state` also brings a flow that exists unchanged in the target to the
/// backup's state, recording the state it had, so a rollback puts that back; pushed again, it
/// writes nothing.
#[test]
fn restore_state_converges_unchanged_flows_and_a_rollback_puts_their_state_back() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let (_source, archive, target) = backup_and_empty_target(d);
    let a = archive.to_str().unwrap();
    let tp = client(&target.url);
    write_restore_overlay(d);
    let restore = |extra: &[&str]| {
        let mut args = vec!["--history", "hist"];
        args.extend_from_slice(extra);
        push_restore(d, a, &target.url, &args)
    };
    let o = restore(&[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));

    // The target drifts: the order sync is disabled, its production flag, queued-time setting
    // and layout changed by hand (settings outside the export document: its priority is in the
    // document, so a changed priority is a conflict).
    let id = find_by_name(&tp, ORDER_SYNC).unwrap()[0].id;
    tp.update_flow_settings(
        id,
        &FlowSettingsUpdate {
            enabled_at: Some(None),
            prod_flag: Some(false),
            use_queued_time: Some(false),
            ..FlowSettingsUpdate::default()
        },
    )
    .unwrap();
    tp.set_layout_direction(id, "horizontal").unwrap();
    // … and another of its versions deployed.
    let deployed_iteration = |p: &HttpPlatform| {
        p.list_versions(id)
            .unwrap()
            .into_iter()
            .find(|v| v.is_deployed)
            .map(|v| v.iteration)
    };
    let backed_up = deployed_iteration(&tp).expect("the restore deployed a version");
    let other = tp
        .list_versions(id)
        .unwrap()
        .into_iter()
        .find(|v| !v.is_deployed)
        .expect("the flow has more than one version");
    tp.deploy_version(id, other.id, "2026-01-02T00:00:00Z")
        .unwrap();
    let drifted = tp.show_flow_settings(id).unwrap();
    // A dry run says what the restore would write, and writes nothing.
    let o = restore(&["--dry-run"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "unchanged  {ORDER_SYNC} (id {id})\n           would restore state (enabled_at, prod_flag, use_queued_time, layout_direction), deploy iteration {backed_up}, enabled\n"
        )),
        "{}",
        stdout(&o)
    );
    assert_eq!(stdout(&o).matches("would restore state").count(), 1);
    assert_eq!(tp.show_flow_settings(id).unwrap(), drifted);
    let diff = || {
        run(
            d,
            Some(TOKEN),
            &[],
            &["diff", a, "env:url", "--url", &target.url],
        )
    };
    assert_eq!(code(&diff()), 1);

    // Restored again: the flow's document is unchanged, its state is brought back.
    let o = restore(&[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("unchanged  {ORDER_SYNC} (id {id})")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "state restored (enabled_at, prod_flag, use_queued_time, layout_direction), iteration {backed_up} deployed, enabled"
        )),
        "{out}"
    );
    assert_eq!(deployed_iteration(&tp), Some(backed_up));
    assert_eq!(out.matches("state restored").count(), 1, "{out}");
    let restored = tp.show_flow_settings(id).unwrap();
    assert!(restored.enabled_at.is_some());
    assert_eq!(
        (
            restored.prod_flag,
            restored.use_queued_time,
            restored.layout_direction.as_deref()
        ),
        (true, true, Some("vertical"))
    );
    let o = diff();
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));

    // Once more: nothing to write, nothing recorded, nothing said about state.
    let records = || std::fs::read_dir(d.join("hist")).unwrap().count();
    let env_dirs = records();
    let dir = std::fs::read_dir(d.join("hist"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let in_dir = |p: &Path| crate::util::writing_records(p);
    let before = in_dir(&dir);
    let o = restore(&[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(!stdout(&o).contains("state restored"), "{}", stdout(&o));
    assert_eq!((records(), in_dir(&dir)), (env_dirs, before));

    // The rollback undoes the last writing push: the flow gets the state it drifted to back.
    let o = run(
        d,
        Some(TOKEN),
        &[],
        &["rollback", "--url", &target.url, "--history", "hist"],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "set enabled_at, prod_flag, use_queued_time, layout_direction of flow {id} ({ORDER_SYNC:?}) back"
        )),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains(&format!(
            "deploy iteration {} of flow {id} ({ORDER_SYNC:?}) again",
            other.iteration
        )),
        "{}",
        stdout(&o)
    );
    let back = tp.show_flow_settings(id).unwrap();
    assert_eq!(back, drifted);
    assert_eq!(deployed_iteration(&tp), Some(other.iteration));
    // The flows the first restore created are still there.
    assert_eq!(
        flowpack_client::list_all(&tp, &flowpack_client::ListQuery::default())
            .unwrap()
            .len(),
        3
    );
}
