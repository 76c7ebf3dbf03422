//! `flowpack pack INPUT... -o OUT.flowpack --name N --version V`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use flowpack_core::archive::{
    ArchiveError, ArchiveWriter, FlowInput, ManifestParams, PackageKind, WriterOptions,
};

use super::keygen::load_signing_key;

/// Pack export documents into a reproducible archive, stripping secret values and optionally
/// signing it.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  SOURCE_DATE_EPOCH=1767225600 flowpack pack flows/ -o app.flowpack \\\n    \
--name app --version 1.2.0 --kind release --sign keys/release.key\n\n\
Inputs are export documents or directories of them (*.json, recursively, sorted). The \
timestamp is SOURCE_DATE_EPOCH when set, else now.\n\
Exit codes: 0 written, 1 an input failed validation, 2 could not run.",
    disable_version_flag = true
)]
pub struct Args {
    /// Export documents or directories of them.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// The archive to write.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: PathBuf,
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
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let version = semver::Version::parse(&args.version)
        .with_context(|| format!("--version {:?} is not a semantic version", args.version))?;
    let created_at = crate::clock::created_at()?;
    let signers = args
        .sign
        .iter()
        .map(|p| load_signing_key(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut files = Vec::new();
    for input in &args.inputs {
        collect(input, &mut files)?;
    }
    anyhow::ensure!(!files.is_empty(), "no *.json documents found in the inputs");
    let mut opts = WriterOptions::new(created_at);
    opts.allow_secrets = args.allow_secrets;
    let mut writer = ArchiveWriter::create(&args.output, opts)?;
    for file in &files {
        let bytes =
            std::fs::read(file).with_context(|| format!("{}: cannot read", file.display()))?;
        writer.add_flow(FlowInput {
            bytes,
            origin: file.display().to_string(),
            source_id: String::new(),
            name: None,
        })?;
    }
    let kind = match args.kind {
        Kind::Backup => PackageKind::Backup,
        Kind::Release => PackageKind::Release,
        Kind::Marketplace => PackageKind::Marketplace,
    };
    let mut params = ManifestParams::new(&args.name, version, kind);
    params.description = args.description;
    params.generator = format!("flowpack {}", env!("CARGO_PKG_VERSION"));
    match writer.finish(params, &signers) {
        Ok(r) => {
            println!(
                "{}: {} flow(s), manifest sha256 {}, {} secret value(s) stripped, signed by [{}]",
                r.path.display(),
                r.manifest.flows.len(),
                r.manifest_sha256,
                r.secrets_stripped,
                r.signatures.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(ArchiveError::Invalid(list)) => {
            for (origin, findings) in &list {
                for f in findings {
                    eprintln!("error[{}]: {}", f.code, f.message);
                    eprintln!("  --> {origin}#{}", f.pointer);
                }
            }
            eprintln!(
                "flowpack: {} input document(s) failed validation; nothing written",
                list.len()
            );
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("{}: cannot read", path.display()))?;
    if meta.is_dir() {
        let mut children: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("{}: cannot list", path.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        children.sort();
        for c in children {
            if c.is_dir() || c.extension().is_some_and(|e| e == "json") {
                collect(&c, out)?;
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}
