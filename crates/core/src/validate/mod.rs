//! Validation: findings are data, not errors.
//!
//! [`validate`] runs the structural half (the JSON Schema of the document's format version) and
//! the semantic rules, and returns a [`Report`]. Every finding carries a stable `code`, an
//! RFC 6901 `pointer` to the faulty value, a message and a hint. Secret values never appear in a
//! message.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;

use crate::document::{Document, StepView, VersionStatus, VersionView, json_type_name};
use crate::secrets::{self, SecretKind, SecretRules};
use crate::summary;

pub mod cron;
mod graph;
pub mod sarif;
pub mod schema;

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
#[non_exhaustive]
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
        code: "FP0101",
        name: "schema",
        severity: Severity::Error,
        summary: "the document matches the JSON Schema of its format version (required keys, types)",
    },
    Rule {
        code: "FP0201",
        name: "duplicate-step-id",
        severity: Severity::Error,
        summary: "step ids are unique within a version",
    },
    Rule {
        code: "FP0202",
        name: "dangling-connection",
        severity: Severity::Error,
        summary: "both ends of every connection name a step of the version",
    },
    Rule {
        code: "FP0203",
        name: "route-to-unknown-step",
        severity: Severity::Error,
        summary: "every route's first_step names a step of the version (by id in v2, by name in v1)",
    },
    Rule {
        code: "FP0204",
        name: "unreachable-step",
        severity: Severity::Warning,
        summary: "every step of a version-2 flow is reachable from its trigger through connections and routes",
    },
    Rule {
        code: "FP0205",
        name: "trigger-count",
        severity: Severity::Warning,
        summary: "a version-2 version has exactly one trigger step (a version-1 version at most one)",
    },
    Rule {
        code: "FP0301",
        name: "priority-range",
        severity: Severity::Error,
        summary: "flow.priority and each version's flow_priority are integers from 1 to 5",
    },
    Rule {
        code: "FP0401",
        name: "cron-syntax",
        severity: Severity::Error,
        summary: "schedules[].cron_string and a trigger's config.cron_expression are valid five-field cron",
    },
    Rule {
        code: "FP0501",
        name: "multiple-drafts",
        severity: Severity::Error,
        summary: "at most one version has status Draft",
    },
    Rule {
        code: "FP0502",
        name: "multiple-deployed",
        severity: Severity::Error,
        summary: "at most one version has status Deployed",
    },
    Rule {
        code: "FP0503",
        name: "is-deployed-mismatch",
        severity: Severity::Error,
        summary: "a version's is_deployed is true exactly when its status is Deployed",
    },
    Rule {
        code: "FP0504",
        name: "unknown-status",
        severity: Severity::Error,
        summary: "a version's status is Draft, Deployed or Inactive",
    },
    Rule {
        code: "FP0601",
        name: "unknown-system",
        severity: Severity::Error,
        summary: "every connector step's config.system names an entry of systems",
    },
    Rule {
        code: "FP0602",
        name: "unknown-script",
        severity: Severity::Error,
        summary: "every script step's config.script names an entry of scripts",
    },
    Rule {
        code: "FP0701",
        name: "import-summary-count",
        severity: Severity::Warning,
        summary: "metadata.import_summary counts agree with the document's content",
    },
    Rule {
        code: "FP0801",
        name: "secret-value",
        severity: Severity::Error,
        summary: "no credential or secret variable value travels in the document",
    },
];

/// The rule with this code, if any.
pub fn rule(code: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.code == code)
}

fn finding(
    code: &'static str,
    pointer: String,
    message: String,
    hint: impl Into<String>,
) -> Finding {
    Finding {
        severity: rule(code).expect("every emitted code is in RULES").severity,
        code,
        pointer,
        message,
        hint: hint.into(),
    }
}

/// Validates a document of either format version: the schema first, then the semantic rules,
/// which skip what is missing or mistyped (the schema reports that once).
pub fn validate(doc: &Document, opts: &ValidateOptions) -> Report {
    validate_checks(doc, opts, true)
}

/// [`validate`], with the secret rule (FP0801) left out when `secrets` is false: for `pack`,
/// which scans for secrets once itself (to strip them) and does not refuse them.
pub(crate) fn validate_checks(doc: &Document, opts: &ValidateOptions, secrets: bool) -> Report {
    let mut findings = Vec::new();
    for e in schema::check_schema(doc) {
        let at = if e.pointer.is_empty() {
            "the document".to_string()
        } else {
            format!("`{}`", e.pointer)
        };
        findings.push(finding(
            "FP0101",
            e.pointer,
            format!(
                "{at} does not match the export format version {} schema: {}",
                doc.format_version(),
                e.message
            ),
            format!(
                "see crates/core/schemas/export-v{}.schema.json for the expected structure",
                doc.format_version()
            ),
        ));
    }
    let graphs: Vec<graph::VersionGraph> = doc
        .flow()
        .map(|f| {
            f.versions()
                .map(|v| graph::VersionGraph::new(v, doc.format_version()))
                .collect()
        })
        .unwrap_or_default();
    for (code, check) in [
        ("FP0201", graph::check_duplicate_ids as graph::Check),
        ("FP0202", graph::check_connections),
        ("FP0203", graph::check_routes),
        ("FP0204", graph::check_reachability),
        ("FP0205", graph::check_triggers),
    ] {
        for g in &graphs {
            check(g, &mut |pointer, message, hint| {
                findings.push(finding(code, pointer, message, hint));
            });
        }
    }
    check_priority(doc, &mut findings);
    check_cron_strings(doc, &mut findings);
    check_statuses(doc, &mut findings);
    check_references(doc, &mut findings);
    check_import_summary(doc, &mut findings);
    if secrets {
        check_secrets(doc, opts, &mut findings);
    }
    Report { findings }
}

/// How a version is named in messages: `version 0 (iteration 7)`.
fn version_label(v: &VersionView<'_>) -> String {
    match v.iteration() {
        Some(i) => format!("version {} (iteration {i})", v.index()),
        None => format!("version {}", v.index()),
    }
}

/// How a step is named in messages: `step "Name" (id 3)`.
fn step_label(s: &StepView<'_>) -> String {
    let name = match s.name() {
        Some(n) => format!("step \"{n}\""),
        None => format!("step #{}", s.index()),
    };
    match s.id() {
        Some(id) => format!("{name} (id {id})"),
        None => name,
    }
}

fn check_priority(doc: &Document, out: &mut Vec<Finding>) {
    let Some(flow) = doc.flow() else { return };
    let mut check = |pointer: String, what: String, v: Option<&Value>| {
        let Some(v) = v else { return };
        if v.as_i64().is_some_and(|p| (1..=5).contains(&p)) {
            return;
        }
        let shown = match v {
            Value::Number(_) => v.to_string(),
            other => format!("a {}", json_type_name(other)),
        };
        out.push(finding(
            "FP0301",
            pointer,
            format!("{what} is {shown}, not an integer from 1 to 5"),
            "use an integer from 1 (highest) to 5 (lowest)",
        ));
    };
    let flow_name = flow.name().unwrap_or("the flow");
    check(
        "/flow/priority".into(),
        format!("the priority of flow \"{flow_name}\""),
        flow.raw().get("priority"),
    );
    for version in flow.versions() {
        check(
            format!("{}/flow_priority", version.pointer()),
            format!("flow_priority of {}", version_label(&version)),
            version.raw().get("flow_priority"),
        );
    }
}

fn check_cron_strings(doc: &Document, out: &mut Vec<Finding>) {
    let Some(flow) = doc.flow() else { return };
    let hint = "write five fields: minute (0-59) hour (0-23) day-of-month (1-31) month (1-12 or \
                JAN-DEC) day-of-week (0-7 or SUN-SAT), e.g. `*/15 * * * *`";
    for version in flow.versions() {
        for (i, (pointer, cron)) in version.schedules().enumerate() {
            let Some(cron) = cron else { continue };
            if let Err(e) = cron::check_cron(cron) {
                out.push(finding(
                    "FP0401",
                    pointer,
                    format!(
                        "schedule {i} of {}: cron string `{cron}` is invalid: {e}",
                        version_label(&version)
                    ),
                    hint,
                ));
            }
        }
        for step in version.steps().filter(|s| s.kind() == Some("trigger")) {
            let Some(cron) = step.config_str("cron_expression") else {
                continue;
            };
            if let Err(e) = cron::check_cron(cron) {
                out.push(finding(
                    "FP0401",
                    format!("{}/config/cron_expression", step.pointer()),
                    format!(
                        "trigger {} of {}: cron expression `{cron}` is invalid: {e}",
                        step_label(&step),
                        version_label(&version)
                    ),
                    hint,
                ));
            }
        }
    }
}

fn check_statuses(doc: &Document, out: &mut Vec<Finding>) {
    let Some(flow) = doc.flow() else { return };
    for (status, code) in [
        (VersionStatus::Draft, "FP0501"),
        (VersionStatus::Deployed, "FP0502"),
    ] {
        let mut first: Option<VersionView<'_>> = None;
        for version in flow.versions().filter(|v| v.status() == Some(status)) {
            match &first {
                None => first = Some(version),
                Some(first) => out.push(finding(
                    code,
                    format!("{}/status", version.pointer()),
                    format!(
                        "{} is a second {} version ({} is one already)",
                        version_label(&version),
                        status.as_str(),
                        version_label(first)
                    ),
                    format!(
                        "a flow has at most one {} version: set the others to Inactive",
                        status.as_str()
                    ),
                )),
            }
        }
    }
    for version in flow.versions() {
        let (Some(status), Some(deployed)) = (version.status(), version.is_deployed()) else {
            continue;
        };
        if (status == VersionStatus::Deployed) != deployed {
            out.push(finding(
                "FP0503",
                format!("{}/is_deployed", version.pointer()),
                format!(
                    "{} has status {} but is_deployed {deployed}",
                    version_label(&version),
                    status.as_str()
                ),
                "is_deployed is true exactly for the Deployed version: make the two agree",
            ));
        }
    }
    for version in flow.versions() {
        let Some(status) = version.status_str() else {
            continue;
        };
        if VersionStatus::parse(status).is_none() {
            out.push(finding(
                "FP0504",
                format!("{}/status", version.pointer()),
                format!(
                    "{} has unknown status \"{status}\"",
                    version_label(&version)
                ),
                "use Draft, Deployed or Inactive (spelled so)",
            ));
        }
    }
}

fn check_references(doc: &Document, out: &mut Vec<Finding>) {
    let Some(flow) = doc.flow() else { return };
    let root = doc.root();
    let systems: Option<HashSet<&str>> = root
        .get("systems")
        .and_then(Value::as_array)
        .map(|_| doc.systems().filter_map(|s| s.name()).collect());
    let scripts: Option<HashSet<&str>> = root
        .get("scripts")
        .and_then(Value::as_array)
        .map(|_| doc.scripts().filter_map(|s| s.name()).collect());
    for version in flow.versions() {
        for step in version.steps() {
            let (code, key, known, what) = match step.kind() {
                Some("connector") => ("FP0601", "system", &systems, "systems"),
                Some("script") => ("FP0602", "script", &scripts, "scripts"),
                _ => continue,
            };
            let (Some(known), Some(name)) = (known, step.config_str(key)) else {
                continue;
            };
            if known.contains(name) {
                continue;
            }
            let mut names: Vec<&str> = known.iter().copied().collect();
            names.sort_unstable();
            let listed = if names.is_empty() {
                format!("`{what}` is empty")
            } else {
                format!("known: {}", names.join(", "))
            };
            out.push(finding(
                code,
                format!("{}/config/{key}", step.pointer()),
                format!(
                    "{} of {} names {key} \"{name}\", which is not in `{what}`",
                    step_label(&step),
                    version_label(&version)
                ),
                format!("name an entry of `{what}` ({listed}), or add the {key} to `{what}`"),
            ));
        }
    }
}

fn check_import_summary(doc: &Document, out: &mut Vec<Finding>) {
    let computed = summary::compute_counts(doc);
    for (pointer, stated) in summary::stated_counts(doc) {
        let Some(stated) = stated else { continue };
        let key = pointer
            .trim_start_matches("/metadata/import_summary")
            .to_string();
        let Some((_, actual)) = computed
            .with_pointers()
            .into_iter()
            .find(|(p, _)| *p == key)
        else {
            continue;
        };
        if stated != actual {
            let name = key.rsplit('/').next().unwrap_or(&key);
            out.push(finding(
                "FP0701",
                pointer,
                format!(
                    "import_summary says {name} is {stated}, the document's content gives {actual}"
                ),
                "run `flowpack migrate` (it recomputes the summary) or correct the count",
            ));
        }
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

    /// Each fixture of `fixtures/validate/` trips exactly one rule, at one pointer.
    const FIXTURES: &[(&str, &str, &str)] = &[
        ("v2.missing_top_level_key", "FP0101", ""),
        ("v2.wrong_type", "FP0101", "/flow/versions/1/is_deployed"),
        ("v1.step_without_name", "FP0101", "/flow/versions/0/steps/3"),
        (
            "v2.duplicate_step_id",
            "FP0201",
            "/flow/versions/1/steps/1/id",
        ),
        (
            "v2.dangling_connection",
            "FP0202",
            "/flow/versions/1/connections/0/to",
        ),
        (
            "v2.route_to_unknown_step",
            "FP0203",
            "/flow/versions/0/steps/1/routes/1/first_step",
        ),
        (
            "v1.route_to_unknown_step",
            "FP0203",
            "/flow/versions/0/steps/0/routes/0/first_step",
        ),
        ("v2.unreachable_step", "FP0204", "/flow/versions/0/steps/5"),
        ("v2.no_trigger", "FP0205", "/flow/versions/1/steps"),
        ("v2.two_triggers", "FP0205", "/flow/versions/1/steps/1"),
        ("v1.two_triggers", "FP0205", "/flow/versions/0/steps/1"),
        ("v2.priority_out_of_range", "FP0301", "/flow/priority"),
        (
            "v2.flow_priority_not_an_integer",
            "FP0301",
            "/flow/versions/1/flow_priority",
        ),
        (
            "v2.bad_cron_string",
            "FP0401",
            "/flow/versions/0/schedules/0/cron_string",
        ),
        (
            "v2.bad_cron_expression",
            "FP0401",
            "/flow/versions/0/steps/0/config/cron_expression",
        ),
        ("v2.two_drafts", "FP0501", "/flow/versions/2/status"),
        ("v2.two_deployed", "FP0502", "/flow/versions/2/status"),
        (
            "v2.is_deployed_mismatch",
            "FP0503",
            "/flow/versions/1/is_deployed",
        ),
        ("v2.unknown_status", "FP0504", "/flow/versions/1/status"),
        (
            "v2.unknown_system",
            "FP0601",
            "/flow/versions/0/steps/5/config/system",
        ),
        (
            "v2.unknown_script",
            "FP0602",
            "/flow/versions/0/steps/4/config/script",
        ),
        (
            "v2.import_summary_mismatch",
            "FP0701",
            "/metadata/import_summary/imported_resources/flow_steps",
        ),
        (
            "v2.secret_value",
            "FP0801",
            "/systems/1/system/authentication_implementations/0/credentials/consumer_secret",
        ),
        (
            "v1.secret_variable",
            "FP0801",
            "/flow/versions/0/variables/0/value",
        ),
    ];

    fn fixture(rel: &str) -> Document {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(rel);
        Document::read(&path).unwrap()
    }

    fn found(report: &Report) -> Vec<(&'static str, &str)> {
        report
            .findings
            .iter()
            .map(|f| (f.code, f.pointer.as_str()))
            .collect()
    }

    #[test]
    fn each_fixture_trips_exactly_its_rule() {
        for (name, code, pointer) in FIXTURES {
            let doc = fixture(&format!("validate/{name}.json"));
            let report = validate(&doc, &ValidateOptions::default());
            assert_eq!(
                found(&report),
                vec![(*code, *pointer)],
                "{name}: {report:#?}"
            );
            let f = &report.findings[0];
            assert!(!f.message.is_empty() && !f.hint.is_empty(), "{name}");
            assert_eq!(report.fails(false), f.severity == Severity::Error, "{name}");
            assert!(report.fails(true), "{name}");
        }
    }

    #[test]
    fn every_rule_has_a_fixture_and_a_unique_code() {
        for (i, r) in RULES.iter().enumerate() {
            assert!(
                FIXTURES.iter().any(|(_, code, _)| *code == r.code),
                "no fixture trips {}",
                r.code
            );
            assert!(
                RULES[..i]
                    .iter()
                    .all(|o| o.code != r.code && o.name != r.name)
            );
        }
    }

    #[test]
    fn the_reference_documents_have_no_findings() {
        for name in ["export-v1-legacy", "export-v2-order-sync"] {
            let doc = fixture(&format!("reference/{name}.json"));
            let report = validate(&doc, &ValidateOptions::default());
            assert_eq!(report, Report::default(), "{name}");
        }
    }

    #[test]
    fn many_faults_yield_one_finding_each() {
        let doc = fixture("validate/v2.many_faults.json");
        let report = validate(&doc, &ValidateOptions::default());
        assert_eq!(
            found(&report),
            vec![
                ("FP0201", "/flow/versions/1/steps/1/id"),
                ("FP0202", "/flow/versions/0/connections/4/to"),
                ("FP0301", "/flow/priority"),
                ("FP0401", "/flow/versions/0/schedules/0/cron_string"),
                (
                    "FP0801",
                    "/systems/0/system/authentication_implementations/0/credentials/token"
                ),
            ]
        );
    }

    #[test]
    fn messages_name_the_object_at_fault() {
        let messages = |name: &str| -> String {
            let report = validate(
                &fixture(&format!("validate/{name}.json")),
                &ValidateOptions::default(),
            );
            report.findings[0].message.clone()
        };
        assert_eq!(
            messages("v2.duplicate_step_id"),
            "step \"Map\" (id 1) of version 1 (iteration 8) has the same id as step \"Every 15 \
             minutes\" (id 1)"
        );
        assert_eq!(
            messages("v2.dangling_connection"),
            "connection 0 of version 1 (iteration 8): `to` names step 99, which is not a step of \
             this version"
        );
        assert_eq!(
            messages("v1.route_to_unknown_step"),
            "route \"Try\" of step \"Try/Catch\" in version 0 starts at \"Source Conector\", which \
             is not a step of this version"
        );
        assert_eq!(
            messages("v2.bad_cron_string"),
            "schedule 0 of version 0 (iteration 7): cron string `*/15 * * *` is invalid: expected \
             five fields (minute hour day-of-month month day-of-week), found 4"
        );
        assert_eq!(
            messages("v2.bad_cron_expression"),
            "trigger step \"Every 15 minutes\" (id 1) of version 0 (iteration 7): cron expression \
             `0 24 * * *` is invalid: hour field `24`: 24 is out of range 0-23"
        );
        assert_eq!(
            messages("v2.unknown_system"),
            "step \"NetSuite - Upsert sales order\" (id 6) of version 0 (iteration 7) names system \
             \"Netsuite\", which is not in `systems`"
        );
        assert_eq!(
            messages("v2.two_drafts"),
            "version 2 (iteration 5) is a second Draft version (version 1 (iteration 8) is one \
             already)"
        );
        assert_eq!(
            messages("v2.import_summary_mismatch"),
            "import_summary says flow_steps is 5, the document's content gives 6"
        );
        assert_eq!(
            messages("v2.missing_top_level_key"),
            "the document does not match the export format version 2 schema: \"dependencies\" is \
             a required property"
        );
        assert_eq!(
            messages("v2.flow_priority_not_an_integer"),
            "flow_priority of version 1 (iteration 8) is a string, not an integer from 1 to 5"
        );
    }

    #[test]
    fn semantic_rules_skip_what_the_schema_reports() {
        // Missing ids, a connection end of the wrong type, a status that is not a string and a
        // connector with no config: only schema findings.
        let doc = Document::from_slice(
            br#"{"metadata":{"company_name":"A","flow_name":"F","exported_at":"2026-01-01T00:00:00Z"},
                 "flow":{"name":"F","priority":1,"versions":[{"status":7,"steps":[
                   {"type":"trigger","name":"T"},{"id":2,"type":"connector","name":"C"}],
                   "connections":[{"from":true,"to":2}],"schedules":[{"cron_string":5}]}]},
                 "systems":[],"scripts":[],"dependencies":[]}"#,
            "x",
        )
        .unwrap();
        let report = validate(&doc, &ValidateOptions::default());
        assert!(
            report.findings.iter().all(|f| f.code == "FP0101"),
            "{report:#?}"
        );
        assert_eq!(
            found(&report),
            vec![
                ("FP0101", "/flow/versions/0/status"),
                ("FP0101", "/flow/versions/0/steps/0"),
                ("FP0101", "/flow/versions/0/connections/0/from"),
                ("FP0101", "/flow/versions/0/schedules/0/cron_string"),
            ]
        );
    }

    #[test]
    fn pointers_escape_keys_and_string_ids_are_not_numbers() {
        let doc = Document::from_slice(
            br#"{"flow":{"versions":[{"status":"Draft","steps":[
                 {"id":"1","type":"trigger","name":"T"},{"id":1,"type":"map","name":"M"}],
                 "connections":[{"from":"1","to":1}]}]},
                 "systems":[{"system":{"name":"S","authentication_implementations":[
                   {"credentials":{"a/b~c":{"token":"x"}}}]}}]}"#,
            "x",
        )
        .unwrap();
        let report = validate(&doc, &ValidateOptions::default());
        let codes: Vec<_> = found(&report)
            .into_iter()
            .filter(|(c, _)| *c != "FP0101")
            .collect();
        assert_eq!(
            codes,
            vec![(
                "FP0801",
                "/systems/0/system/authentication_implementations/0/credentials/a~1b~0c/token"
            )]
        );
    }

    #[test]
    fn priority_out_of_range_points_at_the_value() {
        let doc = Document::from_slice(
            br#"{"flow":{"priority":9,"versions":[{"flow_priority":2,"steps":[{"id":1,"type":"trigger"}]}]}}"#,
            "x",
        )
        .unwrap();
        let report = validate(&doc, &ValidateOptions::default());
        let semantic: Vec<_> = found(&report)
            .into_iter()
            .filter(|(code, _)| *code != "FP0101")
            .collect();
        assert_eq!(semantic, vec![("FP0301", "/flow/priority")]);
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
        let f = report.findings.iter().find(|f| f.code != "FP0101").unwrap();
        assert_eq!(f.code, "FP0801");
        assert_eq!(f.pointer, "/systems/0/system/credentials/token");
        assert!(!format!("{report:?}").contains("hunter2"));
    }

    mod never_panics {
        use proptest::prelude::*;
        use serde_json::{Map, Value};

        use super::super::*;
        use crate::inspect::inspect;

        const KEYS: &[&str] = &[
            "metadata",
            "flow",
            "systems",
            "scripts",
            "dependencies",
            "format_version",
            "import_summary",
            "setup_required",
            "imported_resources",
            "flow_steps",
            "versions",
            "steps",
            "connections",
            "from",
            "to",
            "routes",
            "first_step",
            "id",
            "type",
            "microservice",
            "name",
            "config",
            "system",
            "script",
            "cron_expression",
            "schedules",
            "cron_string",
            "status",
            "is_deployed",
            "iteration",
            "priority",
            "flow_priority",
            "variables",
            "key",
            "value",
            "is_secret",
            "token",
            "credentials",
            "authentication_implementations",
            "endpoint",
            "a/b~c",
            "",
        ];

        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                (0u32..10).prop_map(Value::from),
                "[0-9]{1,30}".prop_map(|d| serde_json::from_str(&d).unwrap_or(Value::Null)),
                prop::sample::select(vec![
                    "trigger",
                    "connector",
                    "script",
                    "Draft",
                    "Deployed",
                    "Inactive",
                    "Shopify",
                    "*/15 * * * *",
                    "61 * * * *",
                    "* * *",
                    "",
                ])
                .prop_map(Value::from),
                ".{0,12}".prop_map(Value::from),
            ];
            leaf.prop_recursive(6, 96, 8, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..8)
                        .prop_map(|kv| {
                            Value::Object(
                                kv.into_iter()
                                    .map(|(k, v)| (k.to_string(), v))
                                    .collect::<Map<_, _>>(),
                            )
                        }),
                ]
            })
        }

        fn exercise(doc: &Document, source: &[u8]) {
            let report = validate(doc, &ValidateOptions::default());
            for f in &report.findings {
                assert!(rule(f.code).is_some());
                assert!(f.pointer.is_empty() || f.pointer.starts_with('/'));
            }
            let log = sarif::sarif_log(&[sarif::SarifFile {
                path: "x",
                report: &report,
                source: Some(source),
            }]);
            for (f, result) in report
                .findings
                .iter()
                .zip(log["runs"][0]["results"].as_array().unwrap())
            {
                // Every finding points at a value that exists, so it has a line.
                if doc.value().pointer(&f.pointer).is_some() {
                    assert!(
                        result["locations"][0]["physicalLocation"]["region"]["startLine"].is_u64(),
                        "{}",
                        f.pointer
                    );
                }
            }
            let _ = inspect(doc, &SecretRules::default());
        }

        /// Replaces the value at a random depth-first position of `doc` with `replacement`.
        fn mutate(doc: &mut Value, mut n: usize, replacement: Value) {
            fn walk(v: &mut Value, n: &mut usize, r: &mut Option<Value>) {
                if r.is_none() {
                    return;
                }
                if *n == 0 {
                    *v = r.take().unwrap();
                    return;
                }
                *n -= 1;
                match v {
                    Value::Object(m) => m.values_mut().for_each(|c| walk(c, n, r)),
                    Value::Array(a) => a.iter_mut().for_each(|c| walk(c, n, r)),
                    _ => {}
                }
            }
            walk(doc, &mut n, &mut Some(replacement));
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
                if let Ok(doc) = Document::from_slice(&bytes, "x") {
                    exercise(&doc, &bytes);
                }
            }

            #[test]
            fn arbitrary_json(value in json()) {
                let text = serde_json::to_vec(&value).unwrap();
                if let Ok(doc) = Document::from_slice(&text, "x") {
                    exercise(&doc, &text);
                }
            }

            #[test]
            fn mutated_reference_documents(
                v1 in any::<bool>(),
                at in 0usize..200,
                replacement in json(),
            ) {
                let mut value: Value = serde_json::from_slice(if v1 {
                    &include_bytes!("../../fixtures/reference/export-v1-legacy.json")[..]
                } else {
                    &include_bytes!("../../fixtures/reference/export-v2-order-sync.json")[..]
                })
                .unwrap();
                mutate(&mut value, at, replacement);
                let text = crate::document::to_pretty_bytes(&value);
                if let Ok(doc) = Document::from_slice(&text, "x") {
                    exercise(&doc, &text);
                }
            }
        }
    }
}
