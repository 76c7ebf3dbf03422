//! `flowpack pack INPUT... -o OUT.flowpack --name N --version V`

use std::path::PathBuf;

use flowpack_action::input::is_reference;
use flowpack_action::pack::{self, PackError, PackOptions};
use flowpack_action::publish::Credentials;
use flowpack_action::repack::{self, RepackOptions};
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
a patch (before 1.0.0 one place to the right).\n\n\
An unpacked archive directory (flowpack.json at its top, as `flowpack unpack` writes it) packs \
back into the archive it came from: its documents and flow.json settings as they are on disk, \
its package (--name, --version, --kind, --description override it), source and required \
inputs; with the same SOURCE_DATE_EPOCH an unsigned archive comes back byte for byte. It must \
be the only input.\n\
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
    /// The archive to write: a file, or s3://BUCKET/KEY (written and verified locally, then
    /// uploaded; documents only).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: PathBuf,
    #[command(flatten)]
    overwrite: crate::flags::ForceArgs,
    /// Package name (required, except for an unpacked archive directory).
    #[arg(long)]
    name: Option<String>,
    /// Package version (semver; required, except for an unpacked archive directory).
    #[arg(long)]
    version: Option<String>,
    /// Package kind (default: backup, or an unpacked archive directory's).
    #[arg(long, value_enum)]
    kind: Option<PackageKind>,
    /// Package description.
    #[arg(long)]
    description: Option<String>,
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

fn semver(version: &str) -> Result<semver::Version, Failure> {
    semver::Version::parse(version)
        .map_err(|_| Failure::usage(format!("--version {version:?} is not a semantic version")))
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    if let [dir] = args.inputs.as_slice()
        && repack::is_unpacked_archive(dir)
    {
        return run_repack(dir.clone(), args);
    }
    let (Some(name), Some(version)) = (args.name.clone(), args.version.as_deref()) else {
        return Err(Failure::usage(
            "pack needs --name and --version (an unpacked archive directory, given alone, \
             takes them from its flowpack.json)",
        ));
    };
    let version = semver(version)?;
    let created_at = crate::clock::created_at()?;
    let mut opts = PackOptions::new(args.inputs, args.output, name, version, created_at);
    opts.signers = load_signing_keys(&args.sign)?;
    opts.kind = args.kind.unwrap_or_default();
    opts.description = args.description.unwrap_or_default();
    opts.allow_secrets = args.allow_secrets;
    opts.force = args.overwrite.force;
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
                say!(
                    "version {} over {} of {previous}: {needed}, accepted",
                    bump.next,
                    bump.previous
                );
                for c in &bump.changes {
                    say!("  {} ({})", c, c.bump().as_str());
                }
            }
            say!(
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
                    esay!("error[{}]: {}", f.code, f.message);
                    esay!("  --> {origin}#{}", f.pointer);
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

/// Packs an unpacked archive directory back into an archive.
fn run_repack(dir: PathBuf, args: Args) -> Outcome {
    if args.previous.is_some() {
        return Err(Failure::usage(
            "--previous is for packing documents, not an unpacked archive directory",
        ));
    }
    let mut opts = RepackOptions::new(dir, args.output, crate::clock::created_at()?);
    opts.signers = load_signing_keys(&args.sign)?;
    opts.name = args.name;
    opts.version = args.version.as_deref().map(semver).transpose()?;
    opts.kind = args.kind;
    opts.description = args.description;
    opts.allow_secrets = args.allow_secrets;
    opts.force = args.overwrite.force;
    let r = repack::run(&opts).map_err(|e| match e {
        repack::RepackError::Archive(ArchiveError::Invalid(list)) => {
            for (origin, findings) in &list {
                for f in findings {
                    esay!("error[{}]: {}", f.code, f.message);
                    esay!("  --> {origin}#{}", f.pointer);
                }
            }
            let message = format!(
                "{} failed validation; nothing written",
                count(list.len(), "document", "documents")
            );
            Failure::from(repack::RepackError::Archive(ArchiveError::Invalid(list)))
                .with_message(message)
        }
        e => Failure::from(e),
    })?;
    say!(
        "{}: {} (repacked from {}), manifest sha256 {}, {} stripped, {}",
        r.path.display(),
        count(r.manifest.flows.len(), "flow", "flows"),
        opts.dir.display(),
        r.manifest_sha256,
        count(r.secrets_stripped, "secret value", "secret values"),
        signed_by(&r.signatures)
    );
    Ok(Verdict::Success)
}
