//! A timing breakdown of what `flowpack validate` and `flowpack pack` do per document, phase by
//! phase and on one thread, to explain where a benchmark's time goes (`perf` is often not
//! available on the machines the benchmarks run on).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flowpack_core::Document;
use flowpack_core::archive::{
    ArchiveError, ArchiveWriter, FlowInput, ManifestParams, PackageKind, WriterOptions,
};
use flowpack_core::secrets::{SecretRules, find_secrets};
use flowpack_core::validate::schema::check_schema;
use flowpack_core::validate::{ValidateOptions, validate};

/// A profile that could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A corpus file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A corpus file is not a JSON document.
    #[error(transparent)]
    Document(#[from] flowpack_core::DocumentError),
    /// Packing failed.
    #[error("packing into {path}: {source}")]
    Pack {
        /// The scratch archive.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: ArchiveError,
    },
}

/// The time of each phase over a whole corpus, on one thread.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// How many documents.
    pub documents: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Each phase's name and total time, in the order they ran.
    pub phases: Vec<(&'static str, Duration)>,
}

/// Times the phases of validating and packing the `*.json` files of `dir` (sorted), each phase
/// over every document before the next: reading, JSON parsing into a [`Document`], the JSON
/// Schema alone, every validation rule (schema included), the secret scan alone, then packing
/// on one worker thread without and with validation (parse, hash, deflate, spool, write). The
/// scratch archives go to `scratch` and are removed.
pub fn profile(dir: &Path, scratch: &Path) -> Result<Profile, ProfileError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ProfileError::Read { path, source }
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut phases = Vec::new();

    let t = Instant::now();
    let mut raw = Vec::with_capacity(files.len());
    for f in &files {
        raw.push(std::fs::read(f).map_err(read_err(f))?);
    }
    phases.push(("read files", t.elapsed()));

    let t = Instant::now();
    let mut docs = Vec::with_capacity(raw.len());
    for (bytes, f) in raw.iter().zip(&files) {
        docs.push(Document::from_slice(bytes, &f.display().to_string())?);
    }
    phases.push(("parse JSON into Document", t.elapsed()));

    let t = Instant::now();
    let schema_errors: usize = docs.iter().map(|d| check_schema(d).len()).sum();
    phases.push(("JSON Schema only", t.elapsed()));

    let opts = ValidateOptions::default();
    let t = Instant::now();
    let findings: usize = docs.iter().map(|d| validate(d, &opts).findings.len()).sum();
    phases.push(("validate: every rule", t.elapsed()));

    let rules = SecretRules::default();
    let t = Instant::now();
    let slots: usize = docs
        .iter()
        .map(|d| find_secrets(d.value(), &rules).len())
        .sum();
    phases.push(("secret scan only", t.elapsed()));
    std::hint::black_box((schema_errors, findings, slots));
    drop(docs);

    for (label, with_validation) in [
        ("pack, 1 thread, no validation", false),
        ("pack, 1 thread, with validation", true),
    ] {
        let out = scratch.join(format!("profile-{with_validation}.flowpack"));
        let t = Instant::now();
        pack(&raw, &files, &out, with_validation).map_err(|source| ProfileError::Pack {
            path: out.clone(),
            source,
        })?;
        phases.push((label, t.elapsed()));
        let _ = std::fs::remove_file(&out);
    }
    Ok(Profile {
        documents: files.len(),
        bytes: raw.iter().map(|b| b.len() as u64).sum(),
        phases,
    })
}

fn pack(
    raw: &[Vec<u8>],
    files: &[PathBuf],
    out: &Path,
    validate: bool,
) -> Result<(), ArchiveError> {
    let created_at =
        time::OffsetDateTime::from_unix_timestamp(1_767_225_600).expect("a valid timestamp");
    let mut opts = WriterOptions::new(created_at);
    opts.threads = 1;
    opts.validate = validate;
    let mut w = ArchiveWriter::create(out, opts)?;
    for (bytes, f) in raw.iter().zip(files) {
        w.add_flow(FlowInput {
            bytes: bytes.clone(),
            origin: f.display().to_string(),
            source_id: String::new(),
            name: None,
        })?;
    }
    w.finish(
        {
            let mut params = ManifestParams::new(
                "profile",
                semver::Version::new(1, 0, 0),
                PackageKind::Backup,
            );
            params.generator = "flowpack-bench".into();
            params
        },
        &[],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GenOptions, generate_corpus};

    #[test]
    fn every_phase_is_timed_over_the_whole_corpus() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = dir.path().join("corpus");
        generate_corpus(
            &GenOptions {
                flows: 3,
                seed: 2,
                target_mb: Some(0.03),
            },
            &corpus,
        )
        .unwrap();
        let p = profile(&corpus, dir.path()).unwrap();
        assert_eq!(p.documents, 3);
        let on_disk: u64 = std::fs::read_dir(&corpus)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert_eq!(p.bytes, on_disk);
        let names: Vec<&str> = p.phases.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), 7);
        assert_eq!(names[0], "read files");
        assert_eq!(names[6], "pack, 1 thread, with validation");
        // The scratch archives are gone.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_corpus_names_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = profile(&missing, dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{}: cannot read", missing.display()))
        );
    }
}
