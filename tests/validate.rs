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

/// `validate` and `inspect` read their inputs through the same loader: one line naming the file;
/// a file that cannot be read is 2 (could not run), one that is not an export document is 1
/// (rejected).
#[test]
fn unreadable_inputs_exit_2_and_malformed_ones_1_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let notjson = dir.path().join("notjson.json");
    std::fs::write(&notjson, "this is not json").unwrap();
    let array = dir.path().join("array.json");
    std::fs::write(&array, "[1, 2]").unwrap();
    for cmd in ["validate", "inspect"] {
        for (p, want) in [(&missing, 2), (&notjson, 1), (&array, 1)] {
            let out = flowpack(&[cmd, p.to_str().unwrap()]);
            assert_eq!(code(&out), want, "{cmd}: {}", stderr(&out));
            let err = stderr(&out);
            assert_eq!(err.lines().count(), 1, "{cmd}: {err}");
            assert!(err.starts_with("flowpack: error: "), "{cmd}: {err}");
            assert!(err.contains(p.to_str().unwrap()), "{cmd}: {err}");
            assert!(stdout(&out).is_empty(), "{cmd}");
        }
    }
}

#[test]
fn many_faults_list_one_finding_per_fault_as_json() {
    let file = fixture("validate/v2.many_faults.json");
    let out = flowpack(&["validate", file.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = &json["files"][0];
    assert_eq!(report["file"], file.to_str().unwrap());
    assert_eq!(report["errors"], 5);
    assert_eq!(report["warnings"], 0);
    let found: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["severity"], "error");
            assert!(!f["message"].as_str().unwrap().is_empty());
            assert!(!f["hint"].as_str().unwrap().is_empty());
            (
                f["code"].as_str().unwrap().to_string(),
                f["pointer"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("FP0201", "/flow/versions/1/steps/1/id"),
        ("FP0202", "/flow/versions/0/connections/4/to"),
        ("FP0301", "/flow/priority"),
        ("FP0401", "/flow/versions/0/schedules/0/cron_string"),
        (
            "FP0801",
            "/systems/0/system/authentication_implementations/0/credentials/token",
        ),
    ];
    assert_eq!(
        found,
        expected
            .map(|(c, p)| (c.to_string(), p.to_string()))
            .to_vec()
    );
    assert!(!stdout(&out).contains("shpat_0123456789abcdef"));
}

#[test]
fn human_output_shows_pointer_and_hint() {
    let file = fixture("validate/v2.unknown_system.json");
    let out = flowpack(&["validate", file.to_str().unwrap()]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "error[FP0601]: step \"NetSuite - Upsert sales order\" (id 6) of version 0 \
             (iteration 7) names system \"Netsuite\", which is not in `systems`\n  --> {}#/flow/versions/0/steps/5/config/system\n  = hint: name an entry of `systems` (known: NetSuite, Shopify), or add the system to `systems`\n",
            file.display()
        )),
        "{text}"
    );
}

#[test]
fn warnings_fail_only_with_deny_warnings() {
    let file = fixture("validate/v2.unreachable_step.json");
    let out = flowpack(&["validate", file.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out).contains("warning[FP0204]"), "{}", stdout(&out));
    let out = flowpack(&["validate", "--deny-warnings", file.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
}

#[test]
fn sarif_output_annotates_each_finding() {
    let faulty = fixture("validate/v2.many_faults.json");
    let clean = fixture("reference/export-v2-order-sync.json");
    let out = flowpack(&[
        "validate",
        "--format",
        "sarif",
        clean.to_str().unwrap(),
        faulty.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "flowpack");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    for r in results {
        let index = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], r["ruleId"]);
        assert_eq!(r["level"], "error");
        let loc = &r["locations"][0];
        assert_eq!(
            loc["physicalLocation"]["artifactLocation"]["uri"],
            faulty.to_str().unwrap()
        );
        assert!(
            loc["logicalLocations"][0]["fullyQualifiedName"]
                .as_str()
                .unwrap()
                .starts_with('/')
        );
    }
    assert_eq!(results[2]["ruleId"], "FP0301");
    let line = results[2]["locations"][0]["physicalLocation"]["region"]["startLine"]
        .as_u64()
        .unwrap() as usize;
    let text = std::fs::read_to_string(&faulty).unwrap();
    assert_eq!(
        text.lines().nth(line - 1).unwrap().trim(),
        "\"priority\": 9,"
    );
    assert_eq!(
        results[2]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
        "/flow/priority"
    );
}

#[test]
fn help_lists_every_rule_and_an_example() {
    let out = flowpack(&["validate", "--help"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out).replace('\n', " ");
    assert!(
        text.contains("flowpack validate flows/*.json --format sarif"),
        "{text}"
    );
    for rule in flowpack_core::validate::RULES {
        assert!(
            text.contains(&format!("{} {}", rule.code, rule.name)),
            "{} missing from --help",
            rule.code
        );
    }
}
