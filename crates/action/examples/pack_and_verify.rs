//! Packs the reference export documents into a signed archive with flowpack-action, then
//! verifies it against the freshly generated public key, and once more against a key that did
//! not sign it.
//!
//! `cargo run --example pack_and_verify` (no arguments; everything happens in a temporary
//! directory).

use std::path::{Path, PathBuf};

use flowpack_action::{keygen, pack, trust, verify};
use flowpack_core::archive::CheckStatus;
use flowpack_core::sign::SigningKey;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/reference");

    // A key pair, its secret key written without a password (fine for a throwaway example).
    let keys = keygen::run(&keygen::KeygenOptions::new(
        dir.path().join("release"),
        None,
    ))?;
    println!("key id {}", keys.key_id);

    // Pack both reference documents (format versions 1 and 2) into one signed release archive.
    let archive = dir.path().join("flows.flowpack");
    let mut options = pack::PackOptions::new(
        vec![
            fixtures.join("export-v2-order-sync.json"),
            fixtures.join("export-v1-legacy.json"),
        ],
        archive.clone(),
        "acme-flows".into(),
        semver::Version::new(1, 0, 0),
        time::OffsetDateTime::now_utc(),
    );
    options.signers = vec![SigningKey::load(&keys.secret_key, None)?];
    let packed = pack::run(&options)?;
    println!(
        "packed {} flows into {}",
        packed.manifest.flows.len(),
        archive.display()
    );
    for flow in &packed.manifest.flows {
        println!("  {} ({})", flow.name, flow.path);
    }

    // Verify with the public key just made: every check passes.
    let report = verify_with(&archive, vec![keys.public_key.clone()])?;
    for check in &report.checks {
        println!("  {:<10} {:?}", check.name, check.status);
    }
    println!("trusted signers: {}", report.signers.join(", "));
    assert!(report.ok, "the archive verifies with its own key");

    // Verify against another key: the signature check fails, naming why.
    let other = keygen::run(&keygen::KeygenOptions::new(dir.path().join("other"), None))?;
    let report = verify_with(&archive, vec![other.public_key])?;
    assert!(!report.ok, "a key that did not sign is not enough");
    if let Some(failed) = report
        .checks
        .iter()
        .find(|c| matches!(c.status, CheckStatus::Failed))
    {
        println!(
            "with another key: {} failed: {}",
            failed.name, failed.detail
        );
    }
    Ok(())
}

/// Verifies `archive` requiring a signature by one of `keys`.
fn verify_with(
    archive: &Path,
    keys: Vec<PathBuf>,
) -> Result<flowpack_core::archive::VerifyReport, Box<dyn std::error::Error>> {
    let policy = trust::policy(&trust::TrustOptions::new(keys, None))?;
    Ok(verify::run(&verify::VerifyOptions::new(
        archive.to_path_buf(),
        policy,
    ))?)
}
