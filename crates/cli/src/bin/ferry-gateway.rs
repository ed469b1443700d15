//! `ferry-gateway`: HTTP in front of a Ferry server.

use clap::Parser;
use ferry_cli::gateway::{GatewayArgs, GatewaySettings};

/// Accepts POST /dict and POST /file over HTTP and forwards each to a Ferry server.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    args: GatewayArgs,
}

#[global_allocator]
static ALLOCATOR: ferry_bins::Allocator = ferry_bins::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ferry_cli::logging::init();
    let cli: Cli = ferry_cli::help::parse(|command| {
        ferry_cli::help::with_defaults(command, &GatewaySettings::default())
    });
    let settings = GatewaySettings::resolve(&cli.args)?;
    let gateway = ferry_cli::gateway::start(&settings, ferry_cli::shutdown::on_signals()).await?;
    println!("ferry-gateway {} is up:", env!("CARGO_PKG_VERSION"));
    gateway.announce();
    gateway.task.await??;
    Ok(())
}
