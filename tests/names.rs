//! Names from documents, archives and platforms never reach the terminal raw: control
//! characters (ESC, OSC, BEL, CR, LF) in flow, package, system or variable names print as
//! `\u{…}` escapes in every human renderer, so a name can neither drive the terminal nor forge a
//! line of its own.

use std::path::Path;

use crate::util::*;

const FLOW: &str = "Evil\u{1b}]0;x\u{7}\r\nok   signatures 1 trusted";
const SYSTEM: &str = "Sys\u{1b}]0;x\u{7}\r";
const VARIABLE: &str = "VAR\u{1b}[2J\n";

/// The reference document with hostile names, and (`changed`) one more step description.
fn hostile_document(dir: &Path, file: &str, changed: bool) -> String {
    let text = std::fs::read_to_string(fixture("reference/export-v2-order-sync.json")).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["metadata"]["flow_name"] = FLOW.into();
    doc["flow"]["name"] = FLOW.into();
    if changed {
        doc["flow"]["description"] = "changed\u{1b}[31m".into();
    }
    let old = doc["systems"][0]["system"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let mut text = serde_json::to_string_pretty(&doc).unwrap();
    // Every mention of the system and the variable, so the document stays consistent.
    text = text.replace(
        &format!("\"{old}\""),
        &serde_json::to_string(SYSTEM).unwrap(),
    );
    text = text.replace(
        "\"NETSUITE_SUBSIDIARY\"",
        &serde_json::to_string(VARIABLE).unwrap(),
    );
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// No raw control character but the line ends, and no forged line.
fn assert_escaped(what: &str, o: &std::process::Output) {
    for (stream, text) in [("stdout", stdout(o)), ("stderr", stderr(o))] {
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{what} {stream}: {text:?}"
        );
        assert!(
            !text.lines().any(|l| l.starts_with("ok   signatures")),
            "{what} {stream}: {text}"
        );
    }
}

#[test]
fn control_characters_in_names_are_escaped_by_every_human_renderer() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let doc = hostile_document(d, "evil.json", false);
    let changed = hostile_document(d, "changed.json", true);
    let package = "pkg\u{1b}]0;x\u{7}\r\nx";
    let run = |args: &[&str]| flowpack_in(d, args);

    let o = run(&["inspect", &doc]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Evil\\u{1b}]0;x\\u{7}\\u{d}\\u{a}ok   signatures 1 trusted"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("Sys\\u{1b}]0;x\\u{7}\\u{d}"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("VAR\\u{1b}[2J\\u{a}"), "{}", stdout(&o));
    assert_escaped("inspect", &o);
    let o = run(&["validate", &doc]);
    assert_escaped("validate", &o);

    for (out, input) in [("a.flowpack", &doc), ("b.flowpack", &changed)] {
        let o = run(&[
            "pack",
            input,
            "-o",
            out,
            "--name",
            package,
            "--version",
            "1.0.0",
        ]);
        if code(&o) != 0 {
            // A package name the manifest refuses is refused naming it, escaped.
            assert_escaped("pack", &o);
            let o = run(&[
                "pack",
                input,
                "-o",
                out,
                "--name",
                "pkg",
                "--version",
                "1.0.0",
            ]);
            assert_eq!(code(&o), 0, "{}", stderr(&o));
        }
        assert_escaped("pack", &o);
    }
    for args in [
        vec!["inspect", "a.flowpack"],
        vec!["validate", "a.flowpack"],
        vec!["verify", "a.flowpack"],
        vec!["push", "a.flowpack", "--env", "local", "--dry-run"],
        vec!["push", "a.flowpack", "--env", "local"],
        vec!["diff", "a.flowpack", "b.flowpack"],
        vec!["diff", "b.flowpack", "env:local"],
        vec!["push", "b.flowpack", "--env", "local", "--dry-run"],
    ] {
        let o = run(&args);
        assert!(code(&o) <= 1, "{args:?}: {}", stderr(&o));
        assert_escaped(&format!("{args:?}"), &o);
        if args[0] != "verify" {
            assert!(
                stdout(&o).contains("Evil\\u{1b}]0;x\\u{7}\\u{d}\\u{a}ok") || args[0] == "validate",
                "{args:?}: {}",
                stdout(&o)
            );
        }
    }
}
