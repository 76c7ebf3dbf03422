//! The `flowpack-sandbox` command line (cargo feature `server`): serves the Core API's Flows
//! section from a SQLite file (a stand-in for rehearsals and tests, not a production service).
//! The binary itself is a shim in the root package calling [`main`], so that
//! `cargo install --path .` installs it beside `flowpack`.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::dispatch::FailOn;
use crate::server::ServerOptions;
use crate::store::{Store, StoreOptions};
use anyhow::Context;
use clap::Parser;

/// A local stand-in for the platform's Core API (the whole Flows section), backed by a SQLite
/// file. For rehearsals and tests only: it is NOT a production service (one API key, no
/// users, no TLS, injected faults on request).
#[derive(Debug, Parser)]
#[command(
    name = "flowpack-sandbox",
    version,
    after_help = "Example:\n  flowpack-sandbox --listen 127.0.0.1:0 --db sandbox.db --token dev-key\n  \
                  # prints `listening on http://127.0.0.1:PORT`; then\n  \
                  curl -H 'Authorization: Bearer dev-key' http://127.0.0.1:PORT/api/v1/flows\n\n\
                  Rehearse retries with faults:\n  \
                  flowpack-sandbox --listen 127.0.0.1:8080 --db s.db --token k --fail-rate 0.2 --seed 7 --rate-limit 20"
)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed once ready).
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// The SQLite database file (created if missing; data survives restarts).
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
    /// The API key clients must send in `Authorization` (raw or `Bearer <key>`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "FLOWPACK_SANDBOX_TOKEN",
        hide_env_values = true
    )]
    token: String,
    /// Probability (0 to 1) that a request fails with 500 or 503 before doing any work.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_rate)]
    fail_rate: f64,
    /// Milliseconds of delay added to every request.
    #[arg(long, value_name = "N", default_value_t = 0)]
    latency_ms: u64,
    /// Requests per second allowed (token bucket); over it, 429 with `Retry-After: 1`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit: Option<u32>,
    /// Seed of the fault injection (default: from the clock).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Fail the first N requests matching METHOD and PATH-GLOB with 500 (every matching request
    /// without `:N`); `*` matches any characters, paths are under /api/v1 unless they start
    /// with /api/. Repeatable, e.g. --fail-on "PUT /flows/*/versions/*:1".
    #[arg(long, value_name = "METHOD PATH-GLOB[:N]", value_parser = FailOn::parse)]
    fail_on: Vec<FailOn>,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("`{s}` is not between 0 and 1"))
    }
}

/// Runs the `flowpack-sandbox` command line (parses `std::env::args`).
pub fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowpack-sandbox: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let store = Arc::new(Store::open(&args.db, StoreOptions::default())?);
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    let options = ServerOptions {
        token: args.token,
        fail_rate: args.fail_rate,
        latency: Duration::from_millis(args.latency_ms),
        rate_limit: args.rate_limit,
        seed,
        fail_on: args.fail_on,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener
            .local_addr()
            .context("cannot read the bound address")?;
        let shutdown = shutdown_signal()?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}")?;
        out.flush()?;
        drop(out);
        crate::server::serve(listener, store, options, shutdown)
            .await
            .context("server failed")
    })
}

/// Completes on SIGTERM or Ctrl-C. The handlers are installed when this is called (before
/// `listening on` is printed), so a signal sent right after that line is not missed.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        std::future::poll_fn(|cx| {
            if term.poll_recv(cx).is_ready() || int.poll_recv(cx).is_ready() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await
    })
}

/// Completes on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
