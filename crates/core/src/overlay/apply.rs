//! Applying a resolved overlay to one export document: variables, priority, credentials, then
//! system renames, each change reported.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::{CredentialRef, FlowOverlay, Overlay, OverlayValue, ResolvedOverlay};
use crate::document::Document;
use crate::secrets::MASK;

/// One change an overlay made to a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum OverlayChange {
    /// A variable's value was set (on `versions` versions).
    VariableSet {
        /// The key.
        key: String,
        /// The new value (`••••` for a secret variable).
        value: String,
        /// How many versions.
        versions: usize,
    },
    /// A variable was appended (on `versions` versions).
    VariableAdded {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// How many versions.
        versions: usize,
    },
    /// The priority was set.
    Priority {
        /// The new priority.
        priority: i64,
    },
    /// A system was renamed (`places` references changed, the definition included).
    SystemRenamed {
        /// The name in the archive.
        from: String,
        /// The name in the target.
        to: String,
        /// References changed.
        places: usize,
    },
    /// A credential was set (its value is never reported).
    CredentialSet {
        /// The credential.
        credential: CredentialRef,
    },
}

impl fmt::Display for OverlayChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverlayChange::VariableSet {
                key,
                value,
                versions,
            } => {
                write!(
                    f,
                    "variable {key} = {value:?} ({})",
                    crate::archive::plural(*versions, "version", "versions")
                )
            }
            OverlayChange::VariableAdded {
                key,
                value,
                versions,
            } => {
                write!(
                    f,
                    "variable {key} = {value:?} added ({})",
                    crate::archive::plural(*versions, "version", "versions")
                )
            }
            OverlayChange::Priority { priority } => write!(f, "priority = {priority}"),
            OverlayChange::SystemRenamed { from, to, places } => {
                write!(
                    f,
                    "system {from:?} -> {to:?} ({})",
                    crate::archive::plural(*places, "place", "places")
                )
            }
            OverlayChange::CredentialSet { credential } => {
                write!(f, "credential {credential} = {MASK}")
            }
        }
    }
}

/// What [`apply`] changed in one document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OverlayReport {
    /// The flow's name.
    pub flow: String,
    /// The changes, in order.
    pub changes: Vec<OverlayChange>,
}

/// Applies a resolved overlay to the export document of flow `flow_name` (see the module docs
/// for the rules): variables, then the priority, then credentials, then system renames.
pub fn apply(doc: &mut Document, flow_name: &str, overlay: &ResolvedOverlay) -> OverlayReport {
    let o = overlay.overlay();
    let mut changes = Vec::new();
    let per_flow = o.flows.get(flow_name);
    let root = doc.value_mut();
    apply_variables(root, &wanted_variables(o, per_flow), &mut changes);
    if let Some(priority) = per_flow.and_then(|f| f.priority) {
        apply_priority(root, priority, &mut changes);
    }
    // Secrets before renames: they name systems as the archive does.
    for (c, value) in &o.secrets {
        if set_credential(root, c, &value.value) {
            changes.push(OverlayChange::CredentialSet {
                credential: c.clone(),
            });
        }
    }
    for (from, to) in &o.systems {
        let places = rename_system(root, from, &to.value);
        if places > 0 {
            changes.push(OverlayChange::SystemRenamed {
                from: from.clone(),
                to: to.value.clone(),
                places,
            });
        }
    }
    OverlayReport {
        flow: flow_name.to_string(),
        changes,
    }
}

/// The variables to set, by key: global first, then per-flow (which wins); `true` for a
/// per-flow key, which may be appended.
fn wanted_variables<'a>(
    o: &'a Overlay,
    per_flow: Option<&'a FlowOverlay>,
) -> BTreeMap<&'a str, (&'a OverlayValue, bool)> {
    let mut wanted: BTreeMap<&str, (&OverlayValue, bool)> = BTreeMap::new();
    for (k, v) in &o.variables {
        wanted.insert(k, (v, false));
    }
    if let Some(f) = per_flow {
        for (k, v) in &f.variables {
            wanted.insert(k, (v, true));
        }
    }
    wanted
}

/// Sets (or appends) every wanted variable on the document's versions, reporting each key once
/// with the number of versions changed (the value masked when the variable or value is secret).
fn apply_variables(
    root: &mut Value,
    wanted: &BTreeMap<&str, (&OverlayValue, bool)>,
    changes: &mut Vec<OverlayChange>,
) {
    if wanted.is_empty() {
        return;
    }
    let Some(versions) = root
        .pointer_mut("/flow/versions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let existing: BTreeSet<String> = versions
        .iter()
        .filter_map(|v| v.get("variables").and_then(Value::as_array))
        .flatten()
        .filter_map(|var| var.get("key").and_then(Value::as_str).map(str::to_string))
        .collect();
    for (&key, &(value, may_add)) in wanted {
        let may_add = may_add && !existing.contains(key);
        let (set, added, secret) = set_variable(versions, key, &value.value, may_add);
        let shown = if secret || value.secret {
            MASK.to_string()
        } else {
            value.value.clone()
        };
        if set > 0 {
            changes.push(OverlayChange::VariableSet {
                key: key.to_string(),
                value: shown.clone(),
                versions: set,
            });
        }
        if added > 0 {
            changes.push(OverlayChange::VariableAdded {
                key: key.to_string(),
                value: shown,
                versions: added,
            });
        }
    }
}

/// Sets variable `key` to `value` on every version that lists it; with `may_add`, appends it
/// (not secret) to every version that has a `variables` list without it. Returns how many
/// versions were set, how many appended, and whether any version marks it secret.
fn set_variable(
    versions: &mut [Value],
    key: &str,
    value: &str,
    may_add: bool,
) -> (usize, usize, bool) {
    let (mut set, mut added, mut secret) = (0, 0, false);
    for version in versions.iter_mut() {
        let Some(vars) = version.get_mut("variables").and_then(Value::as_array_mut) else {
            continue;
        };
        let mut found = false;
        for var in vars.iter_mut() {
            if var.get("key").and_then(Value::as_str) == Some(key) {
                found = true;
                secret |= var.get("is_secret").and_then(Value::as_bool) == Some(true);
                if let Some(map) = var.as_object_mut() {
                    map.insert("value".into(), Value::String(value.to_string()));
                }
                set += 1;
            }
        }
        if !found && may_add {
            let mut var = serde_json::Map::new();
            var.insert("key".into(), Value::String(key.to_string()));
            var.insert("value".into(), Value::String(value.to_string()));
            var.insert("is_secret".into(), Value::Bool(false));
            vars.push(Value::Object(var));
            added += 1;
        }
    }
    (set, added, secret)
}

/// Sets `flow.priority` and every version's `flow_priority`.
fn apply_priority(root: &mut Value, priority: i64, changes: &mut Vec<OverlayChange>) {
    let Some(flow) = root.get_mut("flow").and_then(Value::as_object_mut) else {
        return;
    };
    flow.insert("priority".into(), Value::from(priority));
    if let Some(versions) = flow.get_mut("versions").and_then(Value::as_array_mut) {
        for version in versions.iter_mut().filter_map(Value::as_object_mut) {
            version.insert("flow_priority".into(), Value::from(priority));
        }
    }
    changes.push(OverlayChange::Priority { priority });
}

/// Sets credential `c` (the system named as in the archive) to `value` wherever it exists;
/// whether it did. Only existing credential keys are set: a key the implementation does not
/// have is an unmatched overlay key, never added.
fn set_credential(root: &mut Value, c: &CredentialRef, value: &str) -> bool {
    let Some(systems) = root.get_mut("systems").and_then(Value::as_array_mut) else {
        return false;
    };
    let mut hit = false;
    for s in systems.iter_mut() {
        let Some(system) = s.get_mut("system") else {
            continue;
        };
        if system.get("name").and_then(Value::as_str) != Some(c.system.as_str()) {
            continue;
        }
        let Some(impls) = system
            .get_mut("authentication_implementations")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for imp in impls.iter_mut() {
            if imp.get("name").and_then(Value::as_str) != Some(c.auth.as_str()) {
                continue;
            }
            if let Some(slot) = imp
                .get_mut("credentials")
                .and_then(Value::as_object_mut)
                .and_then(|creds| creds.get_mut(&c.key))
            {
                *slot = Value::String(value.to_string());
                hit = true;
            }
        }
    }
    hit
}

/// Renames system `from` to `to` in the system definitions, connector steps and system
/// dependencies; the number of places changed.
fn rename_system(root: &mut Value, from: &str, to: &str) -> usize {
    let mut places = 0;
    let mut rename = |obj: &mut serde_json::Map<String, Value>, field: &str| {
        if obj.get(field).and_then(Value::as_str) == Some(from) {
            obj.insert(field.into(), Value::String(to.to_string()));
            places += 1;
        }
    };
    if let Some(systems) = root.get_mut("systems").and_then(Value::as_array_mut) {
        for s in systems.iter_mut() {
            if let Some(system) = s.get_mut("system").and_then(Value::as_object_mut) {
                rename(system, "name");
            }
        }
    }
    if let Some(versions) = root
        .pointer_mut("/flow/versions")
        .and_then(Value::as_array_mut)
    {
        let steps = versions
            .iter_mut()
            .filter_map(|v| v.get_mut("steps").and_then(Value::as_array_mut))
            .flatten();
        for step in steps {
            if step.get("type").and_then(Value::as_str) != Some("connector") {
                continue;
            }
            if let Some(config) = step.get_mut("config").and_then(Value::as_object_mut) {
                rename(config, "system");
            }
        }
    }
    if let Some(deps) = root.get_mut("dependencies").and_then(Value::as_array_mut) {
        for dep in deps.iter_mut().filter_map(Value::as_object_mut) {
            if dep.get("type").and_then(Value::as_str) == Some("system") {
                rename(dep, "name");
            }
        }
    }
    places
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::super::*;
    use crate::document::Document;

    #[test]
    fn apply_sets_variables_priority_systems_and_secrets() {
        let mut doc = Document::from_slice(ORDER_SYNC.as_bytes(), "order-sync.json").unwrap();
        let report = apply(&mut doc, FLOW, &resolved());
        let v = doc.value();
        let vars = &v["flow"]["versions"][0]["variables"];
        assert_eq!(vars[0]["value"], "7");
        assert_eq!(vars[1]["value"], "100");
        assert_eq!(vars[2]["key"], "NEW_ONE");
        assert_eq!(vars[2]["value"], "west-eu");
        assert_eq!(vars[2]["is_secret"], false);
        assert_eq!(
            vars.as_array().unwrap().len(),
            3,
            "UNUSED_ELSEWHERE is global: not added"
        );
        // The draft version has no `variables` list: left alone.
        assert!(v["flow"]["versions"][1].get("variables").is_none());
        assert_eq!(v["flow"]["priority"], 1);
        assert_eq!(v["flow"]["versions"][0]["flow_priority"], 1);
        assert_eq!(v["flow"]["versions"][1]["flow_priority"], 1);
        assert_eq!(v["systems"][0]["system"]["name"], "Shopify (production)");
        assert_eq!(
            v["flow"]["versions"][0]["steps"][2]["config"]["system"],
            "Shopify (production)"
        );
        assert_eq!(v["dependencies"][1]["name"], "Shopify (production)");
        assert_eq!(
            v["systems"][0]["system"]["authentication_implementations"][0]["credentials"]["token"],
            "shpat_live_123"
        );
        let lines: Vec<String> = report.changes.iter().map(ToString::to_string).collect();
        assert!(lines.contains(
            &"credential [secrets.\"Shopify\".\"Admin API token\"].token = ••••".to_string()
        ));
        assert!(
            lines
                .contains(&"system \"Shopify\" -> \"Shopify (production)\" (3 places)".to_string())
        );
        assert!(lines.contains(&"priority = 1".to_string()));
        assert!(lines.contains(&"variable NEW_ONE = \"west-eu\" added (1 version)".to_string()));
        let all = format!("{report:?} {lines:?} {:?}", resolved());
        assert!(!all.contains("shpat_live_123"), "{all}");
    }

    #[test]
    fn a_misspelled_credential_key_is_not_added() {
        let text = "[secrets.\"Shopify\".\"Admin API token\"]\ntokn = \"live\"\n";
        let o = Overlay::parse(text, "o.toml").unwrap();
        let mut doc = Document::from_slice(ORDER_SYNC.as_bytes(), "order-sync.json").unwrap();
        let before = doc.clone();
        let report = apply(&mut doc, FLOW, &o.resolve(&|_| None).unwrap());
        assert_eq!(doc, before);
        assert!(report.changes.is_empty());
        let err = check_unmatched(&o, &order_sync_targets(), OnUnmatched::Refuse).unwrap_err();
        assert_eq!(
            err.to_string(),
            "o.toml: 1 key matches nothing in the archive: [secrets.\"Shopify\".\"Admin API token\"].tokn: \
             authentication implementation \"Admin API token\" of system \"Shopify\" has no credential \"tokn\" \
             (did you mean `token`?)"
        );
    }
}
