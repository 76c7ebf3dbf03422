//! Secret detection for validation and for stripping secrets when packing: which values of a
//! document are credentials.
//!
//! A secret is a non-empty string under a credential-like key anywhere in the document, or the
//! `value` of a flow variable with `is_secret: true`. `validate` reports them as errors, `inspect`
//! counts them, `pack` strips them into the manifest's `inputs`. Secret values never appear in
//! messages: [`MASK`] stands in for them.

use serde_json::Value;

use crate::document::escape_pointer_token;

/// What a secret value prints as, everywhere.
pub const MASK: &str = "••••";

/// The default credential-like keys (compared case-insensitively).
pub(crate) const DEFAULT_SECRET_KEYS: &[&str] = &[
    "password",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_token",
    "refresh_token",
    "client_secret",
    "consumer_secret",
    "token_secret",
    "hmac_secret_key",
    "private_key",
];

/// Which keys count as credential-like.
#[derive(Debug, Clone)]
pub struct SecretRules {
    keys: Vec<String>,
}

impl Default for SecretRules {
    fn default() -> Self {
        SecretRules::new(DEFAULT_SECRET_KEYS.iter().copied())
    }
}

impl SecretRules {
    /// Rules with exactly these keys (case-insensitive).
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> SecretRules {
        SecretRules {
            keys: keys.into_iter().map(str::to_ascii_lowercase).collect(),
        }
    }

    /// Whether `key` is credential-like.
    pub(crate) fn is_secret_key(&self, key: &str) -> bool {
        self.keys
            .iter()
            .any(|k| k.len() == key.len() && k.eq_ignore_ascii_case(key))
    }
}

/// Why a value is a secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SecretKind {
    /// A string under a credential-like key (`key` is that key).
    Credential {
        /// The key, as written.
        key: String,
    },
    /// The value of a variable marked `is_secret: true`.
    Variable {
        /// The variable's `key`.
        name: String,
    },
}

/// One secret (or secret-shaped empty slot) found in a document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretSlot {
    /// RFC 6901 pointer to the value.
    pub pointer: String,
    /// Why it is a secret.
    #[serde(flatten)]
    pub kind: SecretKind,
    /// Whether the value is a non-empty string (an actual credential); empty slots are where an
    /// installer must supply a value.
    pub filled: bool,
}

/// Every secret slot of a JSON document, filled or empty, in document order.
///
/// ```
/// use flowpack_core::secrets::{find_secrets, SecretRules};
/// let doc = serde_json::json!({"systems":[{"system":{"credentials":{"token":"abc","header":"X"}}}]});
/// let found = find_secrets(&doc, &SecretRules::default());
/// assert_eq!(found.len(), 1);
/// assert_eq!(found[0].pointer, "/systems/0/system/credentials/token");
/// assert!(found[0].filled);
/// ```
pub fn find_secrets(doc: &Value, rules: &SecretRules) -> Vec<SecretSlot> {
    let mut out = Vec::new();
    walk(doc, &mut Vec::new(), rules, &mut out);
    out
}

/// One step of the path from the root to the value being walked.
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// The RFC 6901 pointer of `path` followed by `last`. Built only when a slot is found: the walk
/// visits every key of documents of hundreds of kilobytes, and escaping each on the way was the
/// bulk of the scan's time.
fn pointer_of(path: &[Segment<'_>], last: &str) -> String {
    let mut p = String::new();
    for seg in path.iter().chain(std::iter::once(&Segment::Key(last))) {
        p.push('/');
        match seg {
            Segment::Key(k) => p.push_str(&escape_pointer_token(k)),
            Segment::Index(i) => p.push_str(&i.to_string()),
        }
    }
    p
}

fn walk<'a>(
    v: &'a Value,
    path: &mut Vec<Segment<'a>>,
    rules: &SecretRules,
    out: &mut Vec<SecretSlot>,
) {
    match v {
        Value::Object(map) => {
            // A linear look at the keys: most objects have a few, and hashing a key per object
            // was a visible share of the scan.
            let secret_var = if map.len() <= 32 {
                map.iter()
                    .any(|(k, v)| k == "is_secret" && v.as_bool() == Some(true))
            } else {
                map.get("is_secret").and_then(Value::as_bool) == Some(true)
            };
            for (k, child) in map {
                if secret_var && k == "value" {
                    let name = map
                        .get("key")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    out.push(SecretSlot {
                        pointer: pointer_of(path, k),
                        kind: SecretKind::Variable { name },
                        filled: is_filled(child),
                    });
                } else if matches!(child, Value::String(_) | Value::Null) {
                    if rules.is_secret_key(k) {
                        out.push(SecretSlot {
                            pointer: pointer_of(path, k),
                            kind: SecretKind::Credential { key: k.clone() },
                            filled: is_filled(child),
                        });
                    }
                } else if matches!(child, Value::Object(_) | Value::Array(_)) {
                    path.push(Segment::Key(k));
                    walk(child, path, rules, out);
                    path.pop();
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                if matches!(child, Value::Object(_) | Value::Array(_)) {
                    path.push(Segment::Index(i));
                    walk(child, path, rules, out);
                    path.pop();
                }
            }
        }
        _ => {}
    }
}

fn is_filled(v: &Value) -> bool {
    match v {
        Value::String(s) => !s.is_empty(),
        Value::Null => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_credentials_case_insensitively_and_ignores_non_secrets() {
        let doc = json!({
            "systems": [{"system": {"authentication_implementations": [{"credentials": {
                "header": "X-Token", "Token": "t0k", "consumer_key": "ck", "Client_Secret": "", "password": null
            }}]}}]
        });
        let found = find_secrets(&doc, &SecretRules::default());
        let summary: Vec<(&str, bool)> = found
            .iter()
            .map(|s| (s.pointer.as_str(), s.filled))
            .collect();
        let base = "/systems/0/system/authentication_implementations/0/credentials";
        assert_eq!(
            summary,
            vec![
                (format!("{base}/Token").as_str(), true),
                (format!("{base}/Client_Secret").as_str(), false),
                (format!("{base}/password").as_str(), false),
            ]
        );
    }

    #[test]
    fn secret_variables_count_and_plain_ones_do_not() {
        let doc = json!({"flow": {"versions": [{"variables": [
            {"key": "A", "value": "1", "is_secret": false},
            {"key": "B", "value": "s3cr3t", "is_secret": true}
        ]}]}});
        let found = find_secrets(&doc, &SecretRules::default());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pointer, "/flow/versions/0/variables/1/value");
        assert_eq!(found[0].kind, SecretKind::Variable { name: "B".into() });
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        let doc = json!({"a/b": {"c~d": {"token": "x"}}});
        let found = find_secrets(&doc, &SecretRules::default());
        assert_eq!(found[0].pointer, "/a~1b/c~0d/token");
    }

    #[test]
    fn a_custom_list_replaces_the_default() {
        let doc = json!({"token": "x", "pin": "1234"});
        let found = find_secrets(&doc, &SecretRules::new(["PIN"]));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pointer, "/pin");
    }
}
