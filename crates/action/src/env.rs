//! Environments: `flowpack.toml`, a base URL with the `FLOWPACK_TOKEN` variable, and the
//! embedded `local` environment.
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
//! Paths in the config are relative to the config file's directory. The environment `local`
//! needs no configuration (unless the config defines an `env.local`): it is the embedded sandbox
//! store at `.flowpack/local.db` in the current directory, created on first use, so a new user
//! can export and push with no platform account.
//!
//! A base URL is the platform's root (`https://core.example.com`); one given with the API path
//! (`https://core.example.com/api/v1` or `.../api/v1/`) is taken without it, so the path is never
//! doubled.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flowpack_client::{HttpOptions, HttpPlatform, ImportEncoding, Platform};
use flowpack_core::overlay::{OnUnmatched, Overlay, OverlayError, ResolvedOverlay};
use serde::Deserialize;

use crate::error::{Categorize, Category, Remedy};

/// The config file's name, looked up in the current directory.
pub const CONFIG_FILE: &str = "flowpack.toml";
/// The token variable used with a base URL given without a config.
pub const TOKEN_VAR: &str = "FLOWPACK_TOKEN";
/// The embedded environment's name.
pub const LOCAL: &str = "local";

/// Called with each request line the HTTP client logs (the API key masked).
pub type LogFn = Arc<dyn Fn(&str) + Send + Sync>;

/// Errors choosing or opening an environment; all are configuration errors ("could not run").
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// Neither an environment name nor a URL.
    #[error(
        "no environment: neither an environment name (from {CONFIG_FILE}, or `local`) nor a base URL was given"
    )]
    NoEnvironment,
    /// A URL without the token variable.
    #[error(
        "a base URL without an environment needs the API key in the environment variable {TOKEN_VAR}, which is not set"
    )]
    NoUrlToken,
    /// The config file could not be read.
    #[error("{path}: cannot read: {cause}")]
    ReadConfig {
        /// The config file.
        path: String,
        /// The I/O error.
        #[source]
        cause: std::io::Error,
    },
    /// The config file is not a regular file, or past the configuration bound (16 MiB).
    #[error(transparent)]
    ConfigFile(flowpack_core::fsutil::ReadError),
    /// The config file is not valid (the message never quotes the file's text).
    #[error("{path}: {message}")]
    BadConfig {
        /// The config file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A config file given explicitly does not exist.
    #[error("{path}: no such config file")]
    NoConfig {
        /// The config file.
        path: String,
    },
    /// No config file at all, and an environment other than `local` was asked for.
    #[error(
        "{path}: no such file, so no environment {name:?} is defined (`local` needs no configuration)"
    )]
    MissingConfig {
        /// Where the config was looked for.
        path: String,
        /// The name asked for.
        name: String,
    },
    /// The environment is not in the config.
    #[error("{path}: no environment {name:?} (known: {known}; `local` needs no configuration)")]
    UnknownEnvironment {
        /// The config file.
        path: String,
        /// The name asked for.
        name: String,
        /// The names it knows, comma-separated (`none` when empty).
        known: String,
    },
    /// The API key variable is not set.
    #[error("environment {name:?}: the API key variable {var} is not set")]
    NoToken {
        /// The environment.
        name: String,
        /// The variable.
        var: String,
    },
    /// A base URL that cannot be used (it carries a user name or password).
    #[error(transparent)]
    Url(#[from] flowpack_client::ClientError),
    /// The embedded store could not be opened.
    #[cfg(feature = "local")]
    #[error(transparent)]
    Local(#[from] flowpack_sandbox::StoreError),
    /// The embedded `local` environment was asked for, but this build of flowpack-action has no
    /// `local` feature (it was built with `default-features = false`).
    #[error(
        "environment {name:?} is the embedded sandbox ({db}), which this build does not include \
         (flowpack-action's `local` feature is off)"
    )]
    LocalNotBuilt {
        /// The environment's name.
        name: String,
        /// The database file it would have opened.
        db: String,
    },
    /// The embedded store's directory could not be created.
    #[error("{path}: cannot create: {cause}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The I/O error.
        #[source]
        cause: std::io::Error,
    },
}

impl Categorize for EnvError {
    fn category(&self) -> Category {
        Category::CouldNotRun
    }

    fn remedy(&self) -> Option<Remedy> {
        match self {
            EnvError::NoEnvironment => Some(Remedy::Environment),
            EnvError::MissingConfig { .. } | EnvError::NoConfig { .. } => {
                Some(Remedy::CreateConfig)
            }
            _ => None,
        }
    }
}

/// How an environment is chosen: a name from the config (or `local`), or a base URL.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct EnvSelector {
    /// The environment's name.
    pub env: Option<String>,
    /// A platform base URL, without a config (the API key from [`TOKEN_VAR`]).
    pub url: Option<String>,
    /// The config file (default: `flowpack.toml` in the current directory).
    pub config: Option<PathBuf>,
}

impl EnvSelector {
    /// The environment `name`.
    pub fn named(name: impl Into<String>) -> EnvSelector {
        EnvSelector {
            env: Some(name.into()),
            ..EnvSelector::default()
        }
    }

    /// The platform at `url`.
    pub fn url(url: impl Into<String>) -> EnvSelector {
        EnvSelector {
            url: Some(url.into()),
            ..EnvSelector::default()
        }
    }
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
    history: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    env: BTreeMap<String, EnvTable>,
    /// `[storage."s3://BUCKET"]` tables: a bucket's endpoint, region and the variables holding
    /// its keys.
    #[serde(default)]
    storage: BTreeMap<String, crate::storage::StorageConfig>,
}

/// The `[storage."s3://BUCKET"]` table for `bucket` in the configuration file at `path`, when
/// the file exists and has one; the error's text names what is wrong with the file.
pub(crate) fn storage_table(
    path: &Path,
    bucket: &str,
) -> Result<Option<crate::storage::StorageConfig>, EnvError> {
    let shown = path.display().to_string();
    let bad = |message: String| EnvError::BadConfig {
        path: shown.clone(),
        message,
    };
    Ok(read_config(path, false, &bad)?
        .and_then(|config| config.storage.get(&format!("s3://{bucket}")).cloned()))
}

/// Where an environment's flows live.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Target {
    /// A platform (or a `flowpack-sandbox` server) over HTTP.
    Http {
        /// The base URL, without `/api/v1`.
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
#[non_exhaustive]
pub struct Environment {
    /// Its name, or the URL when a URL was given.
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
    /// Where its history is kept, when `flowpack.toml` says: a directory (made absolute) or an
    /// `s3://BUCKET/PREFIX` location shared by several machines ([`crate::shared`]).
    pub history: Option<String>,
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

/// A base URL without trailing slashes and without the API path the client adds itself.
pub fn base_url(url: &str) -> String {
    let t = url.trim_end_matches('/');
    t.strip_suffix("/api/v1")
        .unwrap_or(t)
        .trim_end_matches('/')
        .to_string()
}

/// Resolves the environment; `cwd` is where `flowpack.toml` and `.flowpack/` are looked for and
/// `lookup` reads environment variables.
pub fn resolve(
    sel: &EnvSelector,
    cwd: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Environment, EnvError> {
    if let Some(url) = &sel.url {
        return from_url(url, lookup);
    }
    let Some(name) = &sel.env else {
        return Err(EnvError::NoEnvironment);
    };
    let config_path = sel.config.clone().unwrap_or_else(|| cwd.join(CONFIG_FILE));
    let shown = config_path.display().to_string();
    let bad = |message: String| EnvError::BadConfig {
        path: shown.clone(),
        message,
    };
    let config = match read_config(&config_path, sel.config.is_some(), &bad)? {
        Some(config) => config,
        None if name == LOCAL => ConfigFile::default(),
        None => {
            return Err(EnvError::MissingConfig {
                path: shown,
                name: name.clone(),
            });
        }
    };
    let base = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| cwd.to_path_buf(), Path::to_path_buf);
    let table = env_table(&config, name, &shown)?;
    let at = |p: &PathBuf| {
        if p.is_absolute() {
            p.clone()
        } else {
            base.join(p)
        }
    };
    let target = target_of(name, &table, cwd, lookup, &bad)?;
    let export_format = table.export_format.unwrap_or(2);
    if !(1..=2).contains(&export_format) {
        return Err(bad(format!(
            "[env.{name}] export_format = {export_format}: flowpack knows versions 1 and 2"
        )));
    }
    if table.threshold == Some(0) {
        return Err(bad(format!(
            "[env.{name}] threshold = 0: a threshold must be 1 or more (leave out trusted_keys to skip the signature check)"
        )));
    }
    Ok(Environment {
        name: name.clone(),
        target,
        overlay: table.overlay.as_ref().map(at),
        trusted_keys: table.trusted_keys.iter().map(at).collect(),
        threshold: table.threshold,
        import_encoding: table.import_encoding,
        export_format,
        history: table.history.as_ref().map(|h| {
            if crate::storage::is_s3(h) {
                h.clone()
            } else {
                at(&PathBuf::from(h)).display().to_string()
            }
        }),
    })
}

/// The environment `--url` names, its API key from `FLOWPACK_TOKEN`.
fn from_url(url: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Environment, EnvError> {
    flowpack_client::check_base_url(url)?;
    let token = lookup(TOKEN_VAR)
        .filter(|t| !t.is_empty())
        .ok_or(EnvError::NoUrlToken)?;
    let url = base_url(url);
    Ok(Environment {
        name: flowpack_client::redacted(&url),
        target: Target::Http { url, token },
        overlay: None,
        trusted_keys: Vec::new(),
        threshold: None,
        import_encoding: ImportEncoding::Object,
        export_format: 2,
        history: None,
    })
}

/// `flowpack.toml` at `path`: `None` when it does not exist, an error when it was named
/// (`named`) and does not exist.
fn read_config(
    path: &Path,
    named: bool,
    bad: &dyn Fn(String) -> EnvError,
) -> Result<Option<ConfigFile>, EnvError> {
    if path.exists() {
        use flowpack_core::fsutil::{CONFIG_FILE_LIMIT, ReadError, read_bounded_text};
        let text = read_bounded_text(path, CONFIG_FILE_LIMIT, "a configuration file").map_err(
            |e| match e {
                ReadError::Io { cause, .. } => EnvError::ReadConfig {
                    path: path.display().to_string(),
                    cause,
                },
                other => EnvError::ConfigFile(other),
            },
        )?;
        toml::from_str::<ConfigFile>(&text)
            .map(Some)
            .map_err(|e| bad(flowpack_core::overlay::describe_toml_error(&e, &text)))
    } else if named {
        Err(EnvError::NoConfig {
            path: path.display().to_string(),
        })
    } else {
        Ok(None)
    }
}

/// The `[env.NAME]` table (`local` needs none).
fn env_table(config: &ConfigFile, name: &str, shown: &str) -> Result<EnvTable, EnvError> {
    match config.env.get(name) {
        Some(t) => Ok(t.clone()),
        None if name == LOCAL => Ok(EnvTable::default()),
        None => {
            let known: Vec<&str> = config.env.keys().map(String::as_str).collect();
            Err(EnvError::UnknownEnvironment {
                path: shown.to_string(),
                name: name.to_string(),
                known: if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                },
            })
        }
    }
}

/// Where the environment's table points: a URL with the API key from its `token_env`, or
/// (`local` without a url) the embedded sandbox's database under `cwd`.
fn target_of(
    name: &str,
    table: &EnvTable,
    cwd: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    bad: &dyn Fn(String) -> EnvError,
) -> Result<Target, EnvError> {
    let Some(url) = &table.url else {
        return if name == LOCAL {
            Ok(Target::Local {
                db: cwd.join(".flowpack").join("local.db"),
            })
        } else {
            Err(bad(format!("[env.{name}] has no url")))
        };
    };
    flowpack_client::check_base_url(url).map_err(|e| bad(format!("[env.{name}] url: {e}")))?;
    let var = table.token_env.as_deref().ok_or_else(|| {
        bad(format!(
            "[env.{name}] has a url but no token_env (the variable holding the API key)"
        ))
    })?;
    let token = lookup(var)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| EnvError::NoToken {
            name: name.to_string(),
            var: var.to_string(),
        })?;
    Ok(Target::Http {
        url: base_url(url),
        token,
    })
}

/// The overlay an action applies in an environment, and what its keys that match nothing do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChosenOverlay {
    /// The overlay, resolved; `None` when neither a file was given nor the environment has one.
    pub overlay: Option<ResolvedOverlay>,
    /// What keys matching nothing in the archive do.
    pub on_unmatched: OnUnmatched,
}

/// The overlay for `env`: `given` (a file the caller named), else the environment's own
/// `overlay`, read and resolved with `vars` before any request is sent. Keys that match nothing
/// are refused in a given file unless `allow_unmatched`, and only warned about in the
/// environment's own (it serves every archive pushed there, each with some of the flows).
pub fn overlay_for(
    env: &Environment,
    given: Option<&Path>,
    allow_unmatched: bool,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<ChosenOverlay, OverlayError> {
    let overlay = match given.or(env.overlay.as_deref()) {
        Some(path) => Some(Overlay::read(path)?.resolve(vars)?),
        None => None,
    };
    let on_unmatched = if allow_unmatched || given.is_none() {
        OnUnmatched::Warn
    } else {
        OnUnmatched::Refuse
    };
    Ok(ChosenOverlay {
        overlay,
        on_unmatched,
    })
}

/// A connection to an environment.
#[non_exhaustive]
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

/// Opens the environment: an HTTP client (logging each request to `log`, the API key masked),
/// or the local store (created on first use).
pub fn connect(env: &Environment, log: Option<LogFn>) -> Result<Connection, EnvError> {
    match &env.target {
        Target::Http { url, token } => {
            let mut options = HttpOptions::new(url.clone(), token.clone());
            options.import_encoding = env.import_encoding;
            options.log = log;
            let http = Arc::new(HttpPlatform::new(options)?);
            Ok(Connection {
                platform: http.clone(),
                http: Some(http),
            })
        }
        #[cfg(not(feature = "local"))]
        Target::Local { db } => Err(EnvError::LocalNotBuilt {
            name: env.name.clone(),
            db: db.display().to_string(),
        }),
        #[cfg(feature = "local")]
        Target::Local { db } => {
            if let Some(dir) = db.parent() {
                std::fs::create_dir_all(dir).map_err(|cause| EnvError::CreateDir {
                    path: dir.display().to_string(),
                    cause,
                })?;
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

    fn args(env: Option<&str>, url: Option<&str>, config: Option<&Path>) -> EnvSelector {
        EnvSelector {
            env: env.map(str::to_string),
            url: url.map(str::to_string),
            config: config.map(Path::to_path_buf),
        }
    }

    fn vars(name: &str) -> Option<String> {
        (name == "PROD_API_KEY" || name == TOKEN_VAR).then(|| "k".to_string())
    }

    #[cfg(not(feature = "local"))]
    #[test]
    fn local_without_the_feature_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let env = resolve(&args(Some(LOCAL), None, None), dir.path(), &vars).unwrap();
        let Err(err) = connect(&env, None) else {
            panic!("`local` connected without the `local` feature");
        };
        assert!(matches!(err, EnvError::LocalNotBuilt { .. }), "{err:?}");
        assert!(err.to_string().contains("`local` feature is off"), "{err}");
        assert!(!dir.path().join(".flowpack").exists());
    }

    #[test]
    fn a_given_overlay_refuses_unmatched_keys_the_environments_own_warns() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("own.toml");
        let given = dir.path().join("given.toml");
        std::fs::write(&own, "[flows.\"A\".variables]\nregion = \"eu\"\n").unwrap();
        std::fs::write(&given, "[flows.\"B\".variables]\nregion = \"us\"\n").unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[env.p]\nurl = \"https://p.example.com\"\ntoken_env = \"PROD_API_KEY\"\noverlay = \"own.toml\"\n",
        )
        .unwrap();
        let env = resolve(&args(Some("p"), None, None), dir.path(), &vars).unwrap();
        let none = |_: &str| None;
        let chosen = overlay_for(&env, None, false, &none).unwrap();
        assert_eq!(chosen.on_unmatched, OnUnmatched::Warn);
        assert!(format!("{:?}", chosen.overlay).contains("\"A\""));
        let chosen = overlay_for(&env, Some(&given), false, &none).unwrap();
        assert_eq!(chosen.on_unmatched, OnUnmatched::Refuse);
        assert!(format!("{:?}", chosen.overlay).contains("\"B\""));
        let chosen = overlay_for(&env, Some(&given), true, &none).unwrap();
        assert_eq!(chosen.on_unmatched, OnUnmatched::Warn);
        let bare = resolve(&args(Some(LOCAL), None, None), dir.path(), &vars).unwrap();
        assert!(
            overlay_for(&bare, None, false, &none)
                .unwrap()
                .overlay
                .is_none()
        );
    }

    #[test]
    fn the_default_history_is_beside_the_config_else_in_the_current_directory() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().join("work");
        std::fs::create_dir(&cwd).unwrap();
        let default = crate::history::DEFAULT_DIR;
        assert_eq!(crate::history::default_root(None, &cwd), cwd.join(default));
        let config = dir.path().join("etc").join("fp.toml");
        assert_eq!(
            crate::history::default_root(Some(&config), &cwd),
            cwd.join(default),
            "a config that does not exist"
        );
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(&config, "").unwrap();
        assert_eq!(
            crate::history::default_root(Some(&config), &cwd),
            dir.path().join("etc").join(default)
        );
        std::fs::write(cwd.join(CONFIG_FILE), "").unwrap();
        assert_eq!(crate::history::default_root(None, &cwd), cwd.join(default));
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
    fn an_environment_names_its_history_a_directory_or_a_bucket() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[env.production]\nurl = \"https://core.example.com\"\ntoken_env = \"PROD_API_KEY\"\n\
             history = \"s3://team-history/flowpack\"\n\
             [env.staging]\nurl = \"https://s.example.com\"\ntoken_env = \"PROD_API_KEY\"\n\
             history = \"records\"\n",
        )
        .unwrap();
        let env = resolve(&args(Some("production"), None, None), dir.path(), &vars).unwrap();
        assert_eq!(env.history.as_deref(), Some("s3://team-history/flowpack"));
        let env = resolve(&args(Some("staging"), None, None), dir.path(), &vars).unwrap();
        assert_eq!(
            env.history,
            Some(dir.path().join("records").display().to_string())
        );
        let env = resolve(&args(Some("local"), None, None), dir.path(), &vars).unwrap();
        assert_eq!(env.history, None);
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

    #[test]
    fn a_missing_config_is_named_missing_with_a_remedy() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(&args(Some("prod"), None, None), dir.path(), &vars).unwrap_err();
        assert!(matches!(err, EnvError::MissingConfig { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.ends_with("flowpack.toml: no such file, so no environment \"prod\" is defined (`local` needs no configuration)"),
            "{text}"
        );
        assert!(!text.contains("known: none"), "{text}");
        assert_eq!(err.remedy(), Some(Remedy::CreateConfig));
        assert_eq!(err.category(), Category::CouldNotRun);
        // A config named explicitly that does not exist: the same remedy.
        let named = dir.path().join("elsewhere.toml");
        let err = resolve(&args(Some("prod"), None, Some(&named)), dir.path(), &vars).unwrap_err();
        assert!(matches!(err, EnvError::NoConfig { .. }), "{err:?}");
        assert_eq!(err.remedy(), Some(Remedy::CreateConfig));
    }

    #[test]
    fn a_url_with_the_api_path_is_not_doubled() {
        for given in [
            "http://127.0.0.1:1",
            "http://127.0.0.1:1/",
            "http://127.0.0.1:1/api/v1",
            "http://127.0.0.1:1/api/v1/",
        ] {
            assert_eq!(base_url(given), "http://127.0.0.1:1", "{given}");
        }
        assert_eq!(
            base_url("https://x.example/core/api/v1"),
            "https://x.example/core"
        );
    }

    #[test]
    fn a_threshold_of_0_in_the_config_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), "[env.local]\nthreshold = 0\n").unwrap();
        let err = resolve(&args(Some("local"), None, None), dir.path(), &vars).unwrap_err();
        assert!(
            err.to_string().contains("[env.local] threshold = 0"),
            "{err}"
        );
    }
}
