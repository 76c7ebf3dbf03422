//! [`HttpPlatform`]: the [`Platform`] over HTTP (a real environment or a `flowpack-sandbox`).
//!
//! Every request carries `Authorization: Bearer <token>` and `Accept: application/json`, has a
//! connect timeout and an overall timeout, and is retried with exponential backoff and full
//! jitter. What is retried:
//! - `408`, `429`, `502`, `503`, `504`: always (these say "nothing was done, come back later");
//!   `Retry-After` (seconds) is honoured instead of the backoff when the server sends it;
//! - `500`: for every request except an import without an `Idempotency-Key` — the reads, the
//!   export and the `PUT`s are idempotent, and an import carrying a key cannot create a second
//!   flow (a platform that fails with 500 before doing any work, such as the sandbox's
//!   `--fail-rate`, is then ridden out);
//! - connection errors and timeouts: for every request except the import. A timed-out import may
//!   have landed, so it is returned at once as [`ClientError::Transport`]; the caller (push) first
//!   looks the flow up by name and only then retries with the same `Idempotency-Key`.
//!
//! What cannot heal is never retried: any other 4xx, and a failure of TLS or of the protocol
//! itself (a certificate refused, a server answering in another protocol); a server that answers
//! a TLS handshake in plain HTTP is [`ClientError::NotTls`] (its URL should say `http://`).
//!
//! Attempts are bounded ([`HttpOptions::max_attempts`]); the retries made are counted
//! ([`HttpPlatform::retries`]). The API key is never printed: `Debug` masks it, and the request log
//! ([`HttpOptions::log`]) shows `Authorization: ••••`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use ureq::http;

use crate::{
    Callback, CallbackId, CallbackRequest, ClientError, Flow, FlowId, FlowSettings,
    FlowSettingsUpdate, FlowUpdate, FlowVersion, ImportEncoding, ImportRequest, ListQuery, Page,
    PageMeta, Platform, VersionId, Webhook, WebhookId, WebhookRequest, import_body_bytes,
};

/// What the API key prints as.
pub const MASK: &str = "••••";

/// Returns a number in `[0, 1)`; scales the backoff delay (full jitter).
pub type JitterFn = Arc<dyn Fn() -> f64 + Send + Sync>;
/// Waits for a duration (the backoff between attempts).
pub type SleepFn = Arc<dyn Fn(Duration) + Send + Sync>;
/// Receives one line per request attempt and response (`--verbose`), the key masked.
pub type LogFn = Arc<dyn Fn(&str) + Send + Sync>;

/// How an [`HttpPlatform`] connects, times out and retries.
#[derive(Clone)]
#[non_exhaustive]
pub struct HttpOptions {
    /// The environment's base URL, without `/api/v1` (e.g. `https://core.example.com`).
    pub base_url: String,
    /// The API key, sent as `Authorization: Bearer <token>`.
    pub token: String,
    /// Time allowed to open the connection.
    pub connect_timeout: Duration,
    /// Time allowed for one whole attempt (connect, send, receive).
    pub timeout: Duration,
    /// Attempts per request, the first included (at least 1).
    pub max_attempts: u32,
    /// The backoff before the second attempt; doubled for each further one.
    pub base_delay: Duration,
    /// The backoff never exceeds this (before jitter).
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is cut to it.
    pub max_retry_after: Duration,
    /// How import bodies are encoded.
    pub import_encoding: ImportEncoding,
    /// The jitter source: `[0, 1)`. Defaults to a time-seeded generator.
    pub jitter: JitterFn,
    /// The sleep between attempts. Defaults to `std::thread::sleep`.
    pub sleep: SleepFn,
    /// The request log (`--verbose`), if any.
    pub log: Option<LogFn>,
    /// The largest response body read, in bytes: an export's document within the per-document
    /// bound plus its `{"data": …}` envelope ([`DEFAULT_MAX_RESPONSE_BYTES`]). A longer body is
    /// not read on: the request fails with [`ClientError::ResponseTooLarge`].
    pub max_response_bytes: u64,
}

/// Room for the envelope around an exported document (`{"data": …}`, whitespace).
const ENVELOPE_BYTES: u64 = 64 * 1024;

/// The default [`HttpOptions::max_response_bytes`]: the per-document size bound (16 MiB) and
/// 64 KiB for the envelope.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024 + ENVELOPE_BYTES;

impl HttpOptions {
    /// Options with the defaults: 10 s connect, 60 s per attempt, 6 attempts, backoff from
    /// 250 ms up to 8 s, `Retry-After` up to 60 s, object-encoded imports.
    pub fn new(base_url: impl Into<String>, token: impl Into<String>) -> HttpOptions {
        HttpOptions {
            base_url: base_url.into(),
            token: token.into(),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            max_attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            import_encoding: ImportEncoding::Object,
            jitter: default_jitter(),
            sleep: Arc::new(std::thread::sleep),
            log: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

impl fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpOptions")
            .field("base_url", &crate::redacted(&self.base_url))
            .field("token", &MASK)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("base_delay", &self.base_delay)
            .field("max_delay", &self.max_delay)
            .field("import_encoding", &self.import_encoding)
            .finish_non_exhaustive()
    }
}

/// A xorshift generator seeded from the clock and a counter: jitter needs spread, not secrecy.
pub(crate) fn default_jitter() -> JitterFn {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9E37_79B9_7F4A_7C15)
        | 1;
    let state = Arc::new(AtomicU64::new(seed));
    Arc::new(move || {
        let mut x = state.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.store(x, Ordering::Relaxed);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// The platform over HTTP.
pub struct HttpPlatform {
    options: HttpOptions,
    api: String,
    agent: ureq::Agent,
    retries: AtomicU64,
}

impl fmt::Debug for HttpPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPlatform")
            .field("options", &self.options)
            .field("retries", &self.retries())
            .finish()
    }
}

/// Whether a request may be retried after a 500 or a transport failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Safety {
    /// Reads, export, PUT, DELETE.
    Idempotent,
    /// An import with an `Idempotency-Key`: 500 retried, transport failures returned.
    KeyedImport,
    /// An import without a key: neither.
    Import,
}

struct Outgoing<'a> {
    method: http::Method,
    url: String,
    body: Option<Vec<u8>>,
    idempotency_key: Option<&'a str>,
    safety: Safety,
}

impl HttpPlatform {
    /// A client for `options.base_url` + `/api/v1`. A base URL with user information
    /// (`user:password@`) is refused ([`ClientError::UrlCredentials`]): the API key travels in
    /// `token`. Requests are named in errors and log lines by their URL without query.
    pub fn new(options: HttpOptions) -> Result<HttpPlatform, ClientError> {
        crate::check_base_url(&options.base_url)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(options.connect_timeout))
            .timeout_global(Some(options.timeout))
            .max_redirects(0)
            .user_agent(concat!("flowpack/", env!("CARGO_PKG_VERSION")))
            .build();
        let api = format!("{}/api/v1", options.base_url.trim_end_matches('/'));
        Ok(HttpPlatform {
            agent: ureq::Agent::new_with_config(config),
            api,
            options,
            retries: AtomicU64::new(0),
        })
    }

    /// Retries made so far (attempts beyond each request's first), over all requests.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The options this client was made with.
    pub fn options(&self) -> &HttpOptions {
        &self.options
    }

    fn log(&self, line: impl FnOnce() -> String) {
        if let Some(log) = &self.options.log {
            log(&line());
        }
    }

    fn backoff(&self, retry: u32) -> Duration {
        backoff_delay(
            self.options.base_delay,
            self.options.max_delay,
            &self.options.jitter,
            retry,
        )
    }

    /// Sends with retries; returns the status and body of the final 2xx response.
    fn send(&self, out: Outgoing<'_>) -> Result<Vec<u8>, ClientError> {
        let label = format!("{} {}", out.method, crate::redacted(&out.url));
        let max = self.options.max_attempts.max(1);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut builder = http::Request::builder()
                .method(out.method.clone())
                .uri(&out.url)
                .header("Authorization", format!("Bearer {}", self.options.token))
                .header("Accept", "application/json");
            if out.body.is_some() {
                builder = builder.header("Content-Type", "application/json");
            }
            if let Some(key) = out.idempotency_key {
                builder = builder.header("Idempotency-Key", key);
            }
            self.log(|| {
                let mut line = format!("> {label} (attempt {attempt}/{max}) Authorization: {MASK}");
                if let Some(key) = out.idempotency_key {
                    line.push_str(&format!(" Idempotency-Key: {key}"));
                }
                line
            });
            let body = out.body.clone().unwrap_or_default();
            let request = builder.body(body).map_err(|e| ClientError::Decode {
                request: label.clone(),
                message: format!("could not build the request: {e}"),
            })?;
            let (retry_after, failure) = match self.agent.run(request) {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let retry_after = retry_after(response.headers());
                    let bytes = response
                        .body_mut()
                        .with_config()
                        .limit(self.options.max_response_bytes)
                        .read_to_vec();
                    self.log(|| format!("< {label} {status}"));
                    let bytes = match bytes {
                        Ok(b) => b,
                        Err(ureq::Error::BodyExceedsLimit(_)) => {
                            return Err(ClientError::ResponseTooLarge {
                                request: label,
                                limit: self.options.max_response_bytes,
                            });
                        }
                        Err(e)
                            if attempt < max && out.safety == Safety::Idempotent && heals(&e) =>
                        {
                            self.wait(attempt, None, &label, &e.to_string());
                            continue;
                        }
                        Err(e) => {
                            return Err(ClientError::Transport {
                                request: label,
                                attempts: attempt,
                                message: format!("reading the response failed: {e}"),
                            });
                        }
                    };
                    if (200..300).contains(&status) {
                        return Ok(bytes);
                    }
                    let retryable = matches!(status, 408 | 429 | 502 | 503 | 504)
                        || (status == 500 && out.safety != Safety::Import);
                    if !retryable || attempt >= max {
                        return Err(status_error(label, status, attempt, &bytes));
                    }
                    (retry_after, format!("HTTP {status}"))
                }
                Err(e) => {
                    let message = transport_message(&e);
                    if answered_in_plain_http(&e) {
                        return Err(ClientError::NotTls {
                            request: label,
                            message,
                        });
                    }
                    if out.safety != Safety::Idempotent || attempt >= max || !heals(&e) {
                        return Err(ClientError::Transport {
                            request: label,
                            attempts: attempt,
                            message,
                        });
                    }
                    (None, message)
                }
            };
            self.wait(attempt, retry_after, &label, &failure);
        }
    }

    fn wait(&self, attempt: u32, retry_after: Option<Duration>, label: &str, why: &str) {
        let delay = match retry_after {
            Some(d) => d.min(self.options.max_retry_after),
            None => self.backoff(attempt),
        };
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.log(|| format!("! {label}: {why}; retrying in {} ms", delay.as_millis()));
        (self.options.sleep)(delay);
    }

    /// A GET: the request's label (for errors) and the response body.
    fn get(&self, url: String) -> Result<(String, Vec<u8>), ClientError> {
        let label = format!("GET {}", crate::redacted(&url));
        let bytes = self.send(Outgoing {
            method: http::Method::GET,
            url,
            body: None,
            idempotency_key: None,
            safety: Safety::Idempotent,
        })?;
        Ok((label, bytes))
    }

    fn get_json<T: DeserializeOwned>(&self, url: String) -> Result<T, ClientError> {
        let (label, bytes) = self.get(url)?;
        decode_data(&label, &bytes)
    }

    fn send_json<T: DeserializeOwned>(
        &self,
        method: http::Method,
        url: String,
        body: &Value,
    ) -> Result<T, ClientError> {
        let label = format!("{method} {}", crate::redacted(&url));
        let bytes = self.send(Outgoing {
            method,
            url,
            body: Some(serde_json::to_vec(body).expect("a JSON value serialises")),
            idempotency_key: None,
            safety: Safety::Idempotent,
        })?;
        decode_data(&label, &bytes)
    }
}

impl HttpPlatform {
    /// A request whose response body is not needed (DELETE, the 204 of a PATCH); retried like
    /// any idempotent request.
    fn send_no_content(
        &self,
        method: http::Method,
        url: String,
        body: Option<&Value>,
    ) -> Result<(), ClientError> {
        self.send(Outgoing {
            method,
            url,
            body: body.map(|b| serde_json::to_vec(b).expect("a JSON value serialises")),
            idempotency_key: None,
            safety: Safety::Idempotent,
        })?;
        Ok(())
    }

    /// A request that creates something: like an import without a key, it is not retried after
    /// a 500 or a lost connection (a retry could create it twice).
    fn send_once<T: DeserializeOwned>(
        &self,
        method: http::Method,
        url: String,
        body: &Value,
    ) -> Result<T, ClientError> {
        let label = format!("{method} {url}");
        let bytes = self.send(Outgoing {
            method,
            url,
            body: Some(serde_json::to_vec(body).expect("a JSON value serialises")),
            idempotency_key: None,
            safety: Safety::Import,
        })?;
        decode_data(&label, &bytes)
    }
}

/// The backoff before retry number `retry` (1 for the second attempt): `base` doubled per retry,
/// capped at `max`, scaled by the jitter (full jitter).
pub(crate) fn backoff_delay(
    base: Duration,
    max: Duration,
    jitter: &JitterFn,
    retry: u32,
) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)));
    let cap = exp.min(max);
    let j = jitter().clamp(0.0, 1.0);
    cap.mul_f64(j)
}

/// A `Retry-After` header in seconds (the HTTP-date form is ignored: the backoff applies).
pub(crate) fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Whether trying again may get past a transport failure: a connection refused or reset, a
/// timeout, a name not resolved. A failure of TLS (a certificate refused, a handshake the
/// server answered in another protocol) or of HTTP itself (a malformed response, a bad URL)
/// comes back the same every time.
pub(crate) fn heals(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => true,
        // TLS records and HTTP responses that do not parse arrive as invalid data.
        ureq::Error::Io(io) => io.kind() != std::io::ErrorKind::InvalidData,
        _ => false,
    }
}

/// Whether the server answered the TLS handshake in plain HTTP: rustls reads the `HTTP/1.1 …`
/// of the answer as a TLS record of an invalid content type.
pub(crate) fn answered_in_plain_http(e: &ureq::Error) -> bool {
    let inner = match e {
        ureq::Error::Io(io) => io.get_ref().map(|i| format!("{i:?}")),
        ureq::Error::Rustls(r) => Some(format!("{r:?}")),
        _ => None,
    };
    inner.is_some_and(|d| d.contains("InvalidContentType"))
}

/// A transport failure, said briefly.
pub(crate) fn transport_message(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        ureq::Error::HostNotFound => "host not found".to_string(),
        other => other.to_string(),
    }
}

/// Maps a non-2xx status to its [`ClientError`].
fn status_error(request: String, status: u16, attempts: u32, body: &[u8]) -> ClientError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let cut: String = text.chars().take(200).collect();
            if cut.is_empty() {
                "(no body)".to_string()
            } else {
                cut
            }
        });
    match status {
        401 => ClientError::Unauthenticated { request },
        403 => ClientError::Forbidden { request, message },
        404 => ClientError::NotFound { request, message },
        413 => ClientError::TooLarge { request },
        422 => {
            let mut errors = std::collections::BTreeMap::new();
            if let Some(Value::Object(map)) = parsed.as_ref().and_then(|v| v.get("errors")) {
                for (field, msgs) in map {
                    let list = match msgs {
                        Value::Array(items) => items
                            .iter()
                            .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_string))
                            .collect(),
                        Value::String(s) => vec![s.clone()],
                        other => vec![other.to_string()],
                    };
                    errors.insert(field.clone(), list);
                }
            }
            ClientError::Validation {
                request,
                message,
                errors,
            }
        }
        429 => ClientError::RateLimited { request, attempts },
        _ => ClientError::Status {
            request,
            status,
            attempts,
            message,
        },
    }
}

/// Decodes `{data: X}` or a bare `X`.
fn decode_data<T: DeserializeOwned>(request: &str, bytes: &[u8]) -> Result<T, ClientError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| ClientError::Decode {
        request: request.to_string(),
        message: format!("not JSON: {e}"),
    })?;
    let inner = match value {
        Value::Object(mut map) if map.contains_key("data") => {
            map.remove("data").unwrap_or_default()
        }
        other => other,
    };
    serde_json::from_value(inner).map_err(|e| ClientError::Decode {
        request: request.to_string(),
        message: e.to_string(),
    })
}

/// The bytes of a response's payload: the body itself, or the exact text of `X` when the body is
/// `{"data": X}` (as [`decode_data`] reads it). Only checks that the body is a JSON object: the
/// document's own parse happens once, where it is used.
fn unwrap_data_raw(request: &str, bytes: Vec<u8>) -> Result<Vec<u8>, ClientError> {
    let fields: std::collections::HashMap<String, &serde_json::value::RawValue> =
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            request: request.to_string(),
            message: format!("not a JSON object: {e}"),
        })?;
    match fields.get("data") {
        Some(data) => Ok(data.get().as_bytes().to_vec()),
        None => Ok(bytes),
    }
}

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`), which a query
/// component keeps as they are.
const QUERY_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a query component (RFC 3986 unreserved characters kept).
fn encode(s: &str) -> String {
    utf8_percent_encode(s, QUERY_COMPONENT).to_string()
}

/// The query string of a list request.
fn list_query_string(q: &ListQuery) -> String {
    let mut parts = vec![
        format!("page={}", q.page.max(1)),
        format!("per_page={}", q.per_page.clamp(1, 100)),
    ];
    if let Some(name) = &q.name {
        parts.push(format!("filter%5Bname%5D={}", encode(name)));
    }
    if let Some(enabled) = q.enabled {
        parts.push(format!("filter%5Benabled%5D={enabled}"));
    }
    if let Some(sort) = &q.sort {
        parts.push(format!("sort={}", encode(sort)));
    }
    if let Some(include) = &q.include {
        parts.push(format!("include={}", encode(include)));
    }
    parts.join("&")
}

impl Platform for HttpPlatform {
    fn list_flows(&self, query: &ListQuery) -> Result<Page<Flow>, ClientError> {
        let (label, bytes) =
            self.get(format!("{}/flows?{}", self.api, list_query_string(query)))?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            request: label.clone(),
            message: format!("not JSON: {e}"),
        })?;
        match value {
            Value::Array(_) => {
                let data: Vec<Flow> =
                    serde_json::from_value(value).map_err(|e| ClientError::Decode {
                        request: label,
                        message: e.to_string(),
                    })?;
                let n = data.len() as u64;
                Ok(Page {
                    data,
                    meta: PageMeta {
                        current_page: 1,
                        last_page: 1,
                        per_page: n,
                        total: n,
                    },
                })
            }
            other => {
                let mut map = match other {
                    Value::Object(map) => map,
                    _ => {
                        return Err(ClientError::Decode {
                            request: label,
                            message: "expected {data, meta} or an array".to_string(),
                        });
                    }
                };
                let data = map.remove("data").unwrap_or(Value::Array(Vec::new()));
                let data: Vec<Flow> =
                    serde_json::from_value(data).map_err(|e| ClientError::Decode {
                        request: label.clone(),
                        message: format!("data: {e}"),
                    })?;
                let meta = match map.remove("meta") {
                    Some(meta) => {
                        serde_json::from_value(meta).map_err(|e| ClientError::Decode {
                            request: label,
                            message: format!("meta: {e}"),
                        })?
                    }
                    None => {
                        let n = data.len() as u64;
                        PageMeta {
                            current_page: 1,
                            last_page: 1,
                            per_page: n,
                            total: n,
                        }
                    }
                };
                Ok(Page { data, meta })
            }
        }
    }

    fn show_flow(&self, id: FlowId) -> Result<Flow, ClientError> {
        self.get_json(format!("{}/flows/{id}?include=versions", self.api))
    }

    fn export_flow(&self, id: FlowId) -> Result<Value, ClientError> {
        // Parsed from the payload's own bytes: decoding `{"data": …}` into a value and then
        // into the document would build a large document twice.
        let bytes = self.export_flow_bytes(id)?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            request: format!(
                "POST {}",
                crate::redacted(&format!("{}/flows/export", self.api))
            ),
            message: format!("not JSON: {e}"),
        })
    }

    fn export_flow_bytes(&self, id: FlowId) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}/flows/export", self.api);
        let label = format!("POST {}", crate::redacted(&url));
        let bytes = self.send(Outgoing {
            method: http::Method::POST,
            url,
            body: Some(serde_json::to_vec(&serde_json::json!({ "flow_id": id })).expect("JSON")),
            idempotency_key: None,
            safety: Safety::Idempotent,
        })?;
        unwrap_data_raw(&label, bytes)
    }

    fn import_flow(&self, request: &ImportRequest) -> Result<Flow, ClientError> {
        let url = format!("{}/flows/import", self.api);
        let label = format!("POST {}", crate::redacted(&url));
        let body = import_body_bytes(
            &request.document,
            request.as_marketplace,
            self.options.import_encoding,
        );
        let bytes = self.send(Outgoing {
            method: http::Method::POST,
            url,
            body: Some(body),
            idempotency_key: request.idempotency_key.as_deref(),
            safety: if request.idempotency_key.is_some() {
                Safety::KeyedImport
            } else {
                Safety::Import
            },
        })?;
        decode_data(&label, &bytes)
    }

    fn list_versions(&self, flow: FlowId) -> Result<Vec<FlowVersion>, ClientError> {
        // The index is paginated: walk every page, 100 at a time (a platform that does not
        // paginate answers the whole list without `meta`).
        let mut all: Vec<FlowVersion> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut announced: Option<u64> = None;
        let mut page = 1u64;
        loop {
            let (label, bytes) = self.get(format!(
                "{}/flows/{flow}/versions?page={page}&per_page=100",
                self.api
            ))?;
            let value: Value = serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
                request: label.clone(),
                message: format!("not JSON: {e}"),
            })?;
            let last_page = value
                .get("meta")
                .and_then(|m| m.get("last_page"))
                .and_then(Value::as_u64)
                .unwrap_or(page);
            let data = match value {
                Value::Object(mut map) if map.contains_key("data") => {
                    map.remove("data").unwrap_or_default()
                }
                other => other,
            };
            let items: Vec<FlowVersion> =
                serde_json::from_value(data).map_err(|e| ClientError::Decode {
                    request: label.clone(),
                    message: e.to_string(),
                })?;
            let last_page = *announced.get_or_insert(last_page);
            if last_page > crate::MAX_LIST_PAGES {
                return Err(ClientError::Paging {
                    request: label,
                    fault: crate::PagingFault::TooManyPages {
                        listing: crate::Listing::Versions,
                        announced: last_page,
                        limit: crate::MAX_LIST_PAGES,
                    },
                });
            }
            let empty = items.is_empty();
            let before = all.len();
            for item in items {
                if seen.insert(item.id) {
                    all.push(item);
                }
            }
            if !empty && all.len() == before {
                return Err(ClientError::Paging {
                    request: label,
                    fault: crate::PagingFault::Repeats {
                        listing: crate::Listing::Versions,
                        page,
                    },
                });
            }
            if empty || page >= last_page {
                return Ok(all);
            }
            page += 1;
        }
    }

    fn deploy_version(
        &self,
        flow: FlowId,
        version: VersionId,
        deployed_at: &str,
    ) -> Result<FlowVersion, ClientError> {
        self.send_json(
            http::Method::PUT,
            format!("{}/flows/{flow}/versions/{version}", self.api),
            &serde_json::json!({ "deployed_at": deployed_at }),
        )
    }

    fn update_flow(&self, flow: FlowId, update: &FlowUpdate) -> Result<Flow, ClientError> {
        let body = serde_json::json!({ "flow": update });
        self.send_json(
            http::Method::PUT,
            format!("{}/flows/{flow}", self.api),
            &body,
        )
    }

    fn delete_flow(&self, flow: FlowId) -> Result<(), ClientError> {
        self.send_no_content(
            http::Method::DELETE,
            format!("{}/flows/{flow}", self.api),
            None,
        )
    }

    fn show_flow_settings(&self, flow: FlowId) -> Result<FlowSettings, ClientError> {
        self.get_json(format!("{}/flows/{flow}", self.api))
    }

    fn update_flow_settings(
        &self,
        flow: FlowId,
        update: &FlowSettingsUpdate,
    ) -> Result<FlowSettings, ClientError> {
        self.send_json(
            http::Method::PUT,
            format!("{}/flows/{flow}", self.api),
            &update.to_body(),
        )
    }

    fn set_layout_direction(&self, flow: FlowId, direction: &str) -> Result<(), ClientError> {
        self.send_no_content(
            http::Method::PATCH,
            format!("{}/flows/{flow}/layout-direction", self.api),
            Some(&serde_json::json!({ "layout_direction": direction })),
        )
    }

    fn list_webhooks(&self, flow: FlowId) -> Result<Vec<Webhook>, ClientError> {
        self.get_json(format!("{}/flows/{flow}/webhooks", self.api))
    }

    fn create_webhook(
        &self,
        flow: FlowId,
        request: &WebhookRequest,
    ) -> Result<Webhook, ClientError> {
        self.send_once(
            http::Method::POST,
            format!("{}/flows/{flow}/webhooks", self.api),
            &request.to_body(),
        )
    }

    fn update_webhook(
        &self,
        flow: FlowId,
        webhook: WebhookId,
        request: &WebhookRequest,
    ) -> Result<Webhook, ClientError> {
        self.send_json(
            http::Method::PUT,
            format!("{}/flows/{flow}/webhooks/{webhook}", self.api),
            &request.to_body(),
        )
    }

    fn delete_webhook(&self, flow: FlowId, webhook: WebhookId) -> Result<(), ClientError> {
        self.send_no_content(
            http::Method::DELETE,
            format!("{}/flows/{flow}/webhooks/{webhook}", self.api),
            None,
        )
    }

    fn list_callbacks(&self, flow: FlowId) -> Result<Vec<Callback>, ClientError> {
        self.get_json(format!("{}/flows/{flow}/callbacks", self.api))
    }

    fn create_callback(
        &self,
        flow: FlowId,
        request: &CallbackRequest,
    ) -> Result<Callback, ClientError> {
        self.send_once(
            http::Method::POST,
            format!("{}/flows/{flow}/callbacks", self.api),
            &serde_json::to_value(request).expect("a request serialises"),
        )
    }

    fn update_callback(
        &self,
        flow: FlowId,
        callback: CallbackId,
        request: &CallbackRequest,
    ) -> Result<Callback, ClientError> {
        self.send_json(
            http::Method::PUT,
            format!("{}/flows/{flow}/callbacks/{callback}", self.api),
            &serde_json::to_value(request).expect("a request serialises"),
        )
    }

    fn delete_callback(&self, flow: FlowId, callback: CallbackId) -> Result<(), ClientError> {
        self.send_no_content(
            http::Method::DELETE,
            format!("{}/flows/{flow}/callbacks/{callback}", self.api),
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query_components_are_percent_encoded_except_unreserved_characters() {
        let query = ListQuery {
            page: 0,
            per_page: 500,
            name: Some("Orders & Co/Ä-x_1.~ =?".to_string()),
            enabled: Some(true),
            sort: Some("-id".to_string()),
            include: None,
        };
        assert_eq!(
            list_query_string(&query),
            "page=1&per_page=100&filter%5Bname%5D=Orders%20%26%20Co%2F%C3%84-x_1.~%20%3D%3F\
             &filter%5Benabled%5D=true&sort=-id"
        );
    }

    #[test]
    fn export_bytes_are_the_payload_exactly_as_sent() {
        let doc = br#"{"metadata":{"n":1.50},"flow":{"name":"A"}}"#;
        assert_eq!(unwrap_data_raw("r", doc.to_vec()).unwrap(), doc.to_vec());
        let wrapped = br#"{"data": {"metadata":{"n":1.50},"flow":{"name":"A"}} }"#;
        assert_eq!(
            unwrap_data_raw("r", wrapped.to_vec()).unwrap(),
            doc.to_vec()
        );
        let err = unwrap_data_raw("POST /api/v1/flows/export", b"[1]".to_vec()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("POST /api/v1/flows/export: unexpected response: not a JSON object"),
            "{err}"
        );
    }
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::Mutex;

    /// One request as the scripted server saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        line: String,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// A scripted response: status, extra headers, body.
    type Scripted = (u16, Vec<(&'static str, String)>, String);

    /// Serves the scripted responses `(status, extra headers, body)` in order, one per connection,
    /// recording the requests.
    fn serve(script: Vec<Scripted>) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for (status, headers, body) in script {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut hdrs = Vec::new();
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    let h = h.trim_end().to_string();
                    if h.is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap();
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap();
                    }
                    hdrs.push((k.to_string(), v.trim().to_string()));
                }
                let mut buf = vec![0; len];
                reader.read_exact(&mut buf).unwrap();
                record.lock().unwrap().push(Seen {
                    line: line.trim_end().to_string(),
                    headers: hdrs,
                    body: String::from_utf8(buf).unwrap(),
                });
                let mut stream = reader.into_inner();
                let mut resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                resp.push_str(&body);
                stream.write_all(resp.as_bytes()).unwrap();
            }
        });
        (format!("http://{addr}"), seen)
    }

    /// A client whose sleeps are recorded, not slept, and whose jitter is fixed at 0.5.
    fn client(url: &str, token: &str) -> (HttpPlatform, Arc<Mutex<Vec<Duration>>>) {
        let slept = Arc::new(Mutex::new(Vec::new()));
        let rec = slept.clone();
        let mut options = HttpOptions::new(url, token);
        options.jitter = Arc::new(|| 0.5);
        options.sleep = Arc::new(move |d| rec.lock().unwrap().push(d));
        options.timeout = Duration::from_secs(10);
        (HttpPlatform::new(options).unwrap(), slept)
    }

    fn flow_json(id: u64, name: &str) -> String {
        format!(r#"{{"id":{id},"name":"{name}"}}"#)
    }

    #[test]
    fn a_408_is_retried_other_4xx_are_not() {
        let (url, _) = serve(vec![
            (408, vec![], r#"{"message":"slow"}"#.into()),
            (200, vec![], format!(r#"{{"data":{}}}"#, flow_json(7, "A"))),
        ]);
        let (c, _) = client(&url, "k");
        assert_eq!(c.show_flow(7).unwrap().id, 7);
        assert_eq!(c.retries(), 1);
        // One scripted answer: a retry would find no server answering.
        let (url, seen) = serve(vec![(400, vec![], r#"{"message":"bad"}"#.into())]);
        let (c, _) = client(&url, "k");
        let err = c.show_flow(7).unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Status {
                    status: 400,
                    attempts: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!((c.retries(), seen.lock().unwrap().len()), (0, 1));
    }

    #[test]
    fn tls_to_a_plain_http_server_is_not_retried() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 512];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
            }
        });
        let (c, slept) = client(&format!("https://{addr}"), "k");
        let err = c.show_flow(7).unwrap_err();
        assert!(matches!(err, ClientError::NotTls { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("the server answered in plain HTTP, not TLS"),
            "{err}"
        );
        assert_eq!(connections.load(Ordering::SeqCst), 1);
        assert!(slept.lock().unwrap().is_empty());
    }

    #[test]
    fn transport_failures_that_cannot_heal_are_told_apart() {
        assert!(heals(&ureq::Error::ConnectionFailed));
        assert!(heals(&ureq::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset
        ))));
        assert!(!heals(&ureq::Error::Io(std::io::Error::from(
            std::io::ErrorKind::InvalidData
        ))));
        assert!(!heals(&ureq::Error::Tls("certificate refused")));
        assert!(!heals(&ureq::Error::BadUri("x".into())));
    }

    #[test]
    fn retries_503_then_succeeds_with_bearer_and_backoff() {
        let (url, seen) = serve(vec![
            (503, vec![], r#"{"message":"busy"}"#.into()),
            (503, vec![], r#"{"message":"busy"}"#.into()),
            (200, vec![], format!(r#"{{"data":{}}}"#, flow_json(7, "A"))),
        ]);
        let (c, slept) = client(&url, "sekrit");
        let flow = c.show_flow(7).unwrap();
        assert_eq!(flow.id, 7);
        assert_eq!(c.retries(), 2);
        // base 250 ms, doubled, times the fixed jitter 0.5.
        assert_eq!(
            *slept.lock().unwrap(),
            vec![Duration::from_millis(125), Duration::from_millis(250)]
        );
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[2].line,
            "GET /api/v1/flows/7?include=versions HTTP/1.1"
        );
        assert_eq!(seen[2].header("authorization"), Some("Bearer sekrit"));
        assert_eq!(seen[2].header("accept"), Some("application/json"));
    }

    #[test]
    fn retry_after_is_honoured() {
        let (url, _) = serve(vec![
            (429, vec![("Retry-After", "3".into())], "{}".into()),
            (200, vec![], flow_json(1, "A")),
        ]);
        let (c, slept) = client(&url, "t");
        assert_eq!(c.show_flow(1).unwrap().name, "A");
        assert_eq!(*slept.lock().unwrap(), vec![Duration::from_secs(3)]);
    }

    #[test]
    fn attempts_are_bounded() {
        let (url, seen) = serve(vec![(502, vec![], "bad gateway".into()); 3]);
        let (mut c, _) = client(&url, "t");
        c.options.max_attempts = 3;
        let err = c.export_flow(5).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("POST {url}/api/v1/flows/export: HTTP 502 after 3 attempts: bad gateway")
        );
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert_eq!(c.retries(), 2);
        assert_eq!(seen.lock().unwrap()[0].body, r#"{"flow_id":5}"#);
    }

    #[test]
    fn unauthenticated_message_omits_the_token() {
        let (url, _) = serve(vec![(
            401,
            vec![],
            r#"{"message":"Unauthenticated."}"#.into(),
        )]);
        let (c, _) = client(&url, "very-secret-token");
        let err = c.show_flow(1).unwrap_err();
        assert!(matches!(err, ClientError::Unauthenticated { .. }));
        let text = err.to_string();
        assert!(text.contains("authentication failed"), "{text}");
        assert!(!text.contains("very-secret-token"), "{text}");
        let debug = format!("{c:?}");
        assert!(!debug.contains("very-secret-token"), "{debug}");
        assert!(debug.contains(MASK), "{debug}");
    }

    #[test]
    fn validation_errors_are_surfaced() {
        let body = r#"{"message":"The given data was invalid.","errors":{"flow":["The flow field is required."]}}"#;
        let (url, _) = serve(vec![(422, vec![], body.into())]);
        let (c, _) = client(&url, "t");
        let err = c
            .import_flow(&ImportRequest {
                document: serde_json::json!({"metadata": {}}),
                as_marketplace: false,
                idempotency_key: None,
            })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "POST {url}/api/v1/flows/import: rejected (422): The given data was invalid.; flow: The flow field is required."
            )
        );
    }

    #[test]
    fn import_sends_key_and_retries_500_only_with_a_key() {
        let (url, seen) = serve(vec![
            (500, vec![], "{}".into()),
            (200, vec![], format!(r#"{{"data":{}}}"#, flow_json(9, "A"))),
            (500, vec![], r#"{"message":"boom"}"#.into()),
        ]);
        let (c, _) = client(&url, "t");
        let doc = serde_json::json!({"metadata": {"flow_name": "A"}, "flow": {"name": "A"}});
        let keyed = ImportRequest {
            document: doc.clone(),
            as_marketplace: true,
            idempotency_key: Some("k1".into()),
        };
        assert_eq!(c.import_flow(&keyed).unwrap().id, 9);
        let unkeyed = ImportRequest {
            document: doc,
            as_marketplace: false,
            idempotency_key: None,
        };
        let err = c.import_flow(&unkeyed).unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Status {
                    status: 500,
                    attempts: 1,
                    ..
                }
            ),
            "{err}"
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].header("idempotency-key"), Some("k1"));
        assert_eq!(
            seen[1].body,
            r#"{"metadata":{"flow_name":"A"},"flow":{"name":"A"},"as_marketplace":true}"#
        );
        assert_eq!(seen[2].header("idempotency-key"), None);
    }

    #[test]
    fn string_encoding_sends_flow_and_metadata_as_strings() {
        let (url, seen) = serve(vec![(200, vec![], flow_json(3, "A"))]);
        let mut options = HttpOptions::new(url, "t");
        options.import_encoding = ImportEncoding::String;
        let c = HttpPlatform::new(options).unwrap();
        c.import_flow(&ImportRequest {
            document: serde_json::json!({"metadata": {"a": 1}, "flow": {"name": "A"}, "systems": []}),
            as_marketplace: false,
            idempotency_key: None,
        })
        .unwrap();
        assert_eq!(
            seen.lock().unwrap()[0].body,
            r#"{"metadata":"{\"a\":1}","flow":"{\"name\":\"A\"}","systems":[]}"#
        );
    }

    #[test]
    fn connection_errors_are_retried_for_reads_but_not_imports() {
        // A port nobody listens on: bind, learn the port, drop.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let (mut c, slept) = client(&url, "t");
        c.options.max_attempts = 4;
        let err = c.show_flow(1).unwrap_err();
        assert!(
            matches!(err, ClientError::Transport { attempts: 4, .. }),
            "{err}"
        );
        assert_eq!(slept.lock().unwrap().len(), 3);
        let err = c
            .import_flow(&ImportRequest {
                document: serde_json::json!({}),
                as_marketplace: false,
                idempotency_key: Some("k".into()),
            })
            .unwrap_err();
        assert!(
            matches!(err, ClientError::Transport { attempts: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn pagination_walks_every_page_with_per_page_100() {
        let page = |n: u64, last: u64, ids: &[u64]| {
            let data: Vec<String> = ids.iter().map(|i| flow_json(*i, "F")).collect();
            format!(
                r#"{{"data":[{}],"meta":{{"current_page":{n},"last_page":{last},"per_page":100,"total":3}},"links":{{}}}}"#,
                data.join(",")
            )
        };
        let (url, seen) = serve(vec![
            (200, vec![], page(1, 2, &[1, 2])),
            (200, vec![], page(2, 2, &[3])),
        ]);
        let (c, _) = client(&url, "t");
        let query = ListQuery {
            name: Some("Orders & more".into()),
            ..ListQuery::default()
        };
        let flows = crate::list_all(&c, &query).unwrap();
        assert_eq!(
            flows.iter().map(|f| f.id).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[1].line,
            "GET /api/v1/flows?page=2&per_page=100&filter%5Bname%5D=Orders%20%26%20more HTTP/1.1"
        );
    }

    #[test]
    fn request_log_masks_the_key() {
        let (url, _) = serve(vec![(200, vec![], flow_json(1, "A"))]);
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let rec = lines.clone();
        let mut options = HttpOptions::new(url, "tok-123");
        options.log = Some(Arc::new(move |l: &str| {
            rec.lock().unwrap().push(l.to_string())
        }));
        HttpPlatform::new(options).unwrap().show_flow(1).unwrap();
        let lines = lines.lock().unwrap();
        assert!(lines[0].ends_with("Authorization: ••••"), "{lines:?}");
        assert!(lines.iter().all(|l| !l.contains("tok-123")));
    }

    /// A server that answers every request with `answer(path)`, counting the requests; a
    /// response of `None` streams an endless body (no length, 1 MiB at a time) until the client
    /// hangs up.
    fn serve_forever(
        answer: impl Fn(&str) -> Option<String> + Send + 'static,
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = count.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim_end().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut buf = vec![0; len];
                let _ = reader.read_exact(&mut buf);
                counted.fetch_add(1, Ordering::SeqCst);
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                let mut stream = reader.into_inner();
                match answer(&path) {
                    Some(body) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    None => {
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                              Connection: close\r\n\r\n{\"data\":[",
                        );
                        let chunk = vec![b'1'; 1024 * 1024];
                        while stream.write_all(&chunk).is_ok() {}
                    }
                }
            }
        });
        (format!("http://{addr}"), count)
    }

    /// A page of flows `ids` with the `meta` given.
    fn page_json(ids: std::ops::Range<u64>, current: u64, last: u64, total: u64) -> String {
        let data: Vec<String> = ids.map(|i| flow_json(i, &format!("f{i}"))).collect();
        format!(
            r#"{{"data":[{}],"meta":{{"current_page":{current},"last_page":{last},"per_page":100,"total":{total}}}}}"#,
            data.join(",")
        )
    }

    fn page_of(path: &str) -> u64 {
        path.split(['?', '&'])
            .find_map(|p| p.strip_prefix("page="))
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
    }

    #[test]
    fn an_export_response_is_read_within_the_document_bound_and_not_retried() {
        let (url, count) = serve_forever(|_| None);
        let (c, slept) = client(&url, "k");
        let err = c.export_flow_bytes(7).unwrap_err();
        assert!(
            matches!(&err, ClientError::ResponseTooLarge { limit, .. }
                if *limit == DEFAULT_MAX_RESPONSE_BYTES),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "POST {url}/api/v1/flows/export: the response is larger than the bound of \
                 {DEFAULT_MAX_RESPONSE_BYTES} bytes; not read on"
            )
        );
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert!(slept.lock().unwrap().is_empty());
        const { assert!(DEFAULT_MAX_RESPONSE_BYTES < 17 * 1024 * 1024) };
    }

    #[test]
    fn a_listing_that_repeats_a_page_is_stopped_naming_the_request() {
        // Every page is page 1 again, whatever was asked, with a last page of 10^9.
        let (url, count) = serve_forever(|_| Some(page_json(1..101, 1, 3, 300)));
        let (c, _) = client(&url, "k");
        let err = crate::list_all(&c, &ListQuery::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "GET /api/v1/flows?page=2&per_page=100: inconsistent paging: asked for page 2, got \
             page 1; stopped"
        );
        // A caller decides on the fault itself, not on its words.
        assert!(
            matches!(
                &err,
                ClientError::Paging {
                    fault: crate::PagingFault::WrongPage { asked: 2, got: 1 },
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(count.load(Ordering::SeqCst), 2);
        // The page number follows the request, the flows do not.
        let (url, count) = serve_forever(|p| Some(page_json(1..101, page_of(p), 3, 300)));
        let (c, _) = client(&url, "k");
        let err = crate::list_all(&c, &ListQuery::default()).unwrap_err();
        assert!(
            matches!(
                &err,
                ClientError::Paging {
                    fault: crate::PagingFault::Repeats {
                        listing: crate::Listing::Flows,
                        page: 2
                    },
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .ends_with("page 2 repeats flows already listed; stopped"),
            "{err}"
        );
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_listing_stops_at_the_pages_the_first_page_announced() {
        // A last page of 10^9 for 300 flows: the listing stops at the 300 flows.
        let fresh = |p: &str, last: u64, total: u64| {
            let n = page_of(p);
            Some(page_json(n * 100..n * 100 + 100, n, last, total))
        };
        let (url, count) = serve_forever(move |p| fresh(p, 1_000_000_000, 300));
        let (c, _) = client(&url, "k");
        let flows = crate::list_all(&c, &ListQuery::default()).unwrap();
        assert_eq!(flows.len(), 300);
        assert_eq!(count.load(Ordering::SeqCst), 3);
        // Announced as 10^11 flows on 10^9 pages: refused at the first page.
        let (url, count) = serve_forever(move |p| fresh(p, 1_000_000_000, 10_u64.pow(11)));
        let (c, _) = client(&url, "k");
        let err = crate::list_all(&c, &ListQuery::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "GET /api/v1/flows?page=1&per_page=100: inconsistent paging: the first page \
             announced 1000000000 pages, more than the 10000 pages of 100 flows read; stopped"
        );
        assert_eq!(count.load(Ordering::SeqCst), 1);
        // Later pages that raise the last page are not followed past the first page's.
        let (url, count) = serve_forever(|p| {
            let n = page_of(p);
            let (last, total) = if n == 1 {
                (2, 200)
            } else {
                (1_000_000_000, 10_u64.pow(11))
            };
            Some(page_json(n * 100..n * 100 + 100, n, last, total))
        });
        let (c, _) = client(&url, "k");
        let flows = crate::list_all(&c, &ListQuery::default()).unwrap();
        assert_eq!(flows.len(), 200);
        assert_eq!(count.load(Ordering::SeqCst), 2);
        // Versions: a page that repeats is refused too.
        let (url, count) = serve_forever(|p| {
            Some(format!(
                r#"{{"data":[{{"id":1,"flow_id":7,"iteration":1,"status":"Draft","is_deployed":false}}],"meta":{{"last_page":{}}}}}"#,
                if page_of(p) > 0 { 1_000 } else { 0 }
            ))
        });
        let (c, _) = client(&url, "k");
        let err = c.list_versions(7).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("page 2 repeats versions already listed; stopped"),
            "{err}"
        );
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }
}
