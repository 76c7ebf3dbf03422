//! `flowpack validate` over many files (checked in parallel): reports come in the order the
//! files were given, and the first unreadable file in that order is the one named.

use crate::util::*;

#[test]
fn many_files_are_reported_in_the_order_given() {
    let clean = fixture("reference/export-v2-order-sync.json");
    let faulty = [
        "validate/v2.duplicate_step_id.json",
        "validate/v2.two_drafts.json",
        "validate/v2.unknown_system.json",
    ];
    let mut files = Vec::new();
    for i in 0..12 {
        files.push(if i % 4 == 3 {
            fixture(faulty[i / 4])
        } else {
            clean.clone()
        });
    }
    let mut args = vec!["validate", "--format", "json"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = flowpack(&args);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reports = json["files"].as_array().unwrap();
    assert_eq!(reports.len(), 12);
    for (i, (report, file)) in reports.iter().zip(&files).enumerate() {
        assert_eq!(report["file"], file.to_str().unwrap(), "report {i}");
        let first_code = report["findings"][0]["code"].as_str();
        match i {
            3 => assert_eq!(first_code, Some("FP0201")),
            7 => assert_eq!(first_code, Some("FP0501")),
            11 => assert_eq!(first_code, Some("FP0601")),
            _ => assert_eq!(report["errors"], 0, "report {i}"),
        }
    }
}

#[test]
fn the_first_unreadable_file_in_argument_order_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let clean = fixture("reference/export-v2-order-sync.json");
    let first_bad = dir.path().join("first.json");
    std::fs::write(&first_bad, "not json").unwrap();
    let second_bad = dir.path().join("second.json");
    let mut args = vec!["validate".to_string()];
    for _ in 0..5 {
        args.push(clean.display().to_string());
    }
    args.push(first_bad.display().to_string());
    args.push(clean.display().to_string());
    args.push(second_bad.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = flowpack(&args);
    // The first bad file is not JSON (rejected: 1); the second, missing, would be 2.
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(first_bad.to_str().unwrap()), "{err}");
    assert!(!err.contains(second_bad.to_str().unwrap()), "{err}");
}
