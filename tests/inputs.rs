//! Every file a user names is read within a bound: keys (64 KiB), overlays and configuration
//! (16 MiB), documents (the per-document bound, checked before reading); devices such as
//! `/dev/zero` are refused unread. Errors about overlays and configuration never quote a line
//! of the file (it may hold a secret).

use std::path::Path;

use crate::util::{code, fixture, flowpack_in, stderr};

fn run(d: &Path, args: &[&str]) -> std::process::Output {
    flowpack_in(d, args)
}

fn packed(d: &Path) {
    let doc = fixture("reference/export-v2-order-sync.json");
    let o = run(
        d,
        &[
            "pack",
            doc.to_str().unwrap(),
            "-o",
            "a.flowpack",
            "--name",
            "a",
            "--version",
            "1.0.0",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn documents_past_the_bound_and_devices_are_refused_unread_with_exit_1() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    // 1 GiB, sparse: read whole it would take the memory the bound is there to save.
    std::fs::File::create(d.join("big.json"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    for args in [
        &["validate", "big.json"][..],
        &[
            "pack",
            "big.json",
            "-o",
            "x.flowpack",
            "--name",
            "x",
            "--version",
            "1.0.0",
        ],
        &["inspect", "big.json"],
        &["migrate", "big.json", "--to", "latest"],
    ] {
        let o = run(d, args);
        assert_eq!(code(&o), 1, "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(
                "big.json: refused before parsing: larger than the per-document bound of \
                 16777216 bytes; not read"
            ),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    for args in [
        &["validate", "/dev/zero"][..],
        &[
            "pack",
            "/dev/zero",
            "-o",
            "x.flowpack",
            "--name",
            "x",
            "--version",
            "1.0.0",
        ],
    ] {
        let o = run(d, args);
        assert_eq!(code(&o), 1, "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("/dev/zero: refused before parsing: not a regular file"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    assert!(!d.join("x.flowpack").exists());
}

#[test]
fn keys_overlays_and_configs_past_their_bound_or_devices_are_exit_2() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    packed(d);
    std::fs::write(d.join("big.pub"), "a".repeat(64 * 1024 + 1)).unwrap();
    let o = run(d, &["verify", "a.flowpack", "--trusted-key", "big.pub"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("big.pub: larger than the limit of 65536 bytes for a key file"),
        "{}",
        stderr(&o)
    );
    for args in [
        &["verify", "a.flowpack", "--trusted-key", "/dev/zero"][..],
        &["sign", "a.flowpack", "--key", "/dev/zero"],
        &[
            "push",
            "a.flowpack",
            "--env",
            "local",
            "--dry-run",
            "--overlay",
            "/dev/zero",
        ],
        &[
            "push",
            "a.flowpack",
            "--env",
            "local",
            "--dry-run",
            "--config",
            "/dev/zero",
        ],
    ] {
        let o = run(d, args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("/dev/zero: not a regular file"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    std::fs::File::create(d.join("big.toml"))
        .unwrap()
        .set_len(16 * 1024 * 1024 + 1)
        .unwrap();
    let o = run(
        d,
        &[
            "push",
            "a.flowpack",
            "--env",
            "local",
            "--dry-run",
            "--overlay",
            "big.toml",
        ],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o)
            .contains("big.toml: larger than the limit of 16777216 bytes for an overlay file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn toml_errors_never_quote_the_secret_on_the_line() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    packed(d);
    std::fs::write(d.join("ov.toml"), "[variables]\napi = \"s3cr3t-value\n").unwrap();
    let o = run(
        d,
        &[
            "push",
            "a.flowpack",
            "--env",
            "local",
            "--dry-run",
            "--overlay",
            "ov.toml",
        ],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("ov.toml: not a valid overlay: line 2, column "),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("s3cr3t"), "{}", stderr(&o));

    std::fs::write(
        d.join("flowpack.toml"),
        "[env.prod]\nurl = \"http://127.0.0.1:9\"\ntoken = \"tok-s3cr3t\"\n",
    )
    .unwrap();
    let o = run(d, &["push", "a.flowpack", "--env", "prod", "--dry-run"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("flowpack.toml: line 3, column 1: unknown field `token`"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("s3cr3t"), "{}", stderr(&o));
}
