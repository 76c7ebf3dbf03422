//! Errors that cannot heal are not retried: TLS spoken to a plain-HTTP server fails at the first
//! attempt, with a hint (`--plain-http` for a registry, an `http://` URL for a platform).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::util::{code, flowpack_in, stderr};

/// A plain-HTTP server on 127.0.0.1 answering every connection with `400 Bad Request` (what an
/// HTTP server says to a TLS handshake); counts the connections.
fn plain_http_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            seen.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (addr, count)
}

#[test]
fn tls_to_a_plain_http_registry_is_tried_once_and_hints_plain_http() {
    let (addr, count) = plain_http_server();
    let t = tempfile::tempdir().unwrap();
    let o = flowpack_in(
        t.path(),
        &["verify", &format!("oci://{addr}/team/app:1.0.0")],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("the registry answered in plain HTTP, not TLS"),
        "{err}"
    );
    assert!(
        err.contains("hint: the registry speaks plain HTTP: give --plain-http"),
        "{err}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1, "one attempt only: {err}");
}

#[test]
fn tls_to_a_plain_http_platform_is_tried_once_and_hints_an_http_url() {
    let (addr, count) = plain_http_server();
    let t = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_flowpack"))
        .args([
            "export",
            "--url",
            &format!("https://{addr}"),
            "--all",
            "-o",
            "x.flowpack",
        ])
        .current_dir(t.path())
        .env("FLOWPACK_TOKEN", "t")
        .output()
        .unwrap();
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("the server answered in plain HTTP, not TLS"),
        "{err}"
    );
    assert!(
        err.contains("hint: the server speaks plain HTTP: write its URL with http://"),
        "{err}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1, "one attempt only: {err}");
    assert!(!t.path().join("x.flowpack").exists());
}
