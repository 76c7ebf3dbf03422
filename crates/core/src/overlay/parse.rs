//! Reading an overlay: the TOML shapes it accepts, and resolving its `${env:NAME}` references.

use std::collections::BTreeMap;
use std::fmt;

use super::{CredentialRef, Input, InputKind, OverlayError, quote_key, toml_lines, toml_string};
use crate::secrets::MASK;

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
            message: describe_toml_error(&e, text),
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
        let text = crate::fsutil::read_bounded_text(
            path,
            crate::fsutil::CONFIG_FILE_LIMIT,
            "an overlay file",
        )
        .map_err(|e| match e {
            crate::fsutil::ReadError::Io { cause, .. } => OverlayError::Parse {
                origin: origin.clone(),
                message: cause.to_string(),
            },
            other => OverlayError::File {
                message: other.to_string(),
            },
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

/// A TOML error as `line L, column C: <what the parser said>`, without the source line the
/// parser's own message quotes: overlays and configuration files hold secrets and API keys, and
/// an error must never print one.
pub fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim();
    match e.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::super::*;

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
}
