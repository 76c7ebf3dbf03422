//! flowpack's client of the platform's Core API (the Flows section; [docs/platform-api.md](https://github.com/flowpack/flowpack/blob/main/docs/platform-api.md)).
//!
//! [`Platform`] is the part of the Flows API that flowpack uses. Two implementations exist: the
//! HTTP client of this crate (a real environment, or a `flowpack-sandbox` server), and the
//! sandbox's in-process store (the embedded `local` environment, backed by `.flowpack/local.db`).
//! Methods a platform may lack (webhooks, callbacks, settings) have default bodies answering
//! [`ClientError::Unsupported`].
//!
//! Public error enums and option structs are `#[non_exhaustive]`, so that a later release may add
//! a variant or an option without breaking callers: match errors with a wildcard arm, and build
//! options with their constructor (`new(...)` taking the required values, or `default()` where
//! every field has a default), then set the public fields you need:
//! `let mut opts = HttpOptions::new(url, token); opts.max_attempts = 5;`.
//!
//! ```
//! use flowpack_client::{HttpOptions, HttpPlatform, ImportEncoding, import_body};
//!
//! // The import body: the export document's keys, `flow`/`metadata` as strings on request.
//! let doc = serde_json::json!({"metadata": {"flow_name": "A"}, "flow": {"name": "A"}});
//! let body = import_body(&doc, true, ImportEncoding::String);
//! assert_eq!(body["flow"], r#"{"name":"A"}"#);
//! assert_eq!(body["as_marketplace"], true);
//!
//! // A client never shows its API key.
//! let client = HttpPlatform::new(HttpOptions::new("https://core.example.com", "s3cr3t")).unwrap();
//! assert!(!format!("{client:?}").contains("s3cr3t"));
//!
//! // A base URL with a password is refused, and the password is never shown.
//! let err = HttpPlatform::new(HttpOptions::new("https://me:pw@core.example.com", "k")).unwrap_err();
//! assert!(!err.to_string().contains("pw"));
//! ```

#![warn(missing_docs)]

use std::collections::BTreeMap;

pub mod http;
pub mod oci;

pub use http::{HttpOptions, HttpPlatform};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A flow's id on the platform.
pub type FlowId = u64;
/// A flow version's id on the platform.
pub type VersionId = u64;

/// A flow as the list and show endpoints return it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    /// The flow's id.
    pub id: FlowId,
    /// The flow's name.
    pub name: String,
    /// The flow's description.
    #[serde(default)]
    pub description: Option<String>,
    /// When the flow was enabled; `None` when disabled.
    #[serde(default)]
    pub enabled_at: Option<String>,
    /// Priority, 1 (highest) to 5.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Creation time (RFC 3339).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Last update time (RFC 3339).
    #[serde(default)]
    pub updated_at: Option<String>,
    /// The versions, when `include=versions` was asked for (and on import responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<FlowVersion>>,
}

/// One version of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowVersion {
    /// The version's id.
    pub id: VersionId,
    /// The flow it belongs to.
    pub flow_id: FlowId,
    /// The version's iteration number (higher is newer).
    pub iteration: i64,
    /// `Draft`, `Deployed` or `Inactive`.
    pub status: String,
    /// Whether this is the deployed version.
    pub is_deployed: bool,
    /// When it was deployed, if it is.
    #[serde(default)]
    pub deployed_at: Option<String>,
}

/// The `meta` block of a paginated list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageMeta {
    /// This page's number (from 1).
    pub current_page: u64,
    /// The last page's number.
    pub last_page: u64,
    /// Items per page.
    pub per_page: u64,
    /// Items in all pages.
    pub total: u64,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub data: Vec<T>,
    /// Where this page stands.
    pub meta: PageMeta,
}

/// The query of `GET /api/v1/flows`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Page number, from 1.
    pub page: u64,
    /// Items per page, 1 to 100.
    pub per_page: u64,
    /// `filter[name]`.
    pub name: Option<String>,
    /// `filter[enabled]`.
    pub enabled: Option<bool>,
    /// `sort`, e.g. `name` or `-id`.
    pub sort: Option<String>,
    /// `include`, e.g. `versions`.
    pub include: Option<String>,
}

/// The body of `POST /api/v1/flows/import`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRequest {
    /// The export document (`{metadata, flow, systems, scripts, dependencies}`).
    pub document: Value,
    /// Install as a marketplace package (`as_marketplace`).
    pub as_marketplace: bool,
    /// Sent as the `Idempotency-Key` header: a retried import with the same key creates nothing new.
    pub idempotency_key: Option<String>,
}

/// The body of `PUT /api/v1/flows/{flow}` (`{flow: {...}}`); `None` fields are left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FlowUpdate {
    /// Enable (a timestamp) or disable (`Some(None)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled_at: Option<Option<String>>,
    /// Priority, 1 to 5.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
}

/// Errors talking to the platform; each names the request it is about, never the API key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// 401: the API key was missing or not accepted.
    #[error("{request}: authentication failed (401): check the API key")]
    Unauthenticated {
        /// Method and URL.
        request: String,
    },
    /// 403.
    #[error("{request}: not authorised (403): {message}")]
    Forbidden {
        /// Method and URL.
        request: String,
        /// The platform's message.
        message: String,
    },
    /// 404.
    #[error("{request}: not found (404): {message}")]
    NotFound {
        /// Method and URL.
        request: String,
        /// The platform's message.
        message: String,
    },
    /// 413: the body is over the platform's limit.
    #[error("{request}: request body too large (413)")]
    TooLarge {
        /// Method and URL.
        request: String,
    },
    /// 422: the platform refused the content.
    #[error("{request}: rejected (422): {message}{}", format_field_errors(errors))]
    Validation {
        /// Method and URL.
        request: String,
        /// The platform's message.
        message: String,
        /// Field → messages.
        errors: BTreeMap<String, Vec<String>>,
    },
    /// 429 after the retries ran out.
    #[error("{request}: rate limited (429) after {}", crate::attempts(*.attempts))]
    RateLimited {
        /// Method and URL.
        request: String,
        /// Attempts made.
        attempts: u32,
    },
    /// Another HTTP status (5xx after the retries ran out, or an unexpected one).
    #[error("{request}: HTTP {status} after {}: {message}", crate::attempts(*.attempts))]
    Status {
        /// Method and URL.
        request: String,
        /// The status code.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// The platform's message or the start of the body.
        message: String,
    },
    /// The request did not complete (connection refused, timeout, TLS) after the retries ran out.
    #[error("{request}: {message} (after {})", crate::attempts(*.attempts))]
    Transport {
        /// Method and URL.
        request: String,
        /// Attempts made.
        attempts: u32,
        /// What went wrong.
        message: String,
    },
    /// The server answered the TLS handshake in plain HTTP: the URL says `https://` for a server
    /// that speaks `http://` (not retried: it cannot heal).
    #[error("{request}: the server answered in plain HTTP, not TLS ({message})")]
    NotTls {
        /// Method and URL.
        request: String,
        /// What the TLS layer said.
        message: String,
    },
    /// The response was not what the API documents.
    #[error("{request}: unexpected response: {message}")]
    Decode {
        /// Method and URL.
        request: String,
        /// What was wrong with it.
        message: String,
    },
    /// The response body is longer than the client reads (a document past the per-document
    /// bound, or a platform that does not stop sending): not read on, not retried.
    #[error("{request}: the response is larger than the bound of {limit} bytes; not read on")]
    ResponseTooLarge {
        /// Method and URL.
        request: String,
        /// The bound, in bytes.
        limit: u64,
    },
    /// A paged listing that does not add up: a page that repeats one already read, a page
    /// other than the one asked for, or more pages or flows than the first page announced.
    #[error("{request}: inconsistent paging: {fault}; stopped")]
    Paging {
        /// Method and URL of the page that gave it away.
        request: String,
        /// What did not add up.
        fault: PagingFault,
    },
    /// The in-process store failed (the embedded `local` environment).
    #[error("local environment: {0}")]
    Local(String),
    /// This platform implementation does not offer the operation (a default trait method).
    #[error("{operation}: not supported by this platform")]
    Unsupported {
        /// The operation, e.g. `GET /api/v1/flows/7/webhooks`.
        operation: String,
    },
    /// A write the caller did not send because it could not first record its intent (a
    /// journal that could not be written): nothing reached the platform.
    #[error("{request}: not sent: {reason}")]
    NotSent {
        /// What would have been sent.
        request: String,
        /// Why it was not.
        reason: NotSentReason,
    },
    /// The base URL carries a user name or password (never printed; `url` is redacted).
    #[error(
        "{url}: the URL carries a user name or password, which flowpack refuses (it would be \
         printed and stored); give the API key as the token instead"
    )]
    UrlCredentials {
        /// The URL without its user information and query.
        url: String,
    },
}

/// Why a write was not sent ([`ClientError::NotSent`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotSentReason {
    /// Its intent could not be recorded first (a write-ahead journal that could not be
    /// written).
    #[error("{detail}")]
    Unrecorded {
        /// What the journal's writer said (names the journal file).
        detail: String,
    },
    /// A re-import with no document to re-import.
    #[error("no document to re-import")]
    NoDocument,
}

/// What a paged listing got wrong ([`ClientError::Paging`]), for a caller to decide on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PagingFault {
    /// The first page announced more pages than the client reads ([`MAX_LIST_PAGES`]).
    #[error(
        "the first page announced {announced} pages, more than the {limit} pages{} read",
        if matches!(listing, Listing::Flows) { " of 100 flows" } else { "" }
    )]
    TooManyPages {
        /// What was listed.
        listing: Listing,
        /// The pages the first page announced.
        announced: u64,
        /// The pages the client reads at most.
        limit: u64,
    },
    /// The platform answered another page than the one asked for.
    #[error("asked for page {asked}, got page {got}")]
    WrongPage {
        /// The page asked for.
        asked: u64,
        /// The page the platform said it sent.
        got: u64,
    },
    /// A page held nothing that earlier pages had not already listed.
    #[error("page {page} repeats {listing} already listed")]
    Repeats {
        /// What was listed.
        listing: Listing,
        /// The page.
        page: u64,
    },
    /// More items arrived than the pages the first page announced can hold.
    #[error(
        "{listed} {listing} listed, more than the {announced} pages the first page announced \
         can hold"
    )]
    MoreThanAnnounced {
        /// What was listed.
        listing: Listing,
        /// Items listed so far.
        listed: u64,
        /// The pages the first page announced.
        announced: u64,
    },
}

/// What a paged listing lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Listing {
    /// `GET /api/v1/flows`.
    Flows,
    /// `GET /api/v1/flows/{flow}/versions`.
    Versions,
}

impl std::fmt::Display for Listing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Listing::Flows => "flows",
            Listing::Versions => "versions",
        })
    }
}

/// A webhook's id on the platform.
pub type WebhookId = u64;
/// A callback's id on the platform.
pub type CallbackId = u64;

/// A flow with the settings a backup restores (`GET /api/v1/flows/{flow}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowSettings {
    /// The flow's id.
    pub id: FlowId,
    /// The flow's name.
    pub name: String,
    /// The flow's description.
    #[serde(default)]
    pub description: Option<String>,
    /// When the flow was enabled; `None` when disabled.
    #[serde(default)]
    pub enabled_at: Option<String>,
    /// Priority, 1 (highest) to 5.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Whether the flow is flagged as production.
    #[serde(default)]
    pub prod_flag: bool,
    /// Whether runs use the time they were queued.
    #[serde(default)]
    pub use_queued_time: bool,
    /// Whether payloads of failed runs are removed.
    #[serde(default)]
    pub remove_failed_payloads: bool,
    /// The editor's layout direction (opaque).
    #[serde(default)]
    pub layout_direction: Option<String>,
    /// Ids of the flow's labels (ids of one environment).
    #[serde(default)]
    pub labels: Vec<u64>,
    /// Ids of the flow's notification groups (ids of one environment).
    #[serde(default)]
    pub notification_groups: Vec<u64>,
}

/// The body of `PUT /api/v1/flows/{flow}` with every field the reference lists: `{flow: {name,
/// description, enabled_at, priority, prod_flag, use_queued_time, remove_failed_payloads},
/// labels: [{id}], notification_groups: [ids]}`. `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowSettingsUpdate {
    /// A new name.
    pub name: Option<String>,
    /// A new description, or none (`Some(None)`).
    pub description: Option<Option<String>>,
    /// Enable (a timestamp) or disable (`Some(None)`).
    pub enabled_at: Option<Option<String>>,
    /// Priority, 1 to 5.
    pub priority: Option<i64>,
    /// The production flag.
    pub prod_flag: Option<bool>,
    /// Use the queued time.
    pub use_queued_time: Option<bool>,
    /// Remove payloads of failed runs.
    pub remove_failed_payloads: Option<bool>,
    /// The labels (replacing the current ones).
    pub labels: Option<Vec<u64>>,
    /// The notification groups (replacing the current ones).
    pub notification_groups: Option<Vec<u64>>,
}

impl FlowSettingsUpdate {
    /// The request body, as the reference lays it out.
    pub(crate) fn to_body(&self) -> Value {
        let mut flow = serde_json::Map::new();
        if let Some(v) = &self.name {
            flow.insert("name".into(), Value::from(v.clone()));
        }
        if let Some(v) = &self.description {
            flow.insert(
                "description".into(),
                v.clone().map_or(Value::Null, Value::from),
            );
        }
        if let Some(v) = &self.enabled_at {
            flow.insert(
                "enabled_at".into(),
                v.clone().map_or(Value::Null, Value::from),
            );
        }
        if let Some(v) = self.priority {
            flow.insert("priority".into(), Value::from(v));
        }
        for (key, v) in [
            ("prod_flag", self.prod_flag),
            ("use_queued_time", self.use_queued_time),
            ("remove_failed_payloads", self.remove_failed_payloads),
        ] {
            if let Some(v) = v {
                flow.insert(key.into(), Value::Bool(v));
            }
        }
        let mut body = serde_json::Map::new();
        body.insert("flow".into(), Value::Object(flow));
        if let Some(labels) = &self.labels {
            let list = labels
                .iter()
                .map(|id| serde_json::json!({ "id": id }))
                .collect();
            body.insert("labels".into(), Value::Array(list));
        }
        if let Some(groups) = &self.notification_groups {
            body.insert("notification_groups".into(), Value::from(groups.clone()));
        }
        Value::Object(body)
    }
}

/// A webhook of a flow. The HMAC secret is write-only: only whether one is set is returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// The webhook's id.
    pub id: WebhookId,
    /// The flow it belongs to.
    pub flow_id: FlowId,
    /// Its status (opaque to flowpack).
    pub status: String,
    /// Its format (opaque to flowpack).
    pub format: String,
    /// Its body template, if any.
    #[serde(default)]
    pub body: Option<String>,
    /// The HMAC algorithm, if any.
    #[serde(default)]
    pub hmac_algorithm: Option<String>,
    /// Whether an HMAC secret key is set.
    #[serde(default)]
    pub has_hmac_secret_key: bool,
    /// Creation time (RFC 3339).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Last update time (RFC 3339).
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// The body of `POST`/`PUT /api/v1/flows/{flow}/webhooks[/{webhook}]`; `None` leaves a field
/// alone (or takes the platform's default on create). The platform ignores `hmac_*` on create:
/// set them with an update. `Debug` never shows the secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WebhookRequest {
    /// Status (1 to 64 characters, stored verbatim).
    pub status: Option<String>,
    /// Format (1 to 64 characters, stored verbatim).
    pub format: Option<String>,
    /// Body template, or none (`Some(None)`).
    pub body: Option<Option<String>>,
    /// HMAC algorithm, or none (`Some(None)`).
    pub hmac_algorithm: Option<Option<String>>,
    /// HMAC secret key (at most 128 characters), or none (`Some(None)`).
    pub hmac_secret_key: Option<Option<String>>,
}

impl std::fmt::Debug for WebhookRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("status", &self.status)
            .field("format", &self.format)
            .field("body", &self.body)
            .field("hmac_algorithm", &self.hmac_algorithm)
            .field(
                "hmac_secret_key",
                &self
                    .hmac_secret_key
                    .as_ref()
                    .map(|k| k.as_ref().map(|_| "••••")),
            )
            .finish()
    }
}

impl WebhookRequest {
    /// The request body (only the fields that are set).
    pub(crate) fn to_body(&self) -> Value {
        let mut body = serde_json::Map::new();
        if let Some(v) = &self.status {
            body.insert("status".into(), Value::from(v.clone()));
        }
        if let Some(v) = &self.format {
            body.insert("format".into(), Value::from(v.clone()));
        }
        for (key, v) in [
            ("body", &self.body),
            ("hmac_algorithm", &self.hmac_algorithm),
            ("hmac_secret_key", &self.hmac_secret_key),
        ] {
            if let Some(v) = v {
                body.insert(key.into(), v.clone().map_or(Value::Null, Value::from));
            }
        }
        Value::Object(body)
    }
}

/// A callback of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Callback {
    /// The callback's id.
    pub id: CallbackId,
    /// The flow it belongs to.
    pub flow_id: FlowId,
    /// Its status (opaque to flowpack).
    pub status: String,
    /// Its format (opaque to flowpack).
    pub format: String,
    /// Creation time (RFC 3339).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Last update time (RFC 3339).
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// The body of `POST`/`PUT /api/v1/flows/{flow}/callbacks[/{callback}]`; `None` leaves a field
/// alone (or takes the platform's default on create).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CallbackRequest {
    /// Status (1 to 64 characters, stored verbatim).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Format (1 to 64 characters, stored verbatim).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

fn unsupported<T>(operation: String) -> Result<T, ClientError> {
    Err(ClientError::Unsupported { operation })
}

/// `url` without its user information (`user:password@`), query and fragment: the form of a URL
/// that may be printed, logged or stored (for example as an archive manifest's `source.url`).
///
/// ```
/// assert_eq!(
///     flowpack_client::redacted("https://me:pw@core.example.com:8443/api?key=s3cr3t#x"),
///     "https://core.example.com:8443/api"
/// );
/// ```
pub fn redacted(url: &str) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..cut];
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}{host}{path}")
}

/// Refuses a base URL that carries user information (`user:password@host`).
pub fn check_base_url(url: &str) -> Result<(), ClientError> {
    let without_query = &url[..url.find(['?', '#']).unwrap_or(url.len())];
    let rest = without_query
        .find("://")
        .map_or(without_query, |i| &without_query[i + 3..]);
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    if authority.contains('@') {
        return Err(ClientError::UrlCredentials { url: redacted(url) });
    }
    Ok(())
}

fn format_field_errors(errors: &BTreeMap<String, Vec<String>>) -> String {
    errors
        .iter()
        .map(|(field, msgs)| format!("; {field}: {}", msgs.join(", ")))
        .collect()
}

/// The calls flowpack makes to the platform ([docs/platform-api.md](https://github.com/flowpack/flowpack/blob/main/docs/platform-api.md)).
pub trait Platform: Send + Sync {
    /// `GET /api/v1/flows`: one page.
    fn list_flows(&self, query: &ListQuery) -> Result<Page<Flow>, ClientError>;
    /// `GET /api/v1/flows/{flow}?include=versions`.
    fn show_flow(&self, id: FlowId) -> Result<Flow, ClientError>;
    /// `POST /api/v1/flows/export`: the flow's export document (version 2).
    fn export_flow(&self, id: FlowId) -> Result<Value, ClientError>;
    /// `POST /api/v1/flows/export` as the bytes of the document the platform sent, so archives
    /// keep documents byte for byte as exported and nothing is parsed twice. The default
    /// serialises [`Platform::export_flow`] as compact JSON.
    fn export_flow_bytes(&self, id: FlowId) -> Result<Vec<u8>, ClientError> {
        Ok(serde_json::to_vec(&self.export_flow(id)?).expect("a JSON value serialises"))
    }
    /// Whether an export is built as a parsed document in this process (an embedded store),
    /// rather than received as bytes: such exports cost a parsed document's memory each, so
    /// callers run them one at a time. `false` by default.
    fn builds_exports_in_process(&self) -> bool {
        false
    }
    /// `POST /api/v1/flows/import`: the new flow, with its versions.
    fn import_flow(&self, request: &ImportRequest) -> Result<Flow, ClientError>;
    /// `GET /api/v1/flows/{flow}/versions`.
    fn list_versions(&self, flow: FlowId) -> Result<Vec<FlowVersion>, ClientError>;
    /// `PUT /api/v1/flows/{flow}/versions/{version}` with `{deployed_at}`: deploys that version
    /// (the previously deployed one becomes inactive).
    fn deploy_version(
        &self,
        flow: FlowId,
        version: VersionId,
        deployed_at: &str,
    ) -> Result<FlowVersion, ClientError>;
    /// `PUT /api/v1/flows/{flow}` with `{flow: {...}}`.
    fn update_flow(&self, flow: FlowId, update: &FlowUpdate) -> Result<Flow, ClientError>;
    /// `DELETE /api/v1/flows/{flow}`.
    fn delete_flow(&self, flow: FlowId) -> Result<(), ClientError>;
    /// `GET /api/v1/flows/{flow}`: the flow with its settings (what a backup restores).
    fn show_flow_settings(&self, flow: FlowId) -> Result<FlowSettings, ClientError> {
        unsupported(format!("GET /api/v1/flows/{flow} (settings)"))
    }
    /// `PUT /api/v1/flows/{flow}` with every settings field the reference lists.
    fn update_flow_settings(
        &self,
        flow: FlowId,
        update: &FlowSettingsUpdate,
    ) -> Result<FlowSettings, ClientError> {
        let _ = update;
        unsupported(format!("PUT /api/v1/flows/{flow} (settings)"))
    }
    /// `PATCH /api/v1/flows/{flow}/layout-direction` with `{layout_direction}`.
    fn set_layout_direction(&self, flow: FlowId, direction: &str) -> Result<(), ClientError> {
        let _ = direction;
        unsupported(format!("PATCH /api/v1/flows/{flow}/layout-direction"))
    }
    /// `GET /api/v1/flows/{flow}/webhooks`.
    fn list_webhooks(&self, flow: FlowId) -> Result<Vec<Webhook>, ClientError> {
        unsupported(format!("GET /api/v1/flows/{flow}/webhooks"))
    }
    /// `POST /api/v1/flows/{flow}/webhooks` (the platform ignores `hmac_*` here).
    fn create_webhook(
        &self,
        flow: FlowId,
        request: &WebhookRequest,
    ) -> Result<Webhook, ClientError> {
        let _ = request;
        unsupported(format!("POST /api/v1/flows/{flow}/webhooks"))
    }
    /// `PUT /api/v1/flows/{flow}/webhooks/{webhook}`.
    fn update_webhook(
        &self,
        flow: FlowId,
        webhook: WebhookId,
        request: &WebhookRequest,
    ) -> Result<Webhook, ClientError> {
        let _ = request;
        unsupported(format!("PUT /api/v1/flows/{flow}/webhooks/{webhook}"))
    }
    /// `DELETE /api/v1/flows/{flow}/webhooks/{webhook}`.
    fn delete_webhook(&self, flow: FlowId, webhook: WebhookId) -> Result<(), ClientError> {
        unsupported(format!("DELETE /api/v1/flows/{flow}/webhooks/{webhook}"))
    }
    /// `GET /api/v1/flows/{flow}/callbacks`.
    fn list_callbacks(&self, flow: FlowId) -> Result<Vec<Callback>, ClientError> {
        unsupported(format!("GET /api/v1/flows/{flow}/callbacks"))
    }
    /// `POST /api/v1/flows/{flow}/callbacks`.
    fn create_callback(
        &self,
        flow: FlowId,
        request: &CallbackRequest,
    ) -> Result<Callback, ClientError> {
        let _ = request;
        unsupported(format!("POST /api/v1/flows/{flow}/callbacks"))
    }
    /// `PUT /api/v1/flows/{flow}/callbacks/{callback}`.
    fn update_callback(
        &self,
        flow: FlowId,
        callback: CallbackId,
        request: &CallbackRequest,
    ) -> Result<Callback, ClientError> {
        let _ = request;
        unsupported(format!("PUT /api/v1/flows/{flow}/callbacks/{callback}"))
    }
    /// `DELETE /api/v1/flows/{flow}/callbacks/{callback}`.
    fn delete_callback(&self, flow: FlowId, callback: CallbackId) -> Result<(), ClientError> {
        unsupported(format!("DELETE /api/v1/flows/{flow}/callbacks/{callback}"))
    }
}

/// How the import body carries the export document: the vendor's client posts objects, the API
/// reference documents strings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportEncoding {
    /// The document's keys as JSON objects (what the vendor's own client posts). The default.
    #[default]
    Object,
    /// `flow` and `metadata` as JSON-encoded strings, as the API reference documents them.
    String,
}

/// The body of `POST /api/v1/flows/import`: the export document's keys, `flow` and `metadata`
/// JSON-encoded as strings when `encoding` says so, plus `as_marketplace: true` when asked.
pub fn import_body(document: &Value, as_marketplace: bool, encoding: ImportEncoding) -> Value {
    serde_json::from_slice(&import_body_bytes(document, as_marketplace, encoding))
        .expect("an import body is JSON")
}

/// [`import_body`] as the bytes sent, written straight from `document` (no copy of it is made:
/// documents can be large).
pub fn import_body_bytes(
    document: &Value,
    as_marketplace: bool,
    encoding: ImportEncoding,
) -> Vec<u8> {
    serde_json::to_vec(&ImportBody {
        document,
        as_marketplace,
        encoding,
    })
    .expect("a JSON value serialises")
}

/// Serialises an import body from a borrowed document (see [`import_body`]).
struct ImportBody<'a> {
    document: &'a Value,
    as_marketplace: bool,
    encoding: ImportEncoding,
}

impl ImportBody<'_> {
    fn entry<M: serde::ser::SerializeMap>(
        &self,
        map: &mut M,
        key: &str,
        value: &Value,
    ) -> Result<(), M::Error> {
        if self.as_marketplace && key == "as_marketplace" {
            return map.serialize_entry(key, &true);
        }
        if self.encoding == ImportEncoding::String
            && (key == "metadata" || key == "flow")
            && !value.is_string()
        {
            let text = serde_json::to_string(value).map_err(serde::ser::Error::custom)?;
            return map.serialize_entry(key, &text);
        }
        map.serialize_entry(key, value)
    }
}

impl Serialize for ImportBody<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        let has_flag = match self.document {
            Value::Object(obj) => {
                for (k, v) in obj {
                    self.entry(&mut map, k, v)?;
                }
                obj.contains_key("as_marketplace")
            }
            other => {
                self.entry(&mut map, "flow", other)?;
                false
            }
        };
        if self.as_marketplace && !has_flag {
            map.serialize_entry("as_marketplace", &true)?;
        }
        map.end()
    }
}

/// Every flow matching `query` (its `page` and `per_page` are ignored): pages through the list
/// 100 at a time until the last page.
pub fn list_all(platform: &dyn Platform, query: &ListQuery) -> Result<Vec<Flow>, ClientError> {
    let mut flows: Vec<Flow> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // What the first page announced: the listing stops at its last page, and a platform that
    // sends more flows or pages than it announced is refused (never followed forever).
    let mut announced: Option<(u64, u64)> = None;
    let mut page = 1;
    loop {
        let q = ListQuery {
            page,
            per_page: 100,
            ..query.clone()
        };
        let result = platform.list_flows(&q)?;
        let request = || {
            let mut text = format!("GET /api/v1/flows?page={page}&per_page=100");
            if let Some(name) = &q.name {
                text.push_str(&format!(" (name {name:?})"));
            }
            text
        };
        let meta = result.meta;
        let (total, last_page) = *announced.get_or_insert((meta.total, meta.last_page));
        if page == 1 && last_page.min(total.div_ceil(100)) > MAX_LIST_PAGES {
            return Err(ClientError::Paging {
                request: request(),
                fault: PagingFault::TooManyPages {
                    listing: Listing::Flows,
                    announced: last_page,
                    limit: MAX_LIST_PAGES,
                },
            });
        }
        if meta.current_page != page && !(page == 1 && result.data.is_empty()) {
            return Err(ClientError::Paging {
                request: request(),
                fault: PagingFault::WrongPage {
                    asked: page,
                    got: meta.current_page,
                },
            });
        }
        let empty = result.data.is_empty();
        let mut fresh = 0usize;
        for flow in result.data {
            if seen.insert(flow.id) {
                fresh += 1;
                flows.push(flow);
            }
        }
        if !empty && fresh == 0 {
            return Err(ClientError::Paging {
                request: request(),
                fault: PagingFault::Repeats {
                    listing: Listing::Flows,
                    page,
                },
            });
        }
        // Flows created while the listing runs may add to the announced total, never beyond
        // the pages announced.
        if flows.len() as u64 > last_page.saturating_mul(100) {
            return Err(ClientError::Paging {
                request: request(),
                fault: PagingFault::MoreThanAnnounced {
                    listing: Listing::Flows,
                    listed: flows.len() as u64,
                    announced: last_page,
                },
            });
        }
        // Stopped at the total the first page announced, whatever later pages say.
        if empty || page >= last_page || page >= meta.last_page || flows.len() as u64 >= total {
            return Ok(flows);
        }
        page += 1;
    }
}

/// The most pages [`list_all`] reads (100 flows each): 1,000,000 flows.
pub const MAX_LIST_PAGES: u64 = 10_000;

/// The flows whose name is exactly `name` (the platform's `filter[name]` may match partially).
pub fn find_by_name(platform: &dyn Platform, name: &str) -> Result<Vec<Flow>, ClientError> {
    let query = ListQuery {
        name: Some(name.to_string()),
        ..ListQuery::default()
    };
    Ok(list_all(platform, &query)?
        .into_iter()
        .filter(|f| f.name == name)
        .collect())
}

/// `1 attempt`, `3 attempts`: the count of requests made, for messages.
pub(crate) fn attempts(n: u32) -> String {
    format!("{n} {}", if n == 1 { "attempt" } else { "attempts" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_bodies_are_written_in_document_order_without_a_copy() {
        let doc = serde_json::json!({"metadata": {"flow_name": "A"}, "flow": {"name": "A"},
            "systems": [], "as_marketplace": false});
        let text = |m, e| String::from_utf8(import_body_bytes(&doc, m, e)).unwrap();
        assert_eq!(
            text(false, ImportEncoding::Object),
            r#"{"metadata":{"flow_name":"A"},"flow":{"name":"A"},"systems":[],"as_marketplace":false}"#
        );
        // The flag replaces the document's own in place; strings for flow and metadata.
        assert_eq!(
            text(true, ImportEncoding::String),
            r#"{"metadata":"{\"flow_name\":\"A\"}","flow":"{\"name\":\"A\"}","systems":[],"as_marketplace":true}"#
        );
        // Appended when the document has none; a non-object document is sent as `flow`.
        let bare = serde_json::json!({"flow": "already a string"});
        assert_eq!(
            String::from_utf8(import_body_bytes(&bare, true, ImportEncoding::String)).unwrap(),
            r#"{"flow":"already a string","as_marketplace":true}"#
        );
        assert_eq!(
            import_body(&serde_json::json!([1]), false, ImportEncoding::Object),
            serde_json::json!({"flow": [1]})
        );
    }

    /// A platform with none of the optional methods.
    struct Minimal;

    impl Platform for Minimal {
        fn list_flows(&self, _: &ListQuery) -> Result<Page<Flow>, ClientError> {
            Err(ClientError::Local("no flows".into()))
        }
        fn show_flow(&self, _: FlowId) -> Result<Flow, ClientError> {
            Err(ClientError::Local("no flows".into()))
        }
        fn export_flow(&self, _: FlowId) -> Result<Value, ClientError> {
            Err(ClientError::Local("no flows".into()))
        }
        fn import_flow(&self, _: &ImportRequest) -> Result<Flow, ClientError> {
            Err(ClientError::Local("no flows".into()))
        }
        fn list_versions(&self, _: FlowId) -> Result<Vec<FlowVersion>, ClientError> {
            Err(ClientError::Local("no flows".into()))
        }
        fn deploy_version(
            &self,
            _: FlowId,
            _: VersionId,
            _: &str,
        ) -> Result<FlowVersion, ClientError> {
            Err(ClientError::Local("no flows".into()))
        }
        fn update_flow(&self, _: FlowId, _: &FlowUpdate) -> Result<Flow, ClientError> {
            Err(ClientError::Local("no flows".into()))
        }
        fn delete_flow(&self, _: FlowId) -> Result<(), ClientError> {
            Err(ClientError::Local("no flows".into()))
        }
    }

    #[test]
    fn optional_methods_default_to_unsupported_naming_the_call() {
        let p = Minimal;
        let err = p.list_webhooks(7).unwrap_err();
        assert_eq!(
            err.to_string(),
            "GET /api/v1/flows/7/webhooks: not supported by this platform"
        );
        assert!(matches!(
            p.update_callback(7, 2, &CallbackRequest::default()),
            Err(ClientError::Unsupported { operation }) if operation == "PUT /api/v1/flows/7/callbacks/2"
        ));
        assert!(matches!(
            p.set_layout_direction(7, "vertical"),
            Err(ClientError::Unsupported { .. })
        ));
    }

    #[test]
    fn request_bodies_follow_the_reference_and_never_show_the_secret() {
        let update = FlowSettingsUpdate {
            name: Some("A".into()),
            enabled_at: Some(None),
            prod_flag: Some(true),
            labels: Some(vec![4]),
            notification_groups: Some(vec![]),
            ..FlowSettingsUpdate::default()
        };
        assert_eq!(
            update.to_body(),
            serde_json::json!({
                "flow": {"name": "A", "enabled_at": null, "prod_flag": true},
                "labels": [{"id": 4}],
                "notification_groups": []
            })
        );
        let webhook = WebhookRequest {
            status: Some("active".into()),
            hmac_secret_key: Some(Some("s3cr3t".into())),
            body: Some(None),
            ..WebhookRequest::default()
        };
        assert_eq!(
            webhook.to_body(),
            serde_json::json!({"status": "active", "body": null, "hmac_secret_key": "s3cr3t"})
        );
        assert!(!format!("{webhook:?}").contains("s3cr3t"));
    }

    #[test]
    fn userinfo_and_query_never_survive_redaction() {
        for (url, want) in [
            (
                "http://user:PASSWORD@host:8080/x?token=T#f",
                "http://host:8080/x",
            ),
            ("https://a@b@host", "https://host"),
            ("http://host/p?q=1", "http://host/p"),
            ("http://host", "http://host"),
            ("host:1/p@x", "host:1/p@x"),
        ] {
            assert_eq!(redacted(url), want, "{url}");
        }
        let err = check_base_url("http://user:PASSWORD@127.0.0.1:9/?k=SECRET").unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("http://127.0.0.1:9/"), "{shown}");
        assert!(
            !shown.contains("PASSWORD") && !shown.contains("SECRET") && !shown.contains("user:"),
            "{shown}"
        );
        assert!(check_base_url("https://core.example.com/base").is_ok());
        assert!(check_base_url("https://core.example.com/a@b").is_ok());

        let mut options = HttpOptions::new("http://127.0.0.1:9/?k=SECRET", "tok");
        let debug = format!("{options:?}");
        assert!(
            !debug.contains("SECRET") && !debug.contains("tok\""),
            "{debug}"
        );
        options.base_url = "http://u:PASSWORD@127.0.0.1:9".into();
        assert!(matches!(
            HttpPlatform::new(options),
            Err(ClientError::UrlCredentials { .. })
        ));
    }

    #[test]
    fn a_write_not_sent_says_why_in_the_old_words() {
        let unrecorded = ClientError::NotSent {
            request: "POST /api/v1/flows/import".into(),
            reason: NotSentReason::Unrecorded {
                detail: "writing /h/1.journal: disk full".into(),
            },
        };
        assert_eq!(
            unrecorded.to_string(),
            "POST /api/v1/flows/import: not sent: writing /h/1.journal: disk full"
        );
        let none = ClientError::NotSent {
            request: "POST /api/v1/flows/import".into(),
            reason: NotSentReason::NoDocument,
        };
        assert_eq!(
            none.to_string(),
            "POST /api/v1/flows/import: not sent: no document to re-import"
        );
    }

    #[test]
    fn attempts_are_counted_in_words() {
        let one = ClientError::RateLimited {
            request: "GET /api/v1/flows".into(),
            attempts: 1,
        };
        assert_eq!(
            one.to_string(),
            "GET /api/v1/flows: rate limited (429) after 1 attempt"
        );
        let three = ClientError::Transport {
            request: "GET /api/v1/flows".into(),
            attempts: 3,
            message: "connection refused".into(),
        };
        assert_eq!(
            three.to_string(),
            "GET /api/v1/flows: connection refused (after 3 attempts)"
        );
    }
}
