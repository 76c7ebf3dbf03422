//! `pack` of an unpacked archive directory: `unpack` then `pack` with the same
//! SOURCE_DATE_EPOCH gives back the archive byte for byte (documents, `flow.json` settings,
//! package, required inputs), for every kind of archive; an edit is packed as edited; a file the
//! manifest does not list, an existing output and mixing with other inputs are refused.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::util::{code, fixture, stderr, stdout};

const EPOCH: &str = "1767225600";

fn run(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowpack"))
        .args(args)
        .current_dir(cwd)
        .env_remove("FLOWPACK_TOKEN")
        .env_remove("FLOWPACK_KEY_PASSWORD")
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .unwrap()
}

fn ok(cwd: &Path, args: &[&str]) -> Output {
    let o = run(cwd, args);
    assert_eq!(code(&o), 0, "{args:?}: {}{}", stdout(&o), stderr(&o));
    o
}

/// Unpacks `archive` into `dir`, packs `dir` into `again`, and asserts the bytes are the same.
fn round_trip(cwd: &Path, archive: &str, dir: &str, again: &str) {
    ok(
        cwd,
        &["unpack", archive, "-d", dir, "--insecure-skip-signatures"],
    );
    let o = ok(cwd, &["pack", dir, "-o", again]);
    assert!(stdout(&o).contains("(repacked from"), "{}", stdout(&o));
    let a = std::fs::read(cwd.join(archive)).unwrap();
    let b = std::fs::read(cwd.join(again)).unwrap();
    assert!(a == b, "{archive} and {again} differ");
}

/// Every fixture document with a credential filled in (so packing strips it into a required
/// input), in `dir`.
fn documents_with_a_secret(cwd: &Path, dir: &str) {
    std::fs::create_dir_all(cwd.join(dir)).unwrap();
    for name in ["export-v2-order-sync.json", "export-v1-legacy.json"] {
        let bytes = std::fs::read(fixture(&format!("reference/{name}"))).unwrap();
        let mut doc: Value = serde_json::from_slice(&bytes).unwrap();
        if let Some(creds) =
            doc.pointer_mut("/systems/0/system/authentication_implementations/0/credentials")
            && let Some(obj) = creds.as_object_mut()
        {
            obj.insert("token".into(), Value::from("filled-in"));
        }
        std::fs::write(cwd.join(dir).join(name), serde_json::to_vec(&doc).unwrap()).unwrap();
    }
}

#[test]
fn unpack_then_pack_gives_back_the_same_archive_for_every_kind() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    documents_with_a_secret(d, "docs");
    for kind in ["backup", "release", "marketplace"] {
        let archive = format!("{kind}.flowpack");
        let o = run(
            d,
            &[
                "pack",
                "docs",
                "-o",
                &archive,
                "--name",
                "acme",
                "--version",
                "1.2.3",
                "--kind",
                kind,
                "--description",
                "the flows",
            ],
        );
        if kind == "marketplace" && code(&o) != 0 {
            // The legacy fixture has no deployed version: a marketplace package of the other.
            std::fs::remove_file(d.join("docs/export-v1-legacy.json")).unwrap();
            ok(
                d,
                &[
                    "pack",
                    "docs",
                    "-o",
                    &archive,
                    "--name",
                    "acme",
                    "--version",
                    "1.2.3",
                    "--kind",
                    kind,
                ],
            );
        } else {
            assert_eq!(code(&o), 0, "{}", stderr(&o));
        }
        round_trip(
            d,
            &archive,
            &format!("{kind}-unpacked"),
            &format!("{kind}-again.flowpack"),
        );
    }
    // The required inputs survived: the stripped secret is still required.
    let o = ok(
        d,
        &["inspect", "release-again.flowpack", "--format", "json"],
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let inputs = v["manifest"]["inputs"].as_array().unwrap();
    assert!(inputs.iter().any(|i| i["required"] == true), "{inputs:?}");
}

/// A backup exported from an environment carries `flow.json` settings: they come back too.
#[test]
fn an_exported_backup_with_settings_comes_back_byte_for_byte() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let reference = fixture("reference/export-v2-order-sync.json");
    ok(
        d,
        &[
            "pack",
            reference.to_str().unwrap(),
            "-o",
            "app.flowpack",
            "--name",
            "app",
            "--version",
            "1.0.0",
        ],
    );
    ok(d, &["push", "app.flowpack", "--env", "local"]);
    ok(
        d,
        &[
            "export",
            "--env",
            "local",
            "--all",
            "-o",
            "backup.flowpack",
            "--quiet",
        ],
    );
    round_trip(d, "backup.flowpack", "backup", "backup-again.flowpack");
    assert!(
        d.join("backup/flows/shopify-netsuite-orders/flow.json")
            .is_file()
    );

    // An edit of the settings is packed as edited, and diff sees it.
    let settings = d.join("backup/flows/shopify-netsuite-orders/flow.json");
    let mut s: Value = serde_json::from_slice(&std::fs::read(&settings).unwrap()).unwrap();
    s["priority"] = Value::from(5);
    std::fs::write(&settings, serde_json::to_vec_pretty(&s).unwrap()).unwrap();
    ok(d, &["pack", "backup", "-o", "edited.flowpack"]);
    let o = run(d, &["diff", "backup.flowpack", "edited.flowpack"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("priority"), "{}", stdout(&o));
}

#[test]
fn what_a_repack_refuses() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let reference = fixture("reference/export-v2-order-sync.json");
    let reference = reference.to_str().unwrap();
    ok(
        d,
        &[
            "pack",
            reference,
            "-o",
            "a.flowpack",
            "--name",
            "a",
            "--version",
            "1.0.0",
        ],
    );
    ok(
        d,
        &[
            "unpack",
            "a.flowpack",
            "-d",
            "a",
            "--insecure-skip-signatures",
        ],
    );
    // An existing output: exit 2, untouched.
    let before = std::fs::read(d.join("a.flowpack")).unwrap();
    let o = run(d, &["pack", "a", "-o", "a.flowpack"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("a.flowpack: exists"), "{}", stderr(&o));
    assert_eq!(std::fs::read(d.join("a.flowpack")).unwrap(), before);
    // With other inputs: refused, naming the directory.
    let o = run(
        d,
        &[
            "pack",
            "a",
            reference,
            "-o",
            "x.flowpack",
            "--name",
            "x",
            "--version",
            "1.0.0",
        ],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("an unpacked archive directory"),
        "{}",
        stderr(&o)
    );
    // Without --name/--version, other inputs are a usage error naming both.
    let o = run(d, &["pack", reference, "-o", "x.flowpack"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--name and --version"),
        "{}",
        stderr(&o)
    );
    // A document the manifest does not list is not left out silently.
    std::fs::write(d.join("a/flows/new.json"), "{}").unwrap();
    let o = run(d, &["pack", "a", "-o", "b.flowpack"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("flows/new.json: not listed in"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("b.flowpack").exists());
    std::fs::remove_file(d.join("a/flows/new.json")).unwrap();
    // An edited document that no longer validates (in a release): every finding, nothing
    // written.
    let doc = d.join("a/flows/shopify-netsuite-orders/export.json");
    let original = std::fs::read(&doc).unwrap();
    let mut v: Value = serde_json::from_slice(&original).unwrap();
    v["flow"]["priority"] = Value::from(9);
    std::fs::write(&doc, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let o = run(d, &["pack", "a", "-o", "b.flowpack", "--kind", "release"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("error[FP0"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 document failed validation"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("b.flowpack").exists());
    std::fs::write(&doc, original).unwrap();
    // The package can be renamed on the way.
    ok(
        d,
        &[
            "pack",
            "a",
            "-o",
            "c.flowpack",
            "--name",
            "renamed",
            "--version",
            "2.0.0",
        ],
    );
    let o = ok(d, &["inspect", "c.flowpack", "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["manifest"]["package"]["name"], "renamed");
    assert_eq!(v["manifest"]["package"]["version"], "2.0.0");
}

mod property {
    //! unpack ∘ pack is the identity on unsigned archives, whatever their flows: names that
    //! collide into one slug, secrets stripped or not, compact or pretty documents, any kind, any
    //! time.

    use std::path::PathBuf;

    use flowpack_action::{pack, repack, unpack};
    use flowpack_core::archive::{PackageKind, TrustPolicy};
    use proptest::prelude::*;
    use serde_json::Value;

    use crate::util::fixture;

    /// One flow: its name, whether a credential is filled in, whether the file is compact.
    fn flow() -> impl Strategy<Value = (String, bool, bool)> {
        ("[A-Za-z][A-Za-z0-9 >-]{0,10}", any::<bool>(), any::<bool>())
    }

    fn kind() -> impl Strategy<Value = PackageKind> {
        prop_oneof![
            Just(PackageKind::Backup),
            Just(PackageKind::Release),
            Just(PackageKind::Marketplace),
        ]
    }

    fn document(name: &str, secret: bool) -> Value {
        let bytes = std::fs::read(fixture("reference/export-v2-order-sync.json")).unwrap();
        let mut doc: Value = serde_json::from_slice(&bytes).unwrap();
        doc["flow"]["name"] = name.into();
        doc["metadata"]["flow_name"] = name.into();
        if secret {
            doc["systems"][0]["system"]["authentication_implementations"][0]["credentials"]["token"] =
                Value::from("filled-in");
        }
        doc
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn unpack_then_pack_is_the_identity(
            flows in proptest::collection::vec(flow(), 1..4),
            kind in kind(),
            epoch in 0i64..4_000_000_000,
        ) {
            let t = tempfile::tempdir().unwrap();
            let d = t.path();
            std::fs::create_dir(d.join("in")).unwrap();
            let mut inputs: Vec<PathBuf> = Vec::new();
            for (n, (name, secret, compact)) in flows.iter().enumerate() {
                let doc = document(name, *secret);
                let bytes = if *compact {
                    serde_json::to_vec(&doc).unwrap()
                } else {
                    serde_json::to_vec_pretty(&doc).unwrap()
                };
                let path = d.join("in").join(format!("{n}.json"));
                std::fs::write(&path, bytes).unwrap();
                inputs.push(path);
            }
            let created_at = time::OffsetDateTime::from_unix_timestamp(epoch).unwrap();
            let first = d.join("first.flowpack");
            let mut opts = pack::PackOptions::new(
                inputs,
                first.clone(),
                "prop".into(),
                semver::Version::new(1, 2, 3),
                created_at,
            );
            opts.kind = kind;
            opts.description = "generated".into();
            pack::run(&opts).unwrap();

            let mut u = unpack::UnpackOptions::new(first.clone(), d.join("out"), TrustPolicy::default());
            u.skip_signatures = true;
            unpack::run(&u).unwrap();
            let again = d.join("again.flowpack");
            repack::run(&repack::RepackOptions::new(d.join("out"), again.clone(), created_at)).unwrap();
            prop_assert!(std::fs::read(&first).unwrap() == std::fs::read(&again).unwrap());
        }
    }
}
