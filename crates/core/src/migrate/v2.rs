//! Format version 1 → 2 of the export document (and back down).
//!
//! # Up (1 → 2)
//!
//! Per version of `flow.versions`, in list order:
//! - each step gets `id` = its 1-based position in the list (inserted as the step's first key);
//! - `microservice` becomes `type`, in the same place among the step's keys; `batch` becomes
//!   `flow-control`, other values are kept;
//! - each step gets `position {x: 100 + 250·i, y: 100}` (left to right, `i` from 0; last key);
//! - each route's `first_step` (a step *name* in version 1) becomes that step's id; a route
//!   without `first_step` keeps having none, and `null` stays `null`;
//! - `connections` (inserted after `steps`) is derived by the **connection rule**: version 1
//!   runs steps in list order, except that a branching step (a step with a `routes` member) hands
//!   over to its routes, and a step that begins a route is entered through that route. So step
//!   `i` → step `i+1` is connected exactly when step `i` has no `routes` member and step `i+1` is
//!   not the `first_step` of any route of the version;
//! - `iteration` = the version's 1-based position in `flow.versions`, `is_editable` = whether the
//!   status is `Draft`, `has_callback_step` = whether a step has type `callback`, and
//!   `variables: []` are added where absent, so the document has every version field version 2
//!   defines (the platform orders imported versions by `iteration`).
//!
//! At the top level, `scripts: []` and `dependencies: []` are added where absent, and
//! `metadata.import_summary` is (re)computed by [`compute_import_summary`] (a new one goes
//! before `metadata.format_version`, if present, else last).
//!
//! Every other field, known or not, is kept where it was. A version-1 step that already has an
//! `id`, `type` or `position`, or a version that already has `connections`, is an error: those are
//! what the step computes. A route naming no step, or a name several steps share, is an error.
//!
//! # Down (2 → 1)
//!
//! Version 1 holds the version-1 fields and any field neither version defines (kept as is).
//! Down removes every field only version 2 defines — `metadata.exported_by`,
//! `metadata.import_summary`, top-level `scripts` and `dependencies`; a version's `iteration`,
//! `is_editable`, `has_callback_step`, `variables`, `connections`; a step's `id`, `position`,
//! `description` — turns `type` back into `microservice` (`flow-control` → `batch`) and route ids
//! back into step names. Removing a value is *not* a loss when migrating up computes it again
//! exactly: ids 1..n in list order, the default positions, connections equal (as a set) to what
//! the connection rule derives, empty scripts, dependencies, variables and descriptions, the
//! derived `iteration`/`is_editable`/`has_callback_step`, and the computed `import_summary`.
//! Anything else is reported in the [`LossReport`]. A route to a step whose name is missing or
//! shared cannot be expressed by name: it is reported and written without a first step.
//!
//! So `down(up(x)) == x` for a version-1 document `x` that carries none of the fields above
//! (a version-1 document carrying, say, a step `description` is read as having a version-2
//! description), with `metadata.import_summary` the one field `up` overwrites.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::{LossReport, Step, StepError};
use crate::document::{Document, FormatVersion, json_type_name};
use crate::summary::compute_import_summary;

/// The 1 → 2 step of the registry.
pub(crate) const STEP: Step = Step {
    from: FormatVersion::V1,
    to: FormatVersion::V2,
    up,
    down,
};

/// Where step `index` (0-based) is laid out: left to right, 250 apart, from (100, 100).
pub(crate) fn default_position(index: usize) -> Value {
    json!({ "x": 100 + 250 * index as u64, "y": 100 })
}

fn step_id(index: usize) -> Value {
    Value::from(index as u64 + 1)
}

fn wrong_type(pointer: String, expected: &'static str, found: &Value) -> StepError {
    StepError::WrongType {
        pointer,
        expected,
        found: json_type_name(found),
    }
}

fn as_object_mut<'a>(
    v: &'a mut Value,
    pointer: &str,
) -> Result<&'a mut Map<String, Value>, StepError> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(wrong_type(pointer.to_string(), "an object", other)),
    }
}

/// The array under `key`, if present; an error naming the pointer if it is not an array.
fn array_mut<'a>(
    obj: &'a mut Map<String, Value>,
    key: &str,
    pointer: &str,
) -> Result<Option<&'a mut Vec<Value>>, StepError> {
    match obj.get_mut(key) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(other) => Err(wrong_type(format!("{pointer}/{key}"), "an array", other)),
    }
}

/// Inserts `key` right after the first of `after` present in `obj`, else at the end.
fn insert_after(obj: &mut Map<String, Value>, after: &[&str], key: &str, value: Value) {
    let index = after
        .iter()
        .find_map(|a| obj.keys().position(|k| k == a))
        .map(|i| i + 1)
        .unwrap_or(obj.len());
    obj.shift_insert(index, key.to_string(), value);
}

/// Renames `from` to `to` in place (same position among the keys), mapping the value.
fn rename_in_place(obj: &mut Map<String, Value>, from: &str, to: &str, map: fn(Value) -> Value) {
    if let Some(index) = obj.keys().position(|k| k == from) {
        let value = obj.shift_remove(from).expect("the key is present");
        obj.shift_insert(index, to.to_string(), map(value));
    }
}

fn type_up(v: Value) -> Value {
    if v == "batch" {
        Value::from("flow-control")
    } else {
        v
    }
}

fn type_down(v: Value) -> Value {
    if v == "flow-control" {
        Value::from("batch")
    } else {
        v
    }
}

/// The connection rule (module docs): step `i` → `i+1` unless step `i` branches or step `i+1`
/// begins a route. `branching[i]`: step `i` has `routes`; `route_starts`: step indices named by
/// a route's `first_step`.
fn derived_connections(branching: &[bool], route_starts: &HashSet<usize>) -> Vec<(usize, usize)> {
    (0..branching.len().saturating_sub(1))
        .filter(|&i| !branching[i] && !route_starts.contains(&(i + 1)))
        .map(|i| (i, i + 1))
        .collect()
}

fn connection(from: usize, to: usize) -> Value {
    json!({ "from": step_id(from), "to": step_id(to) })
}

fn summary_of(value: &Value) -> Value {
    let mut copy = value.clone();
    if let Some(m) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        m.shift_remove("format_version");
    }
    let doc = Document::from_value(copy, "migrated document").expect("an object, unstamped");
    compute_import_summary(&doc)
}

/// Migrates a version-1 document to version 2 (module docs). Does not stamp the version.
pub fn up(value: &mut Value) -> Result<(), StepError> {
    let root = as_object_mut(value, "")?;
    if let Some(flow) = root.get_mut("flow") {
        let flow = as_object_mut(flow, "/flow")?;
        if let Some(versions) = array_mut(flow, "versions", "/flow")? {
            for (vi, version) in versions.iter_mut().enumerate() {
                up_version(version, vi)?;
            }
        }
    }
    for key in ["scripts", "dependencies"] {
        if !root.contains_key(key) {
            root.insert(key.to_string(), Value::Array(Vec::new()));
        }
    }
    let summary = summary_of(value);
    let root = value.as_object_mut().expect("checked above");
    let metadata = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let metadata = as_object_mut(metadata, "/metadata")?;
    if let Some(existing) = metadata.get_mut("import_summary") {
        *existing = summary;
    } else {
        // Before a `format_version` stamp, so the stamp stays the last key the driver wrote.
        let at = metadata
            .keys()
            .position(|k| k == "format_version")
            .unwrap_or(metadata.len());
        metadata.shift_insert(at, "import_summary".to_string(), summary);
    }
    Ok(())
}

/// What a version's connections derive from (which steps branch, which steps begin a route),
/// and whether one of its steps is a callback.
#[derive(Default)]
struct StepShape {
    branching: Vec<bool>,
    route_starts: HashSet<usize>,
    has_callback: bool,
}

/// Migrates one version up: its steps (ids, types, positions, routes by id), the derived
/// connections, then the fields version 2 defines that it lacks.
fn up_version(version: &mut Value, vi: usize) -> Result<(), StepError> {
    let vp = format!("/flow/versions/{vi}");
    let version = as_object_mut(version, &vp)?;
    if version.contains_key("connections") {
        return Err(StepError::Conflict {
            pointer: format!("{vp}/connections"),
            field: "connections",
        });
    }
    let mut shape = StepShape::default();
    if let Some(steps) = array_mut(version, "steps", &vp)? {
        let by_name = steps_by_name(steps, &vp)?;
        for (i, step) in steps.iter_mut().enumerate() {
            up_step(step, i, &vp, &by_name, &mut shape)?;
        }
    }
    let connections = derived_connections(&shape.branching, &shape.route_starts)
        .into_iter()
        .map(|(a, b)| connection(a, b))
        .collect();
    insert_after(
        version,
        &["steps"],
        "connections",
        Value::Array(connections),
    );
    up_derived_fields(version, vi, shape.has_callback);
    Ok(())
}

/// Step name → the indices of the steps with that name (to resolve routes); refuses a step
/// that is not an object or already has a field the migration computes.
fn steps_by_name(steps: &[Value], vp: &str) -> Result<HashMap<String, Vec<usize>>, StepError> {
    let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, step) in steps.iter().enumerate() {
        let sp = format!("{vp}/steps/{i}");
        let obj = match step {
            Value::Object(m) => m,
            other => return Err(wrong_type(sp, "an object", other)),
        };
        for field in ["id", "type", "position"] {
            if obj.contains_key(field) {
                return Err(StepError::Conflict {
                    pointer: format!("{sp}/{field}"),
                    field,
                });
            }
        }
        if let Some(name) = obj.get("name").and_then(Value::as_str) {
            by_name.entry(name.to_string()).or_default().push(i);
        }
    }
    Ok(by_name)
}

/// Migrates step `i` up: its routes name their first step by id, `microservice` becomes
/// `type`, and it gets its id (first key) and default position (last key).
fn up_step(
    step: &mut Value,
    i: usize,
    vp: &str,
    by_name: &HashMap<String, Vec<usize>>,
    shape: &mut StepShape,
) -> Result<(), StepError> {
    let sp = format!("{vp}/steps/{i}");
    let obj = step.as_object_mut().expect("checked by steps_by_name");
    shape.branching.push(obj.contains_key("routes"));
    if let Some(routes) = array_mut(obj, "routes", &sp)? {
        for (ri, route) in routes.iter_mut().enumerate() {
            let rp = format!("{sp}/routes/{ri}");
            if let Some(target) = up_route(route, &rp, vp, by_name)? {
                shape.route_starts.insert(target);
            }
        }
    }
    rename_in_place(obj, "microservice", "type", type_up);
    shape.has_callback |= obj.get("type").is_some_and(|t| t == "callback");
    obj.shift_insert(0, "id".to_string(), step_id(i));
    obj.insert("position".to_string(), default_position(i));
    Ok(())
}

/// Turns a route's `first_step` name into that step's id; the index of the step it begins, if
/// it names one. A name no step or several steps have is an error.
fn up_route(
    route: &mut Value,
    rp: &str,
    vp: &str,
    by_name: &HashMap<String, Vec<usize>>,
) -> Result<Option<usize>, StepError> {
    let route = as_object_mut(route, rp)?;
    let Some(first) = route.get_mut("first_step") else {
        return Ok(None);
    };
    let fp = format!("{rp}/first_step");
    let name = match first {
        Value::Null => return Ok(None),
        Value::String(s) => s.clone(),
        other => return Err(wrong_type(fp, "a step name or null", other)),
    };
    let target = match by_name.get(&name).map(Vec::as_slice) {
        None | Some([]) => {
            return Err(StepError::UnknownStepName { pointer: fp, name });
        }
        Some([one]) => *one,
        Some(many) => {
            let steps = many
                .iter()
                .map(|j| format!("{vp}/steps/{j}"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(StepError::AmbiguousStepName {
                pointer: fp,
                name,
                steps,
            });
        }
    };
    *first = step_id(target);
    Ok(Some(target))
}

/// Adds the version fields version 2 defines where absent: `iteration`, `is_editable`,
/// `has_callback_step`, `variables`.
fn up_derived_fields(version: &mut Map<String, Value>, vi: usize, has_callback: bool) {
    let is_draft = version.get("status").is_some_and(|s| s == "Draft");
    let fields: [(&str, &[&str], Value); 4] = [
        (
            "iteration",
            &["flow_priority", "flow_name"],
            Value::from(vi as u64 + 1),
        ),
        (
            "is_editable",
            &["is_deployed", "status"],
            Value::from(is_draft),
        ),
        (
            "has_callback_step",
            &["is_editable"],
            Value::from(has_callback),
        ),
        (
            "variables",
            &["has_callback_step"],
            Value::Array(Vec::new()),
        ),
    ];
    for (key, after, value) in fields {
        if !version.contains_key(key) {
            insert_after(version, after, key, value);
        }
    }
}

/// Whether removing `v` loses nothing: null, `""`, `[]` or `{}`.
fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

fn quoted_name(v: &Value) -> String {
    match v.get("name").and_then(Value::as_str) {
        Some(name) => format!("`{name}`"),
        None => "(unnamed)".to_string(),
    }
}

/// Migrates a version-2 document to version 1 (module docs), reporting what version 1 cannot
/// hold. Does not stamp the version.
pub fn down(value: &mut Value) -> Result<LossReport, StepError> {
    if !value.is_object() {
        return Err(wrong_type(String::new(), "an object", value));
    }
    let mut loss = LossReport::default();
    let summary = summary_of(value);
    let root = as_object_mut(value, "")?;
    if let Some(metadata) = root.get_mut("metadata") {
        let metadata = as_object_mut(metadata, "/metadata")?;
        if let Some(by) = metadata.shift_remove("exported_by")
            && !is_blank(&by)
        {
            loss.push(
                "/metadata/exported_by",
                format!("exported_by {by} (version 1 does not record who exported)"),
            );
        }
        if let Some(stated) = metadata.shift_remove("import_summary")
            && stated != summary
        {
            loss.push(
                "/metadata/import_summary",
                "an import_summary that differs from the one migrating up computes",
            );
        }
    }
    if let Some(flow) = root.get_mut("flow") {
        let flow = as_object_mut(flow, "/flow")?;
        if let Some(versions) = array_mut(flow, "versions", "/flow")? {
            for (vi, version) in versions.iter_mut().enumerate() {
                down_version(version, vi, &mut loss)?;
            }
        }
    }
    for (key, kind) in [("scripts", "script"), ("dependencies", "dependency")] {
        match root.shift_remove(key) {
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let label = match item.get("type").and_then(Value::as_str) {
                        Some(t) if key == "dependencies" => format!("{kind} ({t})"),
                        _ => kind.to_string(),
                    };
                    loss.push(
                        format!("/{key}/{i}"),
                        format!("{label} {} (version 1 has no {key})", quoted_name(item)),
                    );
                }
            }
            Some(other) if !is_blank(&other) => {
                loss.push(format!("/{key}"), format!("{key} (version 1 has no {key})"))
            }
            _ => {}
        }
    }
    Ok(loss)
}

/// Migrates one version down: its steps (routes by name, version-2 step fields removed), its
/// connections, the derived version fields and its variables, reporting every loss.
fn down_version(version: &mut Value, vi: usize, loss: &mut LossReport) -> Result<(), StepError> {
    let vp = format!("/flow/versions/{vi}");
    let version = as_object_mut(version, &vp)?;
    let is_draft = version.get("status").is_some_and(|s| s == "Draft");
    let mut shape = StepShape::default();
    let mut by_id = HashMap::new();
    if let Some(steps) = array_mut(version, "steps", &vp)? {
        let index = StepIndex::of(steps, &vp, loss)?;
        shape.has_callback = index.has_callback;
        for (i, step) in steps.iter_mut().enumerate() {
            down_step(step, i, &vp, &index, &mut shape, loss)?;
        }
        by_id = index.by_id;
    }
    down_connections(version, &vp, &by_id, &shape, loss)?;
    down_derived_fields(version, vi, is_draft, shape.has_callback, loss);
    down_variables(version, &vp, loss);
    Ok(())
}

/// A version-2 version's steps, indexed for migrating down.
struct StepIndex {
    /// Step id (as JSON text) → index.
    by_id: HashMap<String, usize>,
    /// Each step's name when no other step shares it (routes can name it).
    unique_names: Vec<Option<String>>,
    /// Whether a step has type `callback`.
    has_callback: bool,
}

impl StepIndex {
    /// Indexes `steps`, refusing a step that is not an object or an id two steps share, and
    /// reporting ids that are not 1..n in list order.
    fn of(steps: &[Value], vp: &str, loss: &mut LossReport) -> Result<StepIndex, StepError> {
        let mut by_id: HashMap<String, usize> = HashMap::new();
        let mut name_count: HashMap<String, usize> = HashMap::new();
        let mut has_callback = false;
        for (i, step) in steps.iter().enumerate() {
            let sp = format!("{vp}/steps/{i}");
            let obj = match step {
                Value::Object(m) => m,
                other => return Err(wrong_type(sp, "an object", other)),
            };
            if let Some(id) = obj.get("id") {
                if let Some(first) = by_id.insert(id.to_string(), i) {
                    return Err(StepError::DuplicateStepId {
                        pointer: format!("{sp}/id"),
                        id: id.to_string(),
                        first: format!("{vp}/steps/{first}"),
                    });
                }
                if *id != step_id(i) {
                    loss.push(
                        format!("{sp}/id"),
                        format!(
                            "step id {id} of step {} (version 1 numbers steps 1..n in list order)",
                            quoted_name(step)
                        ),
                    );
                }
            }
            if let Some(name) = obj.get("name").and_then(Value::as_str) {
                *name_count.entry(name.to_string()).or_default() += 1;
            }
            has_callback |= obj.get("type").is_some_and(|t| t == "callback");
        }
        let unique_names = steps
            .iter()
            .map(|s| {
                let name = s.get("name")?.as_str()?;
                (name_count[name] == 1).then(|| name.to_string())
            })
            .collect();
        Ok(StepIndex {
            by_id,
            unique_names,
            has_callback,
        })
    }
}

/// Migrates step `i` down: its routes name their first step, then its version-2 fields go.
fn down_step(
    step: &mut Value,
    i: usize,
    vp: &str,
    index: &StepIndex,
    shape: &mut StepShape,
    loss: &mut LossReport,
) -> Result<(), StepError> {
    let sp = format!("{vp}/steps/{i}");
    let label = quoted_name(step);
    let obj = step.as_object_mut().expect("checked by StepIndex::of");
    shape.branching.push(obj.contains_key("routes"));
    if let Some(routes) = array_mut(obj, "routes", &sp)? {
        for (ri, route) in routes.iter_mut().enumerate() {
            let rp = format!("{sp}/routes/{ri}");
            if let Some(target) = down_route(route, &rp, &label, index, loss)? {
                shape.route_starts.insert(target);
            }
        }
    }
    down_step_fields(obj, i, &sp, &label, loss);
    Ok(())
}

/// Turns a route's `first_step` id into that step's name; the index of the step it begins, if
/// it can be named. A step whose name is missing or shared cannot be: reported, written as
/// `null`.
fn down_route(
    route: &mut Value,
    rp: &str,
    label: &str,
    index: &StepIndex,
    loss: &mut LossReport,
) -> Result<Option<usize>, StepError> {
    let route = as_object_mut(route, rp)?;
    let Some(first) = route.get_mut("first_step") else {
        return Ok(None);
    };
    if first.is_null() {
        return Ok(None);
    }
    let fp = format!("{rp}/first_step");
    let Some(&target) = index.by_id.get(&first.to_string()) else {
        return Err(StepError::UnknownStepId {
            pointer: fp,
            id: first.to_string(),
        });
    };
    match &index.unique_names[target] {
        Some(name) => {
            *first = Value::from(name.as_str());
            Ok(Some(target))
        }
        None => {
            loss.push(
                fp,
                format!(
                    "the first step ({first}) of a route of step {label}: \
                     version 1 routes name their first step, and that step's \
                     name is missing or shared (written without a first step)"
                ),
            );
            *first = Value::Null;
            Ok(None)
        }
    }
}

/// Removes a step's `position`, `description` and `id`, and turns `type` back into
/// `microservice`, reporting what migrating up would not compute again.
fn down_step_fields(
    obj: &mut Map<String, Value>,
    i: usize,
    sp: &str,
    label: &str,
    loss: &mut LossReport,
) {
    if let Some(position) = obj.shift_remove("position")
        && position != default_position(i)
    {
        loss.push(
            format!("{sp}/position"),
            format!("position {position} of step {label} (version 1 lays steps out left to right)"),
        );
    }
    if let Some(description) = obj.shift_remove("description")
        && !is_blank(&description)
    {
        loss.push(
            format!("{sp}/description"),
            format!("the description of step {label} (version 1 steps have none)"),
        );
    }
    obj.shift_remove("id");
    if obj.contains_key("microservice") {
        if let Some(kind) = obj.shift_remove("type") {
            loss.push(
                format!("{sp}/type"),
                format!("type {kind} of step {label}, which also has a microservice"),
            );
        }
    } else {
        rename_in_place(obj, "type", "microservice", type_down);
    }
}

/// Removes the version's `connections`, reporting each one the connection rule does not derive
/// (or that repeats one), and each derived one that is absent.
fn down_connections(
    version: &mut Map<String, Value>,
    vp: &str,
    by_id: &HashMap<String, usize>,
    shape: &StepShape,
    loss: &mut LossReport,
) -> Result<(), StepError> {
    let derived: HashSet<(usize, usize)> =
        derived_connections(&shape.branching, &shape.route_starts)
            .into_iter()
            .collect();
    let connections = match version.shift_remove("connections") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(connections)) => connections,
        Some(other) => return Err(wrong_type(format!("{vp}/connections"), "an array", &other)),
    };
    let mut seen = HashSet::new();
    for (ci, c) in connections.iter().enumerate() {
        let cp = format!("{vp}/connections/{ci}");
        let obj = match c {
            Value::Object(m) => m,
            other => return Err(wrong_type(cp, "an object", other)),
        };
        let pair = (
            connection_end(obj, "from", &cp, by_id)?,
            connection_end(obj, "to", &cp, by_id)?,
        );
        let plain = obj.len() == 2;
        let expressible = match pair {
            (Some(a), Some(b)) => plain && derived.contains(&(a, b)) && seen.insert((a, b)),
            _ => false,
        };
        if !expressible {
            loss.push(
                cp,
                format!(
                    "connection {c} (version 1 runs steps in list order, a branching \
                     step hands over to its routes)"
                ),
            );
        }
    }
    let mut missing: Vec<_> = derived.difference(&seen).copied().collect();
    missing.sort_unstable();
    for (a, b) in missing {
        loss.push(
            format!("{vp}/connections"),
            format!(
                "the absence of a connection from step {} to step {}: version 1 runs \
                 step {} after step {}",
                a + 1,
                b + 1,
                b + 1,
                a + 1
            ),
        );
    }
    Ok(())
}

/// The index of the step a connection's `from` or `to` names; `None` when absent or `null`.
fn connection_end(
    obj: &Map<String, Value>,
    key: &str,
    cp: &str,
    by_id: &HashMap<String, usize>,
) -> Result<Option<usize>, StepError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(id) => by_id
            .get(&id.to_string())
            .copied()
            .map(Some)
            .ok_or_else(|| StepError::UnknownStepId {
                pointer: format!("{cp}/{key}"),
                id: id.to_string(),
            }),
    }
}

/// Removes `iteration`, `is_editable` and `has_callback_step`, reporting values that differ
/// from what version 1 derives.
fn down_derived_fields(
    version: &mut Map<String, Value>,
    vi: usize,
    is_draft: bool,
    has_callback: bool,
    loss: &mut LossReport,
) {
    let vp = format!("/flow/versions/{vi}");
    let derived_fields = [
        (
            "iteration",
            Value::from(vi as u64 + 1),
            "version 1 orders versions by list order",
        ),
        (
            "is_editable",
            Value::from(is_draft),
            "version 1 derives it from the status",
        ),
        (
            "has_callback_step",
            Value::from(has_callback),
            "version 1 derives it from the steps",
        ),
    ];
    for (key, derived, why) in derived_fields {
        if let Some(v) = version.shift_remove(key)
            && v != derived
        {
            loss.push(format!("{vp}/{key}"), format!("{key} {v} ({why})"));
        }
    }
}

/// Removes the version's `variables`, reporting each one (version 1 has no flow variables).
fn down_variables(version: &mut Map<String, Value>, vp: &str, loss: &mut LossReport) {
    match version.shift_remove("variables") {
        Some(Value::Array(vars)) => {
            for (i, var) in vars.iter().enumerate() {
                let key = var.get("key").and_then(Value::as_str).unwrap_or("(no key)");
                loss.push(
                    format!("{vp}/variables/{i}"),
                    format!("variable `{key}` (version 1 has no flow variables)"),
                );
            }
        }
        Some(other) if !is_blank(&other) => loss.push(
            format!("{vp}/variables"),
            "variables (version 1 has no flow variables)",
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up_of(text: &str) -> Value {
        let mut v: Value = serde_json::from_str(text).unwrap();
        up(&mut v).unwrap();
        v
    }

    #[test]
    fn route_starts_are_entered_through_their_routes() {
        let v = up_of(
            r#"{"flow":{"versions":[{"steps":[
                {"name":"T","microservice":"trigger"},
                {"name":"B","microservice":"branch","routes":[
                    {"name":"a","first_step":"X"},{"name":"b","first_step":"Y"}]},
                {"name":"X","microservice":"map"},{"name":"X2","microservice":"map"},
                {"name":"Y","microservice":"map"}]}]}}"#,
        );
        let version = &v["flow"]["versions"][0];
        assert_eq!(
            version["connections"],
            json!([{"from":1,"to":2},{"from":3,"to":4}])
        );
        assert_eq!(
            version["steps"][1]["routes"],
            json!([{"name":"a","first_step":3},{"name":"b","first_step":5}])
        );
        let mut back = v.clone();
        assert!(down(&mut back).unwrap().is_empty());
    }

    #[test]
    fn keys_land_in_natural_places() {
        let v = up_of(
            r#"{"metadata":{"company_name":"A"},"flow":{"versions":[{"flow_name":"F",
                "flow_priority":3,"status":"Draft","is_deployed":false,
                "steps":[{"name":"S","microservice":"batch","config":{}}],"schedules":[]}]},
                "systems":[]}"#,
        );
        let version = &v["flow"]["versions"][0];
        let keys: Vec<&str> = version
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "flow_name",
                "flow_priority",
                "iteration",
                "status",
                "is_deployed",
                "is_editable",
                "has_callback_step",
                "variables",
                "steps",
                "connections",
                "schedules"
            ]
        );
        assert_eq!(
            serde_json::to_string(&version["steps"][0]).unwrap(),
            r#"{"id":1,"name":"S","type":"flow-control","config":{},"position":{"x":100,"y":100}}"#
        );
        assert_eq!(version["is_editable"], true);
        let top: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            top,
            ["metadata", "flow", "systems", "scripts", "dependencies"]
        );
    }

    #[test]
    fn ambiguous_and_mistyped_routes_are_errors_naming_the_pointer() {
        let mut v: Value = serde_json::from_str(
            r#"{"flow":{"versions":[{"steps":[{"name":"B","microservice":"branch",
                "routes":[{"first_step":"A"}]},{"name":"A"},{"name":"A"}]}]}}"#,
        )
        .unwrap();
        assert_eq!(
            up(&mut v).unwrap_err().to_string(),
            "/flow/versions/0/steps/0/routes/0/first_step: route names step `A`, which several \
             steps are called: /flow/versions/0/steps/1, /flow/versions/0/steps/2"
        );
        let mut v: Value = serde_json::from_str(
            r#"{"flow":{"versions":[{"steps":[{"name":"B","routes":[{"first_step":2}]}]}]}}"#,
        )
        .unwrap();
        assert_eq!(
            up(&mut v).unwrap_err().to_string(),
            "/flow/versions/0/steps/0/routes/0/first_step: expected a step name or null, found number"
        );
        let mut v: Value =
            serde_json::from_str(r#"{"flow":{"versions":[{"steps":[{"id":7,"name":"B"}]}]}}"#)
                .unwrap();
        assert_eq!(
            up(&mut v).unwrap_err().to_string(),
            "/flow/versions/0/steps/0/id: a version-1 step already has `id`, which migrating to \
             version 2 computes"
        );
    }

    #[test]
    fn down_reports_what_up_would_not_recompute() {
        let mut v = json!({"flow":{"versions":[{"iteration":1,"steps":[
            {"id":10,"type":"trigger","name":"T","position":{"x":100,"y":100}},
            {"id":20,"type":"map","name":"M","description":"maps","position":{"x":0,"y":0}},
            {"id":30,"type":"branch","name":"B","routes":[{"name":"r","first_step":10}]}],
            "connections":[{"from":10,"to":30},{"from":20,"to":30}]}]}});
        let loss = down(&mut v).unwrap();
        let pointers: Vec<&str> = loss.items.iter().map(|l| l.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/flow/versions/0/steps/0/id",
                "/flow/versions/0/steps/1/id",
                "/flow/versions/0/steps/2/id",
                "/flow/versions/0/steps/1/position",
                "/flow/versions/0/steps/1/description",
                "/flow/versions/0/connections/0",
                "/flow/versions/0/connections",
            ],
            "{loss}"
        );
        // Derived: 1 → 2 and 2 → 3 (3 branches); 1 → 3 is not derived, 1 → 2 is missing.
        assert_eq!(
            v,
            json!({"flow":{"versions":[{"steps":[
                {"microservice":"trigger","name":"T"},
                {"microservice":"map","name":"M"},
                {"microservice":"branch","name":"B","routes":[{"name":"r","first_step":"T"}]}]}]}})
        );
    }

    #[test]
    fn down_names_broken_references() {
        let mut v =
            json!({"flow":{"versions":[{"steps":[{"id":1,"name":"A"},{"id":1,"name":"B"}]}]}});
        assert_eq!(
            down(&mut v).unwrap_err().to_string(),
            "/flow/versions/0/steps/1/id: step id 1 is already used by /flow/versions/0/steps/0"
        );
        let mut v = json!({"flow":{"versions":[{"steps":[{"id":1,"name":"A"}],
            "connections":[{"from":1,"to":9}]}]}});
        assert_eq!(
            down(&mut v).unwrap_err().to_string(),
            "/flow/versions/0/connections/0/to: names step id 9, but no step of this version has that id"
        );
    }

    #[test]
    fn a_route_to_a_step_without_a_unique_name_is_written_empty() {
        let mut v = json!({"flow":{"versions":[{"steps":[
            {"id":1,"type":"branch","name":"B","routes":[{"name":"r","first_step":2}]},
            {"id":2,"type":"map","name":"M"},{"id":3,"type":"map","name":"M"}],
            "connections":[{"from":2,"to":3}]}]}});
        let loss = down(&mut v).unwrap();
        assert_eq!(loss.items.len(), 1, "{loss}");
        assert_eq!(
            loss.items[0].pointer,
            "/flow/versions/0/steps/0/routes/0/first_step"
        );
        assert_eq!(
            v["flow"]["versions"][0]["steps"][0]["routes"][0]["first_step"],
            Value::Null
        );
    }
}
