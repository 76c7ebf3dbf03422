//! `inspect`: what an export document holds (or every flow document of an archive, with the
//! archive's manifest): format version, flow, versions with step counts, systems, scripts,
//! variables (never secret values) and how many filled secret values it carries.

use std::path::PathBuf;

use flowpack_core::archive::{FlowSettings, Manifest};
use flowpack_core::inspect::{Inspection, inspect};
use flowpack_core::secrets::SecretRules;

use crate::input::{InputError, Loaded, load};

/// Errors of inspect: the file cannot be read, or is not a document or a safe archive.
pub type InspectError = InputError;

/// What to inspect.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InspectOptions {
    /// An export document or a `.flowpack` archive.
    pub file: PathBuf,
    /// Which keys are credential-like.
    pub secret_rules: SecretRules,
}

impl InspectOptions {
    /// Inspects `file` with the default secret rules.
    pub fn new(file: PathBuf) -> InspectOptions {
        InspectOptions {
            file,
            secret_rules: SecretRules::default(),
        }
    }
}

/// One inspected flow document.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InspectedFlow {
    /// Its entry in the archive (`flows/<slug>/export.json`).
    pub entry: String,
    /// What it holds.
    pub inspection: Inspection,
    /// Its settings (`flow.json`), when the archive carries them.
    pub settings: Option<FlowSettings>,
}

/// What inspect found.
#[derive(Debug, Clone)]
pub enum InspectReport {
    /// A plain export document.
    Document {
        /// The file.
        file: String,
        /// What it holds.
        inspection: Inspection,
    },
    /// An archive.
    Archive {
        /// The archive.
        archive: String,
        /// Its manifest.
        manifest: Box<Manifest>,
        /// Its flow documents, in entry order.
        flows: Vec<InspectedFlow>,
    },
}

/// Inspects the file.
pub fn run(opts: &InspectOptions) -> Result<InspectReport, InspectError> {
    let rules = &opts.secret_rules;
    let shown = opts.file.display().to_string();
    let prefix = format!("{shown}!");
    let one = |f: crate::input::Input| InspectedFlow {
        entry: f
            .origin
            .strip_prefix(&prefix)
            .unwrap_or(&f.origin)
            .to_string(),
        inspection: inspect(&f.document, rules),
        settings: None,
    };
    Ok(match load(&opts.file, &mut Vec::new(), false, one)? {
        Loaded::Document(flow) => InspectReport::Document {
            file: flow.entry,
            inspection: flow.inspection,
        },
        Loaded::Archive {
            manifest,
            mut flows,
            settings,
        } => InspectReport::Archive {
            flows: {
                for f in &mut flows {
                    f.settings = settings.get(&f.entry).cloned();
                }
                flows
            },
            archive: shown,
            manifest,
        },
    })
}
