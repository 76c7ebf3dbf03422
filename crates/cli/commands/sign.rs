//! `flowpack sign ARCHIVE --key KEY`

use std::path::PathBuf;

use flowpack_action::sign::{self, SignOptions};

use crate::keys::load_signing_key;
use crate::outcome::{Outcome, Verdict};

/// Add a signature to an archive (over its flowpack.json); every other entry keeps its bytes.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  flowpack sign app.flowpack --key keys/release.key\n\n\
Exit codes: 0 signed, 1 the archive failed its checks (or is not an archive), 2 could not run."
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
pub fn run(args: Args) -> Outcome {
    let key = load_signing_key(&args.key)?;
    let r = sign::run(&SignOptions::new(args.archive, key))?;
    say!(
        "{}: signed by {}{}",
        r.archive.display(),
        r.key_id,
        if r.replaced { " (replaced)" } else { "" }
    );
    Ok(Verdict::Success)
}
