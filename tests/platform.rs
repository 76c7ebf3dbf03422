//! End-to-end tests of `export` and `push` against the real `flowpack-sandbox` binary (and the
//! embedded `local` environment).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use crate::util::{code, fixture, stderr, stdout};

const TOKEN: &str = "sandbox-token-5f3a";
const ORDER_SYNC: &str = "Shopify > NetSuite Orders";

/// A running sandbox server, killed on drop.
struct Sandbox {
    child: Child,
    url: String,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sandbox binary: built next to the flowpack binary (`cargo test --workspace` builds it).
fn sandbox_bin() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_flowpack")).parent().unwrap();
    let bin = dir.join(format!("flowpack-sandbox{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p flowpack-sandbox` (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

fn start_sandbox(dir: &Path) -> Sandbox {
    let mut child = Command::new(sandbox_bin())
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.join("sandbox.db"))
        .args(["--token", TOKEN])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start flowpack-sandbox");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Sandbox { child, url }
}

/// Runs flowpack in `cwd` with `FLOWPACK_TOKEN` set to `token` (if any) and extra env vars.
fn run(cwd: &Path, token: Option<&str>, envs: &[(&str, &str)], args: &[&str]) -> Output {
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
fn pack_reference(dir: &Path) -> PathBuf {
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

    // A second push changes nothing.
    let o = run(dir.path(), Some(TOKEN), &[], &["push", a, "--url", url]);
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
    assert!(stdout(&o).contains("1 flow(s)"), "{}", stdout(&o));
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
         [secrets]\n\"Shopify/Admin API token/token\" = \"${env:SHOP_TOKEN}\"\n",
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
        all.contains("credential Shopify/Admin API token/token = ••••"),
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
        "[secrets]\n\"Shopify/Admin API token/token\" = \"${env:FLOWPACK_TEST_UNSET_9}\"\n",
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
        stderr(&o).contains("environment variable FLOWPACK_TEST_UNSET_9 is not set (used in [secrets].\"Shopify/Admin API token/token\")"),
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
        stdout(&o).starts_with(&format!("created    {ORDER_SYNC}")),
        "{}",
        stdout(&o)
    );
    assert!(work.join(".flowpack/local.db").exists());
    let o = run(
        &work,
        None,
        &[],
        &["export", "--env", "local", "--all", "-o", "backup.flowpack"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(documents(&work, &work.join("backup.flowpack")).len(), 1);
}

#[test]
fn legacy_documents_are_refused_without_migration() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("legacy.flowpack");
    let o = run(
        dir.path(),
        None,
        &[],
        &[
            "pack",
            fixture("reference/export-v1-legacy.json").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--name",
            "l",
            "--version",
            "1.0.0",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(
        dir.path(),
        None,
        &[],
        &["push", out.to_str().unwrap(), "--env", "local", "--dry-run"],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is export format 1 and the target takes format 2"),
        "{}",
        stderr(&o)
    );
}
