//! Outputs are never replaced without `--force`; with it they are replaced atomically and a
//! symlink is replaced, not written through. Exports leave replaced flows out by default.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use crate::util::{code, fixture, flowpack_in, stderr, stdout};

const REFUSED: &str = "already exists and replacing it was not allowed\nhint: use --force";

fn pack(d: &Path, out: &str, docs: &[&Path], extra: &[&str]) -> std::process::Output {
    let mut args = vec!["pack"];
    args.extend(docs.iter().map(|p| p.to_str().unwrap()));
    args.extend_from_slice(&[
        "-o",
        out,
        "--name",
        "app",
        "--version",
        "1.0.0",
        "--kind",
        "release",
    ]);
    args.extend_from_slice(extra);
    flowpack_in(d, &args)
}

fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line.split_whitespace().nth(1).unwrap(), 8).unwrap()
}

#[test]
fn pack_and_migrate_refuse_an_existing_output_unless_force() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let v2 = fixture("reference/export-v2-order-sync.json");
    let v1 = fixture("reference/export-v1-legacy.json");
    let o = pack(d, "app.flowpack", &[&v2], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let before = std::fs::read(d.join("app.flowpack")).unwrap();

    // pack -o over an archive: refused, named, untouched.
    let o = pack(d, "app.flowpack", &[&v1], &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("app.flowpack: {REFUSED}")),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(d.join("app.flowpack")).unwrap(), before);

    // migrate -o over an archive: refused before anything is read, untouched.
    let o = flowpack_in(
        d,
        &[
            "migrate",
            v1.to_str().unwrap(),
            "--to",
            "latest",
            "-o",
            "app.flowpack",
        ],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains(REFUSED), "{}", stderr(&o));
    assert_eq!(std::fs::read(d.join("app.flowpack")).unwrap(), before);
    let o = flowpack_in(
        d,
        &[
            "migrate",
            v1.to_str().unwrap(),
            "--to",
            "latest",
            "-o",
            "app.flowpack",
            "--force",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let migrated: Value =
        serde_json::from_slice(&std::fs::read(d.join("app.flowpack")).unwrap()).unwrap();
    assert_eq!(migrated["metadata"]["format_version"], 2);

    // pack --force replaces it again.
    let o = pack(d, "app.flowpack", &[&v2], &["--force"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        std::fs::read(d.join("app.flowpack"))
            .unwrap()
            .starts_with(b"PK\x03\x04")
    );
    let mode = std::fs::metadata(d.join("app.flowpack"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o666 & !umask());

    // A dangling symlink is an existing output; with --force the link itself is replaced and
    // the file it points to is never written.
    std::os::unix::fs::symlink(d.join("nowhere.flowpack"), d.join("dangling.flowpack")).unwrap();
    let o = pack(d, "dangling.flowpack", &[&v2], &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(!d.join("nowhere.flowpack").exists());
    std::fs::write(d.join("precious.txt"), "keep").unwrap();
    std::os::unix::fs::symlink(d.join("precious.txt"), d.join("link.flowpack")).unwrap();
    let o = pack(d, "link.flowpack", &[&v2], &["--force"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(d.join("precious.txt")).unwrap(),
        "keep"
    );
    let meta = std::fs::symlink_metadata(d.join("link.flowpack")).unwrap();
    assert!(meta.file_type().is_file());
    assert!(
        std::fs::read(d.join("link.flowpack"))
            .unwrap()
            .starts_with(b"PK\x03\x04")
    );
    let o = flowpack_in(
        d,
        &[
            "migrate",
            v1.to_str().unwrap(),
            "--to",
            "latest",
            "-o",
            "dangling.flowpack",
        ],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(!d.join("nowhere.flowpack").exists());

    // Nothing else was left behind (no temporary files).
    let mut names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "app.flowpack",
            "dangling.flowpack",
            "link.flowpack",
            "precious.txt"
        ]
    );
}

#[test]
fn export_refuses_an_existing_output_and_leaves_replaced_flows_out() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let v2 = fixture("reference/export-v2-order-sync.json");
    let mut old: Value = serde_json::from_slice(&std::fs::read(&v2).unwrap()).unwrap();
    let name = old["flow"]["name"].as_str().unwrap().to_string();
    old["flow"]["name"] = Value::from(format!("{name} (replaced 20261129T120000Z)-2"));
    std::fs::create_dir(d.join("old")).unwrap();
    std::fs::write(d.join("old/old.json"), serde_json::to_vec(&old).unwrap()).unwrap();
    let o = pack(d, "app.flowpack", &[&v2, &d.join("old/old.json")], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = flowpack_in(d, &["push", "app.flowpack", "--env", "local"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let export = |extra: &[&str]| {
        let mut args = vec![
            "export",
            "--all",
            "--env",
            "local",
            "-o",
            "out.flowpack",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        flowpack_in(d, &args)
    };
    let flows = |d: &Path| -> Vec<String> {
        let o = flowpack_in(d, &["inspect", "out.flowpack", "--format", "json"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v["manifest"]["flows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    };
    let o = export(&[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(flows(d), std::slice::from_ref(&name));
    let before = std::fs::read(d.join("out.flowpack")).unwrap();
    let o = export(&["--include-replaced"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("out.flowpack: {REFUSED}")),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(d.join("out.flowpack")).unwrap(), before);
    let o = export(&["--include-replaced", "--force"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let mut all = flows(d);
    all.sort();
    assert_eq!(
        all,
        [
            name.clone(),
            format!("{name} (replaced 20261129T120000Z)-2")
        ]
    );

    // backup too: left out by default, kept with --include-replaced.
    for (extra, want) in [(&[][..], 1), (&["--include-replaced"][..], 2)] {
        let mut args = vec!["backup", "--env", "local", "--dir", "b", "--format", "json"];
        args.extend_from_slice(extra);
        let o = flowpack_in(d, &args);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let report: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["flows"], want, "{extra:?}");
    }
}
