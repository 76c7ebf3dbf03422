//! One module per command: parse flags, call one operation, render its report.

pub mod migrate;
pub mod validate;
