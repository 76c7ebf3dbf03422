//! End-to-end tests of the `flowpack` binary (one test binary, ripgrep-style).

mod archive;
mod backup;
mod cli;
mod crash;
mod diff;
mod exit_codes;
mod fuzz;
mod init;
mod inputs;
mod inspect;
mod library_messages;
mod marketplace;
mod memory;
mod migrate;
mod oci;
mod outputs;
mod platform;
mod promote;
mod repack;
mod retries;
mod review;
mod scripts;
mod snapshots;
mod util;
mod validate;
mod validate_many;
