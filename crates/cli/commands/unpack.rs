//! `flowpack unpack ARCHIVE -d DIR`

use std::path::PathBuf;

use flowpack_action::unpack::{self, UnpackError, UnpackOptions};
use flowpack_core::archive::ArchiveError;

use super::verify::print_human;
use crate::flags::TrustArgs;
use crate::outcome::{Failure, Outcome, Verdict};
use crate::output::count;

/// Verify an archive and extract it into a directory (written beside it, renamed into place
/// only when everything verified).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  flowpack unpack app.flowpack -d app/ --trusted-key keys/release.pub\n\n\
Refuses archives whose signatures were not checked unless --insecure-skip-signatures.\n\
Exit codes: 0 unpacked, 1 a check failed (or the file is not an archive), 2 could not run."
)]
pub struct Args {
    /// The archive: a file, or s3://BUCKET/KEY (downloaded to a temporary file first).
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
pub fn run(args: Args) -> Outcome {
    let policy = args.trust.policy()?;
    let mut opts = UnpackOptions::new(args.archive.clone(), args.dir, policy);
    opts.skip_signatures = args.insecure_skip_signatures;
    match unpack::run(&opts) {
        Ok(r) => {
            say!(
                "{}: {} unpacked",
                r.dir.display(),
                count(r.files.len(), "file", "files")
            );
            Ok(Verdict::Success)
        }
        Err(e) => {
            if let UnpackError::Archive(ArchiveError::Verification {
                report, summary, ..
            }) = &e
            {
                print_human(report);
                let message = format!("{}: refused: {summary}", args.archive.display());
                return Err(Failure::from(e).with_message(message));
            }
            Err(e.into())
        }
    }
}
