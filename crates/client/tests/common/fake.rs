//! A scripted HTTP server for the cases a real registry will not produce (a layer whose bytes do
//! not match its digest, a bearer token service, 503s): one thread, one request per connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET /v2/… HTTP/1.1`.
    pub line: String,
    /// The headers, names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response: status, headers, body.
pub type Reply = (u16, Vec<(String, String)>, Vec<u8>);

/// Serves `handler`'s replies on 127.0.0.1; returns `127.0.0.1:PORT` and the requests seen.
pub fn serve(handler: impl Fn(&Seen) -> Reply + Send + 'static) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() || line.is_empty() {
                continue;
            }
            let mut headers = Vec::new();
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() {
                    break;
                }
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    let k = k.trim().to_ascii_lowercase();
                    if k == "content-length" {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    headers.push((k, v.trim().to_string()));
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let req = Seen {
                line: line.trim_end().to_string(),
                headers,
            };
            let (status, extra, body) = handler(&req);
            record.lock().unwrap().push(req);
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in extra {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let mut stream = reader.into_inner();
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (host, seen)
}

/// A scripted registry holding one flowpack artifact at `REPO:TAG`: its manifest names a layer
/// with the digest and size of `claimed`, and the blob served for that digest is `served` (so a
/// test can serve bytes that do not match their digest). Returns `127.0.0.1:PORT` and the
/// layer's claimed digest.
pub fn artifact(repo: &str, tag: &str, claimed: &[u8], served: Vec<u8>) -> (String, String) {
    use flowpack_client::oci::{self, Descriptor, ImageManifest};
    use sha2::{Digest, Sha256};

    let layer_digest = format!("sha256:{}", hex::encode(Sha256::digest(claimed)));
    let manifest = serde_json::to_vec(&ImageManifest::for_archive(
        Descriptor {
            media_type: oci::LAYER_MEDIA_TYPE.into(),
            digest: layer_digest.clone(),
            size: claimed.len() as u64,
            annotations: Default::default(),
        },
        Default::default(),
    ))
    .unwrap();
    let manifest_line = format!("GET /v2/{repo}/manifests/{tag} ");
    let blob_line = format!("GET /v2/{repo}/blobs/{layer_digest} ");
    let (host, _) = serve(move |req| {
        if req.line.starts_with(&manifest_line) {
            (
                200,
                vec![("Content-Type".into(), oci::MANIFEST_MEDIA_TYPE.into())],
                manifest.clone(),
            )
        } else if req.line.starts_with(&blob_line) {
            (200, vec![], served.clone())
        } else {
            (404, vec![], b"{}".to_vec())
        }
    });
    (host, layer_digest)
}
