//! The scripts a new user runs first.

use crate::util::root;

/// `scripts/demo` builds for minutes on a fresh machine: it says so before building and lets
/// cargo show its progress. Run with a stand-in `cargo` first on `PATH` that records how it was
/// called, prints a line and fails: the announcement comes before cargo's output, cargo was
/// asked to build without `--quiet`, and the demo stops at cargo's failure.
#[test]
fn the_demo_announces_its_build_and_shows_cargo_progress() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cargo.log");
    let fake = dir.path().join("cargo");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\necho 'stand-in cargo ran'\nexit 3\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = std::process::Command::new(root().join("scripts/demo"))
        .env("PATH", path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{out}");
    let announced = out
        .find("building flowpack (first time takes a few minutes)")
        .expect("the demo announces its build");
    let ran = out.find("stand-in cargo ran").expect("the demo runs cargo");
    assert!(announced < ran, "{out}");
    let calls = std::fs::read_to_string(&log).unwrap();
    let build = calls.lines().next().unwrap();
    assert!(build.starts_with("build"), "{calls}");
    let quiet = build
        .split_whitespace()
        .any(|a| a == "--quiet" || a == "-q");
    assert!(!quiet, "{calls}");
}

/// `scripts/demo` finds the binaries where cargo put them (`cargo metadata`'s target directory),
/// so it works with `CARGO_TARGET_DIR` set; it never assumes `target/debug`.
#[test]
fn the_demo_finds_the_target_directory_from_cargo() {
    let script = std::fs::read_to_string(root().join("scripts/demo")).unwrap();
    let code: Vec<&str> = script
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.contains("echo"))
        .collect();
    for l in &code {
        // `$target/debug/…` is cargo's target directory; `target/…` or `$PWD/target/…` would
        // assume it.
        let assumes = l.contains("PWD/target")
            || l.split(|c: char| c.is_whitespace() || c == '"' || c == '=')
                .any(|w| w.starts_with("target/"));
        assert!(!assumes, "{l}");
    }
    assert!(
        code.iter()
            .any(|l| l.contains("cargo metadata") && l.contains("--no-deps")),
        "{script}"
    );
    assert!(
        code.iter().any(|l| l.contains("\"target_directory\"")),
        "{script}"
    );
}

/// What the demo reads from `cargo metadata` is the target directory cargo builds into, also
/// with `CARGO_TARGET_DIR` set.
#[test]
fn cargo_metadata_names_the_target_directory_the_demo_uses() {
    let line = std::fs::read_to_string(root().join("scripts/demo"))
        .unwrap()
        .lines()
        .find(|l| l.contains("s/.*\"target_directory\""))
        .expect("the demo reads target_directory")
        .trim()
        .to_string();
    let sed = line
        .split('\'')
        .nth(1)
        .expect("a quoted sed expression")
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let metadata = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .env("CARGO_TARGET_DIR", dir.path())
        .output()
        .unwrap();
    assert!(metadata.status.success());
    let mut child = std::process::Command::new("sed")
        .args(["-n", &sed])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&metadata.stdout)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        dir.path().display().to_string()
    );
}

/// `benches/scale.sh` runs end to end on a tiny corpus (debug binaries, 20 and 30 flows), so the
/// script behind BENCHMARKS.md's scale table cannot rot: every command it measures succeeds
/// and the table has a row per command with a time and a peak RSS per size.
#[test]
fn the_scale_benchmark_runs_on_a_tiny_corpus() {
    let flowpack = std::path::PathBuf::from(env!("CARGO_BIN_EXE_flowpack"));
    let bench = bench_binary();
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("scale.md");
    let out = std::process::Command::new("bash")
        .arg(root().join("benches/scale.sh"))
        .args(["--flows", "20 30", "--small-from", "30", "--small-mb", "1"])
        .arg("--out")
        .arg(&table)
        .env("BENCH_NO_BUILD", "1")
        .env("FLOWPACK", &flowpack)
        .env("FLOWPACK_BENCH", &bench)
        .env("TMPDIR", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let table = std::fs::read_to_string(&table).unwrap();
    for command in [
        "pack",
        "verify",
        "unpack",
        "diff archive archive",
        "push --dry-run",
        "push (env:local)",
        "diff archive env:local",
        "export --all",
        "backup",
    ] {
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("| `{command}` |")))
            .unwrap_or_else(|| panic!("no row for {command}: {table}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // command, then time and MiB for each of the two sizes.
        assert_eq!(cells.len(), 2 + 4 + 1, "{row}");
        for cell in &cells[2..6] {
            assert!(cell.parse::<f64>().is_ok_and(|v| v >= 0.0), "{row}");
        }
    }
    assert!(table.contains("ms per flow"), "{table}");
    assert!(table.contains("Corpora: 20 flows"), "{table}");
    // Nothing left behind but the table.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("scale.md")]);
}

/// The debug `flowpack-bench` beside the test's `flowpack` (built when missing).
fn bench_binary() -> std::path::PathBuf {
    let flowpack = std::path::PathBuf::from(env!("CARGO_BIN_EXE_flowpack"));
    let bench = flowpack.with_file_name("flowpack-bench");
    if !bench.exists() {
        let built = std::process::Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "flowpack-bench"])
            .current_dir(root())
            .status()
            .unwrap();
        assert!(built.success());
    }
    bench
}

/// Runs `benches/SCRIPT --flows 20 --runs 1 ARGS…` on the debug binaries (nothing built) in a
/// temporary directory, and returns its standard output. The script must succeed, print its
/// results table with a ratio judged against its target (`yes` or `NO` — a debug build on a
/// tiny corpus is not expected to meet the targets, only to be measured), and leave nothing
/// behind.
fn run_bench(script: &str, args: &[&str]) -> String {
    let flowpack = std::path::PathBuf::from(env!("CARGO_BIN_EXE_flowpack"));
    let sandbox = std::path::PathBuf::from(env!("CARGO_BIN_EXE_flowpack-sandbox"));
    let bench = bench_binary();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("bash")
        .arg(root().join("benches").join(script))
        .args(["--flows", "20", "--runs", "1"])
        .args(args)
        .env("BENCH_NO_BUILD", "1")
        .env("FLOWPACK", &flowpack)
        .env("FLOWPACK_BENCH", &bench)
        .env("FLOWPACK_SANDBOX", &sandbox)
        .env("TMPDIR", dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script}: {stdout}\n{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("<=") && (l.contains("yes") || l.contains("NO"))),
        "{script} printed no ratio against a target: {stdout}\n{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{script} left {left:?}");
    stdout
}

/// `benches/archive.sh` (pack, verify, validate against their peers) runs as committed: every
/// operation of the speed targets has its row, CPU and wall for pack.
#[test]
fn the_archive_benchmark_runs_on_a_tiny_corpus() {
    let out = run_bench("archive.sh", &["--validate-runs", "1"]);
    for row in [
        "pack --sign, CPU",
        "pack --sign, wall",
        "verify, wall",
        "validate, wall (jq empty)",
    ] {
        assert!(out.lines().any(|l| l.contains(row)), "no row {row}: {out}");
    }
}

/// `benches/push.sh` (push against the curl loops, with a sandbox) runs as committed and prints
/// the ratio to the keep-alive reference.
#[test]
fn the_push_benchmark_runs_on_a_tiny_corpus() {
    let out = run_bench("push.sh", &["--latency-ms", "1"]);
    assert!(out.contains("jobs 4 / curl --parallel"), "{out}");
}

/// `benches/diff.sh` runs as committed.
#[test]
fn the_diff_benchmark_runs_on_a_tiny_corpus() {
    let out = run_bench("diff.sh", &["--changed", "3"]);
    assert!(out.contains("| diff "), "{out}");
}

/// `benches/export.sh` (export against curl loops, and the fault run) runs as committed.
#[test]
fn the_export_benchmark_runs_on_a_tiny_corpus() {
    let out = run_bench("export.sh", &["--fault-flows", "10"]);
    assert!(out.contains("fault run: 10 flows"), "{out}");
}

/// `benches/publish.sh` (publish and pull against curl, with a local registry) runs as committed.
#[test]
fn the_publish_benchmark_runs_on_a_tiny_corpus() {
    let out = run_bench("publish.sh", &[]);
    assert!(out.lines().any(|l| l.starts_with("| pull")), "{out}");
}

/// `benches/storage.sh` runs end to end on a tiny corpus (debug binaries, 20 flows, one run)
/// against the test SeaweedFS binary: both comparisons and both peak RSS rows are measured, and
/// it stops its store (nothing is left in its work directory).
#[test]
fn the_storage_benchmark_runs_on_a_tiny_corpus() {
    let flowpack = std::path::PathBuf::from(env!("CARGO_BIN_EXE_flowpack"));
    let bench = bench_binary();
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("storage.md");
    let out = std::process::Command::new("bash")
        .arg(root().join("benches/storage.sh"))
        .args(["--flows", "20", "--runs", "1", "--out"])
        .arg(&table)
        .env("BENCH_NO_BUILD", "1")
        .env("FLOWPACK", &flowpack)
        .env("FLOWPACK_BENCH", &bench)
        .env("FLOWPACK_WEED", crate::weed::weed_binary())
        .env("TMPDIR", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let table = std::fs::read_to_string(&table).unwrap();
    for row in [
        "| backup --dir s3:// vs --dir DIR",
        "| verify s3:// vs curl -o + sha256sum",
        "| backup --dir s3://    |",
        "| verify s3://          |",
    ] {
        let line = table
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no row {row}: {table}"));
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert!(cells[2].parse::<f64>().is_ok_and(|v| v > 0.0), "{line}");
    }
    assert!(table.contains("corpus: 20 flows"), "{table}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("storage.md")]);
}
