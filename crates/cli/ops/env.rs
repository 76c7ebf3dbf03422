//! Environments: `flowpack.toml`, `--url` + `FLOWPACK_TOKEN`, and the embedded
//! `local` environment.
//!
//! ```toml
//! [env.production]
//! url = "https://core.example.com"
//! token_env = "PROD_API_KEY"          # the variable holding the API key (never the key itself)
//! overlay = "overlays/production.toml"
//! trusted_keys = ["keys/release.pub"]
//! threshold = 1
//! import_encoding = "object"          # or "string" (flow and metadata as JSON strings)
//! export_format = 2                   # the target's export format version (default 2)
//! ```
//!
//! Paths in the config are relative to the config file's directory. `--env local` needs no
//! configuration (unless the config defines an `env.local`): it is the embedded sandbox store at
//! `.flowpack/local.db` in the current directory, created on first use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use flowpack_client::{HttpOptions, HttpPlatform, ImportEncoding, Platform};
use serde::Deserialize;

/// The config file's name, looked up in the current directory.
pub const CONFIG_FILE: &str = "flowpack.toml";
/// The token variable used with `--url`.
pub const TOKEN_VAR: &str = "FLOWPACK_TOKEN";
/// The embedded environment's name.
pub const LOCAL: &str = "local";

/// The flags that choose an environment, shared by the commands that talk to one.
#[derive(Debug, Clone, clap::Args)]
pub struct EnvArgs {
    /// The environment, from flowpack.toml (`local`: the embedded sandbox, no configuration).
    #[arg(long = "env", value_name = "NAME", conflicts_with = "url")]
    pub env: Option<String>,
    /// A platform base URL, without a config (the API key from FLOWPACK_TOKEN).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The config file (default: ./flowpack.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log every request (the API key shown as ••••) on stderr.
    #[arg(long)]
    pub verbose: bool,
}

/// One `[env.NAME]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvTable {
    url: Option<String>,
    token_env: Option<String>,
    overlay: Option<PathBuf>,
    #[serde(default)]
    trusted_keys: Vec<PathBuf>,
    threshold: Option<usize>,
    #[serde(default)]
    import_encoding: ImportEncoding,
    export_format: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    env: BTreeMap<String, EnvTable>,
}

/// Where an environment's flows live.
#[derive(Debug, Clone)]
pub enum Target {
    /// A platform (or a `flowpack-sandbox` server) over HTTP.
    Http {
        /// The base URL.
        url: String,
        /// The API key (never printed; `Debug` of the client masks it).
        token: String,
    },
    /// The embedded sandbox store.
    Local {
        /// Its database file.
        db: PathBuf,
    },
}

/// A resolved environment.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Its name (`--env`), or the URL when `--url` was given.
    pub name: String,
    /// Where it is.
    pub target: Target,
    /// The overlay applied on push.
    pub overlay: Option<PathBuf>,
    /// Public keys a pushed archive must be signed with.
    pub trusted_keys: Vec<PathBuf>,
    /// How many distinct trusted keys must have signed.
    pub threshold: Option<usize>,
    /// How imports are encoded.
    pub import_encoding: ImportEncoding,
    /// The export format version the target speaks.
    pub export_format: u32,
}

impl Environment {
    /// The URL (HTTP) or database path (local), for reports.
    pub fn location(&self) -> String {
        match &self.target {
            Target::Http { url, .. } => url.clone(),
            Target::Local { db } => db.display().to_string(),
        }
    }
}

/// Resolves the environment from the flags; `lookup` reads environment variables.
pub fn resolve(
    args: &EnvArgs,
    cwd: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Environment> {
    if let Some(url) = &args.url {
        flowpack_client::check_base_url(url)?;
        let token = lookup(TOKEN_VAR).filter(|t| !t.is_empty()).ok_or_else(|| {
            anyhow!(
                "--url needs the API key in the environment variable {TOKEN_VAR}, which is not set"
            )
        })?;
        return Ok(Environment {
            name: flowpack_client::redacted(url),
            target: Target::Http {
                url: url.clone(),
                token,
            },
            overlay: None,
            trusted_keys: Vec::new(),
            threshold: None,
            import_encoding: ImportEncoding::Object,
            export_format: 2,
        });
    }
    let Some(name) = &args.env else {
        bail!("no environment: give --env NAME (from {CONFIG_FILE}, or `local`) or --url URL");
    };
    let config_path = args.config.clone().unwrap_or_else(|| cwd.join(CONFIG_FILE));
    let config = if config_path.exists() {
        let text = std::fs::read_to_string(&config_path)
            .with_context(|| format!("{}: cannot read", config_path.display()))?;
        toml::from_str::<ConfigFile>(&text)
            .map_err(|e| anyhow!("{}: {}", config_path.display(), e.to_string().trim()))?
    } else if args.config.is_some() {
        bail!("{}: no such config file", config_path.display());
    } else {
        ConfigFile::default()
    };
    let base = config_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| cwd.to_path_buf());
    let base = if base.as_os_str().is_empty() {
        cwd.to_path_buf()
    } else {
        base
    };
    let table = match config.env.get(name) {
        Some(t) => t.clone(),
        None if name == LOCAL => EnvTable::default(),
        None => {
            let known: Vec<&str> = config.env.keys().map(String::as_str).collect();
            bail!(
                "{}: no environment {name:?} (known: {}; `local` needs no configuration)",
                config_path.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
    };
    let at = |p: &PathBuf| {
        if p.is_absolute() {
            p.clone()
        } else {
            base.join(p)
        }
    };
    let target = match &table.url {
        Some(url) => {
            flowpack_client::check_base_url(url)
                .with_context(|| format!("{}: [env.{name}] url", config_path.display()))?;
            let var = table.token_env.as_deref().ok_or_else(|| {
                anyhow!(
                    "{}: [env.{name}] has a url but no token_env (the variable holding the API key)",
                    config_path.display()
                )
            })?;
            let token = lookup(var).filter(|t| !t.is_empty()).ok_or_else(|| {
                anyhow!("environment {name:?}: the API key variable {var} is not set")
            })?;
            Target::Http {
                url: url.clone(),
                token,
            }
        }
        None if name == LOCAL => Target::Local {
            db: cwd.join(".flowpack").join("local.db"),
        },
        None => bail!("{}: [env.{name}] has no url", config_path.display()),
    };
    let export_format = table.export_format.unwrap_or(2);
    if !(1..=2).contains(&export_format) {
        bail!(
            "{}: [env.{name}] export_format = {export_format}: flowpack knows versions 1 and 2",
            config_path.display()
        );
    }
    Ok(Environment {
        name: name.clone(),
        target,
        overlay: table.overlay.as_ref().map(at),
        trusted_keys: table.trusted_keys.iter().map(at).collect(),
        threshold: table.threshold,
        import_encoding: table.import_encoding,
        export_format,
    })
}

/// A connection to an environment.
pub struct Connection {
    /// The platform calls.
    pub platform: Arc<dyn Platform>,
    /// The HTTP client, to read its retry count (`None` for `local`).
    pub http: Option<Arc<HttpPlatform>>,
}

impl Connection {
    /// Retries the HTTP client made so far.
    pub fn retries(&self) -> u64 {
        self.http.as_ref().map_or(0, |h| h.retries())
    }
}

/// Opens the environment: an HTTP client, or the local store (created on first use).
pub fn connect(env: &Environment, verbose: bool) -> Result<Connection> {
    match &env.target {
        Target::Http { url, token } => {
            let mut options = HttpOptions::new(url.clone(), token.clone());
            options.import_encoding = env.import_encoding;
            if verbose {
                options.log = Some(Arc::new(|line: &str| eprintln!("{line}")));
            }
            let http = Arc::new(HttpPlatform::new(options)?);
            Ok(Connection {
                platform: http.clone(),
                http: Some(http),
            })
        }
        Target::Local { db } => {
            if let Some(dir) = db.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("{}: cannot create", dir.display()))?;
            }
            let store =
                flowpack_sandbox::Store::open(db, flowpack_sandbox::StoreOptions::default())?;
            Ok(Connection {
                platform: Arc::new(store),
                http: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(env: Option<&str>, url: Option<&str>, config: Option<&Path>) -> EnvArgs {
        EnvArgs {
            env: env.map(str::to_string),
            url: url.map(str::to_string),
            config: config.map(Path::to_path_buf),
            verbose: false,
        }
    }

    fn vars(name: &str) -> Option<String> {
        (name == "PROD_API_KEY" || name == TOKEN_VAR).then(|| "k".to_string())
    }

    #[test]
    fn config_environment_resolves_paths_and_token() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[env.production]\nurl = \"https://core.example.com\"\ntoken_env = \"PROD_API_KEY\"\n\
             overlay = \"overlays/p.toml\"\ntrusted_keys = [\"keys/r.pub\"]\nthreshold = 1\nimport_encoding = \"string\"\n\
             [env.staging]\nurl = \"https://s.example.com\"\ntoken_env = \"STAGING_API_KEY\"\n",
        )
        .unwrap();
        let env = resolve(&args(Some("production"), None, None), dir.path(), &vars).unwrap();
        assert!(
            matches!(&env.target, Target::Http { url, token } if url == "https://core.example.com" && token == "k")
        );
        assert_eq!(env.overlay, Some(dir.path().join("overlays/p.toml")));
        assert_eq!(env.trusted_keys, vec![dir.path().join("keys/r.pub")]);
        assert_eq!(env.import_encoding, ImportEncoding::String);
        let err = resolve(&args(Some("staging"), None, None), dir.path(), &vars).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment \"staging\": the API key variable STAGING_API_KEY is not set"
        );
        let err = resolve(&args(Some("prod"), None, None), dir.path(), &vars).unwrap_err();
        assert!(err.to_string().ends_with("no environment \"prod\" (known: production, staging; `local` needs no configuration)"), "{err}");
    }

    #[test]
    fn local_and_url_need_no_config() {
        let dir = tempfile::tempdir().unwrap();
        let env = resolve(&args(Some("local"), None, None), dir.path(), &|_| None).unwrap();
        assert!(
            matches!(&env.target, Target::Local { db } if *db == dir.path().join(".flowpack/local.db"))
        );
        let env = resolve(
            &args(None, Some("http://127.0.0.1:1"), None),
            dir.path(),
            &vars,
        )
        .unwrap();
        assert!(matches!(&env.target, Target::Http { url, .. } if url == "http://127.0.0.1:1"));
        let err = resolve(&args(None, Some("http://x"), None), dir.path(), &|_| None).unwrap_err();
        assert!(err.to_string().contains("FLOWPACK_TOKEN"), "{err}");
    }
}
