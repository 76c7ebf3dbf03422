//! `flowpack inspect FILE`

use std::path::PathBuf;

use clap::ValueEnum;
use flowpack_action::input::is_reference;
use flowpack_action::inspect::{self, InspectOptions, InspectReport};
use flowpack_action::publish::Credentials;
use flowpack_core::archive::{FlowSettings, Manifest, SignatureCheck, SignatureStatus};
use flowpack_core::inspect::Inspection;

use crate::flags::{RegistryTimeoutArgs, TrustArgs};
use crate::outcome::{Outcome, Verdict};
use crate::output::{count, print_json};
use crate::review::{self, FlowGraphs};

/// Output formats of `inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum InspectFormat {
    /// Text for people.
    #[default]
    Human,
    /// One JSON document on stdout (shape in `--help`).
    Json,
    /// An HTML page drawing each version's step graph (self-contained, no script).
    Html,
    /// A Mermaid `flowchart LR`, one subgraph per version.
    Mermaid,
    /// A Graphviz `digraph`, one cluster per version.
    Dot,
}

/// Show what an export document holds: its format version, flow, versions with step counts,
/// systems, scripts, variables (never secret values) and how many filled secret values it carries.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  flowpack inspect flows/orders.json --format json\n  \
flowpack inspect oci://registry.example.com/team/app:1.2.0\n  \
flowpack inspect release.flowpack --format mermaid\n\n\
--format html, mermaid and dot draw each version's step graph (steps and connections, left to \
right; a version-1 document is read as migrated to version 2) for every flow of the file.\n\n\
An oci:// reference is pulled to a temporary file first (media types and digests checked); the \
report names it pinned to the digest its tag resolved to. Registry credentials come from \
FLOWPACK_REGISTRY_USER and FLOWPACK_REGISTRY_PASSWORD.\n\n\
JSON shape:\n  {\"format_version\": 2, \"format_detection\": \"inferred\"|\"stamped\",\n   \
\"flow\": {\"name\", \"priority\", \"enabled\"},\n   \
\"versions\": [{\"iteration\", \"status\", \"steps\": 6, \"step_types\": {\"connector\": 2, ...},\n                 \
\"schedules\": [\"*/15 * * * *\"], \"variables\": [{\"key\", \"is_secret\", \"has_value\"}]}],\n   \
\"systems\": [{\"name\", \"protocol\", \"auth_implementations\"}],\n   \
\"scripts\": [{\"name\", \"language\"}], \"filled_secrets\": 0}\n\
Missing or mistyped fields show as null (run `flowpack validate` to see why).\n\
For an archive: {\"archive\", \"manifest\": {...}, \"flows\": [{\"entry\", ...the shape above}],\n   \
\"signatures\": [{\"entry\", \"key_id\", \"status\": \"trusted\"|\"untrusted\"|\"invalid\", \"detail\"}]}\n\
An archive's signatures are listed against --trusted-key (without it, all are untrusted: not \
checked). `flowpack verify` passes or fails an archive; inspect reads its content.\n\n\
Exit codes: 0 inspected, 1 not an export document or a safe archive, 2 could not read the file."
)]
pub struct Args {
    /// The export document, `.flowpack` archive, oci://HOST[:PORT]/REPO(:TAG|@sha256:HEX), or
    /// s3://BUCKET/KEY.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Speak plain HTTP to the registry of an oci:// archive (local test registries only).
    #[arg(long)]
    plain_http: bool,
    #[command(flatten)]
    timeout: RegistryTimeoutArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: InspectFormat,
    #[command(flatten)]
    trust: TrustArgs,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    let mut opts = InspectOptions::new(args.file);
    opts.plain_http = args.plain_http;
    opts.deadline = args.timeout.deadline();
    opts.policy = args.trust.policy()?;
    opts.graphs = matches!(
        args.format,
        InspectFormat::Html | InspectFormat::Mermaid | InspectFormat::Dot
    );
    let shown = opts.file.display().to_string();
    if is_reference(&opts.file.to_string_lossy()) {
        opts.credentials = Credentials::from_env()?;
    }
    let report = inspect::run(&opts)?;
    if opts.graphs {
        let flows: Vec<FlowGraphs> = match report {
            InspectReport::Document {
                file,
                inspection,
                graphs,
            } => vec![FlowGraphs {
                name: inspection.flow.name.unwrap_or(file),
                graphs,
            }],
            InspectReport::Archive { flows, .. } => flows
                .into_iter()
                .map(|f| FlowGraphs {
                    name: f.inspection.flow.name.unwrap_or(f.entry),
                    graphs: f.graphs,
                })
                .collect(),
        };
        print!(
            "{}",
            match args.format {
                InspectFormat::Html => review::graphs_html(&shown, &flows),
                InspectFormat::Mermaid => flowpack_core::graph::mermaid(&review::titled(&flows)),
                _ => flowpack_core::graph::dot(&review::titled(&flows)),
            }
        );
        return Ok(Verdict::Success);
    }
    match report {
        InspectReport::Document {
            file, inspection, ..
        } => match args.format {
            InspectFormat::Json => print_json(&inspection)?,
            _ => print_human(&file, &inspection),
        },
        InspectReport::Archive {
            archive,
            manifest,
            flows,
            signatures,
        } => match args.format {
            InspectFormat::Human
            | InspectFormat::Html
            | InspectFormat::Mermaid
            | InspectFormat::Dot => {
                print_manifest(&archive, &manifest);
                print_signatures(&signatures);
                for f in &flows {
                    say!();
                    print_human(&f.entry, &f.inspection);
                    if let Some(s) = &f.settings {
                        print_settings(s);
                    }
                }
            }
            InspectFormat::Json => {
                let flows: Vec<serde_json::Value> = flows
                    .iter()
                    .map(|f| {
                        let mut v =
                            serde_json::to_value(&f.inspection).expect("an inspection serialises");
                        if let Some(obj) = v.as_object_mut() {
                            obj.insert("entry".into(), f.entry.clone().into());
                            obj.insert(
                                "settings".into(),
                                serde_json::to_value(&f.settings).expect("flow settings serialise"),
                            );
                        }
                        v
                    })
                    .collect();
                print_json(&serde_json::json!({
                    "archive": archive,
                    "manifest": manifest,
                    "flows": flows,
                    "signatures": signatures,
                }))?
            }
        },
    }
    Ok(Verdict::Success)
}

fn print_manifest(file: &str, m: &Manifest) {
    say!("{file}");
    say!(
        "  package         {}@{} ({:?}){}",
        m.package.name,
        m.package.version,
        m.package.kind,
        if m.package.description.is_empty() {
            String::new()
        } else {
            format!(": {}", m.package.description)
        }
    );
    say!("  created         {} by {}", m.created_at, m.generator);
    say!("  flows           {}", m.flows.len());
    for f in &m.flows {
        say!(
            "    {}  {}  ({}, {})",
            f.path,
            f.name,
            count(f.steps as usize, "step", "steps"),
            count(f.size as usize, "byte", "bytes")
        );
    }
    say!(
        "  requires        export format {}, {}, {}, {}",
        m.requires.export_format,
        count(m.requires.systems.len(), "system", "systems"),
        count(m.requires.scripts.len(), "script", "scripts"),
        count(m.requires.dependencies.len(), "dependency", "dependencies"),
    );
    for s in &m.requires.systems {
        say!("    system      {}{}", s.name, paren(&s.protocol));
    }
    for s in &m.requires.scripts {
        say!("    script      {}{}", s.name, paren(&s.language));
    }
    for d in &m.requires.dependencies {
        say!("    dependency  {} ({})", d.name, d.kind);
    }
    if !m.inputs.is_empty() {
        say!("  inputs          {}", m.inputs.len());
        for i in &m.inputs {
            say!(
                "    {} {} ({}){}",
                i.kind.as_str(),
                i.name,
                i.flow,
                if i.required { ", required" } else { "" }
            );
        }
    }
}

/// Every signature with its status: `KEYID  trusted`, `untrusted (not checked)`, `invalid: …`.
fn print_signatures(list: &[SignatureCheck]) {
    if list.is_empty() {
        say!("  signatures      none (not signed)");
        return;
    }
    say!("  signatures      {}", list.len());
    for s in list {
        say!("    {}  {}", s.key_id, signature_status(s));
    }
}

/// A signature's status for people.
pub fn signature_status(s: &SignatureCheck) -> String {
    match s.status {
        SignatureStatus::Trusted => "trusted, verified".to_string(),
        SignatureStatus::Untrusted => "untrusted (not checked)".to_string(),
        SignatureStatus::Invalid => format!("invalid: {}", s.detail),
    }
}

fn paren(v: &Option<String>) -> String {
    v.as_ref().map_or_else(String::new, |v| format!(" ({v})"))
}

/// A flow's `flow.json`, below its document's summary.
fn print_settings(s: &FlowSettings) {
    say!(
        "  settings        enabled {}   deployed iteration {}   priority {}",
        s.enabled,
        or_dash(&s.deployed_iteration),
        s.priority
    );
    say!(
        "    prod_flag {}, use_queued_time {}, remove_failed_payloads {}, layout {}",
        s.prod_flag,
        s.use_queued_time,
        s.remove_failed_payloads,
        if s.layout_direction.is_empty() {
            "-"
        } else {
            &s.layout_direction
        }
    );
    if !s.labels.is_empty() || !s.notification_groups.is_empty() {
        say!(
            "    labels {:?}, notification groups {:?}",
            s.labels,
            s.notification_groups
        );
    }
    for (n, w) in s.webhooks.iter().enumerate() {
        say!(
            "    webhook [{n}]  {} {}{}",
            w.status,
            w.format,
            if w.has_hmac_secret_key {
                format!(
                    ", HMAC {} (secret is an input)",
                    w.hmac_algorithm.as_deref().unwrap_or("-")
                )
            } else {
                String::new()
            }
        );
    }
    for (n, c) in s.callbacks.iter().enumerate() {
        say!("    callback [{n}] {} {}", c.status, c.format);
    }
}

fn or_dash<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), T::to_string)
}

fn print_human(file: &str, i: &Inspection) {
    say!("{file}");
    say!(
        "  format version  {} ({})",
        i.format_version,
        match i.format_detection {
            flowpack_core::document::Detection::Stamped => "stamped",
            flowpack_core::document::Detection::Inferred => "inferred",
        }
    );
    say!("  flow            {}", or_dash(&i.flow.name));
    say!(
        "  priority        {}   enabled {}",
        or_dash(&i.flow.priority),
        or_dash(&i.flow.enabled)
    );
    say!("  versions        {}", i.versions.len());
    for (n, v) in i.versions.iter().enumerate() {
        let types: Vec<String> = v
            .step_types
            .iter()
            .map(|(t, c)| format!("{t} {c}"))
            .collect();
        say!(
            "    [{n}] iteration {}  {}  {}: {}",
            or_dash(&v.iteration),
            or_dash(&v.status),
            count(v.steps, "step", "steps"),
            types.join(", ")
        );
        for s in &v.schedules {
            say!("        schedule  {s}");
        }
        for var in &v.variables {
            say!(
                "        variable  {}{}{}",
                or_dash(&var.key),
                if var.is_secret { " (secret)" } else { "" },
                if var.has_value { "" } else { " (no value)" }
            );
        }
    }
    say!("  systems         {}", i.systems.len());
    for s in &i.systems {
        say!(
            "    {} ({}), {}",
            or_dash(&s.name),
            or_dash(&s.protocol),
            count(
                s.auth_implementations,
                "auth implementation",
                "auth implementations"
            )
        );
    }
    say!("  scripts         {}", i.scripts.len());
    for s in &i.scripts {
        say!("    {} ({})", or_dash(&s.name), or_dash(&s.language));
    }
    say!("  filled secrets  {}", i.filled_secrets);
}
