//! End-to-end tests of promotion against the real `flowpack-sandbox` binary: replace (cut-over),
//! history and rollback, selective push, state that converges on unchanged flows.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::util::{SandboxProcess, code, fixture, stderr, stdout};

pub(crate) const TOKEN: &str = "promote-token-8c1d";
const ORDERS: &str = "Shopify > NetSuite Orders";
const CUSTOMERS: &str = "Shopify > HubSpot Customers";

/// A running sandbox server (killed on drop) with an HTTP agent for its API.
pub(crate) struct Sandbox {
    _process: SandboxProcess,
    url: String,
    agent: ureq::Agent,
}

impl Sandbox {
    /// Starts the sandbox on `dir/sandbox.db` (kept across restarts) with extra flags.
    pub(crate) fn start(dir: &Path, extra: &[&str]) -> Sandbox {
        let process = SandboxProcess::start(dir, TOKEN, extra);
        let url = process.url.clone();
        // The environment `prod` of flowpack.toml points at this server (so its history
        // directory stays the same across restarts on other ports).
        std::fs::write(
            dir.join("flowpack.toml"),
            format!("[env.prod]\nurl = \"{url}\"\ntoken_env = \"PROD_TOKEN\"\n"),
        )
        .unwrap();
        Sandbox {
            _process: process,
            url,
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
        }
    }

    /// One API call: status and JSON body.
    pub(crate) fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}/api/v1{path}", self.url))
            .header("Accept", "application/json")
            .header("Authorization", format!("Bearer {TOKEN}"));
        let mut resp = match body {
            Some(b) => self.agent.run(
                req.header("Content-Type", "application/json")
                    .body(b.to_string().into_bytes())
                    .unwrap(),
            ),
            None => self.agent.run(req.body(()).unwrap()),
        }
        .unwrap();
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Every flow: (id, name, enabled).
    pub(crate) fn flows(&self) -> Vec<(u64, String, bool)> {
        let (status, body) = self.api("GET", "/flows?per_page=100", None);
        assert_eq!(status, 200, "{body}");
        let mut out: Vec<_> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["id"].as_u64().unwrap(),
                    f["name"].as_str().unwrap().to_string(),
                    !f["enabled_at"].is_null(),
                )
            })
            .collect();
        out.sort();
        out
    }

    pub(crate) fn id_of(&self, name: &str) -> u64 {
        let found: Vec<u64> = self
            .flows()
            .into_iter()
            .filter(|f| f.1 == name)
            .map(|f| f.0)
            .collect();
        assert_eq!(found.len(), 1, "flows named {name:?}: {:?}", self.flows());
        found[0]
    }

    fn list(&self, flow: u64, what: &str) -> Vec<Value> {
        let (status, body) = self.api("GET", &format!("/flows/{flow}/{what}"), None);
        assert_eq!(status, 200, "{body}");
        body["data"].as_array().unwrap().clone()
    }

    fn deployed_iteration(&self, flow: u64) -> Option<i64> {
        self.list(flow, "versions")
            .iter()
            .find(|v| v["is_deployed"] == true)
            .and_then(|v| v["iteration"].as_i64())
    }
}

/// Runs flowpack in `dir` with the sandbox's API key in `FLOWPACK_TOKEN` and `PROD_TOKEN`.
pub(crate) fn flowpack(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowpack"))
        .args(args)
        .current_dir(dir)
        .env("FLOWPACK_TOKEN", TOKEN)
        .env("PROD_TOKEN", TOKEN)
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .output()
        .expect("run flowpack")
}

pub(crate) fn ok(o: &Output) -> String {
    assert_eq!(code(o), 0, "stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
    stdout(o)
}

pub(crate) fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)))
}

/// Packs both reference documents (`changed`: the orders flow with another description and
/// priority) into `dir/NAME.flowpack`.
fn pack(dir: &Path, name: &str, changed: bool) -> PathBuf {
    let src = dir.join(format!("src-{name}"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(
        fixture("reference/export-v1-legacy.json"),
        src.join("customers.json"),
    )
    .unwrap();
    let mut orders: Value = serde_json::from_slice(
        &std::fs::read(fixture("reference/export-v2-order-sync.json")).unwrap(),
    )
    .unwrap();
    if changed {
        orders["flow"]["description"] = "Orders, every 5 minutes".into();
        orders["flow"]["priority"] = 1.into();
    }
    std::fs::write(src.join("orders.json"), orders.to_string()).unwrap();
    pack_sources(dir, &src, name, "app", "1.0.0")
}

/// Packs the documents in `src` into `dir/NAME.flowpack` as package `package@version`.
pub(crate) fn pack_sources(
    dir: &Path,
    src: &Path,
    name: &str,
    package: &str,
    version: &str,
) -> PathBuf {
    let out = dir.join(format!("{name}.flowpack"));
    ok(&flowpack(
        dir,
        &[
            "pack",
            src.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--name",
            package,
            "--version",
            version,
        ],
    ));
    out
}

/// The records of pushes and rollbacks into `prod` that wrote something.
fn history_files(dir: &Path) -> usize {
    crate::util::writing_records(&dir.join(".flowpack/history/prod"))
}

#[test]
fn replace_cuts_over_and_rollback_undoes_replace_then_create() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sb = Sandbox::start(d, &[]);
    let v1 = pack(d, "v1", false);
    let v2 = pack(d, "v2", true);
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
    let old = sb.id_of(ORDERS);
    let old_iteration = sb.deployed_iteration(old).expect("deployed");
    let (s, hook) = sb.api(
        "POST",
        &format!("/flows/{old}/webhooks"),
        Some(serde_json::json!({"status": "active", "format": "json", "body": "{}"})),
    );
    assert_eq!(s, 200, "{hook}");
    let (s, cb) = sb.api(
        "POST",
        &format!("/flows/{old}/callbacks"),
        Some(serde_json::json!({"status": "active", "format": "json"})),
    );
    assert!(s == 200 || s == 201, "{cb}");

    // Without replace: refused, naming what differs.
    let o = flowpack(
        d,
        &["push", v2.to_str().unwrap(), "--env", "prod", "--dry-run"],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("conflict   {ORDERS} (id {old})")),
        "{out}"
    );
    assert!(
        out.contains("/flow/description: \"Pulls paid orders from Shopify every 15 minutes and upserts them as NetSuite sales orders.\" → \"Orders, every 5 minutes\""),
        "{out}"
    );
    assert!(out.contains("/flow/priority: 2 → 1"), "{out}");
    assert!(
        stderr(&o).contains("signatures were not checked"),
        "{}",
        stderr(&o)
    );

    let o = flowpack(
        d,
        &[
            "push",
            v2.to_str().unwrap(),
            "--env",
            "prod",
            "--on-conflict",
            "replace",
            "--format",
            "json",
        ],
    );
    ok(&o);
    let report = json(&o);
    let flows = report["flows"].as_array().unwrap();
    let orders = flows.iter().find(|f| f["name"] == ORDERS).unwrap();
    assert_eq!(orders["plan"], "replace");
    assert_eq!(orders["outcome"], "replaced");
    let customers = flows.iter().find(|f| f["name"] == CUSTOMERS).unwrap();
    assert_eq!(customers["outcome"], "unchanged");
    let new = orders["id"].as_u64().unwrap();
    assert_ne!(new, old);
    let renamed = format!(
        "{ORDERS} (replaced {})",
        orders["replaced"]["renamed_to"]
            .as_str()
            .unwrap()
            .rsplit_once("(replaced ")
            .unwrap()
            .1
            .trim_end_matches(')')
    );
    assert_eq!(orders["replaced"]["renamed_to"], renamed.as_str());
    let new_hooks = sb.list(new, "webhooks");
    assert_eq!(new_hooks.len(), 1);
    assert_eq!(
        orders["replaced"]["webhooks"][0],
        serde_json::json!({"old": hook["data"]["id"], "new": new_hooks[0]["id"]})
    );
    assert_eq!(sb.list(new, "callbacks").len(), 1);
    let flows = sb.flows();
    assert!(flows.contains(&(old, renamed.clone(), false)), "{flows:?}");
    assert!(
        flows.contains(&(new, ORDERS.to_string(), true)),
        "{flows:?}"
    );
    assert_eq!(sb.deployed_iteration(new), Some(old_iteration));

    // A re-push plans unchanged everywhere: the replaced flow is not a target any more.
    let o = flowpack(
        d,
        &[
            "push",
            v2.to_str().unwrap(),
            "--env",
            "prod",
            "--dry-run",
            "--verbose",
        ],
    );
    let out = ok(&o);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("unchanged")).count(),
        2,
        "{out}"
    );

    let o = flowpack(d, &["history", "--env", "prod"]);
    let out = ok(&o);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().next().unwrap().contains("replaced 1"), "{out}");

    // Roll the replace back: the new flow goes, the old one gets its name and state back.
    let o = flowpack(d, &["rollback", "--env", "prod", "--dry-run"]);
    let out = ok(&o);
    assert!(
        out.contains(&format!("would     delete flow {new}")),
        "{out}"
    );
    assert_eq!(sb.flows().len(), 3);
    ok(&flowpack(d, &["rollback", "--env", "prod"]));
    // Pushed 4 at a time, the flows' ids follow no order: compare sorted.
    let mut expected = vec![
        (sb.id_of(CUSTOMERS), CUSTOMERS.to_string(), true),
        (old, ORDERS.to_string(), true),
    ];
    expected.sort();
    assert_eq!(sb.flows(), expected);
    assert_eq!(sb.api("GET", &format!("/flows/{new}"), None).0, 404);

    // Then the first push: its flows are deleted.
    ok(&flowpack(d, &["rollback", "--env", "prod"]));
    assert!(sb.flows().is_empty(), "{:?}", sb.flows());
    let o = flowpack(d, &["rollback", "--env", "prod"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing to undo"), "{}", stderr(&o));
    let o = flowpack(d, &["history", "--env", "prod", "--format", "json"]);
    let h = json(&o);
    let kinds: Vec<&str> = h["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["rollback", "rollback", "push", "push"]);
}

#[test]
fn a_replace_failing_before_the_cut_over_leaves_the_old_flow_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = pack(d, "v1", false);
    let v2 = pack(d, "v2", true);
    let sb = Sandbox::start(d, &["--fail-on", "PUT /flows/*/versions/*"]);
    ok(&flowpack(
        d,
        &["push", v1.to_str().unwrap(), "--env", "prod", "--enable"],
    ));
    let before = sb.flows();
    let o = flowpack(
        d,
        &[
            "push",
            v2.to_str().unwrap(),
            "--env",
            "prod",
            "--on-conflict",
            "replace",
            "--deploy",
        ],
    );
    assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let old = sb.id_of(ORDERS);
    assert!(
        out.contains(&format!("the old flow {old} is untouched")) && out.contains("was deleted"),
        "{out}"
    );
    assert_eq!(sb.flows(), before);
}

#[test]
fn rollback_finishes_a_failed_replace_and_can_be_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = pack(d, "v1", false);
    let v2 = pack(d, "v2", true);
    // Deleting flows fails: pruning the old flow fails after the cut-over, and so does undoing
    // it (deleting the new flow); the old flow is left disabled.
    let sb = Sandbox::start(d, &["--fail-on", "DELETE /flows/*"]);
    ok(&flowpack(
        d,
        &["push", v1.to_str().unwrap(), "--env", "prod", "--enable"],
    ));
    let old = sb.id_of(ORDERS);
    let o = flowpack(
        d,
        &[
            "push",
            v2.to_str().unwrap(),
            "--env",
            "prod",
            "--on-conflict",
            "replace",
            "--prune-replaced",
        ],
    );
    assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("run `flowpack rollback`"),
        "{}",
        stdout(&o)
    );
    assert_eq!(sb.flows().len(), 3, "the new flow is left over");
    assert!(sb.flows().contains(&(old, ORDERS.to_string(), false)));
    drop(sb);

    // The rollback deletes the new flow, then fails enabling the old one again.
    let sb = Sandbox::start(d, &["--fail-on", "PUT /flows/*"]);
    let o = flowpack(d, &["rollback", "--env", "prod"]);
    assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("done      delete flow"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("failed    enable flow"),
        "{}",
        stdout(&o)
    );
    assert_eq!(sb.flows().len(), 2);
    drop(sb);

    // Run again: the deleted flow is fine, the rest is done, the push counts as undone.
    let sb = Sandbox::start(d, &[]);
    ok(&flowpack(d, &["rollback", "--env", "prod"]));
    let flows = sb.flows();
    assert_eq!(flows.len(), 2, "{flows:?}");
    assert!(
        flows.contains(&(old, ORDERS.to_string(), true)),
        "{flows:?}"
    );
    let h = json(&flowpack(
        d,
        &["history", "--env", "prod", "--format", "json"],
    ));
    let replace = &h["records"].as_array().unwrap()[2];
    assert_eq!(replace["kind"], "push");
    assert!(replace["undone_by"].is_string(), "{h}");
}

#[test]
fn selective_push_and_state_converging_on_unchanged_flows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sb = Sandbox::start(d, &[]);
    let v1 = pack(d, "v1", false);
    let a = v1.to_str().unwrap();

    let o = flowpack(
        d,
        &[
            "push",
            a,
            "--env",
            "prod",
            "--flow",
            "Shopify > Net*",
            "--flow",
            "Nope?",
        ],
    );
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("flow pattern \"Nope?\" matches no flow of the archive"),
        "{}",
        stderr(&o)
    );
    assert!(sb.flows().is_empty());

    let o = flowpack(
        d,
        &[
            "push",
            a,
            "--env",
            "prod",
            "--flow",
            "Shopify > Net*",
            "--format",
            "json",
        ],
    );
    let report = json(&o);
    assert_eq!(report["flows"].as_array().unwrap().len(), 1);
    assert_eq!(report["flows"][0]["name"], ORDERS);
    let orders = sb.id_of(ORDERS);
    assert_eq!(sb.flows(), vec![(orders, ORDERS.to_string(), false)]);

    // --enable --deploy act on the unchanged flow too.
    let o = flowpack(
        d,
        &[
            "push", a, "--env", "prod", "--enable", "--deploy", "--format", "json",
        ],
    );
    let report = json(&o);
    let of = |name: &str| {
        report["flows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(of(ORDERS)["outcome"], "unchanged");
    assert_eq!(of(ORDERS)["enabled"], true);
    assert!(of(ORDERS)["deployed_version"].is_u64());
    assert_eq!(of(CUSTOMERS)["outcome"], "created");
    assert!(sb.flows().iter().all(|f| f.2), "{:?}", sb.flows());
    assert!(sb.deployed_iteration(orders).is_some());
    let records = history_files(d);
    assert_eq!(records, 2);

    // A re-push with the same flags is a no-op: all unchanged, nothing written or recorded.
    let o = flowpack(
        d,
        &[
            "push", a, "--env", "prod", "--enable", "--deploy", "--format", "json",
        ],
    );
    let report = json(&o);
    for f in report["flows"].as_array().unwrap() {
        assert_eq!(f["outcome"], "unchanged", "{f}");
        assert_eq!(f["enabled"], false, "{f}");
        assert!(f["deployed_version"].is_null(), "{f}");
    }
    assert_eq!(history_files(d), records);

    // Rolling back the state change disables the flow again (the created one is deleted).
    ok(&flowpack(d, &["rollback", "--env", "prod"]));
    assert_eq!(sb.flows(), vec![(orders, ORDERS.to_string(), false)]);
}

/// Overlay keys that match nothing in the archive refuse the push before any request, each
/// named with the nearest existing name; `--allow-unmatched` makes them warnings.
#[test]
fn overlay_typos_are_refused_with_the_nearest_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let _sb = Sandbox::start(d, &[]);
    let v1 = pack(d, "v1", false);
    let a = v1.to_str().unwrap();
    std::fs::write(
        d.join("typos.toml"),
        "[variables]\nNETSUITE_SUBSIDIAR = \"7\"\n\n[flows.\"Shopify > NetSuite Ordrs\"]\npriority = 1\n",
    )
    .unwrap();
    let o = flowpack(d, &["push", a, "--env", "prod", "--overlay", "typos.toml"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("NETSUITE_SUBSIDIAR"), "{err}");
    assert!(err.contains("`NETSUITE_SUBSIDIARY`"), "{err}");
    assert!(err.contains("Shopify > NetSuite Ordrs"), "{err}");
    assert!(err.contains("Shopify > NetSuite Orders"), "{err}");
    // Nothing was written.
    let o = flowpack(d, &["history", "--env", "prod", "--format", "json"]);
    assert_eq!(history_files(d), 0, "{}", stdout(&o));

    let o = flowpack(
        d,
        &[
            "push",
            a,
            "--env",
            "prod",
            "--overlay",
            "typos.toml",
            "--allow-unmatched",
            "--format",
            "json",
        ],
    );
    let report = json(&o);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("NETSUITE_SUBSIDIAR"), "{warnings}");
}
