//! What an overlay's keys can match in an archive ([`Targets`]), and the keys that match
//! nothing ([`unmatched`]), each with the nearest existing name.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::{CredentialRef, FlowOverlay, Overlay, OverlayError, quote_key, toml_string};
use crate::document::Document;

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

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::super::*;

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
