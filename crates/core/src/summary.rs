//! `metadata.import_summary` (the platform's own summary in an export document): what an installer must set up and what the import
//! brings. `migrate` writes the computed summary; `validate` warns when a document's counts
//! disagree with it.
//!
//! The platform counts one version of the flow: the `Deployed` one, else the newest by
//! `iteration`, else the first. In that version:
//! - `connectors_needing_config`, `imported_resources.connectors`: connector steps;
//! - `endpoints`: steps with an `endpoint`;
//! - `flow_steps`: steps;
//! - `variables_needing_values`: variables whose value is empty (or absent).
//!
//! Across the document: `systems_imported` is the number of `systems`;
//! `auth_implementations_needing_credentials` the authentication implementations having no
//! credentials or an empty credential value; `dependencies` the `dependencies` that are not
//! systems (systems are imported with the flow; scripts must exist or be imported).

use serde_json::{Map, Value, json};

use crate::document::{Document, VersionStatus, VersionView};

/// The counts of an import summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct SummaryCounts {
    /// `setup_required.connectors_needing_config`.
    pub connectors_needing_config: u64,
    /// `setup_required.auth_implementations_needing_credentials`.
    pub auth_implementations_needing_credentials: u64,
    /// `setup_required.variables_needing_values`.
    pub variables_needing_values: u64,
    /// `imported_resources.systems_imported`.
    pub systems_imported: u64,
    /// `imported_resources.flow_steps`.
    pub flow_steps: u64,
    /// `imported_resources.endpoints`.
    pub endpoints: u64,
    /// `imported_resources.connectors`.
    pub connectors: u64,
}

impl SummaryCounts {
    /// The counts with the JSON pointer (under `metadata/import_summary`) each is stored at.
    pub fn with_pointers(&self) -> [(&'static str, u64); 7] {
        [
            (
                "/setup_required/connectors_needing_config",
                self.connectors_needing_config,
            ),
            (
                "/setup_required/auth_implementations_needing_credentials",
                self.auth_implementations_needing_credentials,
            ),
            (
                "/setup_required/variables_needing_values",
                self.variables_needing_values,
            ),
            (
                "/imported_resources/systems_imported",
                self.systems_imported,
            ),
            ("/imported_resources/flow_steps", self.flow_steps),
            ("/imported_resources/endpoints", self.endpoints),
            ("/imported_resources/connectors", self.connectors),
        ]
    }
}

/// The version the platform summarises: `Deployed`, else the highest `iteration`, else the first.
pub(crate) fn summarised_version<'a>(doc: &'a Document) -> Option<VersionView<'a>> {
    let flow = doc.flow()?;
    flow.versions()
        .find(|v| v.status() == Some(VersionStatus::Deployed))
        .or_else(|| {
            flow.versions()
                .filter(|v| v.iteration().is_some())
                .max_by_key(|v| v.iteration())
        })
        .or_else(|| flow.versions().next())
}

/// Counts what the summary reports, from the document's content.
pub fn compute_counts(doc: &Document) -> SummaryCounts {
    let mut c = SummaryCounts::default();
    if let Some(version) = summarised_version(doc) {
        for step in version.steps() {
            c.flow_steps += 1;
            if step.kind() == Some("connector") {
                c.connectors += 1;
            }
            if step.raw().get("endpoint").is_some_and(Value::is_object) {
                c.endpoints += 1;
            }
        }
        c.variables_needing_values = version
            .variables()
            .filter(|v| needs_value(v.value()))
            .count() as u64;
    }
    c.connectors_needing_config = c.connectors;
    for system in doc.systems() {
        c.systems_imported += 1;
        c.auth_implementations_needing_credentials += system
            .auth_implementations()
            .filter(
                |auth| match auth.get("credentials").and_then(Value::as_object) {
                    None => true,
                    Some(creds) => creds.is_empty() || creds.values().any(|v| needs_value(Some(v))),
                },
            )
            .count() as u64;
    }
    c
}

fn needs_value(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

/// The counts a document states in `metadata.import_summary`, where present and integral.
pub fn stated_counts(doc: &Document) -> Vec<(String, Option<u64>)> {
    let Some(summary) = doc.value().pointer("/metadata/import_summary") else {
        return Vec::new();
    };
    SummaryCounts::default()
        .with_pointers()
        .iter()
        .map(|(p, _)| {
            (
                format!("/metadata/import_summary{p}"),
                summary.pointer(p).and_then(Value::as_u64),
            )
        })
        .collect()
}

/// Computes a whole `import_summary` object for the document.
pub fn compute_import_summary(doc: &Document) -> Value {
    let c = compute_counts(doc);
    let dependencies: Vec<Value> = doc
        .value()
        .get("dependencies")
        .and_then(Value::as_array)
        .map(|deps| {
            deps.iter()
                .filter(|d| d.get("type").and_then(Value::as_str) != Some("system"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut next_steps = Vec::new();
    if c.connectors > 0 {
        next_steps.push(Value::from("Add an instance for each connector"));
    }
    if c.auth_implementations_needing_credentials > 0 {
        next_steps.push(Value::from(
            "Supply credentials for each authentication implementation",
        ));
    }
    if let Some(version) = summarised_version(doc) {
        for var in version.variables().filter(|v| needs_value(v.value())) {
            if let Some(key) = var.key() {
                next_steps.push(Value::from(format!(
                    "Set a value for the flow variable {key}"
                )));
            }
        }
    }
    let mut out = Map::new();
    out.insert(
        "setup_required".into(),
        json!({
            "connectors_needing_config": c.connectors_needing_config,
            "auth_implementations_needing_credentials": c.auth_implementations_needing_credentials,
            "variables_needing_values": c.variables_needing_values,
        }),
    );
    out.insert("dependencies".into(), Value::Array(dependencies));
    out.insert(
        "imported_resources".into(),
        json!({
            "systems_imported": c.systems_imported,
            "flow_steps": c.flow_steps,
            "endpoints": c.endpoints,
            "connectors": c.connectors,
        }),
    );
    out.insert("next_steps".into(), Value::Array(next_steps));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2: &[u8] = include_bytes!("../fixtures/reference/export-v2-order-sync.json");

    #[test]
    fn the_reference_summary_agrees_with_its_content() {
        let doc = Document::from_slice(V2, "v2").unwrap();
        let computed = compute_import_summary(&doc);
        let stated = doc.value().pointer("/metadata/import_summary").unwrap();
        assert_eq!(computed["setup_required"], stated["setup_required"]);
        assert_eq!(computed["imported_resources"], stated["imported_resources"]);
        assert_eq!(computed["dependencies"], stated["dependencies"]);
        assert_eq!(computed["next_steps"][0], stated["next_steps"][0]);
        let counts = compute_counts(&doc);
        for (pointer, value) in stated_counts(&doc) {
            let key = pointer.trim_start_matches("/metadata/import_summary");
            let expected = counts
                .with_pointers()
                .iter()
                .find(|(p, _)| *p == key)
                .unwrap()
                .1;
            assert_eq!(value, Some(expected), "{pointer}");
        }
    }

    #[test]
    fn the_deployed_version_is_summarised_else_the_newest() {
        let doc = Document::from_slice(
            br#"{"flow":{"versions":[{"iteration":1,"steps":[{}]},{"iteration":3,"steps":[{},{},{}]},{"iteration":2,"steps":[]}]}}"#,
            "x",
        )
        .unwrap();
        assert_eq!(compute_counts(&doc).flow_steps, 3);
        let doc = Document::from_slice(
            br#"{"flow":{"versions":[{"iteration":1,"status":"Deployed","steps":[{}]},{"iteration":3,"steps":[{},{},{}]}]}}"#,
            "x",
        )
        .unwrap();
        assert_eq!(compute_counts(&doc).flow_steps, 1);
    }
}
