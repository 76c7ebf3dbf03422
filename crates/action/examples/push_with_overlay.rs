//! Pushes an archive with an overlay into an in-process sandbox store (the same store the
//! `local` environment uses, here in memory), printing the plan of a dry run, the outcome of the
//! push, and the plan of a second push (which finds the flow unchanged).
//!
//! `cargo run --example push_with_overlay` (no arguments, no network, no platform account).

use std::path::Path;
use std::sync::Arc;

use flowpack_action::{pack, push};
use flowpack_core::overlay::Overlay;
use flowpack_sandbox::{Store, StoreOptions};

/// Production's values: a flow variable, a system renamed to production's, and a credential
/// taken from a variable of the process environment (here supplied by a lookup function).
const OVERLAY: &str = r#"
[variables]
NETSUITE_SUBSIDIARY = "7"

[systems]
"Shopify" = "Shopify (production)"

[secrets."Shopify"."Admin API token"]
token = "${env:SHOPIFY_PROD_TOKEN}"
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let reference =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/reference/export-v2-order-sync.json");

    // The archive to promote (unsigned: the sandbox demands no signature).
    let archive = dir.path().join("release.flowpack");
    pack::run(&pack::PackOptions::new(
        vec![reference],
        archive.clone(),
        "orders".into(),
        semver::Version::new(1, 2, 0),
        time::OffsetDateTime::now_utc(),
    ))?;

    // The overlay, resolved before anything is sent; the lookup stands in for the process
    // environment, so the example needs no variable set.
    let overlay = Overlay::parse(OVERLAY, "production.toml")?.resolve(&|name| {
        (name == "SHOPIFY_PROD_TOKEN").then(|| "shpat_example_token".to_string())
    })?;

    // The target: the sandbox's store in process, as a Platform.
    let store = Arc::new(Store::open_in_memory(StoreOptions::default())?);
    let now = "2026-01-01T00:00:00Z".to_string();
    let mut options = push::PushOptions::new(archive, store, now);
    options.overlay = Some(overlay);

    options.dry_run = true;
    println!("dry run:");
    print(&push::run(&options)?);

    options.dry_run = false;
    println!("push:");
    let report = push::run(&options)?;
    print(&report);
    assert!(!report.failed());

    println!("again:");
    let again = push::run(&options)?;
    print(&again);
    assert!(again.flows.iter().all(|f| f.plan == push::Plan::Unchanged));
    Ok(())
}

/// Prints what the overlay changed (secrets masked) and each flow's plan and outcome.
fn print(report: &push::PushReport) {
    for flow in &report.overlay {
        for change in &flow.changes {
            println!("  overlay    {}: {change}", flow.flow);
        }
    }
    for warning in &report.warnings {
        println!("  warning    {warning}");
    }
    for flow in &report.flows {
        let id = flow
            .id
            .or(flow.existing_id)
            .map(|id| format!(" (id {id})"))
            .unwrap_or_default();
        println!(
            "  {:<10} {:<10} {}{id}",
            flow.plan.as_str(),
            flow.outcome.as_str(),
            flow.name
        );
    }
}
