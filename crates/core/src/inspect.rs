//! `inspect`: what an export document holds, at a glance — format version, flow, versions with
//! their step counts, systems, scripts, variables, and how many filled secret values it carries.
//! Secret values are never part of an [`Inspection`]: a variable says only whether it has a value.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::document::{Detection, Document, FormatVersion};
use crate::secrets::{SecretRules, find_secrets};

/// What a document holds (serialised as the JSON of `flowpack inspect --format json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    /// The detected format version (1 or 2).
    pub format_version: FormatVersion,
    /// Whether it was stamped in `metadata.format_version` or inferred.
    pub format_detection: Detection,
    /// The flow.
    pub flow: FlowSummary,
    /// `flow.versions`, in document order.
    pub versions: Vec<VersionSummary>,
    /// `systems`.
    pub systems: Vec<SystemSummary>,
    /// `scripts` (empty in version 1).
    pub scripts: Vec<ScriptSummary>,
    /// How many filled secret values (credentials, secret variables) the document holds.
    pub filled_secrets: usize,
}

/// The flow's identity and settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowSummary {
    /// `flow.name`, else `metadata.flow_name`.
    pub name: Option<String>,
    /// `flow.priority`, when an integer.
    pub priority: Option<i64>,
    /// `flow.is_enabled`.
    pub enabled: Option<bool>,
}

/// One version of the flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionSummary {
    /// `iteration` (absent in version 1).
    pub iteration: Option<i64>,
    /// `status` as written.
    pub status: Option<String>,
    /// How many steps.
    pub steps: usize,
    /// Steps per type (`type`, or `microservice` in version 1; `(none)` when missing), sorted.
    pub step_types: BTreeMap<String, usize>,
    /// `schedules[].cron_string`.
    pub schedules: Vec<String>,
    /// `variables`, without their values.
    pub variables: Vec<VariableSummary>,
}

/// A flow variable, without its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VariableSummary {
    /// `key`.
    pub key: Option<String>,
    /// `is_secret`.
    pub is_secret: bool,
    /// Whether `value` is present and not empty.
    pub has_value: bool,
}

/// One entry of `systems`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SystemSummary {
    /// `name`.
    pub name: Option<String>,
    /// `protocol`.
    pub protocol: Option<String>,
    /// How many `authentication_implementations`.
    pub auth_implementations: usize,
}

/// One entry of `scripts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptSummary {
    /// `name`.
    pub name: Option<String>,
    /// `language`.
    pub language: Option<String>,
}

/// Summarises a document. Never fails: what is missing or mistyped shows as `null` or zero
/// (`validate` says why).
///
/// ```
/// use flowpack_core::{document::Document, inspect::inspect, secrets::SecretRules};
/// let doc = Document::from_slice(br#"{"flow":{"name":"A","versions":[{"iteration":1,
///     "status":"Draft","steps":[{"id":1,"type":"trigger"},{"id":2,"type":"map"}]}]}}"#, "a.json")
///     .unwrap();
/// let i = inspect(&doc, &SecretRules::default());
/// assert_eq!(i.format_version.number(), 2);
/// assert_eq!(i.versions[0].steps, 2);
/// assert_eq!(i.versions[0].step_types["map"], 1);
/// ```
pub fn inspect(doc: &Document, rules: &SecretRules) -> Inspection {
    let flow = doc.flow();
    let versions = flow
        .iter()
        .flat_map(|f| f.versions())
        .map(|v| {
            let mut step_types = BTreeMap::new();
            let mut steps = 0;
            for step in v.steps() {
                steps += 1;
                *step_types
                    .entry(step.kind().unwrap_or("(none)").to_string())
                    .or_insert(0) += 1;
            }
            VersionSummary {
                iteration: v.iteration(),
                status: v.status_str().map(str::to_string),
                steps,
                step_types,
                schedules: v
                    .schedules()
                    .filter_map(|(_, c)| c.map(str::to_string))
                    .collect(),
                variables: v
                    .variables()
                    .map(|var| VariableSummary {
                        key: var.key().map(str::to_string),
                        is_secret: var.is_secret(),
                        has_value: match var.value() {
                            None | Some(serde_json::Value::Null) => false,
                            Some(serde_json::Value::String(s)) => !s.is_empty(),
                            Some(_) => true,
                        },
                    })
                    .collect(),
            }
        })
        .collect();
    Inspection {
        format_version: doc.format_version(),
        format_detection: doc.detection(),
        flow: FlowSummary {
            name: doc.flow_name().map(str::to_string),
            priority: flow.and_then(|f| f.priority()),
            enabled: flow.and_then(|f| f.is_enabled()),
        },
        versions,
        systems: doc
            .systems()
            .map(|s| SystemSummary {
                name: s.name().map(str::to_string),
                protocol: s
                    .raw()
                    .get("protocol")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string),
                auth_implementations: s.auth_implementations().count(),
            })
            .collect(),
        scripts: doc
            .scripts()
            .map(|s| ScriptSummary {
                name: s.name().map(str::to_string),
                language: s.language().map(str::to_string),
            })
            .collect(),
        filled_secrets: find_secrets(doc.value(), rules)
            .iter()
            .filter(|s| s.filled)
            .count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &[u8] = include_bytes!("../fixtures/reference/export-v1-legacy.json");
    const V2: &[u8] = include_bytes!("../fixtures/reference/export-v2-order-sync.json");

    #[test]
    fn summarises_the_reference_documents() {
        let v2 = inspect(
            &Document::from_slice(V2, "v2").unwrap(),
            &SecretRules::default(),
        );
        assert_eq!(v2.format_version, FormatVersion::V2);
        assert_eq!(v2.format_detection, Detection::Inferred);
        assert_eq!(v2.flow.name.as_deref(), Some("Shopify > NetSuite Orders"));
        assert_eq!(v2.flow.priority, Some(2));
        assert_eq!(v2.flow.enabled, Some(true));
        let steps: Vec<usize> = v2.versions.iter().map(|v| v.steps).collect();
        assert_eq!(steps, vec![6, 1]);
        assert_eq!(v2.versions[0].iteration, Some(7));
        assert_eq!(v2.versions[0].status.as_deref(), Some("Deployed"));
        assert_eq!(v2.versions[0].step_types["connector"], 2);
        assert_eq!(v2.versions[0].step_types.values().sum::<usize>(), 6);
        assert_eq!(
            v2.versions[0].variables[0],
            VariableSummary {
                key: Some("NETSUITE_SUBSIDIARY".into()),
                is_secret: false,
                has_value: false
            }
        );
        assert!(v2.versions[0].variables[1].has_value);
        assert_eq!(v2.systems.len(), 2);
        assert_eq!(v2.systems[1].auth_implementations, 1);
        assert_eq!(v2.scripts[0].language.as_deref(), Some("javascript"));
        assert_eq!(v2.filled_secrets, 0);

        let v1 = inspect(
            &Document::from_slice(V1, "v1").unwrap(),
            &SecretRules::default(),
        );
        assert_eq!(v1.format_version, FormatVersion::V1);
        assert_eq!(v1.versions.len(), 1);
        assert_eq!(v1.versions[0].steps, 5);
        assert_eq!(v1.versions[0].step_types["batch"], 1);
        assert_eq!(v1.versions[0].iteration, None);
        assert!(v1.scripts.is_empty());
    }

    #[test]
    fn secret_values_are_counted_never_shown() {
        let doc = Document::from_slice(
            br#"{"flow":{"versions":[{"variables":[{"key":"K","value":"s3cr3t","is_secret":true}],"steps":[]}]},
                "systems":[{"system":{"name":"S","authentication_implementations":[{"credentials":{"password":"hunter2"}}]}}]}"#,
            "x",
        )
        .unwrap();
        let i = inspect(&doc, &SecretRules::default());
        assert_eq!(i.filled_secrets, 2);
        assert!(i.versions[0].variables[0].has_value);
        let json = serde_json::to_string(&i).unwrap();
        assert!(
            !json.contains("s3cr3t") && !json.contains("hunter2"),
            "{json}"
        );
    }
}
