//! End-to-end tests of the `flowpack` binary (one test binary, ripgrep-style).

mod archive;
mod exit_codes;
mod inspect;
mod migrate;
mod platform;
mod promote;
mod scripts;
mod util;
mod validate;
mod validate_many;
