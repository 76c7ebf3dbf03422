use crate::util::*;

#[test]
fn the_reference_documents_validate() {
    for f in [
        "reference/export-v2-order-sync.json",
        "reference/export-v1-legacy.json",
    ] {
        let out = flowpack(&["validate", fixture(f).to_str().unwrap()]);
        assert_eq!(code(&out), 0, "{f}: {}{}", stdout(&out), stderr(&out));
    }
}

#[test]
fn unreadable_inputs_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let notjson = dir.path().join("notjson.json");
    std::fs::write(&notjson, "this is not json").unwrap();
    let array = dir.path().join("array.json");
    std::fs::write(&array, "[1, 2]").unwrap();
    for p in [&missing, &notjson, &array] {
        let out = flowpack(&["validate", p.to_str().unwrap()]);
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(p.to_str().unwrap()), "{err}");
    }
}
