//! `ferry up`: the server, the admin API and the gateway in one process, on
//! embedded defaults, for trying Ferry out or a single-machine deployment.

use crate::gateway::{self, GatewayArgs, GatewaySettings};
use crate::server::{self, ServerArgs, ServerSettings};

/// Starts everything, prints where each part listens, runs until Ctrl-C/SIGTERM.
pub async fn up(server_args: &ServerArgs, gateway_args: &GatewayArgs) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signals();
    let server_settings = ServerSettings::resolve(server_args)?;
    let server = server::start(&server_settings, shutdown.clone()).await?;
    let mut gateway_settings = GatewaySettings::resolve(gateway_args)?;
    if gateway_args.server.is_none() {
        gateway_settings.server = server.tcp.to_string();
    }
    if gateway_args.admin_url.is_none() {
        gateway_settings.admin_url = server.admin_url();
    }
    if gateway_settings.fernet_key.is_none() {
        gateway_settings.fernet_key = server.fernet_key_file.clone();
    }
    let gateway = gateway::start(&gateway_settings, shutdown.clone()).await?;
    println!("Ferry is up (Ctrl-C stops it):");
    server.announce();
    gateway.announce();
    let (server_result, gateway_result) = tokio::join!(server.task, gateway.task);
    server_result??;
    gateway_result??;
    Ok(())
}
