//! `ferry`: send items, make keys, or run everything at once.

use clap::{Parser, Subcommand};
use ferry_cli::gateway::{GatewayArgs, GatewaySettings};
use ferry_cli::help::with_defaults;
use ferry_cli::send::{Connection, Keep, SendCommand};
use ferry_cli::server::{ServerArgs, ServerSettings};
use ferry_cli::verify::VerifyArgs;
use std::path::PathBuf;
use std::process::ExitCode;

/// Ferry: moves dictionaries and text files to a Ferry server, encrypted on the wire and at rest.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send dictionaries or files over one session.
    Send {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        keep: Keep,
        #[command(subcommand)]
        what: SendCommand,
    },
    /// Verify a stored item's signed receipt: its checkpoint's signature by the
    /// log's key and the item's leaf in that checkpoint, optionally the item's
    /// file, and (with --admin) that the log's latest checkpoint extends it.
    /// Exits 0 when every check holds, 1 when one fails, 2 when it cannot run.
    Verify(VerifyArgs),
    /// Write a new Fernet key file (mode 0600).
    Keygen { path: PathBuf },
    /// Run the server, the admin API and the gateway together on embedded defaults.
    Up {
        #[command(flatten)]
        server: Box<ServerArgs>,
        /// Address of the gateway's HTTP listener.
        #[arg(long = "gateway-listen", env = "FERRY_GATEWAY_LISTEN")]
        gateway_listen: Option<std::net::SocketAddr>,
        /// Bearer token for the gateway (default: none required).
        #[arg(
            long = "gateway-token",
            env = "FERRY_GATEWAY_TOKEN",
            hide_env_values = true
        )]
        gateway_token: Option<ferry_cli::Secret>,
    },
}

#[global_allocator]
static ALLOCATOR: ferry_bins::Allocator = ferry_bins::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    ferry_cli::logging::init();
    let cli: Cli = ferry_cli::help::parse(|command| {
        command.mut_subcommand("up", |up| {
            let gateway = GatewaySettings::default();
            let up = with_defaults(up, &ServerSettings::default());
            with_defaults(up, &serde_json::json!({ "gateway_listen": gateway.listen }))
        })
    });
    match cli.command {
        Command::Send {
            connection,
            keep,
            what,
        } => ferry_cli::send::send(&connection, &keep, &what).await,
        Command::Verify(args) => Ok(ferry_cli::verify::verify(&args).await),
        Command::Keygen { path } => ferry_cli::send::keygen(&path).map(|()| ExitCode::SUCCESS),
        Command::Up {
            server,
            gateway_listen,
            gateway_token,
        } => {
            let gateway = GatewayArgs {
                listen: gateway_listen,
                token: gateway_token,
                ..GatewayArgs::default()
            };
            ferry_cli::up::up(&server, &gateway)
                .await
                .map(|()| ExitCode::SUCCESS)
        }
    }
}
