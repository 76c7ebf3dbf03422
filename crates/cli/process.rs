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

/// Keeps glibc from growing the heap without bound while documents of a few hundred KB are
/// allocated on worker threads and freed on others: glibc raises its mmap threshold after the
/// first large free, after which such buffers fragment the heap (a 100 MB corpus peaked at
/// 135 MB RSS; with a fixed threshold, 10 MB). A fixed 128 KiB threshold keeps large buffers in
/// mmap, returned to the system on free.
pub fn bound_heap_growth() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const M_MMAP_THRESHOLD: i32 = -3;
        unsafe extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: mallopt only adjusts allocator tunables; it is called with a documented
        // parameter and a valid value, and does not touch Rust-managed memory.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 128 * 1024);
        }
    }
}
