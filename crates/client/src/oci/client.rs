//! [`RegistryClient`]: the OCI distribution API over HTTP, on the same stack (ureq + rustls) and
//! retry rules as the platform client.
//!
//! - Requests go to `https://HOST/v2/…`, or `http://` with [`RegistryOptions::plain_http`]
//!   (never chosen automatically, not even for `localhost`).
//! - Authentication answers the registry's challenge: a `401` with `WWW-Authenticate: Basic`
//!   is retried with the credentials; `WWW-Authenticate: Bearer realm=…,service=…,scope=…`
//!   fetches a token from the realm (with the credentials as basic auth when there are any,
//!   anonymously otherwise) and retries with it. Credentials are never printed: `Debug` masks
//!   the password and no error or log line carries it or a token.
//! - `408`, `429`, `5xx` and connection failures are retried with exponential backoff and full
//!   jitter (`Retry-After` in seconds honoured), at most [`RegistryOptions::max_attempts`]
//!   attempts. What cannot heal is not retried: other 4xx, and failures of TLS or the protocol
//!   ([`OciError::Protocol`]); a registry answering TLS in plain HTTP is [`OciError::NotTls`].
//!   A blob upload is retried as a whole (a new upload session), since a failed `PUT` may have
//!   spent its session; a failed download starts over.
//! - Timeouts: connecting, and an idle timeout on every read and write
//!   ([`RegistryOptions::idle_timeout`]) — a transfer of any size may take as long as it needs
//!   while bytes move.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use ureq::http;

use super::{AuthFailure, OciError, Reference};
use crate::http::{
    JitterFn, LogFn, MASK, SleepFn, answered_in_plain_http, backoff_delay, default_jitter, heals,
    retry_after, transport_message,
};

/// Environment variable holding the registry user name.
pub const USER_ENV: &str = "FLOWPACK_REGISTRY_USER";
/// Environment variable holding the registry password or token.
pub const PASSWORD_ENV: &str = "FLOWPACK_REGISTRY_PASSWORD";

/// Largest manifest accepted (the distribution spec's recommended limit).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

/// A registry user name and password (or token). `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    password: String,
}

impl Credentials {
    /// Credentials from a user name and password.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }

    /// Credentials from `FLOWPACK_REGISTRY_USER` and `FLOWPACK_REGISTRY_PASSWORD`; `None` when
    /// neither is set, an error when only one is.
    pub fn from_env() -> Result<Option<Credentials>, OciError> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        match (get(USER_ENV), get(PASSWORD_ENV)) {
            (None, None) => Ok(None),
            (Some(user), Some(password)) => Ok(Some(Credentials::new(user, password))),
            (Some(_), None) => Err(OciError::Config {
                reason: format!("{USER_ENV} is set but {PASSWORD_ENV} is not"),
            }),
            (None, Some(_)) => Err(OciError::Config {
                reason: format!("{PASSWORD_ENV} is set but {USER_ENV} is not"),
            }),
        }
    }

    fn basic(&self) -> String {
        format!(
            "Basic {}",
            base64(format!("{}:{}", self.user, self.password).as_bytes())
        )
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &MASK)
            .finish()
    }
}

/// How a [`RegistryClient`] connects, authenticates, times out and retries.
#[derive(Clone)]
#[non_exhaustive]
pub struct RegistryOptions {
    /// Speak `http://` instead of `https://` (local test registries only).
    pub plain_http: bool,
    /// Credentials for basic auth or the token flow; anonymous without.
    pub credentials: Option<Credentials>,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Longest wait for any one read or write: a stalled transfer fails after this, a slow
    /// but moving one never does.
    pub idle_timeout: Duration,
    /// Attempts per request, the first included (at least 1).
    pub max_attempts: u32,
    /// The backoff before the second attempt; doubled for each further one.
    pub base_delay: Duration,
    /// The backoff never exceeds this (before jitter).
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is cut to it.
    pub max_retry_after: Duration,
    /// The jitter source: `[0, 1)`.
    pub jitter: JitterFn,
    /// The sleep between attempts.
    pub sleep: SleepFn,
    /// The request log, if any (no credentials or tokens in it).
    pub log: Option<LogFn>,
    /// Longest time the client's requests may take together, counted from the client's
    /// creation: retries, waits and transfers included. A registry that trickles bytes, or
    /// stalls between retries, fails with [`OciError::Deadline`] once it has passed. `None`:
    /// no overall limit (the idle timeout still applies). Default [`DEFAULT_DEADLINE`].
    pub deadline: Option<Duration>,
}

/// The default [`RegistryOptions::deadline`]: 10 minutes.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(600);

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions::new()
    }
}

impl RegistryOptions {
    /// Defaults: https, anonymous, 10 s connect, 60 s idle, 6 attempts, backoff from 250 ms up
    /// to 8 s, `Retry-After` up to 60 s.
    pub fn new() -> RegistryOptions {
        RegistryOptions {
            plain_http: false,
            credentials: None,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            jitter: default_jitter(),
            sleep: Arc::new(std::thread::sleep),
            log: None,
            deadline: Some(DEFAULT_DEADLINE),
        }
    }
}

impl fmt::Debug for RegistryOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryOptions")
            .field("plain_http", &self.plain_http)
            .field("credentials", &self.credentials)
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// What the client asks a token for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read only.
    Pull,
    /// Read and write.
    Push,
}

/// A request body.
#[derive(Clone, Copy)]
enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    File(&'a File, u64),
}

struct Call<'a> {
    method: http::Method,
    url: String,
    accept: Option<&'a str>,
    content_type: Option<&'a str>,
    body: Body<'a>,
    /// Retry 429/5xx/transport failures here; `false` leaves it to the caller.
    retry: bool,
    /// `Some`: send exactly this `Authorization` (the token endpoint), no challenge handling.
    fixed_auth: Option<Option<String>>,
}

impl<'a> Call<'a> {
    fn new(method: http::Method, url: String) -> Call<'a> {
        Call {
            method,
            url,
            accept: None,
            content_type: None,
            body: Body::Empty,
            retry: true,
            fixed_auth: None,
        }
    }
}

/// A manifest as fetched.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The exact bytes.
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of the bytes.
    pub digest: String,
    /// The response's `Content-Type`.
    pub content_type: String,
}

/// A client of one repository of one registry.
pub struct RegistryClient {
    options: RegistryOptions,
    agent: ureq::Agent,
    base: String,
    repository: String,
    access: Access,
    /// The `Authorization` header the last challenge earned.
    auth: Mutex<Option<String>>,
    retries: AtomicU64,
    /// When the client was made: [`RegistryOptions::deadline`] counts from here.
    started: Instant,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base)
            .field("repository", &self.repository)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// A client for `reference`'s repository, asking tokens for `access`.
    pub fn new(reference: &Reference, access: Access, options: RegistryOptions) -> RegistryClient {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(options.connect_timeout))
            .timeout_per_read(Some(options.idle_timeout))
            .timeout_per_write(Some(options.idle_timeout))
            // Blob downloads may redirect to storage elsewhere; ureq drops the Authorization
            // header when it follows one.
            .max_redirects(5)
            .user_agent(concat!("flowpack/", env!("CARGO_PKG_VERSION")))
            .build();
        let scheme = if options.plain_http { "http" } else { "https" };
        RegistryClient {
            agent: ureq::Agent::new_with_config(config),
            base: format!("{scheme}://{}", reference.registry),
            repository: reference.repository.clone(),
            access,
            options,
            auth: Mutex::new(None),
            retries: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// Retries made so far, over all requests.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base, self.repository)
    }

    fn log(&self, line: impl FnOnce() -> String) {
        if let Some(log) = &self.options.log {
            log(&line());
        }
    }

    /// The time left before the overall deadline (`None`: no deadline), or the error saying it
    /// passed during `label`.
    fn remaining(&self, label: &str) -> Result<Option<Duration>, OciError> {
        let Some(deadline) = self.options.deadline else {
            return Ok(None);
        };
        match deadline.checked_sub(self.started.elapsed()) {
            Some(left) if !left.is_zero() => Ok(Some(left)),
            _ => Err(OciError::Deadline {
                request: label.to_string(),
                seconds: deadline.as_secs_f64(),
            }),
        }
    }

    fn wait(&self, attempt: u32, retry_after: Option<Duration>, label: &str, why: &str) {
        let delay = match retry_after {
            Some(d) => d.min(self.options.max_retry_after),
            None => backoff_delay(
                self.options.base_delay,
                self.options.max_delay,
                &self.options.jitter,
                attempt,
            ),
        };
        // Never sleeps past the deadline: the next attempt then fails at once with it.
        let delay = match self.remaining(label) {
            Ok(Some(left)) => delay.min(left),
            _ => delay,
        };
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.log(|| format!("! {label}: {why}; retrying in {} ms", delay.as_millis()));
        (self.options.sleep)(delay);
    }

    /// Runs `request` within the time left before the deadline.
    fn run<B: ureq::AsSendBody>(
        &self,
        request: http::Request<B>,
        label: &str,
    ) -> Result<Result<http::Response<ureq::Body>, ureq::Error>, OciError> {
        let Some(left) = self.remaining(label)? else {
            return Ok(self.agent.run(request));
        };
        let request = self
            .agent
            .configure_request(request)
            .timeout_global(Some(left))
            .build();
        Ok(self.agent.run(request))
    }

    /// One attempt of `call` with the `Authorization` value `auth`: the request built and sent
    /// (an upload rewound first). `Err` when it could not be built; the transport's answer
    /// otherwise.
    fn send(
        &self,
        call: &Call<'_>,
        label: &str,
        attempt: u32,
        max: u32,
        auth: Option<&str>,
    ) -> Result<Result<http::Response<ureq::Body>, ureq::Error>, OciError> {
        let mut builder = http::Request::builder()
            .method(call.method.clone())
            .uri(&call.url);
        if let Some(a) = auth {
            builder = builder.header("Authorization", a);
        }
        if let Some(a) = call.accept {
            builder = builder.header("Accept", a);
        }
        if let Some(c) = call.content_type {
            builder = builder.header("Content-Type", c);
        }
        self.log(|| {
            format!(
                "> {label} (attempt {attempt}/{max}){}",
                if auth.is_some() {
                    format!(" Authorization: {MASK}")
                } else {
                    String::new()
                }
            )
        });
        let built = |e: http::Error| OciError::Transport {
            request: label.to_string(),
            attempts: attempt,
            message: format!("could not build the request: {e}"),
        };
        Ok(match call.body {
            Body::Empty => {
                if call.method != http::Method::GET && call.method != http::Method::HEAD {
                    builder = builder.header("Content-Length", "0");
                }
                self.run(builder.body(()).map_err(built)?, label)?
            }
            Body::Bytes(b) => self.run(builder.body(b).map_err(built)?, label)?,
            Body::File(f, len) => {
                let mut reader = f;
                reader
                    .seek(SeekFrom::Start(0))
                    .map_err(|e| OciError::Transport {
                        request: label.to_string(),
                        attempts: attempt,
                        message: format!("cannot rewind the upload: {e}"),
                    })?;
                let request = builder
                    .header("Content-Length", len)
                    .body(ureq::SendBody::from_reader(&mut reader))
                    .map_err(built)?;
                self.run(request, label)?
            }
        })
    }

    /// Sends `call`, answering auth challenges and retrying; returns the first 2xx response.
    fn call(&self, call: &Call<'_>) -> Result<http::Response<ureq::Body>, OciError> {
        let label = format!("{} {}", call.method, strip_query(&call.url));
        let max = if call.retry {
            self.options.max_attempts.max(1)
        } else {
            1
        };
        let mut attempt = 0u32;
        let mut challenges = 0u32;
        loop {
            attempt += 1;
            let auth = match &call.fixed_auth {
                Some(a) => a.clone(),
                None => self.auth.lock().expect("auth lock").clone(),
            };
            let outcome = self.send(call, &label, attempt, max, auth.as_deref())?;
            let (wait_for, why) = match outcome {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    self.log(|| format!("< {label} {status}"));
                    if (200..300).contains(&status) {
                        return Ok(response);
                    }
                    if status == 401 && call.fixed_auth.is_none() && challenges < 2 {
                        challenges += 1;
                        attempt -= 1;
                        self.answer_challenge(&label, &response, auth.as_deref())?;
                        continue;
                    }
                    let retry_after = retry_after(response.headers());
                    let text = response
                        .body_mut()
                        .with_config()
                        .limit(64 * 1024)
                        .read_to_vec()
                        .unwrap_or_default();
                    let retryable = status == 408 || status == 429 || (500..600).contains(&status);
                    if !retryable || attempt >= max {
                        return Err(status_error(label, status, attempt, &text, auth.is_some()));
                    }
                    (retry_after, format!("HTTP {status}"))
                }
                Err(e) => {
                    self.remaining(&label)?;
                    let message = transport_message(&e);
                    if answered_in_plain_http(&e) {
                        return Err(OciError::NotTls {
                            request: label,
                            message,
                        });
                    }
                    if !heals(&e) {
                        return Err(OciError::Protocol {
                            request: label,
                            reason: message,
                        });
                    }
                    if attempt >= max {
                        return Err(OciError::Transport {
                            request: label,
                            attempts: attempt,
                            message,
                        });
                    }
                    (None, message)
                }
            };
            self.wait(attempt, wait_for, &label, &why);
        }
    }

    /// Acts on a `401`: sets the `Authorization` to retry with, or says why it cannot.
    fn answer_challenge(
        &self,
        label: &str,
        response: &http::Response<ureq::Body>,
        sent: Option<&str>,
    ) -> Result<(), OciError> {
        let header = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let unauthenticated = |reason: AuthFailure| OciError::Unauthenticated {
            request: label.to_string(),
            reason,
        };
        let no_credentials = || unauthenticated(AuthFailure::NoCredentials);
        let refused = || unauthenticated(AuthFailure::CredentialsRefused);
        let challenge = Challenge::parse(header);
        match challenge.scheme.to_ascii_lowercase().as_str() {
            "basic" => {
                let creds = self
                    .options
                    .credentials
                    .as_ref()
                    .ok_or_else(no_credentials)?;
                let basic = creds.basic();
                if sent == Some(basic.as_str()) {
                    return Err(refused());
                }
                *self.auth.lock().expect("auth lock") = Some(basic);
                Ok(())
            }
            "bearer" => {
                let realm = challenge
                    .param("realm")
                    .ok_or_else(|| unauthenticated(AuthFailure::NoRealm))?;
                let default_scope = format!(
                    "repository:{}:{}",
                    self.repository,
                    match self.access {
                        Access::Pull => "pull",
                        Access::Push => "pull,push",
                    }
                );
                let scope = challenge.param("scope").unwrap_or(&default_scope);
                let token = self.fetch_token(label, realm, challenge.param("service"), scope)?;
                let bearer = format!("Bearer {token}");
                if sent == Some(bearer.as_str()) {
                    return Err(if self.options.credentials.is_some() {
                        refused()
                    } else {
                        no_credentials()
                    });
                }
                *self.auth.lock().expect("auth lock") = Some(bearer);
                Ok(())
            }
            "" => Err(unauthenticated(AuthFailure::NoChallenge)),
            other => Err(unauthenticated(AuthFailure::UnsupportedScheme {
                scheme: other.to_string(),
            })),
        }
    }

    /// The token flow: `GET realm?service=…&scope=…`, basic auth when there are credentials.
    fn fetch_token(
        &self,
        label: &str,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, OciError> {
        let mut url = realm.to_string();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        if let Some(service) = service {
            url.push_str(&format!("{sep}service={}", query_encode(service)));
            sep = '&';
        }
        url.push_str(&format!("{sep}scope={}", query_encode(scope)));
        let mut call = Call::new(http::Method::GET, url);
        call.accept = Some("application/json");
        call.fixed_auth = Some(self.options.credentials.as_ref().map(Credentials::basic));
        let response = self.call(&call).map_err(|e| match e {
            OciError::Status {
                status: 401 | 403, ..
            } => OciError::Unauthenticated {
                request: label.to_string(),
                reason: if self.options.credentials.is_some() {
                    AuthFailure::TokenServiceRefused
                } else {
                    AuthFailure::NoCredentials
                },
            },
            other => other,
        })?;
        #[derive(Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let bytes = response
            .into_body()
            .into_with_config()
            .limit(1024 * 1024)
            .read_to_vec()
            .map_err(|e| OciError::Transport {
                request: strip_query(realm).to_string(),
                attempts: 1,
                message: format!("reading the token failed: {e}"),
            })?;
        let parsed: TokenResponse =
            serde_json::from_slice(&bytes).map_err(|e| OciError::Unauthenticated {
                request: label.to_string(),
                reason: AuthFailure::NotAToken {
                    detail: e.to_string(),
                },
            })?;
        parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OciError::Unauthenticated {
                request: label.to_string(),
                reason: AuthFailure::NoToken,
            })
    }

    /// Whether the repository has the blob `digest`.
    pub(crate) fn blob_exists(&self, digest: &str) -> Result<bool, OciError> {
        match self.call(&Call::new(
            http::Method::HEAD,
            self.url(&format!("blobs/{digest}")),
        )) {
            Ok(_) => Ok(true),
            Err(OciError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Uploads a blob from memory (monolithic upload), unless the repository has it.
    pub fn upload_bytes(&self, digest: &str, bytes: &[u8]) -> Result<bool, OciError> {
        self.upload(digest, Body::Bytes(bytes))
    }

    /// Uploads `len` bytes of `file` from its start (monolithic upload, streamed from disk),
    /// unless the repository has the blob. Returns whether it was uploaded.
    pub(crate) fn upload_file(
        &self,
        digest: &str,
        file: &File,
        len: u64,
    ) -> Result<bool, OciError> {
        self.upload(digest, Body::File(file, len))
    }

    /// `HEAD` to skip an existing blob, then `POST …/blobs/uploads/` → `202 Location`, then
    /// `PUT <location>?digest=…` with the bytes. The pair is retried as a whole.
    fn upload(&self, digest: &str, body: Body<'_>) -> Result<bool, OciError> {
        if self.blob_exists(digest)? {
            self.log(|| format!("= blob {digest} already in the repository"));
            return Ok(false);
        }
        let max = self.options.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.upload_once(digest, body) {
                Ok(()) => return Ok(true),
                Err(e) if attempt < max && e.is_transient() => {
                    self.wait(
                        attempt,
                        None,
                        &format!("upload of {digest}"),
                        &e.to_string(),
                    );
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn upload_once(&self, digest: &str, body: Body<'_>) -> Result<(), OciError> {
        let start = self.call(&Call::new(http::Method::POST, self.url("blobs/uploads/")))?;
        let location = start
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| OciError::Protocol {
                request: format!("POST {}", self.url("blobs/uploads/")),
                reason: "the registry started an upload without a Location".into(),
            })?;
        let mut url = self.absolute(location);
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={}", query_encode(digest)));
        let mut put = Call::new(http::Method::PUT, url);
        put.content_type = Some("application/octet-stream");
        put.body = body;
        put.retry = false;
        self.call(&put)?;
        Ok(())
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            format!(
                "{}/v2/{}/blobs/uploads/{location}",
                self.base, self.repository
            )
        }
    }

    /// `PUT …/manifests/<tag>`; returns the manifest's digest (checked against the registry's
    /// `Docker-Content-Digest` when it sends one).
    pub fn put_manifest(
        &self,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String, OciError> {
        let digest = sha256_digest(bytes);
        let mut call = Call::new(http::Method::PUT, self.url(&format!("manifests/{tag}")));
        call.content_type = Some(media_type);
        call.body = Body::Bytes(bytes);
        let response = self.call(&call)?;
        if let Some(theirs) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            && theirs.starts_with("sha256:")
            && theirs != digest
        {
            return Err(OciError::Protocol {
                request: format!("PUT {}", self.url(&format!("manifests/{tag}"))),
                reason: format!(
                    "the registry stored the manifest as {theirs}, not as the {digest} sent \
                     (it rewrote the bytes)"
                ),
            });
        }
        Ok(digest)
    }

    /// `GET …/manifests/<reference>` accepting `accept`; at most [`MAX_MANIFEST_SIZE`] bytes.
    pub fn get_manifest(&self, reference: &str, accept: &str) -> Result<FetchedManifest, OciError> {
        let url = self.url(&format!("manifests/{reference}"));
        let label = format!("GET {url}");
        let max = self.options.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut call = Call::new(http::Method::GET, url.clone());
            call.accept = Some(accept);
            let response = self.call(&call)?;
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            let header_digest = response
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            match response
                .into_body()
                .into_with_config()
                .limit(MAX_MANIFEST_SIZE)
                .read_to_vec()
            {
                Ok(bytes) => {
                    let digest = sha256_digest(&bytes);
                    if let Some(theirs) = header_digest
                        && theirs.starts_with("sha256:")
                        && theirs != digest
                    {
                        return Err(OciError::Digest {
                            what: format!("manifest {reference}"),
                            expected: theirs,
                            actual: digest,
                        });
                    }
                    return Ok(FetchedManifest {
                        bytes,
                        digest,
                        content_type,
                    });
                }
                Err(ureq::Error::BodyExceedsLimit(_)) => {
                    return Err(OciError::TooLarge {
                        what: format!("manifest {reference}"),
                        limit: MAX_MANIFEST_SIZE,
                    });
                }
                Err(e) if attempt < max && heals(&e) => {
                    self.wait(attempt, None, &label, &e.to_string())
                }
                Err(e) if !heals(&e) => {
                    return Err(OciError::Protocol {
                        request: label,
                        reason: format!("reading the manifest failed: {e}"),
                    });
                }
                Err(e) => {
                    return Err(OciError::Transport {
                        request: label,
                        attempts: attempt,
                        message: format!("reading the manifest failed: {e}"),
                    });
                }
            }
        }
    }

    /// Streams the blob `digest` of `size` bytes into `out` (from its start, truncating it),
    /// checking the size and the digest; a broken transfer starts over.
    pub(crate) fn download_blob(
        &self,
        digest: &str,
        size: u64,
        out: &mut File,
    ) -> Result<(), OciError> {
        let url = self.url(&format!("blobs/{digest}"));
        let label = format!("GET {url}");
        let max = self.options.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let io = |error: std::io::Error| OciError::Io {
                path: "the download's temporary file".into(),
                error,
            };
            out.set_len(0).map_err(io)?;
            out.seek(SeekFrom::Start(0)).map_err(io)?;
            let response = self.call(&Call::new(http::Method::GET, url.clone()))?;
            let mut reader = response.into_body().into_with_config().reader();
            let mut hasher = Sha256::new();
            let mut count = 0u64;
            let mut buf = vec![0u8; 256 * 1024];
            let failure = loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break None,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) if self.remaining(&label).is_err() => {
                        return Err(self.remaining(&label).unwrap_err());
                    }
                    // Bytes that do not parse (TLS, chunking) come back the same: no retry.
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        return Err(OciError::Protocol {
                            request: label,
                            reason: format!("the download broke off after {count} bytes: {e}"),
                        });
                    }
                    Err(e) => break Some(e.to_string()),
                };
                count += n as u64;
                self.remaining(&label)?;
                if count > size {
                    return Err(OciError::Digest {
                        what: format!("blob {digest}"),
                        expected: format!("{size} bytes"),
                        actual: "more bytes".into(),
                    });
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(io)?;
            };
            match failure {
                None => {
                    if count != size {
                        return Err(OciError::Digest {
                            what: format!("blob {digest}"),
                            expected: format!("{size} bytes"),
                            actual: format!("{count} bytes"),
                        });
                    }
                    let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
                    if actual != digest {
                        return Err(OciError::Digest {
                            what: format!("blob {digest}"),
                            expected: digest.to_string(),
                            actual,
                        });
                    }
                    out.flush().map_err(io)?;
                    return Ok(());
                }
                Some(why) if attempt < max => self.wait(attempt, None, &label, &why),
                Some(why) => {
                    return Err(OciError::Transport {
                        request: label,
                        attempts: attempt,
                        message: format!("the download broke off after {count} bytes: {why}"),
                    });
                }
            }
        }
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// Percent-encodes everything but unreserved characters.
fn query_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Standard base64 with padding (for `Authorization: Basic`).
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A parsed `WWW-Authenticate` header: the scheme and its `key="value"` parameters.
#[derive(Debug, PartialEq, Eq)]
struct Challenge {
    scheme: String,
    params: Vec<(String, String)>,
}

impl Challenge {
    fn parse(header: &str) -> Challenge {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let mut params = Vec::new();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if key.is_empty() {
                break;
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.peek() {
                    if *c == ',' {
                        break;
                    }
                    value.push(*c);
                    chars.next();
                }
            }
            params.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        Challenge {
            scheme: scheme.to_string(),
            params,
        }
    }

    fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The distribution API's error body: `{"errors": [{"code", "message"}]}`, else the text.
fn registry_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(parsed) = serde_json::from_slice::<Errors>(body)
        && !parsed.errors.is_empty()
    {
        return parsed
            .errors
            .iter()
            .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{}: {}", e.code, e.message),
                (false, true) => e.code.clone(),
                _ => e.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    let text = String::from_utf8_lossy(body);
    let cut: String = text.trim().chars().take(200).collect();
    if cut.is_empty() {
        "(no body)".into()
    } else {
        cut
    }
}

fn status_error(
    request: String,
    status: u16,
    attempts: u32,
    body: &[u8],
    had_auth: bool,
) -> OciError {
    let message = registry_message(body);
    match status {
        401 => OciError::Unauthenticated {
            request,
            reason: if had_auth {
                AuthFailure::RegistryRefused
            } else {
                AuthFailure::NoCredentials
            },
        },
        403 => OciError::Denied { request, message },
        404 => OciError::NotFound { request, message },
        _ => OciError::Status {
            request,
            status,
            attempts,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in cases {
            assert_eq!(base64(input.as_bytes()), want, "{input}");
        }
        assert_eq!(
            Credentials::new("alice", "s3cret").basic(),
            "Basic YWxpY2U6czNjcmV0"
        );
    }

    #[test]
    fn challenges_parse_quoted_commas() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/app:pull,push""#,
        );
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("realm"), Some("https://auth.example.com/token"));
        assert_eq!(c.param("service"), Some("registry.example.com"));
        assert_eq!(c.param("scope"), Some("repository:team/app:pull,push"));
        let c = Challenge::parse(r#"Basic realm="Registry Realm""#);
        assert_eq!(c.scheme, "Basic");
        assert_eq!(c.param("realm"), Some("Registry Realm"));
        assert_eq!(Challenge::parse("").scheme, "");
    }

    #[test]
    fn registry_errors_name_code_and_message() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"9"}}]}"#;
        assert_eq!(registry_message(body), "MANIFEST_UNKNOWN: manifest unknown");
        assert_eq!(registry_message(b""), "(no body)");
        assert_eq!(registry_message(b"nope"), "nope");
    }

    #[test]
    fn credentials_never_show_the_password() {
        let c = Credentials::new("alice", "hunter2-very-secret");
        let mut o = RegistryOptions::new();
        o.credentials = Some(c.clone());
        for text in [format!("{c:?}"), format!("{o:?}")] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("alice"), "{text}");
        }
    }

    #[test]
    fn query_encoding_keeps_unreserved_only() {
        assert_eq!(query_encode("sha256:ab"), "sha256%3Aab");
        assert_eq!(
            query_encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
