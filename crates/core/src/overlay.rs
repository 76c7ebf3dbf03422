//! Overlays: one environment's replacements, applied to export documents at push time and
//! never stored in an archive.
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
//! [secrets."Shopify"."Admin API token"]   # system, authentication implementation
//! token = "${env:SHOPIFY_PROD_TOKEN}"     # credential key = value
//! [flows."Shopify > NetSuite Orders".webhooks.0]   # 0-based position in the flow's flow.json
//! hmac_secret_key = "${env:ORDERS_WEBHOOK_SECRET}"
//! ```
//!
//! Rules (decisions a user relies on):
//! - Values are TOML strings; integers and booleans are accepted and written as their text
//!   (`SHOPIFY_PAGE_SIZE = 100` sets `"100"`). Unknown tables and keys are errors (typos).
//! - `${env:NAME}` anywhere in a value is replaced by that environment variable, looked up
//!   through an injected function ([`Overlay::resolve`]). Any unresolved reference is an error
//!   naming every missing variable and where it is used; nothing is sent before resolution.
//! - **Every key must match something in the archive** ([`check_unmatched`], run before any
//!   request): a `[variables]` key some flow has, a `[flows."X"]` naming a flow, a
//!   `[flows."X".variables]` key flow X has, a `[systems]` key naming a system, a
//!   `[secrets."S"."A"]` key naming an existing credential of authentication implementation A
//!   of system S. Every unmatched key is listed at once with the nearest existing name ("did
//!   you mean `WAREHOUSE`?"). [`OnUnmatched::Warn`] turns them into warnings: the CLI's
//!   `--allow-unmatched`, and the environment's own overlay, which serves many archives.
//! - `[variables]` sets the value of a variable **that the flow already has**, on every version
//!   that lists it (a global overlay names variables of many flows). `[flows."Name".variables]`
//!   does the same and, for a key no version has (an unmatched key, so only when unmatched keys
//!   are allowed), appends `{key, value, is_secret: false}` to every version that has a
//!   `variables` list: naming the flow is explicit intent.
//!   Per-flow values win over global ones.
//! - `priority` (1–5) sets `flow.priority` and every version's `flow_priority`.
//! - `[systems]` renames a system everywhere the document names it: `systems[].system.name`,
//!   every connector step's `config.system`, and `dependencies` entries of type `system`.
//! - `[secrets."System"."Auth implementation"]` tables name the system by its name **in the
//!   archive** (before any rename); each `key = value` sets that existing credential of that
//!   authentication implementation. A key the implementation does not have is never added.
//!   Names may contain `/`. The flat `"System/Auth/key" = …` form of the first release is
//!   refused with the nested rewrite in the message. A credential is addressed by a
//!   [`CredentialRef`] everywhere.
//! - `[flows."Name".webhooks.N] hmac_secret_key = "…"` supplies the HMAC secret key of webhook N
//!   (0-based position in the flow's `flow.json`) when a restore creates it: the platform never
//!   returns a secret, so a backup cannot hold it. The only key of that table is
//!   `hmac_secret_key`; it must name a webhook that had a secret ([`Targets::add_settings`]).
//! - Secret values (every `[secrets]` value and variables marked `is_secret`) print as `••••`
//!   in reports, `Display` and `Debug`.
//! - Required inputs the overlay does not supply ([`check_inputs`]) are refused with the exact
//!   TOML lines to add.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::document::Document;
use crate::secrets::MASK;

/// Errors reading, resolving or checking an overlay; each names the overlay and the entry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
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
    /// Overlay keys that match nothing in the archive.
    #[error("{origin}: {} nothing in the archive: {}", crate::archive::plural(unmatched.len(), "key matches", "keys match"), format_list(unmatched))]
    Unmatched {
        /// The overlay's path.
        origin: String,
        /// Every unmatched key, in the overlay's order.
        unmatched: Vec<Unmatched>,
    },
    /// Required inputs of the archive that no overlay supplies.
    #[error("{}", format_missing(overlay.as_deref(), missing))]
    MissingInputs {
        /// The overlay's path, or `None` when no overlay was given.
        overlay: Option<String>,
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

fn format_list<T: fmt::Display>(list: &[T]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn format_missing(overlay: Option<&str>, missing: &[Input]) -> String {
    let what = missing
        .iter()
        .map(describe_input)
        .collect::<Vec<_>>()
        .join(", ");
    let lines = toml_lines(missing);
    match overlay {
        Some(o) => format!(
            "the overlay {o} does not supply {}: {what}; add these lines to it:\n{lines}",
            crate::archive::plural(missing.len(), "required input", "required inputs")
        ),
        None => format!(
            "{} a value and no overlay was given: {what}; give an overlay with these lines:\n{lines}",
            crate::archive::plural(
                missing.len(),
                "required input needs",
                "required inputs need"
            )
        ),
    }
}

pub use crate::archive::{Input, InputKind};

/// A credential of a document: key `key` of authentication implementation `auth` of system
/// `system` (the system's name in the archive). Written in an overlay as
/// `[secrets."system"."auth"] key = "…"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CredentialRef {
    /// The system's name.
    pub system: String,
    /// The authentication implementation's name.
    pub auth: String,
    /// The credential's key.
    pub key: String,
}

impl CredentialRef {
    /// A reference from its three names.
    pub fn new(
        system: impl Into<String>,
        auth: impl Into<String>,
        key: impl Into<String>,
    ) -> CredentialRef {
        CredentialRef {
            system: system.into(),
            auth: auth.into(),
            key: key.into(),
        }
    }

    /// The name a version-1 manifest gives a credential input: `system/auth/key`.
    pub fn legacy_name(&self) -> String {
        format!("{}/{}/{}", self.system, self.auth, self.key)
    }

    /// The credential an input of kind `credential` names. Version-1 manifests name it
    /// `system/auth/key`; a name with more than two `/` is split at the first and the last (a
    /// guess: only the names themselves can tell). This is the one place that parses it.
    pub fn from_input(input: &Input) -> Option<CredentialRef> {
        if input.kind != InputKind::Credential {
            return None;
        }
        // Manifest version 2 names the parts; version 1 has only the joined name.
        if let (Some(system), Some(auth), Some(key)) = (&input.system, &input.auth, &input.key) {
            return Some(CredentialRef::new(system, auth, key));
        }
        let (system, rest) = input.name.split_once('/')?;
        let (auth, key) = rest.rsplit_once('/')?;
        Some(CredentialRef::new(system, auth, key))
    }

    /// Whether this is the credential `input` names.
    pub fn is_input(&self, input: &Input) -> bool {
        if input.kind != InputKind::Credential {
            return false;
        }
        match (&input.system, &input.auth, &input.key) {
            (Some(system), Some(auth), Some(key)) => {
                (system, auth, key) == (&self.system, &self.auth, &self.key)
            }
            // A version-1 name is ambiguous when the names hold `/`: compare it whole.
            _ => input.name == self.legacy_name(),
        }
    }

    /// The overlay table holding it: `[secrets."System"."Auth"]`.
    pub fn table(&self) -> String {
        format!(
            "[secrets.{}.{}]",
            toml_string(&self.system),
            toml_string(&self.auth)
        )
    }
}

impl fmt::Display for CredentialRef {
    /// `[secrets."System"."Auth"].key`: where it sits in an overlay.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.table(), quote_key(&self.key))
    }
}

/// How an input is named in messages: `credential [secrets."Shopify"."Admin API token"].token
/// of flow "A"`, `variable "PAGE" of flow "A"`.
pub fn describe_input(input: &Input) -> String {
    match (input.kind, CredentialRef::from_input(input)) {
        (InputKind::Credential, Some(c)) => format!("credential {c} of flow {:?}", input.flow),
        (kind, _) => {
            let kind = match kind {
                InputKind::Variable => "variable",
                InputKind::System => "system",
                InputKind::Credential => "credential",
                InputKind::WebhookSecret => "webhook secret",
            };
            format!("{kind} {:?} of flow {:?}", input.name, input.flow)
        }
    }
}

/// A TOML basic string holding `s`.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An environment variable name for a value: upper-case letters and digits, other runs `_`.
fn env_name(parts: &[&str]) -> String {
    let mut out = String::new();
    for c in parts.join("_").chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_uppercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// The overlay lines that would supply `inputs`, grouped under their tables in order of first
/// appearance; values are `${env:…}` references to set (or replace).
pub fn toml_lines(inputs: &[Input]) -> String {
    let mut tables: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |table: String, line: String| match tables.iter_mut().find(|(t, _)| *t == table) {
        Some((_, lines)) => {
            if !lines.contains(&line) {
                lines.push(line)
            }
        }
        None => tables.push((table, vec![line])),
    };
    for input in inputs {
        match (input.kind, CredentialRef::from_input(input)) {
            (InputKind::Credential, Some(c)) => {
                let env = env_name(&[&c.system, &c.auth, &c.key]);
                add(
                    c.table(),
                    format!("{} = \"${{env:{env}}}\"", quote_key(&c.key)),
                );
            }
            (InputKind::Credential, None) => add(
                "# not a system/auth/key credential".to_string(),
                format!("# {}", input.name),
            ),
            (InputKind::Variable, _) => add(
                format!("[flows.{}.variables]", toml_string(&input.flow)),
                format!(
                    "{} = \"${{env:{}}}\"",
                    quote_key(&input.name),
                    env_name(&[&input.name])
                ),
            ),
            (InputKind::System, _) => add(
                "[systems]".to_string(),
                format!("{} = {}", quote_key(&input.name), toml_string(&input.name)),
            ),
            (InputKind::WebhookSecret, _) => add(
                format!(
                    "[flows.{}.webhooks.{}]",
                    toml_string(&input.flow),
                    input.webhook.unwrap_or_default()
                ),
                format!(
                    "hmac_secret_key = \"${{env:{}}}\"",
                    env_name(&[
                        &input.flow,
                        "webhook",
                        &input.webhook.unwrap_or_default().to_string(),
                        "hmac"
                    ])
                ),
            ),
        }
    }
    tables
        .into_iter()
        .map(|(t, lines)| format!("{t}\n{}", lines.join("\n")))
        .collect::<Vec<_>>()
        .join("\n")
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
    /// `[flows."Name".webhooks.N] hmac_secret_key`: webhook position → its HMAC secret key
    /// (always secret: printed as `••••`).
    pub webhooks: BTreeMap<u32, OverlayValue>,
}

impl FlowOverlay {
    /// The HMAC secret key this overlay supplies for webhook `index` of the flow.
    pub fn webhook_secret(&self, index: u32) -> Option<&str> {
        self.webhooks.get(&index).map(|v| v.value.as_str())
    }
}

/// `[flows."Name".webhooks]`: `N` (a 0-based position) → `{hmac_secret_key = "…"}`.
fn parse_webhooks(
    origin: &str,
    flow: &str,
    value: &toml::Value,
) -> Result<BTreeMap<u32, OverlayValue>, OverlayError> {
    let mut out = BTreeMap::new();
    let at = format!("[flows.{}.webhooks]", quote_key(flow));
    for (n, section) in table(origin, &at, value)? {
        let index: u32 = n
            .parse()
            .ok()
            .filter(|_| n.chars().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| OverlayError::Shape {
                origin: origin.to_string(),
                at: format!("{at}.{}", quote_key(n)),
                message: "expected a webhook's 0-based position in the flow's flow.json \
                          (0, 1, …)"
                    .to_string(),
            })?;
        let at = format!("[flows.{}.webhooks.{index}]", quote_key(flow));
        for (k, v) in table(origin, &at, section)? {
            if k != "hmac_secret_key" {
                return Err(OverlayError::Shape {
                    origin: origin.to_string(),
                    at: format!("{at}.{}", quote_key(k)),
                    message: "unknown key (expected `hmac_secret_key`)".to_string(),
                });
            }
            let value = scalar(origin, &format!("{at}.hmac_secret_key"), v, true)?;
            out.insert(index, value);
        }
    }
    Ok(out)
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
    /// `[secrets."System"."Auth"]` tables: credential → value.
    pub secrets: BTreeMap<CredentialRef, OverlayValue>,
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
        toml_string(key)
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

/// `[secrets."System"."Auth"] key = "…"` tables; the flat `"System/Auth/key" = "…"` form is
/// refused with its nested rewrite.
fn parse_secrets(
    origin: &str,
    value: &toml::Value,
) -> Result<BTreeMap<CredentialRef, OverlayValue>, OverlayError> {
    let mut out = BTreeMap::new();
    let root = table(origin, "[secrets]", value)?;
    // Every flat key first, so the hint rewrites them all at once.
    let flat: Vec<&String> = root
        .iter()
        .filter(|(_, v)| !v.is_table())
        .map(|(k, _)| k)
        .collect();
    if !flat.is_empty() {
        let inputs: Vec<Input> = flat
            .iter()
            .map(|k| Input::new("", InputKind::Credential, k.as_str(), true))
            .collect();
        let rewrite = toml_lines(&inputs).replace("\n", "\n    ");
        return Err(OverlayError::Shape {
            origin: origin.to_string(),
            at: format!("[secrets].{}", quote_key(flat[0])),
            message: format!(
                "the flat \"<system>/<auth implementation>/<key>\" form is no longer read \
                 (names may contain `/`); write credentials as nested tables, e.g.:\n    {rewrite}"
            ),
        });
    }
    for (system, auths) in root {
        let at = format!("[secrets.{}]", toml_string(system));
        for (auth, keys) in table(origin, &at, auths)? {
            let at = format!("[secrets.{}.{}]", toml_string(system), toml_string(auth));
            for (key, v) in table(origin, &at, keys)? {
                let at = format!("{at}.{}", quote_key(key));
                let value = scalar(origin, &at, v, true)?;
                out.insert(CredentialRef::new(system, auth, key), value);
            }
        }
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
                "secrets" => overlay.secrets = parse_secrets(origin, value)?,
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
                                "webhooks" => flow.webhooks = parse_webhooks(origin, name, v)?,
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
                                        message:
                                            "unknown key (expected `variables`, `priority` or \
                                                  `webhooks`)"
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
            for (n, v) in &mut flow.webhooks {
                fix(
                    format!("[flows.{}.webhooks.{n}].hmac_secret_key", quote_key(name)),
                    v,
                );
            }
        }
        for (k, v) in &mut out.systems {
            fix(format!("[systems].{}", quote_key(k)), v);
        }
        for (c, v) in &mut out.secrets {
            fix(c.to_string(), v);
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

/// The names an overlay's keys can match: flows, their variables, systems and credentials,
/// collected from an archive's documents (before any overlay is applied).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Targets {
    /// Flow name → the variable keys any of its versions has.
    flows: BTreeMap<String, BTreeSet<String>>,
    /// System names (`systems[].system.name`, connector `config.system`, system dependencies).
    systems: BTreeSet<String>,
    /// System → authentication implementation → credential keys.
    credentials: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// Flow name → positions of its webhooks that had an HMAC secret key.
    webhook_secrets: BTreeMap<String, BTreeSet<u32>>,
}

impl Targets {
    /// No names yet.
    pub fn new() -> Targets {
        Targets::default()
    }

    /// Adds the webhooks of flow `flow_name` whose HMAC secret key an overlay may supply (from
    /// the flow's `flow.json`).
    pub fn add_settings(&mut self, flow_name: &str, settings: &crate::archive::FlowSettings) {
        self.webhook_secrets
            .entry(flow_name.to_string())
            .or_default()
            .extend(settings.webhook_secrets());
    }

    /// Adds the names of one flow's document (its flow name, variables, systems, credentials).
    pub fn add(&mut self, doc: &Document) {
        let name = doc.flow_name().unwrap_or_default().to_string();
        let vars = self.flows.entry(name).or_default();
        if let Some(flow) = doc.flow() {
            for version in flow.versions() {
                vars.extend(
                    version
                        .variables()
                        .filter_map(|v| v.key())
                        .map(str::to_string),
                );
                for step in version.steps() {
                    if step.kind() == Some("connector")
                        && let Some(system) = step.config_str("system")
                    {
                        self.systems.insert(system.to_string());
                    }
                }
            }
        }
        for (kind, name) in doc.dependencies() {
            if let (Some("system"), Some(name)) = (kind, name) {
                self.systems.insert(name.to_string());
            }
        }
        for system in doc.systems() {
            let Some(name) = system.name() else {
                continue;
            };
            self.systems.insert(name.to_string());
            let auths = self.credentials.entry(name.to_string()).or_default();
            for imp in system.auth_implementations() {
                let Some(auth) = imp.get("name").and_then(Value::as_str) else {
                    continue;
                };
                let keys = auths.entry(auth.to_string()).or_default();
                if let Some(creds) = imp.get("credentials").and_then(Value::as_object) {
                    keys.extend(creds.keys().cloned());
                }
            }
        }
    }
}

/// One overlay key that matches nothing in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmatched {
    /// Where it is in the overlay, e.g. `[variables].WAREHOUS`.
    pub key: String,
    /// What it should have named, e.g. `no flow has variable "WAREHOUS"`.
    pub problem: String,
    /// The nearest existing name, if the archive has any of that kind.
    pub nearest: Option<String>,
}

impl fmt::Display for Unmatched {
    /// `` [variables].WAREHOUS: no flow has variable "WAREHOUS" (did you mean `WAREHOUSE`?) ``
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)?;
        match &self.nearest {
            Some(n) => write!(f, " (did you mean `{n}`?)"),
            None => Ok(()),
        }
    }
}

/// What unmatched overlay keys do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnUnmatched {
    /// Refuse (an overlay given for this push: a typo would silently do nothing).
    #[default]
    Refuse,
    /// Warn and go on (`--allow-unmatched`, or an environment's own overlay).
    Warn,
}

/// The existing name nearest to `name` (edit distance, ignoring case; ties go to the first in
/// order), if there is any candidate.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let lower = name.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(&lower, &c.to_lowercase()), c))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

/// Every key of `overlay` that matches nothing in `targets`, in the overlay's order (see the
/// module docs): global variables, flows (their variables and webhooks), systems, credentials.
pub fn unmatched(overlay: &Overlay, targets: &Targets) -> Vec<Unmatched> {
    let mut out = unmatched_variables(overlay, targets);
    for (name, flow) in &overlay.flows {
        out.extend(unmatched_flow(name, flow, targets));
    }
    out.extend(unmatched_systems(overlay, targets));
    out.extend(
        overlay
            .secrets
            .keys()
            .filter_map(|c| unmatched_credential(c, targets)),
    );
    out
}

/// `[variables]` keys no flow of the archive has.
fn unmatched_variables(overlay: &Overlay, targets: &Targets) -> Vec<Unmatched> {
    let all_vars: BTreeSet<&str> = targets
        .flows
        .values()
        .flatten()
        .map(String::as_str)
        .collect();
    overlay
        .variables
        .keys()
        .filter(|key| !all_vars.contains(key.as_str()))
        .map(|key| Unmatched {
            key: format!("[variables].{}", quote_key(key)),
            problem: format!("no flow of the archive has variable {key:?}"),
            nearest: nearest(key, all_vars.iter().copied()),
        })
        .collect()
}

/// A `[flows."name"]` table naming no flow; else its variable keys the flow does not have and
/// its webhooks that had no HMAC secret key.
fn unmatched_flow(name: &str, flow: &FlowOverlay, targets: &Targets) -> Vec<Unmatched> {
    let Some(vars) = targets.flows.get(name) else {
        return vec![Unmatched {
            key: format!("[flows.{}]", toml_string(name)),
            problem: format!("the archive has no flow {name:?}"),
            nearest: nearest(name, targets.flows.keys().map(String::as_str)),
        }];
    };
    let mut out = Vec::new();
    for key in flow.variables.keys() {
        if !vars.contains(key) {
            out.push(Unmatched {
                key: format!("[flows.{}.variables].{}", toml_string(name), quote_key(key)),
                problem: format!("flow {name:?} has no variable {key:?}"),
                nearest: nearest(key, vars.iter().map(String::as_str)),
            });
        }
    }
    let secrets = targets.webhook_secrets.get(name);
    for n in flow.webhooks.keys() {
        if !secrets.is_some_and(|s| s.contains(n)) {
            let known: Vec<String> = secrets.into_iter().flatten().map(u32::to_string).collect();
            out.push(Unmatched {
                key: format!("[flows.{}.webhooks.{n}]", toml_string(name)),
                problem: format!(
                    "flow {name:?} has no webhook {n} with an HMAC secret key in the archive"
                ),
                nearest: nearest(&n.to_string(), known.iter().map(String::as_str)),
            });
        }
    }
    out
}

/// `[systems]` keys naming no system of the archive.
fn unmatched_systems(overlay: &Overlay, targets: &Targets) -> Vec<Unmatched> {
    overlay
        .systems
        .keys()
        .filter(|name| !targets.systems.contains(*name))
        .map(|name| Unmatched {
            key: format!("[systems].{}", quote_key(name)),
            problem: format!("the archive has no system {name:?}"),
            nearest: nearest(name, targets.systems.iter().map(String::as_str)),
        })
        .collect()
}

/// Credential `c`, when its system, authentication implementation or key does not exist (the
/// first of them that does not, with the nearest name of that kind).
fn unmatched_credential(c: &CredentialRef, targets: &Targets) -> Option<Unmatched> {
    let (problem, nearest) = match targets.credentials.get(&c.system) {
        None => (
            format!(
                "the archive has no system {:?} with authentication implementations",
                c.system
            ),
            nearest(&c.system, targets.credentials.keys().map(String::as_str)),
        ),
        Some(auths) => match auths.get(&c.auth) {
            None => (
                format!(
                    "system {:?} has no authentication implementation {:?}",
                    c.system, c.auth
                ),
                nearest(&c.auth, auths.keys().map(String::as_str)),
            ),
            Some(keys) if !keys.contains(&c.key) => (
                format!(
                    "authentication implementation {:?} of system {:?} has no credential {:?}",
                    c.auth, c.system, c.key
                ),
                nearest(&c.key, keys.iter().map(String::as_str)),
            ),
            Some(_) => return None,
        },
    };
    Some(Unmatched {
        key: c.to_string(),
        problem,
        nearest,
    })
}

/// Checks that every key of `overlay` matches something in `targets`. With
/// [`OnUnmatched::Refuse`], any unmatched key is an error listing all of them; with
/// [`OnUnmatched::Warn`], they are returned as warnings.
pub fn check_unmatched(
    overlay: &Overlay,
    targets: &Targets,
    on_unmatched: OnUnmatched,
) -> Result<Vec<Unmatched>, OverlayError> {
    let found = unmatched(overlay, targets);
    if found.is_empty() || on_unmatched == OnUnmatched::Warn {
        Ok(found)
    } else {
        Err(OverlayError::Unmatched {
            origin: overlay.origin.clone(),
            unmatched: found,
        })
    }
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
        InputKind::Credential => o.secrets.keys().any(|c| c.is_input(input)),
        InputKind::WebhookSecret => input.webhook.is_some_and(|n| {
            o.flows
                .get(&input.flow)
                .is_some_and(|f| f.webhooks.contains_key(&n))
        }),
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
    let origin = overlay.map(|o| o.overlay().origin.clone());
    let (missing, warnings): (Vec<Input>, Vec<Input>) = inputs
        .iter()
        .filter(|i| !supplies(o, i))
        .cloned()
        .partition(|i| i.required);
    if missing.is_empty() {
        Ok(warnings)
    } else {
        Err(OverlayError::MissingInputs {
            overlay: origin,
            missing,
        })
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
[secrets."Shopify"."Admin API token"]
token = "${env:SHOPIFY_PROD_TOKEN}"
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
    fn unresolved_env_names_variable_and_place() {
        let err = Overlay::parse(PRODUCTION, "production.toml")
            .unwrap()
            .resolve(&|_| None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "production.toml: environment variable REGION is not set (used in [flows.\"Shopify > NetSuite Orders\".variables].NEW_ONE); \
             environment variable SHOPIFY_PROD_TOKEN is not set (used in [secrets.\"Shopify\".\"Admin API token\"].token)"
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
        let err = Overlay::parse("[secrets.\"Shopify\"]\ntoken = \"x\"\n", "o.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "o.toml: [secrets.\"Shopify\".\"token\"]: expected a table, found a string"
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

    fn input(kind: InputKind, name: &str, required: bool) -> Input {
        Input::new(FLOW, kind, name, required)
    }

    #[test]
    fn inputs_missing_required_are_listed_with_the_lines_to_add() {
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
            "the overlay production.toml does not supply 2 required inputs: \
             credential [secrets.\"NetSuite\".\"Token based auth\"].token_secret of flow \"Shopify > NetSuite Orders\", \
             credential [secrets.\"NetSuite\".\"Token based auth\"].consumer_secret of flow \"Shopify > NetSuite Orders\"; \
             add these lines to it:\n\
             [secrets.\"NetSuite\".\"Token based auth\"]\n\
             token_secret = \"${env:NETSUITE_TOKEN_BASED_AUTH_TOKEN_SECRET}\"\n\
             consumer_secret = \"${env:NETSUITE_TOKEN_BASED_AUTH_CONSUMER_SECRET}\""
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

        // Without an overlay the message does not speak of "the overlay".
        let err = check_inputs(&inputs[..1], None).unwrap_err().to_string();
        assert!(
            err.starts_with("1 required input needs a value and no overlay was given: credential"),
            "{err}"
        );
        assert!(!err.contains("the overlay"), "{err}");
    }

    #[test]
    fn the_lines_to_add_are_an_overlay_that_supplies_the_inputs() {
        let inputs = vec![
            input(InputKind::Credential, "ERP/OAuth \"2\"/client_secret", true),
            input(InputKind::Variable, "API KEY", true),
            input(InputKind::System, "Ware house", true),
        ];
        let err = check_inputs(&inputs, None).unwrap_err().to_string();
        let lines = err.split_once("lines:\n").unwrap().1;
        let overlay = Overlay::parse(lines, "added.toml").unwrap();
        let resolved = overlay.resolve(&|_| Some("v".into())).unwrap();
        assert_eq!(check_inputs(&inputs, Some(&resolved)), Ok(vec![]));
    }

    #[test]
    fn the_flat_secrets_form_is_refused_with_the_nested_rewrite() {
        let text = "[secrets]\n\"Shopify/Admin API token/token\" = \"${env:T}\"\n";
        let err = Overlay::parse(text, "o.toml").unwrap_err().to_string();
        assert!(
            err.starts_with("o.toml: [secrets].\"Shopify/Admin API token/token\": the flat"),
            "{err}"
        );
        assert!(
            err.contains("[secrets.\"Shopify\".\"Admin API token\"]\n    token = \"${env:SHOPIFY_ADMIN_API_TOKEN_TOKEN}\""),
            "{err}"
        );
    }

    #[test]
    fn credential_names_may_contain_slashes() {
        let text = "[secrets.\"ERP/EU\".\"OAuth 2.0 / client\"]\nclient_secret = \"s3cret\"\n";
        let o = Overlay::parse(text, "o.toml").unwrap();
        let c = CredentialRef::new("ERP/EU", "OAuth 2.0 / client", "client_secret");
        assert_eq!(o.secrets.keys().collect::<Vec<_>>(), [&c]);
        assert!(c.is_input(&input(
            InputKind::Credential,
            "ERP/EU/OAuth 2.0 / client/client_secret",
            true
        )));
        let mut doc = Document::from_value(
            serde_json::json!({"flow": {"name": FLOW, "versions": []}, "systems": [{"system": {
                "name": "ERP/EU", "authentication_implementations": [{"name": "OAuth 2.0 / client",
                "credentials": {"client_id": "abc", "client_secret": ""}}]}}]}),
            "d.json",
        )
        .unwrap();
        let report = apply(&mut doc, FLOW, &o.resolve(&|_| None).unwrap());
        assert_eq!(
            doc.value()["systems"][0]["system"]["authentication_implementations"][0]["credentials"]
                ["client_secret"],
            "s3cret"
        );
        assert_eq!(
            report.changes,
            [OverlayChange::CredentialSet { credential: c }]
        );
    }

    #[test]
    fn webhook_secrets_are_parsed_resolved_supplied_and_masked() {
        let text = format!(
            "[flows.{FLOW:?}.webhooks.1]\nhmac_secret_key = \"${{env:HOOK}}-x\"\n\
             [flows.{FLOW:?}]\npriority = 2\n"
        );
        let overlay = Overlay::parse(&text, "o.toml").unwrap();
        let flow = &overlay.flows[FLOW];
        assert_eq!(flow.priority, Some(2));
        assert_eq!(flow.webhook_secret(1), Some("${env:HOOK}-x"));
        let err = overlay.resolve(&|_| None).unwrap_err().to_string();
        assert!(
            err.contains("HOOK") && err.contains("hmac_secret_key"),
            "{err}"
        );
        let resolved = overlay
            .resolve(&|n| (n == "HOOK").then(|| "s3cr3t".to_string()))
            .unwrap();
        let flow = &resolved.overlay().flows[FLOW];
        assert_eq!(flow.webhook_secret(1), Some("s3cr3t-x"));
        assert!(!format!("{resolved:?}").contains("s3cr3t"));
        let one = Input::webhook_secret(FLOW, 1);
        let zero = Input::webhook_secret(FLOW, 0);
        let other = Input::webhook_secret("Other", 1);
        assert_eq!(
            check_inputs(std::slice::from_ref(&one), Some(&resolved)),
            Ok(vec![])
        );
        let err = check_inputs(&[one, zero.clone(), other.clone()], Some(&resolved)).unwrap_err();
        assert_eq!(
            err,
            OverlayError::MissingInputs {
                overlay: Some("o.toml".into()),
                missing: vec![zero, other],
            }
        );
    }

    #[test]
    fn the_lines_for_a_missing_webhook_secret_supply_it() {
        let inputs = vec![Input::webhook_secret(FLOW, 2)];
        let err = check_inputs(&inputs, None).unwrap_err().to_string();
        assert!(err.contains("webhooks/2/hmac_secret_key"), "{err}");
        let lines = err.split_once("lines:\n").unwrap().1;
        assert!(lines.contains(".webhooks.2]"), "{lines}");
        let overlay = Overlay::parse(lines, "added.toml").unwrap();
        let resolved = overlay.resolve(&|_| Some("v".into())).unwrap();
        assert_eq!(check_inputs(&inputs, Some(&resolved)), Ok(vec![]));
    }

    #[test]
    fn bad_webhook_tables_are_named() {
        let err = Overlay::parse(
            "[flows.A.webhooks.first]\nhmac_secret_key = \"x\"\n",
            "o.toml",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "o.toml: [flows.A.webhooks].first: expected a webhook's 0-based position in the \
             flow's flow.json (0, 1, …)"
        );
        let err = Overlay::parse("[flows.A.webhooks.0]\nhmac_key = \"x\"\n", "o.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "o.toml: [flows.A.webhooks.0].hmac_key: unknown key (expected `hmac_secret_key`)"
        );
        let err = Overlay::parse("[flows.A]\nwebhook = 1\n", "o.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "o.toml: [flows.A].webhook: unknown key (expected `variables`, `priority` or \
             `webhooks`)"
        );
    }

    #[test]
    fn a_webhook_secret_must_name_a_webhook_that_had_one() {
        let mut targets = order_sync_targets();
        let mut settings = crate::archive::FlowSettings::new(true, Some(1));
        settings
            .webhooks
            .push(crate::archive::Webhook::new("active", "json"));
        settings.webhooks.push(crate::archive::Webhook {
            has_hmac_secret_key: true,
            ..crate::archive::Webhook::new("active", "json")
        });
        targets.add_settings(FLOW, &settings);
        let text = format!(
            "[flows.{FLOW:?}.webhooks.1]\nhmac_secret_key = \"a\"\n\
             [flows.{FLOW:?}.webhooks.0]\nhmac_secret_key = \"b\"\n"
        );
        let overlay = Overlay::parse(&text, "o.toml").unwrap();
        let found = unmatched(&overlay, &targets);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].to_string(),
            format!(
                "[flows.{FLOW:?}.webhooks.0]: flow {FLOW:?} has no webhook 0 with an HMAC \
                 secret key in the archive (did you mean `1`?)"
            )
        );
    }

    fn order_sync_targets() -> Targets {
        let mut t = Targets::new();
        t.add(&Document::from_slice(ORDER_SYNC.as_bytes(), "order-sync.json").unwrap());
        t
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

    #[test]
    fn every_unmatched_key_is_listed_with_the_nearest_name() {
        let text = r#"
[variables]
NETSUITE_SUBSIDIARY = "7"
NETSUITE_SUBSIDARY = "7"
[flows."Shopify > NetSuite Order"]
priority = 1
[flows."Shopify > NetSuite Orders".variables]
SHOPIFY_PAGESIZE = "1"
[systems]
"Shopfy" = "Shopify (production)"
[secrets."NetSuite"."Token auth"]
token_secret = "x"
[secrets."Netsuite"."Token based auth"]
token_secret = "x"
"#;
        let o = Overlay::parse(text, "prod.toml").unwrap();
        let found = unmatched(&o, &order_sync_targets());
        let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "[variables].NETSUITE_SUBSIDARY: no flow of the archive has variable \"NETSUITE_SUBSIDARY\" (did you mean `NETSUITE_SUBSIDIARY`?)",
                "[flows.\"Shopify > NetSuite Order\"]: the archive has no flow \"Shopify > NetSuite Order\" (did you mean `Shopify > NetSuite Orders`?)",
                "[flows.\"Shopify > NetSuite Orders\".variables].SHOPIFY_PAGESIZE: flow \"Shopify > NetSuite Orders\" has no variable \"SHOPIFY_PAGESIZE\" (did you mean `SHOPIFY_PAGE_SIZE`?)",
                "[systems].Shopfy: the archive has no system \"Shopfy\" (did you mean `Shopify`?)",
                "[secrets.\"NetSuite\".\"Token auth\"].token_secret: system \"NetSuite\" has no authentication implementation \"Token auth\" (did you mean `Token based auth`?)",
                "[secrets.\"Netsuite\".\"Token based auth\"].token_secret: the archive has no system \"Netsuite\" with authentication implementations (did you mean `NetSuite`?)",
            ]
        );
        // As warnings: the same list, no error.
        assert_eq!(
            check_unmatched(&o, &order_sync_targets(), OnUnmatched::Warn),
            Ok(found)
        );
        // The production overlay of these tests matches everything but its one global extra.
        let prod = unmatched(
            &Overlay::parse(PRODUCTION, "p.toml").unwrap(),
            &order_sync_targets(),
        );
        let keys: Vec<&str> = prod.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "[variables].UNUSED_ELSEWHERE",
                "[flows.\"Shopify > NetSuite Orders\".variables].NEW_ONE"
            ]
        );
    }

    #[test]
    fn nearest_ignores_case_and_needs_candidates() {
        assert_eq!(
            nearest("warehouse", ["WAREHOUSE", "WARE"]),
            Some("WAREHOUSE".into())
        );
        assert_eq!(nearest("x", std::iter::empty()), None);
    }
}
