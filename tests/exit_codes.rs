//! One exit-code policy for every command: 1 when the input is rejected, 2 when the command
//! could not run; and the messages that say what to do instead.

use std::path::Path;
use std::process::Output;

use crate::util::{code, fixture, flowpack_in, stderr, stdout};

fn reference() -> String {
    fixture("reference/export-v2-order-sync.json")
        .display()
        .to_string()
}

fn all(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

fn keygen(d: &Path) {
    let o = flowpack_in(d, &["keygen", "-o", "k", "--unencrypted"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

fn pack(d: &Path, inputs: &[&str], out: &str) -> Output {
    let mut args = vec!["pack"];
    args.extend_from_slice(inputs);
    args.extend_from_slice(&["-o", out, "--name", "app", "--version", "1.0.0"]);
    flowpack_in(d, &args)
}

#[test]
fn a_text_file_named_flowpack_is_rejected_by_every_command_that_reads_archives() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d);
    std::fs::write(d.join("x.flowpack"), "this is text, not a zip\n").unwrap();
    let cases: &[&[&str]] = &[
        &["verify", "x.flowpack"],
        &[
            "unpack",
            "x.flowpack",
            "-d",
            "out",
            "--insecure-skip-signatures",
        ],
        &["inspect", "x.flowpack"],
        &["validate", "x.flowpack"],
        &["push", "x.flowpack", "--env", "local"],
        &["sign", "x.flowpack", "--key", "k.key"],
    ];
    for args in cases {
        let o = flowpack_in(d, args);
        assert_eq!(code(&o), 1, "{args:?}: {}", all(&o));
        assert!(
            all(&o).contains("x.flowpack: not a flowpack archive"),
            "{args:?}: {}",
            all(&o)
        );
        assert!(!all(&o).contains("EOCD"), "{args:?}: {}", all(&o));
    }
    assert!(!d.join("out").exists());
    assert!(
        !d.join(".flowpack").exists(),
        "push refused before opening the environment"
    );
}

#[test]
fn a_document_where_an_archive_is_expected_says_pack_it_first() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d);
    std::fs::copy(reference(), d.join("orders.json")).unwrap();
    for args in [
        &["push", "orders.json", "--env", "local"][..],
        &["sign", "orders.json", "--key", "k.key"][..],
        &["verify", "orders.json"][..],
        &[
            "unpack",
            "orders.json",
            "-d",
            "out",
            "--insecure-skip-signatures",
        ][..],
    ] {
        let o = flowpack_in(d, args);
        assert_eq!(code(&o), 1, "{args:?}: {}", all(&o));
        assert!(
            all(&o).contains(
                "orders.json: not a flowpack archive but JSON (an export document?); pack it into \
                 an archive first (e.g. orders.flowpack)"
            ),
            "{args:?}: {}",
            all(&o)
        );
        // Failures (not verify's report) add the command as a hint.
        if args[0] != "verify" {
            assert!(
                stderr(&o).contains(
                    "\nhint: flowpack pack orders.json -o orders.flowpack --name NAME --version \
                     VERSION\n"
                ),
                "{args:?}: {}",
                stderr(&o)
            );
        }
    }
    // The document is untouched and nothing else was written.
    assert_eq!(
        std::fs::read(d.join("orders.json")).unwrap(),
        std::fs::read(reference()).unwrap()
    );
    assert!(!d.join("out").exists() && !d.join(".flowpack").exists());
    // And the reverse: an archive where a document is expected.
    let o = pack(d, &["orders.json"], "orders.flowpack");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = flowpack_in(d, &["migrate", "orders.flowpack", "--to", "1"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "orders.flowpack: a flowpack archive, not an export document; unpack it first\n\
             hint: flowpack unpack orders.flowpack -d DIR"
        ),
        "{}",
        stderr(&o)
    );
    let o = pack(d, &["orders.flowpack"], "again.flowpack");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("unpack it first"), "{}", stderr(&o));
    assert!(!d.join("again.flowpack").exists());
}

#[test]
fn threshold_0_is_a_usage_error_in_verify_unpack_and_push() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d);
    let o = pack(d, &[&reference()], "a.flowpack");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for args in [
        &[
            "verify",
            "a.flowpack",
            "--trusted-key",
            "k.pub",
            "--threshold",
            "0",
        ][..],
        &["verify", "a.flowpack", "--threshold", "0"][..],
        &[
            "unpack",
            "a.flowpack",
            "-d",
            "out",
            "--trusted-key",
            "k.pub",
            "--threshold",
            "0",
        ][..],
        &[
            "push",
            "a.flowpack",
            "--env",
            "local",
            "--trusted-key",
            "k.pub",
            "--threshold",
            "0",
        ][..],
    ] {
        let o = flowpack_in(d, args);
        assert_eq!(code(&o), 2, "{args:?}: {}", all(&o));
        assert!(
            stderr(&o).contains("threshold 0 is not allowed"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    assert!(!d.join("out").exists() && !d.join(".flowpack").exists());
}

/// verify used to accept a threshold with no keys (and then fail the signature check, exit 1)
/// while push refused it as usage (exit 2); and verify counted the same key given twice as two.
/// Both now follow one rule.
#[test]
fn verify_and_push_agree_on_what_a_threshold_needs() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d);
    let o = pack(d, &[&reference()], "a.flowpack");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = flowpack_in(d, &["sign", "a.flowpack", "--key", "k.key"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let cases: &[(&[&str], &str)] = &[
        (
            &["--threshold", "1"],
            "a threshold of 1 needs at least 1 distinct trusted keys, 0 given",
        ),
        (
            &[
                "--trusted-key",
                "k.pub",
                "--trusted-key",
                "k.pub",
                "--threshold",
                "2",
            ],
            "a threshold of 2 needs at least 2 distinct trusted keys, 1 given",
        ),
    ];
    for (trust, want) in cases {
        let mut verify = vec!["verify", "a.flowpack"];
        verify.extend_from_slice(trust);
        let mut push = vec!["push", "a.flowpack", "--env", "local", "--dry-run"];
        push.extend_from_slice(trust);
        for args in [verify, push] {
            let o = flowpack_in(d, &args);
            assert_eq!(code(&o), 2, "{args:?}: {}", all(&o));
            assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        }
    }
    // The same key with the default threshold passes both.
    let o = flowpack_in(d, &["verify", "a.flowpack", "--trusted-key", "k.pub"]);
    assert_eq!(code(&o), 0, "{}", all(&o));
    let o = flowpack_in(
        d,
        &[
            "push",
            "a.flowpack",
            "--env",
            "local",
            "--dry-run",
            "--trusted-key",
            "k.pub",
        ],
    );
    assert_eq!(code(&o), 0, "{}", all(&o));
}

#[test]
fn summaries_count_in_words_and_say_unsigned() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let o = pack(d, &[&reference()], "one.flowpack");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("one.flowpack: 1 flow, manifest sha256 "),
        "{out}"
    );
    assert!(
        out.contains(", 0 secret values stripped, unsigned"),
        "{out}"
    );
    assert!(!out.contains("(s)") && !out.contains("[]"), "{out}");
    let refs = fixture("reference").display().to_string();
    let o = pack(d, &[&refs], "two.flowpack");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("two.flowpack: 2 flows, "),
        "{}",
        stdout(&o)
    );
    let o = flowpack_in(d, &["inspect", "one.flowpack"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("(6 steps, "), "{}", stdout(&o));
    let o = flowpack_in(
        d,
        &[
            "unpack",
            "one.flowpack",
            "-d",
            "u",
            "--insecure-skip-signatures",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains(": 2 files unpacked"), "{}", stdout(&o));
    let o = flowpack_in(d, &["validate", &reference()]);
    assert!(
        stdout(&o).contains(": 0 errors, 0 warnings"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn export_with_a_filter_that_matches_nothing_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let o = pack(d, &[&reference()], "a.flowpack");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = flowpack_in(d, &["push", "a.flowpack", "--env", "local"]);
    assert_eq!(code(&o), 0, "{}", all(&o));
    let o = flowpack_in(
        d,
        &[
            "export",
            "--env",
            "local",
            "--all",
            "--filter",
            "name=Nope",
            "-o",
            "b.flowpack",
        ],
    );
    assert_eq!(code(&o), 1, "{}", all(&o));
    assert!(
        stderr(&o).contains("no flow matches the filter name=\"Nope\"; nothing was written"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("b.flowpack").exists());
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.contains("b.flowpack") || n.starts_with(".flowpack-tmp") || n.starts_with(".tmp")
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A filter that matches exports what it matched.
    let o = flowpack_in(
        d,
        &[
            "export",
            "--env",
            "local",
            "--all",
            "--filter",
            "name=Shopify",
            "-o",
            "b.flowpack",
        ],
    );
    assert_eq!(code(&o), 0, "{}", all(&o));
    assert!(
        stdout(&o).contains("b.flowpack: 1 flow from local"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn an_input_the_overlay_does_not_supply_is_warned_about_once_per_push() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    // Two flows with the same variable.
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reference()).unwrap()).unwrap();
    std::fs::create_dir(d.join("in")).unwrap();
    std::fs::write(d.join("in/a.json"), serde_json::to_vec(&doc).unwrap()).unwrap();
    doc["flow"]["name"] = "Orders (EU)".into();
    doc["metadata"]["flow_name"] = "Orders (EU)".into();
    std::fs::write(d.join("in/b.json"), serde_json::to_vec(&doc).unwrap()).unwrap();
    let o = pack(d, &["in"], "two.flowpack");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = flowpack_in(d, &["push", "two.flowpack", "--env", "local", "--dry-run"]);
    assert_eq!(code(&o), 0, "{}", all(&o));
    let err = stderr(&o);
    assert_eq!(
        err.matches("NETSUITE_SUBSIDIARY").count(),
        1,
        "one warning for both flows: {err}"
    );
    assert_eq!(
        err.matches("warning: ").count(),
        1,
        "one warning per push: {err}"
    );
    assert!(
        err.contains("variable \"NETSUITE_SUBSIDIARY\" of flows \"Orders (EU)\", \"Shopify > NetSuite Orders\"")
            || err.contains("variable \"NETSUITE_SUBSIDIARY\" of flows \"Shopify > NetSuite Orders\", \"Orders (EU)\""),
        "{err}"
    );
}

/// `migrate --check` answers 1 for "would change", so input it rejects is 2 there (like diff(1));
/// without `--check` the same input is rejected with 1.
#[test]
fn migrate_check_answers_2_for_input_it_cannot_check() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::write(d.join("bad.json"), "not json").unwrap();
    let o = flowpack_in(d, &["migrate", "bad.json", "--to", "2", "--check"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("bad.json: not valid JSON"),
        "{}",
        stderr(&o)
    );
    let o = flowpack_in(d, &["migrate", "bad.json", "--to", "2"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
}

/// A platform that cannot be reached before any write: the push could not run (2).
#[test]
fn push_to_an_unreachable_platform_is_2() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let o = pack(d, &[&reference()], "a.flowpack");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_flowpack"))
        .args(["push", "a.flowpack", "--url", "http://127.0.0.1:9/api/v1"])
        .current_dir(d)
        .env("FLOWPACK_TOKEN", "t")
        .output()
        .unwrap();
    assert_eq!(code(&o), 2, "{}", all(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with(
            "flowpack: error: push to http://127.0.0.1:9: GET http://127.0.0.1:9/api/v1/flows"
        ),
        "{err}"
    );
}

/// `--jobs` is one flag everywhere: 1 to 64, anything else a usage error (exit 2) before any work,
/// in every command that takes it.
#[test]
fn jobs_outside_1_to_64_is_a_usage_error_in_every_command() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let o = pack(d, &[&reference()], "a.flowpack");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for jobs in ["0", "65"] {
        for args in [
            &["push", "a.flowpack", "--env", "local", "--jobs", jobs][..],
            &["diff", "a.flowpack", "env:local", "--jobs", jobs][..],
            &["backup", "--env", "local", "--dir", "b", "--jobs", jobs][..],
            &[
                "export",
                "--env",
                "local",
                "--all",
                "-o",
                "e.flowpack",
                "--jobs",
                jobs,
            ][..],
        ] {
            let o = flowpack_in(d, args);
            assert_eq!(code(&o), 2, "{args:?}: {}", all(&o));
            assert!(stderr(&o).contains("--jobs"), "{args:?}: {}", stderr(&o));
        }
    }
    // Nothing ran: no local store, no backup directory, no archive.
    assert!(!d.join(".flowpack").exists());
    assert!(!d.join("b").exists() && !d.join("e.flowpack").exists());
}
