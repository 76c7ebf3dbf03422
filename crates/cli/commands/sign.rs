//! `flowpack sign ARCHIVE --key KEY`

use std::path::PathBuf;
use std::process::ExitCode;

use flowpack_core::archive::{Limits, SignArchiveOptions, sign_archive};

use super::keygen::load_signing_key;

/// Add a signature to an archive (over its flowpack.json); every other entry keeps its bytes.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  flowpack sign app.flowpack --key keys/release.key\n\n\
Exit codes: 0 signed, 1 the archive failed its checks, 2 could not run."
)]
pub struct Args {
    /// The archive to sign (rewritten atomically).
    #[arg(value_name = "ARCHIVE")]
    archive: PathBuf,
    /// A minisign secret key (FLOWPACK_KEY_PASSWORD for encrypted keys).
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let key = load_signing_key(&args.key)?;
    match sign_archive(
        &args.archive,
        &key,
        &SignArchiveOptions {
            limits: Limits::default(),
        },
    ) {
        Ok(r) => {
            println!(
                "{}: signed by {}{}",
                r.archive.display(),
                r.key_id,
                if r.replaced { " (replaced)" } else { "" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ flowpack_core::archive::ArchiveError::Verification { .. }) => {
            eprintln!("flowpack: {e}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}
