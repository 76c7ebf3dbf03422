//! End-to-end tests of marketplace packages: `pack --kind marketplace` keeps only each flow's
//! deployed version, lists what the package requires, refuses a flow without a deployed
//! version, and `--previous` checks the version number against the previous release.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::util::{code, fixture, flowpack_in, stderr, stdout};

const ORDERS: &str = "Shopify > NetSuite Orders";

/// The reference version-2 export document.
pub fn reference() -> Value {
    let bytes = std::fs::read(fixture("reference/export-v2-order-sync.json")).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Writes `docs` as `dir/<sub>/<n>.json`, replacing what was there; returns the directory.
pub fn write_flows(dir: &Path, sub: &str, docs: &[Value]) -> PathBuf {
    let d = dir.join(sub);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    for (n, doc) in docs.iter().enumerate() {
        std::fs::write(
            d.join(format!("{n}.json")),
            serde_json::to_vec_pretty(doc).unwrap(),
        )
        .unwrap();
    }
    d
}

/// `doc` as another flow named `name`.
pub fn renamed(doc: &Value, name: &str) -> Value {
    let mut d = doc.clone();
    d["flow"]["name"] = name.into();
    d["metadata"]["flow_name"] = name.into();
    d
}

/// `doc` with the first step of its deployed version renamed (a content change).
fn step_changed(doc: &Value) -> Value {
    let mut d = doc.clone();
    let versions = d["flow"]["versions"].as_array_mut().unwrap();
    let deployed = versions
        .iter_mut()
        .find(|v| v["status"] == "Deployed")
        .unwrap();
    deployed["steps"][0]["name"] = "Every 10 minutes".into();
    d
}

/// `pack DIR -o OUT --name shop --version V --kind marketplace [extra…]` in `cwd`.
pub fn pack_market(cwd: &Path, input: &Path, out: &str, version: &str, extra: &[&str]) -> Output {
    let input = input.display().to_string();
    let mut args = vec![
        "pack",
        input.as_str(),
        "-o",
        out,
        "--name",
        "shop",
        "--version",
        version,
        "--kind",
        "marketplace",
    ];
    args.extend_from_slice(extra);
    flowpack_in(cwd, &args)
}

fn inspect_json(cwd: &Path, archive: &str) -> Value {
    let o = flowpack_in(cwd, &["inspect", archive, "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn a_marketplace_package_keeps_the_deployed_version_and_lists_what_it_requires() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let flows = write_flows(d, "v1", &[reference()]);
    let o = pack_market(d, &flows, "shop.flowpack", "1.0.0", &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let v = inspect_json(d, "shop.flowpack");
    assert_eq!(v["manifest"]["package"]["kind"], "marketplace");
    let versions = v["flows"][0]["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(versions[0]["status"], "Deployed");
    assert_eq!(versions[0]["iteration"], 7);
    let requires = &v["manifest"]["requires"];
    assert_eq!(
        requires["systems"],
        serde_json::json!([
            {"name": "NetSuite", "protocol": "HTTP"},
            {"name": "Shopify", "protocol": "HTTP"}
        ])
    );
    assert_eq!(
        requires["scripts"],
        serde_json::json!([{"name": "Normalise order lines", "language": "javascript"}])
    );
    assert_eq!(requires["export_format"], 2);
    // The human form shows the protocols too.
    let o = flowpack_in(d, &["inspect", "shop.flowpack"]);
    assert!(
        stdout(&o).contains("system      Shopify (HTTP)"),
        "{}",
        stdout(&o)
    );
    // The packed document verifies and a release of the same input keeps both versions.
    assert_eq!(code(&flowpack_in(d, &["verify", "shop.flowpack"])), 0);
    let input = flows.display().to_string();
    let o = flowpack_in(
        d,
        &[
            "pack",
            &input,
            "-o",
            "rel.flowpack",
            "--name",
            "shop",
            "--version",
            "1.0.0",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = inspect_json(d, "rel.flowpack");
    assert_eq!(v["flows"][0]["versions"].as_array().unwrap().len(), 2);
}

#[test]
fn a_flow_without_a_deployed_version_is_refused_naming_the_flow_and_the_file() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let o = pack_market(d, &fixture("reference"), "shop.flowpack", "1.0.0", &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(
            "export-v1-legacy.json: flow `Shopify > HubSpot Customers` has no deployed version"
        ),
        "{err}"
    );
    assert!(!d.join("shop.flowpack").exists());
}

#[test]
fn previous_enforces_the_semver_bump_and_names_what_forced_it() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let base = reference();
    let flows = write_flows(d, "v1", &[base.clone(), renamed(&base, "Refunds")]);
    let o = pack_market(d, &flows, "1.4.0.flowpack", "1.4.0", &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let prev = ["--previous", "1.4.0.flowpack"];

    // Unchanged content (a fresh export: a new exported_at) at the same version is a re-pack.
    let mut fresh = base.clone();
    fresh["metadata"]["exported_at"] = "2027-01-01T00:00:00Z".into();
    let same = write_flows(d, "same", &[fresh, renamed(&base, "Refunds")]);
    let o = pack_market(d, &same, "again.flowpack", "1.4.0", &prev);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("no change, accepted"), "{}", stdout(&o));

    // A changed step: the same version is refused, a patch is enough.
    let patched = write_flows(
        d,
        "patch",
        &[step_changed(&base), renamed(&base, "Refunds")],
    );
    let o = pack_market(d, &patched, "p.flowpack", "1.4.0", &prev);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "version 1.4.0 is the previous package's version, but the content differs (flow `{ORDERS}` changed)"
        )),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("p.flowpack").exists());
    let o = pack_market(d, &patched, "p.flowpack", "1.4.1", &prev);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("flow `{ORDERS}` changed (patch)")),
        "{}",
        stdout(&o)
    );

    // A new flow (its inputs are all optional): a patch is too small, a minor is enough.
    let added = write_flows(
        d,
        "minor",
        &[
            base.clone(),
            renamed(&base, "Refunds"),
            renamed(&base, "Returns"),
        ],
    );
    let o = pack_market(d, &added, "m.flowpack", "1.4.1", &prev);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    // The new flow and its (optional) inputs forced the minor bump: the first three are named.
    let err = stderr(&o);
    assert!(
        err.contains("error: flow `Returns` was added; optional "),
        "{err}"
    );
    assert!(
        err.contains("(and 4 more): needs 1.5.0 or later, got 1.4.1"),
        "{err}"
    );
    assert!(
        stderr(&o).contains("previous package 1.4.0.flowpack"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("m.flowpack").exists());
    let o = pack_market(d, &added, "m.flowpack", "1.5.0", &prev);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // A removed flow needs a major bump.
    let removed = write_flows(d, "major", std::slice::from_ref(&base));
    let o = pack_market(d, &removed, "x.flowpack", "1.9.0", &prev);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("flow `Refunds` was removed: needs 2.0.0 or later, got 1.9.0"),
        "{}",
        stderr(&o)
    );
    let o = pack_market(d, &removed, "x.flowpack", "2.0.0", &prev);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(
            "version 2.0.0 over 1.4.0 of 1.4.0.flowpack: major change, 2.0.0 or later, accepted"
        ),
        "{}",
        stdout(&o)
    );

    // A lower version is refused whatever changed; no temporary file is left behind.
    let o = pack_market(d, &same, "low.flowpack", "1.3.9", &prev);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("version 1.3.9 is lower than the previous package's version 1.4.0"),
        "{}",
        stderr(&o)
    );
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".flowpack-tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // --previous is for marketplace packages only.
    let input = same.display().to_string();
    let o = flowpack_in(
        d,
        &[
            "pack",
            &input,
            "-o",
            "r.flowpack",
            "--name",
            "shop",
            "--version",
            "2.0.0",
            "--previous",
            "1.4.0.flowpack",
        ],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--kind marketplace"), "{}", stderr(&o));
}

/// The single document an archive holds, as `unpack` writes it.
fn packed_document(cwd: &Path, archive: &str) -> Vec<u8> {
    let out = format!("{archive}.unpacked");
    let o = flowpack_in(
        cwd,
        &["unpack", archive, "-d", &out, "--insecure-skip-signatures"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let flows = cwd.join(&out).join("flows");
    let dir = std::fs::read_dir(&flows).unwrap().next().unwrap().unwrap();
    std::fs::read(dir.path().join("export.json")).unwrap()
}

/// A document rewritten while packing (versions dropped for a marketplace package, a secret
/// stripped) keeps the layout it came in: a compact export stays compact, not pretty-printed at
/// twice its size; a pretty one stays pretty.
#[test]
fn rewritten_documents_keep_their_layout() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let mut doc = reference();
    doc["systems"][0]["system"]["authentication_implementations"][0]["credentials"]["token"] =
        Value::from("shpat_1");
    std::fs::create_dir_all(d.join("compact")).unwrap();
    let compact = serde_json::to_vec(&doc).unwrap();
    std::fs::write(d.join("compact/orders.json"), &compact).unwrap();

    let o = pack_market(d, &d.join("compact"), "shop.flowpack", "1.0.0", &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let packed = packed_document(d, "shop.flowpack");
    assert!(!packed.contains(&b'\n'), "compact in, compact out");
    assert!(packed.len() < compact.len(), "a version was dropped");
    let value: Value = serde_json::from_slice(&packed).unwrap();
    assert_eq!(value["flow"]["versions"].as_array().unwrap().len(), 1);

    // A release: only the secret is stripped, the layout is kept.
    let input = d.join("compact").display().to_string();
    let o = flowpack_in(
        d,
        &[
            "pack",
            &input,
            "-o",
            "rel.flowpack",
            "--name",
            "r",
            "--version",
            "1.0.0",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let packed = packed_document(d, "rel.flowpack");
    assert!(!packed.contains(&b'\n'));
    assert!(
        packed.len() <= compact.len() + 8,
        "{} vs {}",
        packed.len(),
        compact.len()
    );

    // Pretty in (the reference fixture's layout), pretty out.
    let flows = write_flows(d, "pretty", &[reference()]);
    let o = pack_market(d, &flows, "pretty.flowpack", "1.0.0", &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let packed = packed_document(d, "pretty.flowpack");
    assert!(
        packed.starts_with(b"{\n  \""),
        "{}",
        String::from_utf8_lossy(&packed[..40])
    );
}
