//! End-to-end tests of `flowpack diff`: documents, archives, directories, the embedded `local`
//! environment and the real `flowpack-sandbox` binary over HTTP.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::util::{SandboxProcess, code, fixture, stderr, stdout};

const TOKEN: &str = "diff-token-81c2";
const ORDER_SYNC: &str = "Shopify > NetSuite Orders";
const LEGACY: &str = "Shopify > HubSpot Customers";

fn start_sandbox(dir: &Path) -> SandboxProcess {
    SandboxProcess::start(dir, TOKEN, &[])
}

/// Runs flowpack in `cwd` (with `FLOWPACK_TOKEN` when `token` is given).
fn run(cwd: &Path, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowpack"));
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("FLOWPACK_TOKEN")
        .env("SOURCE_DATE_EPOCH", "1767225600");
    if let Some(t) = token {
        cmd.env("FLOWPACK_TOKEN", t);
    }
    cmd.output().expect("run flowpack")
}

fn reference() -> Value {
    serde_json::from_slice(&std::fs::read(fixture("reference/export-v2-order-sync.json")).unwrap())
        .unwrap()
}

fn write_json(path: &Path, v: &Value) -> PathBuf {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    path.to_path_buf()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Packs `inputs` into `dir/NAME`.
fn pack(dir: &Path, name: &str, inputs: &[&Path]) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec!["pack"];
    args.extend(inputs.iter().map(|p| s(p)));
    args.extend(["-o", s(&out), "--name", "app", "--version", "1.0.0"]);
    let o = run(dir, None, &args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    out
}

fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)))
}

#[test]
fn two_documents_same_then_different_with_pointers_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let left = write_json(&d.join("left.json"), &reference());
    // What an export after an import looks like: other metadata, disabled, a draft.
    let mut live = reference();
    live["metadata"]["exported_at"] = json!("2027-01-01T00:00:00Z");
    live["flow"]["is_enabled"] = json!(false);
    live["flow"]["versions"][0]["status"] = json!("Draft");
    live["flow"]["versions"][0]["is_deployed"] = json!(false);
    let right = write_json(&d.join("right.json"), &live);
    let o = run(d, None, &["diff", s(&left), s(&right)]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("same     {ORDER_SYNC}\nsame: 1 flow compared, no differences\n")
    );

    live["flow"]["priority"] = json!(1);
    live["flow"]["versions"][0]["steps"][2]["name"] = json!("Shopify - Fetch orders");
    let right = write_json(&d.join("right.json"), &live);
    let o = run(d, None, &["diff", s(&left), s(&right)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!("changed  {ORDER_SYNC}\n")),
        "{out}"
    );
    assert!(out.contains("\n    /flow/priority: 2 → 1\n"), "{out}");
    assert!(
        out.contains("\n    /flow/versions/0/steps/2/name: \"Shopify - Retrieve orders\" → \"Shopify - Fetch orders\"\n"),
        "{out}"
    );
    assert!(
        out.ends_with("different: 1 changed, 0 added, 0 removed, 0 the same (1 flow compared)\n"),
        "{out}"
    );

    let o = run(d, None, &["diff", s(&left), s(&right), "--format", "json"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let report = json_out(&o);
    assert_eq!(
        report,
        json!({"result": "different", "flows": [{"name": ORDER_SYNC, "status": "changed", "changes": [
            {"pointer": "/flow/priority", "old": 2, "new": 1},
            {"pointer": "/flow/versions/0/steps/2/name", "old": "Shopify - Retrieve orders", "new": "Shopify - Fetch orders"}
        ]}]})
    );

    // Removed and added flows: matched by name, pointers into LEFT for removed items.
    let mut renamed = live.clone();
    renamed["flow"]["name"] = json!("Orders v2");
    renamed["metadata"]["flow_name"] = json!("Orders v2");
    let right = write_json(&d.join("renamed.json"), &renamed);
    let o = run(d, None, &["diff", s(&left), s(&right), "--format", "json"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let report = json_out(&o);
    assert_eq!(report["flows"][0]["name"], ORDER_SYNC);
    assert_eq!(report["flows"][0]["status"], "removed");
    assert_eq!(report["flows"][1]["name"], "Orders v2");
    assert_eq!(report["flows"][1]["status"], "added");
}

#[test]
fn secrets_are_never_shown_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let left = write_json(&d.join("left.json"), &reference());
    // A live secret value where LEFT has a stripped one: not a change.
    let mut right = reference();
    right["systems"][0]["system"]["authentication_implementations"][0]["credentials"]["token"] =
        json!("shpat-live-9f8e7d");
    let right_path = write_json(&d.join("right.json"), &right);
    let o = run(d, None, &["diff", s(&left), s(&right_path)]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(!stdout(&o).contains("shpat-live-9f8e7d"));

    // A credential and a secret variable only RIGHT has: changes, printed as ••••.
    right["systems"][0]["system"]["authentication_implementations"][0]["credentials"]["api_key"] =
        json!("sk-live-123456");
    right["flow"]["versions"][0]["variables"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "ERP_PASSWORD", "value": "hunter2-prod", "is_secret": true}));
    let right_path = write_json(&d.join("right.json"), &right);
    for format in ["human", "json"] {
        let o = run(
            d,
            None,
            &["diff", s(&left), s(&right_path), "--format", format],
        );
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(!all.contains("sk-live-123456"), "{all}");
        assert!(!all.contains("hunter2-prod"), "{all}");
        assert!(!all.contains("shpat-live-9f8e7d"), "{all}");
        assert!(all.contains("••••"), "{all}");
    }
    let o = run(
        d,
        None,
        &["diff", s(&left), s(&right_path), "--format", "json"],
    );
    let changes = &json_out(&o)["flows"][0]["changes"];
    let key = changes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["pointer"] == "/systems/0/system/authentication_implementations/0/credentials/api_key"
        })
        .unwrap_or_else(|| panic!("{changes}"));
    assert_eq!(key["old"], Value::Null);
    assert_eq!(key["new"], "••••");
}

#[test]
fn archive_directory_and_unpacked_archive_compare_as_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v2 = fixture("reference/export-v2-order-sync.json");
    let v1 = fixture("reference/export-v1-legacy.json");
    let archive = pack(d, "app.flowpack", &[&v2, &v1]);

    // A directory of documents, nested, with files that are not documents around them.
    let docs = d.join("docs");
    std::fs::create_dir_all(docs.join("legacy/unpacked")).unwrap();
    std::fs::copy(&v2, docs.join("order-sync.json")).unwrap();
    std::fs::copy(&v1, docs.join("legacy/customers.json")).unwrap();
    std::fs::write(docs.join("flow.json"), "{\"format\": 1}").unwrap();
    std::fs::write(docs.join("legacy/unpacked/flowpack.json"), "{}").unwrap();
    std::fs::write(docs.join("README.txt"), "not json").unwrap();
    let o = run(d, None, &["diff", s(&archive), s(&docs)]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(&format!("same     {ORDER_SYNC}\n")), "{out}");
    assert!(out.contains(&format!("same     {LEGACY}\n")), "{out}");
    assert!(
        out.contains("same: 2 flows compared, no differences\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "signatures not checked: {} (unsigned; diff checks integrity only",
            s(&archive)
        )),
        "{out}"
    );

    // The same archive, unpacked: a directory with flowpack.json at its top.
    let unpacked = d.join("unpacked");
    let o = run(
        d,
        None,
        &[
            "unpack",
            s(&archive),
            "-d",
            s(&unpacked),
            "--insecure-skip-signatures",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(d, None, &["diff", s(&unpacked), s(&archive)]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));

    // Edit the unpacked document: compared as it is now, with a warning.
    let mut entries: Vec<PathBuf> = std::fs::read_dir(unpacked.join("flows"))
        .unwrap()
        .map(|e| e.unwrap().path().join("export.json"))
        .collect();
    entries.sort();
    let edited = entries
        .iter()
        .find(|p| std::fs::read_to_string(p).unwrap().contains(ORDER_SYNC))
        .unwrap();
    let mut doc: Value = serde_json::from_slice(&std::fs::read(edited).unwrap()).unwrap();
    doc["flow"]["description"] = json!("edited");
    write_json(edited, &doc);
    let o = run(
        d,
        None,
        &["diff", s(&archive), s(&unpacked), "--format", "json"],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("(edited since unpacking); compared as it is now"),
        "{}",
        stderr(&o)
    );
    let report = json_out(&o);
    let changed: Vec<&Value> = report["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "changed")
        .collect();
    assert_eq!(changed.len(), 1, "{report}");
    assert_eq!(changed[0]["name"], ORDER_SYNC);
    assert_eq!(changed[0]["changes"][0]["pointer"], "/flow/description");
    assert_eq!(changed[0]["changes"][0]["new"], "edited");
}

#[test]
fn env_local_after_a_push_is_the_same_and_replaced_flows_are_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v2 = fixture("reference/export-v2-order-sync.json");
    let v1 = fixture("reference/export-v1-legacy.json");
    let archive = pack(d, "app.flowpack", &[&v2, &v1]);
    let o = run(d, None, &["push", s(&archive), "--env", "local"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    for (left, right) in [(s(&archive), "env:local"), ("env:local", s(&archive))] {
        let o = run(d, None, &["diff", left, right]);
        assert_eq!(code(&o), 0, "{left} {right}: {}{}", stdout(&o), stderr(&o));
        assert!(
            stdout(&o).contains("same: 2 flows compared, no differences"),
            "{}",
            stdout(&o)
        );
    }

    // The old flow a replacing push keeps is left out unless asked for.
    let mut old = reference();
    old["flow"]["name"] = json!(format!("{ORDER_SYNC} (replaced 20261129T120000Z)"));
    let old_doc = write_json(&d.join("old/old.json"), &old);
    let old_archive = pack(d, "old.flowpack", &[&old_doc]);
    let o = run(d, None, &["push", s(&old_archive), "--env", "local"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(d, None, &["diff", s(&archive), "env:local"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains(
            "env:local: 1 flow named \"… (replaced …)\" left out (include replaced flows to compare them)"
        ),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("hint: --include-replaced compares"),
        "{}",
        stderr(&o)
    );
    let o = run(
        d,
        None,
        &[
            "diff",
            s(&archive),
            "env:local",
            "--include-replaced",
            "--format",
            "json",
        ],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let report = json_out(&o);
    assert_eq!(report["flows"][2]["status"], "added", "{report}");
    assert_eq!(
        report["flows"][2]["name"],
        format!("{ORDER_SYNC} (replaced 20261129T120000Z)")
    );
}

/// `PUT /api/v1/flows/{id}` on the sandbox with `body`.
fn put_flow(sandbox: &SandboxProcess, id: u64, body: &Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let req = ureq::http::Request::builder()
        .method("PUT")
        .uri(format!("{}/api/v1/flows/{id}", sandbox.url))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(body.to_string().into_bytes())
        .unwrap();
    let resp = agent.run(req).expect("PUT the flow");
    assert_eq!(resp.status().as_u16(), 200);
}

#[test]
fn the_sandbox_over_http_is_the_same_after_push_then_changed_after_a_put() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sandbox = start_sandbox(d);
    let v2 = fixture("reference/export-v2-order-sync.json");
    let archive = pack(d, "app.flowpack", &[&v2]);
    let url = sandbox.url.as_str();
    let o = run(
        d,
        Some(TOKEN),
        &["push", s(&archive), "--url", url, "--format", "json"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = json_out(&o)["flows"][0]["id"].as_u64().unwrap();

    let o = run(
        d,
        Some(TOKEN),
        &["diff", s(&archive), "env:url", "--url", url],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o).lines().next(),
        Some(format!("same     {ORDER_SYNC}").as_str())
    );

    put_flow(&sandbox, id, &json!({"flow": {"priority": 4}}));
    let o = run(
        d,
        Some(TOKEN),
        &[
            "diff",
            s(&archive),
            "env:url",
            "--url",
            url,
            "--format",
            "json",
        ],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(
        json_out(&o),
        json!({"result": "different", "flows": [{"name": ORDER_SYNC, "status": "changed",
            "changes": [{"pointer": "/flow/priority", "old": 2, "new": 4}]}]})
    );

    // --url stands for env:url; given without such a side it is a usage error.
    let o = run(
        d,
        Some(TOKEN),
        &["diff", s(&archive), "env:local", "--url", url],
    );
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    assert!(
        stderr(&o).contains("--url names the platform of a side written env:url"),
        "{}",
        stderr(&o)
    );

    // The wrong API key: the diff could not run.
    let o = run(
        d,
        Some("wrong"),
        &["diff", s(&archive), "env:url", "--url", url],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("env:url: listing the flows"),
        "{}",
        stderr(&o)
    );
}

/// LEFT: both reference flows; RIGHT: the order sync's priority changed, the legacy flow the
/// same.
fn two_sides(d: &Path) -> (PathBuf, PathBuf) {
    let left = d.join("left");
    let right = d.join("right");
    write_json(&left.join("a.json"), &reference());
    std::fs::copy(
        fixture("reference/export-v1-legacy.json"),
        left.join("b.json"),
    )
    .unwrap();
    let mut changed = reference();
    changed["flow"]["priority"] = json!(1);
    write_json(&right.join("a.json"), &changed);
    std::fs::copy(
        fixture("reference/export-v1-legacy.json"),
        right.join("b.json"),
    )
    .unwrap();
    (left, right)
}

#[test]
fn flow_globs_narrow_both_sides_and_a_pattern_matching_nothing_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (left, right) = two_sides(d);
    let o = run(
        d,
        None,
        &["diff", s(&left), s(&right), "--flow", "*HubSpot*"],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("same     {LEGACY}\nsame: 1 flow compared, no differences\n")
    );
    let o = run(
        d,
        None,
        &[
            "diff",
            s(&left),
            s(&right),
            "--flow",
            "Shopify > N?tSuite *",
        ],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stdout(&o).starts_with(&format!("changed  {ORDER_SYNC}\n")));
    assert!(!stdout(&o).contains(LEGACY), "{}", stdout(&o));
    // Globs are case-sensitive; every pattern that matches nothing is named.
    let o = run(
        d,
        None,
        &[
            "diff",
            s(&left),
            s(&right),
            "--flow",
            "shopify*",
            "--flow",
            "Shopify*",
            "--flow",
            "Invoices",
        ],
    );
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    assert!(
        stderr(&o)
            .contains("flow patterns \"shopify*\", \"Invoices\": match no flow on either side"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn an_overlay_applies_to_left_first_and_its_keys_must_match() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (left, right) = two_sides(d);
    let overlay = d.join("prod.toml");
    std::fs::write(
        &overlay,
        format!("[flows.\"{ORDER_SYNC}\"]\npriority = 1\n"),
    )
    .unwrap();
    let o = run(
        d,
        None,
        &["diff", s(&left), s(&right), "--overlay", s(&overlay)],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!("overlay  {ORDER_SYNC}: ")),
        "{out}"
    );
    assert!(
        out.ends_with("same: 2 flows compared, no differences\n"),
        "{out}"
    );
    // The overlay changes LEFT only: RIGHT against LEFT is now different.
    let o = run(
        d,
        None,
        &["diff", s(&right), s(&left), "--overlay", s(&overlay)],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));

    // A key that matches nothing in LEFT is an error naming it (and the nearest name).
    std::fs::write(
        &overlay,
        format!("[flows.\"{ORDER_SYNC}\"]\npriority = 1\n[variables]\nSHOPIFY_PAGE_SIZ = \"10\"\n"),
    )
    .unwrap();
    let o = run(
        d,
        None,
        &["diff", s(&left), s(&right), "--overlay", s(&overlay)],
    );
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    assert!(
        stderr(&o).contains("[variables].SHOPIFY_PAGE_SIZ"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("did you mean `SHOPIFY_PAGE_SIZE`?"),
        "{}",
        stderr(&o)
    );
    let o = run(
        d,
        None,
        &[
            "diff",
            s(&left),
            s(&right),
            "--overlay",
            s(&overlay),
            "--allow-unmatched",
        ],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("warning: "), "{}", stderr(&o));
}

#[test]
fn unreadable_rejected_and_malformed_sides_are_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let doc = write_json(&d.join("doc.json"), &reference());

    let missing = d.join("missing.json");
    let o = run(d, None, &["diff", s(&doc), s(&missing)]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains(&format!("{}: cannot read", s(&missing))),
        "{}",
        stderr(&o)
    );

    let slip = fixture("archives/zip_slip_dotdot.flowpack");
    let o = run(d, None, &["diff", s(&doc), s(&slip)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "{}!../evil.json: the path contains '..'",
            s(&slip)
        )),
        "{}",
        stderr(&o)
    );
    for name in [
        "truncated.flowpack",
        "not_a_zip.flowpack",
        "bomb_42.flowpack",
    ] {
        let archive = fixture(&format!("archives/{name}"));
        let o = run(d, None, &["diff", s(&archive), s(&doc)]);
        assert_eq!(code(&o), 2, "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(name), "{name}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{name}: {}", stdout(&o));
    }

    // An archive whose document changed after packing (a byte of the last entry's data, just
    // before the central directory) fails its integrity check when that entry is read for a
    // comparison, naming the entry. (Compared with a document of the same digest, the entry
    // would not be read: its manifest digest says it is the same.)
    let archive = pack(d, "app.flowpack", &[&doc]);
    let mut bytes = std::fs::read(&archive).unwrap();
    let at = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    bytes[at - 5] ^= 0x01;
    let tampered = d.join("tampered.flowpack");
    std::fs::write(&tampered, &bytes).unwrap();
    // Against the document it was packed from, the pair's digests match: `same`, and the
    // entry is not even decompressed (that the tampering goes unseen shows it; `verify` reads
    // every entry).
    let o = run(d, None, &["diff", s(&tampered), s(&doc)]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let mut edited = reference();
    edited["flow"]["priority"] = json!(4);
    let edited = write_json(&d.join("edited.json"), &edited);
    let o = run(d, None, &["diff", s(&tampered), s(&edited)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "tampered.flowpack: verification failed (structure): {}!flows/shopify-netsuite-orders/export.json: ",
            s(&tampered)
        )),
        "{}",
        stderr(&o)
    );

    // JSON that is not an export document, inside a directory: named.
    let docs = d.join("docs");
    write_json(&docs.join("a.json"), &reference());
    write_json(
        &docs.join("settings/config.json"),
        &json!({"colour": "blue"}),
    );
    let o = run(d, None, &["diff", s(&doc), s(&docs)]);
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    assert!(
        stderr(&o).contains("config.json: not an export document"),
        "{}",
        stderr(&o)
    );

    // An environment that is not configured.
    let o = run(d, None, &["diff", s(&doc), "env:staging"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("env:staging: ") && stderr(&o).contains("no environment \"staging\""),
        "{}",
        stderr(&o)
    );
    // `./env:x` is a file of that name.
    std::fs::copy(&doc, d.join("env:x")).unwrap();
    let o = run(d, None, &["diff", s(&doc), "./env:x"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// The `> POST …/flows/export` request lines a `--verbose` run logged.
fn export_requests(o: &Output) -> usize {
    stderr(o)
        .lines()
        .filter(|l| l.starts_with("> POST ") && l.contains("/flows/export "))
        .count()
}

#[test]
fn an_env_side_exports_only_the_flows_it_compares() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sandbox = start_sandbox(d);
    let url = sandbox.url.as_str();
    let v2 = fixture("reference/export-v2-order-sync.json");
    let v1 = fixture("reference/export-v1-legacy.json");
    let both = pack(d, "both.flowpack", &[&v2, &v1]);
    let o = run(d, Some(TOKEN), &["push", s(&both), "--url", url]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // LEFT holds one of the two live flows and one the platform lacks: only the flow on both
    // sides is exported; the live-only flow is `added` and the archive-only one `removed`
    // without a request.
    let mut other = reference();
    other["flow"]["name"] = json!("Only in the archive");
    let other = write_json(&d.join("other/other.json"), &other);
    let one = pack(d, "one.flowpack", &[&v2, &other]);
    let o = run(
        d,
        Some(TOKEN),
        &["diff", s(&one), "env:url", "--url", url, "--verbose"],
    );
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(export_requests(&o), 1, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(&format!("same     {ORDER_SYNC}\n")), "{out}");
    assert!(out.contains("removed  Only in the archive\n"), "{out}");
    assert!(out.contains(&format!("added    {LEGACY}\n")), "{out}");

    // --flow narrows what is exported too.
    let o = run(
        d,
        Some(TOKEN),
        &[
            "diff",
            s(&both),
            "env:url",
            "--url",
            url,
            "--verbose",
            "--flow",
            ORDER_SYNC,
        ],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(export_requests(&o), 1, "{}", stderr(&o));
}

#[test]
fn a_name_two_live_flows_share_is_a_duplicate_with_their_ids_not_compared() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sandbox = start_sandbox(d);
    let url = sandbox.url.as_str();
    let v2 = fixture("reference/export-v2-order-sync.json");
    let archive = pack(d, "app.flowpack", &[&v2]);
    let push = |archive: &Path, extra: &[&str]| {
        let mut args = vec!["push", s(archive), "--url", url, "--format", "json"];
        args.extend(extra);
        let o = run(d, Some(TOKEN), &args);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        json_out(&o)["flows"][0]["id"].as_u64().unwrap()
    };
    let first = push(&archive, &[]);
    // A second flow of the same name: what `--on-conflict duplicate` creates.
    let mut edited = reference();
    edited["flow"]["priority"] = json!(4);
    let edited = write_json(&d.join("edited/edited.json"), &edited);
    let edited_archive = pack(d, "edited.flowpack", &[&edited]);
    let second = push(&edited_archive, &["--on-conflict", "duplicate"]);
    assert_ne!(first, second);

    let o = run(
        d,
        Some(TOKEN),
        &["diff", s(&archive), "env:url", "--url", url, "--verbose"],
    );
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o).lines().take(2).collect::<Vec<_>>(),
        [
            format!("duplicate {ORDER_SYNC} (ids {first}, {second})"),
            "different: 0 changed, 0 added, 0 removed, 1 duplicate, 0 the same (1 flow compared)"
                .to_string()
        ],
        "{}",
        stdout(&o)
    );
    // Not compared, so not exported.
    assert_eq!(export_requests(&o), 0, "{}", stderr(&o));
    // Either side; JSON names the ids.
    let o = run(
        d,
        Some(TOKEN),
        &[
            "diff",
            "env:url",
            s(&archive),
            "--url",
            url,
            "--format",
            "json",
        ],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(
        json_out(&o),
        json!({"result": "different", "flows": [{"name": ORDER_SYNC, "status": "duplicate",
            "ids": [first, second], "changes": []}]})
    );
}

#[test]
fn a_document_side_over_the_bound_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let doc = write_json(&d.join("doc.json"), &reference());
    // Sparse: 17 MiB on paper, nothing on disk.
    let big = d.join("big.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(17 * 1024 * 1024)
        .unwrap();
    for args in [[s(&doc), s(&big)], [s(&big), s(&doc)]] {
        let o = run(d, None, &["diff", args[0], args[1]]);
        assert_eq!(code(&o), 2, "{}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!(
                "{}: refused before parsing: larger than the per-document bound of 16777216 bytes",
                s(&big)
            )),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn a_flow_its_manifest_names_otherwise_than_its_document_is_compared_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let doc = write_json(&d.join("doc.json"), &reference());
    let archive = pack(d, "app.flowpack", &[&doc]);
    // The manifest (unsigned) edited to list the flow as "Renamed"; the entry is untouched.
    let renamed = d.join("renamed.flowpack");
    let o = crate::util::peer("python3")
        .arg("-c")
        .arg(
            "import json, sys, zipfile\n\
             src, dst = zipfile.ZipFile(sys.argv[1]), zipfile.ZipFile(sys.argv[2], 'w')\n\
             for i in src.infolist():\n    \
                 data = src.read(i)\n    \
                 if i.filename == 'flowpack.json':\n        \
                     m = json.loads(data); m['flows'][0]['name'] = 'Renamed'; data = json.dumps(m).encode()\n    \
                 dst.writestr(i, data)\n\
             dst.close()\n",
        )
        .args([s(&archive), s(&renamed)])
        .output()
        .expect("run python3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut other = reference();
    other["flow"]["name"] = json!("Renamed");
    let other = write_json(&d.join("other.json"), &other);
    let o = run(d, None, &["diff", s(&renamed), s(&other)]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).starts_with(
            "changed  Renamed\n    /flow/name: \"Shopify > NetSuite Orders\" → \"Renamed\"\n"
        ),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains(&format!(
            "warning: {}!flows/shopify-netsuite-orders/export.json: the manifest names this flow \
             \"Renamed\", its document \"{ORDER_SYNC}\"; compared as \"Renamed\"",
            s(&renamed)
        )),
        "{}",
        stderr(&o)
    );
}
