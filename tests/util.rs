//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
