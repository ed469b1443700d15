//! `ferry-bench`: measures Ferry's release binaries against this machine's limits
//! and prints a Markdown table (stdout) and JSON (`--json`). Exits 0 whether or
//! not the targets are met; non-zero only if something broke.

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use ferry_bench::{Only, Plan, S3Endpoint, Sizes, run};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Part {
    Tcp,
    Gateway,
    /// The gateway's tus uploads (`/uploads`) against `POST /file`.
    Tus,
    /// The S3 store, against the S3 server's own rates (moto's server, or --s3-bucket's).
    S3,
}

/// Benchmarks ferry-server and ferry-gateway (started on port 0 in a fresh directory).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Smaller sizes, for a smoke test (64 MiB transfers, seconds of dictionaries).
    #[arg(long)]
    quick: bool,
    /// Only the TCP server's figures, the gateway's, the gateway's tus uploads
    /// or the S3 store's (the limits are always measured).
    #[arg(long, value_enum)]
    only: Option<Part>,
    /// Scratch directory, on the disk to measure (created, and removed if left empty).
    #[arg(long, default_value = "target/bench-work")]
    work_dir: PathBuf,
    /// Where ferry-server and ferry-gateway are (default: beside this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Measure the S3 store on this bucket of the S3 server that the AWS_*
    /// variables name (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_REGION, AWS_ALLOW_HTTP, ...), instead of on moto's server started for
    /// the run. Only objects under --s3-prefix are written, and deleted after each phase.
    #[arg(long)]
    s3_bucket: Option<String>,
    /// The key prefix the S3 figures write under, in --s3-bucket.
    #[arg(long, default_value = "ferry-bench", requires = "s3_bucket")]
    s3_prefix: String,
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
            Some(Part::S3) => Only::S3,
        },
        s3: args.s3_bucket.map(|bucket| S3Endpoint {
            bucket,
            env: std::env::vars()
                .filter(|(name, _)| name.starts_with("AWS_"))
                .collect(),
            prefix: args.s3_prefix,
        }),
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
