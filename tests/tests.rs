//! End-to-end tests of the `flowpack` binary (one test binary, ripgrep-style).

mod archive;
mod inspect;
mod migrate;
mod util;
mod validate;
