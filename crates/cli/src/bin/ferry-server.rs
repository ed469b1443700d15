//! `ferry-server`: the legacy-compatible TCP server and the admin API.

use clap::Parser;
use ferry_cli::server::{ServerArgs, ServerSettings};

/// Receives dictionaries and text files over the legacy Ferry protocol and stores them encrypted.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    args: ServerArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ferry_cli::logging::init();
    let cli: Cli = ferry_cli::help::parse(|command| {
        ferry_cli::help::with_defaults(command, &ServerSettings::default())
    });
    let settings = ServerSettings::resolve(&cli.args)?;
    let server = ferry_cli::server::start(&settings, ferry_cli::shutdown::on_signals()).await?;
    println!("ferry-server {} is up:", env!("CARGO_PKG_VERSION"));
    server.announce();
    server.task.await??;
    Ok(())
}
