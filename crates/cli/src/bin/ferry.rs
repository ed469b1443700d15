//! `ferry`: send items, make keys, or run everything at once.

use clap::{Parser, Subcommand};
use ferry_cli::gateway::{GatewayArgs, GatewaySettings};
use ferry_cli::help::with_defaults;
use ferry_cli::send::{Connection, SendCommand};
use ferry_cli::server::{ServerArgs, ServerSettings};
use std::path::PathBuf;

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
        #[command(subcommand)]
        what: SendCommand,
    },
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ferry_cli::logging::init();
    let cli: Cli = ferry_cli::help::parse(|command| {
        command.mut_subcommand("up", |up| {
            let gateway = GatewaySettings::default();
            let up = with_defaults(up, &ServerSettings::default());
            with_defaults(up, &serde_json::json!({ "gateway_listen": gateway.listen }))
        })
    });
    match cli.command {
        Command::Send { connection, what } => ferry_cli::send::send(&connection, &what).await,
        Command::Keygen { path } => ferry_cli::send::keygen(&path),
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
            ferry_cli::up::up(&server, &gateway).await
        }
    }
}
