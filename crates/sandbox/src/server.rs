//! The sandbox's HTTP server (cargo feature `server`): the Core API's Flows section over a
//! [`Store`], every request answered by the transport-free [`Dispatcher`].
//!
//! Every request passes, in order: authentication (401, before anything else), the rate limiter
//! (429 + `Retry-After: 1`), the injected latency, the injected faults (500 or 503, before any
//! work, so a failed request wrote nothing), then the dispatcher (`--fail-on` rules, routing).
//! Bodies over [`BODY_LIMIT`] get 413 (the body is read to its end first, so the client always
//! sees the response).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

pub use crate::dispatch::BODY_LIMIT;
use crate::dispatch::{self, Dispatcher, FailOn};
use crate::store::Store;
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
    /// `--fail-on` rules: the first N matching requests fail with 500.
    pub fail_on: Vec<FailOn>,
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
            fail_on: Vec::new(),
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
    dispatcher: Arc<Dispatcher>,
    options: ServerOptions,
    rng: Mutex<StdRng>,
    bucket: Option<Mutex<Bucket>>,
}

type Shared = Arc<App>;

/// The API's router (every path goes to the dispatcher), ready for `axum::serve`.
pub fn router(store: Arc<Store>, options: ServerOptions) -> Router {
    let bucket = options.rate_limit.map(|n| {
        Mutex::new(Bucket {
            capacity: f64::from(n.max(1)),
            tokens: f64::from(n.max(1)),
            last: Instant::now(),
        })
    });
    let dispatcher = Arc::new(
        Dispatcher::new(store, options.token.clone()).with_fail_on(options.fail_on.clone()),
    );
    let app = Arc::new(App {
        dispatcher,
        rng: Mutex::new(StdRng::seed_from_u64(options.seed)),
        options,
        bucket,
    });
    Router::new().fallback(handle).with_state(app)
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<Store>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // TCP_NODELAY, as HTTP servers usually set it: a response leaves at once, never held back
    // (Nagle's algorithm) until the client acknowledges what was sent before.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
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

fn to_response(r: dispatch::Response) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match r.body {
        Some(body) => (status, axum::Json(body)).into_response(),
        None => status.into_response(),
    }
}

async fn handle(State(app): State<Shared>, request: Request) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let refusal = if app.dispatcher.authorised(authorization.as_deref()) {
        check(&app).await
    } else {
        Some(message(StatusCode::UNAUTHORIZED, "Unauthenticated."))
    };
    let (parts, body) = request.into_parts();
    if let Some(refusal) = refusal {
        // Read the body the refusal does not need, so the connection stays usable (a client
        // reusing it would otherwise see a reset instead of this response).
        let _ = read_body(body).await;
        return refusal;
    }
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let req = dispatch::Request {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: header_pairs(&parts.headers),
        body,
    };
    let dispatcher = app.dispatcher.clone();
    match tokio::task::spawn_blocking(move || dispatcher.handle(&req)).await {
        Ok(r) => to_response(r),
        Err(e) => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("sandbox task failed: {e}"),
        ),
    }
}

fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

/// The refusal (429, injected 500/503) for this request, if any.
async fn check(app: &App) -> Option<Response> {
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
    None
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
