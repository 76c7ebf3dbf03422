//! Overlays (DESIGN §7): one environment's replacements, applied to export documents at push
//! time and never stored in an archive.
//!
//! ```toml
//! [variables]                      # flow variables, every flow
//! NETSUITE_SUBSIDIARY = "7"
//! [flows."Shopify > NetSuite Orders".variables]
//! SHOPIFY_PAGE_SIZE = "100"
//! [flows."Shopify > NetSuite Orders"]
//! priority = 1
//! [systems]                        # system name in the archive -> name in the target
//! "Shopify" = "Shopify (production)"
//! [secrets]                        # "<system>/<auth implementation>/<credential key>"
//! "Shopify/Admin API token/token" = "${env:SHOPIFY_PROD_TOKEN}"
//! ```
//!
//! Rules (decisions a user relies on):
//! - Values are TOML strings; integers and booleans are accepted and written as their text
//!   (`SHOPIFY_PAGE_SIZE = 100` sets `"100"`). Unknown tables and keys are errors (typos).
//! - `${env:NAME}` anywhere in a value is replaced by that environment variable, looked up
//!   through an injected function ([`Overlay::resolve`]). Any unresolved reference is an error
//!   naming every missing variable and where it is used; nothing is sent before resolution.
//! - `[variables]` sets the value of a variable **that the flow already has**, on every version
//!   that lists it (a global overlay names variables of many flows; adding them all to every flow
//!   would change flows that do not use them). `[flows."Name".variables]` does the same and, for
//!   a key no version has, appends `{key, value, is_secret: false}` to every version that has a
//!   `variables` list: naming the flow is explicit intent. Per-flow values win over global ones.
//! - `priority` (1–5) sets `flow.priority` and every version's `flow_priority`.
//! - `[systems]` renames a system everywhere the document names it: `systems[].system.name`,
//!   every connector step's `config.system`, and `dependencies` entries of type `system`.
//! - `[secrets]` keys name the system by its name **in the archive** (before any rename); the
//!   value is set as that authentication implementation's credential.
//! - Secret values (every `[secrets]` value and variables marked `is_secret`) print as `••••`
//!   in reports, `Display` and `Debug`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::document::Document;
use crate::secrets::MASK;

/// Errors reading, resolving or checking an overlay; each names the overlay and the entry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OverlayError {
    /// The file is not TOML.
    #[error("{origin}: not a valid overlay: {message}")]
    Parse {
        /// The overlay's path.
        origin: String,
        /// What the TOML parser said.
        message: String,
    },
    /// TOML, but not the overlay's shape.
    #[error("{origin}: {at}: {message}")]
    Shape {
        /// The overlay's path.
        origin: String,
        /// Where in the overlay (e.g. `[flows."A"].priority`).
        at: String,
        /// What is wrong.
        message: String,
    },
    /// `${env:NAME}` references whose variables are not set.
    #[error("{origin}: {}", format_unresolved(unresolved))]
    Unresolved {
        /// The overlay's path.
        origin: String,
        /// (variable, where it is used), in the overlay's order.
        unresolved: Vec<(String, String)>,
    },
    /// Required inputs of the archive that the overlay does not supply.
    #[error("the overlay does not supply {} required input(s): {}", missing.len(), format_inputs(missing))]
    MissingInputs {
        /// Every missing required input.
        missing: Vec<Input>,
    },
}

fn format_unresolved(list: &[(String, String)]) -> String {
    list.iter()
        .map(|(var, at)| format!("environment variable {var} is not set (used in {at})"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn format_inputs(list: &[Input]) -> String {
    list.iter()
        .map(describe_input)
        .collect::<Vec<_>>()
        .join(", ")
}

pub use crate::archive::{Input, InputKind};

/// How an input is named in messages: `credential "Shopify/Admin API token/token" of flow "A"`.
pub fn describe_input(input: &Input) -> String {
    let kind = match input.kind {
        InputKind::Variable => "variable",
        InputKind::System => "system",
        InputKind::Credential => "credential",
        InputKind::WebhookSecret => "webhook secret",
    };
    format!("{kind} {:?} of flow {:?}", input.name, input.flow)
}

/// A value of the overlay: raw (may hold `${env:...}`) or resolved.
#[derive(Clone, PartialEq, Eq)]
pub struct OverlayValue {
    /// The text.
    pub value: String,
    /// Printed as `••••` when true.
    pub secret: bool,
}

impl fmt::Debug for OverlayValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.secret {
            write!(f, "{MASK:?}")
        } else {
            write!(f, "{:?}", self.value)
        }
    }
}

impl fmt::Display for OverlayValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.secret {
            f.write_str(MASK)
        } else {
            f.write_str(&self.value)
        }
    }
}

/// One flow's section, `[flows."Name"]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowOverlay {
    /// `[flows."Name".variables]`.
    pub variables: BTreeMap<String, OverlayValue>,
    /// `priority`.
    pub priority: Option<i64>,
}

/// A parsed overlay. Values may still hold `${env:NAME}` references; [`Overlay::resolve`]
/// replaces them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overlay {
    /// Where it came from (for messages).
    pub origin: String,
    /// `[variables]`.
    pub variables: BTreeMap<String, OverlayValue>,
    /// `[flows."Name"]`.
    pub flows: BTreeMap<String, FlowOverlay>,
    /// `[systems]`: archive name → target name.
    pub systems: BTreeMap<String, OverlayValue>,
    /// `[secrets]`: `<system>/<auth implementation>/<key>` → value.
    pub secrets: BTreeMap<String, OverlayValue>,
}

/// An overlay whose `${env:...}` references are all resolved: ready to apply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolvedOverlay(Overlay);

impl ResolvedOverlay {
    /// The overlay, every value resolved.
    pub fn overlay(&self) -> &Overlay {
        &self.0
    }
}

fn quote_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

fn scalar(
    origin: &str,
    at: &str,
    v: &toml::Value,
    secret: bool,
) -> Result<OverlayValue, OverlayError> {
    let value = match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => {
            return Err(OverlayError::Shape {
                origin: origin.to_string(),
                at: at.to_string(),
                message: format!("expected a string, found a {}", other.type_str()),
            });
        }
    };
    Ok(OverlayValue { value, secret })
}

fn table<'a>(origin: &str, at: &str, v: &'a toml::Value) -> Result<&'a toml::Table, OverlayError> {
    v.as_table().ok_or_else(|| OverlayError::Shape {
        origin: origin.to_string(),
        at: at.to_string(),
        message: format!("expected a table, found a {}", v.type_str()),
    })
}

fn string_map(
    origin: &str,
    section: &str,
    v: &toml::Value,
    secret: bool,
) -> Result<BTreeMap<String, OverlayValue>, OverlayError> {
    let mut out = BTreeMap::new();
    for (k, v) in table(origin, section, v)? {
        let at = format!("{section}.{}", quote_key(k));
        out.insert(k.clone(), scalar(origin, &at, v, secret)?);
    }
    Ok(out)
}

impl Overlay {
    /// Parses an overlay's TOML; `origin` (its path) names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Overlay, OverlayError> {
        let root: toml::Table = toml::from_str(text).map_err(|e| OverlayError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim().to_string(),
        })?;
        let mut overlay = Overlay {
            origin: origin.to_string(),
            ..Overlay::default()
        };
        for (key, value) in &root {
            match key.as_str() {
                "variables" => overlay.variables = string_map(origin, "[variables]", value, false)?,
                "systems" => overlay.systems = string_map(origin, "[systems]", value, false)?,
                "secrets" => {
                    overlay.secrets = string_map(origin, "[secrets]", value, true)?;
                    for key in overlay.secrets.keys() {
                        if key.split('/').count() != 3 || key.split('/').any(str::is_empty) {
                            return Err(OverlayError::Shape {
                                origin: origin.to_string(),
                                at: format!("[secrets].{}", quote_key(key)),
                                message:
                                    "expected \"<system>/<auth implementation>/<credential key>\""
                                        .to_string(),
                            });
                        }
                    }
                }
                "flows" => {
                    for (name, section) in table(origin, "[flows]", value)? {
                        let at = format!("[flows.{}]", quote_key(name));
                        let mut flow = FlowOverlay::default();
                        for (k, v) in table(origin, &at, section)? {
                            match k.as_str() {
                                "variables" => {
                                    let sec = format!("[flows.{}.variables]", quote_key(name));
                                    flow.variables = string_map(origin, &sec, v, false)?;
                                }
                                "priority" => {
                                    let p = v.as_integer().filter(|p| (1..=5).contains(p));
                                    flow.priority = Some(p.ok_or_else(|| OverlayError::Shape {
                                        origin: origin.to_string(),
                                        at: format!("{at}.priority"),
                                        message: format!(
                                            "expected an integer from 1 to 5, found {}",
                                            v.as_integer().map_or_else(
                                                || format!("a {}", v.type_str()),
                                                |i| i.to_string()
                                            )
                                        ),
                                    })?);
                                }
                                other => {
                                    return Err(OverlayError::Shape {
                                        origin: origin.to_string(),
                                        at: format!("{at}.{}", quote_key(other)),
                                        message: "unknown key (expected `variables` or `priority`)"
                                            .to_string(),
                                    });
                                }
                            }
                        }
                        overlay.flows.insert(name.clone(), flow);
                    }
                }
                other => {
                    return Err(OverlayError::Shape {
                        origin: origin.to_string(),
                        at: quote_key(other),
                        message: "unknown table (expected variables, flows, systems or secrets)"
                            .to_string(),
                    });
                }
            }
        }
        Ok(overlay)
    }

    /// Reads and parses an overlay file.
    pub fn read(path: &std::path::Path) -> Result<Overlay, OverlayError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| OverlayError::Parse {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        Overlay::parse(&text, &origin)
    }

    /// Replaces every `${env:NAME}` with `lookup(NAME)`; any `None` is an error listing every
    /// unresolved variable and where it is used.
    pub fn resolve(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ResolvedOverlay, OverlayError> {
        let mut unresolved = Vec::new();
        let mut out = self.clone();
        let mut fix = |at: String, v: &mut OverlayValue| match substitute(&v.value, lookup) {
            Ok(s) => v.value = s,
            Err(names) => unresolved.extend(names.into_iter().map(|n| (n, at.clone()))),
        };
        for (k, v) in &mut out.variables {
            fix(format!("[variables].{}", quote_key(k)), v);
        }
        for (name, flow) in &mut out.flows {
            for (k, v) in &mut flow.variables {
                fix(
                    format!("[flows.{}.variables].{}", quote_key(name), quote_key(k)),
                    v,
                );
            }
        }
        for (k, v) in &mut out.systems {
            fix(format!("[systems].{}", quote_key(k)), v);
        }
        for (k, v) in &mut out.secrets {
            fix(format!("[secrets].{}", quote_key(k)), v);
        }
        if unresolved.is_empty() {
            Ok(ResolvedOverlay(out))
        } else {
            Err(OverlayError::Unresolved {
                origin: self.origin.clone(),
                unresolved,
            })
        }
    }
}

/// Substitutes `${env:NAME}` references; `Err` lists the names `lookup` did not know.
fn substitute(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${env:") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 6..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => missing.push(name.to_string()),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

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
        /// `<system>/<auth implementation>/<key>`.
        name: String,
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
                write!(f, "variable {key} = {value:?} ({versions} version(s))")
            }
            OverlayChange::VariableAdded {
                key,
                value,
                versions,
            } => {
                write!(
                    f,
                    "variable {key} = {value:?} added ({versions} version(s))"
                )
            }
            OverlayChange::Priority { priority } => write!(f, "priority = {priority}"),
            OverlayChange::SystemRenamed { from, to, places } => {
                write!(f, "system {from:?} -> {to:?} ({places} place(s))")
            }
            OverlayChange::CredentialSet { name } => write!(f, "credential {name} = {MASK}"),
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
/// for the rules).
pub fn apply(doc: &mut Document, flow_name: &str, overlay: &ResolvedOverlay) -> OverlayReport {
    let o = overlay.overlay();
    let mut report = OverlayReport {
        flow: flow_name.to_string(),
        changes: Vec::new(),
    };
    let per_flow = o.flows.get(flow_name);
    let root = doc.value_mut();

    // Variables: global first, then per-flow (which wins and may append).
    let mut wanted: BTreeMap<&str, (&OverlayValue, bool)> = BTreeMap::new();
    for (k, v) in &o.variables {
        wanted.insert(k, (v, false));
    }
    if let Some(f) = per_flow {
        for (k, v) in &f.variables {
            wanted.insert(k, (v, true));
        }
    }
    if !wanted.is_empty() {
        if let Some(versions) = root
            .pointer_mut("/flow/versions")
            .and_then(Value::as_array_mut)
        {
            let existing: BTreeSet<String> = versions
                .iter()
                .filter_map(|v| v.get("variables").and_then(Value::as_array))
                .flatten()
                .filter_map(|var| var.get("key").and_then(Value::as_str).map(str::to_string))
                .collect();
            for (key, (value, may_add)) in wanted {
                let mut set = 0;
                let mut added = 0;
                let mut secret = false;
                for version in versions.iter_mut() {
                    let Some(vars) = version.get_mut("variables").and_then(Value::as_array_mut)
                    else {
                        continue;
                    };
                    let mut found = false;
                    for var in vars.iter_mut() {
                        if var.get("key").and_then(Value::as_str) == Some(key) {
                            found = true;
                            secret |= var.get("is_secret").and_then(Value::as_bool) == Some(true);
                            if let Some(map) = var.as_object_mut() {
                                map.insert("value".into(), Value::String(value.value.clone()));
                            }
                            set += 1;
                        }
                    }
                    if !found && may_add && !existing.contains(key) {
                        let mut var = serde_json::Map::new();
                        var.insert("key".into(), Value::String(key.to_string()));
                        var.insert("value".into(), Value::String(value.value.clone()));
                        var.insert("is_secret".into(), Value::Bool(false));
                        vars.push(Value::Object(var));
                        added += 1;
                    }
                }
                let shown = if secret || value.secret {
                    MASK.to_string()
                } else {
                    value.value.clone()
                };
                if set > 0 {
                    report.changes.push(OverlayChange::VariableSet {
                        key: key.to_string(),
                        value: shown.clone(),
                        versions: set,
                    });
                }
                if added > 0 {
                    report.changes.push(OverlayChange::VariableAdded {
                        key: key.to_string(),
                        value: shown,
                        versions: added,
                    });
                }
            }
        }
    }

    if let Some(priority) = per_flow.and_then(|f| f.priority) {
        if let Some(flow) = root.get_mut("flow").and_then(Value::as_object_mut) {
            flow.insert("priority".into(), Value::from(priority));
            if let Some(versions) = flow.get_mut("versions").and_then(Value::as_array_mut) {
                for version in versions.iter_mut().filter_map(Value::as_object_mut) {
                    version.insert("flow_priority".into(), Value::from(priority));
                }
            }
            report.changes.push(OverlayChange::Priority { priority });
        }
    }

    // Secrets before renames: their keys name systems as the archive does.
    for (name, value) in &o.secrets {
        let mut parts = name.splitn(3, '/');
        let (Some(sys), Some(auth), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Some(systems) = root.get_mut("systems").and_then(Value::as_array_mut) else {
            continue;
        };
        let mut hit = false;
        for s in systems.iter_mut() {
            let Some(system) = s.get_mut("system") else {
                continue;
            };
            if system.get("name").and_then(Value::as_str) != Some(sys) {
                continue;
            }
            let Some(impls) = system
                .get_mut("authentication_implementations")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for imp in impls.iter_mut() {
                if imp.get("name").and_then(Value::as_str) != Some(auth) {
                    continue;
                }
                let Some(imp) = imp.as_object_mut() else {
                    continue;
                };
                let creds = imp
                    .entry("credentials")
                    .or_insert_with(|| Value::Object(serde_json::Map::new()));
                if let Some(creds) = creds.as_object_mut() {
                    creds.insert(key.to_string(), Value::String(value.value.clone()));
                    hit = true;
                }
            }
        }
        if hit {
            report
                .changes
                .push(OverlayChange::CredentialSet { name: name.clone() });
        }
    }

    for (from, to) in &o.systems {
        let to = &to.value;
        let mut places = 0;
        if let Some(systems) = root.get_mut("systems").and_then(Value::as_array_mut) {
            for s in systems.iter_mut() {
                if let Some(system) = s.get_mut("system").and_then(Value::as_object_mut) {
                    if system.get("name").and_then(Value::as_str) == Some(from) {
                        system.insert("name".into(), Value::String(to.clone()));
                        places += 1;
                    }
                }
            }
        }
        if let Some(versions) = root
            .pointer_mut("/flow/versions")
            .and_then(Value::as_array_mut)
        {
            for version in versions.iter_mut() {
                let Some(steps) = version.get_mut("steps").and_then(Value::as_array_mut) else {
                    continue;
                };
                for step in steps.iter_mut() {
                    if step.get("type").and_then(Value::as_str) != Some("connector") {
                        continue;
                    }
                    if let Some(config) = step.get_mut("config").and_then(Value::as_object_mut) {
                        if config.get("system").and_then(Value::as_str) == Some(from) {
                            config.insert("system".into(), Value::String(to.clone()));
                            places += 1;
                        }
                    }
                }
            }
        }
        if let Some(deps) = root.get_mut("dependencies").and_then(Value::as_array_mut) {
            for dep in deps.iter_mut().filter_map(Value::as_object_mut) {
                if dep.get("type").and_then(Value::as_str) == Some("system")
                    && dep.get("name").and_then(Value::as_str) == Some(from)
                {
                    dep.insert("name".into(), Value::String(to.clone()));
                    places += 1;
                }
            }
        }
        if places > 0 {
            report.changes.push(OverlayChange::SystemRenamed {
                from: from.clone(),
                to: to.clone(),
                places,
            });
        }
    }
    report
}

/// Whether the overlay supplies `input`.
fn supplies(o: &Overlay, input: &Input) -> bool {
    match input.kind {
        InputKind::Variable => {
            o.variables.contains_key(&input.name)
                || o.flows
                    .get(&input.flow)
                    .is_some_and(|f| f.variables.contains_key(&input.name))
        }
        InputKind::System => o.systems.contains_key(&input.name),
        InputKind::Credential => o.secrets.contains_key(&input.name),
        // Overlays have no table for webhook HMAC secrets yet, so none is supplied.
        InputKind::WebhookSecret => false,
    }
}

/// Checks an archive's `inputs` against the overlay (`None`: no overlay). Every required input
/// not supplied is an error (all listed at once); the optional ones not supplied are returned as
/// warnings.
pub fn check_inputs(
    inputs: &[Input],
    overlay: Option<&ResolvedOverlay>,
) -> Result<Vec<Input>, OverlayError> {
    let empty = Overlay::default();
    let o = overlay.map_or(&empty, ResolvedOverlay::overlay);
    let (missing, warnings): (Vec<Input>, Vec<Input>) = inputs
        .iter()
        .filter(|i| !supplies(o, i))
        .cloned()
        .partition(|i| i.required);
    if missing.is_empty() {
        Ok(warnings)
    } else {
        Err(OverlayError::MissingInputs { missing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER_SYNC: &str = include_str!("../../../fixtures/reference/export-v2-order-sync.json");
    const FLOW: &str = "Shopify > NetSuite Orders";

    const PRODUCTION: &str = r#"
[variables]
NETSUITE_SUBSIDIARY = "7"
UNUSED_ELSEWHERE = "x"
[flows."Shopify > NetSuite Orders".variables]
SHOPIFY_PAGE_SIZE = 100
NEW_ONE = "${env:REGION}-eu"
[flows."Shopify > NetSuite Orders"]
priority = 1
[systems]
"Shopify" = "Shopify (production)"
[secrets]
"Shopify/Admin API token/token" = "${env:SHOPIFY_PROD_TOKEN}"
"#;

    fn env(name: &str) -> Option<String> {
        match name {
            "SHOPIFY_PROD_TOKEN" => Some("shpat_live_123".into()),
            "REGION" => Some("west".into()),
            _ => None,
        }
    }

    fn resolved() -> ResolvedOverlay {
        Overlay::parse(PRODUCTION, "production.toml")
            .unwrap()
            .resolve(&env)
            .unwrap()
    }

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
        assert!(lines.contains(&"credential Shopify/Admin API token/token = ••••".to_string()));
        assert!(
            lines.contains(
                &"system \"Shopify\" -> \"Shopify (production)\" (3 place(s))".to_string()
            )
        );
        assert!(lines.contains(&"priority = 1".to_string()));
        assert!(lines.contains(&"variable NEW_ONE = \"west-eu\" added (1 version(s))".to_string()));
        let all = format!("{report:?} {lines:?} {:?}", resolved());
        assert!(!all.contains("shpat_live_123"), "{all}");
    }

    #[test]
    fn unresolved_env_names_variable_and_place() {
        let err = Overlay::parse(PRODUCTION, "production.toml")
            .unwrap()
            .resolve(&|_| None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "production.toml: environment variable REGION is not set (used in [flows.\"Shopify > NetSuite Orders\".variables].NEW_ONE); \
             environment variable SHOPIFY_PROD_TOKEN is not set (used in [secrets].\"Shopify/Admin API token/token\")"
        );
    }

    #[test]
    fn bad_shapes_are_named() {
        let err = Overlay::parse("[flows.\"A\"]\npriority = 9\n", "o.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "o.toml: [flows.A].priority: expected an integer from 1 to 5, found 9"
        );
        let err = Overlay::parse("[variable]\nA = \"1\"\n", "o.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "o.toml: variable: unknown table (expected variables, flows, systems or secrets)"
        );
        let err = Overlay::parse("[secrets]\n\"Shopify/token\" = \"x\"\n", "o.toml").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("o.toml: [secrets].\"Shopify/token\": expected"),
            "{err}"
        );
        let err = Overlay::parse("[variables]\nA = [1]\n", "o.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "o.toml: [variables].A: expected a string, found a array"
        );
        assert!(matches!(
            Overlay::parse("[variables", "o.toml"),
            Err(OverlayError::Parse { .. })
        ));
    }

    #[test]
    fn inputs_missing_required_are_listed_optional_warned() {
        let input = |kind, name: &str, required| Input::new(FLOW, kind, name, required);
        let inputs = vec![
            input(InputKind::Credential, "Shopify/Admin API token/token", true),
            input(
                InputKind::Credential,
                "NetSuite/Token based auth/token_secret",
                true,
            ),
            input(
                InputKind::Credential,
                "NetSuite/Token based auth/consumer_secret",
                true,
            ),
            input(InputKind::Variable, "NETSUITE_SUBSIDIARY", false),
            input(InputKind::Variable, "OTHER", false),
        ];
        let err = check_inputs(&inputs, Some(&resolved())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the overlay does not supply 2 required input(s): \
             credential \"NetSuite/Token based auth/token_secret\" of flow \"Shopify > NetSuite Orders\", \
             credential \"NetSuite/Token based auth/consumer_secret\" of flow \"Shopify > NetSuite Orders\""
        );
        let warnings = check_inputs(
            &inputs[..1]
                .iter()
                .chain(&inputs[3..])
                .cloned()
                .collect::<Vec<_>>(),
            Some(&resolved()),
        )
        .unwrap();
        assert_eq!(warnings, vec![inputs[4].clone()]);
        assert!(check_inputs(&inputs[..1], None).is_err());
    }
}
