//! `flowpack pack INPUT... -o OUT.flowpack --name N --version V`

use std::path::PathBuf;

use flowpack_action::input::is_reference;
use flowpack_action::pack::{self, PackError, PackOptions};
use flowpack_action::publish::Credentials;
use flowpack_core::archive::{ArchiveError, PackageKind};

use crate::keys::load_signing_keys;
use crate::outcome::{Failure, Outcome, Verdict};
use crate::output::{count, signed_by};

/// Pack export documents into a reproducible archive, stripping secret values and optionally
/// signing it.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  SOURCE_DATE_EPOCH=1767225600 flowpack pack flows/ -o app.flowpack \\\n    \
--name app --version 1.2.0 --kind release --sign keys/release.key\n\n\
Inputs are export documents or directories of them (*.json, recursively, sorted). The \
timestamp is SOURCE_DATE_EPOCH when set, else now.\n\n\
A marketplace package (--kind marketplace) carries only each flow's deployed version (the \
documents are rewritten; a flow without one is refused). --previous OLD (a file or an oci:// \
reference) checks the version number against the previous release: a removed flow or a new \
required input needs a major bump, a new flow or optional input a minor one, any other change \
a patch (before 1.0.0 one place to the right).\n\
An existing OUT is refused unless --force, which replaces it atomically (a symlink is \
replaced, not written through). The archive is read back (its zip directory and manifest) \
before it is put in place.\n\
Exit codes: 0 written, 1 an input failed validation (or is an archive, or has no deployed \
version in a marketplace package, or the version is too small a bump, or the archive written \
failed its check), 2 could not run (OUT exists, …).",
    disable_version_flag = true
)]
pub struct Args {
    /// Export documents or directories of them.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// The archive to write.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: PathBuf,
    /// Replace OUT if it exists.
    #[arg(long)]
    force: bool,
    /// Package name.
    #[arg(long)]
    name: String,
    /// Package version (semver).
    #[arg(long)]
    version: String,
    /// Package kind.
    #[arg(long, value_enum, default_value_t = Kind::Backup)]
    kind: Kind,
    /// Package description.
    #[arg(long, default_value = "")]
    description: String,
    /// Sign with this minisign secret key (repeatable).
    #[arg(long = "sign", value_name = "KEY")]
    sign: Vec<PathBuf>,
    /// Keep secret values in the documents (they are still listed as inputs).
    #[arg(long)]
    allow_secrets: bool,
    /// The previous release of this marketplace package (a file or oci://HOST/REPO:TAG): the
    /// version must be a large enough bump over it for what changed.
    #[arg(long, value_name = "OLD")]
    previous: Option<String>,
    /// Speak plain HTTP to the registry of an oci:// --previous (local test registries only).
    #[arg(long)]
    plain_http: bool,
}

/// Package kinds.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Kind {
    /// A backup.
    Backup,
    /// A release.
    Release,
    /// A marketplace package.
    Marketplace,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    let version = semver::Version::parse(&args.version).map_err(|_| {
        Failure::usage(format!(
            "--version {:?} is not a semantic version",
            args.version
        ))
    })?;
    let created_at = crate::clock::created_at()?;
    let mut opts = PackOptions::new(args.inputs, args.output, args.name, version, created_at);
    opts.signers = load_signing_keys(&args.sign)?;
    opts.kind = match args.kind {
        Kind::Backup => PackageKind::Backup,
        Kind::Release => PackageKind::Release,
        Kind::Marketplace => PackageKind::Marketplace,
    };
    opts.description = args.description;
    opts.allow_secrets = args.allow_secrets;
    opts.force = args.force;
    opts.plain_http = args.plain_http;
    if args.previous.as_deref().is_some_and(is_reference) {
        opts.credentials = Credentials::from_env()?;
    }
    opts.previous = args.previous;
    match pack::run_checked(&opts) {
        Ok(done) => {
            let r = &done.report;
            if let (Some(bump), Some(previous)) = (&done.bump, &done.previous) {
                let needed = match (bump.needed, &bump.minimum) {
                    (Some(b), Some(min)) => format!("{} change, {min} or later", b.as_str()),
                    _ => "no change".to_string(),
                };
                println!(
                    "version {} over {} of {previous}: {needed}, accepted",
                    bump.next, bump.previous
                );
                for c in &bump.changes {
                    println!("  {} ({})", c, c.bump().as_str());
                }
            }
            println!(
                "{}: {}, manifest sha256 {}, {} stripped, {}",
                r.path.display(),
                count(r.manifest.flows.len(), "flow", "flows"),
                r.manifest_sha256,
                count(r.secrets_stripped, "secret value", "secret values"),
                signed_by(&r.signatures)
            );
            Ok(Verdict::Success)
        }
        Err(PackError::Archive(ArchiveError::Invalid(list))) => {
            for (origin, findings) in &list {
                for f in findings {
                    eprintln!("error[{}]: {}", f.code, f.message);
                    eprintln!("  --> {origin}#{}", f.pointer);
                }
            }
            let n = list.len();
            Err(
                Failure::from(PackError::Archive(ArchiveError::Invalid(list))).with_message(
                    format!(
                        "{} failed validation; nothing written",
                        count(n, "input document", "input documents")
                    ),
                ),
            )
        }
        Err(e) => Err(e.into()),
    }
}
