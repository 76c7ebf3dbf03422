//! A flow's settings and state, the archive entry `flows/<slug>/flow.json` (manifest version 2).
//!
//! The export document carries a flow's versions, systems and scripts; the settings the platform
//! keeps beside it — whether the flow is enabled, which iteration is deployed, its webhooks and
//! callbacks — live here so that a restore brings them back. The entry holds no ids of its own
//! (the flow's and the webhooks' ids belong to the source environment), no secrets (a webhook's
//! HMAC secret key becomes an input of kind `webhook_secret`) and no URLs.

use serde::{Deserialize, Serialize};

/// The `format` of the `flow.json` this build writes and reads.
pub const FLOW_SETTINGS_FORMAT: u32 = 1;

/// The file name of a flow's settings entry, beside its `export.json`.
pub const FLOW_SETTINGS_FILE: &str = "flow.json";

/// A flow's settings and state (`flow.json`).
///
/// ```
/// use flowpack_core::archive::{FlowSettings, Webhook};
///
/// let mut settings = FlowSettings::new(true, Some(3));
/// settings.webhooks.push(Webhook::new("active", "json"));
/// let bytes = settings.to_bytes();
/// assert_eq!(FlowSettings::from_slice(&bytes, "flow.json").unwrap(), settings);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowSettings {
    /// Always [`FLOW_SETTINGS_FORMAT`].
    pub format: u32,
    /// Whether the flow was enabled.
    pub enabled: bool,
    /// The iteration that was deployed, `None` when none was.
    pub deployed_iteration: Option<i64>,
    /// The flow's priority (1, the highest, to 5).
    pub priority: i64,
    /// The platform's `prod_flag`.
    pub prod_flag: bool,
    /// The platform's `use_queued_time`.
    pub use_queued_time: bool,
    /// The platform's `remove_failed_payloads`.
    pub remove_failed_payloads: bool,
    /// The editor's layout direction, stored verbatim (empty when the platform said none).
    pub layout_direction: String,
    /// Label ids (ids of the source environment: restored only into it).
    pub labels: Vec<u64>,
    /// Notification group ids (ids of the source environment: restored only into it).
    pub notification_groups: Vec<u64>,
    /// The flow's webhooks, in the platform's order (an input names one by its position).
    pub webhooks: Vec<Webhook>,
    /// The flow's callbacks, in the platform's order.
    pub callbacks: Vec<Callback>,
}

/// One webhook of a flow, without its id and secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Opaque status string, stored verbatim.
    pub status: String,
    /// Opaque format string, stored verbatim.
    pub format: String,
    /// The body template, if any.
    pub body: Option<String>,
    /// The HMAC algorithm, if any.
    pub hmac_algorithm: Option<String>,
    /// Whether the webhook had an HMAC secret key (the key itself is an input).
    pub has_hmac_secret_key: bool,
}

/// One callback of a flow, without its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Callback {
    /// Opaque status string, stored verbatim.
    pub status: String,
    /// Opaque format string, stored verbatim.
    pub format: String,
}

/// A `flow.json` that cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// Not JSON of the `flow.json` shape.
    #[error("{origin}: not a flow settings document: {reason}")]
    Malformed {
        /// Where it came from (`archive!flows/<slug>/flow.json`, a file).
        origin: String,
        /// What serde said.
        reason: String,
    },
    /// A `format` this build does not know.
    #[error(
        "{origin}: unsupported flow settings format {found} at /format (known: {FLOW_SETTINGS_FORMAT})"
    )]
    Format {
        /// Where it came from.
        origin: String,
        /// The format found.
        found: u32,
    },
}

impl Webhook {
    /// A webhook with `status` and `format`, no body and no HMAC.
    pub fn new(status: &str, format: &str) -> Webhook {
        Webhook {
            status: status.to_string(),
            format: format.to_string(),
            body: None,
            hmac_algorithm: None,
            has_hmac_secret_key: false,
        }
    }
}

impl Callback {
    /// A callback with `status` and `format`.
    pub fn new(status: &str, format: &str) -> Callback {
        Callback {
            status: status.to_string(),
            format: format.to_string(),
        }
    }
}

impl FlowSettings {
    /// Settings of a flow with the given state: priority 3, the platform's flags off, no layout
    /// direction, labels, notification groups, webhooks or callbacks.
    pub fn new(enabled: bool, deployed_iteration: Option<i64>) -> FlowSettings {
        FlowSettings {
            format: FLOW_SETTINGS_FORMAT,
            enabled,
            deployed_iteration,
            priority: 3,
            prod_flag: false,
            use_queued_time: false,
            remove_failed_payloads: false,
            layout_direction: String::new(),
            labels: Vec::new(),
            notification_groups: Vec::new(),
            webhooks: Vec::new(),
            callbacks: Vec::new(),
        }
    }

    /// The entry's bytes: pretty JSON (two-space indent, fields in the order above) and a
    /// trailing newline, so the same settings always give the same bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("flow settings serialise");
        out.push(b'\n');
        out
    }

    /// Parses a `flow.json`; `origin` names it in errors.
    pub fn from_slice(bytes: &[u8], origin: &str) -> Result<FlowSettings, SettingsError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        // The format first, so that a newer format is named as such rather than as a shape error.
        #[derive(Deserialize)]
        struct FormatOnly {
            format: Option<u32>,
        }
        if let Ok(FormatOnly {
            format: Some(found),
        }) = serde_json::from_slice::<FormatOnly>(bytes)
            && found != FLOW_SETTINGS_FORMAT
        {
            return Err(SettingsError::Format {
                origin: origin.to_string(),
                found,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| SettingsError::Malformed {
            origin: origin.to_string(),
            reason: e.to_string(),
        })
    }

    /// The indices of the webhooks whose HMAC secret key an installer must supply.
    pub fn webhook_secrets(&self) -> impl Iterator<Item = u32> + '_ {
        self.webhooks
            .iter()
            .enumerate()
            .filter(|(_, w)| w.has_hmac_secret_key)
            .map(|(i, _)| i as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_in_a_fixed_field_order() {
        let mut s = FlowSettings::new(true, Some(2));
        s.labels = vec![4, 9];
        s.webhooks.push(Webhook {
            body: Some("{}".into()),
            hmac_algorithm: Some("sha256".into()),
            has_hmac_secret_key: true,
            ..Webhook::new("active", "json")
        });
        s.callbacks.push(Callback::new("failed", "json"));
        let bytes = s.to_bytes();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(
            text.starts_with(
                "{\n  \"format\": 1,\n  \"enabled\": true,\n  \"deployed_iteration\": 2,"
            ),
            "{text}"
        );
        assert!(text.ends_with("}\n"));
        assert_eq!(FlowSettings::from_slice(&bytes, "f").unwrap(), s);
        assert_eq!(s.webhook_secrets().collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn ids_secrets_and_unknown_formats_are_refused() {
        let mut v = serde_json::to_value(FlowSettings::new(false, None)).unwrap();
        v["webhooks"] = serde_json::json!([{"id": 7, "status": "a", "format": "b", "body": null,
            "hmac_algorithm": null, "has_hmac_secret_key": false}]);
        let err =
            FlowSettings::from_slice(&serde_json::to_vec(&v).unwrap(), "a!flow.json").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("a!flow.json: not a flow settings document: unknown field `id`"),
            "{err}"
        );
        v["webhooks"] = serde_json::json!([{"status": "a", "format": "b", "body": null,
            "hmac_algorithm": "sha256", "hmac_secret_key": "s3cr3t", "has_hmac_secret_key": true}]);
        let err = FlowSettings::from_slice(&serde_json::to_vec(&v).unwrap(), "f").unwrap_err();
        assert!(
            err.to_string().contains("unknown field `hmac_secret_key`"),
            "{err}"
        );
        v["webhooks"] = serde_json::json!([]);
        v["format"] = 2.into();
        let err = FlowSettings::from_slice(&serde_json::to_vec(&v).unwrap(), "f").unwrap_err();
        assert_eq!(
            err.to_string(),
            "f: unsupported flow settings format 2 at /format (known: 1)"
        );
    }
}
