//! End-to-end tests of the `flowpack` binary (one test binary, ripgrep-style).

mod inspect;
mod util;
mod validate;
