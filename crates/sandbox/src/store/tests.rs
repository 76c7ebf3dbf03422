//! Tests of the store's semantics (in process, on an in-memory database).

use super::*;
use flowpack_client::Platform;
use flowpack_core::{Document, FormatVersion};

const ORDER_SYNC: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/reference/export-v2-order-sync.json"
));
const LEGACY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/reference/export-v1-legacy.json"
));
/// 2026-01-02T03:04:05Z
const NOW: i64 = 1_767_323_045;

fn store() -> Store {
    let clock = FixedClock(OffsetDateTime::from_unix_timestamp(NOW).unwrap());
    Store::open_in_memory(StoreOptions {
        clock: Arc::new(clock),
    })
    .unwrap()
}

fn order_sync() -> Value {
    serde_json::from_str(ORDER_SYNC).unwrap()
}

fn named(name: &str) -> Value {
    let mut doc = order_sync();
    doc["flow"]["name"] = Value::from(name);
    doc
}

fn statuses(flow: &Flow) -> Vec<(i64, String, bool)> {
    flow.versions
        .as_ref()
        .unwrap()
        .iter()
        .map(|v| (v.iteration, v.status.clone(), v.is_deployed))
        .collect()
}

fn field_errors(e: StoreError) -> (String, FieldErrors) {
    match e {
        StoreError::Validation { message, errors } => (message, errors),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

fn names(page: &Page<Flow>) -> Vec<&str> {
    page.data.iter().map(|f| f.name.as_str()).collect()
}

fn query(pairs: &[(&str, &str)]) -> ListQuery {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    parse_list_query(&pairs).unwrap()
}

#[test]
fn import_arrives_disabled_with_the_newest_version_as_draft() {
    let s = store();
    let flow = s.import(&order_sync(), None).unwrap();
    assert_eq!(flow.id, 1);
    assert_eq!(flow.name, "Shopify > NetSuite Orders");
    assert_eq!(flow.enabled_at, None);
    assert_eq!(flow.priority, Some(2));
    assert_eq!(flow.created_at.as_deref(), Some("2026-01-02T03:04:05Z"));
    assert_eq!(
        statuses(&flow),
        [(7, "Inactive".into(), false), (8, "Draft".into(), false)]
    );
}

#[test]
fn import_accepts_flow_and_metadata_as_json_strings() {
    let s = store();
    let mut doc = order_sync();
    doc["flow"] = Value::from(doc["flow"].to_string());
    doc["metadata"] = Value::from(doc["metadata"].to_string());
    doc["as_marketplace"] = Value::from("1");
    let flow = s.import(&doc, None).unwrap();
    assert_eq!(flow.name, "Shopify > NetSuite Orders");
    assert_eq!(statuses(&flow).len(), 2);
    let exported = s.export(flow.id).unwrap();
    assert!(exported["flow"].is_object(), "stored decoded: {exported}");
    assert!(exported.get("as_marketplace").is_none());
}

#[test]
fn import_refuses_missing_and_malformed_parts() {
    let s = store();
    let (message, errors) = field_errors(s.import(&serde_json::json!({}), None).unwrap_err());
    assert_eq!(message, "The flow field is required. (and 1 more error)");
    assert_eq!(errors["flow"], ["The flow field is required."]);
    assert_eq!(errors["metadata"], ["The metadata field is required."]);

    let mut doc = order_sync();
    doc["flow"] = Value::from("{not json");
    let (_, errors) = field_errors(s.import(&doc, None).unwrap_err());
    assert!(
        errors["flow"][0].starts_with("The flow field must be a valid JSON string:"),
        "{errors:?}"
    );
    assert_eq!(s.list(&ListQuery::default()).unwrap().meta.total, 0);
}

#[test]
fn import_refuses_a_flow_without_name_or_versions() {
    let s = store();
    let mut doc = order_sync();
    doc["flow"]["name"] = Value::from(" ");
    doc["flow"]["versions"] = serde_json::json!([]);
    let (_, errors) = field_errors(s.import(&doc, None).unwrap_err());
    assert_eq!(errors["flow.name"], ["The flow.name field is required."]);
    assert_eq!(
        errors["flow.versions"],
        ["The flow.versions field must list at least one version."]
    );
}

#[test]
fn import_migrates_version_1_documents_and_exports_version_2() {
    let s = store();
    let legacy: Value = serde_json::from_str(LEGACY).unwrap();
    let flow = s.import(&legacy, None).unwrap();
    assert_eq!(flow.name, "Shopify > HubSpot Customers");
    let exported = s.export(flow.id).unwrap();
    let doc = Document::from_value(exported.clone(), "export").unwrap();
    assert_eq!(doc.format_version(), FormatVersion::V2);
    // The migration of `flowpack migrate`, exactly: same steps, connections and iterations.
    let migrated = flowpack_core::migrate::migrate(
        Document::from_value(legacy, "legacy").unwrap(),
        &flowpack_core::migrate::MigrateOptions::new(flowpack_core::migrate::Target::Version(2)),
    )
    .unwrap()
    .document;
    assert_eq!(
        exported["flow"]["versions"][0]["steps"],
        migrated.value()["flow"]["versions"][0]["steps"]
    );
    assert_eq!(
        exported["flow"]["versions"][0]["connections"],
        migrated.value()["flow"]["versions"][0]["connections"]
    );
    assert_eq!(exported["flow"]["versions"][0]["iteration"], 1);
    assert!(exported["metadata"].get("format_version").is_none());
}

#[test]
fn a_name_of_nul_or_control_characters_is_refused() {
    let s = store();
    let mut doc = order_sync();
    doc["flow"]["name"] = Value::from("\u{0}\u{1}");
    let (_, errors) = field_errors(s.import(&doc, None).unwrap_err());
    assert_eq!(
        errors["flow.name"],
        ["The flow.name field must not be NUL or control characters."]
    );
    s.import(&order_sync(), None).unwrap();
    let (_, errors) = field_errors(
        s.update(
            1,
            &FlowChanges {
                name: Some("a\u{0}b".into()),
                ..FlowChanges::default()
            },
        )
        .unwrap_err(),
    );
    assert_eq!(
        errors["flow.name"],
        ["The flow.name field must not contain control characters."]
    );
}

#[test]
fn idempotency_key_replays_the_first_response_and_creates_nothing() {
    let s = store();
    let first = s.import(&order_sync(), Some("k-1")).unwrap();
    let again = s.import(&named("Other"), Some("k-1")).unwrap();
    assert_eq!(first, again);
    assert_eq!(s.list(&ListQuery::default()).unwrap().meta.total, 1);
    let other = s.import(&order_sync(), Some("k-2")).unwrap();
    assert_eq!(other.id, 2);
}

#[test]
fn pagination_math() {
    let s = store();
    for n in 1..=5 {
        s.import(&named(&format!("Flow {n}")), None).unwrap();
    }
    let page = s.list(&query(&[("page", "3"), ("per_page", "2")])).unwrap();
    assert_eq!(names(&page), ["Flow 5"]);
    assert_eq!(
        page.meta,
        PageMeta {
            current_page: 3,
            last_page: 3,
            per_page: 2,
            total: 5
        }
    );
    let past = s.list(&query(&[("page", "4"), ("per_page", "2")])).unwrap();
    assert!(past.data.is_empty());
    assert_eq!(past.meta.last_page, 3);
    let default = s.list(&ListQuery::default()).unwrap();
    assert_eq!(default.meta.per_page, 15);
    assert_eq!(default.meta.last_page, 1);
    let empty = store().list(&ListQuery::default()).unwrap();
    assert_eq!((empty.meta.total, empty.meta.last_page), (0, 1));
}

#[test]
fn per_page_and_page_out_of_range_are_refused() {
    let pairs = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    let (_, errors) = field_errors(parse_list_query(&pairs("per_page", "101")).unwrap_err());
    assert_eq!(
        errors["per_page"],
        ["The per page must be an integer between 1 and 100."]
    );
    let (_, errors) = field_errors(parse_list_query(&pairs("per_page", "0")).unwrap_err());
    assert!(errors.contains_key("per_page"));
    let (_, errors) = field_errors(parse_list_query(&pairs("page", "0")).unwrap_err());
    assert_eq!(
        errors["page"],
        ["The page must be an integer of at least 1."]
    );
    let q = ListQuery {
        per_page: 500,
        ..ListQuery::default()
    };
    assert!(matches!(
        store().list(&q),
        Err(StoreError::Validation { .. })
    ));
}

#[test]
fn filters_by_name_substring_case_insensitively_and_by_enabled() {
    let s = store();
    for name in ["Orders Sync", "Stock levels", "orders backfill"] {
        s.import(&named(name), None).unwrap();
    }
    s.update(
        3,
        &FlowChanges {
            enabled_at: Some(Some("2026-01-01T10:00:00+02:00".into())),
            ..FlowChanges::default()
        },
    )
    .unwrap();
    let page = s.list(&query(&[("filter[name]", "ORDERS")])).unwrap();
    assert_eq!(names(&page), ["Orders Sync", "orders backfill"]);
    let enabled = s.list(&query(&[("filter[enabled]", "1")])).unwrap();
    assert_eq!(names(&enabled), ["orders backfill"]);
    assert_eq!(
        enabled.data[0].enabled_at.as_deref(),
        Some("2026-01-01T08:00:00Z")
    );
    let disabled = s
        .list(&query(&[
            ("filter[enabled]", "false"),
            ("filter[name]", "orders"),
        ]))
        .unwrap();
    assert_eq!(names(&disabled), ["Orders Sync"]);
    let bad = vec![("filter[enabled]".to_string(), "yes".to_string())];
    let (_, errors) = field_errors(parse_list_query(&bad).unwrap_err());
    assert_eq!(
        errors["filter[enabled]"],
        ["The filter[enabled] must be one of true, false, 1, 0."]
    );
}

#[test]
fn sorts_ascending_descending_and_refuses_unknown() {
    let s = store();
    for name in ["beta", "Alpha", "gamma"] {
        s.import(&named(name), None).unwrap();
    }
    s.update(
        1,
        &FlowChanges {
            enabled_at: Some(Some("2026-03-01T00:00:00Z".into())),
            ..FlowChanges::default()
        },
    )
    .unwrap();
    s.update(
        3,
        &FlowChanges {
            enabled_at: Some(Some("2026-02-01T00:00:00Z".into())),
            ..FlowChanges::default()
        },
    )
    .unwrap();
    let sorted = |sort: &str| {
        let page = s.list(&query(&[("sort", sort)])).unwrap();
        names(&page)
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(sorted("name"), ["Alpha", "beta", "gamma"]);
    assert_eq!(sorted("-name"), ["gamma", "beta", "Alpha"]);
    assert_eq!(sorted("-id"), ["gamma", "Alpha", "beta"]);
    assert_eq!(sorted("enabled_at"), ["Alpha", "gamma", "beta"]);
    assert_eq!(sorted("-enabled_at,name"), ["beta", "gamma", "Alpha"]);
    assert_eq!(sorted("created_at"), ["beta", "Alpha", "gamma"]);
    // A sort repeating its keys thousands of times costs one term per key (SQLite refuses
    // ORDER BY clauses of 2,000+ terms with an internal error).
    let long = vec!["-name"; 3000].join(",");
    assert_eq!(sorted(&long), ["gamma", "beta", "Alpha"]);
    let through_list = ListQuery {
        sort: Some("priority".into()),
        ..ListQuery::default()
    };
    let (_, errors) = field_errors(s.list(&through_list).unwrap_err());
    assert_eq!(
        errors["sort"],
        [
            "Requested sort(s) `priority` is not allowed. Allowed sort(s) are `name, enabled_at, created_at, id`."
        ]
    );
}

#[test]
fn include_versions_is_supported_and_other_includes_ignored() {
    let s = store();
    s.import(&order_sync(), None).unwrap();
    let plain = s.list(&query(&[("include", "latestVersion")])).unwrap();
    assert_eq!(plain.data[0].versions, None);
    let with = s
        .list(&query(&[("include", "latestVersion,versions")]))
        .unwrap();
    assert_eq!(with.data[0].versions.as_ref().map(Vec::len), Some(2));
    assert_eq!(s.show(1, false).unwrap().versions, None);
}

#[test]
fn deploying_switches_the_deployed_version_and_null_undeploys() {
    let s = store();
    let flow = s.import(&order_sync(), None).unwrap();
    let ids: Vec<VersionId> = flow.versions.unwrap().iter().map(|v| v.id).collect();
    let v8 = s.deploy(1, ids[1], Some("2026-01-05T00:00:00Z")).unwrap();
    assert_eq!((v8.status.as_str(), v8.is_deployed), ("Deployed", true));
    assert_eq!(v8.deployed_at.as_deref(), Some("2026-01-05T00:00:00Z"));
    s.deploy(1, ids[0], Some("2026-01-06T00:00:00Z")).unwrap();
    assert_eq!(
        statuses(&s.show(1, true).unwrap()),
        [(7, "Deployed".into(), true), (8, "Inactive".into(), false)]
    );
    let undeployed = s.deploy(1, ids[0], None).unwrap();
    assert_eq!(
        (undeployed.status.as_str(), undeployed.deployed_at),
        ("Inactive", None)
    );
    let err = s.deploy(1, 99, Some("2026-01-06T00:00:00Z")).unwrap_err();
    assert_eq!(err.to_string(), "Version 99 of flow 1 not found.");
    let (_, errors) = field_errors(s.deploy(1, ids[0], Some("tomorrow")).unwrap_err());
    assert_eq!(
        errors["deployed_at"],
        ["The deployed_at field must be an RFC 3339 date-time, found `tomorrow`."]
    );
}

#[test]
fn export_reflects_the_current_state_without_a_format_stamp() {
    let s = store();
    let mut doc = order_sync();
    doc["metadata"]["format_version"] = Value::from(2);
    let flow = s.import(&doc, None).unwrap();
    let v7 = flow.versions.unwrap()[0].id;
    s.deploy(1, v7, Some("2026-01-05T00:00:00Z")).unwrap();
    s.update(
        1,
        &FlowChanges {
            enabled_at: Some(Some("2026-01-05T00:00:00Z".into())),
            priority: Some(4),
            ..FlowChanges::default()
        },
    )
    .unwrap();
    let out = s.export(1).unwrap();
    assert_eq!(out["metadata"]["exported_at"], "2026-01-02T03:04:05Z");
    assert!(out["metadata"].get("format_version").is_none());
    assert_eq!(out["flow"]["is_enabled"], true);
    assert_eq!(out["flow"]["priority"], 4);
    let versions = out["flow"]["versions"].as_array().unwrap();
    assert_eq!(versions[0]["status"], "Deployed");
    assert_eq!(versions[0]["is_deployed"], true);
    assert_eq!(versions[0]["flow_priority"], 4);
    assert_eq!(versions[1]["status"], "Draft");
    assert_eq!(versions[1]["is_deployed"], false);
    // Everything else is the imported document, key order included.
    let mut expected = order_sync();
    expected["metadata"]["exported_at"] = out["metadata"]["exported_at"].clone();
    expected["flow"] = out["flow"].clone();
    assert_eq!(out, expected);
    let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["metadata", "flow", "systems", "scripts", "dependencies"]
    );
    let detected = Document::from_value(out, "export").unwrap();
    assert_eq!(detected.format_version(), FormatVersion::V2);
}

#[test]
fn update_validates_priority_and_delete_removes() {
    let s = store();
    s.import(&order_sync(), None).unwrap();
    let (_, errors) = field_errors(
        s.update(
            1,
            &FlowChanges {
                priority: Some(6),
                ..FlowChanges::default()
            },
        )
        .unwrap_err(),
    );
    assert_eq!(
        errors["flow.priority"],
        ["The flow.priority field must be an integer between 1 and 5."]
    );
    let changes = FlowChanges::from_body(&serde_json::json!({
        "flow": {"name": "Renamed", "description": null, "enabled_at": null, "priority": 1}
    }))
    .unwrap();
    let flow = s.update(1, &changes).unwrap();
    assert_eq!(
        (flow.name.as_str(), flow.priority, flow.description),
        ("Renamed", Some(1), None)
    );
    assert_eq!(s.export(1).unwrap()["metadata"]["flow_name"], "Renamed");
    s.delete(1).unwrap();
    assert_eq!(
        s.show(1, false).unwrap_err().to_string(),
        "Flow 1 not found."
    );
    assert_eq!(s.delete(1).unwrap_err().to_string(), "Flow 1 not found.");
    assert_eq!(s.versions(1).unwrap_err().to_string(), "Flow 1 not found.");
}

#[test]
fn data_survives_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".flowpack").join("local.db");
    {
        let s = Store::open(&path, StoreOptions::default()).unwrap();
        s.import(&order_sync(), Some("once")).unwrap();
    }
    let s = Store::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(s.show(1, true).unwrap().name, "Shopify > NetSuite Orders");
    assert_eq!(s.import(&order_sync(), Some("once")).unwrap().id, 1);
    assert_eq!(s.list(&ListQuery::default()).unwrap().meta.total, 1);
}

#[test]
fn platform_errors_name_the_request() {
    let s = store();
    let err = Platform::show_flow(&s, 3).unwrap_err();
    assert_eq!(
        err.to_string(),
        "local: GET /api/v1/flows/3: not found (404): Flow 3 not found."
    );
}

#[test]
fn a_database_written_by_an_older_sandbox_opens_with_default_settings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE flows (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, \
             description TEXT, priority INTEGER NOT NULL, enabled_at TEXT, created_at TEXT NOT NULL, \
             updated_at TEXT NOT NULL, document TEXT NOT NULL, marketplace INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE versions (id INTEGER PRIMARY KEY AUTOINCREMENT, flow_id INTEGER NOT NULL \
             REFERENCES flows(id) ON DELETE CASCADE, position INTEGER NOT NULL, \
             iteration INTEGER NOT NULL, status TEXT NOT NULL, deployed_at TEXT);",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO flows (name, priority, created_at, updated_at, document) \
             VALUES ('Old', 2, '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z', ?1)",
            [ORDER_SYNC],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO versions (flow_id, position, iteration, status) VALUES (1, 0, 7, 'Draft')",
            [],
        )
        .unwrap();
    }
    let s = Store::open(&path, StoreOptions::default()).unwrap();
    let flow = s.flow_record(1).unwrap();
    assert_eq!(flow.name, "Old");
    assert!(!flow.prod_flag && flow.labels.is_empty() && flow.layout_direction.is_none());
    let versions = s.version_list(1).unwrap();
    assert_eq!(versions[0].created_at, "2025-01-01T00:00:00Z");
    assert_eq!(
        s.export(1).unwrap()["flow"]["versions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let webhook = s.create_webhook(1, &WebhookChanges::default()).unwrap();
    assert_eq!(webhook.status, "active");
}

#[test]
fn parallel_new_versions_get_distinct_iterations() {
    let s = Arc::new(store());
    let flow = s.import(&order_sync(), None).unwrap().id;
    let before = s.version_list(flow).unwrap();
    let top = before.iter().map(|v| v.iteration).max().unwrap();
    let threads: Vec<_> = (0..30)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || s.new_version(flow, None).unwrap().iteration)
        })
        .collect();
    let mut got: Vec<i64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (top + 1..=top + 30).collect::<Vec<_>>());
    // One draft: the newest.
    let after = s.version_list(flow).unwrap();
    let drafts: Vec<i64> = after
        .iter()
        .filter(|v| v.status == "Draft")
        .map(|v| v.iteration)
        .collect();
    assert_eq!(drafts.len(), 1, "{drafts:?}");
}
