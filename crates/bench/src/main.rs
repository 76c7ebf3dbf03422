//! `flowpack-bench`: generates the benchmark corpus (see `BENCHMARKS.md`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use flowpack_bench::profile::profile;
use flowpack_bench::{GenOptions, generate_corpus};

/// The benchmark corpus generator of flowpack.
#[derive(Debug, Parser)]
#[command(name = "flowpack-bench", version)]
enum Cli {
    /// Write N realistic version-2 export documents (deterministic for a seed).
    #[command(
        after_help = "Example:\n  flowpack-bench gen --flows 2000 --seed 1 --out corpus/\n  \
flowpack-bench gen --flows 4000 --seed 1 --target-mb 1000 --out big/\n\n\
Documents weigh 2-300 KB (mean 100 KB) unless --target-mb scales them; files are named \
flow-NNNNN.json."
    )]
    Gen(GenArgs),
    /// Time each phase of validating and packing a corpus on one thread (a breakdown of
    /// `flowpack validate` and `flowpack pack`).
    #[command(
        after_help = "Example:\n  flowpack-bench profile target/bench-corpus/flows-2000-seed-1"
    )]
    Profile(ProfileArgs),
}

#[derive(Debug, clap::Args)]
struct ProfileArgs {
    /// A corpus directory (its *.json files).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Where the scratch archives go (removed after).
    #[arg(long, value_name = "DIR", default_value = ".")]
    scratch: PathBuf,
}

#[derive(Debug, clap::Args)]
struct GenArgs {
    /// How many documents (flows).
    #[arg(long, value_name = "N")]
    flows: usize,
    /// The seed: the same seed gives the same bytes.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// The output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Scale document sizes so the corpus weighs about M megabytes (10^6 bytes).
    #[arg(long, value_name = "M")]
    target_mb: Option<f64>,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("flowpack-bench: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli {
        Cli::Gen(args) => {
            if let Some(mb) = args.target_mb {
                anyhow::ensure!(mb > 0.0, "--target-mb must be positive, got {mb}");
            }
            let opts = GenOptions {
                flows: args.flows,
                seed: args.seed,
                target_mb: args.target_mb,
            };
            let report = generate_corpus(&opts, &args.out)?;
            println!(
                "wrote {} documents to {}: {:.1} MB total, {} steps, sizes {:.1}-{:.1} KB",
                report.files.len(),
                args.out.display(),
                report.total_bytes as f64 / 1e6,
                report.total_steps,
                report.min_bytes as f64 / 1e3,
                report.max_bytes as f64 / 1e3,
            );
            Ok(ExitCode::SUCCESS)
        }
        Cli::Profile(args) => {
            let p = profile(&args.dir, &args.scratch)?;
            let mb = p.bytes as f64 / 1e6;
            println!("{} documents, {mb:.1} MB, one thread", p.documents);
            println!("| phase                            |  total s |  MB/s |");
            println!("|----------------------------------|---------:|------:|");
            for (name, d) in &p.phases {
                let s = d.as_secs_f64();
                println!("| {name:<32} | {s:8.3} | {:5.0} |", mb / s.max(1e-9));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
