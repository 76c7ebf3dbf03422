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

use std::fmt;

use serde::Serialize;

/// Errors reading, resolving or checking an overlay; each names the overlay and the entry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OverlayError {
    /// The file is not a regular file, or past the overlay bound (16 MiB).
    #[error("{message}")]
    File {
        /// What the bounded read said, naming the file and the bound.
        message: String,
    },
    /// The file is not TOML (the message never quotes the file's text: it may hold secrets).
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
    pub(crate) fn legacy_name(&self) -> String {
        format!("{}/{}/{}", self.system, self.auth, self.key)
    }

    /// The credential an input of kind `credential` names. Version-1 manifests name it
    /// `system/auth/key`; a name with more than two `/` is split at the first and the last (a
    /// guess: only the names themselves can tell). This is the one place that parses it.
    pub(crate) fn from_input(input: &Input) -> Option<CredentialRef> {
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
    pub(crate) fn is_input(&self, input: &Input) -> bool {
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
    format!("{} of flow {:?}", describe_input_kind(input), input.flow)
}

/// What an input is, without its flow: `credential [secrets."S"."A"].key` (as an overlay names
/// it), `variable "NAME"`, `system "NAME"`, `webhook secret "NAME"`; for messages naming
/// several flows.
pub fn describe_input_kind(input: &Input) -> String {
    match (input.kind, CredentialRef::from_input(input)) {
        (InputKind::Credential, Some(c)) => format!("credential {c}"),
        (kind, _) => {
            let kind = match kind {
                InputKind::Variable => "variable",
                InputKind::System => "system",
                InputKind::Credential => "credential",
                InputKind::WebhookSecret => "webhook secret",
            };
            format!("{kind} {:?}", input.name)
        }
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

mod apply;
mod parse;
mod targets;

pub use apply::{OverlayChange, OverlayReport, apply};
pub use parse::{FlowOverlay, Overlay, OverlayValue, ResolvedOverlay, describe_toml_error};
pub use targets::{OnUnmatched, Targets, Unmatched, check_unmatched, nearest, unmatched};

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
pub(super) mod tests {
    use super::*;
    use crate::document::Document;

    pub(super) const ORDER_SYNC: &str =
        include_str!("../../fixtures/reference/export-v2-order-sync.json");
    pub(super) const FLOW: &str = "Shopify > NetSuite Orders";

    pub(super) const PRODUCTION: &str = r#"
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

    pub(super) fn env(name: &str) -> Option<String> {
        match name {
            "SHOPIFY_PROD_TOKEN" => Some("shpat_live_123".into()),
            "REGION" => Some("west".into()),
            _ => None,
        }
    }

    pub(super) fn resolved() -> ResolvedOverlay {
        Overlay::parse(PRODUCTION, "production.toml")
            .unwrap()
            .resolve(&env)
            .unwrap()
    }

    pub(super) fn input(kind: InputKind, name: &str, required: bool) -> Input {
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

    pub(super) fn order_sync_targets() -> Targets {
        let mut t = Targets::new();
        t.add(&Document::from_slice(ORDER_SYNC.as_bytes(), "order-sync.json").unwrap());
        t
    }
}
