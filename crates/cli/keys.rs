//! Secret keys and their passwords: from FLOWPACK_KEY_PASSWORD, else a prompt on a terminal.

use std::io::IsTerminal;
use std::path::Path;

use flowpack_core::sign::{SignError, SigningKey};

use crate::outcome::Failure;

/// The variable holding a key's password.
const PASSWORD_VAR: &str = "FLOWPACK_KEY_PASSWORD";

/// A password for a new key (asked twice on a terminal).
pub fn new_password() -> Result<String, Failure> {
    if let Ok(pw) = std::env::var(PASSWORD_VAR) {
        if pw.is_empty() {
            return Err(Failure::usage(format!("{PASSWORD_VAR} is empty")));
        }
        return Ok(pw);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(format!(
            "no password: set {PASSWORD_VAR} or run in a terminal (or use --unencrypted)"
        )));
    }
    let prompt = |p: &str| rpassword::prompt_password(p).map_err(Failure::usage);
    let a = prompt("Password for the new key: ")?;
    let b = prompt("Password (again): ")?;
    if a != b {
        return Err(Failure::usage("the passwords differ"));
    }
    if a.is_empty() {
        return Err(Failure::usage("the password is empty"));
    }
    Ok(a)
}

/// Loads a secret key, asking for its password when it is encrypted.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, Failure> {
    match SigningKey::load(path, None) {
        Err(SignError::NeedsPassword { .. }) => {
            let pw = match std::env::var(PASSWORD_VAR) {
                Ok(pw) => pw,
                Err(_) if std::io::stdin().is_terminal() => {
                    rpassword::prompt_password(format!("Password for {}: ", path.display()))
                        .map_err(Failure::usage)?
                }
                Err(_) => {
                    return Err(Failure::usage(format!(
                        "{}: the secret key is encrypted; set {PASSWORD_VAR}",
                        path.display()
                    )));
                }
            };
            Ok(SigningKey::load(path, Some(&pw))?)
        }
        other => Ok(other?),
    }
}

/// Loads every key.
pub fn load_signing_keys(paths: &[std::path::PathBuf]) -> Result<Vec<SigningKey>, Failure> {
    paths.iter().map(|p| load_signing_key(p)).collect()
}
