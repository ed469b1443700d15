//! `ferry-bench`: measures Ferry's release binaries against this machine's limits
//! and prints a Markdown table (stdout) and JSON (`--json`). Exits 0 whether or
//! not the targets are met; non-zero only if something broke.

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use ferry_bench::{Only, Plan, Sizes, run};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Part {
    Tcp,
    Gateway,
    /// The gateway's tus uploads (`/uploads`) against `POST /file`.
    Tus,
}

/// Benchmarks ferry-server and ferry-gateway (started on port 0 in a fresh directory).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Smaller sizes, for a smoke test (64 MiB transfers, seconds of dictionaries).
    #[arg(long)]
    quick: bool,
    /// Only the TCP server's figures, the gateway's, or the gateway's tus uploads
    /// (the limits are always measured).
    #[arg(long, value_enum)]
    only: Option<Part>,
    /// Scratch directory, on the disk to measure (created, and removed if left empty).
    #[arg(long, default_value = "target/bench-work")]
    work_dir: PathBuf,
    /// Where ferry-server and ferry-gateway are (default: beside this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "target/bench/results.json")]
    json: PathBuf,
}

#[global_allocator]
static ALLOCATOR: ferry_bins::Allocator = ferry_bins::Allocator;

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let plan = Plan {
        bin_dir: match args.bin_dir {
            Some(dir) => dir,
            None => ferry_bins::dir()?,
        },
        work_dir: args.work_dir,
        sizes: if args.quick {
            Sizes::quick()
        } else {
            Sizes::full()
        },
        only: match args.only {
            None => Only::All,
            Some(Part::Tcp) => Only::Tcp,
            Some(Part::Gateway) => Only::Gateway,
            Some(Part::Tus) => Only::Tus,
        },
    };
    let report = run(&plan).await?;
    if let Some(parent) = args.json.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let json = serde_json::to_string_pretty(&report.json())?;
    std::fs::write(&args.json, json + "\n")
        .with_context(|| format!("writing {}", args.json.display()))?;
    print!("{}", report.markdown());
    eprintln!("== results written to {}", args.json.display());
    Ok(())
}
