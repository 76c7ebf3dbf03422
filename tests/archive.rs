//! End-to-end tests of pack, keygen, sign, verify and unpack, with interop against the real
//! `minisign`, `zip` and `unzip`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};

use crate::util::{code, fixture, root, stderr, stdout};

const EPOCH: &str = "1767225600";

fn run(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flowpack"));
    c.args(args)
        .current_dir(cwd)
        .env_remove("FLOWPACK_KEY_PASSWORD")
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run flowpack")
}

fn tool(cwd: &Path, prog: &str, args: &[&str]) -> Output {
    crate::util::peer(prog)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {prog}: {e}"))
}

fn reference() -> String {
    fixture("reference").display().to_string()
}

/// Packs the reference fixtures into `dir/name`, optionally signing.
fn pack(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let r = reference();
    let mut args = vec![
        "pack",
        &r,
        "-o",
        name,
        "--name",
        "demo",
        "--version",
        "1.0.0",
    ];
    args.extend_from_slice(extra);
    let o = run(dir, &args, &[("SOURCE_DATE_EPOCH", EPOCH)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    dir.join(name)
}

fn keygen(dir: &Path, prefix: &str) {
    let o = run(dir, &["keygen", "-o", prefix, "--unencrypted"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

fn sha256_file(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

fn unzip_to(dir: &Path, archive: &Path, to: &str) -> PathBuf {
    let o = tool(
        dir,
        "unzip",
        &["-q", "-o", &archive.display().to_string(), "-d", to],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    dir.join(to)
}

fn manifest_of(dir: &Path, archive: &Path) -> serde_json::Value {
    let out = unzip_to(dir, archive, "manifest-view");
    let m = serde_json::from_slice(&std::fs::read(out.join("flowpack.json")).unwrap()).unwrap();
    std::fs::remove_dir_all(out).unwrap();
    m
}

fn verify(dir: &Path, archive: &Path, extra: &[&str]) -> Output {
    let a = archive.display().to_string();
    let mut args = vec!["verify", a.as_str()];
    args.extend_from_slice(extra);
    run(dir, &args, &[])
}

#[test]
fn two_packs_with_the_same_epoch_are_identical_and_unzip_accepts_them() {
    let t = tempfile::tempdir().unwrap();
    let a = pack(t.path(), "a.flowpack", &[]);
    let b = pack(t.path(), "b.flowpack", &[]);
    assert_eq!(sha256_file(&a), sha256_file(&b));
    let o = tool(t.path(), "unzip", &["-t", "a.flowpack"]);
    assert!(o.status.success(), "{}", stdout(&o));
    let listing = stdout(&tool(t.path(), "unzip", &["-Z1", "a.flowpack"]));
    assert_eq!(
        listing.lines().collect::<Vec<_>>(),
        [
            "flowpack.json",
            "flows/shopify-hubspot-customers/export.json",
            "flows/shopify-netsuite-orders/export.json"
        ]
    );
    // Every entry's digest in the manifest is the SHA-256 of its uncompressed bytes.
    let m = manifest_of(t.path(), &a);
    let out = unzip_to(t.path(), &a, "x");
    let files = m["files"].as_object().unwrap();
    assert_eq!(files.len(), 2);
    for (path, digest) in files {
        assert_eq!(
            digest.as_str().unwrap(),
            format!("sha256:{}", sha256_file(&out.join(path)))
        );
    }
    assert_eq!(m["created_at"], "2026-01-01T00:00:00Z");
    // The unstripped reference document keeps its bytes as exported.
    assert_eq!(
        std::fs::read(out.join("flows/shopify-netsuite-orders/export.json")).unwrap(),
        std::fs::read(fixture("reference/export-v2-order-sync.json")).unwrap()
    );
    // A different epoch gives a different archive.
    let r = reference();
    let o = run(
        t.path(),
        &[
            "pack",
            &r,
            "-o",
            "c.flowpack",
            "--name",
            "demo",
            "--version",
            "1.0.0",
        ],
        &[("SOURCE_DATE_EPOCH", "1767312000")],
    );
    assert_eq!(code(&o), 0);
    assert_ne!(sha256_file(&a), sha256_file(&t.path().join("c.flowpack")));
}

#[test]
fn written_manifests_validate_against_the_schema() {
    let t = tempfile::tempdir().unwrap();
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("crates/core/schemas/manifest.schema.json")).unwrap(),
    )
    .unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let a = pack(
        t.path(),
        "a.flowpack",
        &["--kind", "release", "--description", "d"],
    );
    let m = manifest_of(t.path(), &a);
    let errors: Vec<String> = v.iter_errors(&m).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(m["package"]["kind"], "release");
    // A marketplace package (only flows with a deployed version can go into one).
    let doc = fixture("reference/export-v2-order-sync.json")
        .display()
        .to_string();
    let o = run(
        t.path(),
        &[
            "pack",
            &doc,
            "-o",
            "m.flowpack",
            "--name",
            "demo",
            "--version",
            "1.0.0",
            "--kind",
            "marketplace",
        ],
        &[("SOURCE_DATE_EPOCH", EPOCH)],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let m = manifest_of(t.path(), &t.path().join("m.flowpack"));
    let errors: Vec<String> = v.iter_errors(&m).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(m["package"]["kind"], "marketplace");
    assert_eq!(m["requires"]["systems"][0]["protocol"], "HTTP");
}

#[test]
fn verify_accepts_the_right_key_and_names_the_failed_check_otherwise() {
    let t = tempfile::tempdir().unwrap();
    keygen(t.path(), "k");
    keygen(t.path(), "other");
    let a = pack(t.path(), "a.flowpack", &["--sign", "k.key"]);
    let o = verify(t.path(), &a, &["--trusted-key", "k.pub"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("verified"));

    let o = verify(
        t.path(),
        &a,
        &["--trusted-key", "k.pub", "--format", "json"],
    );
    assert_eq!(code(&o), 0);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["ok"], true);
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["structure", "manifest", "signatures", "digests", "unlisted"]
    );

    // Signed by a key that is not trusted: its id is named, and the fix.
    let k = std::fs::read_to_string(t.path().join("k.pub")).unwrap();
    let k_id = key_id_of(&k);
    let o = verify(t.path(), &a, &["--trusted-key", "other.pub"]);
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains("signatures check failed"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains(&format!(
            "signed only by key {k_id}, not trusted; 1 trusted signature required"
        )),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains(&format!("{k_id}  untrusted (not checked)")),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains(&format!(
            "hint: if you trust key {k_id}, give its public key with --trusted-key PUB"
        )),
        "{}",
        stderr(&o)
    );

    // Not signed at all.
    let unsigned = pack(t.path(), "unsigned.flowpack", &[]);
    let o = verify(t.path(), &unsigned, &["--trusted-key", "k.pub"]);
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains("the archive is not signed; 1 trusted signature required"),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("hint: sign it with a trusted key: flowpack sign ARCHIVE --key KEY"),
        "{}",
        stderr(&o)
    );

    let o = verify(
        t.path(),
        &a,
        &[
            "--trusted-key",
            "k.pub",
            "--trusted-key",
            "other.pub",
            "--threshold",
            "2",
        ],
    );
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains(&format!(
            "1 trusted signature ({k_id}), 2 required: 1 short"
        )),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains(&format!("{k_id}  trusted, verified")),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("hint: sign it with 1 more trusted key: flowpack sign ARCHIVE --key KEY; or lower --threshold"),
        "{}",
        stderr(&o)
    );

    // Without trusted keys, integrity is checked and signatures are reported as not checked.
    let o = verify(t.path(), &a, &[]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("no trusted keys given; 1 signature not checked"));
    // ... and listed with their key ids.
    assert!(
        stdout(&o).contains(&format!("{k_id}  untrusted (not checked)")),
        "{}",
        stdout(&o)
    );
    let o = verify(t.path(), &a, &["--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["untrusted_signers"][0], k_id.as_str());
    assert_eq!(report["signatures"][0]["status"], "untrusted");

    // Unreadable: exit 2.
    let o = verify(t.path(), &t.path().join("missing.flowpack"), &[]);
    assert_eq!(code(&o), 2);
}

/// The key id of a minisign public key file: the 8 bytes after the 2-byte algorithm in its
/// base64 line, as upper-case hex in reverse byte order (what minisign prints).
fn key_id_of(pub_file: &str) -> String {
    let line = pub_file.lines().nth(1).unwrap().trim();
    let bytes = base64_decode(line);
    bytes[2..10]
        .iter()
        .rev()
        .map(|b| format!("{b:02X}"))
        .collect()
}

fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | A.iter().position(|&a| a == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Rebuilds `dir` (extracted entries) into `out` with Info-ZIP, entries in sorted order.
fn rezip(cwd: &Path, dir: &str, out: &str) {
    let mut names: Vec<String> = Vec::new();
    fn walk(base: &Path, rel: &str, out: &mut Vec<String>) {
        for e in std::fs::read_dir(base.join(rel)).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if e.file_type().unwrap().is_dir() {
                walk(base, &r, out);
            } else {
                out.push(r);
            }
        }
    }
    walk(&cwd.join(dir), "", &mut names);
    names.sort();
    let out_path = cwd.join(out).display().to_string();
    let mut args = vec!["-q", "-X", out_path.as_str()];
    args.extend(names.iter().map(String::as_str));
    let o = tool(&cwd.join(dir), "zip", &args);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn tampering_is_caught_by_the_check_that_owns_it() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d, "k");
    let a = pack(d, "a.flowpack", &["--sign", "k.key"]);
    let trust = ["--trusted-key", "k.pub"];
    let flow = "flows/shopify-netsuite-orders/export.json";

    // A flipped byte in a flow document.
    let x = unzip_to(d, &a, "flip");
    let p = x.join(flow);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[10] ^= 0x20;
    std::fs::write(&p, bytes).unwrap();
    rezip(d, "flip", "flipped.flowpack");
    let o = verify(d, &d.join("flipped.flowpack"), &trust);
    assert_eq!(code(&o), 1);
    let out = stdout(&o);
    assert!(out.contains("digests check failed"), "{out}");
    assert!(
        out.contains(&format!("flipped.flowpack!{flow}: SHA-256")),
        "{out}"
    );
    // push verifies without reading the flow documents and checks each digest as its local
    // check reads the flow first: the same refusal, before any write.
    let o = run(
        d,
        &[
            "push",
            "flipped.flowpack",
            "--env",
            "local",
            "--trusted-key",
            "k.pub",
        ],
        &[],
    );
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let err = format!("{}{}", stdout(&o), stderr(&o));
    assert!(err.contains("digests"), "{err}");
    assert!(
        err.contains(&format!("flipped.flowpack!{flow}: SHA-256")),
        "{err}"
    );
    let o = run(
        d,
        &[
            "push",
            "a.flowpack",
            "--env",
            "local",
            "--dry-run",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let flows = plan["flows"].as_array().unwrap();
    assert!(!flows.is_empty());
    assert!(flows.iter().all(|f| f["plan"] == "create"), "{plan}");

    // A flipped byte in the manifest breaks the signature.
    let x = unzip_to(d, &a, "flipm");
    let p = x.join("flowpack.json");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("\"demo\"", "\"dEmo\"");
    std::fs::write(&p, text).unwrap();
    rezip(d, "flipm", "flipped-manifest.flowpack");
    let o = verify(d, &d.join("flipped-manifest.flowpack"), &trust);
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains("signatures check failed"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("does not match flowpack.json"),
        "{}",
        stdout(&o)
    );

    // A flipped byte in the compressed data: the CRC check fails while reading.
    let mut raw = std::fs::read(&a).unwrap();
    let at = raw.len() / 2;
    raw[at] ^= 0xff;
    std::fs::write(d.join("corrupt.flowpack"), raw).unwrap();
    let o = verify(d, &d.join("corrupt.flowpack"), &trust);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(stdout(&o).contains("check failed"), "{}", stdout(&o));

    // A removed entry.
    std::fs::copy(&a, d.join("removed.flowpack")).unwrap();
    assert!(
        tool(d, "zip", &["-q", "-d", "removed.flowpack", flow])
            .status
            .success()
    );
    let o = verify(d, &d.join("removed.flowpack"), &trust);
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains(&format!(
            "removed.flowpack!{flow}: listed in the manifest but missing"
        )),
        "{}",
        stdout(&o)
    );

    // An added entry.
    std::fs::copy(&a, d.join("added.flowpack")).unwrap();
    std::fs::create_dir_all(d.join("flows/extra")).unwrap();
    std::fs::write(d.join("flows/extra/export.json"), b"{}").unwrap();
    assert!(
        tool(
            d,
            "zip",
            &["-q", "-X", "added.flowpack", "flows/extra/export.json"]
        )
        .status
        .success()
    );
    let o = verify(d, &d.join("added.flowpack"), &trust);
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains("unlisted check failed"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("added.flowpack!flows/extra/export.json: not listed"));

    // A signature by the trusted key, but over another manifest.
    let r = reference();
    let o = run(
        d,
        &[
            "pack",
            &r,
            "-o",
            "other.flowpack",
            "--name",
            "other",
            "--version",
            "2.0.0",
            "--sign",
            "k.key",
        ],
        &[("SOURCE_DATE_EPOCH", EPOCH)],
    );
    assert_eq!(code(&o), 0);
    let other = unzip_to(d, &d.join("other.flowpack"), "other");
    let swapped = unzip_to(d, &a, "swapped");
    for e in std::fs::read_dir(other.join("signatures")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), swapped.join("signatures").join(e.file_name())).unwrap();
    }
    rezip(d, "swapped", "swapped.flowpack");
    let o = verify(d, &d.join("swapped.flowpack"), &trust);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("signatures check failed"));
    assert!(
        stdout(&o).contains("does not match flowpack.json"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("  invalid: "), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("signed it, or the signature is damaged: get the archive again"),
        "{}",
        stderr(&o)
    );
    // inspect lists it as invalid too.
    let o = run(
        d,
        &["inspect", "swapped.flowpack", "--trusted-key", "k.pub"],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("  invalid: "), "{}", stdout(&o));
}

#[test]
fn real_minisign_verifies_our_signatures_and_its_keys_sign_for_us() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d, "k");
    let a = pack(d, "a.flowpack", &["--sign", "k.key"]);
    let x = unzip_to(d, &a, "x");
    let sigs: Vec<PathBuf> = std::fs::read_dir(x.join("signatures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(sigs.len(), 1);
    let o = tool(
        d,
        "minisign",
        &[
            "-V",
            "-p",
            "k.pub",
            "-m",
            &x.join("flowpack.json").display().to_string(),
            "-x",
            &sigs[0].display().to_string(),
        ],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let manifest_sha = sha256_file(&x.join("flowpack.json"));
    assert!(
        stdout(&o).contains(&format!(
            "Trusted comment: flowpack demo@1.0.0 sha256:{manifest_sha}"
        )),
        "{}",
        stdout(&o)
    );
    // The file is named after the key id minisign prints.
    let pubkey = std::fs::read_to_string(d.join("k.pub")).unwrap();
    let id = pubkey
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        sigs[0].file_name().unwrap().to_str().unwrap(),
        format!("{id}.minisig")
    );

    // Keys made by minisign itself: unencrypted (-W) and encrypted (password on stdin).
    let o = tool(d, "minisign", &["-G", "-W", "-p", "mu.pub", "-s", "mu.key"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut child = crate::util::peer("minisign")
        .args(["-G", "-p", "me.pub", "-s", "me.key"])
        .current_dir(d)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cret\ns3cret\n")
        .unwrap();
    assert!(child.wait().unwrap().success());

    let b = pack(d, "b.flowpack", &[]);
    let o = run(d, &["sign", "b.flowpack", "--key", "mu.key"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(d, &["sign", "b.flowpack", "--key", "me.key"], &[]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("me.key: the secret key is encrypted; set FLOWPACK_KEY_PASSWORD"),
        "{}",
        stderr(&o)
    );
    let o = run(
        d,
        &["sign", "b.flowpack", "--key", "me.key"],
        &[("FLOWPACK_KEY_PASSWORD", "wrong")],
    );
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("wrong password"), "{}", stderr(&o));
    let o = run(
        d,
        &["sign", "b.flowpack", "--key", "me.key"],
        &[("FLOWPACK_KEY_PASSWORD", "s3cret")],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = verify(
        d,
        &b,
        &[
            "--trusted-key",
            "mu.pub",
            "--trusted-key",
            "me.pub",
            "--threshold",
            "2",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(tool(d, "unzip", &["-t", "b.flowpack"]).status.success());
}

#[test]
fn sign_keeps_every_other_entry_byte_for_byte() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d, "k");
    let a = pack(d, "a.flowpack", &[]);
    let before = std::fs::read(&a).unwrap();
    let o = run(d, &["sign", "a.flowpack", "--key", "k.key"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let after = std::fs::read(&a).unwrap();
    // Unsigned archives start with the manifest and flows; the local entries up to the start of
    // the central directory are unchanged, the signature is appended after them.
    let cd = |b: &[u8]| {
        let eocd = b
            .windows(4)
            .rposition(|w| w == [0x50, 0x4b, 0x05, 0x06])
            .unwrap();
        u32::from_le_bytes(b[eocd + 16..eocd + 20].try_into().unwrap()) as usize
    };
    assert_eq!(&after[..cd(&before)], &before[..cd(&before)]);
    let o = verify(d, &a, &["--trusted-key", "k.pub"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
}

#[test]
fn pack_strips_filled_secrets_into_required_inputs() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let mut doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture("reference/export-v2-order-sync.json")).unwrap(),
    )
    .unwrap();
    doc["systems"][0]["system"]["authentication_implementations"][0]["credentials"]["token"] =
        "shpat_LIVE_VALUE_123".into();
    doc["flow"]["versions"][0]["variables"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"key": "API_PIN", "value": "pin-4242", "is_secret": true}));
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
            "0.1.0",
        ],
        &[("SOURCE_DATE_EPOCH", EPOCH)],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let x = unzip_to(d, &d.join("s.flowpack"), "x");
    let packed =
        std::fs::read_to_string(x.join("flows/shopify-netsuite-orders/export.json")).unwrap();
    assert!(!packed.contains("shpat_LIVE_VALUE_123"));
    assert!(!packed.contains("pin-4242"));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(x.join("flowpack.json")).unwrap()).unwrap();
    // Manifest version 3: each input once, with the indexes of the flows using it.
    assert_eq!(m["flows"][0]["name"], "Shopify > NetSuite Orders");
    let inputs = m["inputs"].as_array().unwrap();
    let has = |kind: &str, name: &str, required: bool| {
        inputs.iter().any(|i| {
            i["kind"] == kind
                && i["name"] == name
                && i["required"] == required
                && i["flows"] == serde_json::json!([0])
        })
    };
    assert!(
        has("credential", "Shopify/Admin API token/token", true),
        "{inputs:?}"
    );
    assert!(has("variable", "API_PIN", true), "{inputs:?}");
    assert!(has(
        "credential",
        "NetSuite/Token based auth/consumer_secret",
        false
    ));
    assert!(has("variable", "NETSUITE_SUBSIDIARY", false));
    assert!(has("system", "Shopify", false));

    // --allow-secrets keeps the values (and still lists them).
    let o = run(
        d,
        &[
            "pack",
            "doc.json",
            "-o",
            "k.flowpack",
            "--name",
            "s",
            "--version",
            "0.1.0",
            "--allow-secrets",
        ],
        &[("SOURCE_DATE_EPOCH", EPOCH)],
    );
    assert_eq!(code(&o), 0);
    let x = unzip_to(d, &d.join("k.flowpack"), "y");
    let kept = std::fs::read(x.join("flows/shopify-netsuite-orders/export.json")).unwrap();
    assert_eq!(kept, std::fs::read(d.join("doc.json")).unwrap());
    // The carried values are listed but not required, so such an archive pushes without an
    // overlay re-supplying them.
    let m = manifest_of(d, &d.join("k.flowpack"));
    let carried = m["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "API_PIN")
        .unwrap();
    assert_eq!(carried["required"], false, "{carried}");
    let o = run(
        d,
        &["push", "k.flowpack", "--env", "local", "--dry-run"],
        &[],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn pack_refuses_invalid_documents_naming_file_and_pointer() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let mut doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture("reference/export-v2-order-sync.json")).unwrap(),
    )
    .unwrap();
    doc["flow"]["priority"] = 9.into();
    std::fs::create_dir(d.join("in")).unwrap();
    std::fs::write(d.join("in/bad.json"), serde_json::to_vec(&doc).unwrap()).unwrap();
    let o = run(
        d,
        &[
            "pack",
            "in",
            "-o",
            "bad.flowpack",
            "--name",
            "b",
            "--version",
            "1.0.0",
        ],
        &[],
    );
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("error[FP0301]"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--> in/bad.json#/flow/priority"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("bad.flowpack").exists());
    let o = run(
        d,
        &[
            "pack",
            "in",
            "-o",
            "bad.flowpack",
            "--name",
            "b",
            "--version",
            "one",
        ],
        &[],
    );
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--version \"one\" is not a semantic version"));
}

#[test]
fn unpack_needs_trust_and_writes_the_verified_tree() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d, "k");
    let a = pack(d, "a.flowpack", &["--sign", "k.key"]);
    let o = run(d, &["unpack", "a.flowpack", "-d", "out"], &[]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains(
            "signatures not checked: no trusted key was given and unchecked signatures were not \
             allowed\nhint: give --trusted-key PUB (or --insecure-skip-signatures"
        ),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("out").exists());
    let o = run(
        d,
        &[
            "unpack",
            "a.flowpack",
            "-d",
            "out",
            "--trusted-key",
            "k.pub",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let x = unzip_to(d, &a, "ref");
    for rel in ["flowpack.json", "flows/shopify-netsuite-orders/export.json"] {
        assert_eq!(
            std::fs::read(d.join("out").join(rel)).unwrap(),
            std::fs::read(x.join(rel)).unwrap()
        );
    }
    // A non-empty target is refused.
    let o = run(
        d,
        &[
            "unpack",
            "a.flowpack",
            "-d",
            "out",
            "--insecure-skip-signatures",
        ],
        &[],
    );
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("out: the target directory exists and is not empty"));
}

/// Every hostile fixture: rejected by verify and unpack with a message naming the entry, and
/// nothing written anywhere.
#[test]
fn hostile_archives_are_rejected_naming_the_entry() {
    let cases: &[(&str, &str)] = &[
        ("zip_slip_dotdot", "!../evil.json: the path contains '..'"),
        ("absolute_path", "!/tmp/evil.json: the path is absolute"),
        ("backslash", "the name contains a backslash"),
        (
            "drive_letter",
            "!C:/evil.json: the path starts with a drive letter",
        ),
        (
            "nul_in_name",
            "!flows/a\\0b/export.json: the name contains NUL",
        ),
        (
            "non_utf8_name",
            "!flows/\\xff\\xfe/export.json: the name is not UTF-8",
        ),
        (
            "symlink",
            "!flows/link/export.json: symlinks are not allowed",
        ),
        ("fifo", "!flows/pipe/export.json: not a regular file"),
        (
            "duplicate_names",
            "!flows/a/export.json: duplicate entry name",
        ),
        (
            "bomb_42",
            "!flows/bomb/export.json: compression ratio over 1000:1",
        ),
        (
            "high_ratio",
            "!flows/ratio/export.json: compression ratio over 1000:1",
        ),
        ("lying_sizes", "!flows/liar/export.json: cannot read"),
        (
            "long_component",
            "export.json: a path component is longer than 255 bytes (no file system could unpack it)",
        ),
        (
            "declared_size_fffffffe",
            "!flows/big/export.json: declares 4294967294 bytes uncompressed but holds 71",
        ),
        (
            "declared_size_zip64_max",
            "!flows/big/export.json: declares 18446744073709551615 bytes uncompressed but holds 71",
        ),
        (
            "encrypted",
            "!flows/secret/export.json: encrypted entries are not allowed",
        ),
        ("truncated", "not a readable zip archive"),
        ("not_a_zip", "not a flowpack archive"),
        // One zip view: what is verified is what every zip tool sees.
        (
            "prepended_bytes",
            // Refused before the zip reader runs: the file does not start with a local header.
            "prepended_bytes.flowpack: not a flowpack archive (it does not start with a zip header)",
        ),
        (
            "hidden_first_entry",
            "!flowpack.json: 120 bytes before the first entry",
        ),
        (
            "appended_bytes",
            "bytes after the end record or a zip comment (neither is allowed)",
        ),
        (
            "comment_fake_end_record",
            "does not end where the end record begins (offset 331)",
        ),
        (
            "two_end_records",
            "does not end where the end record begins",
        ),
        (
            "gap_before_central_directory",
            "16 bytes between the last entry and the central directory",
        ),
        (
            "local_name_differs",
            "!flows/a/export.json: the local header names it \"flows/b/export.json\", unlike the central directory",
        ),
        (
            "local_crc_differs",
            "!flows/a/export.json: the local header's CRC or sizes differ from the central directory's",
        ),
        (
            "local_size_differs",
            "!flows/a/export.json: the local header's CRC or sizes differ",
        ),
        (
            "descriptor_crc_differs",
            "!flows/a/export.json: the data descriptor's CRC or sizes differ from the central directory's",
        ),
    ];
    for (name, want) in cases {
        // An entry is named `ARCHIVE!entry`: the `!…` cases name the fixture file too.
        let want = &match want.strip_prefix('!') {
            Some(entry) => format!("{name}.flowpack!{entry}"),
            None => want.to_string(),
        };
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let f = fixture(&format!("archives/{name}.flowpack"))
            .display()
            .to_string();
        let o = run(d, &["verify", &f], &[]);
        assert_eq!(code(&o), 1, "{name}: {}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).contains(want), "{name}: {}", stdout(&o));
        assert!(
            stdout(&o).contains("structure check failed"),
            "{name}: {}",
            stdout(&o)
        );
        let o = run(
            d,
            &[
                "unpack",
                &f,
                "-d",
                "target/out",
                "--insecure-skip-signatures",
            ],
            &[],
        );
        assert_eq!(code(&o), 1, "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{name}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
        // inspect and validate read archives too, through the same safe reader, and reject
        // hostile ones like verify does.
        for cmd in ["inspect", "validate"] {
            let o = run(d, &[cmd, &f], &[]);
            assert_eq!(code(&o), 1, "{cmd} {name}: {}", stderr(&o));
            assert!(stderr(&o).contains(want), "{cmd} {name}: {}", stderr(&o));
            assert!(!stderr(&o).contains("panicked"));
        }
        // Nothing written: not the target, not beside it, not above it.
        let left: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.iter().all(|n| n == "target"), "{name}: {left:?}");
        assert_eq!(
            std::fs::read_dir(d.join("target"))
                .map(|r| r.count())
                .unwrap_or(0),
            0,
            "{name}"
        );
    }
}

#[test]
fn more_entries_than_the_flows_allow_are_rejected() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("too_many_entries.flowpack");
    let script = fixture("archives/make_hostile.py").display().to_string();
    let o = tool(
        t.path(),
        "python3",
        &[&script, "--too-many-entries", &f.display().to_string()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = verify(t.path(), &f, &[]);
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains(
            "100001 entries, more than the limit of 16 for 0 flow entries (4 per flow + 16)"
        ),
        "{}",
        stdout(&o)
    );
}

#[test]
fn keygen_encrypts_with_the_env_password_and_refuses_to_overwrite() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let pw = [("FLOWPACK_KEY_PASSWORD", "hunter22")];
    let o = run(d, &["keygen", "-o", "rel"], &pw);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(d, &["keygen", "-o", "rel"], &pw);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("rel.key: already exists; refusing to overwrite a key"),
        "{}",
        stderr(&o)
    );
    let o = run(d, &["keygen", "-o", "nopw"], &[]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("no password: set FLOWPACK_KEY_PASSWORD"),
        "{}",
        stderr(&o)
    );
    let r = reference();
    let o = run(
        d,
        &[
            "pack",
            &r,
            "-o",
            "a.flowpack",
            "--name",
            "demo",
            "--version",
            "1.0.0",
            "--sign",
            "rel.key",
        ],
        &[
            ("FLOWPACK_KEY_PASSWORD", "hunter22"),
            ("SOURCE_DATE_EPOCH", EPOCH),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = verify(d, &d.join("a.flowpack"), &["--trusted-key", "rel.pub"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
}

#[test]
fn validate_and_inspect_read_every_flow_of_an_archive() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let a = pack(d, "a.flowpack", &[]);
    let a = a.display().to_string();
    let o = run(d, &["validate", &a, "--format", "json"], &[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let files: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        vec![
            format!("{a}!flows/shopify-hubspot-customers/export.json"),
            format!("{a}!flows/shopify-netsuite-orders/export.json"),
        ]
    );
    let o = run(d, &["inspect", &a, "--format", "json"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["manifest"]["flows"].as_array().unwrap().len(), 2);
    assert_eq!(v["flows"][0]["format_version"], 1);
    assert_eq!(v["flows"][1]["format_version"], 2);
    assert_eq!(v["flows"][1]["versions"][0]["steps"], 6);
    assert_eq!(
        v["flows"][1]["entry"],
        "flows/shopify-netsuite-orders/export.json"
    );
    // The manifest counts the steps of the version the platform summarises (the deployed one).
    assert_eq!(v["manifest"]["flows"][1]["steps"], 6);
}

#[test]
fn a_url_with_a_password_is_refused_and_never_printed() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let a = pack(d, "a.flowpack", &[]);
    let a = a.display().to_string();
    for url in [
        "http://user:PASSWORD@127.0.0.1:9",
        "http://user:PASSWORD@127.0.0.1:9/?key=QUERYSECRET",
    ] {
        let o = run(
            d,
            &["push", &a, "--url", url, "--dry-run", "--verbose"],
            &[("FLOWPACK_TOKEN", "tok")],
        );
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert_ne!(code(&o), 0, "{all}");
        assert!(all.contains("carries a user name or password"), "{all}");
        assert!(all.contains("http://127.0.0.1:9"), "{all}");
        assert!(
            !all.contains("PASSWORD") && !all.contains("QUERYSECRET"),
            "{all}"
        );
    }
}

fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
        .unwrap()
}

#[test]
fn written_files_honour_the_umask_and_stale_temporaries_are_removed() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let a = pack(d, "a.flowpack", &[]);
    assert_eq!(mode(&a), 0o666 & !umask());
    // A killed run's leftovers (its pid is gone) beside the target; a live run's stay.
    let stale = d.join(".flowpack-tmp.4294967295.AbCdEfGhIj");
    std::fs::create_dir_all(stale.join("flows")).unwrap();
    std::fs::write(stale.join("flows/x.json"), b"{}").unwrap();
    let stale_file = d.join(".flowpack-tmp.4294967294.KlMnOpQrSt");
    std::fs::write(&stale_file, b"partial").unwrap();
    std::fs::create_dir(d.join("out")).unwrap();
    std::fs::set_permissions(d.join("out"), std::fs::Permissions::from_mode(0o750)).unwrap();
    let o = run(
        d,
        &[
            "unpack",
            "a.flowpack",
            "-d",
            "out",
            "--insecure-skip-signatures",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(mode(&d.join("out")), 0o750);
    assert_eq!(mode(&d.join("out/flowpack.json")), 0o666 & !umask());
    assert!(!stale.exists() && !stale_file.exists());
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.iter().all(|n| !n.starts_with(".flowpack-tmp.")),
        "{left:?}"
    );
    // A new target gets 0777 less the umask.
    let o = run(
        d,
        &[
            "unpack",
            "a.flowpack",
            "-d",
            "new",
            "--insecure-skip-signatures",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(mode(&d.join("new")), 0o777 & !umask());
}

#[test]
fn json_that_is_no_export_document_is_refused_everywhere_and_a_bom_is_accepted() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::write(d.join("list.json"), br#"{"name": "x", "items": [1, 2]}"#).unwrap();
    for args in [
        vec!["inspect", "list.json"],
        vec!["validate", "list.json"],
        vec!["migrate", "list.json", "--to", "latest"],
    ] {
        let o = run(d, &args, &[]);
        assert_ne!(code(&o), 0, "{args:?}: {}", stdout(&o));
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(
            all.contains("list.json: not an export document"),
            "{args:?}: {all}"
        );
    }
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(std::fs::read(fixture("reference/export-v2-order-sync.json")).unwrap());
    std::fs::write(d.join("bom.json"), bom).unwrap();
    let o = run(d, &["inspect", "bom.json"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// A signed, valid archive stays valid only as the exact bytes every zip tool sees: prepended
/// junk, a zip comment (holding a fake end record) or appended bytes make verify refuse it,
/// even with the signature intact.
#[test]
fn a_signed_archive_with_bytes_around_it_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let signed = std::fs::read(fixture("legacy/manifest-v1.flowpack")).unwrap();
    let key = fixture("keys/test.pub").display().to_string();
    let o = verify(
        d,
        &fixture("legacy/manifest-v1.flowpack"),
        &["--trusted-key", &key],
    );
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let eocd = signed.len() - 22;
    let mut prepended = vec![b'J'; 64];
    prepended.extend_from_slice(&signed);
    let mut commented = signed.clone();
    commented[eocd + 20..eocd + 22].copy_from_slice(&22u16.to_le_bytes());
    commented.extend_from_slice(&signed[eocd..]);
    let mut appended = signed.clone();
    appended.extend_from_slice(b"trailing bytes");
    for (name, bytes) in [
        ("prepended", prepended),
        ("commented", commented),
        ("appended", appended),
    ] {
        let p = d.join(format!("{name}.flowpack"));
        std::fs::write(&p, bytes).unwrap();
        let o = verify(d, &p, &["--trusted-key", &key]);
        assert_eq!(code(&o), 1, "{name}: {}", stdout(&o));
        assert!(
            stdout(&o).contains("structure check failed"),
            "{name}: {}",
            stdout(&o)
        );
    }
}
/// An archive made by flowpack 0.1.0 (manifest version 1, no `flow.json`) still verifies against
/// its signer's key, inspects (showing `requires`) and unpacks byte for byte.
#[test]
fn a_version_1_archive_still_verifies_inspects_and_unpacks() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let legacy = fixture("legacy/manifest-v1.flowpack");
    let legacy_s = legacy.display().to_string();
    let key = fixture("keys/test.pub").display().to_string();
    let o = verify(d, &legacy, &["--trusted-key", &key]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let o = run(d, &["inspect", &legacy_s], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("  requires        export format 2, 3 systems, 1 script, 0 dependencies\n    system      HubSpot\n"),
        "{text}"
    );
    assert!(!text.contains("settings "), "{text}");
    let o = run(d, &["inspect", &legacy_s, "--format", "json"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["manifest"]["format_version"], 1);
    assert_eq!(v["flows"].as_array().unwrap().len(), 3);
    assert_eq!(v["flows"][0]["settings"], serde_json::Value::Null);
    let o = run(
        d,
        &["unpack", &legacy_s, "-d", "out", "--trusted-key", &key],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let x = unzip_to(d, &legacy, "ref");
    for rel in [
        "flowpack.json",
        "flows/stock-sync/export.json",
        "signatures/A58EBD1156F26C6A.minisig",
    ] {
        assert_eq!(
            std::fs::read(d.join("out").join(rel)).unwrap(),
            std::fs::read(x.join(rel)).unwrap(),
            "{rel}"
        );
    }
}

/// Today's pack writes manifest version 3: `requires` objects, `settings: null` per flow, no
/// `backup` (only backups of an environment have one).
#[test]
fn pack_writes_manifest_version_3() {
    let t = tempfile::tempdir().unwrap();
    let a = pack(t.path(), "a.flowpack", &[]);
    let m = manifest_of(t.path(), &a);
    assert_eq!(m["format_version"], 3);
    assert!(m.get("backup").is_none());
    assert!(
        m["flows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["settings"].is_null())
    );
    assert_eq!(m["requires"]["systems"][0]["name"], "HubSpot");
    assert!(m["requires"]["systems"][0].get("protocol").is_some());
    assert!(m["requires"]["dependencies"].is_array());
}

/// An archive whose flow carries settings (`flow.json`, written through the library as export
/// does): verify checks the entry, validate ignores it, inspect shows it and the inputs.
#[test]
fn flow_settings_are_verified_and_inspected() {
    use flowpack_core::archive::{
        ArchiveWriter, Callback, FlowInput, FlowSettings, ManifestParams, PackageKind, Webhook,
        WriterOptions,
    };
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let created = time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
    let mut w = ArchiveWriter::create(&d.join("s.flowpack"), WriterOptions::new(created)).unwrap();
    let mut settings = FlowSettings::new(true, Some(2));
    settings.webhooks.push(Webhook {
        hmac_algorithm: Some("sha256".into()),
        has_hmac_secret_key: true,
        ..Webhook::new("active", "json")
    });
    settings.callbacks.push(Callback::new("failed", "json"));
    w.add_flow_with_settings(
        FlowInput {
            bytes: std::fs::read(fixture("reference/export-v2-order-sync.json")).unwrap(),
            origin: "order-sync".into(),
            source_id: "7".into(),
            name: None,
        },
        settings,
    )
    .unwrap();
    let params = ManifestParams::new("s", semver::Version::new(1, 0, 0), PackageKind::Backup);
    let report = w.finish(params, &[]).unwrap();
    let entry = report.manifest.flows[0].settings.clone().unwrap().path;
    let o = verify(d, &d.join("s.flowpack"), &[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let o = run(d, &["validate", "s.flowpack"], &[]);
    assert!(!stdout(&o).contains("flow.json"), "{}", stdout(&o));
    let o = run(d, &["inspect", "s.flowpack"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("  settings        enabled true   deployed iteration 2   priority 3\n"),
        "{text}"
    );
    assert!(
        text.contains("    webhook [0]  active json, HMAC sha256 (secret is an input)\n"),
        "{text}"
    );
    assert!(
        text.contains("    webhook_secret webhooks/0/hmac_secret_key ("),
        "{text}"
    );
    let o = run(d, &["inspect", "s.flowpack", "--format", "json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["flows"][0]["settings"]["callbacks"][0]["status"],
        "failed"
    );
    assert_eq!(
        v["manifest"]["flows"][0]["settings"]["path"],
        entry.as_str()
    );
}

/// A flow whose name would give a slug too long for a file system (300 characters) packs under a
/// shortened slug (64 characters: its first 55, `-`, 8 hex of the name's SHA-256), so the
/// archive verifies and unpacks; two such names sharing their beginning get different slugs.
#[test]
fn long_flow_names_pack_under_shortened_slugs_that_unpack() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let text = std::fs::read_to_string(fixture("reference/export-v2-order-sync.json")).unwrap();
    let mut names = Vec::new();
    for (i, tail) in ["one", "two"].iter().enumerate() {
        let name = format!("{} {tail}", "Long flow name".repeat(20));
        assert!(name.len() > 280);
        let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        doc["metadata"]["flow_name"] = name.clone().into();
        doc["flow"]["name"] = name.clone().into();
        std::fs::create_dir_all(d.join("in")).unwrap();
        std::fs::write(
            d.join(format!("in/{i}.json")),
            serde_json::to_vec(&doc).unwrap(),
        )
        .unwrap();
        names.push(name);
    }
    let o = run(
        d,
        &[
            "pack",
            "in",
            "-o",
            "long.flowpack",
            "--name",
            "long",
            "--version",
            "1.0.0",
        ],
        &[("SOURCE_DATE_EPOCH", EPOCH)],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = verify(d, &d.join("long.flowpack"), &[]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let o = run(
        d,
        &[
            "unpack",
            "long.flowpack",
            "-d",
            "out",
            "--insecure-skip-signatures",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut dirs: Vec<String> = std::fs::read_dir(d.join("out/flows"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut want: Vec<String> = names
        .iter()
        .map(|n| {
            let digest = hex::encode(Sha256::digest(n.as_bytes()));
            format!("{}-{}", &"long-flow-name".repeat(4)[..55], &digest[..8])
        })
        .collect();
    want.sort();
    assert_eq!(dirs, want);
    assert!(dirs.iter().all(|s| s.len() == 64));
}
