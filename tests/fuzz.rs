//! A seeded, structure-aware fuzz harness on stable Rust: mutated copies of a valid signed archive
//! (headers, names, sizes, CRCs, duplicated records, truncation, prepended, inserted and appended
//! bytes) and of export documents, run in-process against the core reader (a few thousand cases;
//! `FLOWPACK_FUZZ_CASES=N` for more, `FLOWPACK_FUZZ_SEED=S` for another sequence) and a few dozen
//! through the real binary. Never a panic, never an exit code outside 0/1/2, never an accepted
//! archive whose unpacked payload differs from the signed one. Failing inputs are written to
//! `target/fuzz-failures/`; keep each as a regression case in `fixtures/fuzz/`.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use flowpack_core::Document;
use flowpack_core::archive::{Archive, Limits, TrustPolicy, UnpackOptions, unpack};
use flowpack_core::sign::TrustedKey;
use flowpack_core::validate::{ValidateOptions, validate};

use crate::util::{code, fixture, root};

/// A xorshift generator: reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn policy() -> TrustPolicy {
    TrustPolicy::new(
        vec![TrustedKey::load(&fixture("keys/test.pub")).unwrap()],
        1,
    )
}

/// The files of an unpacked directory, by relative path.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Offsets of every zip record signature in `b`.
fn records(b: &[u8]) -> Vec<usize> {
    (0..b.len().saturating_sub(3))
        .filter(|&i| b[i] == b'P' && b[i + 1] == b'K' && matches!(b[i + 2], 1 | 3 | 5 | 6 | 7))
        .collect()
}

/// One structure-aware mutation of a zip.
fn mutate_zip(base: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = base.to_vec();
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        let recs = records(&b);
        let pick = if recs.is_empty() { 9 } else { rng.below(10) };
        match pick {
            // A header field: any byte of the 46 after a record signature.
            0 | 1 => {
                let at = recs[rng.below(recs.len())] + 4 + rng.below(42);
                if at < b.len() {
                    b[at] = rng.next() as u8;
                }
            }
            // A size, CRC or offset set to 0, all ones or a neighbour's value.
            2 => {
                let at = recs[rng.below(recs.len())] + [14, 18, 22, 16, 20, 24, 42][rng.below(7)];
                let v: u32 = [0, u32::MAX, rng.next() as u32, 1][rng.below(4)];
                if at + 4 <= b.len() {
                    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            // A name byte in a local or central record: duplicates and mismatches.
            3 => {
                let r = recs[rng.below(recs.len())];
                let name_at = if b.get(r + 2) == Some(&1) {
                    r + 46
                } else {
                    r + 30
                };
                if name_at + 8 < b.len() {
                    let i = name_at + rng.below(8);
                    b[i] = [b'a', b'b', b'/', b'.', 0, b'\\'][rng.below(6)];
                }
            }
            // A central record copied over the next one (a duplicate name).
            4 => {
                let central: Vec<usize> = recs.iter().copied().filter(|&r| b[r + 2] == 1).collect();
                // Each record runs to the next one; copy one over its successor.
                if central.len() >= 2 {
                    let k = rng.below(central.len() - 1);
                    let (a, c) = (central[k], central[k + 1]);
                    let len = (c - a).min(b.len() - c);
                    let copy = b[a..a + len].to_vec();
                    b[c..c + len].copy_from_slice(&copy);
                }
            }
            5 => {
                let n = 1 + rng.below(b.len());
                b.truncate(n);
            }
            6 => {
                let junk: Vec<u8> = (0..1 + rng.below(80)).map(|_| rng.next() as u8).collect();
                b.splice(0..0, junk);
            }
            7 => {
                let extra: Vec<u8> = match rng.below(2) {
                    0 => (0..1 + rng.below(80)).map(|_| rng.next() as u8).collect(),
                    _ => b[b.len().saturating_sub(22)..].to_vec(),
                };
                b.extend_from_slice(&extra);
            }
            8 => {
                let at = rng.below(b.len());
                let junk: Vec<u8> = (0..1 + rng.below(40)).map(|_| rng.next() as u8).collect();
                b.splice(at..at, junk);
            }
            _ => {
                let at = rng.below(b.len());
                b[at] ^= 1 << rng.below(8);
            }
        }
        if b.is_empty() {
            break;
        }
    }
    b
}

/// One mutation of a JSON document.
fn mutate_json(base: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = base.to_vec();
    match rng.below(6) {
        0 => {
            let at = rng.below(b.len());
            let bytes = b"{}[]\",:0-eE\\ \xEF";
            b[at] = bytes[rng.below(bytes.len())];
        }
        1 => b.truncate(rng.below(b.len())),
        2 => {
            let at = rng.below(b.len());
            let deep = "[".repeat(1 + rng.below(300));
            b.splice(at..at, deep.into_bytes());
        }
        3 => {
            b.splice(0..0, b"\xEF\xBB\xBF".iter().copied());
        }
        4 => {
            let at = rng.below(b.len());
            b.splice(at..at, b"1e999999,".iter().copied());
        }
        _ => {
            let at = rng.below(b.len());
            b[at] ^= 1 << rng.below(8);
        }
    }
    b
}

/// Checks one archive in-process; `Err` describes the failure.
fn check_archive(path: &Path, reference: &BTreeMap<String, Vec<u8>>) -> Result<(), String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let limits = Limits::default();
        if let Ok(mut a) = Archive::open(path, &limits) {
            let report = a.verify(&policy());
            let _ = a.flows().map(|f| f.count());
            let _ = a.flow_documents().count();
            if report.ok {
                let out = path.with_extension("out");
                let _ = std::fs::remove_dir_all(&out);
                let opts = UnpackOptions::new(policy());
                if unpack(path, &out, &opts).is_ok() {
                    let got = tree(&out);
                    let _ = std::fs::remove_dir_all(&out);
                    if &got != reference {
                        return Err("an accepted archive unpacked a different payload".to_string());
                    }
                }
            }
        }
        Ok(())
    }));
    match outcome {
        Ok(r) => r,
        Err(_) => Err("the reader panicked".into()),
    }
}

fn check_document(bytes: &[u8]) -> Result<(), String> {
    catch_unwind(|| {
        if let Ok(doc) = Document::from_slice(bytes, "fuzz.json") {
            let _ = validate(&doc, &ValidateOptions::default());
        }
    })
    .map_err(|_| "parsing or validating a document panicked".to_string())
}

fn keep_failure(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = root().join("target/fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn base() -> (Vec<u8>, BTreeMap<String, Vec<u8>>) {
    let path = fixture("legacy/manifest-v1.flowpack");
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("ref");
    let opts = UnpackOptions::new(policy());
    unpack(&path, &out, &opts).expect("the base archive verifies");
    (std::fs::read(&path).unwrap(), tree(&out))
}

#[test]
fn mutated_archives_and_documents_never_panic_or_change_the_signed_payload() {
    let cases = env_number("FLOWPACK_FUZZ_CASES", 2000);
    let seed = env_number("FLOWPACK_FUZZ_SEED", 0x5EED_F10B_AC4B_0001);
    let (base, reference) = base();
    let t = tempfile::tempdir().unwrap();
    let mut rng = Rng(seed | 1);
    let mut failures = Vec::new();
    // Regression cases first.
    for e in std::fs::read_dir(fixture("fuzz")).unwrap() {
        let p = e.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        let r = match p.extension().and_then(|x| x.to_str()) {
            Some("flowpack") => {
                let copy = t.path().join("regression.flowpack");
                std::fs::write(&copy, &bytes).unwrap();
                check_archive(&copy, &reference)
            }
            Some("json") => check_document(&bytes),
            _ => Ok(()),
        };
        if let Err(why) = r {
            failures.push(format!("{}: {why}", p.display()));
        }
    }
    let doc = std::fs::read(fixture("reference/export-v2-order-sync.json")).unwrap();
    let path = t.path().join("case.flowpack");
    for case in 0..cases {
        let bytes = mutate_zip(&base, &mut rng);
        std::fs::write(&path, &bytes).unwrap();
        if let Err(why) = check_archive(&path, &reference) {
            let kept = keep_failure(&format!("case-{seed:x}-{case}.flowpack"), &bytes);
            failures.push(format!("{}: {why}", kept.display()));
        }
        let json = mutate_json(&doc, &mut rng);
        if let Err(why) = check_document(&json) {
            let kept = keep_failure(&format!("case-{seed:x}-{case}.json"), &json);
            failures.push(format!("{}: {why}", kept.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn mutated_archives_through_the_binary_exit_0_1_or_2_and_never_change_the_payload() {
    let (base, reference) = base();
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let key = fixture("keys/test.pub").display().to_string();
    let mut rng = Rng(env_number("FLOWPACK_FUZZ_SEED", 0xB1A5_F00D) | 1);
    let mut failures = Vec::new();
    for case in 0..env_number("FLOWPACK_FUZZ_BINARY_CASES", 24) {
        let bytes = mutate_zip(&base, &mut rng);
        std::fs::write(d.join("m.flowpack"), &bytes).unwrap();
        let _ = std::fs::remove_dir_all(d.join("out"));
        for args in [
            vec!["verify", "m.flowpack", "--trusted-key", &key],
            vec!["unpack", "m.flowpack", "-d", "out", "--trusted-key", &key],
            vec!["inspect", "m.flowpack"],
            vec!["validate", "m.flowpack"],
        ] {
            let o = crate::util::flowpack_in(d, &args);
            let c = code(&o);
            let text = String::from_utf8_lossy(&o.stderr);
            if !(0..=2).contains(&c) || text.contains("panicked") {
                let kept = keep_failure(&format!("binary-{case}.flowpack"), &bytes);
                failures.push(format!("{args:?} on {}: exit {c}: {text}", kept.display()));
            }
            if args[0] == "unpack" && c == 0 && tree(&d.join("out")) != reference {
                let kept = keep_failure(&format!("binary-{case}.flowpack"), &bytes);
                failures.push(format!("{}: a different payload unpacked", kept.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
