//! The library crates carry copies of the fixtures their own tests read (`crates/*/fixtures/`),
//! so that each packaged crate is self-contained. Each copy must stay the same as the
//! workspace's `fixtures/` file of the same path.

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn the_crates_fixture_copies_are_the_workspace_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for krate in ["core", "action", "sandbox"] {
        let dir = root.join("crates").join(krate).join("fixtures");
        let mut copies = Vec::new();
        files(&dir, &mut copies);
        assert!(!copies.is_empty(), "{}: no fixtures", dir.display());
        for copy in copies {
            let rel = copy.strip_prefix(&dir).unwrap();
            let original = root.join("fixtures").join(rel);
            let (a, b) = (std::fs::read(&copy), std::fs::read(&original));
            assert!(
                matches!((&a, &b), (Ok(a), Ok(b)) if a == b),
                "{} differs from {} (or one is missing): copy the workspace fixture into the crate",
                copy.display(),
                original.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} fixture copies checked");
}

/// flowpack-core's tests walk these directories whole: each file of the workspace's has its copy.
#[test]
fn the_directories_core_walks_are_copied_whole() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["validate", "migrate"] {
        let mut originals = Vec::new();
        files(&root.join("fixtures").join(dir), &mut originals);
        assert!(!originals.is_empty());
        for original in originals {
            let rel = original.strip_prefix(root.join("fixtures")).unwrap();
            let copy = root.join("crates/core/fixtures").join(rel);
            assert!(
                copy.is_file(),
                "{} has no copy at {}: flowpack-core's tests would not see it",
                original.display(),
                copy.display()
            );
        }
    }
}
