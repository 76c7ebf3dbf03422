//! `migrate`: an export document to another format version (1 is legacy, 2 current), or only a
//! check of whether it is at the target version.
//!
//! Migrating down to a version that cannot hold everything is refused
//! ([`migrate::MigrateError::LossRefused`] lists what would be lost) unless `allow_loss`, when the loss
//! is in the report. An archive given instead of a document is refused (unpack it first).

use std::path::PathBuf;

use flowpack_core::fsutil::{WriteError, refuse_existing, write_bytes_new};
use flowpack_core::migrate::{self, Target, resolve_target};
use flowpack_core::{Document, DocumentError, FormatVersion};

use crate::error::{Categorize, Category, Remedy};
use crate::input::{InputError, expect_document};

/// Errors of migrate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The file is an archive, or cannot be read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The document cannot be parsed.
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// The migration failed or would lose data.
    #[error(transparent)]
    Migrate(#[from] migrate::MigrateError),
    /// The output could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl Categorize for MigrateError {
    fn category(&self) -> Category {
        match self {
            MigrateError::Input(e) => e.category(),
            MigrateError::Document(e) => e.category(),
            MigrateError::Migrate(e) => e.category(),
            MigrateError::Write(e) => e.category(),
        }
    }

    fn remedy(&self) -> Option<Remedy> {
        match self {
            MigrateError::Input(e) => e.remedy(),
            MigrateError::Write(e) => e.remedy(),
            _ => None,
        }
    }
}

/// What to migrate to what.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MigrateOptions {
    /// The export document.
    pub file: PathBuf,
    /// The target version.
    pub to: Target,
    /// Let a down-migration drop what the older version cannot hold.
    pub allow_loss: bool,
    /// Write nothing: only say whether the document is at the target version.
    pub check: bool,
    /// Write the migrated document here (atomically); `None` returns its bytes in the report.
    pub output: Option<PathBuf>,
    /// Replace an existing output (atomically; a symlink is replaced, not written through).
    /// Without it an existing output is refused before anything is read.
    pub force: bool,
}

impl MigrateOptions {
    /// Migrates `file` to `to`, returning the bytes (no output file, no loss allowed).
    pub fn new(file: PathBuf, to: Target) -> MigrateOptions {
        MigrateOptions {
            file,
            to,
            allow_loss: false,
            check: false,
            output: None,
            force: false,
        }
    }
}

/// What migrate did.
#[derive(Debug, Clone)]
pub enum MigrateReport {
    /// `check`: where the document is and where it would go.
    Checked {
        /// The file.
        file: String,
        /// Its version.
        from: FormatVersion,
        /// The target version.
        to: FormatVersion,
    },
    /// The document was migrated.
    Migrated {
        /// The file.
        file: String,
        /// The migration (its document, versions and loss).
        migrated: Box<migrate::Migrated>,
        /// The pretty-printed document, when no output file was given.
        bytes: Option<Vec<u8>>,
    },
}

/// Migrates (or checks) the document.
pub fn run(opts: &MigrateOptions) -> Result<MigrateReport, MigrateError> {
    let origin = opts.file.display().to_string();
    if let (Some(out), false) = (&opts.output, opts.check) {
        refuse_existing(out, opts.force)?;
    }
    expect_document(&opts.file)?;
    let doc = Document::read(&opts.file)?;
    if opts.check {
        let to = resolve_target(opts.to, &origin)?;
        return Ok(MigrateReport::Checked {
            file: origin,
            from: doc.format_version(),
            to,
        });
    }
    let mut mopts = migrate::MigrateOptions::new(opts.to);
    mopts.allow_loss = opts.allow_loss;
    mopts.origin = origin.clone();
    let migrated = migrate::migrate(doc, &mopts)?;
    let bytes = migrated.document.to_pretty_bytes();
    let bytes = match &opts.output {
        Some(out) => {
            write_bytes_new(out, &bytes, opts.force)?;
            None
        }
        None => Some(bytes),
    };
    Ok(MigrateReport::Migrated {
        file: origin,
        migrated: Box::new(migrated),
        bytes,
    })
}
