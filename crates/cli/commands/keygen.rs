//! `flowpack keygen -o PREFIX [--unencrypted]`

use std::path::PathBuf;

use flowpack_action::keygen::{self, KeygenOptions};

use crate::keys::new_password;
use crate::outcome::{Outcome, Verdict};

/// Make a signing key pair in minisign's format: PREFIX.key (secret) and PREFIX.pub (public).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  FLOWPACK_KEY_PASSWORD=... flowpack keygen -o keys/release\n  \
flowpack pack flows/ -o app.flowpack --name app --version 1.0.0 --sign keys/release.key\n\n\
The password comes from FLOWPACK_KEY_PASSWORD, else a prompt. Existing files are never \
overwritten.\nExit codes: 0 written, 2 could not run."
)]
pub struct Args {
    /// Path prefix of the key files.
    #[arg(short = 'o', long = "output", value_name = "PREFIX")]
    prefix: PathBuf,
    /// Write the secret key without a password.
    #[arg(long)]
    unencrypted: bool,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    let password = if args.unencrypted {
        None
    } else {
        Some(new_password()?)
    };
    let report = keygen::run(&KeygenOptions::new(args.prefix, password))?;
    println!("key id: {}", report.key_id);
    println!("secret key: {}", report.secret_key.display());
    println!("public key: {}", report.public_key.display());
    Ok(Verdict::Success)
}
