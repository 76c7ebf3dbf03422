//! SARIF 2.1.0 output of validation reports, so CI systems can annotate findings.
//!
//! One run, tool `flowpack` with every rule of [`RULES`]; one result per finding. A finding's
//! JSON pointer is its logical location (`logicalLocations[0].fullyQualifiedName`, kind
//! `member`); the physical location names the file. Line numbers are not given: the pointer is
//! exact, and mapping it to a line would need a second, positional parse.

use serde_json::{Value, json};

use super::{RULES, Report};

/// The SARIF 2.1.0 JSON schema's address.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Builds a SARIF 2.1.0 log from `(file, report)` pairs.
///
/// ```
/// use flowpack_core::validate::{sarif::sarif_log, Finding, Report, Severity};
/// let report = Report { findings: vec![Finding { severity: Severity::Error, code: "FP0301",
///     pointer: "/flow/priority".into(), message: "too high".into(), hint: "1 to 5".into() }] };
/// let log = sarif_log(&[("a.json".to_string(), report)]);
/// assert_eq!(log["version"], "2.1.0");
/// assert_eq!(log["runs"][0]["results"][0]["ruleId"], "FP0301");
/// ```
pub fn sarif_log(reports: &[(String, Report)]) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.code,
                "name": r.name,
                "shortDescription": { "text": r.summary },
                "defaultConfiguration": { "level": r.severity.as_str() },
            })
        })
        .collect();
    let mut results = Vec::new();
    for (file, report) in reports {
        for f in &report.findings {
            let rule_index = RULES
                .iter()
                .position(|r| r.code == f.code)
                .expect("every finding's code is in RULES");
            results.push(json!({
                "ruleId": f.code,
                "ruleIndex": rule_index,
                "level": f.severity.as_str(),
                "message": { "text": format!("{} (hint: {})", f.message, f.hint) },
                "locations": [{
                    "physicalLocation": { "artifactLocation": { "uri": file_uri(file) } },
                    "logicalLocations": [{
                        "fullyQualifiedName": f.pointer,
                        "kind": "member",
                    }],
                }],
                "properties": { "pointer": f.pointer, "hint": f.hint },
            }));
        }
    }
    json!({
        "version": "2.1.0",
        "$schema": SARIF_SCHEMA,
        "runs": [{
            "tool": {
                "driver": {
                    "name": "flowpack",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "results": results,
        }]
    })
}

/// A file path as a relative URI reference: forward slashes, and the characters a URI cannot
/// hold percent-encoded.
fn file_uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.replace('\\', "/").bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:@!$&'()*+,;=".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{Finding, Severity};

    #[test]
    fn results_reference_their_rule_and_point_at_the_value() {
        let report = Report {
            findings: vec![Finding {
                severity: Severity::Warning,
                code: "FP0701",
                pointer: "/metadata/import_summary/imported_resources/flow_steps".into(),
                message: "import_summary says flow_steps is 5".into(),
                hint: "run migrate".into(),
            }],
        };
        let log = sarif_log(&[("flows/my flow.json".into(), report)]);
        let run = &log["runs"][0];
        let result = &run["results"][0];
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(run["tool"]["driver"]["rules"][index]["id"], "FP0701");
        assert_eq!(
            run["tool"]["driver"]["rules"][index]["defaultConfiguration"]["level"],
            "warning"
        );
        assert_eq!(result["level"], "warning");
        assert_eq!(
            result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "flows/my%20flow.json"
        );
        assert_eq!(
            result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
            "/metadata/import_summary/imported_resources/flow_steps"
        );
        assert_eq!(
            run["tool"]["driver"]["rules"].as_array().unwrap().len(),
            RULES.len()
        );
    }
}
