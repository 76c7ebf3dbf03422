//! The scripts a new user runs first.

use crate::util::root;

/// `scripts/demo` builds for minutes on a fresh machine: it says so before building and lets
/// cargo show its progress.
#[test]
fn the_demo_announces_its_build_and_shows_cargo_progress() {
    let script = std::fs::read_to_string(root().join("scripts/demo")).unwrap();
    let build = script
        .lines()
        .position(|l| l.trim_start().starts_with("cargo build"))
        .expect("the demo builds flowpack");
    let line = script.lines().nth(build).unwrap();
    assert!(!line.contains("--quiet") && !line.contains(" -q"), "{line}");
    let announced = script.lines().take(build).any(|l| {
        l.contains("echo") && l.contains("building flowpack (first time takes a few minutes)")
    });
    assert!(announced, "{script}");
}
