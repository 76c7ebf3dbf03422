//! `inspect`: what an export document holds (or every flow document of an archive, with the
//! archive's manifest): format version, flow, versions with step counts, systems, scripts,
//! variables (never secret values) and how many filled secret values it carries.
//!
//! For an archive, every signature is listed with its status against the trust policy
//! (trusted, untrusted, invalid); without trusted keys every signature is untrusted (not
//! checked). `flowpack_action::verify` is what passes or fails an archive.
//!
//! The file may be an `oci://` reference to an archive: it is pulled into a temporary file
//! first, and the report names it pinned to the digest its tag resolved to.

use std::path::PathBuf;

use flowpack_client::oci::Credentials;
use flowpack_core::archive::{
    Archive, FlowSettings, Limits, Manifest, SignatureCheck, TrustPolicy,
};
use flowpack_core::graph::{VersionGraph, document_versions};
use flowpack_core::inspect::{Inspection, inspect};
use flowpack_core::secrets::SecretRules;

use crate::input::{InputError, Loaded, load_named, open_archive_spec_within, rename_archive};

/// Errors of inspect: the file cannot be read, or is not a document or a safe archive.
pub type InspectError = InputError;

/// What to inspect.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InspectOptions {
    /// An export document, a `.flowpack` archive, or an `oci://` reference to an archive.
    pub file: PathBuf,
    /// Which keys are credential-like.
    pub secret_rules: SecretRules,
    /// Speak plain HTTP to the registry of an `oci://` archive (never automatic).
    pub plain_http: bool,
    /// Registry credentials for an `oci://` archive, if any.
    pub credentials: Option<Credentials>,
    /// Overall time limit of the pull of an `oci://` archive (default 10 minutes; `None`:
    /// none).
    pub deadline: Option<std::time::Duration>,
    /// The keys an archive's signatures are listed against (default: none, every signature
    /// untrusted).
    pub policy: TrustPolicy,
    /// Also read each version's step graph (for drawings; default: no).
    pub graphs: bool,
}

impl InspectOptions {
    /// Inspects `file` with the default secret rules.
    pub fn new(file: PathBuf) -> InspectOptions {
        InspectOptions {
            file,
            secret_rules: SecretRules::default(),
            plain_http: false,
            credentials: None,
            deadline: Some(flowpack_client::oci::DEFAULT_DEADLINE),
            policy: TrustPolicy::default(),
            graphs: false,
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
    /// Each version's step graph, when asked for.
    pub graphs: Vec<VersionGraph>,
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
        /// Each version's step graph, when asked for.
        graphs: Vec<VersionGraph>,
    },
    /// An archive.
    Archive {
        /// The archive: the path as given, or the reference pinned to the digest its tag
        /// resolved to (`oci://HOST/REPO:TAG@sha256:<hex>`).
        archive: String,
        /// Its manifest.
        manifest: Box<Manifest>,
        /// Its flow documents, in entry order.
        flows: Vec<InspectedFlow>,
        /// Its signatures, each trusted, untrusted or invalid against the policy (in that
        /// order).
        signatures: Vec<SignatureCheck>,
    },
}

/// Inspects the file.
pub fn run(opts: &InspectOptions) -> Result<InspectReport, InspectError> {
    let rules = &opts.secret_rules;
    let source = open_archive_spec_within(
        &opts.file.to_string_lossy(),
        opts.plain_http,
        opts.credentials.as_ref(),
        opts.deadline,
    )?;
    let shown = source.shown.clone();
    let prefix = format!("{shown}!");
    let one = |f: crate::input::Input| -> Result<InspectedFlow, InputError> {
        Ok(InspectedFlow {
            entry: f
                .origin
                .strip_prefix(&prefix)
                .unwrap_or(&f.origin)
                .to_string(),
            inspection: inspect(&f.document, rules),
            settings: None,
            graphs: if opts.graphs {
                document_versions(&f.document, &f.origin)?
            } else {
                Vec::new()
            },
        })
    };
    Ok(
        match load_named(&source.path, &shown, &mut Vec::new(), false, one)? {
            Loaded::Document(flow) => {
                let flow = flow?;
                InspectReport::Document {
                    file: flow.entry,
                    inspection: flow.inspection,
                    graphs: flow.graphs,
                }
            }
            Loaded::Archive {
                manifest,
                flows,
                settings,
            } => InspectReport::Archive {
                signatures: signatures(&source.path, &shown, &opts.policy)?,
                flows: {
                    let mut flows = flows.into_iter().collect::<Result<Vec<_>, _>>()?;
                    for f in &mut flows {
                        f.settings = settings.get(&f.entry).cloned();
                    }
                    flows
                },
                archive: shown,
                manifest,
            },
        },
    )
}

/// The archive's signatures against `policy`, as its verification lists them.
fn signatures(
    path: &std::path::Path,
    shown: &str,
    policy: &TrustPolicy,
) -> Result<Vec<SignatureCheck>, InputError> {
    let named = |e| InputError::Archive(rename_archive(e, path, shown));
    let mut archive = Archive::open(path, &Limits::default()).map_err(named)?;
    let mut list = archive.verify(policy).signatures;
    let from = path.display().to_string();
    for s in &mut list {
        s.detail = s.detail.replace(&from, shown);
    }
    Ok(list)
}
