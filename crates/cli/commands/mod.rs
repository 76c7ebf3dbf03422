//! One module per command: parse flags, call one operation, render its report.

pub mod backup;
pub mod backups;
pub mod completions;
pub mod diff;
pub mod export;
pub mod history;
pub mod init;
pub mod inspect;
pub mod keygen;
pub mod man;
pub mod migrate;
pub mod pack;
pub mod publish;
pub mod pull;
pub mod push;
pub mod recover;
pub mod rollback;
pub mod sign;
pub mod unlock;
pub mod unpack;
pub mod validate;
pub mod verify;
