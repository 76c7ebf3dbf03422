//! HTTP-level tests: the server runs in process on 127.0.0.1:0 and is spoken to over real HTTP
//! (the binary's own tests are the root package's `sandbox` test, which can name it).

use std::sync::Arc;

use flowpack_client::ListQuery;
use flowpack_sandbox::server::{RunningServer, ServerOptions, spawn};
use flowpack_sandbox::{Store, StoreOptions};
use serde_json::{Value, json};

const ORDER_SYNC: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/reference/export-v2-order-sync.json"
));
const KEY: &str = "test-key";

struct Sandbox {
    server: RunningServer,
    store: Arc<Store>,
    agent: ureq::Agent,
}

struct Reply {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn start(options: ServerOptions) -> Sandbox {
    let store = Arc::new(Store::open_in_memory(StoreOptions::default()).unwrap());
    let server = spawn("127.0.0.1:0".parse().unwrap(), store.clone(), options).unwrap();
    Sandbox {
        server,
        store,
        agent: agent(),
    }
}

fn sandbox() -> Sandbox {
    start(ServerOptions::new(KEY))
}

fn call_at(
    agent: &ureq::Agent,
    base: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Reply {
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{base}/api/v1{path}"))
        .header("Accept", "application/json");
    if let Some(auth) = auth {
        req = req.header("Authorization", auth);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = match body {
        Some(bytes) => agent.run(
            req.header("Content-Type", "application/json")
                .body(bytes)
                .unwrap(),
        ),
        None => agent.run(req.body(()).unwrap()),
    }
    .unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp.body_mut().read_to_string().unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {path}: {status} body is not JSON ({e}): {text}"));
    Reply {
        status,
        retry_after,
        body,
    }
}

impl Sandbox {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call_with(method, path, Some(&format!("Bearer {KEY}")), &[], body)
    }

    fn call_with(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        call_at(
            &self.agent,
            &self.server.url(),
            method,
            path,
            auth,
            headers,
            body.map(|b| b.to_string().into_bytes()),
        )
    }

    fn import(&self) -> Value {
        let r = self.call("POST", "/flows/import", Some(order_sync()));
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["data"].clone()
    }
}

fn order_sync() -> Value {
    serde_json::from_str(ORDER_SYNC).unwrap()
}

#[test]
fn missing_or_wrong_key_is_401_and_both_key_forms_are_accepted() {
    let s = sandbox();
    let missing = s.call_with("GET", "/flows", None, &[], None);
    assert_eq!(missing.status, 401);
    assert_eq!(missing.body, json!({"message": "Unauthenticated."}));
    let wrong = s.call_with("GET", "/flows", Some("Bearer nope"), &[], None);
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body, json!({"message": "Unauthenticated."}));
    assert_eq!(
        s.call_with("GET", "/flows", Some(KEY), &[], None).status,
        200
    );
    assert_eq!(
        s.call_with("GET", "/flows", Some(&format!("Bearer {KEY}")), &[], None)
            .status,
        200
    );
}

#[test]
fn import_returns_the_new_flow_disabled_with_a_draft() {
    let s = sandbox();
    let flow = s.import();
    assert_eq!(flow["id"], 1);
    assert_eq!(flow["name"], "Shopify > NetSuite Orders");
    assert_eq!(flow["enabled_at"], Value::Null);
    let versions = flow["versions"].as_array().unwrap();
    assert_eq!(versions[0]["iteration"], 7);
    assert_eq!(versions[0]["status"], "Inactive");
    assert_eq!(versions[1]["iteration"], 8);
    assert_eq!(versions[1]["status"], "Draft");
    assert_eq!(versions[1]["is_deployed"], false);

    let mut doc = order_sync();
    doc["flow"] = Value::from(doc["flow"].to_string());
    doc["metadata"] = Value::from(doc["metadata"].to_string());
    let r = s.call("POST", "/flows/import", Some(doc));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["id"], 2);
}

#[test]
fn idempotency_key_on_import_replays_without_creating() {
    let s = sandbox();
    let auth = format!("Bearer {KEY}");
    let once = s.call_with(
        "POST",
        "/flows/import",
        Some(&auth),
        &[("Idempotency-Key", "push-1")],
        Some(order_sync()),
    );
    let twice = s.call_with(
        "POST",
        "/flows/import",
        Some(&auth),
        &[("Idempotency-Key", "push-1")],
        Some(order_sync()),
    );
    assert_eq!((once.status, twice.status), (200, 200));
    assert_eq!(once.body, twice.body);
    let list = s.call("GET", "/flows", None);
    assert_eq!(list.body["meta"]["total"], 1);
}

#[test]
fn import_refusals_are_422_with_field_errors() {
    let s = sandbox();
    let r = s.call("POST", "/flows/import", Some(json!({"systems": []})));
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body,
        json!({
            "message": "The flow field is required. (and 1 more error)",
            "errors": {
                "flow": ["The flow field is required."],
                "metadata": ["The metadata field is required."]
            }
        })
    );
    // A version-1 document whose route names no step cannot be migrated: 422 naming `flow`.
    let mut legacy: Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/reference/export-v1-legacy.json"
    )))
    .unwrap();
    legacy["flow"]["versions"][0]["steps"][0]["routes"][0]["first_step"] = json!("No such step");
    let r = s.call("POST", "/flows/import", Some(legacy));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body["errors"]["flow"][0]
            .as_str()
            .unwrap()
            .contains("cannot migrate from format version 1 to 2"),
        "{}",
        r.body
    );
    let broken = call_at(
        &s.agent,
        &s.server.url(),
        "POST",
        "/flows/import",
        Some(KEY),
        &[],
        Some(b"{\"flow\":".to_vec()),
    );
    assert_eq!(broken.status, 422);
    assert!(
        broken.body["errors"]["body"][0]
            .as_str()
            .unwrap()
            .starts_with("The request body is not valid JSON")
    );
}

#[test]
fn list_paginates_with_meta_and_links_and_refuses_bad_queries() {
    let s = sandbox();
    for _ in 0..3 {
        s.import();
    }
    let r = s.call("GET", "/flows?per_page=2&page=2&sort=-id", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["data"][0]["id"], 1);
    assert_eq!(
        r.body["meta"],
        json!({"current_page": 2, "last_page": 2, "per_page": 2, "total": 3})
    );
    let base = format!("{}/api/v1/flows", s.server.url());
    assert_eq!(
        r.body["links"]["first"],
        format!("{base}?sort=-id&page=1&per_page=2")
    );
    assert_eq!(
        r.body["links"]["prev"],
        format!("{base}?sort=-id&page=1&per_page=2")
    );
    assert_eq!(r.body["links"]["next"], Value::Null);
    let filtered = s.call(
        "GET",
        "/flows?filter%5Bname%5D=netsuite&include=versions",
        None,
    );
    assert_eq!(filtered.body["meta"]["total"], 3);
    assert_eq!(
        filtered.body["data"][0]["versions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let bad = s.call("GET", "/flows?per_page=500", None);
    assert_eq!(bad.status, 422);
    assert_eq!(
        bad.body["errors"]["per_page"],
        json!(["The per page must be an integer between 1 and 100."])
    );
    let bad_sort = s.call("GET", "/flows?sort=priority", None);
    assert_eq!(bad_sort.status, 422);
    assert!(bad_sort.body["errors"]["sort"].is_array());
}

#[test]
fn show_export_versions_deploy_update_delete() {
    let s = sandbox();
    s.import();
    let shown = s.call("GET", "/flows/1?include=versions", None);
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["data"]["versions"].as_array().unwrap().len(), 2);
    assert!(
        s.call("GET", "/flows/1", None).body["data"]
            .get("versions")
            .is_none()
    );

    let versions = s.call("GET", "/flows/1/versions", None);
    assert_eq!(versions.status, 200);
    let v7 = versions.body["data"][0]["id"].as_u64().unwrap();
    let deployed = s.call(
        "PUT",
        &format!("/flows/1/versions/{v7}"),
        Some(json!({"deployed_at": "2026-01-05T00:00:00Z"})),
    );
    assert_eq!(deployed.status, 200);
    assert_eq!(deployed.body["data"]["status"], "Deployed");
    assert_eq!(deployed.body["data"]["is_deployed"], true);

    let updated = s.call(
        "PUT",
        "/flows/1",
        Some(json!({"flow": {"enabled_at": "2026-01-05T00:00:00Z", "priority": 1}})),
    );
    assert_eq!(updated.status, 200);
    assert_eq!(updated.body["data"]["enabled_at"], "2026-01-05T00:00:00Z");
    assert_eq!(updated.body["data"]["priority"], 1);
    let bad = s.call("PUT", "/flows/1", Some(json!({"flow": {"priority": 9}})));
    assert_eq!(bad.status, 422);
    assert_eq!(
        bad.body["errors"],
        json!({"flow.priority": ["The flow.priority field must be an integer between 1 and 5."]})
    );

    let exported = s.call("POST", "/flows/export", Some(json!({"flow_id": 1})));
    assert_eq!(exported.status, 200);
    assert_eq!(exported.body["flow"]["is_enabled"], true);
    assert_eq!(exported.body["flow"]["priority"], 1);
    assert_eq!(exported.body["flow"]["versions"][0]["status"], "Deployed");
    assert_eq!(exported.body["flow"]["versions"][1]["status"], "Draft");

    let undeployed = s.call(
        "PUT",
        &format!("/flows/1/versions/{v7}"),
        Some(json!({"deployed_at": null})),
    );
    assert_eq!(undeployed.body["data"]["status"], "Inactive");

    let deleted = s.call("DELETE", "/flows/1", None);
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body, json!({"message": "Flow 1 deleted."}));
    let gone = s.call("GET", "/flows/1", None);
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body, json!({"message": "Flow 1 not found."}));
}

#[test]
fn unknown_ids_and_paths_are_404() {
    let s = sandbox();
    s.import();
    let cases = [
        ("GET", "/flows/99", None, "Flow 99 not found."),
        ("GET", "/flows/abc", None, "Flow abc not found."),
        ("GET", "/flows/99/versions", None, "Flow 99 not found."),
        (
            "PUT",
            "/flows/1/versions/99",
            Some(json!({"deployed_at": "2026-01-05T00:00:00Z"})),
            "Version 99 of flow 1 not found.",
        ),
        ("DELETE", "/flows/99", None, "Flow 99 not found."),
        (
            "POST",
            "/flows/export",
            Some(json!({"flow_id": 99})),
            "Flow 99 not found.",
        ),
        ("GET", "/nothing-here", None, "Not found."),
    ];
    for (method, path, body, msg) in cases {
        let r = s.call(method, path, body);
        assert_eq!(r.status, 404, "{method} {path}");
        assert_eq!(r.body, json!({"message": msg}), "{method} {path}");
    }
    let r = s.call("POST", "/flows/export", Some(json!({})));
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["errors"]["flow_id"],
        json!(["The flow id field is required."])
    );
}

#[test]
fn bodies_over_8_mb_are_413() {
    let s = sandbox();
    let mut doc = order_sync();
    doc["padding"] = Value::from("x".repeat(8 * 1024 * 1024));
    let r = s.call("POST", "/flows/import", Some(doc));
    assert_eq!(r.status, 413);
    assert_eq!(
        r.body,
        json!({"message": "The request body is larger than the limit of 8388608 bytes (8 MB)."})
    );
    assert_eq!(s.store.list(&ListQuery::default()).unwrap().meta.total, 0);
}

#[test]
fn over_the_rate_limit_is_429_with_retry_after() {
    let mut options = ServerOptions::new(KEY);
    options.rate_limit = Some(2);
    let s = start(options);
    let statuses: Vec<Reply> = (0..4).map(|_| s.call("GET", "/flows", None)).collect();
    assert_eq!(statuses[0].status, 200);
    let limited = statuses
        .iter()
        .find(|r| r.status == 429)
        .expect("a request over 2/s was limited");
    assert_eq!(limited.retry_after.as_deref(), Some("1"));
    assert_eq!(limited.body, json!({"message": "Too Many Attempts."}));
}

#[test]
fn fail_rate_1_fails_every_request_with_500_or_503_and_writes_nothing() {
    let mut options = ServerOptions::new(KEY);
    options.fail_rate = 1.0;
    options.seed = 7;
    let s = start(options);
    let mut seen = Vec::new();
    for _ in 0..16 {
        let r = s.call("POST", "/flows/import", Some(order_sync()));
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains("injected by flowpack-sandbox --fail-rate"),
            "{}",
            r.body
        );
        seen.push(r.status);
    }
    assert!(seen.contains(&500) && seen.contains(&503), "{seen:?}");
    assert!(seen.iter().all(|s| *s == 500 || *s == 503), "{seen:?}");
    assert_eq!(s.store.list(&ListQuery::default()).unwrap().meta.total, 0);
}

#[test]
fn latency_delays_every_request() {
    let mut options = ServerOptions::new(KEY);
    options.latency = std::time::Duration::from_millis(150);
    let s = start(options);
    let started = std::time::Instant::now();
    assert_eq!(s.call("GET", "/flows", None).status, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
}
