use crate::util::*;

fn inspect_json(rel: &str) -> serde_json::Value {
    let out = flowpack(&[
        "inspect",
        fixture(rel).to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn reports_format_version_and_step_counts_of_the_reference_documents() {
    let v2 = inspect_json("reference/export-v2-order-sync.json");
    assert_eq!(v2["format_version"], 2);
    assert_eq!(v2["format_detection"], "inferred");
    assert_eq!(v2["flow"]["name"], "Shopify > NetSuite Orders");
    assert_eq!(v2["flow"]["priority"], 2);
    assert_eq!(v2["flow"]["enabled"], true);
    let steps: Vec<u64> = v2["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["steps"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, vec![6, 1]);
    assert_eq!(v2["versions"][0]["iteration"], 7);
    assert_eq!(v2["versions"][0]["status"], "Deployed");
    assert_eq!(v2["versions"][0]["step_types"]["connector"], 2);
    assert_eq!(
        v2["versions"][0]["variables"][0],
        serde_json::json!({"key": "NETSUITE_SUBSIDIARY", "is_secret": false, "has_value": false})
    );
    assert_eq!(v2["systems"][0]["auth_implementations"], 1);
    assert_eq!(v2["scripts"][0]["language"], "javascript");
    assert_eq!(v2["filled_secrets"], 0);

    let v1 = inspect_json("reference/export-v1-legacy.json");
    assert_eq!(v1["format_version"], 1);
    assert_eq!(v1["versions"][0]["steps"], 5);
    assert_eq!(v1["versions"][0]["iteration"], serde_json::Value::Null);
    assert_eq!(v1["versions"][0]["step_types"]["connector"], 2);
}

#[test]
fn counts_filled_secrets_without_showing_them() {
    let file = fixture("validate/v2.many_faults.json");
    for format in ["json", "human"] {
        let out = flowpack(&["inspect", file.to_str().unwrap(), "--format", format]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(!stdout(&out).contains("shpat_"), "{}", stdout(&out));
    }
    let json = inspect_json("validate/v2.many_faults.json");
    assert_eq!(json["filled_secrets"], 1);
    let out = flowpack(&["inspect", file.to_str().unwrap()]);
    assert!(
        stdout(&out).contains("filled secrets  1"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("[0] iteration 7  Deployed  6 steps: connector 2, flow-control 1, script 1, trigger 1, try-catch 1"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn help_shows_an_example_and_the_json_shape() {
    let out = flowpack(&["inspect", "--help"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    assert!(
        text.contains("flowpack inspect flows/orders.json --format json"),
        "{text}"
    );
    assert!(text.contains("\"step_types\""), "{text}");
}
