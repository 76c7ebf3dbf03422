//! End-to-end tests of the `flowpack` binary (one test binary, ripgrep-style).

mod platform;
mod util;
mod validate;
