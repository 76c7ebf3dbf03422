//! flowpack's client of the platform's Core API (DESIGN §2).
//!
//! [`Platform`] is the subset of the Flows API that flowpack uses. Two implementations exist: the
//! HTTP client of this crate (a real environment, or a `flowpack-sandbox` server), and the
//! sandbox's in-process store (the embedded `local` environment, DESIGN §9).
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
//! let client = HttpPlatform::new(HttpOptions::new("https://core.example.com", "s3cr3t"));
//! assert!(!format!("{client:?}").contains("s3cr3t"));
//! ```

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
    #[error("{request}: rate limited (429) after {attempts} attempt(s)")]
    RateLimited {
        /// Method and URL.
        request: String,
        /// Attempts made.
        attempts: u32,
    },
    /// Another HTTP status (5xx after the retries ran out, or an unexpected one).
    #[error("{request}: HTTP {status} after {attempts} attempt(s): {message}")]
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
    #[error("{request}: {message} (after {attempts} attempt(s))")]
    Transport {
        /// Method and URL.
        request: String,
        /// Attempts made.
        attempts: u32,
        /// What went wrong.
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
    /// The in-process store failed (the embedded `local` environment).
    #[error("local environment: {0}")]
    Local(String),
}

fn format_field_errors(errors: &BTreeMap<String, Vec<String>>) -> String {
    errors
        .iter()
        .map(|(field, msgs)| format!("; {field}: {}", msgs.join(", ")))
        .collect()
}

/// The calls flowpack makes to the platform (DESIGN §2).
pub trait Platform: Send + Sync {
    /// `GET /api/v1/flows`: one page.
    fn list_flows(&self, query: &ListQuery) -> Result<Page<Flow>, ClientError>;
    /// `GET /api/v1/flows/{flow}?include=versions`.
    fn show_flow(&self, id: FlowId) -> Result<Flow, ClientError>;
    /// `POST /api/v1/flows/export`: the flow's export document (version 2).
    fn export_flow(&self, id: FlowId) -> Result<Value, ClientError>;
    /// `POST /api/v1/flows/export` as the bytes of the document the platform sent, so archives
    /// keep documents as exported (DESIGN §6) and nothing is parsed twice. The default
    /// serialises [`Platform::export_flow`] as compact JSON.
    fn export_flow_bytes(&self, id: FlowId) -> Result<Vec<u8>, ClientError> {
        Ok(serde_json::to_vec(&self.export_flow(id)?).expect("a JSON value serialises"))
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
}

/// How the import body carries the export document (DESIGN §2).
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
    let mut body = match document {
        Value::Object(map) => map.clone(),
        other => {
            let mut map = serde_json::Map::new();
            map.insert("flow".to_string(), other.clone());
            map
        }
    };
    if encoding == ImportEncoding::String {
        for key in ["metadata", "flow"] {
            if let Some(v) = body.get_mut(key) {
                if !v.is_string() {
                    *v = Value::String(serde_json::to_string(v).expect("a JSON value serialises"));
                }
            }
        }
    }
    if as_marketplace {
        body.insert("as_marketplace".to_string(), Value::Bool(true));
    }
    Value::Object(body)
}

/// Every flow matching `query` (its `page` and `per_page` are ignored): pages through the list
/// 100 at a time until the last page.
pub fn list_all(platform: &dyn Platform, query: &ListQuery) -> Result<Vec<Flow>, ClientError> {
    let mut flows = Vec::new();
    let mut page = 1;
    loop {
        let q = ListQuery {
            page,
            per_page: 100,
            ..query.clone()
        };
        let result = platform.list_flows(&q)?;
        let empty = result.data.is_empty();
        flows.extend(result.data);
        if empty || result.meta.current_page >= result.meta.last_page {
            return Ok(flows);
        }
        page = result.meta.current_page + 1;
    }
}

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
