//! The sandbox's HTTP server: the Core API flows subset over a [`Store`] (DESIGN §2, §10).
//!
//! Every request passes, in order: the rate limiter (429 + `Retry-After: 1`), the injected
//! latency, the injected faults (500 or 503, before any work, so a failed request wrote
//! nothing), then authentication (401). Bodies over [`BODY_LIMIT`] get 413 (the body is read
//! to its end first, so the client always sees the response).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use flowpack_client::{FlowId, VersionId};
use http_body_util::BodyExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::store::{FlowChanges, Store, StoreError, includes_versions, parse_list_query};

/// The largest request body accepted (8 MB); larger bodies get 413.
pub const BODY_LIMIT: usize = 8 * 1024 * 1024;
/// Bodies are drained (and discarded) up to this size before a 413 is sent; past it the
/// connection is dropped.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// How the server behaves: its API key and the faults it injects.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The API key clients must send in `Authorization` (raw or `Bearer <key>`).
    pub token: String,
    /// Probability (0.0..=1.0) that a request fails with 500 or 503 before any work.
    pub fail_rate: f64,
    /// Delay added to every request.
    pub latency: Duration,
    /// Requests per second allowed (token bucket of that capacity); `None` for no limit.
    pub rate_limit: Option<u32>,
    /// Seed of the fault-injection random numbers.
    pub seed: u64,
}

impl ServerOptions {
    /// No faults, no limit, seed 0.
    pub fn new(token: impl Into<String>) -> ServerOptions {
        ServerOptions {
            token: token.into(),
            fail_rate: 0.0,
            latency: Duration::ZERO,
            rate_limit: None,
            seed: 0,
        }
    }
}

struct Bucket {
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.capacity).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct App {
    store: Arc<Store>,
    options: ServerOptions,
    rng: Mutex<StdRng>,
    bucket: Option<Mutex<Bucket>>,
}

type Shared = Arc<App>;

/// The API's router (all routes under `/api/v1`), ready for `axum::serve`.
pub fn router(store: Arc<Store>, options: ServerOptions) -> Router {
    let bucket = options.rate_limit.map(|n| {
        Mutex::new(Bucket {
            capacity: f64::from(n.max(1)),
            tokens: f64::from(n.max(1)),
            last: Instant::now(),
        })
    });
    let app = Arc::new(App {
        store,
        rng: Mutex::new(StdRng::seed_from_u64(options.seed)),
        options,
        bucket,
    });
    let api = Router::new()
        .route("/flows", get(list_flows))
        .route("/flows/export", post(export_flow))
        .route("/flows/import", post(import_flow))
        .route(
            "/flows/{flow}",
            get(show_flow).put(update_flow).delete(delete_flow),
        )
        .route("/flows/{flow}/versions", get(list_versions))
        .route("/flows/{flow}/versions/{version}", put(deploy_version));
    Router::new()
        .nest("/api/v1", api)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<Store>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(store, options))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A server running on a background thread (tests, and the embedded uses of other crates).
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl RunningServer {
    /// The bound address (the real port when asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the base URL of the server.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for it.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("sandbox server thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Binds `addr` (port 0 picks a free port) and serves on a background thread with its own
/// runtime until [`RunningServer::stop`] or drop.
pub fn spawn(
    addr: SocketAddr,
    store: Arc<Store>,
    options: ServerOptions,
) -> std::io::Result<RunningServer> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("flowpack-sandbox {addr}"))
        .spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener)?;
                serve(listener, store, options, async move {
                    let _ = stopped.await;
                })
                .await
            })
        })?;
    Ok(RunningServer {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "message": text }))).into_response()
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NotFound { message: m } => message(StatusCode::NOT_FOUND, &m),
        StoreError::Validation { message: m, errors } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({ "message": m, "errors": errors })),
        )
            .into_response(),
        other => message(StatusCode::INTERNAL_SERVER_ERROR, &other.to_string()),
    }
}

fn authorised(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let value = value.trim();
    let key = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .unwrap_or(value);
    !token.is_empty() && key == token
}

async fn guard(State(app): State<Shared>, request: Request, next: Next) -> Response {
    match check(&app, request.headers()).await {
        Some(refusal) => {
            // Read the body the refusal does not need, so the connection stays usable (a client
            // reusing it would otherwise see a reset instead of this response).
            let _ = read_body(request.into_body()).await;
            refusal
        }
        None => next.run(request).await,
    }
}

/// The refusal (429, injected 500/503, 401) for this request, if any.
async fn check(app: &App, headers: &HeaderMap) -> Option<Response> {
    if let Some(bucket) = &app.bucket {
        let allowed = bucket.lock().unwrap_or_else(|e| e.into_inner()).take();
        if !allowed {
            let mut r = message(StatusCode::TOO_MANY_REQUESTS, "Too Many Attempts.");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Some(r);
        }
    }
    if !app.options.latency.is_zero() {
        tokio::time::sleep(app.options.latency).await;
    }
    if app.options.fail_rate > 0.0 {
        let fault = {
            let mut rng = app.rng.lock().unwrap_or_else(|e| e.into_inner());
            if rng.random_bool(app.options.fail_rate.min(1.0)) {
                Some(rng.random_bool(0.5))
            } else {
                None
            }
        };
        match fault {
            Some(true) => {
                return Some(message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Server Error (injected by flowpack-sandbox --fail-rate).",
                ));
            }
            Some(false) => {
                return Some(message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable (injected by flowpack-sandbox --fail-rate).",
                ));
            }
            None => {}
        }
    }
    if !authorised(headers, &app.options.token) {
        return Some(message(StatusCode::UNAUTHORIZED, "Unauthenticated."));
    }
    None
}

async fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not found.")
}

/// Runs a store operation on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(store_error),
        Err(e) => Err(message(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("sandbox task failed: {e}"),
        )),
    }
}

/// Reads the whole body; over [`BODY_LIMIT`] → 413 (after draining up to `DRAIN_LIMIT`).
async fn read_body(body: Body) -> Result<Vec<u8>, Response> {
    let mut body = body;
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            message(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the request body: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen <= BODY_LIMIT {
                buf.extend_from_slice(&data);
            } else {
                buf = Vec::new();
                if seen > DRAIN_LIMIT {
                    break;
                }
            }
        }
    }
    if seen > BODY_LIMIT {
        return Err(message(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("The request body is larger than the limit of {BODY_LIMIT} bytes (8 MB)."),
        ));
    }
    Ok(buf)
}

/// Reads a JSON body (an empty body reads as `{}`); invalid JSON is a 422 naming `body`.
async fn json_body(body: Body) -> Result<Value, Response> {
    let bytes = read_body(body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        store_error(StoreError::field(
            "body",
            format!("The request body is not valid JSON: {e}."),
        ))
    })
}

/// A path id; not a number → 404 (boxed: a `Response` is large).
fn parse_id(kind: &str, raw: &str) -> Result<u64, Box<Response>> {
    raw.parse::<u64>().map_err(|_| {
        Box::new(message(
            StatusCode::NOT_FOUND,
            &format!("{kind} {raw} not found."),
        ))
    })
}

fn data<T: serde::Serialize>(value: T) -> Response {
    axum::Json(json!({ "data": value })).into_response()
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
}

fn page_link(base: &str, pairs: &[(String, String)], page: u64, per_page: u64) -> String {
    let mut out: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "page" && k != "per_page")
        .cloned()
        .collect();
    out.push(("page".into(), page.to_string()));
    out.push(("per_page".into(), per_page.to_string()));
    let query = serde_urlencoded::to_string(&out).unwrap_or_default();
    format!("{base}?{query}")
}

async fn list_flows(
    State(app): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let pairs = query_pairs(raw.as_deref());
    let query = match parse_list_query(&pairs) {
        Ok(q) => q,
        Err(e) => return store_error(e),
    };
    let store = app.store.clone();
    let page = match blocking(move || store.list(&query)).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let base = format!("http://{host}/api/v1/flows");
    let m = &page.meta;
    let link = |p: u64| page_link(&base, &pairs, p, m.per_page);
    let links = json!({
        "first": link(1),
        "last": link(m.last_page),
        "prev": if m.current_page > 1 { Value::from(link((m.current_page - 1).min(m.last_page))) } else { Value::Null },
        "next": if m.current_page < m.last_page { Value::from(link(m.current_page + 1)) } else { Value::Null },
    });
    axum::Json(json!({ "data": page.data, "meta": page.meta, "links": links })).into_response()
}

async fn show_flow(
    State(app): State<Shared>,
    Path(flow): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let id = match parse_id("Flow", &flow) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let include = query_pairs(raw.as_deref())
        .into_iter()
        .find(|(k, _)| k == "include")
        .map(|(_, v)| v);
    let with_versions = includes_versions(include.as_deref());
    let store = app.store.clone();
    match blocking(move || store.show(id, with_versions)).await {
        Ok(f) => data(f),
        Err(r) => r,
    }
}

async fn export_flow(State(app): State<Shared>, body: Body) -> Response {
    let body = match json_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let id = match body.get("flow_id") {
        None | Some(Value::Null) => {
            return store_error(StoreError::field(
                "flow_id",
                "The flow id field is required.",
            ));
        }
        Some(v) => match v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        {
            Some(id) => id,
            None => {
                return store_error(StoreError::field(
                    "flow_id",
                    "The flow id field must be an integer.",
                ));
            }
        },
    };
    let store = app.store.clone();
    match blocking(move || store.export(id)).await {
        Ok(doc) => axum::Json(doc).into_response(),
        Err(r) => r,
    }
}

async fn import_flow(State(app): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let body = match json_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|k| !k.is_empty());
    let store = app.store.clone();
    match blocking(move || store.import(&body, key.as_deref())).await {
        Ok(f) => data(f),
        Err(r) => r,
    }
}

async fn list_versions(State(app): State<Shared>, Path(flow): Path<String>) -> Response {
    let id = match parse_id("Flow", &flow) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let store = app.store.clone();
    match blocking(move || store.versions(id)).await {
        Ok(v) => data(v),
        Err(r) => r,
    }
}

async fn deploy_version(
    State(app): State<Shared>,
    Path((flow, version)): Path<(String, String)>,
    body: Body,
) -> Response {
    let body = match json_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let flow: FlowId = match parse_id("Flow", &flow) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let version: VersionId = match parse_id("Version", &version) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let deployed_at = match body.get("deployed_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return store_error(StoreError::field(
                "deployed_at",
                "The deployed_at field must be a date-time string or null.",
            ));
        }
    };
    let store = app.store.clone();
    match blocking(move || store.deploy(flow, version, deployed_at.as_deref())).await {
        Ok(v) => data(v),
        Err(r) => r,
    }
}

async fn update_flow(State(app): State<Shared>, Path(flow): Path<String>, body: Body) -> Response {
    let body = match json_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let id = match parse_id("Flow", &flow) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let changes = match FlowChanges::from_body(&body) {
        Ok(c) => c,
        Err(e) => return store_error(e),
    };
    let store = app.store.clone();
    match blocking(move || store.update(id, &changes)).await {
        Ok(f) => data(f),
        Err(r) => r,
    }
}

async fn delete_flow(State(app): State<Shared>, Path(flow): Path<String>) -> Response {
    let id = match parse_id("Flow", &flow) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let store = app.store.clone();
    match blocking(move || store.delete(id)).await {
        Ok(()) => message(StatusCode::OK, &format!("Flow {id} deleted.")),
        Err(r) => r,
    }
}
