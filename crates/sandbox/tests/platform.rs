//! The client's `Platform` methods for webhooks, callbacks, settings and layout direction, run
//! the same way against both implementations: the HTTP client talking to the sandbox server, and
//! the store in process (the embedded `local` environment).

use std::sync::Arc;

use flowpack_client::{
    CallbackRequest, ClientError, FlowSettingsUpdate, HttpOptions, HttpPlatform, ImportRequest,
    Platform, WebhookRequest,
};
use flowpack_sandbox::server::{ServerOptions, spawn};
use flowpack_sandbox::{Store, StoreOptions};

const ORDER_SYNC: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/reference/export-v2-order-sync.json"
));

fn exercise(p: &dyn Platform) {
    let flow = p
        .import_flow(&ImportRequest {
            document: serde_json::from_str(ORDER_SYNC).unwrap(),
            as_marketplace: false,
            idempotency_key: None,
        })
        .unwrap();
    let id = flow.id;

    let settings = p
        .update_flow_settings(
            id,
            &FlowSettingsUpdate {
                name: Some("Orders (restored)".into()),
                description: Some(None),
                enabled_at: Some(Some("2026-01-01T00:00:00Z".into())),
                priority: Some(4),
                prod_flag: Some(true),
                use_queued_time: Some(true),
                remove_failed_payloads: Some(false),
                labels: Some(vec![3, 1]),
                notification_groups: Some(vec![9]),
            },
        )
        .unwrap();
    assert_eq!(settings.name, "Orders (restored)");
    assert_eq!(settings.description, None);
    assert_eq!(settings.priority, Some(4));
    assert!(settings.prod_flag && settings.use_queued_time && !settings.remove_failed_payloads);
    assert_eq!(settings.labels, [3, 1]);
    p.set_layout_direction(id, "vertical").unwrap();
    let shown = p.show_flow_settings(id).unwrap();
    assert_eq!(shown.layout_direction.as_deref(), Some("vertical"));
    assert_eq!(shown.notification_groups, [9]);
    assert_eq!(shown.enabled_at.as_deref(), Some("2026-01-01T00:00:00Z"));

    let created = p
        .create_webhook(
            id,
            &WebhookRequest {
                status: Some("active".into()),
                format: Some("json".into()),
                body: Some(Some("{}".into())),
                hmac_algorithm: Some(Some("sha256".into())),
                hmac_secret_key: Some(Some("ignored on create".into())),
            },
        )
        .unwrap();
    assert!(!created.has_hmac_secret_key, "hmac_* are set by update");
    let updated = p
        .update_webhook(
            id,
            created.id,
            &WebhookRequest {
                hmac_algorithm: Some(Some("sha256".into())),
                hmac_secret_key: Some(Some("s3cr3t".into())),
                ..WebhookRequest::default()
            },
        )
        .unwrap();
    assert!(updated.has_hmac_secret_key);
    assert_eq!(updated.body.as_deref(), Some("{}"));
    assert_eq!(p.list_webhooks(id).unwrap(), std::slice::from_ref(&updated));
    let too_long = WebhookRequest {
        hmac_secret_key: Some(Some("k".repeat(129))),
        ..WebhookRequest::default()
    };
    match p.update_webhook(id, created.id, &too_long) {
        Err(ClientError::Validation { errors, .. }) => {
            assert!(errors.contains_key("hmac_secret_key"))
        }
        other => panic!("expected a 422, got {other:?}"),
    }
    p.delete_webhook(id, created.id).unwrap();
    assert!(p.list_webhooks(id).unwrap().is_empty());
    assert!(matches!(
        p.delete_webhook(id, created.id),
        Err(ClientError::NotFound { .. })
    ));

    let cb = p
        .create_callback(
            id,
            &CallbackRequest {
                status: Some("active".into()),
                format: Some("xml".into()),
            },
        )
        .unwrap();
    let cb2 = p
        .update_callback(
            id,
            cb.id,
            &CallbackRequest {
                status: Some("paused".into()),
                format: None,
            },
        )
        .unwrap();
    assert_eq!(
        (cb2.status.as_str(), cb2.format.as_str()),
        ("paused", "xml")
    );
    assert_eq!(p.list_callbacks(id).unwrap(), [cb2]);
    p.delete_callback(id, cb.id).unwrap();
    assert!(p.list_callbacks(id).unwrap().is_empty());

    p.delete_flow(id).unwrap();
    assert!(matches!(
        p.show_flow_settings(id),
        Err(ClientError::NotFound { .. })
    ));
}

#[test]
fn the_store_in_process_implements_every_new_method() {
    exercise(&Store::open_in_memory(StoreOptions::default()).unwrap());
}

#[test]
fn the_http_client_implements_every_new_method_against_the_server() {
    let store = Arc::new(Store::open_in_memory(StoreOptions::default()).unwrap());
    let server = spawn(
        "127.0.0.1:0".parse().unwrap(),
        store,
        ServerOptions::new("key"),
    )
    .unwrap();
    exercise(&HttpPlatform::new(HttpOptions::new(server.url(), "key")).unwrap());
}

#[test]
fn the_http_client_walks_every_page_of_versions() {
    let store = Arc::new(Store::open_in_memory(StoreOptions::default()).unwrap());
    let flow = store
        .import(&serde_json::from_str(ORDER_SYNC).unwrap(), None)
        .unwrap();
    for _ in 0..118 {
        store.new_version(flow.id, None).unwrap();
    }
    let server = spawn(
        "127.0.0.1:0".parse().unwrap(),
        store,
        ServerOptions::new("key"),
    )
    .unwrap();
    let client = HttpPlatform::new(HttpOptions::new(server.url(), "key")).unwrap();
    let versions = client.list_versions(flow.id).unwrap();
    assert_eq!(versions.len(), 120);
    assert_eq!(versions.last().unwrap().iteration, 126);
    assert_eq!(versions.last().unwrap().status, "Draft");
}
