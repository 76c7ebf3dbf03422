//! `flowpack pull oci://HOST[:PORT]/REPO(:TAG|@sha256:HEX) -o OUT [--force] [--plain-http]
//! [--trusted-key PUB]... [--threshold N] [--insecure-skip-signatures]`

use std::path::PathBuf;

use flowpack_action::publish::Credentials;
use flowpack_action::pull::{self, PullError, PullOptions};

use super::verify::print_human;
use crate::flags::{RegistryTimeoutArgs, TrustArgs};
use crate::outcome::{Failure, Outcome, Verdict};

/// Pull an archive from an OCI registry: media types and digests checked, the archive verified
/// (structure, hashes, signatures against the trusted keys), then written to OUT.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  flowpack pull oci://registry.example.com/team/orders:1.2.0 -o orders.flowpack --trusted-key keys/release.pub\n  \
flowpack pull oci://127.0.0.1:5000/orders@sha256:… -o orders.flowpack --plain-http --insecure-skip-signatures\n\n\
Signatures are required: give --trusted-key, or say --insecure-skip-signatures. Nothing is \
written to OUT unless every check passed. Credentials come from FLOWPACK_REGISTRY_USER and \
FLOWPACK_REGISTRY_PASSWORD and are never printed.\n\
Exit codes: 0 pulled and verified, 1 refused (unknown tag or digest, not a flowpack artifact, \
content not matching its digest, verification failed), 2 could not run (usage, network, \
authentication, OUT exists without --force).",
    disable_version_flag = true
)]
pub struct Args {
    /// What to pull: oci://HOST[:PORT]/REPO:TAG or oci://HOST[:PORT]/REPO@sha256:HEX.
    #[arg(value_name = "REFERENCE")]
    reference: String,
    /// Where to write the archive.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    out: PathBuf,
    #[command(flatten)]
    overwrite: crate::flags::ForceArgs,
    /// Speak plain HTTP to the registry (local test registries only).
    #[arg(long)]
    plain_http: bool,
    #[command(flatten)]
    timeout: RegistryTimeoutArgs,
    #[command(flatten)]
    trust: TrustArgs,
    /// Accept an archive without checking its signatures (its hashes are still checked).
    #[arg(long)]
    insecure_skip_signatures: bool,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    let policy = args.trust.policy()?;
    if policy.threshold == 0 && !args.insecure_skip_signatures {
        return Err(Failure::usage(
            "pull verifies signatures: give --trusted-key PUB (or --insecure-skip-signatures)",
        ));
    }
    let mut opts = PullOptions::new(args.reference, args.out, policy);
    opts.force = args.overwrite.force;
    opts.plain_http = args.plain_http;
    opts.deadline = args.timeout.deadline();
    opts.credentials = Credentials::from_env()?;
    match pull::run(&opts) {
        Ok(done) => {
            say!(
                "{}: {} bytes, verified, written to {}",
                done.pulled.reference,
                done.pulled.size,
                done.pulled.path.display()
            );
            Ok(Verdict::Success)
        }
        Err(e) => {
            if let PullError::Verification { report, .. } = &e {
                print_human(report);
            }
            Err(e.into())
        }
    }
}
