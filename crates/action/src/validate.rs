//! `validate`: check export documents (or every flow document of archives) against the JSON
//! Schema of their format version and the semantic rules. Findings are data: `Err` means a file
//! could not be checked at all.
//!
//! Files are read and checked on one thread per core, taken in turn so big and small ones
//! balance; the reports come back in argument order, and the first file (in argument order) that
//! cannot be read is the error.

use std::path::PathBuf;

use flowpack_core::validate::{self, Report};

use crate::input::{InputError, Loaded, load};

/// Errors of validate: a file cannot be read, or is not a document or a safe archive.
pub type ValidateError = InputError;

/// What to check.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ValidateOptions {
    /// Export documents or archives.
    pub files: Vec<PathBuf>,
    /// The rules' options.
    pub rules: validate::ValidateOptions,
    /// Keep each plain file's bytes in the report (SARIF needs them for line numbers).
    pub keep_sources: bool,
}

impl ValidateOptions {
    /// Checks `files` with the default rules, keeping no bytes.
    pub fn new(files: Vec<PathBuf>) -> ValidateOptions {
        ValidateOptions {
            files,
            rules: validate::ValidateOptions::default(),
            keep_sources: false,
        }
    }
}

/// One checked document.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Checked {
    /// `FILE` or `ARCHIVE!entry`.
    pub origin: String,
    /// Its findings.
    pub report: Report,
    /// The file's bytes, when kept (plain files only).
    pub source: Option<Vec<u8>>,
}

/// Every document checked, in argument order (an archive's flows in entry order).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ValidateReport {
    /// The documents.
    pub documents: Vec<Checked>,
}

impl ValidateReport {
    /// Whether any document has an error (or a warning, when `deny_warnings`).
    pub fn fails(&self, deny_warnings: bool) -> bool {
        self.documents.iter().any(|c| c.report.fails(deny_warnings))
    }
}

/// Checks every file.
pub fn run(opts: &ValidateOptions) -> Result<ValidateReport, ValidateError> {
    let files = &opts.files;
    let check = |file: &PathBuf, buf: &mut Vec<u8>| -> Result<Vec<Checked>, InputError> {
        let one = |input: crate::input::Input| Checked {
            report: validate::validate(&input.document, &opts.rules),
            origin: input.origin,
            source: input.bytes,
        };
        Ok(match load(file, buf, opts.keep_sources, one)? {
            Loaded::Document(checked) => vec![checked],
            Loaded::Archive { flows, .. } => flows,
        })
    };
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let checked =
        flowpack_core::pool::try_map(files, jobs, Vec::new, |buf, _, file| check(file, buf))?;
    let documents = checked.into_iter().flatten().collect();
    Ok(ValidateReport { documents })
}
