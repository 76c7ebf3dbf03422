//! End-to-end tests of the `flowpack` binary (one test binary, ripgrep-style).

mod inspect;
mod migrate;
mod archive;
mod util;
mod validate;
