//! Helpers shared by the end-to-end tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture file.
pub fn fixture(rel: &str) -> PathBuf {
    root().join("fixtures").join(rel)
}

/// Runs the built `flowpack` binary with `args` in `cwd`.
pub fn flowpack_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowpack"))
        .args(args)
        .current_dir(cwd)
        .env_remove("FLOWPACK_TOKEN")
        .env_remove("FLOWPACK_KEY_PASSWORD")
        .output()
        .expect("run flowpack")
}

/// Runs the built `flowpack` binary in the repository root.
pub fn flowpack(args: &[&str]) -> Output {
    flowpack_in(&root(), args)
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The exit code (panics on a signal).
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

/// A running `flowpack-sandbox` (the real binary, on 127.0.0.1 with port 0), killed on drop.
pub struct SandboxProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`, as it printed once ready.
    pub url: String,
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SandboxProcess {
    /// Starts the sandbox on `dir/sandbox.db` (kept across restarts) with the API key `token`
    /// and `extra` flags, and waits for its `listening on` line.
    pub fn start(dir: &Path, token: &str, extra: &[&str]) -> SandboxProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flowpack-sandbox"))
            .args(["--listen", "127.0.0.1:0", "--token", token, "--db"])
            .arg(dir.join("sandbox.db"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start flowpack-sandbox");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        SandboxProcess { child, url }
    }
}

/// The history records in `dir` of runs that wrote something to the platform (every attempt
/// has a record; one that wrote nothing says so with `wrote: 0` and no entries).
pub fn writing_records(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter(|e| {
            let record: serde_json::Value =
                serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
            record["wrote"].as_u64().unwrap_or(0) > 0
                || record["entries"].as_array().is_some_and(|a| !a.is_empty())
        })
        .count()
}

/// A command for an interop peer (`minisign`, `zip`, `unzip`, `python3`), failing with what to
/// install when the program is not on `PATH` (a test must not pass or fail for an unrelated
/// reason because a peer is missing).
pub fn peer(prog: &str) -> Command {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(prog).is_file()));
    if !found {
        let package = match prog {
            "htpasswd" => "apache2-utils",
            other => other,
        };
        panic!(
            "the interop peer `{prog}` is not installed: run scripts/setup-peers (it runs `apt-get install -y {package}`)"
        );
    }
    Command::new(prog)
}
