//! `flowpack keygen -o PREFIX [--unencrypted]`

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use flowpack_core::sign::{KeygenOptions, SignError, SigningKey, keygen};

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
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let password = if args.unencrypted {
        None
    } else {
        Some(new_password()?)
    };
    let report = keygen(&KeygenOptions {
        prefix: args.prefix,
        password,
    })?;
    println!("key id: {}", report.key_id);
    println!("secret key: {}", report.secret_key.display());
    println!("public key: {}", report.public_key.display());
    Ok(ExitCode::SUCCESS)
}

fn new_password() -> anyhow::Result<String> {
    if let Ok(pw) = std::env::var("FLOWPACK_KEY_PASSWORD") {
        anyhow::ensure!(!pw.is_empty(), "FLOWPACK_KEY_PASSWORD is empty");
        return Ok(pw);
    }
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "no password: set FLOWPACK_KEY_PASSWORD or run in a terminal (or use --unencrypted)"
    );
    let a = rpassword::prompt_password("Password for the new key: ")?;
    let b = rpassword::prompt_password("Password (again): ")?;
    anyhow::ensure!(a == b, "the passwords differ");
    anyhow::ensure!(!a.is_empty(), "the password is empty");
    Ok(a)
}

/// Loads a secret key, asking for its password (FLOWPACK_KEY_PASSWORD or a prompt) when it is
/// encrypted.
pub fn load_signing_key(path: &Path) -> anyhow::Result<SigningKey> {
    match SigningKey::load(path, None) {
        Err(SignError::NeedsPassword { .. }) => {
            let pw = match std::env::var("FLOWPACK_KEY_PASSWORD") {
                Ok(pw) => pw,
                Err(_) if std::io::stdin().is_terminal() => {
                    rpassword::prompt_password(format!("Password for {}: ", path.display()))?
                }
                Err(_) => anyhow::bail!(
                    "{}: the secret key is encrypted; set FLOWPACK_KEY_PASSWORD",
                    path.display()
                ),
            };
            SigningKey::load(path, Some(&pw)).context("loading the signing key")
        }
        other => Ok(other?),
    }
}
