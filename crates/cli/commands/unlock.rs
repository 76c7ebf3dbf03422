//! `flowpack unlock --env E`

use flowpack_action::lock::{self, LockOptions, Mode};

use crate::flags::{EnvArgs, HistoryArgs};
use crate::outcome::{Outcome, Verdict};

/// Remove an environment's lock left by a run that is over (on another host, or killed).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  flowpack unlock --env production\n\n\
push, rollback and recover hold an exclusive lock on the environment, backup and export a \
shared one, in $FLOWPACK_LOCK_DIR (default /tmp/flowpack-locks). The kernel releases a lock when \
its process ends, and a lock left by a dead process on this host is taken over with a warning; \
a lock naming a run on another host is never taken over: unlock removes it, naming it, once \
that run is known to be over. A lock a running process on this host holds is not removed. With \
the history in object storage (--history s3://… or the environment's history in flowpack.toml), \
the lock object in the bucket is removed the same way.\n\
Exit codes: 0 removed (or nothing to remove), 2 still held by a running process, or could not run.",
    disable_version_flag = true
)]
pub struct Args {
    #[command(flatten)]
    env: EnvArgs,
    #[command(flatten)]
    history: HistoryArgs,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    let env = args.env.resolve()?;
    let opts = LockOptions::new(
        &env,
        Mode::Exclusive,
        "unlock",
        &crate::clock::now_rfc3339(),
    );
    let report = lock::unlock(&opts)?;
    match &report.removed {
        Some(h) => say!("removed the lock of {h} ({})", report.path),
        None => say!("{} is not locked ({})", env.name, report.path),
    }
    if let Some(location) = args.history.bucket(&env)? {
        let report = flowpack_action::shared::unlock(&location, &env.name, &lock::identity(&env))?;
        match &report.removed {
            Some(l) => say!(
                "removed the lock of {} ({}, lease until {})",
                l.holder,
                report.lock,
                l.lease_until
            ),
            None => say!("{} is not locked ({})", env.name, report.lock),
        }
    }
    Ok(Verdict::Success)
}
