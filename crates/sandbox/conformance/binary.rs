//! The sandbox over HTTP, against the real `flowpack-sandbox` binary: the conformance test of
//! every endpoint of the API reference, the binary's own behaviour (address line, restarts,
//! `--fail-on`, `--help`, SIGTERM), and that the `flowpack` binary links none of the server
//! stack. A test of the root package, which alone can name both binaries.

#[path = "harness.rs"]
mod harness;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use harness::{KEY, Reply, Transport};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Value, json};

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Binary {
    _process: Process,
    base: String,
    agent: ureq::Agent,
}

fn run_binary(db: &Path, extra: &[&str]) -> Binary {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowpack-sandbox"))
        .args(["--listen", "127.0.0.1:0", "--token", KEY, "--db"])
        .arg(db)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim_end()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    assert!(!addr.ends_with(":0"), "{addr}");
    Binary {
        _process: Process(child),
        base: format!("http://{addr}"),
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into(),
    }
}

impl Transport for Binary {
    fn call(&self, method: &str, path: &str, auth: Option<&str>, body: Option<&Value>) -> Reply {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, encode(path)))
            .header("Accept", "application/json");
        if let Some(auth) = auth {
            req = req.header("Authorization", format!("Bearer {auth}"));
        }
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
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e})"))
        };
        Reply { status, body }
    }
}

/// What a request target may not hold as is: controls, the space, and these (non-ASCII bytes
/// are always encoded). Everything else, `%`, `?` and `&` included, passes unchanged, so the
/// tests can write queries and ready-made escapes.
const NOT_IN_URI: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'[')
    .add(b']')
    .add(b'"')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'<')
    .add(b'>');

/// Percent-encodes what a URI may not hold as is (spaces, brackets, non-ASCII).
fn encode(path: &str) -> String {
    utf8_percent_encode(path, NOT_IN_URI).to_string()
}

fn sandbox(dir: &Path) -> Binary {
    run_binary(&dir.join("sandbox.db"), &[])
}

#[test]
fn conformance_over_http() {
    let dir = tempfile::tempdir().unwrap();
    harness::conformance(&sandbox(dir.path()));
}

#[test]
fn behaviour_over_http() {
    let dir = tempfile::tempdir().unwrap();
    harness::behaviour(&sandbox(dir.path()));
}

#[test]
fn malformed_requests_over_http_get_4xx() {
    let dir = tempfile::tempdir().unwrap();
    harness::malformed(&sandbox(dir.path()));
}

#[test]
fn data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sandbox.db");
    let first = run_binary(&db, &[]);
    let f = harness::fixture(&first);
    let r = first.call(
        "PUT",
        &format!("/api/v1/flows/{}", f.flow),
        Some(KEY),
        Some(&json!({"flow": {"prod_flag": true}, "labels": [{"id": 5}]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    drop(first);
    let second = run_binary(&db, &[]);
    let r = second.call(
        "GET",
        &format!("/api/v1/flows/{}?include=versions,webhooks", f.flow),
        Some(KEY),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["name"], "Shopify > NetSuite Orders");
    assert_eq!(r.body["data"]["versions"][0]["status"], "Deployed");
    assert_eq!(r.body["data"]["prod_flag"], true);
    assert_eq!(r.body["data"]["labels"], json!([5]));
    assert_eq!(r.body["data"]["webhooks"][0]["id"], f.webhook);
}

#[test]
fn fail_on_fails_the_first_n_matching_requests_after_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let s = run_binary(
        &dir.path().join("sandbox.db"),
        &[
            "--fail-on",
            "PUT /flows/*/versions/*:2",
            "--fail-on",
            "DELETE /api/v1/flows/*",
        ],
    );
    let f = harness::fixture_without_deploy(&s);
    let path = format!("/api/v1/flows/{}/versions/{}", f.flow, f.draft);
    let body = json!({"deployed_at": "2026-01-01T00:00:00Z"});
    assert_eq!(
        s.call("PUT", &path, None, Some(&body)).status,
        401,
        "authentication first"
    );
    for _ in 0..2 {
        let r = s.call("PUT", &path, Some(KEY), Some(&body));
        assert_eq!(r.status, 500);
        assert!(r.body["message"].as_str().unwrap().contains("--fail-on"));
    }
    assert_eq!(s.call("PUT", &path, Some(KEY), Some(&body)).status, 200);
    for _ in 0..3 {
        let r = s.call(
            "DELETE",
            &format!("/api/v1/flows/{}", f.flow),
            Some(KEY),
            None,
        );
        assert_eq!(r.status, 500, "without :N every match fails");
    }
    assert_eq!(
        s.call("GET", &format!("/api/v1/flows/{}", f.flow), Some(KEY), None)
            .status,
        200
    );
}

#[test]
fn bad_fail_on_rules_are_usage_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_flowpack-sandbox"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--db",
            "unused.db",
            "--token",
            "k",
        ])
        .args(["--fail-on", "PUT"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not `METHOD PATH-GLOB[:N]`"), "{err}");
}

#[test]
fn help_says_it_is_not_a_production_service_and_shows_an_example() {
    let out = Command::new(env!("CARGO_BIN_EXE_flowpack-sandbox"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("NOT a production service"), "{help}");
    assert!(help.contains("--fail-on"), "{help}");
    assert!(
        help.contains("flowpack-sandbox --listen 127.0.0.1:0 --db sandbox.db --token dev-key"),
        "{help}"
    );
}

#[cfg(unix)]
#[test]
fn binary_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let s = sandbox(dir.path());
    let mut process = s._process;
    let pid = process.0.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let status = process.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// The `flowpack` binary links none of the sandbox server's stack (axum, hyper, tokio): its
/// symbol table names none of them, while `flowpack-sandbox`'s does (so the check can fail).
#[cfg(unix)]
#[test]
fn the_flowpack_binary_links_no_server_stack() {
    let symbols = |bin: &str| -> Option<String> {
        let out = Command::new("nm").args(["-C", bin]).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let Some(sandbox) = symbols(env!("CARGO_BIN_EXE_flowpack-sandbox")) else {
        eprintln!("skipped: `nm` (binutils) is not installed");
        return;
    };
    let flowpack = symbols(env!("CARGO_BIN_EXE_flowpack")).expect("nm reads flowpack");
    for krate in ["axum::", "hyper::", "tokio::"] {
        assert!(sandbox.contains(krate), "the sandbox links {krate}");
        let n = flowpack.lines().filter(|l| l.contains(krate)).count();
        assert_eq!(n, 0, "the flowpack binary links {n} symbols of {krate}");
    }
}
