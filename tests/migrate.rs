use serde_json::Value;

use crate::util::*;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn read(path: &std::path::Path) -> Value {
    parse(&std::fs::read_to_string(path).unwrap())
}

fn without_stamp(mut v: Value) -> Value {
    v["metadata"]
        .as_object_mut()
        .unwrap()
        .shift_remove("format_version");
    v
}

#[test]
fn the_legacy_reference_migrates_to_2_validates_and_comes_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let v2 = dir.path().join("v2.json");
    let legacy = fixture("reference/export-v1-legacy.json");
    let out = flowpack(&[
        "migrate",
        legacy.to_str().unwrap(),
        "--to",
        "2",
        "-o",
        v2.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let doc = read(&v2);
    assert_eq!(doc["metadata"]["format_version"], 2);
    let steps = doc["flow"]["versions"][0]["steps"].as_array().unwrap();
    let ids: Vec<u64> = steps.iter().map(|s| s["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    assert_eq!(
        doc["flow"]["versions"][0]["connections"],
        parse(r#"[{"from":2,"to":3},{"from":3,"to":4},{"from":4,"to":5}]"#)
    );
    let summary = &doc["metadata"]["import_summary"];
    assert_eq!(summary["imported_resources"]["flow_steps"], 5);
    assert_eq!(summary["imported_resources"]["connectors"], 2);
    assert_eq!(summary["imported_resources"]["systems_imported"], 2);
    let out = flowpack(&["validate", v2.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));

    // Back to 1 on stdout: the original apart from the stamp, key order included.
    let out = flowpack(&["migrate", v2.to_str().unwrap(), "--to", "1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let back = parse(&stdout(&out));
    assert_eq!(back["metadata"]["format_version"], 1);
    assert_eq!(
        serde_json::to_string(&without_stamp(back)).unwrap(),
        serde_json::to_string(&read(&legacy)).unwrap()
    );
}

#[test]
fn a_lossy_down_migration_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("v1.json");
    let v2 = fixture("reference/export-v2-order-sync.json");
    let out = flowpack(&[
        "migrate",
        v2.to_str().unwrap(),
        "--to",
        "1",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(!out_path.exists());
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "flowpack: error: {}: migrating from format version 2 to 1 would lose ",
            v2.display()
        )),
        "{err}"
    );
    for what in [
        "/scripts/0: script `Normalise order lines`",
        "/flow/versions/0/variables/0: variable `NETSUITE_SUBSIDIARY`",
        "/metadata/exported_by: exported_by \"ops@acme.example\"",
        "--allow-loss",
    ] {
        assert!(err.contains(what), "{what}: {err}");
    }

    let out = flowpack(&[
        "migrate",
        v2.to_str().unwrap(),
        "--to",
        "1",
        "--allow-loss",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("lost "), "{err}");
    assert!(
        err.contains("/scripts/0: script `Normalise order lines`"),
        "{err}"
    );
    let doc = read(&out_path);
    assert_eq!(doc["metadata"]["format_version"], 1);
    assert!(doc.get("scripts").is_none());
    assert_eq!(
        doc["flow"]["versions"][0]["steps"][3]["microservice"],
        "batch"
    );
    assert_eq!(
        doc["flow"]["versions"][0]["steps"][1]["routes"][0]["first_step"],
        "Shopify - Retrieve orders"
    );
}

#[test]
fn a_version_2_document_with_unknown_fields_everywhere_migrates_to_2_unchanged() {
    let path = fixture("migrate/v2.unknown_fields_everywhere.json");
    let out = flowpack(&["migrate", path.to_str().unwrap(), "--to", "latest"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("\"id\": 18446744073709551615,"), "{text}");
    let migrated = parse(&text);
    assert_eq!(migrated["metadata"]["format_version"], 2);
    // Serialised text: equal values with the same key order and number text.
    assert_eq!(
        serde_json::to_string(&without_stamp(migrated)).unwrap(),
        serde_json::to_string(&read(&path)).unwrap()
    );
}

#[test]
fn check_says_whether_the_document_is_at_the_target() {
    let legacy = fixture("reference/export-v1-legacy.json");
    let legacy = legacy.to_str().unwrap();
    let out = flowpack(&["migrate", legacy, "--to", "1", "--check"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{legacy}: at format version 1\n"));
    let out = flowpack(&["migrate", legacy, "--to", "latest", "--check"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("{legacy}: at format version 1, would migrate to 2\n")
    );
}

/// A file that cannot be read and an unknown target are 2 (could not run); a document that
/// cannot be migrated is 1 (rejected input).
#[test]
fn unreadable_inputs_exit_2_unmigratable_ones_1_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let out = flowpack(&["migrate", missing.to_str().unwrap(), "--to", "2"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains(missing.to_str().unwrap()),
        "{}",
        stderr(&out)
    );

    let broken = dir.path().join("broken.json");
    std::fs::write(
        &broken,
        r#"{"flow":{"versions":[{"steps":[{"name":"B","microservice":"branch","routes":[{"first_step":"Gone"}]}]}]}}"#,
    )
    .unwrap();
    let out = flowpack(&["migrate", broken.to_str().unwrap(), "--to", "2"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        format!(
            "flowpack: error: {}: cannot migrate from format version 1 to 2: \
             /flow/versions/0/steps/0/routes/0/first_step: route names step `Gone`, but no step \
             of this version has that name\n",
            broken.display()
        )
    );

    let out = flowpack(&["migrate", broken.to_str().unwrap(), "--to", "3"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("cannot migrate to format version 3 (known: 1, 2)"),
        "{}",
        stderr(&out)
    );
}
