//! Signatures: minisign format (Ed25519, prehashed) over the exact bytes of
//! `flowpack.json`, so the stock `minisign -V` verifies them.
//!
//! Key files are minisign's: `PREFIX.key` (secret, encrypted with a password or not) and
//! `PREFIX.pub`. Keys made by `minisign -G` load too, including the unencrypted keys of
//! `minisign -G -W` 0.11, which carry an all-zero key checksum.

use std::io::{Cursor, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use minisign::{KeyPair, PublicKey, PublicKeyBox, SecretKey, SecretKeyBox, SignatureBox};
use sha2::{Digest, Sha256};

/// Errors handling keys and signatures; each names the file or key at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// A key file could not be read.
    #[error("{path}: cannot read key: {source}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key file is not a minisign key.
    #[error("{path}: not a minisign {what} key: {reason}")]
    BadKey {
        /// The key file.
        path: String,
        /// `secret` or `public`.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// An encrypted secret key needs a password.
    #[error("{path}: the secret key is encrypted and no password was given")]
    NeedsPassword {
        /// The key file.
        path: String,
    },
    /// The password does not decrypt the key.
    #[error("{path}: wrong password for this secret key")]
    WrongPassword {
        /// The key file.
        path: String,
    },
    /// A file to create exists already.
    #[error("{path}: already exists; refusing to overwrite a key")]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// Writing a key failed.
    #[error(transparent)]
    Write(#[from] crate::fsutil::WriteError),
    /// A key file that is not a regular file, or past the key-file bound (64 KiB).
    #[error(transparent)]
    File(crate::fsutil::ReadError),
    /// The minisign library failed.
    #[error("{context}: {reason}")]
    Minisign {
        /// What was being done.
        context: String,
        /// The library's message.
        reason: String,
    },
}

/// A secret key ready to sign, with its public half.
#[derive(Clone)]
pub struct SigningKey {
    sk: SecretKey,
    pk: Option<PublicKey>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.key_id())
    }
}

/// A trusted public key.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pk: PublicKey,
}

/// A key file's text, read within [`crate::fsutil::KEY_FILE_LIMIT`] (a device such as
/// `/dev/zero` or a huge file is refused before it is read).
fn read_key_file(path: &Path) -> Result<String, SignError> {
    use crate::fsutil::{KEY_FILE_LIMIT, ReadError, read_bounded_text};
    read_bounded_text(path, KEY_FILE_LIMIT, "a key file").map_err(|e| match e {
        ReadError::Io { path, cause } => SignError::Read {
            path,
            source: cause,
        },
        other => SignError::File(other),
    })
}

/// The key id as minisign prints it: 16 uppercase hex digits.
fn key_id_of(keynum: &[u8]) -> String {
    keynum.iter().rev().map(|b| format!("{b:02X}")).collect()
}

impl SigningKey {
    /// Loads a minisign secret key file. `password` decrypts an encrypted key.
    pub fn load(path: &Path, password: Option<&str>) -> Result<SigningKey, SignError> {
        let text = read_key_file(path)?;
        SigningKey::from_text(&text, &path.display().to_string(), password)
    }

    /// Parses a minisign secret key (`origin` names it in errors).
    pub fn from_text(
        text: &str,
        origin: &str,
        password: Option<&str>,
    ) -> Result<SigningKey, SignError> {
        let bad = |reason: &str| SignError::BadKey {
            path: origin.to_string(),
            what: "secret",
            reason: reason.to_string(),
        };
        let line = text
            .lines()
            .nth(1)
            .ok_or_else(|| bad("missing the key line"))?
            .trim();
        let raw = decode_base64(line).ok_or_else(|| bad("the key line is not base64"))?;
        if raw.len() != 158 || &raw[0..2] != b"Ed" {
            return Err(bad("unexpected key length or algorithm"));
        }
        let encrypted = raw[2..4] != [0, 0];
        let sk = if encrypted {
            let pw = password.ok_or_else(|| SignError::NeedsPassword {
                path: origin.to_string(),
            })?;
            SecretKey::from_box(
                SecretKeyBox::from_string(text).map_err(|e| bad(&e.to_string()))?,
                Some(pw.to_string()),
            )
            .map_err(|_| SignError::WrongPassword {
                path: origin.to_string(),
            })?
        } else if raw[126..158].iter().all(|b| *b == 0) {
            // minisign 0.11 `-G -W` writes unencrypted keys with an all-zero checksum.
            SecretKey::from_bytes(&raw).map_err(|e| bad(&e.to_string()))?
        } else {
            SecretKey::from_unencrypted_box(
                SecretKeyBox::from_string(text).map_err(|e| bad(&e.to_string()))?,
            )
            .map_err(|e| bad(&e.to_string()))?
        };
        let pk = PublicKey::from_secret_key(&sk).ok();
        Ok(SigningKey { sk, pk })
    }

    /// The key id, as minisign prints it (16 uppercase hex digits).
    pub fn key_id(&self) -> String {
        key_id_of(self.sk.keynum())
    }

    /// Signs `data` (prehashed Ed25519) with `trusted_comment`; returns the `.minisig` text.
    pub fn sign(&self, data: &[u8], trusted_comment: &str) -> Result<String, SignError> {
        let untrusted = format!("signature from flowpack key {}", self.key_id());
        let sig = minisign::sign(
            self.pk.as_ref(),
            &self.sk,
            Cursor::new(data),
            Some(trusted_comment),
            Some(&untrusted),
        )
        .map_err(|e| SignError::Minisign {
            context: format!("signing with key {}", self.key_id()),
            reason: e.to_string(),
        })?;
        Ok(sig.into_string())
    }
}

impl TrustedKey {
    /// Loads a minisign public key file.
    pub fn load(path: &Path) -> Result<TrustedKey, SignError> {
        let text = read_key_file(path)?;
        TrustedKey::from_text(&text, &path.display().to_string())
    }

    /// Parses a minisign public key (`origin` names it in errors); accepts the two-line file or
    /// the bare base64 line.
    pub fn from_text(text: &str, origin: &str) -> Result<TrustedKey, SignError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .unwrap_or("");
        let pk = PublicKey::from_base64(line).map_err(|e| SignError::BadKey {
            path: origin.to_string(),
            what: "public",
            reason: e.to_string(),
        })?;
        Ok(TrustedKey { pk })
    }

    /// The key id, as minisign prints it.
    pub fn key_id(&self) -> String {
        key_id_of(self.pk.keynum())
    }

    /// Checks a `.minisig` over `data`; returns its trusted comment.
    pub fn verify(&self, data: &[u8], minisig: &str) -> Result<String, String> {
        let sig = SignatureBox::from_string(minisig).map_err(|e| e.to_string())?;
        minisign::verify(&self.pk, &sig, Cursor::new(data), true, false, false)
            .map_err(|e| e.to_string())?;
        sig.trusted_comment().map_err(|e| e.to_string())
    }
}

/// The key id a `.minisig` names, when it parses.
pub(crate) fn signature_key_id(minisig: &str) -> Option<String> {
    let sig = SignatureBox::from_string(minisig).ok()?;
    Some(key_id_of(sig.keynum()))
}

/// The trusted comment flowpack writes: `flowpack <name>@<version> sha256:<manifest digest>`.
pub(crate) fn trusted_comment(name: &str, version: &str, manifest: &[u8]) -> String {
    format!(
        "flowpack {name}@{version} sha256:{}",
        hex::encode(Sha256::digest(manifest))
    )
}

/// Options for [`keygen`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeygenOptions {
    /// Writes `PREFIX.key` and `PREFIX.pub`.
    pub prefix: PathBuf,
    /// Encrypts the secret key with this password; `None` writes it unencrypted.
    pub password: Option<String>,
}

impl KeygenOptions {
    /// Keys at `prefix` (`PREFIX.key`, `PREFIX.pub`), the secret one encrypted with `password`
    /// when given.
    pub fn new(prefix: PathBuf, password: Option<String>) -> KeygenOptions {
        KeygenOptions { prefix, password }
    }
}

/// What [`keygen`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeygenReport {
    /// The secret key file.
    pub secret_key: PathBuf,
    /// The public key file.
    pub public_key: PathBuf,
    /// The key id.
    pub key_id: String,
}

/// Makes a new key pair in minisign's file format. Refuses to overwrite existing files.
pub fn keygen(opts: &KeygenOptions) -> Result<KeygenReport, SignError> {
    let with_ext = |ext: &str| {
        let mut s = opts.prefix.clone().into_os_string();
        s.push(ext);
        PathBuf::from(s)
    };
    let (sk_path, pk_path) = (with_ext(".key"), with_ext(".pub"));
    for p in [&sk_path, &pk_path] {
        if p.symlink_metadata().is_ok() {
            return Err(SignError::Exists { path: p.clone() });
        }
    }
    let mlib = |e: minisign::PError| SignError::Minisign {
        context: "generating a key pair".into(),
        reason: e.to_string(),
    };
    let kp = match &opts.password {
        Some(pw) => KeyPair::generate_encrypted_keypair(Some(pw.clone())).map_err(mlib)?,
        None => KeyPair::generate_unencrypted_keypair().map_err(mlib)?,
    };
    let key_id = key_id_of(kp.pk.keynum());
    let sk_box = kp
        .sk
        .to_box(Some(&format!("flowpack secret key {key_id}")))
        .map_err(mlib)?;
    let pk_box: PublicKeyBox = kp.pk.to_box().map_err(mlib)?;
    claim_pair(
        (&sk_path, sk_box.to_string().as_bytes()),
        (&pk_path, pk_box.to_string().as_bytes()),
    )?;
    Ok(KeygenReport {
        secret_key: sk_path,
        public_key: pk_path,
        key_id,
    })
}

/// Creates the secret key (mode 0600) and the public key (0644 less the umask) exclusively: both
/// are written to temporary files first, then hard-linked to their names, which fails when a name
/// exists (no overwrite, no race between two runs). When the public key's name is taken after the
/// secret key's was claimed, the secret key is removed again, so no run leaves a mismatched pair.
fn claim_pair(secret: (&Path, &[u8]), public: (&Path, &[u8])) -> Result<(), SignError> {
    let dir_of = |p: &Path| match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let write_err = |path: &Path, cause: std::io::Error| {
        SignError::from(crate::fsutil::WriteError {
            path: path.to_path_buf(),
            cause,
        })
    };
    let temp = |(path, bytes): (&Path, &[u8]), mode: u32| {
        let mut t =
            crate::fsutil::temp_file_in(&dir_of(path), mode).map_err(|e| write_err(path, e))?;
        // The mode is applied again explicitly: 0600 must hold whatever the umask.
        if mode == 0o600 {
            t.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| write_err(path, e))?;
        }
        t.write_all(bytes).map_err(|e| write_err(path, e))?;
        t.as_file().sync_all().map_err(|e| write_err(path, e))?;
        Ok::<_, SignError>(t)
    };
    let sk_tmp = temp(secret, 0o600)?;
    let pk_tmp = temp(public, 0o644)?;
    let claim = |tmp: &tempfile::NamedTempFile, path: &Path| {
        std::fs::hard_link(tmp.path(), path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                SignError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                write_err(path, e)
            }
        })
    };
    claim(&sk_tmp, secret.0)?;
    if let Err(e) = claim(&pk_tmp, public.0) {
        let _ = std::fs::remove_file(secret.0);
        return Err(e);
    }
    Ok(())
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_unencrypted_key_signs_and_its_public_key_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let r = keygen(&KeygenOptions {
            prefix: dir.path().join("k"),
            password: None,
        })
        .unwrap();
        let sk = SigningKey::load(&r.secret_key, None).unwrap();
        let pk = TrustedKey::load(&r.public_key).unwrap();
        assert_eq!(sk.key_id(), pk.key_id());
        let sig = sk.sign(b"manifest", "flowpack p@1.0.0").unwrap();
        assert_eq!(signature_key_id(&sig).unwrap(), r.key_id);
        assert_eq!(pk.verify(b"manifest", &sig).unwrap(), "flowpack p@1.0.0");
        assert!(pk.verify(b"manifesT", &sig).is_err());
        let again = keygen(&KeygenOptions {
            prefix: dir.path().join("k"),
            password: None,
        });
        assert!(matches!(again, Err(SignError::Exists { .. })));
    }

    #[test]
    fn an_unencrypted_key_with_a_zero_checksum_loads() {
        let dir = tempfile::tempdir().unwrap();
        let r = keygen(&KeygenOptions {
            prefix: dir.path().join("k"),
            password: None,
        })
        .unwrap();
        let text = std::fs::read_to_string(&r.secret_key).unwrap();
        let mut raw = decode_base64(text.lines().nth(1).unwrap()).unwrap();
        raw[126..].fill(0);
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut b64 = String::new();
        for chunk in raw.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |a, (i, &b)| a | (u32::from(b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                b64.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        while !b64.len().is_multiple_of(4) {
            b64.push('=');
        }
        let zeroed = format!("untrusted comment: x\n{b64}\n");
        let sk = SigningKey::from_text(&zeroed, "zero.key", None).unwrap();
        let pk = TrustedKey::load(&r.public_key).unwrap();
        let sig = sk.sign(b"data", "c").unwrap();
        assert!(pk.verify(b"data", &sig).is_ok());
    }

    #[test]
    fn an_encrypted_key_needs_the_right_password() {
        let dir = tempfile::tempdir().unwrap();
        let r = keygen(&KeygenOptions {
            prefix: dir.path().join("k"),
            password: Some("pw".into()),
        })
        .unwrap();
        assert!(matches!(
            SigningKey::load(&r.secret_key, None),
            Err(SignError::NeedsPassword { .. })
        ));
        assert!(matches!(
            SigningKey::load(&r.secret_key, Some("nope")),
            Err(SignError::WrongPassword { .. })
        ));
        assert_eq!(
            SigningKey::load(&r.secret_key, Some("pw"))
                .unwrap()
                .key_id(),
            r.key_id
        );
    }

    #[test]
    fn concurrent_keygens_on_one_prefix_leave_one_matching_pair() {
        for round in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let prefix = dir.path().join(format!("k{round}"));
            let results: Vec<_> = std::thread::scope(|s| {
                let runs: Vec<_> = (0..6)
                    .map(|_| {
                        s.spawn(|| {
                            keygen(&KeygenOptions {
                                prefix: prefix.clone(),
                                password: None,
                            })
                        })
                    })
                    .collect();
                runs.into_iter().map(|r| r.join().unwrap()).collect()
            });
            let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert_eq!(won.len(), 1, "round {round}: {results:?}");
            assert!(
                results
                    .iter()
                    .filter_map(|r| r.as_ref().err())
                    .all(|e| matches!(e, SignError::Exists { .. })),
                "{results:?}"
            );
            let sk = SigningKey::load(&won[0].secret_key, None).unwrap();
            let pk = TrustedKey::load(&won[0].public_key).unwrap();
            assert_eq!(sk.key_id(), won[0].key_id);
            let sig = sk.sign(b"m", "c").unwrap();
            assert!(pk.verify(b"m", &sig).is_ok());
            // Only the pair is left: no temporaries.
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&won[0].secret_key), 0o600);
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let umask = status
                .lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
                .unwrap();
            assert_eq!(mode(&won[0].public_key), 0o644 & !umask);
        }
    }

    #[test]
    fn keygen_never_replaces_an_existing_public_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k.pub"), b"mine").unwrap();
        let r = keygen(&KeygenOptions {
            prefix: dir.path().join("k"),
            password: None,
        });
        assert!(matches!(r, Err(SignError::Exists { .. })), "{r:?}");
        assert_eq!(std::fs::read(dir.path().join("k.pub")).unwrap(), b"mine");
        assert!(!dir.path().join("k.key").exists());
    }
}
