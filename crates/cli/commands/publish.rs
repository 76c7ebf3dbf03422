//! `flowpack publish ARCHIVE oci://HOST[:PORT]/REPO[:TAG] [--plain-http]`

use std::path::PathBuf;
use std::process::ExitCode;

use flowpack_client::oci::{Credentials, OciError, PublishOptions, Reference, publish};

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
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let result = (|| {
        let reference = Reference::parse(&args.reference)?;
        let mut options = PublishOptions::default();
        options.registry.plain_http = args.plain_http;
        options.registry.credentials = Credentials::from_env()?;
        publish(&args.archive, &reference, &options)
    })();
    match result {
        Ok(report) => {
            println!("{}", report.reference);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => fail(&e),
    }
}

/// Prints the error; exit 1 when the input was rejected, 2 when the command could not run.
pub fn fail(e: &OciError) -> anyhow::Result<ExitCode> {
    eprintln!("flowpack: error: {e}");
    Ok(ExitCode::from(if e.rejects_input() { 1 } else { 2 }))
}
