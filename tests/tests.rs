//! End-to-end tests of the `flowpack` binary (one test binary, ripgrep-style).

mod inspect;
mod platform;
mod util;
mod validate;
mod validate_many;
