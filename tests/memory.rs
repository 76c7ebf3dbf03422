//! Bounded memory: archives within every limit, crafted to expand when parsed (flow documents of
//! tiny JSON numbers), keep every command's peak resident memory under 256 MiB (inspect,
//! validate, verify, unpack, diff, push, and validate and pack of the documents as files), and
//! the per-document bound is named in the refusal.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::{SandboxProcess, fixture};

const LIMIT_KIB: u64 = 256 * 1024;

/// Runs the real binary, polling its high-water resident memory (`VmHWM`) until it exits.
/// Returns the exit code, stdout + stderr, and the peak in KiB.
fn run_measured(cwd: &Path, args: &[&str]) -> (i32, String, u64) {
    let out = cwd.join("out.txt");
    let err = cwd.join("err.txt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowpack"))
        .args(args)
        .env("FLOWPACK_TOKEN", "memory-token")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("run flowpack");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(&status_path)
            && let Some(kib) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let text = format!(
        "{}{}",
        std::fs::read_to_string(out).unwrap_or_default(),
        std::fs::read_to_string(err).unwrap_or_default()
    );
    (status.code().unwrap_or(-1), text, peak)
}

fn make_expansion(dir: &Path, name: &str, entries: usize, size: usize) -> String {
    let path = dir.join(name);
    let o = crate::util::peer("python3")
        .arg(fixture("archives/make_hostile.py"))
        .args(["--expansion", &path.display().to_string()])
        .args([entries.to_string(), size.to_string()])
        .output()
        .expect("run python3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    name.to_string()
}

#[test]
fn expansion_archives_stay_under_256_mib_in_every_command() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    // Three 60 MiB entries of tiny numbers (1.4 MB on disk): refused by the per-document bound.
    let big = make_expansion(d, "big.flowpack", 3, 60 * 1024 * 1024);
    // Eight documents just under the bound (about 995,000 values each): accepted, and more of
    // them than `push` has workers, so a worker meets a second one after its first.
    let near = make_expansion(d, "near.flowpack", 8, 1_990_000);
    let sandbox = SandboxProcess::start(d, "memory-token", &[]);
    let mut pushes = 0;
    for (archive, refused) in [(&big, true), (&near, false)] {
        for args in [
            vec!["inspect", archive.as_str()],
            vec!["validate", archive.as_str()],
            vec!["verify", archive.as_str()],
            vec![
                "unpack",
                archive.as_str(),
                "-d",
                "unpacked",
                "--insecure-skip-signatures",
            ],
            vec!["diff", archive.as_str(), archive.as_str()],
            vec!["push", archive.as_str(), "--env", "local", "--dry-run"],
            // A real push over HTTP: every flow read, prepared and imported again, 4 at a time.
            vec!["push", archive.as_str(), "--url", sandbox.url.as_str()],
            // Pushed again: every flow compared with the live flow's export (both held).
            vec!["push", archive.as_str(), "--url", sandbox.url.as_str()],
        ] {
            let _ = std::fs::remove_dir_all(d.join("unpacked"));
            let (code, text, peak) = run_measured(d, &args);
            eprintln!("{args:?}: exit {code}, peak {peak} KiB");
            assert!(
                peak < LIMIT_KIB,
                "{args:?}: peak {peak} KiB, over {LIMIT_KIB} KiB\n{text}"
            );
            assert!((0..=2).contains(&code), "{args:?}: exit {code}\n{text}");
            let parses = !matches!(args[0], "verify" | "unpack");
            // diff's 1 means "different", its refusals are 2.
            assert!(
                args[0] != "diff" || code == if refused { 2 } else { 0 },
                "{text}"
            );
            if refused && parses {
                assert_ne!(code, 0, "{args:?}\n{text}");
                assert!(
                    text.contains("flows/f0/export.json")
                        && text.contains("larger than the per-document bound of 16777216 bytes"),
                    "{args:?}\n{text}"
                );
            } else {
                assert!(
                    !text.contains("per-document bound"),
                    "{args:?}: exit {code}\n{text}"
                );
            }
            if !refused && args.contains(&"--url") {
                assert_eq!(code, 0, "{args:?}\n{text}");
                pushes += 1;
                let outcome = if pushes == 1 {
                    "8 created"
                } else {
                    "8 unchanged"
                };
                assert!(text.contains(&format!(": {outcome}, 0 failed")), "{text}");
            }
        }
    }
    // The eight documents as loose files, validated by as many threads as the machine has:
    // the shared parse budget still lets only one near-bound document be parsed at a time.
    let (code, text, _) = run_measured(
        d,
        &["unpack", &near, "-d", "loose", "--insecure-skip-signatures"],
    );
    assert_eq!(code, 0, "{text}");
    let files: Vec<String> = (0..8)
        .map(|i| format!("loose/flows/f{i}/export.json"))
        .collect();
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let (code, text, peak) = run_measured(d, &args);
    eprintln!("validate of 8 files: exit {code}, peak {peak} KiB");
    assert!((0..=1).contains(&code), "exit {code}\n{text}");
    assert!(peak < LIMIT_KIB, "peak {peak} KiB, over {LIMIT_KIB} KiB");
    // Packed again by as many workers as the machine has, within the same budget.
    let (code, text, peak) = run_measured(
        d,
        &[
            "pack",
            "loose/flows",
            "-o",
            "repacked.flowpack",
            "--name",
            "repacked",
            "--version",
            "1.0.0",
        ],
    );
    eprintln!("pack of 8 files: exit {code}, peak {peak} KiB");
    assert_eq!(code, 0, "{text}");
    assert!(peak < LIMIT_KIB, "peak {peak} KiB, over {LIMIT_KIB} KiB");
}

fn make_strings(dir: &Path, name: &str, entries: usize, size: usize, seed: u32) -> String {
    let path = dir.join(name);
    let o = crate::util::peer("python3")
        .arg(fixture("archives/make_hostile.py"))
        .args(["--strings", &path.display().to_string()])
        .args([entries.to_string(), size.to_string(), seed.to_string()])
        .output()
        .expect("run python3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    name.to_string()
}

/// `diff` keeps each side's names and digests, not its documents: sixteen documents of one
/// ~16 MB string each (256 MB of JSON, 5 MB on disk) against the same flows with other strings
/// (every pair read and compared, one pair at a time) and against itself (no entry read: the
/// digests match).
#[test]
fn diff_of_large_documents_holds_one_pair_at_a_time() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let strings = make_strings(d, "strings.flowpack", 16, 16_000_000, 1);
    let baseline = make_strings(d, "baseline.flowpack", 16, 16_000_000, 2);
    for (args, want) in [
        (["diff", baseline.as_str(), strings.as_str()], 1),
        (["diff", strings.as_str(), strings.as_str()], 0),
    ] {
        let (code, text, peak) = run_measured(d, &args);
        eprintln!("{args:?}: exit {code}, peak {peak} KiB");
        assert_eq!(code, want, "{args:?}\n{text}");
        assert!(
            peak < LIMIT_KIB,
            "{args:?}: peak {peak} KiB, over {LIMIT_KIB} KiB\n{text}"
        );
        if want == 1 {
            assert_eq!(text.matches("changed  F").count(), 16, "{text}");
        }
    }
}

/// A plain `.json` side past the per-document bound is refused before it is read: a 1 GiB
/// (sparse) file and a device that never ends.
#[test]
fn diff_refuses_an_oversized_json_side_before_reading_it() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::File::create(d.join("big.json"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    std::fs::copy(
        fixture("reference/export-v2-order-sync.json"),
        d.join("doc.json"),
    )
    .unwrap();
    for args in [
        ["diff", "big.json", "doc.json"],
        ["diff", "doc.json", "/dev/zero"],
    ] {
        let (code, text, peak) = run_measured(d, &args);
        eprintln!("{args:?}: exit {code}, peak {peak} KiB");
        assert_eq!(code, 2, "{args:?}\n{text}");
        assert!(
            text.contains("larger than the per-document bound of 16777216 bytes"),
            "{args:?}\n{text}"
        );
        assert!(peak < LIMIT_KIB, "{args:?}: peak {peak} KiB\n{text}");
    }
}

/// `diff env:local`, `export` and `backup` on the embedded store with documents near the bound:
/// exports of the embedded store are built in memory, so they are made one at a time whatever
/// `--jobs` says, each compared (or packed) and dropped before the next.
#[test]
fn diff_of_the_local_environment_with_near_bound_flows_stays_under_256_mib() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let near = make_expansion(d, "near.flowpack", 6, 1_990_000);
    let (code, text, _) = run_measured(d, &["push", &near, "--env", "local"]);
    assert_eq!(code, 0, "{text}");
    let commands: [&[&str]; 4] = [
        &["diff", near.as_str(), "env:local"],
        &["diff", "env:local", "env:local"],
        &[
            "export",
            "--all",
            "--env",
            "local",
            "-o",
            "e.flowpack",
            "--jobs",
            "16",
        ],
        &[
            "backup", "--env", "local", "--dir", "backups", "--jobs", "16",
        ],
    ];
    for args in commands {
        let (code, text, peak) = run_measured(d, args);
        eprintln!("{args:?}: exit {code}, peak {peak} KiB");
        assert_eq!(code, 0, "{args:?}\n{text}");
        assert!(
            peak < LIMIT_KIB,
            "{args:?}: peak {peak} KiB, over {LIMIT_KIB} KiB\n{text}"
        );
    }
}

/// `pack` reads, checks and adds one document at a time, and the readers keep names and
/// digests, not documents: 1,000 documents of ~128 KB each (128 MB, more than the bound below
/// by itself, so a `pack` that read every document before writing, or a reader that kept them,
/// would pass it) are packed, verified, unpacked and compared (every tenth pair differs) each
/// under 96 MiB of peak resident memory.
#[test]
fn pack_and_readers_of_1000_documents_hold_a_few_at_a_time() {
    const BOUND_KIB: u64 = 96 * 1024;
    const FLOWS: usize = 1000;
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let reference: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture("reference/export-v2-order-sync.json")).unwrap(),
    )
    .unwrap();
    let mut held = 0;
    for (side, edited) in [("a", false), ("b", true)] {
        std::fs::create_dir(d.join(side)).unwrap();
        for i in 0..FLOWS {
            let mut doc = reference.clone();
            let name = format!("Orders {i:04}");
            doc["flow"]["name"] = name.clone().into();
            doc["metadata"]["flow_name"] = name.into();
            let mut description = format!("flow {i}: ").repeat(128 * 1024 / 10);
            if edited && i % 10 == 0 {
                description.push_str(" (edited)");
            }
            doc["flow"]["description"] = description.into();
            let bytes = serde_json::to_vec(&doc).unwrap();
            held += u64::from(side == "a") * bytes.len() as u64;
            std::fs::write(d.join(side).join(format!("flow-{i:04}.json")), bytes).unwrap();
        }
    }
    assert!(
        held / 1024 > BOUND_KIB,
        "the documents alone must pass the bound"
    );
    let commands: [&[&str]; 5] = [
        &[
            "pack",
            "a",
            "-o",
            "a.flowpack",
            "--name",
            "m",
            "--version",
            "1.0.0",
        ],
        &[
            "pack",
            "b",
            "-o",
            "b.flowpack",
            "--name",
            "m",
            "--version",
            "1.0.1",
        ],
        &["verify", "a.flowpack"],
        &[
            "unpack",
            "a.flowpack",
            "-d",
            "out",
            "--insecure-skip-signatures",
        ],
        &["diff", "a.flowpack", "b.flowpack"],
    ];
    for args in commands {
        let (code, text, peak) = run_measured(d, args);
        eprintln!("{args:?}: exit {code}, peak {peak} KiB");
        let want = if args[0] == "diff" { 1 } else { 0 };
        assert_eq!(code, want, "{args:?}\n{text}");
        assert!(
            peak < BOUND_KIB,
            "{args:?}: peak {peak} KiB, over {BOUND_KIB} KiB\n{text}"
        );
    }
}
