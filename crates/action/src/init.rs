//! `init`: a commented `flowpack.toml` to start from, and an overlay file per environment.
//!
//! The config names each environment's platform (`url`), the variable holding its API key
//! (`token_env`, never the key), the overlay applied on push, and for production the keys a
//! pushed archive must be signed with (`trusted_keys`, `threshold`). Every setting is written
//! with a comment saying what it does, and the file parses as written (see
//! [`crate::env::resolve`]).
//!
//! Nothing is overwritten: an existing config is refused ([`InitError::Exists`], whose remedy is
//! permission to overwrite) unless [`InitOptions::force`], which replaces it atomically (a
//! symlink is replaced, never written through). Overlay files that exist are kept as they are,
//! with or without `force`: they hold the user's values.

use std::io::Write;
use std::path::{Path, PathBuf};

use flowpack_core::fsutil::{WriteError, temp_file_in, write_bytes_atomic};

use crate::error::{Categorize, Category, Remedy};

/// The environments a new config describes when none are named.
pub const DEFAULT_ENVIRONMENTS: [&str; 2] = ["staging", "production"];

/// Errors of init; all are "could not run" (the user's own files, or usage).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// The config exists and overwriting was not allowed.
    #[error("{path}: exists; nothing was written")]
    Exists {
        /// The config file.
        path: String,
    },
    /// An environment name that cannot be a TOML table key and a file name.
    #[error(
        "environment name {name:?}: use letters, digits, `-` and `_` only (it names a table and an overlay file)"
    )]
    BadName {
        /// The name given.
        name: String,
    },
    /// The same environment named twice.
    #[error("environment {name:?} is named twice")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// A directory could not be created.
    #[error("{path}: cannot create: {cause}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The I/O error.
        #[source]
        cause: std::io::Error,
    },
    /// A new file could not be written.
    #[error("{path}: cannot write: {cause}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        cause: std::io::Error,
    },
    /// The config could not be replaced.
    #[error(transparent)]
    Replace(#[from] WriteError),
}

impl Categorize for InitError {
    fn category(&self) -> Category {
        Category::CouldNotRun
    }

    fn remedy(&self) -> Option<Remedy> {
        matches!(self, InitError::Exists { .. }).then_some(Remedy::Overwrite)
    }
}

/// Where to write the config and which environments it describes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InitOptions {
    /// The config file to write.
    pub path: PathBuf,
    /// The environments, in order (default: [`DEFAULT_ENVIRONMENTS`]). The last one is the
    /// production-like one: it demands signed archives.
    pub environments: Vec<String>,
    /// Replace an existing config (overlay files are never replaced).
    pub force: bool,
}

impl InitOptions {
    /// A config at `path` describing the default environments, refusing an existing file.
    pub fn new(path: PathBuf) -> InitOptions {
        InitOptions {
            path,
            environments: DEFAULT_ENVIRONMENTS.iter().map(|s| s.to_string()).collect(),
            force: false,
        }
    }
}

/// What init wrote.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InitReport {
    /// The config file.
    pub config: PathBuf,
    /// Whether an existing config was replaced.
    pub replaced: bool,
    /// Overlay files created.
    pub overlays_written: Vec<PathBuf>,
    /// Overlay files that existed and were kept.
    pub overlays_kept: Vec<PathBuf>,
    /// Key files the config names that do not exist yet (to be made with keygen; their
    /// directory is created).
    pub keys_missing: Vec<PathBuf>,
    /// Each environment with the variable its API key is read from.
    pub token_vars: Vec<(String, String)>,
}

/// The public key file the production-like environment trusts, relative to the config.
pub const RELEASE_KEY: &str = "keys/release.pub";

/// The variable holding an environment's API key: `FLOWPACK_<NAME>_TOKEN`, upper case, `-`
/// as `_`.
pub fn token_var(env: &str) -> String {
    format!(
        "FLOWPACK_{}_TOKEN",
        env.to_ascii_uppercase().replace('-', "_")
    )
}

/// The overlay file of an environment, relative to the config.
pub fn overlay_path(env: &str) -> String {
    format!("overlays/{env}.toml")
}

/// The text of a new config describing `envs` (the last one demands signed archives).
pub fn config_text(envs: &[String]) -> String {
    let mut t = String::from(
        "\
# flowpack.toml: the environments flowpack exports from, backs up and pushes to.
#
# Each [env.NAME] table is one environment, chosen by its NAME; `local` (the embedded
# sandbox in .flowpack/) needs no table. Paths are relative to this file.
#
# Never write an API key into this file: token_env names the environment variable that
# holds it, and that variable must be set when the environment is used.
#
# History: every push is recorded under .flowpack/history/<environment>/ beside this file
# (what was created and replaced, the settings before, and a journal of each write), so that
# `flowpack history` lists it, `flowpack rollback` undoes it and `flowpack recover` finishes
# one that was interrupted. Keep that directory.
",
    );
    let last = envs.len().saturating_sub(1);
    for (i, env) in envs.iter().enumerate() {
        let signed = i == last;
        let host = if env == "production" {
            "core.example.com".to_string()
        } else {
            format!("{env}.example.com")
        };
        t.push_str(&format!(
            "
[env.{env}]
# The platform's base URL (its root; a trailing /api/v1 is ignored).
url = \"https://{host}\"
# The environment variable holding the API key.
token_env = \"{var}\"
# Environment-specific values (variables, credentials, webhook HMAC keys) applied on push.
overlay = \"{overlay}\"
",
            var = token_var(env),
            overlay = overlay_path(env),
        ));
        if signed {
            t.push_str(&format!(
                "\
# Archives pushed here must carry signatures by these public keys (minisign format;
# make a pair with `flowpack keygen`, sign with the secret key, keep it out of the repository).
trusted_keys = [\"{RELEASE_KEY}\"]
# How many distinct trusted keys must have signed (at least 1, at most the number of keys).
threshold = 1
"
            ));
        } else {
            t.push_str(
                "\
# Demand signed archives here too by naming the public keys that must have signed:
# trusted_keys = [\"keys/release.pub\"]
# threshold = 1
",
            );
        }
        t.push_str(
            "\
# How imports are sent: \"object\" (default) or \"string\" (flow and metadata as JSON text).
# import_encoding = \"object\"
# The export format version the platform speaks (1 or 2; default 2).
# export_format = 2
",
        );
    }
    t
}

/// The text of a new overlay file for `env`.
pub fn overlay_text(env: &str) -> String {
    format!(
        "\
# Overlay of the environment `{env}`: values that differ per environment, applied to every
# flow pushed there. Values may name environment variables: \"${{env:NAME}}\".
#
# Variables every flow of the archive shares (only those a flow already has are set):
# [variables]
# WAREHOUSE = \"main\"
#
# Variables of one flow (missing ones are added):
# [flows.\"Shopify > NetSuite Orders\".variables]
# PAGE_SIZE = \"100\"
#
# Credentials, by system and auth implementation as named in the archive:
# [secrets.\"NetSuite\".\"Token based auth\"]
# token = \"${{env:NETSUITE_TOKEN}}\"
"
    )
}

/// Whether `name` can name a TOML table without quotes and an overlay file.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Writes the config and the overlay files that do not exist yet.
pub fn run(opts: &InitOptions) -> Result<InitReport, InitError> {
    let mut envs: Vec<String> = Vec::new();
    for name in &opts.environments {
        if !valid_name(name) {
            return Err(InitError::BadName { name: name.clone() });
        }
        if envs.contains(name) {
            return Err(InitError::Duplicate { name: name.clone() });
        }
        envs.push(name.clone());
    }
    if envs.is_empty() {
        envs = DEFAULT_ENVIRONMENTS.iter().map(|s| s.to_string()).collect();
    }
    let shown = opts.path.display().to_string();
    // `symlink_metadata`: a dangling symlink is an existing file too.
    let exists = std::fs::symlink_metadata(&opts.path).is_ok();
    if exists && !opts.force {
        return Err(InitError::Exists { path: shown });
    }
    // Empty for a bare file name: the paths reported stay relative, as given.
    let base = opts
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    create_dir(&base)?;
    let text = config_text(&envs);
    if exists {
        write_bytes_atomic(&opts.path, text.as_bytes())?;
    } else {
        write_new(&opts.path, text.as_bytes()).map_err(|cause| InitError::Write {
            path: shown.clone(),
            cause,
        })?;
    }
    let mut report = InitReport {
        config: opts.path.clone(),
        replaced: exists,
        overlays_written: Vec::new(),
        overlays_kept: Vec::new(),
        keys_missing: Vec::new(),
        token_vars: envs.iter().map(|e| (e.clone(), token_var(e))).collect(),
    };
    for env in &envs {
        let path = base.join(overlay_path(env));
        if std::fs::symlink_metadata(&path).is_ok() {
            report.overlays_kept.push(path);
            continue;
        }
        create_dir(&base.join("overlays"))?;
        match write_new(&path, overlay_text(env).as_bytes()) {
            Ok(()) => report.overlays_written.push(path),
            // Made by someone else in the meantime: theirs stays.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                report.overlays_kept.push(path)
            }
            Err(cause) => {
                return Err(InitError::Write {
                    path: path.display().to_string(),
                    cause,
                });
            }
        }
    }
    let key = base.join(RELEASE_KEY);
    if !key.exists() {
        // Where keygen is told to write the pair (it makes no directories).
        create_dir(key.parent().unwrap_or(&base))?;
        report.keys_missing.push(key);
    }
    Ok(report)
}

fn create_dir(dir: &Path) -> Result<(), InitError> {
    std::fs::create_dir_all(dir).map_err(|cause| InitError::CreateDir {
        path: dir.display().to_string(),
        cause,
    })
}

/// Writes `bytes` to `path`, which must not exist: a temporary file beside it, linked into
/// place without replacing anything.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = temp_file_in(dir, 0o666)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{self, EnvSelector, Target};

    #[test]
    fn the_config_parses_and_names_every_setting() {
        let dir = tempfile::tempdir().unwrap();
        let report = run(&InitOptions::new(dir.path().join("flowpack.toml"))).unwrap();
        assert!(!report.replaced);
        assert_eq!(report.overlays_written.len(), 2);
        let text = std::fs::read_to_string(dir.path().join("flowpack.toml")).unwrap();
        for key in ["url", "token_env", "overlay", "trusted_keys", "threshold"] {
            assert!(text.contains(&format!("\n{key} = ")), "{key}");
        }
        assert!(text.contains("history"));
        let vars = |v: &str| (v == "FLOWPACK_PRODUCTION_TOKEN").then(|| "k".to_string());
        let e = env::resolve(&EnvSelector::named("production"), dir.path(), &vars).unwrap();
        assert!(matches!(&e.target, Target::Http { url, .. } if url == "https://core.example.com"));
        assert_eq!(e.trusted_keys, vec![dir.path().join(RELEASE_KEY)]);
        assert_eq!(e.threshold, Some(1));
        assert_eq!(e.overlay, Some(dir.path().join("overlays/production.toml")));
        // The overlays it wrote are valid (empty) overlays.
        flowpack_core::overlay::Overlay::read(&dir.path().join("overlays/staging.toml")).unwrap();
        assert_eq!(report.keys_missing, vec![dir.path().join(RELEASE_KEY)]);
    }

    #[test]
    fn an_existing_config_is_refused_unless_forced_and_overlays_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flowpack.toml");
        std::fs::write(&path, "# mine\n").unwrap();
        std::fs::create_dir(dir.path().join("overlays")).unwrap();
        std::fs::write(dir.path().join("overlays/staging.toml"), "# my values\n").unwrap();
        let err = run(&InitOptions::new(path.clone())).unwrap_err();
        assert!(matches!(err, InitError::Exists { .. }));
        assert_eq!(err.remedy(), Some(Remedy::Overwrite));
        assert_eq!(err.category(), Category::CouldNotRun);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
        assert!(!dir.path().join("overlays/production.toml").exists());

        let mut opts = InitOptions::new(path.clone());
        opts.force = true;
        let report = run(&opts).unwrap();
        assert!(report.replaced);
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("[env.production]")
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("overlays/staging.toml")).unwrap(),
            "# my values\n"
        );
        assert_eq!(
            report.overlays_kept,
            vec![dir.path().join("overlays/staging.toml")]
        );
    }

    #[test]
    fn environments_are_named_by_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = InitOptions::new(dir.path().join("flowpack.toml"));
        opts.environments = vec!["dev".into(), "prod-eu".into()];
        run(&opts).unwrap();
        let text = std::fs::read_to_string(dir.path().join("flowpack.toml")).unwrap();
        assert!(text.contains("[env.prod-eu]") && text.contains("FLOWPACK_PROD_EU_TOKEN"));
        opts.environments = vec!["a b".into()];
        opts.force = true;
        assert!(matches!(run(&opts), Err(InitError::BadName { .. })));
        opts.environments = vec!["a".into(), "a".into()];
        assert!(matches!(run(&opts), Err(InitError::Duplicate { .. })));
    }
}
