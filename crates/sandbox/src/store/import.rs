//! Import: an import body (the export document, `flow`/`metadata` as objects or JSON-encoded
//! strings, optional `as_marketplace`) checked and stored. Version-1 documents are migrated up
//! with flowpack-core's migration (the code of `flowpack migrate`) and stored as version 2.

use flowpack_client::{Flow, FlowId};
use flowpack_core::migrate::{MigrateOptions, Target, migrate};
use flowpack_core::{Document, DocumentError, FormatVersion};
use rusqlite::params;
use serde_json::{Map, Value};

use super::sql::{self, DRAFT, INACTIVE};
use super::{DEFAULT_PRIORITY, FieldErrors, Store, StoreError, VersionRecord, push};

/// A validated import, ready to insert.
struct NewFlow {
    name: String,
    description: Option<String>,
    priority: i64,
    document: String,
    marketplace: bool,
    /// (position in `flow.versions`, iteration, status)
    versions: Vec<(usize, i64, &'static str)>,
}

impl Store {
    /// `POST /flows/import`: validates the body (see the module docs), stores the flow disabled
    /// and undeployed, and returns it with its versions. With an `idempotency_key` already used,
    /// returns the first response again and stores nothing.
    pub fn import(&self, body: &Value, idempotency_key: Option<&str>) -> Result<Flow, StoreError> {
        self.import_owned(body.clone(), idempotency_key)
    }

    /// [`import`](Store::import) of a body the caller no longer needs: the document is checked
    /// and stored without being copied (import bodies can be large).
    pub fn import_owned(
        &self,
        body: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Flow, StoreError> {
        if let Some(key) = idempotency_key
            && let Some(flow) = sql::replay(&self.lock(), key)?
        {
            return Ok(flow);
        }
        let new = validate_import(body)?;
        let now = self.now();
        let mut conn = self.lock();
        let tx = conn
            .transaction()
            .map_err(StoreError::sqlite("starting an import"))?;
        if let Some(key) = idempotency_key
            && let Some(flow) = sql::replay(&tx, key)?
        {
            return Ok(flow);
        }
        tx.prepare_cached(
            "INSERT INTO flows (name, description, priority, enabled_at, created_at, updated_at, \
             document, marketplace) VALUES (?1, ?2, ?3, NULL, ?4, ?4, ?5, ?6)",
        )
        .and_then(|mut st| {
            st.execute(params![
                new.name,
                new.description,
                new.priority,
                now,
                new.document,
                new.marketplace
            ])
        })
        .map_err(StoreError::sqlite(format!("inserting flow `{}`", new.name)))?;
        let id = tx.last_insert_rowid();
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO versions (flow_id, position, iteration, status, deployed_at, \
                     created_at) VALUES (?1, ?2, ?3, ?4, NULL, ?5)",
                )
                .map_err(StoreError::sqlite(format!(
                    "inserting versions of flow {id}"
                )))?;
            for (position, iteration, status) in &new.versions {
                st.execute(params![id, *position as i64, iteration, status, now])
                    .map_err(StoreError::sqlite(format!(
                        "inserting versions of flow {id}"
                    )))?;
            }
        }
        let mut flow = sql::wire_flow(&tx, id as FlowId)?;
        flow.versions = Some(
            sql::version_records(&tx, id as FlowId)?
                .iter()
                .map(VersionRecord::to_version)
                .collect(),
        );
        if let Some(key) = idempotency_key {
            let response = serde_json::to_string(&flow).map_err(|source| StoreError::Corrupt {
                flow: id,
                what: "idempotent response",
                source,
            })?;
            tx.prepare_cached(
                "INSERT INTO idempotency_keys (key, flow_id, response, created_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| st.execute(params![key, id, response, now]))
            .map_err(StoreError::sqlite(format!(
                "recording idempotency key `{key}`"
            )))?;
        }
        tx.commit().map_err(StoreError::sqlite(format!(
            "committing flow `{}`",
            new.name
        )))?;
        Ok(flow)
    }
}

/// Decodes `flow`/`metadata` (object or JSON-encoded string) of an import body in place;
/// whether it is (now) an object.
fn decode_part(body: &mut Map<String, Value>, key: &str, errors: &mut FieldErrors) -> bool {
    let Some(part) = body.get_mut(key).filter(|v| !v.is_null()) else {
        push(errors, key, format!("The {key} field is required."));
        return false;
    };
    match part {
        Value::Object(_) => true,
        Value::String(s)
            if flowpack_core::DocumentBound::default()
                .check(s.as_bytes())
                .is_err() =>
        {
            let reason = flowpack_core::DocumentBound::default()
                .check(s.as_bytes())
                .unwrap_err();
            push(
                errors,
                key,
                format!("The {key} field is refused: {reason}."),
            );
            false
        }
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => {
                *part = v;
                true
            }
            Ok(_) => {
                push(
                    errors,
                    key,
                    format!("The {key} field must encode a JSON object."),
                );
                false
            }
            Err(e) => {
                push(
                    errors,
                    key,
                    format!("The {key} field must be a valid JSON string: {e}."),
                );
                false
            }
        },
        _ => {
            push(
                errors,
                key,
                format!("The {key} field must be a JSON object or a JSON-encoded string."),
            );
            false
        }
    }
}

/// Checks an import body as the platform does and turns it into the flow to store: the body's
/// parts decoded, the document (migrated up from version 1), then its name, priority and
/// versions. Field errors are collected and reported together.
fn validate_import(body: Value) -> Result<NewFlow, StoreError> {
    let Value::Object(mut obj) = body else {
        return Err(StoreError::field(
            "body",
            "The request body must be a JSON object.",
        ));
    };
    let mut errors = FieldErrors::new();
    let flow = decode_part(&mut obj, "flow", &mut errors);
    let metadata = decode_part(&mut obj, "metadata", &mut errors);
    let marketplace = as_marketplace(&obj, &mut errors);
    if !(flow && metadata) {
        return Err(StoreError::validation(errors));
    }
    let doc = import_document(obj)?;
    let view = doc.flow().expect("flow was checked to be an object");
    let name = flow_name(view.name(), &mut errors);
    let priority = flow_priority(view.raw(), &mut errors);
    let iterations = version_iterations(view.raw(), &mut errors);
    if !errors.is_empty() {
        return Err(StoreError::validation(errors));
    }
    let description = view.description().map(str::to_owned);
    let document =
        serde_json::to_string(doc.value()).map_err(|e| StoreError::field("body", e.to_string()))?;
    Ok(NewFlow {
        name,
        description,
        priority,
        document,
        marketplace,
        versions: version_statuses(&iterations),
    })
}

/// `as_marketplace`: absent or null is false; a boolean, or `"true"`/`"1"`/`"false"`/`"0"`.
fn as_marketplace(obj: &Map<String, Value>, errors: &mut FieldErrors) -> bool {
    match obj.get("as_marketplace") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => match v
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string())
            .as_str()
        {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                push(
                    errors,
                    "as_marketplace",
                    "The as_marketplace field must be true or false.",
                );
                false
            }
        },
    }
}

/// The export document of the body (its decoded `flow` and `metadata`, every other member as
/// is, `as_marketplace` dropped), migrated up when it is version 1, without a version stamp.
fn import_document(mut root: Map<String, Value>) -> Result<Document, StoreError> {
    root.shift_remove("as_marketplace");
    let mut doc = match Document::from_value(Value::Object(root), "import body") {
        Ok(doc) => doc,
        Err(DocumentError::UnknownFormat { found, .. }) => {
            return Err(StoreError::field(
                "metadata.format_version",
                format!(
                    "Unsupported export format version {found}; the platform imports version 2."
                ),
            ));
        }
        Err(e) => return Err(StoreError::field("body", e.to_string())),
    };
    if doc.format_version() == FormatVersion::V1 {
        // The vendor's own tooling still posts version-1 bodies: migrate them up with the same
        // code as `flowpack migrate`, and store version 2.
        let mut options = MigrateOptions::new(Target::Version(2));
        options.origin = "import body".to_string();
        doc = migrate(doc, &options)
            .map_err(|e| StoreError::field("flow", e.to_string()))?
            .document;
    }
    doc.unstamp_format_version();
    Ok(doc)
}

/// `flow.name`, trimmed: required, and not only NUL or control characters.
fn flow_name(name: Option<&str>, errors: &mut FieldErrors) -> String {
    let name = name.map(str::trim).unwrap_or("");
    if name.is_empty() {
        push(errors, "flow.name", "The flow.name field is required.");
    } else if name.contains('\0') || name.chars().all(|c| c.is_control() || c.is_whitespace()) {
        push(
            errors,
            "flow.name",
            "The flow.name field must not be NUL or control characters.",
        );
    }
    name.to_string()
}

/// `flow.priority`: 1–5, the default when absent or null.
fn flow_priority(flow: &Map<String, Value>, errors: &mut FieldErrors) -> i64 {
    match flow.get("priority") {
        None | Some(Value::Null) => DEFAULT_PRIORITY,
        Some(v) => match v.as_i64() {
            Some(p) if (1..=5).contains(&p) => p,
            _ => {
                push(
                    errors,
                    "flow.priority",
                    "The flow.priority field must be an integer between 1 and 5.",
                );
                DEFAULT_PRIORITY
            }
        },
    }
}

/// `(position, iteration)` of each of `flow.versions` (at least one), each with an integer
/// `iteration`.
fn version_iterations(flow: &Map<String, Value>, errors: &mut FieldErrors) -> Vec<(usize, i64)> {
    let mut iterations = Vec::new();
    match flow.get("versions").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => {
            for (i, v) in list.iter().enumerate() {
                match v.get("iteration").and_then(Value::as_i64) {
                    Some(it) => iterations.push((i, it)),
                    None => push(
                        errors,
                        &format!("flow.versions.{i}.iteration"),
                        format!("The flow.versions.{i}.iteration field must be an integer."),
                    ),
                }
            }
        }
        _ => push(
            errors,
            "flow.versions",
            "The flow.versions field must list at least one version.",
        ),
    }
    iterations
}

/// The imported versions' statuses: the highest iteration (the last of equals) is the draft,
/// every other one inactive.
fn version_statuses(iterations: &[(usize, i64)]) -> Vec<(usize, i64, &'static str)> {
    let newest = iterations
        .iter()
        .enumerate()
        .max_by_key(|(n, (_, it))| (*it, *n))
        .map(|(n, _)| n);
    iterations
        .iter()
        .enumerate()
        .map(|(n, (pos, it))| (*pos, *it, if Some(n) == newest { DRAFT } else { INACTIVE }))
        .collect()
}
