//! Validation (DESIGN §4): findings are data, not errors.
//!
//! [`validate`] runs the structural half (the JSON Schema of the document's format version) and
//! the semantic rules, and returns a [`Report`]. Every finding carries a stable `code`, an
//! RFC 6901 `pointer` to the faulty value, a message and a hint. Secret values never appear in a
//! message.

use serde::Serialize;

use crate::document::Document;
use crate::secrets::{self, SecretKind, SecretRules};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look; fails only with `--deny-warnings`.
    Warning,
    /// The document is broken or unsafe to move.
    Error,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One finding about a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `error` or `warning`.
    pub severity: Severity,
    /// A stable code, e.g. `FP0201` (see [`RULES`]).
    pub code: &'static str,
    /// RFC 6901 pointer to the faulty value (`""` is the whole document).
    pub pointer: String,
    /// What is wrong, naming the object at fault.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// The findings about one document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Findings in document order within each rule, rules in [`RULES`] order.
    pub findings: Vec<Finding>,
}

impl Report {
    /// How many findings have this severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// Whether the report fails: any error, or any warning when `deny_warnings`.
    pub fn fails(&self, deny_warnings: bool) -> bool {
        self.findings.iter().any(|f| {
            f.severity == Severity::Error || (deny_warnings && f.severity == Severity::Warning)
        })
    }
}

/// Options of [`validate`].
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// Which keys are credential-like.
    pub secret_rules: SecretRules,
}

/// A validation rule's identity, for SARIF's `tool.driver.rules` and the docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// The stable code.
    pub code: &'static str,
    /// A short kebab-case name.
    pub name: &'static str,
    /// The default severity.
    pub severity: Severity,
    /// One sentence on what it checks.
    pub summary: &'static str,
}

/// Every rule, in the order they run.
pub const RULES: &[Rule] = &[
    Rule {
        code: "FP0301",
        name: "priority-range",
        severity: Severity::Error,
        summary: "flow.priority and each version's flow_priority are integers from 1 to 5",
    },
    Rule {
        code: "FP0801",
        name: "secret-value",
        severity: Severity::Error,
        summary: "no credential or secret variable value travels in the document",
    },
];

fn rule(code: &str) -> &'static Rule {
    RULES
        .iter()
        .find(|r| r.code == code)
        .expect("every emitted code is in RULES")
}

fn finding(
    code: &'static str,
    pointer: String,
    message: String,
    hint: impl Into<String>,
) -> Finding {
    Finding {
        severity: rule(code).severity,
        code,
        pointer,
        message,
        hint: hint.into(),
    }
}

/// Validates a document of either format version.
pub fn validate(doc: &Document, opts: &ValidateOptions) -> Report {
    let mut findings = Vec::new();
    check_priority(doc, &mut findings);
    check_secrets(doc, opts, &mut findings);
    Report { findings }
}

fn check_priority(doc: &Document, out: &mut Vec<Finding>) {
    let Some(flow) = doc.flow() else { return };
    let mut check = |pointer: String, v: Option<&serde_json::Value>| {
        let Some(v) = v else { return };
        if v.as_i64().is_some_and(|p| (1..=5).contains(&p)) {
            return;
        }
        out.push(finding(
            "FP0301",
            pointer,
            format!("priority {v} is out of range"),
            "use an integer from 1 (highest) to 5 (lowest)",
        ));
    };
    check("/flow/priority".into(), flow.raw().get("priority"));
    for version in flow.versions() {
        check(
            format!("{}/flow_priority", version.pointer()),
            version.raw().get("flow_priority"),
        );
    }
}

fn check_secrets(doc: &Document, opts: &ValidateOptions, out: &mut Vec<Finding>) {
    for slot in secrets::find_secrets(doc.value(), &opts.secret_rules) {
        if !slot.filled {
            continue;
        }
        let message = match &slot.kind {
            SecretKind::Credential { key } => {
                format!("credential `{key}` holds a value ({})", secrets::MASK)
            }
            SecretKind::Variable { name } => {
                format!("secret variable `{name}` holds a value ({})", secrets::MASK)
            }
        };
        out.push(finding(
            "FP0801",
            slot.pointer,
            message,
            "credentials should not travel in a file: empty the value and supply it at push time \
             (an overlay's [secrets]), or let `flowpack pack` strip it",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_out_of_range_points_at_the_value() {
        let doc = Document::from_slice(
            br#"{"flow":{"priority":9,"versions":[{"flow_priority":2,"steps":[]}]}}"#,
            "x",
        )
        .unwrap();
        let report = validate(&doc, &ValidateOptions::default());
        assert_eq!(report.findings.len(), 1);
        assert_eq!(report.findings[0].code, "FP0301");
        assert_eq!(report.findings[0].pointer, "/flow/priority");
        assert!(report.fails(false));
    }

    #[test]
    fn secret_findings_never_show_the_value() {
        let doc = Document::from_slice(
            br#"{"systems":[{"system":{"credentials":{"token":"hunter2"}}}]}"#,
            "x",
        )
        .unwrap();
        let report = validate(&doc, &ValidateOptions::default());
        let f = &report.findings[0];
        assert_eq!(f.code, "FP0801");
        assert_eq!(f.pointer, "/systems/0/system/credentials/token");
        assert!(!format!("{report:?}").contains("hunter2"));
    }
}
