//! The `flowpack-sandbox` binary (built by the root package, so one `cargo install --path .`
//! installs it beside `flowpack`).

fn main() -> std::process::ExitCode {
    flowpack_sandbox::cli::main()
}
