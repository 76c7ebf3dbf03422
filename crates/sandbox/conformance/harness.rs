//! The sandbox's conformance test, shared by two transports: in process through the
//! `Dispatcher` (crates/sandbox/tests/conformance.rs) and over HTTP against the real
//! `flowpack-sandbox` binary (the root package's `sandbox` test).
//!
//! The endpoints come from the API reference itself (fixtures/reference/core-api-flows.txt):
//! a method line (`get`, `post`, …) followed by an `/api/v1/…` line. Every endpoint found must
//! have a valid request and a behaviour test below, so an endpoint the sandbox misses fails.

#![allow(dead_code)]

use serde_json::{Value, json};

/// The API reference, as committed.
pub const REFERENCE: &str = include_str!("../fixtures/reference/core-api-flows.txt");
/// A version-2 export document.
pub const ORDER_SYNC: &str = include_str!("../fixtures/reference/export-v2-order-sync.json");
/// A version-1 export document.
pub const LEGACY: &str = include_str!("../fixtures/reference/export-v1-legacy.json");
/// The API key the transports are set up with.
pub const KEY: &str = "conformance-key";
/// An id no object has.
pub const UNKNOWN: u64 = 987_654;

/// A status and a JSON body (`Null` when there is none).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

/// How requests reach the sandbox.
pub trait Transport {
    /// Sends `method path_and_query` (path under the server root, e.g. `/api/v1/flows?page=1`)
    /// with `Authorization: Bearer <auth>` when `auth` is given.
    fn call(&self, method: &str, path: &str, auth: Option<&str>, body: Option<&Value>) -> Reply;
}

/// `(METHOD, /api/v1/… template)` of every endpoint of the reference, in its order.
pub fn endpoints(reference: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = reference
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut out = Vec::new();
    for pair in lines.windows(2) {
        let method = pair[0];
        if ["get", "post", "put", "patch", "delete"].contains(&method)
            && pair[1].starts_with("/api/v1/")
        {
            out.push((method.to_ascii_uppercase(), pair[1].to_string()));
        }
    }
    out
}

/// The objects a request works on.
#[derive(Debug, Clone, Copy)]
pub struct Fixture {
    pub flow: u64,
    pub deployed: u64,
    pub draft: u64,
    pub webhook: u64,
    pub callback: u64,
}

fn ok(t: &dyn Transport, method: &str, path: &str, body: Option<&Value>) -> Value {
    let r = t.call(method, path, Some(KEY), body);
    assert!(
        (200..300).contains(&r.status),
        "{method} {path}: {} {}",
        r.status,
        r.body
    );
    r.body
}

fn order_sync() -> Value {
    serde_json::from_str(ORDER_SYNC).unwrap()
}

/// A flow imported from the order-sync document (iterations 7 and 8), iteration 7 deployed,
/// with one webhook and one callback.
pub fn fixture(t: &dyn Transport) -> Fixture {
    let flow = ok(t, "POST", "/api/v1/flows/import", Some(&order_sync()));
    let id = flow["data"]["id"].as_u64().unwrap();
    let versions = flow["data"]["versions"].as_array().unwrap();
    let (deployed, draft) = (
        versions[0]["id"].as_u64().unwrap(),
        versions[1]["id"].as_u64().unwrap(),
    );
    ok(
        t,
        "PUT",
        &format!("/api/v1/flows/{id}/versions/{deployed}"),
        Some(&json!({"deployed_at": "2026-01-05T00:00:00Z"})),
    );
    let webhook = ok(
        t,
        "POST",
        &format!("/api/v1/flows/{id}/webhooks"),
        Some(&json!({"status": "active", "format": "json", "body": null})),
    )["data"]["id"]
        .as_u64()
        .unwrap();
    let callback = ok(
        t,
        "POST",
        &format!("/api/v1/flows/{id}/callbacks"),
        Some(&json!({"status": "active", "format": "json"})),
    )["data"]["id"]
        .as_u64()
        .unwrap();
    Fixture {
        flow: id,
        deployed,
        draft,
        webhook,
        callback,
    }
}

/// A flow imported from the order-sync document, nothing deployed, no webhook or callback.
pub fn fixture_without_deploy(t: &dyn Transport) -> Fixture {
    let flow = ok(t, "POST", "/api/v1/flows/import", Some(&order_sync()));
    let versions = flow["data"]["versions"].as_array().unwrap();
    Fixture {
        flow: flow["data"]["id"].as_u64().unwrap(),
        deployed: versions[0]["id"].as_u64().unwrap(),
        draft: versions[1]["id"].as_u64().unwrap(),
        webhook: 0,
        callback: 0,
    }
}

/// The template with its parameters filled from `f` (`unknown` replaces that one parameter by
/// an id no object has).
pub fn fill(method: &str, template: &str, f: &Fixture, unknown: Option<&str>) -> String {
    let run = template.contains("/manual/") || template.contains("/start/");
    let mut out = String::new();
    for seg in template.split('/') {
        if !out.is_empty() || !seg.is_empty() {
            out.push('/');
        }
        let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            out.push_str(seg);
            continue;
        };
        let value = if unknown == Some(name) {
            UNKNOWN
        } else {
            match name {
                "flow" | "flow_id" => f.flow,
                "version" | "version_id" if run => f.deployed,
                "version" | "version_id" => f.draft,
                "webhook" => f.webhook,
                "callback" => f.callback,
                other => panic!("{method} {template}: no value for the path parameter {{{other}}}"),
            }
        };
        out.push_str(&value.to_string());
    }
    out
}

/// The path parameters of a template.
pub fn params(template: &str) -> Vec<&str> {
    template
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// A valid body for an endpoint (`None`: it takes none).
pub fn valid_body(method: &str, template: &str, f: &Fixture) -> Option<Value> {
    let body = match (method, template) {
        ("GET", _) | ("DELETE", _) => return None,
        ("POST", "/api/v1/flows") => {
            json!({"flow": {"name": "Created", "description": "made by the test", "prod_flag": true}})
        }
        ("POST", "/api/v1/flows/export") => json!({"flow_id": f.flow}),
        ("POST", "/api/v1/flows/import") => order_sync(),
        ("POST", t) if t.contains("/manual/") || t.contains("/start/") => {
            json!({"flow_id": f.flow, "version_id": f.deployed, "payload": "{\"order\": 1}"})
        }
        ("PUT", "/api/v1/flows/{flow}") => json!({"flow": {"name": "Renamed", "priority": 1}}),
        ("POST", "/api/v1/flows/{flow}/callbacks") => json!({"status": "active", "format": "xml"}),
        ("PUT", "/api/v1/flows/{flow}/callbacks/{callback}") => json!({"status": "paused"}),
        ("POST", "/api/v1/flows/{flow}/duplicate") => json!({"flow_version_id": f.deployed}),
        ("PATCH", "/api/v1/flows/{flow}/layout-direction") => {
            json!({"layout_direction": "vertical"})
        }
        ("POST", "/api/v1/flows/{flow}/versions") => json!({}),
        ("PUT", "/api/v1/flows/{flow}/versions/{version}") => {
            json!({"deployed_at": "2026-02-01T00:00:00Z"})
        }
        ("POST", "/api/v1/flows/{flow}/versions/{version}/copy") => json!({}),
        ("POST", "/api/v1/flows/{flow}/webhooks") => {
            json!({"status": "active", "format": "json", "body": "{\"a\": 1}"})
        }
        ("PUT", "/api/v1/flows/{flow}/webhooks/{webhook}") => {
            json!({"hmac_algorithm": "sha256", "hmac_secret_key": "s3cr3t"})
        }
        _ => panic!("{method} {template}: the conformance test has no valid request for it"),
    };
    Some(body)
}

/// For every endpoint of the reference: 2xx with a valid key, 401 without one (and with a wrong
/// one), 404 for each unknown path id (and for an unknown `flow_id` of export).
pub fn conformance(t: &dyn Transport) {
    let list = endpoints(REFERENCE);
    assert_eq!(
        list.len(),
        26,
        "the reference lists 26 method/path pairs: {list:?}"
    );
    for (method, template) in &list {
        let f = fixture(t);
        let body = valid_body(method, template, &f);
        let path = fill(method, template, &f, None);
        for auth in [None, Some("wrong-key")] {
            let r = t.call(method, &path, auth, body.as_ref());
            assert_eq!(
                r.status, 401,
                "{method} {template} with key {auth:?}: {}",
                r.body
            );
            assert_eq!(r.body["message"], "Unauthenticated.");
        }
        for name in params(template) {
            let unknown = fill(method, template, &f, Some(name));
            let r = t.call(method, &unknown, Some(KEY), body.as_ref());
            assert_eq!(r.status, 404, "{method} {unknown}: {}", r.body);
            assert!(
                r.body["message"].as_str().unwrap().contains("not found"),
                "{}",
                r.body
            );
        }
        let r = t.call(method, &path, Some(KEY), body.as_ref());
        assert!(
            (200..300).contains(&r.status),
            "{method} {template} ({path}): {} {}",
            r.status,
            r.body
        );
    }
    let f = fixture(t);
    let r = t.call(
        "POST",
        "/api/v1/flows/export",
        Some(KEY),
        Some(&json!({"flow_id": UNKNOWN})),
    );
    assert_eq!(r.status, 404, "{}", r.body);
    let _ = f;
}

/// A behaviour test: method, path template, the test.
pub type Behaviour = (&'static str, &'static str, fn(&dyn Transport));

/// One behaviour test per endpoint, keyed by the reference's method and path.
pub fn behaviours() -> Vec<Behaviour> {
    vec![
        ("GET", "/api/v1/flows", list_flows),
        ("POST", "/api/v1/flows", create_flow),
        ("POST", "/api/v1/flows/export", export_flow),
        ("POST", "/api/v1/flows/import", import_flow),
        (
            "POST",
            "/api/v1/flows/{flow_id}/manual/{version_id}",
            manual_run,
        ),
        (
            "POST",
            "/api/v1/flows/{flow_id}/start/{version_id}",
            start_run,
        ),
        ("GET", "/api/v1/flows/{flow}", show_flow),
        ("PUT", "/api/v1/flows/{flow}", update_flow),
        ("DELETE", "/api/v1/flows/{flow}", destroy_flow),
        ("GET", "/api/v1/flows/{flow}/callbacks", list_callbacks),
        ("POST", "/api/v1/flows/{flow}/callbacks", create_callback),
        (
            "PUT",
            "/api/v1/flows/{flow}/callbacks/{callback}",
            update_callback,
        ),
        (
            "DELETE",
            "/api/v1/flows/{flow}/callbacks/{callback}",
            destroy_callback,
        ),
        ("POST", "/api/v1/flows/{flow}/duplicate", duplicate_flow),
        (
            "PATCH",
            "/api/v1/flows/{flow}/layout-direction",
            layout_direction,
        ),
        (
            "GET",
            "/api/v1/flows/{flow}/version-metrics",
            version_metrics,
        ),
        ("GET", "/api/v1/flows/{flow}/versions", list_versions),
        ("POST", "/api/v1/flows/{flow}/versions", create_version),
        (
            "GET",
            "/api/v1/flows/{flow}/versions/{version}",
            show_version,
        ),
        (
            "PUT",
            "/api/v1/flows/{flow}/versions/{version}",
            update_version,
        ),
        (
            "DELETE",
            "/api/v1/flows/{flow}/versions/{version}",
            destroy_version,
        ),
        (
            "POST",
            "/api/v1/flows/{flow}/versions/{version}/copy",
            copy_version,
        ),
        ("GET", "/api/v1/flows/{flow}/webhooks", list_webhooks),
        ("POST", "/api/v1/flows/{flow}/webhooks", create_webhook),
        (
            "PUT",
            "/api/v1/flows/{flow}/webhooks/{webhook}",
            update_webhook,
        ),
        (
            "DELETE",
            "/api/v1/flows/{flow}/webhooks/{webhook}",
            destroy_webhook,
        ),
    ]
}

/// Runs the behaviour test of every endpoint the reference lists (and fails for one without).
pub fn behaviour(t: &dyn Transport) {
    let table = behaviours();
    for (method, template) in endpoints(REFERENCE) {
        let Some((_, _, test)) = table
            .iter()
            .find(|(m, p, _)| *m == method && *p == template)
        else {
            panic!("{method} {template}: no behaviour test");
        };
        test(t);
    }
}

fn call(t: &dyn Transport, method: &str, path: &str, body: Option<Value>) -> Reply {
    t.call(method, path, Some(KEY), body.as_ref())
}

fn errors_of(r: &Reply, field: &str) -> String {
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body["message"].is_string(), "{}", r.body);
    r.body["errors"][field][0]
        .as_str()
        .unwrap_or_else(|| panic!("no error for {field}: {}", r.body))
        .to_string()
}

fn list_flows(t: &dyn Transport) {
    for n in 0..3 {
        let mut doc = order_sync();
        doc["flow"]["name"] = Value::from(format!("Listed {n}"));
        ok(t, "POST", "/api/v1/flows/import", Some(&doc));
    }
    let r = call(
        t,
        "GET",
        "/api/v1/flows?filter[name]=listed&sort=-name&per_page=2&page=1&include=versions_count",
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let names: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Listed 2", "Listed 1"]);
    assert_eq!(r.body["meta"]["total"], 3);
    assert_eq!(r.body["meta"]["last_page"], 2);
    assert_eq!(r.body["data"][0]["versions_count"], 2);
    assert!(r.body["links"]["next"].as_str().unwrap().contains("page=2"));
    let r = call(
        t,
        "GET",
        "/api/v1/flows?fields[flows]=id,name&filter[name]=Listed 0",
        None,
    );
    let keys: Vec<&String> = r.body["data"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "name"]);
    assert_eq!(
        errors_of(
            &call(t, "GET", "/api/v1/flows?per_page=101", None),
            "per_page"
        ),
        "The per page must be an integer between 1 and 100."
    );
    let long = vec!["-bogus"; 2500].join(",");
    let r = call(t, "GET", &format!("/api/v1/flows?sort={long}"), None);
    assert!(errors_of(&r, "sort").starts_with("Requested sort(s) `bogus` is not allowed"));
    let long = vec!["name"; 2500].join(",");
    assert_eq!(
        call(t, "GET", &format!("/api/v1/flows?sort={long}"), None).status,
        200
    );
    assert!(
        errors_of(
            &call(t, "GET", "/api/v1/flows?include=secrets", None),
            "include"
        )
        .contains("not allowed")
    );
    let r = call(
        t,
        "GET",
        "/api/v1/flows?filter[deployed]=true&filter[name]=Listed",
        None,
    );
    assert_eq!(r.body["meta"]["total"], 0);
    let r = call(t, "GET", "/api/v1/flows?filter[marketplace_app_id]=5", None);
    assert_eq!(r.body["meta"]["total"], 0);
}

fn create_flow(t: &dyn Transport) {
    let r = call(
        t,
        "POST",
        "/api/v1/flows",
        Some(json!({"flow": {"name": "Blank", "description": "d", "prod_flag": true}})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let flow = &r.body["data"];
    assert_eq!(flow["name"], "Blank");
    assert_eq!(flow["prod_flag"], true);
    assert_eq!(flow["enabled_at"], Value::Null);
    assert_eq!(flow["versions"][0]["status"], "Draft");
    let id = flow["id"].as_u64().unwrap();
    let doc = ok(
        t,
        "POST",
        "/api/v1/flows/export",
        Some(&json!({"flow_id": id})),
    );
    assert_eq!(doc["flow"]["versions"][0]["iteration"], 1);
    let r = call(
        t,
        "POST",
        "/api/v1/flows",
        Some(json!({"flow": {"name": "\u{0}"}})),
    );
    assert_eq!(
        errors_of(&r, "flow.name"),
        "The flow.name field must not contain control characters."
    );
    let r = call(t, "POST", "/api/v1/flows", Some(json!({"flow": {}})));
    assert_eq!(
        errors_of(&r, "flow.name"),
        "The flow.name field is required."
    );
    let r = call(t, "POST", "/api/v1/flows", Some(json!([1])));
    assert_eq!(
        errors_of(&r, "body"),
        "The request body must be a JSON object."
    );
}

fn export_flow(t: &dyn Transport) {
    let f = fixture(t);
    ok(
        t,
        "PUT",
        &format!("/api/v1/flows/{}", f.flow),
        Some(&json!({"flow": {"priority": 5}})),
    );
    let doc = ok(
        t,
        "POST",
        "/api/v1/flows/export",
        Some(&json!({"flow_id": f.flow})),
    );
    assert_eq!(doc["flow"]["priority"], 5);
    assert_eq!(doc["flow"]["versions"][0]["status"], "Deployed");
    assert_eq!(doc["flow"]["versions"][1]["status"], "Draft");
    assert!(doc["metadata"].get("format_version").is_none());
    let r = call(t, "POST", "/api/v1/flows/export", Some(json!({})));
    assert_eq!(errors_of(&r, "flow_id"), "The flow id field is required.");
}

fn import_flow(t: &dyn Transport) {
    let legacy: Value = serde_json::from_str(LEGACY).unwrap();
    let flow = ok(t, "POST", "/api/v1/flows/import", Some(&legacy))["data"].clone();
    assert_eq!(flow["enabled_at"], Value::Null);
    assert_eq!(flow["versions"][0]["status"], "Draft");
    let doc = ok(
        t,
        "POST",
        "/api/v1/flows/export",
        Some(&json!({"flow_id": flow["id"]})),
    );
    let step = &doc["flow"]["versions"][0]["steps"][0];
    assert_eq!(step["type"], "try-catch", "migrated to version 2: {step}");
    assert!(step.get("microservice").is_none());
    let mut strings = order_sync();
    strings["flow"] = Value::from(strings["flow"].to_string());
    strings["metadata"] = Value::from(strings["metadata"].to_string());
    let flow = ok(t, "POST", "/api/v1/flows/import", Some(&strings))["data"].clone();
    assert_eq!(flow["name"], "Shopify > NetSuite Orders");
    let r = call(
        t,
        "POST",
        "/api/v1/flows/import",
        Some(json!({"metadata": {}})),
    );
    assert_eq!(errors_of(&r, "flow"), "The flow field is required.");
}

fn run_endpoint(t: &dyn Transport, kind: &str) {
    let f = fixture(t);
    let path = format!("/api/v1/flows/{}/{kind}/{}", f.flow, f.deployed);
    let run = ok(t, "POST", &path, Some(&json!({"payload": "{}"})))["data"].clone();
    assert_eq!(run["flow_id"], f.flow);
    assert_eq!(run["version_id"], f.deployed);
    assert_eq!(run["status"], "queued");
    let draft = format!("/api/v1/flows/{}/{kind}/{}", f.flow, f.draft);
    assert!(
        errors_of(
            &call(t, "POST", &draft, Some(json!({"payload": "{}"}))),
            "version_id"
        )
        .contains("not deployed")
    );
    let r = call(
        t,
        "POST",
        &path,
        Some(json!({"payload": "{}", "flow_id": f.flow + 1})),
    );
    assert_eq!(
        errors_of(&r, "flow_id"),
        format!(
            "The flow_id field ({}) must match the path ({}).",
            f.flow + 1,
            f.flow
        )
    );
    assert_eq!(
        errors_of(&call(t, "POST", &path, Some(json!({}))), "payload"),
        "The payload field is required."
    );
    let runs = ok(
        t,
        "GET",
        &format!(
            "/api/v1/flows/{}/versions/{}?include=runs_count,latestRun",
            f.flow, f.deployed
        ),
        None,
    );
    assert_eq!(runs["data"]["runs_count"], 1);
    assert_eq!(runs["data"]["latest_run"]["status"], "succeeded");
}

fn manual_run(t: &dyn Transport) {
    run_endpoint(t, "manual");
}

fn start_run(t: &dyn Transport) {
    run_endpoint(t, "start");
}

fn show_flow(t: &dyn Transport) {
    let f = fixture(t);
    ok(
        t,
        "PUT",
        &format!("/api/v1/flows/{}", f.flow),
        Some(&json!({
            "flow": {"prod_flag": true, "use_queued_time": true, "remove_failed_payloads": true},
            "labels": [{"id": 4}, {"id": 9}], "notification_groups": [2]
        })),
    );
    ok(
        t,
        "PATCH",
        &format!("/api/v1/flows/{}/layout-direction", f.flow),
        Some(&json!({"layout_direction": "horizontal"})),
    );
    let flow = ok(
        t,
        "GET",
        &format!(
            "/api/v1/flows/{}?include=versions,deployedVersion.steps,webhooks_count,callbacks",
            f.flow
        ),
        None,
    )["data"]
        .clone();
    assert_eq!(flow["prod_flag"], true);
    assert_eq!(flow["use_queued_time"], true);
    assert_eq!(flow["remove_failed_payloads"], true);
    assert_eq!(flow["layout_direction"], "horizontal");
    assert_eq!(flow["labels"], json!([4, 9]));
    assert_eq!(flow["notification_groups"], json!([2]));
    assert_eq!(flow["versions"].as_array().unwrap().len(), 2);
    assert_eq!(flow["deployed_version"]["id"], f.deployed);
    assert!(
        !flow["deployed_version"]["steps"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(flow["webhooks_count"], 1);
    assert_eq!(flow["callbacks"][0]["id"], f.callback);
    let flow = ok(t, "GET", &format!("/api/v1/flows/{}?include=labels,notificationGroups,notificationGroups_count,labelsExists", f.flow), None)["data"].clone();
    assert_eq!(flow["labels"], json!([4, 9]), "always ids");
    assert_eq!(flow["notification_groups"], json!([2]), "always ids");
    assert_eq!(flow["notification_groups_count"], 1);
    assert_eq!(flow["labels_exists"], true);
}

fn update_flow(t: &dyn Transport) {
    let f = fixture(t);
    let path = format!("/api/v1/flows/{}", f.flow);
    let flow = ok(
        t,
        "PUT",
        &path,
        Some(&json!({"flow": {
        "name": "Renamed", "description": null, "enabled_at": "2026-03-01T10:00:00+02:00",
        "priority": 1, "prod_flag": 1, "use_queued_time": "true", "remove_failed_payloads": false
    }, "labels": [{"id": 3}], "notification_groups": [7, 8]})),
    )["data"]
        .clone();
    assert_eq!(flow["name"], "Renamed");
    assert_eq!(flow["description"], Value::Null);
    assert_eq!(flow["enabled_at"], "2026-03-01T08:00:00Z");
    assert_eq!(flow["priority"], 1);
    assert_eq!(flow["prod_flag"], true);
    assert_eq!(flow["use_queued_time"], true);
    assert_eq!(flow["labels"], json!([3]));
    assert_eq!(flow["notification_groups"], json!([7, 8]));
    assert_eq!(
        errors_of(
            &call(t, "PUT", &path, Some(json!({"flow": {"priority": 9}}))),
            "flow.priority"
        ),
        "The flow.priority field must be an integer between 1 and 5."
    );
    assert_eq!(
        errors_of(
            &call(
                t,
                "PUT",
                &path,
                Some(json!({"flow": {"name": "\u{1}\u{2}"}}))
            ),
            "flow.name"
        ),
        "The flow.name field must not contain control characters."
    );
    assert_eq!(
        errors_of(
            &call(t, "PUT", &path, Some(json!({"labels": "x"}))),
            "labels"
        ),
        "The labels field must be a list of ids (or of {id} objects)."
    );
}

fn destroy_flow(t: &dyn Transport) {
    let f = fixture(t);
    let path = format!("/api/v1/flows/{}", f.flow);
    let r = ok(t, "DELETE", &path, None);
    assert_eq!(r["message"], format!("Flow {} deleted.", f.flow));
    assert_eq!(call(t, "GET", &path, None).status, 404);
    assert_eq!(
        call(t, "GET", &format!("{path}/webhooks"), None).status,
        404
    );
}

fn list_callbacks(t: &dyn Transport) {
    let f = fixture(t);
    let list = ok(
        t,
        "GET",
        &format!("/api/v1/flows/{}/callbacks", f.flow),
        None,
    );
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["status"], "active");
    assert_eq!(list["data"][0]["flow_id"], f.flow);
}

fn create_callback(t: &dyn Transport) {
    let f = fixture(t);
    let path = format!("/api/v1/flows/{}/callbacks", f.flow);
    let cb = ok(
        t,
        "POST",
        &path,
        Some(&json!({"status": "Any Status ✓", "format": "xml"})),
    )["data"]
        .clone();
    assert_eq!(cb["status"], "Any Status ✓", "stored verbatim");
    assert_eq!(cb["format"], "xml");
    let long = "x".repeat(65);
    assert_eq!(
        errors_of(
            &call(t, "POST", &path, Some(json!({"status": long}))),
            "status"
        ),
        "The status field must not be longer than 64 characters."
    );
    assert_eq!(
        errors_of(
            &call(t, "POST", &path, Some(json!({"format": ""}))),
            "format"
        ),
        "The format field must not be empty."
    );
}

fn update_callback(t: &dyn Transport) {
    let f = fixture(t);
    let path = format!("/api/v1/flows/{}/callbacks/{}", f.flow, f.callback);
    let cb = ok(t, "PUT", &path, Some(&json!({"format": "csv"})))["data"].clone();
    assert_eq!(
        (cb["status"].as_str(), cb["format"].as_str()),
        (Some("active"), Some("csv"))
    );
    assert_eq!(
        errors_of(&call(t, "PUT", &path, Some(json!({"status": 3}))), "status"),
        "The status field must be a string."
    );
}

fn destroy_callback(t: &dyn Transport) {
    let f = fixture(t);
    let path = format!("/api/v1/flows/{}/callbacks/{}", f.flow, f.callback);
    ok(t, "DELETE", &path, None);
    assert_eq!(call(t, "DELETE", &path, None).status, 404);
    let list = ok(
        t,
        "GET",
        &format!("/api/v1/flows/{}/callbacks", f.flow),
        None,
    );
    assert_eq!(list["data"], json!([]));
}

fn duplicate_flow(t: &dyn Transport) {
    let f = fixture(t);
    let path = format!("/api/v1/flows/{}/duplicate", f.flow);
    let copy = ok(
        t,
        "POST",
        &path,
        Some(&json!({"flow_version_id": f.deployed.to_string()})),
    )["data"]
        .clone();
    assert_eq!(copy["name"], "Shopify > NetSuite Orders (copy)");
    assert_eq!(copy["enabled_at"], Value::Null);
    let versions = copy["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(
        (
            versions[0]["iteration"].as_i64(),
            versions[0]["status"].as_str()
        ),
        (Some(7), Some("Draft"))
    );
    let doc = ok(
        t,
        "POST",
        "/api/v1/flows/export",
        Some(&json!({"flow_id": copy["id"]})),
    );
    assert_eq!(doc["flow"]["name"], "Shopify > NetSuite Orders (copy)");
    assert!(
        errors_of(
            &call(t, "POST", &path, Some(json!({"flow_version_id": UNKNOWN}))),
            "flow_version_id"
        )
        .contains("invalid")
    );
    assert_eq!(
        errors_of(&call(t, "POST", &path, Some(json!({}))), "flow_version_id"),
        "The flow version id field is required."
    );
}

fn layout_direction(t: &dyn Transport) {
    let f = fixture(t);
    let path = format!("/api/v1/flows/{}/layout-direction", f.flow);
    let r = call(
        t,
        "PATCH",
        &path,
        Some(json!({"layout_direction": "vertical"})),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let flow = ok(t, "GET", &format!("/api/v1/flows/{}", f.flow), None);
    assert_eq!(flow["data"]["layout_direction"], "vertical");
    assert_eq!(
        errors_of(
            &call(t, "PATCH", &path, Some(json!({}))),
            "layout_direction"
        ),
        "The layout direction field is required."
    );
}

fn version_metrics(t: &dyn Transport) {
    let f = fixture(t);
    for _ in 0..3 {
        ok(
            t,
            "POST",
            &format!("/api/v1/flows/{}/start/{}", f.flow, f.deployed),
            Some(&json!({"payload": "p"})),
        );
    }
    let m = ok(t, "GET", &format!("/api/v1/flows/{}/version-metrics?interval_unit=day&interval_start=2000-01-01T00:00:00Z&interval_end=2000-01-03T00:00:00Z", f.flow), None)["data"].clone();
    assert_eq!(m["interval_unit"], "day");
    assert_eq!(m["buckets"].as_array().unwrap().len(), 2);
    assert_eq!(
        m["buckets"][0],
        json!({"start": "2000-01-01T00:00:00Z", "runs": 0})
    );
    let now = ok(
        t,
        "GET",
        &format!("/api/v1/flows/{}/version-metrics", f.flow),
        None,
    )["data"]
        .clone();
    let runs: u64 = now["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["runs"].as_u64().unwrap())
        .sum();
    assert_eq!(runs, 3, "{now}");
    let r = call(
        t,
        "GET",
        &format!(
            "/api/v1/flows/{}/version-metrics?interval_unit=minute&interval_start=2000-01-01T00:00:00Z&interval_end=2100-01-01T00:00:00Z",
            f.flow
        ),
        None,
    );
    assert!(errors_of(&r, "interval_unit").contains("at most 1000 buckets"));
    assert_eq!(
        errors_of(
            &call(
                t,
                "GET",
                &format!(
                    "/api/v1/flows/{}/version-metrics?interval_unit=fortnight",
                    f.flow
                ),
                None
            ),
            "interval_unit"
        ),
        "The interval_unit field must be one of minute, hour, day, week."
    );
}

fn list_versions(t: &dyn Transport) {
    let f = fixture(t);
    let base = format!("/api/v1/flows/{}/versions", f.flow);
    let r = ok(t, "GET", &format!("{base}?include=steps_count,runs"), None);
    let list = r["data"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["status"], "Deployed");
    assert!(list[0]["steps_count"].as_u64().unwrap() > 0);
    assert_eq!(list[0]["runs"], json!([]));
    assert_eq!(r["meta"]["total"], 2);
    let page = ok(
        t,
        "GET",
        &format!("{base}?per_page=1&page=2&sort=-created_at"),
        None,
    );
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["meta"]["last_page"], 2);
    assert!(
        errors_of(
            &call(t, "GET", &format!("{base}?sort=iteration"), None),
            "sort"
        )
        .contains("not allowed")
    );
}

fn create_version(t: &dyn Transport) {
    let f = fixture(t);
    let base = format!("/api/v1/flows/{}/versions", f.flow);
    let v = ok(t, "POST", &base, None)["data"].clone();
    assert_eq!(
        (v["iteration"].as_i64(), v["status"].as_str()),
        (Some(9), Some("Draft"))
    );
    let list = ok(t, "GET", &base, None)["data"].clone();
    let statuses: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["Deployed", "Inactive", "Draft"]);
    let doc = ok(
        t,
        "POST",
        "/api/v1/flows/export",
        Some(&json!({"flow_id": f.flow})),
    );
    assert_eq!(doc["flow"]["versions"][2]["iteration"], 9);
    assert_eq!(
        doc["flow"]["versions"][2]["steps"], doc["flow"]["versions"][1]["steps"],
        "copied from the newest"
    );
}

fn show_version(t: &dyn Transport) {
    let f = fixture(t);
    let v = ok(
        t,
        "GET",
        &format!(
            "/api/v1/flows/{}/versions/{}?include=variables,latestRun",
            f.flow, f.deployed
        ),
        None,
    )["data"]
        .clone();
    assert_eq!(v["iteration"], 7);
    assert_eq!(v["is_deployed"], true);
    assert_eq!(v["variables"][0]["key"], "NETSUITE_SUBSIDIARY");
    assert_eq!(v["latest_run"], Value::Null);
}

fn update_version(t: &dyn Transport) {
    let f = fixture(t);
    let path = format!("/api/v1/flows/{}/versions/{}", f.flow, f.draft);
    let v = ok(
        t,
        "PUT",
        &path,
        Some(&json!({"deployed_at": "2026-02-01T00:00:00Z"})),
    )["data"]
        .clone();
    assert_eq!(v["status"], "Deployed");
    let old = ok(
        t,
        "GET",
        &format!("/api/v1/flows/{}/versions/{}", f.flow, f.deployed),
        None,
    );
    assert_eq!(old["data"]["status"], "Inactive");
    assert_eq!(
        errors_of(&call(t, "PUT", &path, Some(json!("x"))), "body"),
        "The request body must be a JSON object."
    );
    assert_eq!(
        errors_of(&call(t, "PUT", &path, Some(json!([]))), "body"),
        "The request body must be a JSON object."
    );
    assert!(
        errors_of(
            &call(t, "PUT", &path, Some(json!({"deployed_at": "soon"}))),
            "deployed_at"
        )
        .contains("RFC 3339")
    );
    let v = ok(t, "PUT", &path, Some(&json!({"deployed_at": null})))["data"].clone();
    assert_eq!(v["status"], "Inactive");
}

fn destroy_version(t: &dyn Transport) {
    let f = fixture(t);
    let deployed = format!("/api/v1/flows/{}/versions/{}", f.flow, f.deployed);
    assert!(errors_of(&call(t, "DELETE", &deployed, None), "version").contains("is deployed"));
    let draft = format!("/api/v1/flows/{}/versions/{}", f.flow, f.draft);
    ok(t, "DELETE", &draft, None);
    assert_eq!(call(t, "GET", &draft, None).status, 404);
    let doc = ok(
        t,
        "POST",
        "/api/v1/flows/export",
        Some(&json!({"flow_id": f.flow})),
    );
    assert_eq!(doc["flow"]["versions"].as_array().unwrap().len(), 1);
}

fn copy_version(t: &dyn Transport) {
    let f = fixture(t);
    let v = ok(
        t,
        "POST",
        &format!("/api/v1/flows/{}/versions/{}/copy", f.flow, f.deployed),
        None,
    )["data"]
        .clone();
    assert_eq!(
        (v["iteration"].as_i64(), v["status"].as_str()),
        (Some(9), Some("Draft"))
    );
    let old_draft = ok(
        t,
        "GET",
        &format!("/api/v1/flows/{}/versions/{}", f.flow, f.draft),
        None,
    );
    assert_eq!(old_draft["data"]["status"], "Inactive");
    let doc = ok(
        t,
        "POST",
        "/api/v1/flows/export",
        Some(&json!({"flow_id": f.flow})),
    );
    assert_eq!(
        doc["flow"]["versions"][2]["steps"], doc["flow"]["versions"][0]["steps"],
        "copied from the given version"
    );
}

fn list_webhooks(t: &dyn Transport) {
    let f = fixture(t);
    let list = ok(
        t,
        "GET",
        &format!("/api/v1/flows/{}/webhooks", f.flow),
        None,
    )["data"]
        .clone();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let keys: Vec<&String> = list[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "flow_id",
            "status",
            "format",
            "body",
            "hmac_algorithm",
            "has_hmac_secret_key",
            "created_at",
            "updated_at"
        ]
    );
}

fn create_webhook(t: &dyn Transport) {
    let f = fixture(t);
    let path = format!("/api/v1/flows/{}/webhooks", f.flow);
    let w = ok(t, "POST", &path, Some(&json!({"status": "on", "format": "form", "body": "b", "hmac_algorithm": "sha1", "hmac_secret_key": "ignored"})))["data"].clone();
    assert_eq!(w["body"], "b");
    assert_eq!(
        w["hmac_algorithm"],
        Value::Null,
        "hmac_* are set by PUT only"
    );
    assert_eq!(w["has_hmac_secret_key"], false);
    let w = ok(t, "POST", &path, Some(&json!({})))["data"].clone();
    assert_eq!(
        (w["status"].as_str(), w["format"].as_str()),
        (Some("active"), Some("json"))
    );
    assert_eq!(
        errors_of(&call(t, "POST", &path, Some(json!({"body": 5}))), "body"),
        "The body field must be a string or null."
    );
}

fn update_webhook(t: &dyn Transport) {
    let f = fixture(t);
    let path = format!("/api/v1/flows/{}/webhooks/{}", f.flow, f.webhook);
    let r = call(
        t,
        "PUT",
        &path,
        Some(json!({"hmac_algorithm": "sha256", "hmac_secret_key": "k".repeat(128)})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["has_hmac_secret_key"], true);
    assert!(
        !r.body.to_string().contains(&"k".repeat(128)),
        "the secret is write-only"
    );
    assert_eq!(
        errors_of(
            &call(
                t,
                "PUT",
                &path,
                Some(json!({"hmac_secret_key": "k".repeat(129)}))
            ),
            "hmac_secret_key"
        ),
        "The hmac_secret_key field must not be longer than 128 characters."
    );
    let w = ok(
        t,
        "PUT",
        &path,
        Some(&json!({"hmac_secret_key": null, "body": null})),
    )["data"]
        .clone();
    assert_eq!(w["has_hmac_secret_key"], false);
    assert_eq!(w["hmac_algorithm"], "sha256");
}

fn destroy_webhook(t: &dyn Transport) {
    let f = fixture(t);
    let path = format!("/api/v1/flows/{}/webhooks/{}", f.flow, f.webhook);
    let r = ok(t, "DELETE", &path, None);
    assert_eq!(r["message"], format!("Webhook {} deleted.", f.webhook));
    assert_eq!(call(t, "PUT", &path, Some(json!({}))).status, 404);
}

/// Malformed requests get 4xx, never 5xx.
pub fn malformed(t: &dyn Transport) {
    let f = fixture(t);
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/api/v1/flows?page=x".into(), None),
        ("GET", "/api/v1/flows?filter[enabled]=maybe".into(), None),
        (
            "GET",
            format!("/api/v1/flows?sort={}", vec!["-idx"; 2500].join(",")),
            None,
        ),
        (
            "GET",
            format!(
                "/api/v1/flows?include={}",
                (0..2500)
                    .map(|i| format!("versions{i}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            None,
        ),
        ("GET", "/api/v1/flows/abc".into(), None),
        ("GET", "/api/v1/flows/99999999999999999999999".into(), None),
        (
            "PUT",
            format!("/api/v1/flows/{}/versions/{}", f.flow, f.draft),
            Some(json!(7)),
        ),
        (
            "PUT",
            format!("/api/v1/flows/{}", f.flow),
            Some(json!({"flow": "x"})),
        ),
        (
            "POST",
            "/api/v1/flows/import".into(),
            Some(json!("not an object")),
        ),
        (
            "POST",
            "/api/v1/flows/export".into(),
            Some(json!({"flow_id": -1})),
        ),
        ("PATCH", "/api/v1/flows".into(), None),
        ("GET", "/api/v2/other".into(), None),
    ];
    for (method, path, body) in cases {
        let r = call(t, method, &path, body);
        let shown: String = path.chars().take(80).collect();
        let body: String = r.body.to_string().chars().take(300).collect();
        assert!(
            (400..500).contains(&r.status),
            "{method} {shown}: {} {body}",
            r.status
        );
    }
}
