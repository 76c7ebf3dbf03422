//! `flowpack publish ARCHIVE oci://HOST[:PORT]/REPO[:TAG] [--plain-http]`

use std::path::PathBuf;

use flowpack_action::publish::Credentials;
use flowpack_action::publish::{self, PublishOptions};

use crate::outcome::{Outcome, Verdict};

/// Publish an archive to an OCI registry as an artifact (one layer holding the archive's exact
/// bytes); prints the reference pinned to the manifest digest.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  flowpack publish release.flowpack oci://registry.example.com/team/orders:1.2.0\n  \
FLOWPACK_REGISTRY_USER=ci FLOWPACK_REGISTRY_PASSWORD=… flowpack publish release.flowpack oci://127.0.0.1:5000/orders --plain-http\n\n\
Without a tag the package version is the tag. Credentials come from FLOWPACK_REGISTRY_USER and \
FLOWPACK_REGISTRY_PASSWORD (basic auth or the registry's token flow) and are never printed.\n\
Exit codes: 0 published, 1 the archive was rejected, 2 could not run (usage, network, \
authentication).",
    disable_version_flag = true
)]
pub struct Args {
    /// The archive.
    #[arg(value_name = "ARCHIVE")]
    archive: PathBuf,
    /// Where to: oci://HOST[:PORT]/REPO[:TAG].
    #[arg(value_name = "REFERENCE")]
    reference: String,
    /// Speak plain HTTP to the registry (local test registries only).
    #[arg(long)]
    plain_http: bool,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    let mut opts = PublishOptions::new(args.archive, args.reference);
    opts.plain_http = args.plain_http;
    opts.credentials = Credentials::from_env()?;
    let report = publish::run(&opts)?;
    say!("{}", report.reference);
    Ok(Verdict::Success)
}
