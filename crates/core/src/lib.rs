//! flowpack's core library: the export document model, validation, migrations between export
//! format versions, and (in later modules) archives, signatures and overlays.
//!
//! Operations never print; they return reports. Validation findings are data
//! ([`validate::Report`]), not errors: `Err` means "could not check at all".
//!
//! Public error enums and option structs are `#[non_exhaustive]`, so that a later release may add
//! a variant or an option without breaking callers: match errors with a wildcard arm, and build
//! options with their constructor (`new(...)` taking the required values, or `default()` where
//! every field has a default), then set the public fields you need:
//! `let mut opts = archive::UnpackOptions::new(policy); opts.skip_signatures = true;`.
//!
//! ```
//! use flowpack_core::document::Document;
//! use flowpack_core::validate::{validate, ValidateOptions};
//!
//! let doc = Document::from_slice(br#"{"metadata":{"company_name":"Acme","flow_name":"A",
//!   "exported_at":"2026-01-01T00:00:00Z"},"flow":{"name":"A","priority":9,"versions":[]},
//!   "systems":[],"scripts":[],"dependencies":[]}"#, "a.json").unwrap();
//! let report = validate(&doc, &ValidateOptions::default());
//! assert!(report.findings.iter().any(|f| f.pointer == "/flow/priority"));
//! ```

#![warn(missing_docs)]

pub mod budget;
pub mod diff;
pub mod document;
pub mod fsutil;
pub mod graph;
pub mod inspect;
pub mod marketplace;
pub mod migrate;
pub mod names;
pub mod overlay;
pub mod pool;
pub mod secrets;
pub mod summary;
pub mod validate;

pub use document::{Document, DocumentBound, DocumentError, FormatVersion};
pub mod archive;
pub mod sign;
