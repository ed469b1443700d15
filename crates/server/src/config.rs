//! The server's settings, as values: `main` reads flags, environment and files.

use ferry_codec::Limits;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

/// The address the server listens on unless told otherwise: the legacy port, on
/// loopback only.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(
    Ipv4Addr::LOCALHOST,
    ferry_protocol::DEFAULT_PORT,
));

/// The legacy server's export file names, unless told otherwise.
pub const DEFAULT_EXPORT_TEMPLATE: &str = "{source}_{timestamp}.{format}";

/// Whether encrypted (Fernet) transfers are refused, accepted, or the only ones accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EncryptionPolicy {
    Disabled,
    #[default]
    Accepted,
    Required,
}

/// Legacy export: one file per transfer in `dir`.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    pub dir: PathBuf,
    /// File name template with `{source}`, `{timestamp}`, `{format}`, `{id}` and `{name}`.
    pub template: String,
    /// Write dictionaries as they arrived (pickle, xml, json) instead of as indented JSON.
    pub original_form: bool,
}

/// How the TCP server treats connections and transfers.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub encryption: EncryptionPolicy,
    pub allow_pickle: bool,
    pub dict_limits: Limits,
    /// A connection with no byte received for this long is dropped.
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Connections open at once from one client address; 0: no limit. One more
    /// is answered `ERROR: …` and closed.
    pub max_connections_per_ip: u32,
    /// New connections per second from one client address; 0: no limit.
    pub new_connections_per_ip: u32,
    /// How long transfers in flight may take to finish after a shutdown request.
    pub shutdown_grace: Duration,
    /// Memory all dictionaries in flight may hold together (beyond the first
    /// [`crate::FREE_BYTES`] of each).
    pub max_inflight_bytes: usize,
    /// How long a dictionary waits for room in that budget before it is refused.
    pub inflight_wait: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            encryption: EncryptionPolicy::Accepted,
            allow_pickle: true,
            dict_limits: Limits::default(),
            idle_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_ip: 0,
            new_connections_per_ip: 0,
            shutdown_grace: Duration::from_secs(10),
            max_inflight_bytes: 256 * 1024 * 1024,
            inflight_wait: Duration::from_secs(5),
        }
    }
}
