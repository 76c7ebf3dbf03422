//! Process-wide settings made once at start-up, before any command runs.

/// Makes a closed stdout end the process quietly, as other Unix tools do
/// (`flowpack inspect x.json | head`), instead of failing with "Broken pipe".
pub fn restore_sigpipe() {
    #[cfg(unix)]
    {
        use nix::sys::signal::{SigHandler, Signal, signal};
        // SAFETY: installs the default disposition (no handler function runs in signal context)
        // before any thread is started; Rust's runtime set SIGPIPE to ignore and no Rust state
        // depends on that. Failing to restore it only keeps the "Broken pipe" error, so the
        // result is not needed.
        let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    }
}
