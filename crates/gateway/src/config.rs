//! The gateway's settings, taken as values (only the binary reads the environment).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use ferry_crypto::FernetKey;
use ferry_http::BearerToken;

/// The address the gateway binary listens on unless told otherwise.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
/// Where the admin API is, for `Location` headers, unless told otherwise.
pub const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:6869";
/// How long a pooled session may sit idle before it is dropped: well under the
/// server's own 30 s idle timeout, so a pooled session is rarely found closed.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long requests in flight may run on after shutdown is asked for.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(30);
/// How long a `/dict` body waits for room in the memory budget before a 503.
pub const BUDGET_WAIT: Duration = Duration::from_secs(2);

/// The most bytes of a tus `PATCH` sent as one native append, unless told otherwise.
pub const DEFAULT_TUS_CHUNK_BYTES: u64 = 8 * 1024 * 1024;

/// Everything [`crate::app`] needs.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The Ferry (or legacy) TCP server, `host:port`.
    pub server: String,
    /// The Fernet key shared with the server; without it `encrypt=true` is refused.
    pub fernet: Option<Arc<FernetKey>>,
    /// When set, `/dict` and `/file` require `Authorization: Bearer <token>`.
    pub token: Option<BearerToken>,
    /// The admin API's base URL; `Location` is `{admin_url}/api/items/{id}`.
    pub admin_url: String,
    /// The most TCP sessions open to the server at once (busy and idle together).
    pub pool_size: usize,
    /// The largest `/dict` body accepted, in bytes (413 beyond).
    pub max_dict_bytes: usize,
    /// The most bytes of `/dict` bodies held in memory at once, all requests
    /// together: a body that finds no room within [`BUDGET_WAIT`] is a 503 `busy`.
    pub dict_budget: usize,
    /// The largest `/file` body and tus upload accepted, in bytes (413 beyond;
    /// `Tus-Max-Size`); `None`: no limit.
    pub max_file_bytes: Option<u64>,
    /// `/dict`: the whole request. `/file`: the longest wait for the next body
    /// chunk, so that a big upload may take as long as it needs while it moves.
    pub request_timeout: Duration,
    /// How long to wait for the server: to connect, and for its answer to a transfer.
    pub upstream_timeout: Duration,
    /// Requests per client address; off by default.
    pub rate_limit: ferry_http::RateLimit,
    /// The most bytes of a tus `PATCH` body (without `Upload-Checksum`) sent
    /// as one native append: a request cut mid-way loses at most this much.
    pub tus_chunk_bytes: u64,
    /// Origins allowed to call the gateway from a browser (CORS; `*` is any);
    /// none: no CORS headers at all.
    pub cors_origins: Vec<axum::http::HeaderValue>,
    /// The process's Prometheus recorder, rendered at `/metrics`.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl Default for GatewayConfig {
    /// Server `127.0.0.1:6868`, no key, no token, admin API on port 6869, 64
    /// sessions, 16 MiB dictionaries, 128 MiB for all dictionary bodies together,
    /// 64 GiB files (and tus uploads), 60 s request and upstream timeouts, tus
    /// appends of 8 MiB, no CORS.
    fn default() -> Self {
        GatewayConfig {
            server: format!("127.0.0.1:{}", ferry_protocol::DEFAULT_PORT),
            fernet: None,
            token: None,
            admin_url: DEFAULT_ADMIN_URL.into(),
            pool_size: 64,
            max_dict_bytes: 16 * 1024 * 1024,
            dict_budget: 128 * 1024 * 1024,
            max_file_bytes: Some(64 * 1024 * 1024 * 1024),
            request_timeout: Duration::from_secs(60),
            upstream_timeout: Duration::from_secs(60),
            rate_limit: ferry_http::RateLimit::default(),
            tus_chunk_bytes: DEFAULT_TUS_CHUNK_BYTES,
            cors_origins: Vec::new(),
            metrics: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_never_shows_in_debug() {
        let config = GatewayConfig {
            token: Some(BearerToken::parse("s3cret").unwrap()),
            ..GatewayConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("***"),
            "{shown}"
        );
    }
}
