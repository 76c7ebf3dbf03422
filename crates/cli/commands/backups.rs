//! `flowpack backups LOCATION [--env E] [--verify [--trusted-key PUB]... [--threshold N]]
//! [--format json]`

use flowpack_action::backup::{self, ListOptions};

use crate::flags::TrustArgs;
use crate::outcome::{Outcome, Verdict};
use crate::output::{Format, print_json};

/// List the backups in a directory or an s3:// location, newest first.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  flowpack backups /var/backups/flowpack\n  \
flowpack backups s3://acme-backups/flowpack --env production --verify --trusted-key keys/backup.pub\n\n\
Columns: environment, created (UTC), sequence, flows, size in bytes, signed by, name. A file or \
object is listed when it is a backup: a manifest backup record naming its environment and the \
sequence its name carries. An s3:// location is read with the AWS_* variables (see the README, \
\"Backups in object storage\"); each object is downloaded to a temporary file to be read.\n\
Exit codes: 0 listed (and with --verify, every backup verified), 1 a backup did not verify, 2 \
could not run (unreadable directory, credentials, the store unreachable).")]
pub struct Args {
    /// A directory or s3://BUCKET/PREFIX.
    #[arg(value_name = "LOCATION")]
    location: String,
    /// Only this environment's backups.
    #[arg(long, value_name = "E")]
    env: Option<String>,
    /// Verify each backup (structure, digests; signatures with --trusted-key).
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    trust: TrustArgs,
    /// Output format (human or json).
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    let mut opts = ListOptions::new(args.location.clone());
    opts.env = args.env.clone();
    if args.verify {
        opts.verify = Some(args.trust.policy()?);
    }
    let list = backup::list(&opts)?;
    match args.format {
        Format::Json => print_json(&list)?,
        Format::Human => {
            let mut rows = vec![[
                "ENV".to_string(),
                "CREATED (UTC)".into(),
                "SEQ".into(),
                "FLOWS".into(),
                "SIZE".into(),
                "SIGNED BY".into(),
                "NAME".into(),
            ]];
            for b in &list.backups {
                let mut name = b.name.clone();
                if let Some(false) = b.verified {
                    name.push_str(&format!(
                        "  (did not verify: {})",
                        b.failure.as_deref().unwrap_or("")
                    ));
                }
                rows.push([
                    b.env.clone(),
                    b.created.clone(),
                    b.sequence.to_string(),
                    b.flows.to_string(),
                    b.size.to_string(),
                    if b.signed_by.is_empty() {
                        "-".into()
                    } else {
                        b.signed_by.join(",")
                    },
                    name,
                ]);
            }
            let widths: Vec<usize> = (0..7)
                .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
                .collect();
            for row in &rows {
                let line: Vec<String> = row
                    .iter()
                    .enumerate()
                    .map(|(c, v)| {
                        if c == 6 {
                            v.clone()
                        } else {
                            format!("{v:<w$}", w = widths[c])
                        }
                    })
                    .collect();
                say!("{}", line.join("  "));
            }
            if list.backups.is_empty() {
                esay!("no backups in {}", args.location);
            }
        }
    }
    Ok(if list.backups.iter().any(|b| b.verified == Some(false)) {
        Verdict::Failed
    } else {
        Verdict::Success
    })
}
