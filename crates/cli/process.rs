//! Process-wide settings made once at start-up, before any command runs.

/// Makes a closed stdout end the process quietly, as other Unix tools do
/// (`flowpack inspect x.json | head`), instead of failing with "Broken pipe".
pub fn restore_sigpipe() {
    #[cfg(unix)]
    {
        const SIGPIPE: i32 = 13;
        const SIG_DFL: usize = 0;
        unsafe extern "C" {
            fn signal(signum: i32, handler: usize) -> usize;
        }
        // SAFETY: restores the default disposition of SIGPIPE (which Rust's runtime sets to
        // ignore) before any thread is started; no Rust state depends on it.
        unsafe {
            signal(SIGPIPE, SIG_DFL);
        }
    }
}
