//! Flags shared by several commands.

use std::path::PathBuf;
use std::sync::Arc;

use flowpack_action::env::{self, Connection, EnvSelector, Environment};
use flowpack_action::trust::{self, TrustOptions};
use flowpack_core::archive::TrustPolicy;

use crate::outcome::Failure;

/// Where environments come from: the config file, or a base URL standing for one. Part of
/// [`EnvArgs`]; diff, whose sides name environments (`env:NAME`, `env:url`), takes it alone.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    /// A platform base URL, without a config (the API key from FLOWPACK_TOKEN); for diff, the
    /// platform a side written env:url stands for.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The config file (default: ./flowpack.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The flags that choose an environment.
#[derive(Debug, Clone, clap::Args)]
pub struct EnvArgs {
    /// The environment, from flowpack.toml (`local`: the embedded sandbox, no configuration).
    #[arg(long = "env", value_name = "NAME", conflicts_with = "url")]
    pub env: Option<String>,
    /// The config file or a URL.
    #[command(flatten)]
    pub source: ConfigArgs,
    /// Log every request (the API key shown as ••••) on stderr. push: list every flow, and log
    /// requests when given twice.
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl EnvArgs {
    /// Resolves the environment from the current directory and the process environment.
    pub fn resolve(&self) -> Result<Environment, Failure> {
        let mut sel = EnvSelector::default();
        sel.env = self.env.clone();
        sel.url = self.source.url.clone();
        sel.config = self.source.config.clone();
        let cwd = std::env::current_dir()
            .map_err(|e| Failure::usage(format!("the current directory: {e}")))?;
        Ok(env::resolve(&sel, &cwd, &|k| std::env::var(k).ok())?)
    }

    /// Opens the environment, logging requests on stderr with `--verbose`.
    pub fn connect(&self, env: &Environment) -> Result<Connection, Failure> {
        self.connect_logging_at(env, 1)
    }

    /// Opens the environment, logging requests on stderr when `--verbose` was given at least
    /// `level` times.
    pub fn connect_logging_at(&self, env: &Environment, level: u8) -> Result<Connection, Failure> {
        let log: Option<env::LogFn> =
            (self.verbose >= level).then(|| Arc::new(|line: &str| esay!("{line}")) as env::LogFn);
        Ok(env::connect(env, log)?)
    }
}

/// The trust policy flags shared by verify and unpack (push adds the environment's).
#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// A trusted minisign public key (repeatable).
    #[arg(long = "trusted-key", value_name = "PUB")]
    pub trusted_keys: Vec<PathBuf>,
    /// How many distinct trusted keys must have signed (default 1 when keys are given; 0 is
    /// refused).
    #[arg(long, value_name = "N")]
    pub threshold: Option<usize>,
}

impl TrustArgs {
    /// The policy of these flags.
    pub fn policy(&self) -> Result<TrustPolicy, Failure> {
        Ok(trust::policy(&TrustOptions::new(
            self.trusted_keys.clone(),
            self.threshold,
        ))?)
    }
}

/// The trust flags of the commands that take an archive into an environment (push, recover):
/// they add to the environment's `trusted_keys` and `threshold` ([`trust::for_environment`]).
#[derive(Debug, clap::Args)]
pub struct EnvTrustArgs {
    /// A trusted minisign public key (repeatable; adds to the environment's trusted_keys).
    #[arg(long = "trusted-key", value_name = "PUB")]
    pub trusted_keys: Vec<PathBuf>,
    /// How many distinct trusted keys must have signed (default: the environment's, else 1
    /// when keys are given; 0 is refused).
    #[arg(long, value_name = "N")]
    pub threshold: Option<usize>,
}

impl EnvTrustArgs {
    /// The policy for an archive going into `env`.
    pub fn policy(&self, env: &Environment) -> Result<TrustPolicy, Failure> {
        Ok(trust::for_environment(
            env,
            &self.trusted_keys,
            self.threshold,
        )?)
    }
}

/// The `--history DIR` flag of push, history and rollback.
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    /// Where history records are kept: a directory, or s3://BUCKET/PREFIX shared by several
    /// machines, with the environment's lock (default: the environment's `history` in
    /// flowpack.toml, else .flowpack/history beside flowpack.toml, or in the current directory
    /// without one); one directory per environment inside.
    #[arg(long = "history", value_name = "DIR|s3://BUCKET/PREFIX")]
    pub history: Option<String>,
}

/// An environment's history, opened: where its records are, and (in object storage) the
/// shared history kept open — its lock held — until this is dropped.
#[derive(Debug)]
pub struct History {
    /// The records of the environment, ids ending in a fresh random nonce.
    pub target: flowpack_action::history::HistoryTarget,
    _shared: Option<flowpack_action::shared::SharedHistory>,
}

impl History {
    /// The same records, ids ending in another fresh nonce (a second record of one run).
    pub fn another(&self) -> flowpack_action::history::HistoryTarget {
        let mut target = self.target.clone();
        target.nonce = nonce();
        target
    }
}

impl HistoryArgs {
    /// The shared history in object storage of `env`, when its history is one.
    pub fn bucket(
        &self,
        env: &Environment,
    ) -> Result<Option<flowpack_action::storage::S3Location>, Failure> {
        match self.history.clone().or_else(|| env.history.clone()) {
            Some(spec) if flowpack_action::storage::is_s3(&spec) => {
                Ok(Some(flowpack_action::storage::S3Location::parse(&spec)?))
            }
            _ => Ok(None),
        }
    }

    /// Opens the history of `env` (chosen by `args`) for `command`; with `lock`, a history in
    /// object storage also takes the environment's lock in the bucket, waiting as `lock` says
    /// (the local lock is the caller's).
    pub fn open(
        &self,
        args: &EnvArgs,
        env: &Environment,
        command: &str,
        lock: Option<&WaitArgs>,
    ) -> Result<History, Failure> {
        let base = config_base(args)?;
        let root = self.history.clone().or_else(|| env.history.clone());
        let url = flowpack_action::lock::identity(env);
        let (dir_root, shared) = match root {
            Some(spec) if flowpack_action::storage::is_s3(&spec) => {
                let location = flowpack_action::storage::S3Location::parse(&spec)?;
                let mut mirror = base
                    .join(flowpack_action::shared::MIRROR_DIR)
                    .join(&location.bucket);
                if !location.prefix.is_empty() {
                    mirror = mirror.join(&location.prefix);
                }
                let mut opts = flowpack_action::shared::SharedOptions::new(
                    location,
                    mirror.clone(),
                    &env.name,
                    &url,
                    command,
                    &crate::clock::now_rfc3339(),
                );
                if let Some(wait) = lock {
                    opts.lock = true;
                    opts.wait = std::time::Duration::from_secs(wait.wait.unwrap_or(0));
                }
                let shared = flowpack_action::shared::open(&opts)?;
                if let Some(w) = &shared.took_over {
                    esay!("warning: {w}");
                }
                (mirror, Some(shared))
            }
            Some(dir) => (PathBuf::from(dir), None),
            None => (base.join(flowpack_action::history::DEFAULT_DIR), None),
        };
        let mut target =
            flowpack_action::history::HistoryTarget::new(&dir_root, &env.name, &nonce());
        target.url = Some(url);
        Ok(History {
            target,
            _shared: shared,
        })
    }
}

/// The directory `.flowpack/` is kept in ([`flowpack_action::history::default_base`]).
fn config_base(env: &EnvArgs) -> Result<PathBuf, Failure> {
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::usage(format!("the current directory: {e}")))?;
    Ok(flowpack_action::history::default_base(
        env.source.config.as_deref(),
        &cwd,
    ))
}

/// Six random hex digits (from the standard library's randomly seeded hasher, the process id
/// and the clock).
fn nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:06x}", h.finish() & 0xff_ffff)
}

/// The `--wait SECS` flag of the commands that lock an environment.
#[derive(Debug, Clone, clap::Args)]
pub struct WaitArgs {
    /// How long to wait for another run holding the environment's lock (seconds; default: 0
    /// for push, rollback and recover, 300 for backup and export).
    #[arg(long, value_name = "SECS")]
    pub wait: Option<u64>,
}

impl WaitArgs {
    /// Takes `env`'s lock in `mode` for `command` (a warning on stderr when it was taken over
    /// from a run that died); held until the returned lock is dropped.
    pub fn lock(
        &self,
        env: &Environment,
        mode: flowpack_action::lock::Mode,
        command: &str,
    ) -> Result<flowpack_action::lock::EnvLock, Failure> {
        use flowpack_action::lock::{self, LockOptions, Mode};
        let mut opts = LockOptions::new(env, mode, command, &crate::clock::now_rfc3339());
        let default = match mode {
            Mode::Shared => lock::DEFAULT_SHARED_WAIT,
            _ => 0,
        };
        opts.wait = std::time::Duration::from_secs(self.wait.unwrap_or(default));
        let held = lock::acquire(&opts)?;
        if let Some(w) = &held.took_over {
            esay!("warning: {w}");
        }
        Ok(held)
    }
}

/// The `--jobs N` flag: one type and range wherever it is taken.
#[derive(Debug, Clone, clap::Args)]
pub struct JobsArgs {
    /// Flows worked on at once, 1 to 64: imports in flight (push), exports in flight (export,
    /// backup, diff of an env: side).
    #[arg(long, value_name = "N", default_value_t = flowpack_action::push::DEFAULT_JOBS as u32,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    jobs: u32,
}

impl JobsArgs {
    /// The number given.
    pub fn get(&self) -> usize {
        self.jobs as usize
    }
}

/// `--force` of a command that writes one required `-o OUT`. The one rule: an existing OUT is
/// refused unless `--force` is given, which replaces it. `-o` stays declared in each command,
/// since what OUT is (archive, directory, pulled file) is said differently by each.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ForceArgs {
    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
}

/// The overlay a command was given (or the environment's), read and resolved with the process's
/// environment variables, before any request is sent; and what its unmatched keys do
/// ([`env::overlay_for`]).
pub fn overlay(
    given: Option<&std::path::Path>,
    allow_unmatched: bool,
    env: &Environment,
) -> Result<env::ChosenOverlay, Failure> {
    Ok(env::overlay_for(env, given, allow_unmatched, &|k| {
        std::env::var(k).ok()
    })?)
}

/// The `--timeout SECS` flag of the commands that pull from an OCI registry.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryTimeoutArgs {
    /// Overall time limit of the pull from an oci:// registry, retries and waits included
    /// (seconds; 0: none). A registry that sends too slowly fails with exit 2.
    #[arg(long = "timeout", value_name = "SECS", default_value_t = 600)]
    pub timeout: u64,
}

impl RegistryTimeoutArgs {
    /// The deadline for the library: `None` for 0.
    pub fn deadline(&self) -> Option<std::time::Duration> {
        (self.timeout > 0).then(|| std::time::Duration::from_secs(self.timeout))
    }
}
