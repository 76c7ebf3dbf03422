//! The one comparison of export documents, shared by `push`'s plan (`unchanged` or `conflict`)
//! and `flowpack diff`.
//!
//! # What is compared
//!
//! Both documents are first migrated to the newest export format version flowpack knows (a
//! version-1 document is migrated up exactly as `flowpack migrate` would; migrating up loses
//! nothing), then **normalised**:
//!
//! - `metadata` is dropped entirely: it describes the export act (when, by whom, from which
//!   company, the import summary, the format stamp), not the flow.
//! - On `flow`: `is_enabled`, `id`, `created_at`, `updated_at`, `enabled_at` are dropped (an
//!   import always arrives disabled; state is not content).
//! - On each version: `status`, `is_deployed`, `is_editable`, `id`, `flow_id`, `deployed_at`,
//!   `created_at`, `updated_at` are dropped (the platform sets them on import: the newest
//!   iteration arrives as `Draft`, the others `Inactive`), and so are `flow_name` and
//!   `flow_priority`: they repeat the flow's own name and priority, and the platform reports the
//!   flow's current values there on export, whatever the imported document said. The flow's
//!   `name` and `priority` themselves are compared; a flow without `priority` (or with `null`)
//!   compares as priority 3, the value the platform gives it on import.
//! - Secret values are never compared by value: every credential-like string (a key such as
//!   `password`, `token`, `api_key`, … anywhere in the document), every value of a variable with
//!   `is_secret: true` and every value under a system's
//!   `authentication_implementations[].credentials` is replaced by `••••` on both sides. A
//!   secret stripped by `pack` (`""`) and the live value are therefore the same, and a secret
//!   never appears in a change. A credential that exists on one side only is still a change
//!   (printed `••••`).
//!
//! Everything else is compared exactly, fields the model does not know included: the flow's
//! name, description and priority; versions; steps (type, name, description, config, position,
//! endpoint, routes); connections; variables; schedules; systems; scripts; dependencies.
//!
//! # How differences are reported
//!
//! A difference is a list of [`Change`]s `{pointer, old, new}`: an RFC 6901 pointer into the
//! RIGHT document (into the LEFT one for something removed), the LEFT value (`None` when
//! added) and the RIGHT value (`None` when removed). Object members are compared key by key.
//! Array items are paired by identity, not position, so inserting a step does not make every
//! later step "changed":
//!
//! | array | items paired by |
//! |---|---|
//! | `flow.versions` | `iteration` |
//! | `steps` | `id`, else `name` |
//! | `variables` | `key` |
//! | `systems` | `system.name` |
//! | `scripts`, `routes`, `authentication_implementations` | `name` |
//! | `dependencies` | `type` and `name` |
//! | `connections` | `from` and `to` |
//! | `schedules` | `cron_string` |
//! | any other array | `id`, else `iteration`, else `name` when every item has one; else position |
//!
//! Items with the same identity are paired in order of occurrence. The order of paired items
//! is not a difference. A paired item that differs is descended into; an unpaired one is one
//! change holding the whole item. Values whose JSON text is over [`VALUE_LIMIT`] characters are
//! shortened in changes (strings keep their first characters and end with `…`; objects and
//! arrays become the start of their JSON text followed by `…`).
//!
//! # Sets of flows
//!
//! [`compare_sets`] matches flows by name across two sides: `added` (RIGHT only), `removed`
//! (LEFT only), `changed` or `same`. A name that occurs more than once on a side is paired in
//! order and reported in [`DiffReport::warnings`]. A [`NameFilter`] narrows the flows compared.
//!
//! ```
//! use flowpack_core::Document;
//! use flowpack_core::diff::compare;
//!
//! let left = Document::from_slice(br#"{"metadata":{"exported_at":"2026-01-01T00:00:00Z"},
//!   "flow":{"name":"A","priority":2,"is_enabled":true,"versions":[
//!     {"iteration":1,"status":"Deployed","steps":[{"id":1,"type":"trigger","name":"Start"}]}]},
//!   "systems":[],"scripts":[],"dependencies":[]}"#, "left.json").unwrap();
//! let right = Document::from_slice(br#"{"metadata":{"exported_at":"2026-02-02T00:00:00Z"},
//!   "flow":{"name":"A","priority":1,"is_enabled":false,"versions":[
//!     {"iteration":1,"status":"Draft","steps":[{"id":1,"type":"trigger","name":"Begin"}]}]},
//!   "systems":[],"scripts":[],"dependencies":[]}"#, "right.json").unwrap();
//! let changes = compare(&left, &right).unwrap();
//! let pointers: Vec<_> = changes.iter().map(|c| c.pointer.as_str()).collect();
//! assert_eq!(pointers, ["/flow/priority", "/flow/versions/0/steps/0/name"]);
//! assert_eq!(changes[1].old, Some("Start".into()));
//! assert_eq!(changes[1].new, Some("Begin".into()));
//! ```

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::document::{Document, FormatVersion, escape_pointer_token};
use crate::migrate::{MigrateError, MigrateOptions, Target, migrate};
use crate::names::NameFilter;
use crate::secrets::{MASK, SecretRules, find_secrets};

/// Values whose JSON text is longer than this many characters are shortened in a [`Change`].
pub const VALUE_LIMIT: usize = 200;

/// The priority a flow without `flow.priority` gets on import (the platform's default); a
/// missing priority compares as this.
pub const DEFAULT_PRIORITY: i64 = 3;

/// Fields of `flow` that are not compared.
pub(crate) const IGNORED_FLOW_FIELDS: &[&str] =
    &["is_enabled", "id", "created_at", "updated_at", "enabled_at"];

/// Fields of each version that are not compared.
pub(crate) const IGNORED_VERSION_FIELDS: &[&str] = &[
    "status",
    "is_deployed",
    "is_editable",
    "id",
    "flow_id",
    "deployed_at",
    "created_at",
    "updated_at",
    "flow_name",
    "flow_priority",
];

/// Why two documents could not be compared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiffError {
    /// A document could not be migrated to the common format version.
    #[error("{document}: cannot be compared: {source}")]
    Migrate {
        /// The document (a path, an archive entry, `env:NAME` flow …).
        document: String,
        /// What the migration said.
        #[source]
        source: Box<MigrateError>,
    },
}

/// One difference between LEFT and RIGHT.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// RFC 6901 pointer into RIGHT; into LEFT when the item was removed.
    pub pointer: String,
    /// LEFT's value (`None`: added in RIGHT); shortened beyond [`VALUE_LIMIT`], secrets `••••`.
    pub old: Option<Value>,
    /// RIGHT's value (`None`: removed from LEFT); shortened beyond [`VALUE_LIMIT`], secrets `••••`.
    pub new: Option<Value>,
}

impl fmt::Display for Change {
    /// `/flow/priority: 2 → 1`, `/flow/versions/0/steps/3: (none) → {…}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |v: &Option<Value>| match v {
            None => "(none)".to_string(),
            Some(v) => v.to_string(),
        };
        write!(
            f,
            "{}: {} → {}",
            self.pointer,
            side(&self.old),
            side(&self.new)
        )
    }
}

/// A document in its compared form (see the module docs): migrated to the newest format,
/// ignored fields dropped, secrets masked. Normalise once, compare with many.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalised(Value);

impl Normalised {
    /// The compared JSON value.
    pub fn value(&self) -> &Value {
        &self.0
    }
}

/// Normalises a document for comparison; `origin` names it in errors.
pub fn normalise(doc: &Document, origin: &str) -> Result<Normalised, DiffError> {
    normalise_owned(doc.clone(), origin)
}

/// [`normalise`] of a document the caller no longer needs: no copy is made (for large
/// documents, half the memory).
pub fn normalise_owned(mut doc: Document, origin: &str) -> Result<Normalised, DiffError> {
    if doc.format_version() != FormatVersion::LATEST {
        let mut opts = MigrateOptions::new(Target::Latest);
        opts.origin = origin.to_string();
        doc = migrate(doc, &opts)
            .map_err(|source| DiffError::Migrate {
                document: origin.to_string(),
                source: Box::new(source),
            })?
            .document;
    }
    let mut v = doc.into_value();
    mask_secrets(&mut v);
    if let Some(root) = v.as_object_mut() {
        root.shift_remove("metadata");
        if let Some(flow) = root.get_mut("flow").and_then(Value::as_object_mut) {
            for k in IGNORED_FLOW_FIELDS {
                flow.shift_remove(*k);
            }
            if flow.get("priority").is_none_or(Value::is_null) {
                flow.insert("priority".into(), Value::from(DEFAULT_PRIORITY));
            }
            if let Some(versions) = flow.get_mut("versions").and_then(Value::as_array_mut) {
                for version in versions.iter_mut().filter_map(Value::as_object_mut) {
                    for k in IGNORED_VERSION_FIELDS {
                        version.shift_remove(*k);
                    }
                }
            }
        }
    }
    Ok(Normalised(v))
}

/// Replaces every secret value by [`MASK`] (see the module docs).
fn mask_secrets(v: &mut Value) {
    for slot in find_secrets(v, &SecretRules::default()) {
        if let Some(x) = v.pointer_mut(&slot.pointer) {
            *x = Value::from(MASK);
        }
    }
    let Some(systems) = v.get_mut("systems").and_then(Value::as_array_mut) else {
        return;
    };
    for system in systems {
        let Some(auths) = system
            .pointer_mut("/system/authentication_implementations")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for auth in auths {
            if let Some(creds) = auth.get_mut("credentials").and_then(Value::as_object_mut) {
                for value in creds.values_mut() {
                    *value = Value::from(MASK);
                }
            }
        }
    }
}

/// The changes from LEFT to RIGHT, both normalised; empty when they are the same.
pub fn changes(left: &Normalised, right: &Normalised) -> Vec<Change> {
    let mut out = Vec::new();
    diff_value(&left.0, &right.0, "", "", "", &mut out);
    out
}

/// Normalises both documents and compares them: the push plan's `unchanged` is an empty
/// result. Errors name the side (`LEFT`, `RIGHT`); use [`normalise`] to name documents.
pub fn compare(left: &Document, right: &Document) -> Result<Vec<Change>, DiffError> {
    Ok(changes(
        &normalise(left, "LEFT")?,
        &normalise(right, "RIGHT")?,
    ))
}

/// The changes between two flows' settings (`flow.json`, serialised), with pointers under
/// `/settings` (into RIGHT; into LEFT for removed items). The settings carry no secrets (an HMAC
/// key is only `has_hmac_secret_key`); webhooks and callbacks have no identity of their own, so
/// they pair by position.
pub fn settings_changes(left: &Value, right: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    diff_value(left, right, "/settings", "/settings", "settings", &mut out);
    out
}

fn child(ptr: &str, token: &str) -> String {
    format!("{ptr}/{}", escape_pointer_token(token))
}

fn diff_value(l: &Value, r: &Value, lp: &str, rp: &str, field: &str, out: &mut Vec<Change>) {
    if l == r {
        return;
    }
    match (l, r) {
        (Value::Object(lo), Value::Object(ro)) => diff_object(lo, ro, lp, rp, out),
        (Value::Array(la), Value::Array(ra)) => diff_array(la, ra, lp, rp, field, out),
        _ => out.push(Change {
            pointer: rp.to_string(),
            old: Some(shorten(l)),
            new: Some(shorten(r)),
        }),
    }
}

fn diff_object(
    l: &Map<String, Value>,
    r: &Map<String, Value>,
    lp: &str,
    rp: &str,
    out: &mut Vec<Change>,
) {
    for (k, rv) in r {
        match l.get(k) {
            Some(lv) => diff_value(lv, rv, &child(lp, k), &child(rp, k), k, out),
            None => out.push(Change {
                pointer: child(rp, k),
                old: None,
                new: Some(shorten(rv)),
            }),
        }
    }
    for (k, lv) in l {
        if !r.contains_key(k) {
            out.push(Change {
                pointer: child(lp, k),
                old: Some(shorten(lv)),
                new: None,
            });
        }
    }
}

/// The identity of an item of the array named `field` (see the table in the module docs).
fn identity(field: &str, item: &Value) -> Option<String> {
    let obj = item.as_object()?;
    let get = |k: &str| obj.get(k).filter(|v| !v.is_null()).map(Value::to_string);
    match field {
        "versions" => get("iteration").map(|i| format!("iteration {i}")),
        "steps" => get("id")
            .map(|i| format!("id {i}"))
            .or_else(|| get("name").map(|n| format!("name {n}"))),
        "variables" => get("key"),
        "systems" => item
            .pointer("/system/name")
            .filter(|v| !v.is_null())
            .map(Value::to_string),
        "scripts" | "routes" | "authentication_implementations" => get("name"),
        "dependencies" => Some(format!("{} {}", get("type")?, get("name")?)),
        "connections" => Some(format!("{} {}", get("from")?, get("to")?)),
        "schedules" => get("cron_string"),
        _ => get("id")
            .map(|i| format!("id {i}"))
            .or_else(|| get("iteration").map(|i| format!("iteration {i}")))
            .or_else(|| get("name").map(|n| format!("name {n}"))),
    }
}

fn diff_array(l: &[Value], r: &[Value], lp: &str, rp: &str, field: &str, out: &mut Vec<Change>) {
    let keys = |items: &[Value]| -> Option<Vec<(String, usize)>> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        items
            .iter()
            .map(|item| {
                let id = identity(field, item)?;
                let n = seen.entry(id.clone()).or_default();
                *n += 1;
                Some((id, *n))
            })
            .collect()
    };
    let (Some(lk), Some(rk)) = (keys(l), keys(r)) else {
        // Items without identity: paired by position.
        for (i, rv) in r.iter().enumerate() {
            let ri = i.to_string();
            match l.get(i) {
                Some(lv) => diff_value(lv, rv, &child(lp, &ri), &child(rp, &ri), field, out),
                None => out.push(Change {
                    pointer: child(rp, &ri),
                    old: None,
                    new: Some(shorten(rv)),
                }),
            }
        }
        for (i, lv) in l.iter().enumerate().skip(r.len()) {
            out.push(Change {
                pointer: child(lp, &i.to_string()),
                old: Some(shorten(lv)),
                new: None,
            });
        }
        return;
    };
    let left_at: HashMap<&(String, usize), usize> =
        lk.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let mut paired = vec![false; l.len()];
    for (ri, (key, rv)) in rk.iter().zip(r).enumerate() {
        let rpi = child(rp, &ri.to_string());
        match left_at.get(key) {
            Some(&li) => {
                paired[li] = true;
                diff_value(&l[li], rv, &child(lp, &li.to_string()), &rpi, "", out);
            }
            None => out.push(Change {
                pointer: rpi,
                old: None,
                new: Some(shorten(rv)),
            }),
        }
    }
    for (li, lv) in l.iter().enumerate() {
        if !paired[li] {
            out.push(Change {
                pointer: child(lp, &li.to_string()),
                old: Some(shorten(lv)),
                new: None,
            });
        }
    }
}

/// A value as shown in a [`Change`]: itself, or shortened beyond [`VALUE_LIMIT`] characters.
fn shorten(v: &Value) -> Value {
    match v {
        Value::String(s) if s.chars().count() > VALUE_LIMIT => {
            Value::String(s.chars().take(VALUE_LIMIT).chain(['…']).collect())
        }
        Value::Object(_) | Value::Array(_) => {
            let text = v.to_string();
            if text.chars().count() > VALUE_LIMIT {
                Value::String(text.chars().take(VALUE_LIMIT).chain(['…']).collect())
            } else {
                v.clone()
            }
        }
        _ => v.clone(),
    }
}

/// One flow of one side of a set comparison.
#[derive(Debug, Clone)]
pub struct FlowDocument {
    /// How errors and warnings name it (a path, `ARCHIVE!entry`, `env:NAME` flow id …).
    pub origin: String,
    /// The export document.
    pub document: Document,
}

impl FlowDocument {
    /// The flow's name: `flow.name`, else `metadata.flow_name`, else the origin.
    pub fn name(&self) -> &str {
        self.document.flow_name().unwrap_or(&self.origin)
    }
}

/// Options of [`compare_sets`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DiffOptions {
    /// Only flows whose name matches (empty: all).
    pub flows: NameFilter,
}

impl DiffOptions {
    /// Options comparing only the flows matching `flows`.
    pub fn new(flows: NameFilter) -> DiffOptions {
        DiffOptions { flows }
    }
}

/// The overall answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffResult {
    /// Every compared flow is the same.
    Same,
    /// Some flow was added, removed or changed.
    Different,
}

/// How one flow compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowStatus {
    /// Only in RIGHT.
    Added,
    /// Only in LEFT.
    Removed,
    /// In both, different.
    Changed,
    /// In both, the same.
    Same,
    /// More than one live flow of this name on an environment side: not compared, since no
    /// one of them is the flow (see [`FlowDiff::ids`]).
    Duplicate,
}

impl FlowStatus {
    /// `added`, `removed`, `changed`, `same` or `duplicate`.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowStatus::Added => "added",
            FlowStatus::Removed => "removed",
            FlowStatus::Changed => "changed",
            FlowStatus::Same => "same",
            FlowStatus::Duplicate => "duplicate",
        }
    }
}

/// One flow of a [`DiffReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowDiff {
    /// The flow's name.
    pub name: String,
    /// How it compares.
    pub status: FlowStatus,
    /// The platform ids of the flows that share the name (for `duplicate` only: the ids on the
    /// side that has more than one, LEFT's then RIGHT's when both have; not serialised when
    /// empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<u64>,
    /// The changes (for `changed` only; empty otherwise).
    pub changes: Vec<Change>,
}

/// The result of [`compare_sets`]; serialises as
/// `{result: "same"|"different", flows: [{name, status, changes: [{pointer, old, new}]}]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffReport {
    /// `same` when every flow is `same`.
    pub result: DiffResult,
    /// One entry per flow (per pair, for repeated names): LEFT's order, then flows only in RIGHT
    /// in RIGHT's order.
    pub flows: Vec<FlowDiff>,
    /// Repeated names, and `--flow` patterns that matched no flow (not part of the JSON).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl DiffReport {
    /// Whether the sides are the same.
    pub fn is_same(&self) -> bool {
        self.result == DiffResult::Same
    }
}

impl fmt::Display for DiffReport {
    /// The human form: one line per flow that is not `same`, its changes indented below, then
    /// a count of the flows that are the same.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut same = 0;
        for flow in &self.flows {
            if flow.status == FlowStatus::Same {
                same += 1;
                continue;
            }
            write!(f, "{:<8} {}", flow.status.as_str(), flow.name)?;
            if !flow.ids.is_empty() {
                write!(f, " ({})", ids_text(&flow.ids))?;
            }
            writeln!(f)?;
            for c in &flow.changes {
                writeln!(f, "    {c}")?;
            }
        }
        match (self.result, same) {
            (DiffResult::Same, n) => writeln!(
                f,
                "same: {} compared, no differences",
                crate::archive::plural(n, "flow", "flows")
            ),
            (DiffResult::Different, 0) => Ok(()),
            (DiffResult::Different, n) => {
                writeln!(f, "{} the same", crate::archive::plural(n, "flow", "flows"))
            }
        }
    }
}

/// How a line names the flows of a `duplicate`: `ids 12, 15`.
pub fn ids_text(ids: &[u64]) -> String {
    let list: Vec<String> = ids.iter().map(u64::to_string).collect();
    format!("ids {}", list.join(", "))
}

/// Compares two sets of flows, matched by name (see the module docs). Errors name the
/// document that could not be migrated.
pub fn compare_sets(
    left: &[FlowDocument],
    right: &[FlowDocument],
    opts: &DiffOptions,
) -> Result<DiffReport, DiffError> {
    compare_sets_owned(left.to_vec(), right.to_vec(), opts)
}

/// [`compare_sets`] of documents the caller no longer needs: each is normalised in place (no
/// copy), so a comparison holds one normalised form per document, not the document as well.
pub fn compare_sets_owned(
    left: Vec<FlowDocument>,
    right: Vec<FlowDocument>,
    opts: &DiffOptions,
) -> Result<DiffReport, DiffError> {
    let mut warnings = Vec::new();
    let unmatched = opts
        .flows
        .unmatched(left.iter().chain(&right).map(FlowDocument::name));
    for p in unmatched {
        warnings.push(format!("flow pattern {p:?} matches no flow on either side"));
    }
    // Names in order of first appearance: LEFT, then RIGHT.
    let mut names: Vec<String> = Vec::new();
    let mut by_name: HashMap<String, (Vec<FlowDocument>, Vec<FlowDocument>)> = HashMap::new();
    for (side, docs) in [(0, left), (1, right)] {
        for d in docs {
            let name = d.name().to_string();
            if !opts.flows.matches(&name) {
                continue;
            }
            let entry = by_name.entry(name.clone()).or_insert_with(|| {
                names.push(name);
                (Vec::new(), Vec::new())
            });
            if side == 0 {
                entry.0.push(d)
            } else {
                entry.1.push(d)
            }
        }
    }
    let mut flows = Vec::new();
    for name in names {
        let (ls, rs) = by_name.remove(&name).unwrap_or_default();
        if ls.len() > 1 || rs.len() > 1 {
            warnings.push(format!(
                "flow {name:?} occurs {} in LEFT and {} in RIGHT; paired in order",
                crate::archive::plural(ls.len(), "time", "times"),
                crate::archive::plural(rs.len(), "time", "times")
            ));
        }
        let (mut ls, mut rs) = (ls.into_iter(), rs.into_iter());
        loop {
            let (status, changes) = match (ls.next(), rs.next()) {
                (Some(l), Some(r)) => {
                    let l = normalise_owned(l.document, &l.origin)?;
                    let c = changes(&l, &normalise_owned(r.document, &r.origin)?);
                    (
                        if c.is_empty() {
                            FlowStatus::Same
                        } else {
                            FlowStatus::Changed
                        },
                        c,
                    )
                }
                (Some(_), None) => (FlowStatus::Removed, Vec::new()),
                (None, Some(_)) => (FlowStatus::Added, Vec::new()),
                (None, None) => break,
            };
            flows.push(FlowDiff {
                name: name.clone(),
                status,
                ids: Vec::new(),
                changes,
            });
        }
    }
    let result = if flows.iter().all(|f| f.status == FlowStatus::Same) {
        DiffResult::Same
    } else {
        DiffResult::Different
    };
    Ok(DiffReport {
        result,
        flows,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(v: Value) -> Document {
        Document::from_value(v, "test.json").unwrap()
    }

    fn base() -> Value {
        json!({
            "metadata": {"company_name": "Acme", "flow_name": "Orders", "exported_at": "2026-01-01T00:00:00Z"},
            "flow": {"name": "Orders", "description": "d", "is_enabled": true, "priority": 2, "versions": [
                {"flow_name": "Orders", "flow_priority": 2, "iteration": 1, "status": "Deployed",
                 "is_deployed": true, "is_editable": false,
                 "variables": [{"key": "PAGE", "value": "10", "is_secret": false},
                               {"key": "TOKEN", "value": "", "is_secret": true}],
                 "schedules": [{"cron_string": "0 * * * *"}],
                 "steps": [{"id": 1, "type": "trigger", "name": "Start"},
                           {"id": 2, "type": "connector", "name": "Get", "config": {"system": "ERP"}}],
                 "connections": [{"from": 1, "to": 2}]},
                {"flow_name": "Orders", "flow_priority": 3, "iteration": 2, "status": "Draft",
                 "steps": [{"id": 1, "type": "trigger", "name": "Start"}], "connections": []}
            ]},
            "systems": [{"system": {"name": "ERP", "protocol": "https", "authentication_implementations": [
                {"name": "Key", "type": "api_key", "credentials": {"api_key": "", "username": ""}}]}}],
            "scripts": [], "dependencies": [{"type": "system", "name": "ERP"}]
        })
    }

    fn diff(l: Value, r: Value) -> Vec<Change> {
        compare(&doc(l), &doc(r)).unwrap()
    }

    #[test]
    fn a_duplicate_line_names_the_ids() {
        let report = DiffReport {
            result: DiffResult::Different,
            flows: vec![FlowDiff {
                name: "Orders".into(),
                status: FlowStatus::Duplicate,
                ids: vec![12, 15],
                changes: Vec::new(),
            }],
            warnings: Vec::new(),
        };
        assert_eq!(report.to_string(), "duplicate Orders (ids 12, 15)\n");
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            json!({"result": "different", "flows": [{"name": "Orders", "status": "duplicate",
                "ids": [12, 15], "changes": []}]})
        );
    }

    #[test]
    fn import_set_state_metadata_and_repeated_flow_fields_are_ignored() {
        let mut live = base();
        live["metadata"] = json!({"exported_at": "2027-01-01T00:00:00Z", "flow_name": "Orders"});
        live["flow"]["is_enabled"] = json!(false);
        live["flow"]["id"] = json!(77);
        live["flow"]["enabled_at"] = json!(null);
        for (i, status) in ["Inactive", "Draft"].into_iter().enumerate() {
            let v = &mut live["flow"]["versions"][i];
            v["status"] = json!(status);
            v["is_deployed"] = json!(false);
            v["is_editable"] = json!(true);
            v["id"] = json!(1000 + i);
            v["flow_id"] = json!(77);
            v["deployed_at"] = json!(null);
            // The platform reports the flow's current priority on every version.
            v["flow_priority"] = json!(2);
        }
        assert_eq!(diff(base(), live), []);
    }

    #[test]
    fn a_missing_priority_is_the_platform_default() {
        let mut left = base();
        left["flow"]
            .as_object_mut()
            .unwrap()
            .shift_remove("priority");
        let mut right = base();
        right["flow"]["priority"] = json!(DEFAULT_PRIORITY);
        assert_eq!(diff(left.clone(), right), []);
        let got = diff(left, base());
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].old.clone(), got[0].new.clone()),
            (Some(json!(3)), Some(json!(2)))
        );
    }

    #[test]
    fn flow_fields_steps_and_variables_are_compared() {
        let mut right = base();
        right["flow"]["priority"] = json!(1);
        right["flow"]["versions"][0]["steps"][1]["config"]["system"] = json!("CRM");
        right["flow"]["versions"][0]["variables"][0]["value"] = json!("20");
        let got = diff(base(), right);
        let pointers: Vec<_> = got.iter().map(|c| c.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/flow/priority",
                "/flow/versions/0/variables/0/value",
                "/flow/versions/0/steps/1/config/system",
            ]
        );
        assert_eq!(got[2].old, Some(json!("ERP")));
        assert_eq!(got[2].new, Some(json!("CRM")));
    }

    #[test]
    fn items_are_paired_by_identity_not_position() {
        let mut right = base();
        // A step inserted first, versions and connections reordered: one change, the new step.
        let steps = right["flow"]["versions"][0]["steps"]
            .as_array_mut()
            .unwrap();
        steps.insert(0, json!({"id": 9, "type": "map", "name": "Map"}));
        right["flow"]["versions"].as_array_mut().unwrap().reverse();
        let got = diff(base(), right);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].pointer, "/flow/versions/1/steps/0");
        assert_eq!(got[0].old, None);
        assert_eq!(got[0].new.as_ref().unwrap()["name"], "Map");

        // A removed version is named by its pointer into LEFT.
        let mut right = base();
        right["flow"]["versions"].as_array_mut().unwrap().remove(0);
        let got = diff(base(), right);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].pointer, "/flow/versions/0");
        assert_eq!(got[0].new, None);
        assert!(got[0].old.is_some());

        // Variables by key, systems by name, dependencies by type and name.
        let mut right = base();
        right["flow"]["versions"][0]["variables"]
            .as_array_mut()
            .unwrap()
            .reverse();
        right["systems"][0]["system"]["name"] = json!("ERP (prod)");
        let got = diff(base(), right);
        let pointers: Vec<_> = got.iter().map(|c| c.pointer.as_str()).collect();
        assert_eq!(pointers, ["/systems/0", "/systems/0"]);
        assert_eq!((got[0].old.is_none(), got[1].new.is_none()), (true, true));
    }

    #[test]
    fn secrets_are_not_compared_by_value_and_print_masked() {
        let mut live = base();
        live["flow"]["versions"][0]["variables"][1]["value"] = json!("live-secret-1");
        live["systems"][0]["system"]["authentication_implementations"][0]["credentials"] =
            json!({"api_key": "live-secret-2", "username": "svc"});
        assert_eq!(diff(base(), live.clone()), []);

        // A credential only one side has is a change, masked.
        live["systems"][0]["system"]["authentication_implementations"][0]["credentials"]["extra"] =
            json!("live-secret-3");
        let got = diff(base(), live);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].pointer,
            "/systems/0/system/authentication_implementations/0/credentials/extra"
        );
        assert_eq!(got[0].new, Some(json!(MASK)));
        let text = serde_json::to_string(&got).unwrap();
        assert!(!text.contains("live-secret"), "{text}");
    }

    #[test]
    fn long_values_are_shortened() {
        let mut right = base();
        right["flow"]["description"] = json!("x".repeat(500));
        let got = diff(base(), right);
        let new = got[0].new.as_ref().unwrap().as_str().unwrap();
        assert_eq!(new.chars().count(), VALUE_LIMIT + 1);
        assert!(new.ends_with('…'));
        assert_eq!(
            shorten(&json!({"a": "y".repeat(300)}))
                .as_str()
                .unwrap()
                .chars()
                .count(),
            VALUE_LIMIT + 1
        );
        assert_eq!(shorten(&json!({"a": 1})), json!({"a": 1}));
    }

    #[test]
    fn a_version_1_document_equals_its_migration() {
        let v1 = json!({
            "metadata": {"company_name": "Acme", "flow_name": "S", "exported_at": "2024-01-01T00:00:00Z"},
            "flow": {"name": "S", "priority": 2, "versions": [
                {"flow_name": "S", "flow_priority": 3, "status": "Draft", "steps": [
                    {"name": "Hourly", "microservice": "trigger"},
                    {"name": "Batch", "microservice": "batch", "routes": [{"name": "r", "first_step": "Hourly"}]}]}]},
            "systems": []
        });
        let up = migrate(doc(v1.clone()), &MigrateOptions::new(Target::Latest))
            .unwrap()
            .document;
        assert_eq!(compare(&doc(v1.clone()), &up).unwrap(), []);
        let mut changed = up.into_value();
        changed["flow"]["versions"][0]["steps"][1]["type"] = json!("map");
        let got = diff(v1, changed);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].pointer, "/flow/versions/0/steps/1/type");
        assert_eq!(got[0].old, Some(json!("flow-control")));
    }

    #[test]
    fn an_unmigratable_document_is_named() {
        // A version-1 route naming a step that does not exist cannot be migrated.
        let broken = json!({"metadata": {"flow_name": "A"}, "flow": {"name": "A", "versions": [
            {"status": "Draft", "steps": [{"name": "S", "microservice": "branch",
              "routes": [{"name": "r", "first_step": "Nowhere"}]}]}]}, "systems": []});
        let err = normalise(&doc(broken), "a.flowpack!flows/a/export.json").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("a.flowpack!flows/a/export.json: cannot be compared"),
            "{text}"
        );
        assert!(text.contains("Nowhere"), "{text}");
    }

    fn named(origin: &str, name: &str, priority: u8) -> FlowDocument {
        let mut v = base();
        v["flow"]["name"] = json!(name);
        v["flow"]["priority"] = json!(priority);
        FlowDocument {
            origin: origin.into(),
            document: doc(v),
        }
    }

    #[test]
    fn sets_match_flows_by_name() {
        let left = [
            named("l1", "A", 1),
            named("l2", "B", 1),
            named("l3", "C", 1),
        ];
        let right = [
            named("r1", "C", 1),
            named("r2", "B", 2),
            named("r3", "D", 1),
        ];
        let report = compare_sets(&left, &right, &DiffOptions::default()).unwrap();
        let got: Vec<_> = report
            .flows
            .iter()
            .map(|f| (f.name.as_str(), f.status))
            .collect();
        assert_eq!(
            got,
            [
                ("A", FlowStatus::Removed),
                ("B", FlowStatus::Changed),
                ("C", FlowStatus::Same),
                ("D", FlowStatus::Added),
            ]
        );
        assert_eq!(report.result, DiffResult::Different);
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(
            v["flows"][1],
            json!({"name": "B", "status": "changed",
                   "changes": [{"pointer": "/flow/priority", "old": 1, "new": 2}]})
        );
        assert_eq!(v["result"], "different");
        assert!(v.get("warnings").is_none());
        let human = report.to_string();
        assert!(
            human.contains("changed  B\n    /flow/priority: 1 → 2\n"),
            "{human}"
        );
        assert!(human.contains("removed  A\n"), "{human}");
    }

    #[test]
    fn sets_filter_by_glob_and_warn_about_repeated_names() {
        let left = [
            named("l1", "Orders", 1),
            named("l2", "Orders", 2),
            named("l3", "Stock", 1),
        ];
        let right = [named("r1", "Orders", 1), named("r2", "Stock", 3)];
        let opts = DiffOptions::new(NameFilter::new(["Ord*", "Nothing?"]));
        let report = compare_sets(&left, &right, &opts).unwrap();
        let got: Vec<_> = report
            .flows
            .iter()
            .map(|f| (f.name.as_str(), f.status))
            .collect();
        assert_eq!(
            got,
            [
                ("Orders", FlowStatus::Same),
                ("Orders", FlowStatus::Removed)
            ]
        );
        assert_eq!(report.warnings.len(), 2, "{:?}", report.warnings);
        assert!(report.warnings[0].contains("\"Nothing?\" matches no flow"));
        assert!(
            report.warnings[1].contains("\"Orders\" occurs 2 times in LEFT and 1 time in RIGHT")
        );

        let only_same = compare_sets(
            &left[..1],
            &right[..1],
            &DiffOptions::new(NameFilter::new(["Orders"])),
        )
        .unwrap();
        assert!(only_same.is_same());
        assert_eq!(serde_json::to_value(&only_same).unwrap()["result"], "same");
    }

    /// Every leaf and array item of `v`, as pointers.
    fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    pointers(c, child(&at, k), out);
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    let p = child(&at, &i.to_string());
                    out.push(p.clone());
                    pointers(c, p, out);
                }
            }
            _ => out.push(at),
        }
    }

    /// For every single edit of the reference document (each leaf changed, each array item
    /// removed): the result is empty exactly when the normalised documents are equal, and
    /// every change's pointer names a value of RIGHT (of LEFT for removals) equal to what the
    /// change shows.
    #[test]
    fn every_single_edit_is_reported_at_a_pointer_that_resolves() {
        let text = include_str!("../fixtures/reference/export-v2-order-sync.json");
        let left = Document::from_slice(text.as_bytes(), "order-sync.json").unwrap();
        let nl = normalise(&left, "LEFT").unwrap();
        let mut all = Vec::new();
        pointers(left.value(), String::new(), &mut all);
        assert!(all.len() > 100);
        let mut reported = 0;
        for p in &all {
            let mut edits = Vec::new();
            let mut changed = left.value().clone();
            let target = changed.pointer_mut(p).unwrap();
            *target = match target {
                Value::String(_) => json!(12345),
                _ => json!("mutated"),
            };
            edits.push(changed);
            if let Some((parent, index)) = p.rsplit_once('/')
                && let Ok(i) = index.parse::<usize>()
            {
                let mut removed = left.value().clone();
                if let Some(a) = removed.pointer_mut(parent).and_then(Value::as_array_mut) {
                    a.remove(i);
                    edits.push(removed);
                }
            }
            for edited in edits {
                let right = Document::from_value(edited, "right.json").unwrap();
                let nr = normalise(&right, "RIGHT").unwrap();
                let got = changes(&nl, &nr);
                assert_eq!(got.is_empty(), nl == nr, "{p}: {got:?}");
                reported += usize::from(!got.is_empty());
                for c in &got {
                    let (side, shown) = match &c.new {
                        Some(v) => (&nr, v),
                        None => (&nl, c.old.as_ref().unwrap()),
                    };
                    let at = side.value().pointer(&c.pointer);
                    assert_eq!(at.map(shorten).as_ref(), Some(shown), "{p}: {c}");
                }
            }
        }
        // Most edits matter; the ignored fields and masked secrets do not.
        assert!(reported > all.len() / 2, "{reported} of {}", all.len());
    }
}
