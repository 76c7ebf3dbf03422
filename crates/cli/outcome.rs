//! What a command returns: a verdict after rendering its report, or a failure to print.

use std::fmt::Display;

use flowpack_action::error::Remedy;
use flowpack_action::{Categorize, Category};

/// How a command that ran to the end came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Everything passed.
    Success,
    /// The report says a check failed (findings, a failed verification, a refused or partly
    /// failed push, a difference): the input was rejected.
    Failed,
}

impl Verdict {
    /// `Failed` when the report says something failed, else `Success`.
    pub fn failed_if(failed: bool) -> Verdict {
        if failed {
            Verdict::Failed
        } else {
            Verdict::Success
        }
    }
}

/// A command that did not run to the end: what to print and its category.
#[derive(Debug)]
pub struct Failure {
    /// Rejected input, or could not run.
    pub category: Category,
    /// The message (naming the file, entry, flow or flag at fault).
    pub message: String,
    /// The flag or setting that gets past the failure, printed after the message.
    pub hint: Option<String>,
}

impl<E: Categorize> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure {
            category: e.category(),
            message: e.to_string(),
            hint: e.remedy().as_ref().and_then(hint),
        }
    }
}

/// The one place that names the binary's flags for what a library error says is missing (the
/// libraries name no flag).
pub fn hint(remedy: &Remedy) -> Option<String> {
    let text = match remedy {
        Remedy::TrustedKey => {
            "give --trusted-key PUB (or --insecure-skip-signatures to skip signatures)".into()
        }
        Remedy::KeyPassword => {
            "set FLOWPACK_KEY_PASSWORD, or run in a terminal to be asked for it".into()
        }
        Remedy::ConflictPolicy => "give --on-conflict skip|duplicate|replace".into(),
        Remedy::Environment => {
            "give --env NAME (from flowpack.toml, or `local`) or --url URL".into()
        }
        Remedy::Overwrite => "use --force to replace it".into(),
        Remedy::MarketplaceKind => "--previous needs --kind marketplace".into(),
        Remedy::KeepAtLeastOne => "give --keep 1 or more, or no --keep to keep all".into(),
        Remedy::SkipWebhooks => {
            "add the keys to the overlay, or leave webhooks out with --no-webhooks".into()
        }
        Remedy::PackDocument { path, suggested } => {
            format!("flowpack pack {path} -o {suggested} --name NAME --version VERSION")
        }
        Remedy::UnpackArchive { path } => format!("flowpack unpack {path} -d DIR"),
        Remedy::TokenNotUrl => {
            "put the API key in the variable that token_env names (FLOWPACK_TOKEN with --url)"
                .into()
        }
        Remedy::Recover { env } => format!(
            "run `flowpack recover --env {env}` (undoes what it did; `--forward ARCHIVE` finishes it instead)"
        ),
        Remedy::Unlock { env } => format!("flowpack unlock --env {env}"),
        Remedy::CreateConfig => {
            "create one with `flowpack init` (--config FILE for another path), or give --url \
             URL, or use --env local"
                .into()
        }
        Remedy::SignArchive => "sign it with a trusted key: flowpack sign ARCHIVE --key KEY \
             (the trusted public keys are --trusted-key, or trusted_keys in flowpack.toml)"
            .into(),
        Remedy::TrustSigner { key_ids } => {
            let (keys, its) = if key_ids.len() == 1 {
                ("key", "its public key")
            } else {
                ("keys", "their public keys")
            };
            format!(
                "if you trust {keys} {}, give {its} with --trusted-key PUB (or add {} to \
                 trusted_keys in flowpack.toml); else sign with a trusted key: flowpack sign \
                 ARCHIVE --key KEY",
                key_ids.join(", "),
                if key_ids.len() == 1 { "it" } else { "them" }
            )
        }
        Remedy::InvalidSignature { key_id } => format!(
            "the archive changed after key {key_id} signed it, or the signature is damaged: \
             get the archive again from its source, or sign it again: flowpack sign ARCHIVE \
             --key KEY"
        ),
        Remedy::MoreSignatures { short } => format!(
            "sign it with {short} more trusted {}: flowpack sign ARCHIVE --key KEY; or lower \
             --threshold (threshold in flowpack.toml)",
            if *short == 1 { "key" } else { "keys" }
        ),
        Remedy::HttpUrl => "the server speaks plain HTTP: write its URL with http:// (url in \
                             flowpack.toml, or --url)"
            .into(),
        Remedy::PlainHttp => {
            "the registry speaks plain HTTP: give --plain-http (for local test registries)".into()
        }
        // A remedy this binary does not know yet: the message alone has to do.
        _ => return None,
    };
    Some(text)
}

impl Failure {
    /// Bad usage, or something of the binary's own (stdout closed, a prompt failed).
    pub fn usage(message: impl Display) -> Failure {
        Failure {
            category: Category::CouldNotRun,
            message: message.to_string(),
            hint: None,
        }
    }

    /// The same failure with another message (the details were rendered already).
    pub fn with_message(self, message: String) -> Failure {
        Failure { message, ..self }
    }

    /// A library error with what the command was doing before its message (`push to prod: …`).
    pub fn during<E: Categorize>(what: &str) -> impl FnOnce(E) -> Failure + '_ {
        move |e| {
            let f = Failure::from(e);
            let message = format!("{what}: {}", f.message);
            f.with_message(message)
        }
    }

    /// The same failure counted as "could not run" (commands whose 1 means "different").
    pub fn could_not_run(self) -> Failure {
        Failure {
            category: Category::CouldNotRun,
            ..self
        }
    }
}

/// What every command returns.
pub type Outcome = Result<Verdict, Failure>;
