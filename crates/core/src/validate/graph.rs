//! The step-graph rules (FP02xx): unique ids, connection ends, route targets, reachability from
//! the trigger and the trigger count.
//!
//! Version 2 names steps by `id` (a number or a string; `3` and `"3"` are different ids) and
//! links them with `connections` and routes. Version 1 has no ids and no connections: steps run
//! in list order and routes name their first step by step **name**; so in version 1 every step is
//! reachable, and a missing trigger is normal (a legacy flow is started by its `schedules`), but
//! more than one trigger step is still reported.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::Value;

use super::{step_label, version_label};
use crate::document::{FormatVersion, StepView, VersionView};

/// Emits one finding: `(pointer, message, hint)`.
pub(super) type Emit<'e> = dyn FnMut(String, String, String) + 'e;
/// A graph rule.
pub(super) type Check = fn(&VersionGraph<'_>, &mut Emit<'_>);

/// A version's steps, indexed by how they are referenced.
pub(super) struct VersionGraph<'a> {
    version: VersionView<'a>,
    format: FormatVersion,
    steps: Vec<StepView<'a>>,
    /// Step reference key (see [`ref_key`]) → index of the first step with it.
    by_ref: HashMap<String, usize>,
}

/// The key a step reference is compared by: ids in version 2 (numbers by their exact text,
/// strings by their text, kept apart), names in version 1. `None` when the value cannot be a
/// reference (the schema reports its type).
fn ref_key(v: &Value, format: FormatVersion) -> Option<String> {
    match (format, v) {
        (FormatVersion::V2, Value::Number(n)) => Some(format!("n:{n}")),
        (FormatVersion::V2, Value::String(s)) => Some(format!("s:{s}")),
        (FormatVersion::V1, Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

impl<'a> VersionGraph<'a> {
    pub(super) fn new(version: VersionView<'a>, format: FormatVersion) -> VersionGraph<'a> {
        let steps: Vec<StepView<'a>> = version.steps().collect();
        let mut by_ref = HashMap::new();
        for (i, step) in steps.iter().enumerate() {
            if let Some(key) = Self::own_key(step, format) {
                by_ref.entry(key).or_insert(i);
            }
        }
        VersionGraph {
            version,
            format,
            steps,
            by_ref,
        }
    }

    fn own_key(step: &StepView<'_>, format: FormatVersion) -> Option<String> {
        match format {
            FormatVersion::V2 => ref_key(step.id()?, format),
            FormatVersion::V1 => step.name().map(str::to_string),
        }
    }

    fn resolve(&self, v: &Value) -> Option<Option<usize>> {
        let key = ref_key(v, self.format)?;
        Some(self.by_ref.get(&key).copied())
    }

    /// Whether every step has a usable id and every connection end and route target names a
    /// step. Reachability is only judged on an intact graph: a broken reference is reported once,
    /// by its own rule, not again as the steps it cuts off.
    fn intact(&self) -> bool {
        let resolves =
            |v: Option<&Value>| v.is_none_or(|v| matches!(self.resolve(v), Some(Some(_))));
        self.steps
            .iter()
            .all(|s| Self::own_key(s, self.format).is_some())
            && self
                .version
                .connections()
                .all(|c| c.from.is_some() && c.to.is_some() && resolves(c.from) && resolves(c.to))
            && self.steps.iter().all(|s| {
                s.routes().all(|r| {
                    r.first_step
                        .is_none_or(|t| t.is_null() || resolves(Some(t)))
                })
            })
    }

    fn triggers(&self) -> Vec<usize> {
        (0..self.steps.len())
            .filter(|&i| self.steps[i].kind() == Some("trigger"))
            .collect()
    }
}

pub(super) fn check_duplicate_ids(g: &VersionGraph<'_>, emit: &mut Emit<'_>) {
    if g.format != FormatVersion::V2 {
        return;
    }
    for (i, step) in g.steps.iter().enumerate() {
        let Some(id) = step.id() else { continue };
        let Some(key) = ref_key(id, g.format) else {
            continue;
        };
        let first = g.by_ref[&key];
        if first != i {
            emit(
                format!("{}/id", step.pointer()),
                format!(
                    "{} of {} has the same id as {}",
                    step_label(step),
                    version_label(&g.version),
                    step_label(&g.steps[first])
                ),
                "give every step of a version its own id, and update the connections and routes \
                 that meant this step"
                    .into(),
            );
        }
    }
}

pub(super) fn check_connections(g: &VersionGraph<'_>, emit: &mut Emit<'_>) {
    for conn in g.version.connections() {
        for (end, value) in [("from", conn.from), ("to", conn.to)] {
            let Some(value) = value else { continue };
            if let Some(None) = g.resolve(value) {
                emit(
                    format!("{}/{end}", conn.pointer()),
                    format!(
                        "connection {} of {}: `{end}` names step {value}, which is not a step of \
                         this version",
                        conn.pointer().rsplit('/').next().unwrap_or(""),
                        version_label(&g.version)
                    ),
                    "point the connection at the id of an existing step, or remove it".into(),
                );
            }
        }
    }
}

pub(super) fn check_routes(g: &VersionGraph<'_>, emit: &mut Emit<'_>) {
    for step in &g.steps {
        for route in step.routes() {
            let Some(target) = route.first_step else {
                continue;
            };
            if let Some(None) = g.resolve(target) {
                let how = match g.format {
                    FormatVersion::V2 => "the id of a step",
                    FormatVersion::V1 => "the name of a step (version 1 routes name steps)",
                };
                emit(
                    format!("{}/first_step", route.pointer),
                    format!(
                        "route \"{}\" of {} in {} starts at {target}, which is not a step of this \
                         version",
                        route.name.unwrap_or(""),
                        step_label(step),
                        version_label(&g.version)
                    ),
                    format!("set first_step to {how} of this version, or null for an empty route"),
                );
            }
        }
    }
}

pub(super) fn check_reachability(g: &VersionGraph<'_>, emit: &mut Emit<'_>) {
    if g.format != FormatVersion::V2 {
        return;
    }
    let triggers = g.triggers();
    if triggers.is_empty() || !g.intact() {
        return;
    }
    let mut edges: HashMap<usize, Vec<usize>> = HashMap::new();
    for conn in g.version.connections() {
        let (Some(Some(Some(from))), Some(Some(Some(to)))) = (
            conn.from.map(|v| g.resolve(v)),
            conn.to.map(|v| g.resolve(v)),
        ) else {
            continue;
        };
        edges.entry(from).or_default().push(to);
    }
    for (i, step) in g.steps.iter().enumerate() {
        for route in step.routes() {
            if let Some(Some(Some(to))) = route.first_step.map(|v| g.resolve(v)) {
                edges.entry(i).or_default().push(to);
            }
        }
    }
    let mut seen: HashSet<usize> = triggers.iter().copied().collect();
    let mut queue: VecDeque<usize> = triggers.into_iter().collect();
    while let Some(i) = queue.pop_front() {
        for &next in edges.get(&i).into_iter().flatten() {
            if seen.insert(next) {
                queue.push_back(next);
            }
        }
    }
    for (i, step) in g.steps.iter().enumerate() {
        // A step sharing a duplicate id is as reachable as the id (FP0201 reports the id).
        let by_id = VersionGraph::own_key(step, g.format)
            .and_then(|key| g.by_ref.get(&key))
            .is_some_and(|first| seen.contains(first));
        if !seen.contains(&i) && !by_id {
            emit(
                step.pointer(),
                format!(
                    "{} of {} is not reachable from the trigger",
                    step_label(step),
                    version_label(&g.version)
                ),
                "connect the step (a connection to its id, or a route whose first_step is its \
                 id), or remove it"
                    .into(),
            );
        }
    }
}

pub(super) fn check_triggers(g: &VersionGraph<'_>, emit: &mut Emit<'_>) {
    let triggers = g.triggers();
    match (g.format, triggers.as_slice()) {
        (_, [_]) | (FormatVersion::V1, []) => {}
        (_, []) => emit(
            format!("{}/steps", g.version.pointer()),
            format!("{} has no trigger step", version_label(&g.version)),
            "add one step of type `trigger`: it is where the flow starts".into(),
        ),
        (_, [_, second, ..]) => {
            let names: Vec<String> = triggers.iter().map(|&i| step_label(&g.steps[i])).collect();
            emit(
                g.steps[*second].pointer(),
                format!(
                    "{} has {} trigger steps ({})",
                    version_label(&g.version),
                    triggers.len(),
                    names.join(", ")
                ),
                "keep exactly one trigger step per version".into(),
            );
        }
    }
}
