//! End-to-end tests of the `flowpack` binary (one test binary, ripgrep-style).

mod archive;
mod inspect;
mod migrate;
mod oci;
mod platform;
mod util;
mod validate;
mod validate_many;
