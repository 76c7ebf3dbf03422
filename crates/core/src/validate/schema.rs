//! The structural half of validation: the JSON Schema (draft 2020-12) of each export format
//! version, published under `crates/core/schemas/` and embedded here. Each schema error becomes one `FP0101`
//! finding at the instance path. Messages never quote the instance value (it could be a
//! credential): the value is named by its JSON type.

use std::sync::OnceLock;

use serde_json::Value;

use crate::document::{Document, FormatVersion, json_type_name};

/// The text of `crates/core/schemas/export-v1.schema.json`.
pub(crate) const EXPORT_V1_SCHEMA: &str = include_str!("../../schemas/export-v1.schema.json");
/// The text of `crates/core/schemas/export-v2.schema.json`.
pub(crate) const EXPORT_V2_SCHEMA: &str = include_str!("../../schemas/export-v2.schema.json");

/// The schema of a format version, as JSON.
pub fn schema_text(version: FormatVersion) -> &'static str {
    match version {
        FormatVersion::V1 => EXPORT_V1_SCHEMA,
        FormatVersion::V2 => EXPORT_V2_SCHEMA,
    }
}

fn compile(text: &str) -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(text).expect("the embedded schema is JSON");
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the embedded schema compiles")
}

fn validator(version: FormatVersion) -> &'static jsonschema::Validator {
    static V1: OnceLock<jsonschema::Validator> = OnceLock::new();
    static V2: OnceLock<jsonschema::Validator> = OnceLock::new();
    match version {
        FormatVersion::V1 => V1.get_or_init(|| compile(EXPORT_V1_SCHEMA)),
        FormatVersion::V2 => V2.get_or_init(|| compile(EXPORT_V2_SCHEMA)),
    }
}

/// One schema violation: where (an RFC 6901 pointer into the document) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemaError {
    /// The instance path.
    pub pointer: String,
    /// The schema error's message, with the value named by its type.
    pub message: String,
}

/// Checks a document against the schema of its format version.
pub fn check_schema(doc: &Document) -> Vec<SchemaError> {
    let validator = validator(doc.format_version());
    // The common case first: a valid document is confirmed without building any error (and
    // its paths); only an invalid one is walked again for its errors.
    if validator.is_valid(doc.value()) {
        return Vec::new();
    }
    validator
        .iter_errors(doc.value())
        .map(|e| {
            let placeholder = match e.instance().as_ref() {
                Value::Null => "null".to_string(),
                v @ (Value::Array(_) | Value::Object(_)) => format!("an {}", json_type_name(v)),
                v => format!("a {}", json_type_name(v)),
            };
            SchemaError {
                pointer: e.instance_path().as_str().to_string(),
                message: e.masked_with(placeholder).to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schemas_are_valid_draft_2020_12_schemas() {
        for text in [EXPORT_V1_SCHEMA, EXPORT_V2_SCHEMA] {
            let schema: Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                schema["$schema"],
                "https://json-schema.org/draft/2020-12/schema"
            );
            jsonschema::draft202012::meta::validate(&schema).unwrap();
            compile(text);
        }
    }

    #[test]
    fn the_reference_documents_match_their_schemas() {
        for bytes in [
            &include_bytes!("../../fixtures/reference/export-v1-legacy.json")[..],
            &include_bytes!("../../fixtures/reference/export-v2-order-sync.json")[..],
        ] {
            let doc = Document::from_slice(bytes, "reference").unwrap();
            assert_eq!(check_schema(&doc), vec![]);
        }
    }

    #[test]
    fn errors_point_at_the_instance_and_hide_the_value() {
        let doc = Document::from_slice(
            br#"{"metadata":{"company_name":"A","flow_name":"F","exported_at":"yesterday"},
                 "flow":{"name":"F","versions":[{"status":"Draft","steps":[{"id":1,"type":"trigger","name":7}]}]},
                 "systems":[{"system":{"name":"S","authentication_implementations":[{"credentials":"hunter2"}]}}],
                 "scripts":[]}"#,
            "x",
        )
        .unwrap();
        let errors = check_schema(&doc);
        let got: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.pointer.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("", "\"dependencies\" is a required property"),
                ("/metadata/exported_at", "a string is not a \"date-time\""),
                (
                    "/flow/versions/0/steps/0/name",
                    "a number is not of type \"string\""
                ),
                (
                    "/systems/0/system/authentication_implementations/0/credentials",
                    "a string is not of type \"object\""
                ),
            ]
        );
        assert!(!format!("{errors:?}").contains("hunter2"));
        assert!(!format!("{errors:?}").contains("yesterday"));
    }
}
