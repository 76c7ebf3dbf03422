//! `flowpack unpack ARCHIVE -d DIR`

use std::path::PathBuf;
use std::process::ExitCode;

use flowpack_core::archive::{ArchiveError, Limits, UnpackOptions, unpack};

use super::verify::{TrustArgs, print_human};

/// Verify an archive and extract it into a directory (written beside it, renamed into place
/// only when everything verified).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  flowpack unpack app.flowpack -d app/ --trusted-key keys/release.pub\n\n\
Refuses archives whose signatures were not checked unless --insecure-skip-signatures.\n\
Exit codes: 0 unpacked, 1 a check failed, 2 could not run."
)]
pub struct Args {
    /// The archive.
    #[arg(value_name = "ARCHIVE")]
    archive: PathBuf,
    /// Target directory (must not exist, or be empty).
    #[arg(short = 'd', long = "dir", value_name = "DIR")]
    dir: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
    /// Unpack without checking signatures.
    #[arg(long)]
    insecure_skip_signatures: bool,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let policy = args.trust.policy()?;
    let opts = UnpackOptions {
        limits: Limits::default(),
        policy,
        skip_signatures: args.insecure_skip_signatures,
    };
    match unpack(&args.archive, &args.dir, &opts) {
        Ok(r) => {
            println!("{}: {} file(s) unpacked", r.dir.display(), r.files.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(ArchiveError::Verification {
            report, summary, ..
        }) => {
            print_human(&report);
            eprintln!("flowpack: {}: refused: {summary}", args.archive.display());
            Ok(ExitCode::from(1))
        }
        Err(
            e @ (ArchiveError::Hostile { .. }
            | ArchiveError::Malformed { .. }
            | ArchiveError::Limit { .. }
            | ArchiveError::Digest { .. }
            | ArchiveError::Manifest { .. }),
        ) => {
            eprintln!("flowpack: {e}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}
