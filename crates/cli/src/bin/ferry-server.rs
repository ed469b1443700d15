//! `ferry-server`: the legacy-compatible TCP server and the admin API.

use clap::Parser;
use ferry_cli::server::{ServerArgs, ServerSettings};

/// Receives dictionaries and text files over the legacy Ferry protocol and stores them encrypted.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    args: ServerArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// What to do instead of serving.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Check the store's log against its last signed checkpoint (with the server stopped); exit 1 if it does not verify.
    VerifyLog,
    /// Print the public key that verifies receipts and checkpoints.
    LogKey,
}

#[global_allocator]
static ALLOCATOR: ferry_bins::Allocator = ferry_bins::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ferry_cli::logging::init();
    let cli: Cli = ferry_cli::help::parse(|command| {
        ferry_cli::help::with_defaults(command, &ServerSettings::default())
    });
    let settings = ServerSettings::resolve(&cli.args)?;
    match cli.command {
        Some(Command::VerifyLog) => {
            let ok = ferry_cli::server::verify_log(&settings).await?;
            std::process::exit(if ok { 0 } else { 1 });
        }
        Some(Command::LogKey) => return ferry_cli::server::log_key(&settings),
        None => {}
    }
    let server = ferry_cli::server::start(&settings, ferry_cli::shutdown::on_signals()).await?;
    println!("ferry-server {} is up:", env!("CARGO_PKG_VERSION"));
    server.announce();
    server.task.await??;
    Ok(())
}
