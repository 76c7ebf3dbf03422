//! The operations behind the commands that talk to a platform: each takes options and returns a
//! report; none prints (the command files render the reports).

pub mod env;
pub mod export;
pub mod push;
