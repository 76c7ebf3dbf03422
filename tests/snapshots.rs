//! Snapshots (insta) of what the `flowpack` binary prints: the human and JSON output of every
//! command and every `--help`, with what changes from run to run redacted (temporary paths,
//! times, key ids, digests, platform ids). The SARIF output is checked against the official
//! SARIF 2.1.0 schema.
//!
//! To re-accept after an intended change (`cargo insta` is not needed):
//! `INSTA_UPDATE=always cargo test --test tests snapshots`, then read the changed
//! `tests/snapshots/*.snap` files and commit them. A run without `INSTA_UPDATE` fails on any
//! difference and leaves a `.snap.new` beside the snapshot; delete those before committing.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::{code, fixture, root, stderr, stdout};

/// The fixed time of every run (`SOURCE_DATE_EPOCH`): 2026-01-01T00:00:00Z.
const EPOCH: &str = "1767225600";

/// Runs flowpack in `cwd` with a fixed clock and no key password or token from the caller.
fn run(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowpack"))
        .args(args)
        .current_dir(cwd)
        .env_remove("FLOWPACK_TOKEN")
        .env_remove("FLOWPACK_KEY_PASSWORD")
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("COLUMNS", "100")
        .output()
        .expect("run flowpack")
}

/// The exit code, stdout and stderr of a run as one text.
fn transcript(o: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        code(o),
        stdout(o),
        stderr(o)
    )
}

/// insta settings that redact what differs between runs and machines. `tmp` is the run's
/// temporary directory (if any), written as `[TMP]`; the repository root becomes `[ROOT]`.
/// `platform_ids` redacts the ids a platform assigns (`(id 12)`, `"id": 12`), which depend on
/// what the environment held before; ids inside documents (step ids) stay.
fn settings(tmp: Option<&Path>, platform_ids: bool) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(root().join("tests/snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    let mut filters: Vec<(String, String)> = Vec::new();
    if let Some(tmp) = tmp {
        // The canonical path too: macOS's /var is /private/var.
        for p in [tmp.to_path_buf(), tmp.canonicalize().unwrap()] {
            filters.push((regex_escape(&p.display().to_string()), "[TMP]".into()));
        }
    }
    filters.push((regex_escape(&root().display().to_string()), "[ROOT]".into()));
    filters.extend(
        [
            // RFC 3339 times.
            (
                r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
                "[TIME]",
            ),
            // History record ids: a compact UTC time and 6 random hex digits.
            (r"\b\d{8}T\d{6}Z-[0-9a-f]{6}\b", "[RECORD]"),
            // Compact UTC times in names.
            (r"\b\d{8}T\d{6}Z\b", "[TIME]"),
            // SHA-256 digests (hex), whole or shortened to 12+ characters.
            (r"\b[0-9a-f]{64}\b", "[SHA256]"),
            // minisign key ids (16 hex digits).
            (r"\b[0-9A-F]{16}\b", "[KEYID]"),
            // Elapsed times.
            (r"\b\d+(\.\d+)?(ms|s)\b", "[DURATION]"),
            // Lock holders and lock files (keyed by a digest of the environment's identity).
            (
                r"\(pid \d+ on \S+, user \S+, since",
                "(pid [PID] on [HOST], user [USER], since",
            ),
            (r"[^\s(]*/[0-9a-f]{16}\.lock\b", "[LOCKFILE]"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string())),
    );
    if platform_ids {
        filters.push((
            r#""(id|existing_id|flow_id|version_id)": \d+"#.into(),
            r#""$1": "[ID]""#.into(),
        ));
        filters.push((r"\(id \d+\)".into(), "(id [ID])".into()));
        filters.push((r"\(id \d+ → \d+\)".into(), "(id [ID] → [ID])".into()));
        filters.push((r"old flow \d+".into(), "old flow [ID]".into()));
        filters.push((
            r"deployed version \d+".into(),
            "deployed version [ID]".into(),
        ));
    }
    for (from, to) in &filters {
        s.add_filter(from, to.as_str());
    }
    s
}

/// A literal string as a regular expression.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Snapshots one run under `name`.
fn snap(name: &str, tmp: Option<&Path>, o: &Output) {
    settings(tmp, false).bind(|| insta::assert_snapshot!(name, transcript(o)));
}

/// Snapshots one run against an environment under `name`, platform ids redacted.
fn snap_platform(name: &str, tmp: Option<&Path>, o: &Output) {
    settings(tmp, true).bind(|| insta::assert_snapshot!(name, transcript(o)));
}

fn reference() -> String {
    fixture("reference/export-v2-order-sync.json")
        .display()
        .to_string()
}

const COMMANDS: &[&str] = &[
    "validate",
    "migrate",
    "inspect",
    "pack",
    "keygen",
    "sign",
    "verify",
    "unpack",
    "export",
    "push",
    "diff",
    "backup",
    "backups",
    "history",
    "rollback",
    "recover",
    "unlock",
    "publish",
    "pull",
    "completions",
    "man",
    "init",
];

#[test]
fn help_of_every_command() {
    let r = root();
    snap("help", None, &run(&r, &["--help"]));
    for cmd in COMMANDS {
        let o = run(&r, &[cmd, "--help"]);
        assert_eq!(code(&o), 0, "{cmd}: {}", stderr(&o));
        snap(&format!("help_{cmd}"), None, &o);
    }
}

/// `flowpack init` in an empty directory, again (refused), and an environment asked for where
/// there is no config file.
#[test]
fn init_and_a_missing_config() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let tmp = Some(d);
    snap(
        "env_missing_config",
        tmp,
        &run(d, &["export", "--env", "prod", "--all", "-o", "x.flowpack"]),
    );
    let o = run(d, &["init"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    snap("init", tmp, &o);
    snap("init_exists", tmp, &run(d, &["init"]));
}

/// A manual page as `flowpack man` writes it (roff).
#[test]
fn man_page_of_keygen() {
    let t = tempfile::tempdir().unwrap();
    let o = run(t.path(), &["man", "man1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let page = std::fs::read_to_string(t.path().join("man1/flowpack-keygen.1")).unwrap();
    settings(None, false).bind(|| insta::assert_snapshot!("man_keygen", page));
}

/// export needs --flow or --all, and the usage error names both.
#[test]
fn export_without_flow_or_all() {
    let t = tempfile::tempdir().unwrap();
    let o = run(t.path(), &["export", "--env", "local", "-o", "x.flowpack"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("<--flow <ID>|--all>"), "{}", stderr(&o));
    snap("export_without_flow_or_all", Some(t.path()), &o);
}

/// A push refused for a required input no overlay supplies: the TOML lines to copy end the
/// message, nothing after them on their lines.
#[test]
fn push_missing_inputs() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reference()).unwrap()).unwrap();
    doc["systems"][0]["system"]["authentication_implementations"][0]["credentials"]["token"] =
        serde_json::Value::from("shpat_source_1");
    std::fs::write(d.join("doc.json"), serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let o = run(
        d,
        &[
            "pack",
            "doc.json",
            "-o",
            "s.flowpack",
            "--name",
            "s",
            "--version",
            "1.0.0",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(d, &["push", "s.flowpack", "--env", "local"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).ends_with("token = \"${env:SHOPIFY_ADMIN_API_TOKEN_TOKEN}\"\n"),
        "{}",
        stderr(&o)
    );
    snap_platform("push_missing_inputs", Some(d), &o);
}

#[test]
fn validate_human_json_and_sarif() {
    let r = root();
    let clean = reference();
    let faulty = fixture("validate/v2.many_faults.json")
        .display()
        .to_string();
    snap(
        "validate_human",
        None,
        &run(&r, &["validate", &clean, &faulty]),
    );
    snap(
        "validate_json",
        None,
        &run(&r, &["validate", &clean, &faulty, "--format", "json"]),
    );

    // SARIF: valid against the official SARIF 2.1.0 schema (draft-04), with and without
    // findings.
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("schemas/sarif-schema-2.1.0.json")).unwrap())
            .unwrap();
    assert_eq!(
        schema["$schema"], "http://json-schema.org/draft-04/schema#",
        "the schema's draft"
    );
    let validator = jsonschema::validator_for(&schema).expect("the SARIF schema compiles");
    for files in [vec![&clean, &faulty], vec![&clean]] {
        let mut args = vec!["validate", "--format", "sarif"];
        args.extend(files.iter().map(|f| f.as_str()));
        let o = run(&r, &args);
        let log: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&log)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        assert_eq!(log["version"], "2.1.0");
    }
    // The validator is not lenient: a result without a message is refused.
    let o = run(&r, &["validate", "--format", "sarif", &faulty]);
    let mut log: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    log["runs"][0]["results"][0]
        .as_object_mut()
        .unwrap()
        .remove("message");
    assert!(!validator.is_valid(&log));
}

#[test]
fn inspect_and_migrate() {
    let r = root();
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let legacy = fixture("reference/export-v1-legacy.json")
        .display()
        .to_string();
    snap("inspect_human", None, &run(&r, &["inspect", &reference()]));
    snap(
        "inspect_json",
        None,
        &run(&r, &["inspect", &reference(), "--format", "json"]),
    );
    snap(
        "migrate_up",
        Some(d),
        &run(d, &["migrate", &legacy, "--to", "latest", "-o", "v2.json"]),
    );
    snap(
        "migrate_check",
        Some(d),
        &run(d, &["migrate", &legacy, "--to", "2", "--check"]),
    );
    snap(
        "migrate_down_refused",
        Some(d),
        &run(d, &["migrate", &reference(), "--to", "1", "-o", "v1.json"]),
    );
}

/// diff of two documents: the same (exit 0), then a changed copy in human and JSON form.
#[test]
fn diff_human_and_json() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let text = std::fs::read_to_string(fixture("reference/export-v2-order-sync.json")).unwrap();
    std::fs::write(d.join("left.json"), &text).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["flow"]["priority"] = serde_json::json!(1);
    doc["flow"]["description"] = serde_json::json!("changed in dev");
    std::fs::write(
        d.join("right.json"),
        serde_json::to_vec_pretty(&doc).unwrap(),
    )
    .unwrap();
    snap(
        "diff_same",
        Some(d),
        &run(d, &["diff", "left.json", "left.json"]),
    );
    snap(
        "diff_human",
        Some(d),
        &run(d, &["diff", "left.json", "right.json"]),
    );
    snap(
        "diff_json",
        Some(d),
        &run(d, &["diff", "left.json", "right.json", "--format", "json"]),
    );
}

/// keygen, pack (signed), sign, verify (human and JSON), unpack, then push into and export from
/// the embedded `local` environment, all in one temporary directory.
#[test]
fn archive_commands_and_local_environment() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let tmp = Some(d);
    let reference = reference();

    let o = run(d, &["keygen", "-o", "k", "--unencrypted"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    snap("keygen", tmp, &o);
    let o = run(d, &["keygen", "-o", "k2", "--unencrypted"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let o = run(
        d,
        &[
            "pack",
            &reference,
            "-o",
            "app.flowpack",
            "--name",
            "app",
            "--version",
            "1.0.0",
            "--kind",
            "release",
            "--sign",
            "k.key",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    snap("pack", tmp, &o);
    snap(
        "pack_refused",
        tmp,
        &run(
            d,
            &[
                "pack",
                fixture("validate/v2.dangling_connection.json")
                    .to_str()
                    .unwrap(),
                "-o",
                "bad.flowpack",
                "--name",
                "bad",
                "--version",
                "1.0.0",
            ],
        ),
    );

    let o = run(d, &["sign", "app.flowpack", "--key", "k2.key"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    snap("sign", tmp, &o);

    let trusted = ["--trusted-key", "k.pub", "--trusted-key", "k2.pub"];
    let mut args = vec!["verify", "app.flowpack", "--threshold", "2"];
    args.extend(trusted);
    snap("verify_human", tmp, &run(d, &args));
    args.extend(["--format", "json"]);
    snap("verify_json", tmp, &run(d, &args));
    snap(
        "verify_untrusted_json",
        tmp,
        &run(d, &["verify", "app.flowpack", "--format", "json"]),
    );
    // inspect lists every signature: trusted (k) and untrusted (k2).
    snap(
        "inspect_archive_signatures",
        tmp,
        &run(d, &["inspect", "app.flowpack", "--trusted-key", "k.pub"]),
    );
    // Why the signatures check fails, and what fixes it: signed by keys not trusted, unsigned,
    // short of the threshold.
    let o = run(d, &["keygen", "-o", "k3", "--unencrypted"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    snap(
        "verify_signed_by_untrusted_keys",
        tmp,
        &run(d, &["verify", "app.flowpack", "--trusted-key", "k3.pub"]),
    );
    let o = run(
        d,
        &[
            "pack",
            &reference,
            "-o",
            "unsigned.flowpack",
            "--name",
            "app",
            "--version",
            "1.0.0",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    snap(
        "verify_unsigned",
        tmp,
        &run(
            d,
            &["verify", "unsigned.flowpack", "--trusted-key", "k.pub"],
        ),
    );
    snap(
        "verify_threshold_short",
        tmp,
        &run(
            d,
            &[
                "verify",
                "app.flowpack",
                "--trusted-key",
                "k.pub",
                "--trusted-key",
                "k3.pub",
                "--threshold",
                "2",
            ],
        ),
    );

    snap(
        "unpack",
        tmp,
        &run(
            d,
            &[
                "unpack",
                "app.flowpack",
                "-d",
                "out",
                "--trusted-key",
                "k.pub",
            ],
        ),
    );

    // The unpacked directory packs back into an archive (unsigned: no signing key given).
    snap(
        "pack_unpacked_directory",
        tmp,
        &run(d, &["pack", "out", "-o", "again.flowpack"]),
    );

    // push and export against the embedded sandbox (`.flowpack/local.db` in the directory).
    snap_platform(
        "push_dry_run",
        tmp,
        &run(d, &["push", "app.flowpack", "--env", "local", "--dry-run"]),
    );
    let o = run(
        d,
        &["push", "app.flowpack", "--env", "local", "--format", "json"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    snap_platform("push_json", tmp, &o);
    snap_platform(
        "push_again_human",
        tmp,
        &run(d, &["push", "app.flowpack", "--env", "local"]),
    );
    let o = run(
        d,
        &["export", "--all", "--env", "local", "-o", "backup.flowpack"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    snap_platform("export", tmp, &o);
    // The push was recorded; rollback undoes it (a dry run first), then finds nothing left.
    snap_platform("history", tmp, &run(d, &["history", "--env", "local"]));
    snap_platform(
        "rollback_dry_run",
        tmp,
        &run(d, &["rollback", "--env", "local", "--dry-run"]),
    );
    snap_platform("rollback", tmp, &run(d, &["rollback", "--env", "local"]));
    snap_platform(
        "rollback_nothing_left",
        tmp,
        &run(d, &["rollback", "--env", "local"]),
    );
}

/// `push --restore-state` on a flow that exists unchanged but whose state differs from the
/// archive's `flow.json` (here: enabled in the backup, disabled since): the dry run says what the
/// push would write, the push writes it, and the rollback writes it back.
#[test]
fn restore_state_of_an_unchanged_flow() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let tmp = Some(d);
    let reference = reference();
    let ok = |args: &[&str]| {
        let o = run(d, args);
        assert_eq!(code(&o), 0, "{args:?}: {}{}", stdout(&o), stderr(&o));
    };
    ok(&[
        "pack",
        &reference,
        "-o",
        "app.flowpack",
        "--name",
        "app",
        "--version",
        "1.0.0",
    ]);
    ok(&["push", "app.flowpack", "--env", "local"]);
    // Enabled (recorded), backed up, then disabled again by rolling the enabling back.
    ok(&["push", "app.flowpack", "--env", "local", "--enable"]);
    ok(&["export", "--all", "--env", "local", "-o", "backup.flowpack"]);
    ok(&["rollback", "--env", "local"]);
    let restore = |extra: &[&str]| {
        let mut args = vec![
            "push",
            "backup.flowpack",
            "--env",
            "local",
            "--restore-state",
        ];
        args.extend_from_slice(extra);
        run(d, &args)
    };
    snap_platform("push_restore_state_dry_run", tmp, &restore(&["--dry-run"]));
    snap_platform("push_restore_state", tmp, &restore(&[]));
    snap_platform("push_restore_state_again", tmp, &restore(&[]));
    snap_platform(
        "rollback_restore_state",
        tmp,
        &run(d, &["rollback", "--env", "local"]),
    );
}

/// A push killed after its first write (the test hook kills it with SIGKILL): what the next
/// push, `history`, `recover` (twice) and `unlock` say.
#[test]
fn an_interrupted_push_and_its_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tmp = Some(d);
    let o = run(
        d,
        &[
            "pack",
            &reference(),
            "-o",
            "app.flowpack",
            "--name",
            "app",
            "--version",
            "1.0.0",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let killed = Command::new(env!("CARGO_BIN_EXE_flowpack"))
        .args(["push", "app.flowpack", "--env", "local"])
        .current_dir(d)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("FLOWPACK_TEST_CRASH_AFTER", "1")
        .output()
        .unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&killed.status),
        Some(9)
    );
    snap_platform(
        "push_after_interrupted",
        tmp,
        &run(d, &["push", "app.flowpack", "--env", "local"]),
    );
    snap_platform(
        "history_interrupted",
        tmp,
        &run(d, &["history", "--env", "local"]),
    );
    snap_platform("recover", tmp, &run(d, &["recover", "--env", "local"]));
    snap_platform(
        "recover_nothing",
        tmp,
        &run(d, &["recover", "--env", "local"]),
    );
    snap_platform("unlock", tmp, &run(d, &["unlock", "--env", "local"]));
}

/// `push` of 200 flows, 3 of them changed, against a sandbox with latency (progress off: stderr
/// is not a terminal): a plan summary, a line per flow that changes, one grouped warning and the
/// totals, in at most 15 lines; `--verbose` lists every flow.
#[test]
fn push_of_200_flows_says_what_changes_in_a_screenful() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let token = "snap-200-token";
    let sandbox = crate::util::SandboxProcess::start(d, token, &["--latency-ms", "20"]);
    std::fs::write(
        d.join("flowpack.toml"),
        format!(
            "[env.prod]\nurl = \"{}\"\ntoken_env = \"PROD_TOKEN\"\n",
            sandbox.url
        ),
    )
    .unwrap();
    let base: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reference()).unwrap()).unwrap();
    let pack = |name: &str, changed: &[usize]| {
        let src = d.join(name);
        std::fs::create_dir_all(&src).unwrap();
        for i in 0..200 {
            let mut doc = base.clone();
            doc["flow"]["name"] = format!("Flow {i:03}").into();
            if changed.contains(&i) {
                doc["flow"]["priority"] = 1.into();
            }
            std::fs::write(src.join(format!("{i:03}.json")), doc.to_string()).unwrap();
        }
        let out = format!("{name}.flowpack");
        let o = run(
            d,
            &[
                "pack",
                src.to_str().unwrap(),
                "-o",
                &out,
                "--name",
                "many",
                "--version",
                "1.0.0",
            ],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        out
    };
    let (v1, v2) = (pack("v1", &[]), pack("v2", &[7, 80, 151]));
    let push = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_flowpack"))
            .args(args)
            .current_dir(d)
            .env("PROD_TOKEN", token)
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .env("COLUMNS", "100")
            .output()
            .unwrap()
    };
    let o = push(&["push", &v1, "--env", "prod", "--jobs", "8"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = push(&["push", &v2, "--env", "prod", "--on-conflict", "replace"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines = stdout(&o).lines().count() + stderr(&o).lines().count();
    assert!(lines <= 15, "{lines} lines:\n{}{}", stdout(&o), stderr(&o));
    snap_platform("push_200_flows_3_changed", Some(d), &o);
    // --verbose lists the 197 unchanged flows too.
    let o = push(&["push", &v2, "--env", "prod", "--verbose"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let unchanged = stdout(&o)
        .lines()
        .filter(|l| l.starts_with("unchanged  Flow "))
        .count();
    assert_eq!(unchanged, 200, "{}", stdout(&o));
}

/// The text of an HTML page, one text node a line: the style sheet dropped, tags as line
/// breaks, the five entities the report writes decoded, blank lines dropped.
fn html_text(html: &str) -> String {
    let mut body = html.to_string();
    if let (Some(a), Some(b)) = (body.find("<style>"), body.find("</style>")) {
        body.replace_range(a..b + "</style>".len(), "");
    }
    let mut out = String::new();
    let mut in_tag = false;
    let mut line = String::new();
    for c in body.chars() {
        match c {
            '<' => {
                in_tag = true;
                let t = line.trim();
                if !t.is_empty() {
                    out.push_str(t);
                    out.push('\n');
                }
                line.clear();
            }
            '>' if in_tag => in_tag = false,
            c if !in_tag => line.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The review reports (`diff --format markdown|html`) of the reference fixtures: LEFT holds
/// both, RIGHT the order sync with a step changed, one removed and one added (the legacy flow
/// the same). The HTML is snapshotted as its text content.
#[test]
fn review_reports_of_the_reference_fixtures() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let order: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reference()).unwrap()).unwrap();
    let legacy = std::fs::read(fixture("reference/export-v1-legacy.json")).unwrap();
    for side in ["left", "right"] {
        std::fs::create_dir_all(d.join(side)).unwrap();
        std::fs::write(d.join(side).join("legacy.json"), &legacy).unwrap();
    }
    std::fs::write(
        d.join("left/order.json"),
        serde_json::to_vec_pretty(&order).unwrap(),
    )
    .unwrap();
    std::fs::write(
        d.join("right/order.json"),
        serde_json::to_vec_pretty(&crate::review::changed(order)).unwrap(),
    )
    .unwrap();
    snap(
        "diff_markdown",
        Some(d),
        &run(d, &["diff", "left", "right", "--format", "markdown"]),
    );
    let o = run(d, &["diff", "left", "right", "--format", "html"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    settings(Some(d), false)
        .bind(|| insta::assert_snapshot!("diff_html_text", html_text(&stdout(&o))));
}
