//! One module per command: parse flags, call one operation, render its report.

pub mod inspect;
pub mod validate;
