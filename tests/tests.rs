//! End-to-end tests of the `flowpack` binary (one test binary, ripgrep-style).

mod archive;
mod exit_codes;
mod fuzz;
mod inspect;
mod marketplace;
mod memory;
mod migrate;
mod oci;
mod platform;
mod scripts;
mod util;
mod validate;
mod validate_many;
