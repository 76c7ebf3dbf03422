//! flowpack's user actions as a library: everything the `flowpack` command line does, callable
//! from Rust.
//!
//! One module per action. Each takes an options struct (built with `new(...)` for its required
//! fields, the rest public fields with defaults that the caller sets after `new`) and returns a
//! report or a typed error:
//! `pack::run(&PackOptions) -> Result<PackReport, PackError>`,
//! `push::run(&PushOptions) -> Result<PushReport, PushError>`, and so on. Actions never print;
//! progress comes back through callbacks in the options. The clock, randomness and keys come in
//! through the options too, so a caller (or a test) decides them.
//!
//! Every error implements [`Categorize`]: [`Category::Rejected`] when the input was refused (an
//! invalid or hostile document or archive, a failed verification, a refused push) and
//! [`Category::CouldNotRun`] when the action could not run (usage, the user's own files
//! unreadable, configuration, authentication, network). The `flowpack` binary turns them into
//! exit codes 1 and 2 in one place. Messages name no flag of any front end: where a caller could
//! supply something to get past an error, [`Categorize::remedy`] says what, as a typed
//! [`error::Remedy`].
//!
//! Error enums and option structs are `#[non_exhaustive]` (here and in flowpack-core and
//! flowpack-client): a later release may add variants and options without breaking callers, so
//! match errors with a wildcard arm (or through [`Categorize`]) and build options with `new`.
//!
//! Trust policies (keys and a threshold) are made by [`trust::policy`] for every action that
//! checks signatures; environments (`flowpack.toml`, a base URL, the embedded `local` sandbox)
//! are resolved and opened by [`mod@env`].
//!
//! Features: `local` (default) builds the embedded `local` environment on flowpack-sandbox's
//! SQLite store; without it (`default-features = false`) the crate has no SQLite in its tree
//! and opening `local` fails with [`env::EnvError::LocalNotBuilt`].
//!
//! ```
//! use flowpack_action::{pack, trust, verify};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/reference");
//! let inputs = vec![
//!     fixtures.join("export-v2-order-sync.json"),
//!     fixtures.join("export-v1-legacy.json"),
//! ];
//! let out = dir.path().join("flows.flowpack");
//! let created_at = time::OffsetDateTime::from_unix_timestamp(1_767_225_600)?;
//! let packed = pack::run(&pack::PackOptions::new(
//!     inputs,
//!     out.clone(),
//!     "acme-flows".into(),
//!     semver::Version::new(1, 0, 0),
//!     created_at,
//! ))?;
//! assert_eq!(packed.manifest.flows.len(), 2);
//!
//! // No trusted keys: integrity is checked, signatures are reported as not checked.
//! let policy = trust::policy(&trust::TrustOptions::new(vec![], None))?;
//! let report = verify::run(&verify::VerifyOptions::new(out, policy))?;
//! assert!(report.ok);
//!
//! // A threshold of 0 is refused, whichever action asks.
//! let err = trust::policy(&trust::TrustOptions::new(vec![], Some(0))).unwrap_err();
//! assert_eq!(flowpack_action::Categorize::category(&err), flowpack_action::Category::CouldNotRun);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod backup;
pub mod diff;
pub mod env;
pub mod error;
pub mod export;
pub mod history;
pub mod init;
pub mod input;
pub mod inspect;
pub mod journal;
pub mod keygen;
pub mod lock;
pub mod migrate;
pub mod pack;
pub mod publish;
pub mod pull;
pub mod push;
pub mod recover;
pub mod repack;
pub mod restore;
pub mod rollback;
pub mod shared;
pub mod sign;
pub mod storage;
pub mod trust;
pub mod unpack;
pub mod validate;
pub mod verify;

pub use error::{Categorize, Category};
