//! End-to-end tests of `export` and `push` against the real `flowpack-sandbox` binary (and the
//! embedded `local` environment).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::util::{code, fixture, stderr, stdout};

pub(crate) const TOKEN: &str = "sandbox-token-5f3a";
pub(crate) const ORDER_SYNC: &str = "Shopify > NetSuite Orders";

/// A running sandbox server, killed on drop.
pub(crate) use crate::util::SandboxProcess as Sandbox;

/// Starts the real sandbox binary on `dir/sandbox.db` with this module's API key.
pub(crate) fn start_sandbox(dir: &Path) -> Sandbox {
    Sandbox::start(dir, TOKEN, &[])
}

/// Runs flowpack in `cwd` with `FLOWPACK_TOKEN` set to `token` (if any) and extra env vars.
pub(crate) fn run(cwd: &Path, token: Option<&str>, envs: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowpack"));
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("FLOWPACK_TOKEN")
        .env("SOURCE_DATE_EPOCH", "1767225600");
    if let Some(t) = token {
        cmd.env("FLOWPACK_TOKEN", t);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run flowpack")
}

/// Packs the reference version-2 document into `dir/app.flowpack`.
pub(crate) fn pack_reference(dir: &Path) -> PathBuf {
    let out = dir.join("app.flowpack");
    let o = run(
        dir,
        None,
        &[],
        &[
            "pack",
            fixture("reference/export-v2-order-sync.json")
                .to_str()
                .unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--name",
            "app",
            "--version",
            "1.0.0",
            "--kind",
            "release",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    out
}

/// Unpacks an archive and returns its flow documents.
fn documents(dir: &Path, archive: &Path) -> Vec<Value> {
    let target = dir.join(format!(
        "unpacked-{}",
        archive.file_stem().unwrap().to_string_lossy()
    ));
    let o = run(
        dir,
        None,
        &[],
        &[
            "unpack",
            archive.to_str().unwrap(),
            "-d",
            target.to_str().unwrap(),
            "--insecure-skip-signatures",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut docs = Vec::new();
    let flows = target.join("flows");
    let mut dirs: Vec<_> = std::fs::read_dir(&flows)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for d in dirs {
        let bytes = std::fs::read(d.join("export.json")).unwrap();
        docs.push(serde_json::from_slice(&bytes).unwrap());
    }
    docs
}

/// What must survive a push and an export: every version's content, systems, scripts,
/// dependencies, name, description and priority.
fn content(doc: &Value) -> Value {
    let versions: Vec<Value> = doc["flow"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            serde_json::json!({
                "iteration": v["iteration"], "steps": v["steps"], "connections": v["connections"],
                "variables": v["variables"], "schedules": v["schedules"],
            })
        })
        .collect();
    serde_json::json!({
        "name": doc["flow"]["name"], "description": doc["flow"]["description"],
        "priority": doc["flow"]["priority"], "versions": versions,
        "systems": doc["systems"], "scripts": doc["scripts"], "dependencies": doc["dependencies"],
    })
}

#[test]
fn push_plan_unchanged_and_export_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox(dir.path());
    let archive = pack_reference(dir.path());
    let a = archive.to_str().unwrap();
    let url = sandbox.url.as_str();

    let o = run(
        dir.path(),
        Some(TOKEN),
        &[],
        &["push", a, "--url", url, "--dry-run"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let plan: Vec<&str> = out.lines().filter(|l| l.starts_with("create")).collect();
    assert_eq!(
        plan,
        vec![format!("create     {ORDER_SYNC}").as_str()],
        "{out}"
    );
    assert!(out.contains("dry run: nothing was written"), "{out}");

    // The dry run wrote nothing: the real push still creates.
    let o = run(
        dir.path(),
        Some(TOKEN),
        &[],
        &["push", a, "--url", url, "--format", "json"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["flows"][0]["plan"], "create");
    assert_eq!(report["flows"][0]["outcome"], "created");
    let id = report["flows"][0]["id"].as_u64().unwrap();

    // A second push changes nothing (--verbose lists the unchanged flows too).
    let o = run(
        dir.path(),
        Some(TOKEN),
        &[],
        &["push", a, "--url", url, "--verbose"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("unchanged  {ORDER_SYNC} (id {id})")),
        "{}",
        stdout(&o)
    );

    // Export it back: the same flow, statuses aside.
    let back = dir.path().join("back.flowpack");
    let o = run(
        dir.path(),
        Some(TOKEN),
        &[],
        &[
            "export",
            "--all",
            "--url",
            url,
            "-o",
            back.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains(": 1 flow from "), "{}", stdout(&o));
    let exported = documents(dir.path(), &back);
    let pushed = documents(dir.path(), &archive);
    assert_eq!(exported.len(), 1);
    assert_eq!(content(&exported[0]), content(&pushed[0]));
    assert_eq!(
        exported[0]["flow"]["is_enabled"], false,
        "imported flows arrive disabled"
    );
}

#[test]
fn overlay_sets_variables_and_system_names() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox(dir.path());
    let archive = pack_reference(dir.path());
    let overlay = dir.path().join("prod.toml");
    std::fs::write(
        &overlay,
        "[variables]\nNETSUITE_SUBSIDIARY = \"7\"\n[systems]\n\"Shopify\" = \"Shopify (production)\"\n\
         [secrets.\"Shopify\".\"Admin API token\"]\ntoken = \"${env:SHOP_TOKEN}\"\n",
    )
    .unwrap();
    let o = run(
        dir.path(),
        Some(TOKEN),
        &[("SHOP_TOKEN", "shpat_live_99")],
        &[
            "push",
            archive.to_str().unwrap(),
            "--url",
            &sandbox.url,
            "--overlay",
            overlay.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        all.contains("credential [secrets.\"Shopify\".\"Admin API token\"].token = ••••"),
        "{all}"
    );
    assert!(!all.contains("shpat_live_99"), "{all}");
    let back = dir.path().join("back.flowpack");
    let o = run(
        dir.path(),
        Some(TOKEN),
        &[],
        &[
            "export",
            "--all",
            "--url",
            &sandbox.url,
            "-o",
            back.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc = &documents(dir.path(), &back)[0];
    assert_eq!(doc["flow"]["versions"][0]["variables"][0]["value"], "7");
    assert_eq!(doc["systems"][0]["system"]["name"], "Shopify (production)");
    assert_eq!(
        doc["flow"]["versions"][0]["steps"][2]["config"]["system"],
        "Shopify (production)"
    );
}

#[test]
fn unresolved_overlay_variable_stops_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let archive = pack_reference(dir.path());
    let overlay = dir.path().join("prod.toml");
    std::fs::write(
        &overlay,
        "[secrets.\"Shopify\".\"Admin API token\"]\ntoken = \"${env:FLOWPACK_TEST_UNSET_9}\"\n",
    )
    .unwrap();
    // Nothing listens at this URL: a request would fail differently.
    let o = run(
        dir.path(),
        Some(TOKEN),
        &[],
        &[
            "push",
            archive.to_str().unwrap(),
            "--url",
            "http://127.0.0.1:9",
            "--overlay",
            overlay.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("environment variable FLOWPACK_TEST_UNSET_9 is not set (used in [secrets.\"Shopify\".\"Admin API token\"].token)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn trusted_keys_refuse_an_unsigned_archive() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox(dir.path());
    let archive = pack_reference(dir.path());
    let o = run(
        dir.path(),
        None,
        &[],
        &["keygen", "-o", "release", "--unencrypted"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    std::fs::write(
        dir.path().join("flowpack.toml"),
        format!(
            "[env.production]\nurl = \"{}\"\ntoken_env = \"PROD_KEY\"\ntrusted_keys = [\"release.pub\"]\n",
            sandbox.url
        ),
    )
    .unwrap();
    let a = archive.to_str().unwrap();
    let o = run(
        dir.path(),
        None,
        &[("PROD_KEY", TOKEN)],
        &["push", a, "--env", "production"],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("refused"), "{}", stderr(&o));
    // Nothing was written: the plan still says create.
    let o = run(
        dir.path(),
        Some(TOKEN),
        &[],
        &["push", a, "--url", &sandbox.url, "--dry-run"],
    );
    assert!(
        stdout(&o).contains(&format!("create     {ORDER_SYNC}")),
        "{}",
        stdout(&o)
    );
    // Signed by the trusted key, the same archive goes in.
    let o = run(dir.path(), None, &[], &["sign", a, "--key", "release.key"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(
        dir.path(),
        None,
        &[("PROD_KEY", TOKEN)],
        &["push", a, "--env", "production"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("created    {ORDER_SYNC}")),
        "{}",
        stdout(&o)
    );
    // A missing token variable names it.
    let o = run(dir.path(), None, &[], &["push", a, "--env", "production"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("the API key variable PROD_KEY is not set"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn wrong_token_is_exit_2_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox(dir.path());
    let archive = pack_reference(dir.path());
    let o = run(
        dir.path(),
        Some("wrong-token-abc"),
        &[],
        &["push", archive.to_str().unwrap(), "--url", &sandbox.url],
    );
    assert_eq!(code(&o), 2);
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("authentication failed"), "{all}");
    assert!(!all.contains("wrong-token-abc"), "{all}");
}

#[test]
fn local_environment_needs_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let archive = pack_reference(dir.path());
    let work = dir.path().join("empty");
    std::fs::create_dir(&work).unwrap();
    let o = run(
        &work,
        None,
        &[],
        &["push", archive.to_str().unwrap(), "--env", "local"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with(&format!("Plan: 1 create\ncreated    {ORDER_SYNC}")),
        "{}",
        stdout(&o)
    );
    assert!(work.join(".flowpack/local.db").exists());
    let o = run(
        &work,
        None,
        &[],
        &["keygen", "-o", "backup", "--unencrypted"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(
        &work,
        None,
        &[],
        &[
            "export",
            "--env",
            "local",
            "--all",
            "-o",
            "backup.flowpack",
            "--sign",
            "backup.key",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("backup.flowpack: 1 flow from local"),
        "{}",
        stdout(&o)
    );
    let o = run(
        &work,
        None,
        &[],
        &[
            "verify",
            "backup.flowpack",
            "--trusted-key",
            "backup.pub",
            "--format",
            "json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["package"]["name"], "local");
    assert_eq!(report["package"]["version"], "0.0.0+20260101000000");
    assert_eq!(report["package"]["kind"], "backup");
    assert_eq!(documents(&work, &work.join("backup.flowpack")).len(), 1);
}

/// Push migrates each document to the target's export format: an archive of both reference documents (one of them
/// version 1) is pushed, migrated on the way, and exported back with the same content.
#[test]
fn both_reference_documents_round_trip_through_push_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sandbox = start_sandbox(d);
    let url = sandbox.url.as_str();
    let archive = d.join("both.flowpack");
    let o = run(
        d,
        None,
        &[],
        &[
            "pack",
            fixture("reference").to_str().unwrap(),
            "-o",
            archive.to_str().unwrap(),
            "--name",
            "both",
            "--version",
            "1.0.0",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let a = archive.to_str().unwrap();

    let o = run(d, Some(TOKEN), &[], &["push", a, "--url", url, "--dry-run"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let plan: Vec<String> = stdout(&o)
        .lines()
        .filter(|l| l.starts_with("create"))
        .map(str::to_string)
        .collect();
    assert_eq!(plan.len(), 2, "{}", stdout(&o));

    let o = run(d, Some(TOKEN), &[], &["push", a, "--url", url]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // Values the target still needs are named; systems keeping their names are not.
    let err = stderr(&o);
    assert!(
        err.contains("variable \"NETSUITE_SUBSIDIARY\" of flow \"Shopify > NetSuite Orders\""),
        "{err}"
    );
    assert_eq!(
        err.matches("warning: ").count(),
        1,
        "one warning per push: {err}"
    );
    assert!(!err.contains("system \"Shopify\""), "{err}");
    // Pushing again: both unchanged, the migrated legacy flow included.
    let o = run(d, Some(TOKEN), &[], &["push", a, "--url", url, "--verbose"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o)
            .lines()
            .filter(|l| l.starts_with("unchanged"))
            .count(),
        2,
        "{}",
        stdout(&o)
    );

    let back = d.join("back.flowpack");
    let o = run(
        d,
        Some(TOKEN),
        &[],
        &[
            "export",
            "--all",
            "--url",
            url,
            "-o",
            back.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let exported = documents(d, &back);
    assert_eq!(exported.len(), 2);

    let migrated = run(
        d,
        None,
        &[],
        &[
            "migrate",
            fixture("reference/export-v1-legacy.json").to_str().unwrap(),
            "--to",
            "2",
        ],
    );
    assert_eq!(code(&migrated), 0, "{}", stderr(&migrated));
    let legacy_v2: Value = serde_json::from_slice(&migrated.stdout).unwrap();
    let order_sync: Value = serde_json::from_slice(
        &std::fs::read(fixture("reference/export-v2-order-sync.json")).unwrap(),
    )
    .unwrap();
    // `documents` sorts by slug: shopify-hubspot-customers, then shopify-netsuite-orders.
    assert_eq!(content(&exported[0]), content(&legacy_v2));
    assert_eq!(content(&exported[1]), content(&order_sync));
    for doc in &exported {
        assert_eq!(
            doc["flow"]["is_enabled"], false,
            "imported flows arrive disabled"
        );
        assert!(doc["metadata"].get("format_version").is_none());
    }
}

#[test]
fn conflicts_refuse_skip_or_duplicate_with_deploy_and_enable() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox(dir.path());
    let archive = pack_reference(dir.path());
    let a = archive.to_str().unwrap();
    let url = sandbox.url.as_str();
    let o = run(dir.path(), Some(TOKEN), &[], &["push", a, "--url", url]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let overlay = dir.path().join("p1.toml");
    std::fs::write(
        &overlay,
        format!("[flows.\"{ORDER_SYNC}\"]\npriority = 1\n"),
    )
    .unwrap();
    let ov = overlay.to_str().unwrap();

    // Default: a conflict refuses the whole push, nothing written.
    let o = run(
        dir.path(),
        Some(TOKEN),
        &[],
        &["push", a, "--url", url, "--overlay", ov],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("conflict   {ORDER_SYNC} (id 1)")),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("refused: 1 flow exists in the target with different content"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("\nhint: give --on-conflict skip|duplicate|replace\n"),
        "{}",
        stderr(&o)
    );
    let o = run(
        dir.path(),
        Some(TOKEN),
        &[],
        &["push", a, "--url", url, "--dry-run", "--verbose"],
    );
    assert!(
        stdout(&o).contains(&format!("unchanged  {ORDER_SYNC}")),
        "{}",
        stdout(&o)
    );

    let o = run(
        dir.path(),
        Some(TOKEN),
        &[],
        &[
            "push",
            a,
            "--url",
            url,
            "--overlay",
            ov,
            "--on-conflict",
            "skip",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("skipped    {ORDER_SYNC}")),
        "{}",
        stdout(&o)
    );

    let o = run(
        dir.path(),
        Some(TOKEN),
        &[],
        &[
            "push",
            a,
            "--url",
            url,
            "--overlay",
            ov,
            "--on-conflict",
            "duplicate",
            "--deploy",
            "--enable",
            "--format",
            "json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let flow = &report["flows"][0];
    assert_eq!(flow["outcome"], "duplicated");
    assert_eq!(flow["enabled"], true);
    assert!(flow["deployed_version"].is_u64(), "{report}");
    let back = dir.path().join("back.flowpack");
    let o = run(
        dir.path(),
        Some(TOKEN),
        &[],
        &[
            "export",
            "--all",
            "--url",
            url,
            "-o",
            back.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let docs = documents(dir.path(), &back);
    assert_eq!(docs.len(), 2, "{}", stdout(&o));
    let dup = docs
        .iter()
        .find(|d| d["flow"]["priority"] == 1)
        .expect("the duplicate");
    assert_eq!(dup["flow"]["is_enabled"], true);
    // The archive's deployed version was iteration 7: that one is deployed again.
    let deployed: Vec<&Value> = dup["flow"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["status"] == "Deployed")
        .map(|v| &v["iteration"])
        .collect();
    assert_eq!(deployed, vec![&Value::from(7)]);
}

#[test]
fn push_and_export_ride_out_injected_failures() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path(), TOKEN, &["--fail-rate", "0.4", "--seed", "7"]);
    let archive = pack_reference(dir.path());
    let o = run(
        dir.path(),
        Some(TOKEN),
        &[],
        &["push", archive.to_str().unwrap(), "--url", &sandbox.url],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("created    {ORDER_SYNC}")),
        "{}",
        stdout(&o)
    );
    let back = dir.path().join("back.flowpack");
    let o = run(
        dir.path(),
        Some(TOKEN),
        &[],
        &[
            "export",
            "--all",
            "--url",
            &sandbox.url,
            "-o",
            back.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        documents(dir.path(), &back).len(),
        1,
        "exactly one flow: no duplicate import"
    );
}

#[test]
fn string_import_encoding_and_a_verbose_log_that_masks_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox(dir.path());
    let archive = pack_reference(dir.path());
    std::fs::write(
        dir.path().join("flowpack.toml"),
        format!(
            "[env.staging]\nurl = \"{}\"\ntoken_env = \"STAGING_KEY\"\nimport_encoding = \"string\"\n",
            sandbox.url
        ),
    )
    .unwrap();
    let a = archive.to_str().unwrap();
    let o = run(
        dir.path(),
        None,
        &[("STAGING_KEY", TOKEN)],
        &["push", a, "--env", "staging", "--verbose", "--verbose"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("created    {ORDER_SYNC}")),
        "{}",
        stdout(&o)
    );
    let log = stderr(&o);
    assert!(
        log.contains("> POST ")
            && log.contains("/api/v1/flows/import (attempt 1/6) Authorization: ••••"),
        "{log}"
    );
    assert!(!log.contains(TOKEN), "{log}");
    // What the string form imported is the same flow: a second push plans it unchanged.
    let o = run(
        dir.path(),
        None,
        &[("STAGING_KEY", TOKEN)],
        &["push", a, "--env", "staging", "--dry-run", "--verbose"],
    );
    assert!(
        stdout(&o).contains(&format!("unchanged  {ORDER_SYNC}")),
        "{}",
        stdout(&o)
    );
}

#[test]
fn required_inputs_must_be_supplied_by_the_overlay() {
    let dir = tempfile::tempdir().unwrap();
    // A document carrying a credential: pack strips it into a required input.
    let mut doc: Value = serde_json::from_slice(
        &std::fs::read(fixture("reference/export-v2-order-sync.json")).unwrap(),
    )
    .unwrap();
    doc["systems"][0]["system"]["authentication_implementations"][0]["credentials"]["token"] =
        Value::from("shpat_source_1");
    let src = dir.path().join("with-secret.json");
    std::fs::write(&src, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let archive = dir.path().join("s.flowpack");
    let o = run(
        dir.path(),
        None,
        &[],
        &[
            "pack",
            src.to_str().unwrap(),
            "-o",
            archive.to_str().unwrap(),
            "--name",
            "s",
            "--version",
            "1.0.0",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let a = archive.to_str().unwrap();
    let o = run(dir.path(), None, &[], &["push", a, "--env", "local"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "nothing was written: 1 required input needs a value and no overlay was given: \
             credential [secrets.\"Shopify\".\"Admin API token\"].token of flow \"{ORDER_SYNC}\"; \
             give an overlay with these lines:\n\
             [secrets.\"Shopify\".\"Admin API token\"]\n\
             token = \"${{env:SHOPIFY_ADMIN_API_TOKEN_TOKEN}}\"\n"
        )),
        "{}",
        stderr(&o)
    );
    let overlay = dir.path().join("o.toml");
    std::fs::write(
        &overlay,
        "[secrets.\"Shopify\".\"Admin API token\"]\ntoken = \"${env:SHOP}\"\n",
    )
    .unwrap();
    let o = run(
        dir.path(),
        None,
        &[("SHOP", "shpat_target_2")],
        &[
            "push",
            a,
            "--env",
            "local",
            "--overlay",
            overlay.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("created    {ORDER_SYNC}")),
        "{}",
        stdout(&o)
    );
    assert!(!format!("{}{}", stdout(&o), stderr(&o)).contains("shpat_target_2"));
}

#[test]
fn a_url_given_with_the_api_path_is_not_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox(dir.path());
    let archive = pack_reference(dir.path());
    for url in [
        format!("{}/api/v1", sandbox.url),
        format!("{}/api/v1/", sandbox.url),
    ] {
        let o = run(
            dir.path(),
            Some(TOKEN),
            &[],
            &[
                "push",
                archive.to_str().unwrap(),
                "--url",
                &url,
                "--dry-run",
            ],
        );
        assert_eq!(code(&o), 0, "{url}: {}{}", stdout(&o), stderr(&o));
        assert!(
            stdout(&o).contains(&format!("create     {ORDER_SYNC}")),
            "{url}: {}",
            stdout(&o)
        );
    }
}
