//! What a command returns: a verdict after rendering its report, or a failure to print.

use std::fmt::Display;

use flowpack_action::{Categorize, Category};

/// How a command that ran to the end came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Everything passed.
    Success,
    /// The report says a check failed (findings, a failed verification, a refused or partly
    /// failed push, a difference): the input was rejected.
    Failed,
}

/// A command that did not run to the end: what to print and its category.
#[derive(Debug)]
pub struct Failure {
    /// Rejected input, or could not run.
    pub category: Category,
    /// The message (naming the file, entry, flow or flag at fault).
    pub message: String,
}

impl<E: Categorize> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure {
            category: e.category(),
            message: e.to_string(),
        }
    }
}

impl Failure {
    /// Bad usage, or something of the binary's own (stdout closed, a prompt failed).
    pub fn usage(message: impl Display) -> Failure {
        Failure {
            category: Category::CouldNotRun,
            message: message.to_string(),
        }
    }

    /// The same failure with another message (the details were rendered already).
    pub fn with_message(self, message: String) -> Failure {
        Failure { message, ..self }
    }

    /// The same failure counted as "could not run" (commands whose 1 means "different").
    pub fn could_not_run(self) -> Failure {
        Failure {
            category: Category::CouldNotRun,
            ..self
        }
    }
}

/// What every command returns.
pub type Outcome = Result<Verdict, Failure>;
