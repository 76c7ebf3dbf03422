//! Promotion converges: for every document that validates (the benchmark generator's documents,
//! every valid fixture, version-1 documents made from them), import it the way `push` sends it,
//! export it back, and compare with `flowpack_core::diff`:
//! - the export after the push is `same` as the archive's document, and
//! - the plan of a second push (the archive's document migrated to the target's format, as push
//!   sends it, against the live export) has no changes: `unchanged`.
//!
//! Deploying and enabling after the import (`push --deploy --enable`) must not change that:
//! state is not content.

use std::path::{Path, PathBuf};

use flowpack_bench::{GenOptions, generate_document};
use flowpack_client::{FlowUpdate, ImportRequest, Platform};
use flowpack_core::diff::{Change, compare, normalise};
use flowpack_core::document::{Document, FormatVersion};
use flowpack_core::migrate::{MigrateOptions, Target, migrate};
use flowpack_core::validate::{ValidateOptions, validate};
use flowpack_sandbox::store::{Store, StoreOptions};
use serde_json::Value;

const NOW: &str = "2026-11-29T12:00:00Z";

/// The document push sends for `doc`: migrated to version 2, without the format stamp.
fn as_sent(doc: &Document, origin: &str) -> Document {
    if doc.format_version() == FormatVersion::V2 {
        return doc.clone();
    }
    let mut opts = MigrateOptions::new(Target::Version(2));
    opts.origin = origin.to_string();
    let mut sent = migrate(doc.clone(), &opts)
        .unwrap_or_else(|e| panic!("{origin}: {e}"))
        .document;
    sent.unstamp_format_version();
    sent
}

/// Pushes `doc` into `store` (deploying the draft and enabling when `deploy_and_enable`) and
/// returns the problems found, each naming `origin`; `Err` when the store refuses the import.
fn push_twice(
    store: &Store,
    origin: &str,
    doc: &Document,
    deploy_and_enable: bool,
) -> Result<Vec<String>, String> {
    let sent = as_sent(doc, origin);
    let flow = store
        .import_flow(&ImportRequest {
            document: sent.value().clone(),
            as_marketplace: false,
            idempotency_key: None,
        })
        .map_err(|e| format!("{origin}: import refused: {e}"))?;
    if deploy_and_enable {
        let versions = store.list_versions(flow.id).unwrap();
        if let Some(draft) = versions.iter().find(|v| v.status == "Draft") {
            store.deploy_version(flow.id, draft.id, NOW).unwrap();
        }
        let update = FlowUpdate {
            enabled_at: Some(Some(NOW.to_string())),
            ..FlowUpdate::default()
        };
        store.update_flow(flow.id, &update).unwrap();
    }
    let live = store.export_flow(flow.id).unwrap();
    let live = Document::from_value(live, "live export").unwrap();
    let mut problems = Vec::new();
    let mut check = |what: &str, changes: Vec<Change>| {
        if !changes.is_empty() {
            let first: Vec<String> = changes.iter().take(5).map(Change::to_string).collect();
            problems.push(format!("{origin}: {what}: {}", first.join("; ")));
        }
    };
    check(
        "export after push is not `same`",
        compare(doc, &live).unwrap(),
    );
    // The second push's plan: the document as push would send it, normalised once, against
    // the live export.
    let wanted = normalise(&sent, origin).unwrap();
    let live = normalise(&live, "live export").unwrap();
    check(
        "a second push would not plan `unchanged`",
        flowpack_core::diff::changes(&wanted, &live),
    );
    Ok(problems)
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
}

/// Every fixture that is an export document and validates without errors.
fn valid_fixtures() -> Vec<(String, Document)> {
    let mut files = Vec::new();
    json_files(&fixtures_dir(), &mut files);
    files
        .into_iter()
        .filter_map(|p| {
            let origin = p
                .strip_prefix(fixtures_dir())
                .unwrap()
                .display()
                .to_string();
            let doc = Document::read(&p).ok()?;
            (!validate(&doc, &ValidateOptions::default()).fails(false)).then_some((origin, doc))
        })
        .collect()
}

/// A version-1 document made from a version-2 one (what version 1 cannot hold is dropped).
fn down_to_v1(doc: &Document, origin: &str) -> Document {
    let mut opts = MigrateOptions::new(Target::Version(1));
    opts.allow_loss = true;
    opts.origin = origin.to_string();
    let mut v1 = migrate(doc.clone(), &opts).unwrap().document;
    v1.unstamp_format_version();
    v1
}

/// Gives a document's versions a mix of valid statuses depending on `seed` (one deployed
/// version or none, one draft or none, the others inactive), so imports see any statuses, and
/// `flow_priority` values that differ from the flow's priority.
fn with_statuses(mut v: Value, seed: usize) -> Value {
    if let Some(versions) = v
        .pointer_mut("/flow/versions")
        .and_then(Value::as_array_mut)
    {
        let n = versions.len();
        let deployed = (!seed.is_multiple_of(3)).then(|| seed % n.max(1));
        let draft = seed.is_multiple_of(2).then(|| n.saturating_sub(1));
        for (i, version) in versions.iter_mut().enumerate() {
            let status = if Some(i) == deployed {
                "Deployed"
            } else if Some(i) == draft {
                "Draft"
            } else {
                "Inactive"
            };
            version["status"] = Value::from(status);
            version["is_deployed"] = Value::from(status == "Deployed");
            // Older versions were saved when the flow had another priority; the platform
            // reports the flow's current one on export.
            version["flow_priority"] = Value::from((seed + i) % 5 + 1);
        }
    }
    v
}

#[test]
fn every_valid_fixture_converges() {
    let store = Store::open_in_memory(StoreOptions::default()).unwrap();
    let fixtures = valid_fixtures();
    // The reference documents, the migration inputs (version 1) and outputs at least.
    assert!(
        fixtures.len() >= 10,
        "only {} valid fixtures found",
        fixtures.len()
    );
    assert!(
        fixtures
            .iter()
            .any(|(o, _)| o.ends_with("migrate/input/v2.two_versions.json"))
    );
    let mut problems = Vec::new();
    let mut refused = Vec::new();
    for (i, (origin, doc)) in fixtures.iter().enumerate() {
        // Twice: once deployed and enabled, once not, so both states are compared.
        for (again, deploy) in [("", i % 2 == 0), (" (again)", i % 2 == 1)] {
            match push_twice(&store, &format!("{origin}{again}"), doc, deploy) {
                Ok(p) => problems.extend(p),
                Err(e) => refused.push(e),
            }
        }
    }
    // A document the platform refuses is not pushed at all, so convergence is not in question;
    // the only such fixture holds an `iteration` beyond what the platform stores (2^64 - 1).
    assert!(
        refused
            .iter()
            .all(|e| e.contains("v2.unknown_fields_everywhere.json")),
        "{}",
        refused.join("\n")
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn generated_documents_converge_as_version_2_and_version_1() {
    let store = Store::open_in_memory(StoreOptions::default()).unwrap();
    let opts = GenOptions {
        flows: 24,
        seed: 20261129,
        target_mb: Some(0.6),
    };
    let mut problems = Vec::new();
    let mut several_versions = 0;
    for i in 0..opts.flows {
        let origin = format!("generated document {i}");
        let mut v = with_statuses(generate_document(&opts, i), i);
        if i % 4 == 1 {
            // `flow.priority` is optional; the platform imports such a flow with priority 3.
            v["flow"].as_object_mut().unwrap().shift_remove("priority");
        }
        let doc = Document::from_value(v, &origin).unwrap();
        let report = validate(&doc, &ValidateOptions::default());
        assert!(!report.fails(false), "{origin}: {:?}", report.findings);
        if doc.flow().unwrap().versions().count() > 1 {
            several_versions += 1;
        }
        problems.extend(push_twice(&store, &origin, &doc, i % 2 == 0).unwrap());
        let v1 = down_to_v1(&doc, &origin);
        assert_eq!(v1.format_version(), FormatVersion::V1, "{origin}");
        let v1_origin = format!("{origin} as version 1");
        problems.extend(push_twice(&store, &v1_origin, &v1, i % 3 == 0).unwrap());
    }
    assert!(
        several_versions >= 5,
        "only {several_versions} documents with several versions"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
