//! `flowpack init`: the config it writes is the README's example, and that example works
//! against a real sandbox (its URLs substituted): push to staging, a signed push to production,
//! an unsigned one refused. An existing config is never overwritten without `--force`.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::{SandboxProcess, code, fixture, root, stderr, stdout};

const TOKEN: &str = "init-test-token";

/// Runs flowpack in `cwd` with both environments' API keys set.
fn run(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowpack"))
        .args(args)
        .current_dir(cwd)
        .env_remove("FLOWPACK_TOKEN")
        .env_remove("FLOWPACK_KEY_PASSWORD")
        .env("FLOWPACK_STAGING_TOKEN", TOKEN)
        .env("FLOWPACK_PRODUCTION_TOKEN", TOKEN)
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .output()
        .expect("run flowpack")
}

fn ok(cwd: &Path, args: &[&str]) -> Output {
    let o = run(cwd, args);
    assert_eq!(code(&o), 0, "{args:?}: {}{}", stdout(&o), stderr(&o));
    o
}

/// The ```toml block of the README that follows the marker naming `flowpack init`.
fn readme_example() -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let marker = "<!-- the output of `flowpack init`";
    let at = readme.find(marker).expect("the README marks the example");
    let rest = &readme[at..];
    let start = rest.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let len = rest[start..].find("```\n").expect("its end");
    rest[start..start + len].to_string()
}

#[test]
fn the_readme_example_is_what_init_writes_and_it_works_against_a_sandbox() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["init"]);
    let written = std::fs::read_to_string(d.join("flowpack.toml")).unwrap();
    assert_eq!(
        written,
        readme_example(),
        "the README's example flowpack.toml is not what `flowpack init` writes"
    );
    assert!(d.join("overlays/staging.toml").is_file());
    assert!(d.join("overlays/production.toml").is_file());

    // Both environments on one sandbox: only the URLs change.
    let sandbox = SandboxProcess::start(d, TOKEN, &[]);
    let config: String = written
        .lines()
        .map(|l| {
            if l.starts_with("url = ") {
                format!("url = \"{}\"", sandbox.url)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(config.matches(&sandbox.url).count(), 2, "{config}");
    std::fs::write(d.join("flowpack.toml"), config).unwrap();

    let reference = fixture("reference/export-v2-order-sync.json");
    let reference = reference.to_str().unwrap();
    ok(d, &["keygen", "-o", "keys/release", "--unencrypted"]);
    let pack = |out: &str, sign: bool| {
        let mut args = vec![
            "pack",
            reference,
            "-o",
            out,
            "--name",
            "app",
            "--version",
            "1.0.0",
        ];
        if sign {
            args.extend(["--sign", "keys/release.key"]);
        }
        ok(d, &args);
    };
    pack("app.flowpack", true);
    pack("unsigned.flowpack", false);

    let o = ok(
        d,
        &["push", "app.flowpack", "--env", "staging", "--dry-run"],
    );
    assert!(
        stdout(&o).contains("Shopify > NetSuite Orders"),
        "{}",
        stdout(&o)
    );
    ok(d, &["push", "app.flowpack", "--env", "staging"]);
    // Production demands a signature by keys/release.pub.
    let o = run(d, &["push", "unsigned.flowpack", "--env", "production"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("the archive is not signed; 1 trusted signature required"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("hint: sign it with a trusted key: flowpack sign ARCHIVE --key KEY"),
        "{}",
        stderr(&o)
    );
    ok(d, &["push", "app.flowpack", "--env", "production"]);
    let o = ok(d, &["history", "--env", "staging"]);
    assert!(stdout(&o).contains("app.flowpack"), "{}", stdout(&o));
}

#[test]
fn init_never_overwrites_without_force() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::write(d.join("flowpack.toml"), "# mine\n").unwrap();
    let o = run(d, &["init"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("flowpack.toml: exists"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("hint: use --force"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(d.join("flowpack.toml")).unwrap(),
        "# mine\n"
    );
    std::fs::create_dir(d.join("overlays")).unwrap();
    std::fs::write(d.join("overlays/staging.toml"), "# my values\n").unwrap();
    let o = ok(d, &["init", "--force"]);
    assert!(
        stdout(&o).contains("kept overlays/staging.toml"),
        "{}",
        stdout(&o)
    );
    assert!(
        std::fs::read_to_string(d.join("flowpack.toml"))
            .unwrap()
            .contains("[env.production]")
    );
    assert_eq!(
        std::fs::read_to_string(d.join("overlays/staging.toml")).unwrap(),
        "# my values\n"
    );
}

#[test]
fn an_environment_without_a_config_file_names_init() {
    let t = tempfile::tempdir().unwrap();
    let o = run(
        t.path(),
        &["export", "--env", "prod", "--all", "-o", "x.flowpack"],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("flowpack.toml: no such file, so no environment \"prod\" is defined"),
        "{err}"
    );
    assert!(
        err.contains("hint: create one with `flowpack init`"),
        "{err}"
    );
    assert!(!err.contains("known: none"), "{err}");
}
