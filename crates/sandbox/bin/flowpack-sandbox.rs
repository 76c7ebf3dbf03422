//! The `flowpack-sandbox` binary (built by the root package, so one `cargo install --path .`
//! installs it beside `flowpack`).

/// mimalloc, as in `flowpack`: an import parses, copies and serialises a whole document, and
/// with glibc's malloc about half of the sandbox's time went to allocating and freeing
/// (BENCHMARKS.md, the push benchmark).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    flowpack_sandbox::cli::main()
}
