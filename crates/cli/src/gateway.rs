//! `ferry-gateway`: HTTP in front of the TCP server.

use crate::settings::{Secret, layered, tls_files};
use anyhow::Context;
use ferry_gateway::GatewayConfig;
use ferry_http::{BearerToken, RateLimit, ServeOptions};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Flags of `ferry-gateway`; each also reads a `FERRY_…` environment variable.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct GatewayArgs {
    /// TOML file with any of these settings.
    #[arg(long, env = "FERRY_GATEWAY_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address of the HTTP listener.
    #[arg(long, env = "FERRY_GATEWAY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The Ferry TCP server to forward to.
    #[arg(long, env = "FERRY_SERVER")]
    pub server: Option<String>,
    /// Fernet key file shared with the server, for `encrypt=true`.
    #[arg(long, env = "FERRY_FERNET_KEY")]
    pub fernet_key: Option<PathBuf>,
    /// Bearer token that HTTP clients must send (default: none required).
    #[arg(long, env = "FERRY_GATEWAY_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,
    /// Base URL of the admin API, for the Location of created items.
    #[arg(long, env = "FERRY_ADMIN_URL")]
    pub admin_url: Option<String>,
    /// Persistent TCP sessions kept to the server.
    #[arg(long, env = "FERRY_GATEWAY_POOL_SIZE")]
    pub pool_size: Option<usize>,
    /// Largest `POST /dict` body, in bytes.
    #[arg(long, env = "FERRY_GATEWAY_MAX_DICT_BYTES")]
    pub max_dict_bytes: Option<usize>,
    /// Bytes of `POST /dict` bodies held in memory at once, all requests together.
    #[arg(long, env = "FERRY_GATEWAY_DICT_BUDGET")]
    pub dict_budget: Option<usize>,
    /// Largest `POST /file` body, in bytes.
    #[arg(long, env = "FERRY_GATEWAY_MAX_FILE_BYTES")]
    pub max_file_bytes: Option<u64>,
    /// Seconds a request (or, for files, a pause in the body, or a request's headers) may take.
    #[arg(long, env = "FERRY_GATEWAY_REQUEST_TIMEOUT")]
    pub request_timeout: Option<u64>,
    /// Seconds to wait for the server's answer.
    #[arg(long, env = "FERRY_GATEWAY_UPSTREAM_TIMEOUT")]
    pub upstream_timeout: Option<u64>,
    /// Requests per second per client address; 0 turns the limit off.
    #[arg(long, env = "FERRY_GATEWAY_RATE_LIMIT")]
    pub rate_limit: Option<u32>,
    /// Requests a client may send at once before the rate applies.
    #[arg(long, env = "FERRY_GATEWAY_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<u32>,
    /// Proxies whose X-Forwarded-For names the client (comma-separated addresses).
    #[arg(long, env = "FERRY_GATEWAY_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<IpAddr>>,
    /// Most bytes of a tus PATCH sent to the server as one append (what a cut request can lose).
    #[arg(long, env = "FERRY_GATEWAY_TUS_CHUNK_BYTES")]
    pub tus_chunk_bytes: Option<u64>,
    /// An origin browsers may call the gateway from (CORS), e.g. `https://app.example`; repeat it, or comma-separate in the environment; `*` is any. None: no CORS.
    #[arg(
        long = "cors-origin",
        env = "FERRY_GATEWAY_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Option<Vec<String>>,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, env = "FERRY_GATEWAY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "FERRY_GATEWAY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Every gateway setting, resolved.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    pub listen: SocketAddr,
    pub server: String,
    pub fernet_key: Option<PathBuf>,
    pub token: Option<Secret>,
    pub admin_url: String,
    pub pool_size: usize,
    pub max_dict_bytes: usize,
    pub dict_budget: usize,
    pub max_file_bytes: Option<u64>,
    pub request_timeout: u64,
    pub upstream_timeout: u64,
    pub rate_limit: u32,
    pub rate_limit_burst: u32,
    pub trusted_proxies: Vec<IpAddr>,
    pub tus_chunk_bytes: u64,
    pub cors_origins: Vec<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for GatewaySettings {
    /// The library's defaults ([`GatewayConfig`], [`ferry_gateway::DEFAULT_LISTEN`]),
    /// so that the binary and the crate never disagree.
    fn default() -> Self {
        let config = GatewayConfig::default();
        GatewaySettings {
            listen: ferry_gateway::DEFAULT_LISTEN,
            server: config.server,
            fernet_key: None,
            token: None,
            admin_url: config.admin_url,
            pool_size: config.pool_size,
            max_dict_bytes: config.max_dict_bytes,
            dict_budget: config.dict_budget,
            max_file_bytes: config.max_file_bytes,
            request_timeout: config.request_timeout.as_secs(),
            upstream_timeout: config.upstream_timeout.as_secs(),
            rate_limit: config.rate_limit.per_second,
            rate_limit_burst: config.rate_limit.burst,
            trusted_proxies: config.rate_limit.trusted_proxies,
            tus_chunk_bytes: config.tus_chunk_bytes,
            cors_origins: Vec::new(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl GatewaySettings {
    /// Resolves flags and environment over the config file over the defaults.
    pub fn resolve(args: &GatewayArgs) -> anyhow::Result<GatewaySettings> {
        layered(GatewaySettings::default(), args.config.as_deref(), args)
    }
}

/// A started gateway.
#[derive(Debug)]
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub tls: bool,
    pub task: JoinHandle<anyhow::Result<()>>,
}

/// Binds the HTTP listener and serves until `shutdown` is cancelled.
pub async fn start(
    settings: &GatewaySettings,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningGateway> {
    let fernet = crate::settings::load_fernet(settings.fernet_key.as_deref())?;
    let token = settings
        .token
        .as_ref()
        .map(|Secret(token)| BearerToken::parse(token))
        .transpose()
        .context("invalid gateway token")?;
    let cors_origins = settings
        .cors_origins
        .iter()
        .map(|origin| {
            axum::http::HeaderValue::try_from(origin.trim())
                .with_context(|| format!("invalid CORS origin {origin:?}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(
        settings.tus_chunk_bytes > 0,
        "tus_chunk_bytes must be at least 1"
    );
    let config = GatewayConfig {
        server: settings.server.clone(),
        fernet,
        token,
        admin_url: settings.admin_url.clone(),
        pool_size: settings.pool_size,
        max_dict_bytes: settings.max_dict_bytes,
        dict_budget: settings.dict_budget,
        max_file_bytes: settings.max_file_bytes,
        request_timeout: Duration::from_secs(settings.request_timeout),
        upstream_timeout: Duration::from_secs(settings.upstream_timeout),
        rate_limit: RateLimit {
            per_second: settings.rate_limit,
            burst: settings.rate_limit_burst,
            trusted_proxies: settings.trusted_proxies.clone(),
        },
        tus_chunk_bytes: settings.tus_chunk_bytes,
        cors_origins,
        metrics: crate::settings::prometheus(),
    };
    let tls = tls_files(
        settings.tls_cert.as_deref(),
        settings.tls_key.as_deref(),
        "gateway",
    )?;
    let listener = std::net::TcpListener::bind(settings.listen)
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let has_tls = tls.is_some();
    let options = ServeOptions {
        tls,
        header_timeout: config.request_timeout,
        drain: Some(ferry_gateway::SHUTDOWN_DRAIN),
    };
    let app = ferry_gateway::app(config);
    let task = tokio::spawn(async move {
        ferry_http::serve(
            listener,
            app,
            options,
            async move { shutdown.cancelled().await },
        )
        .await
        .context("gateway failed")
    });
    Ok(RunningGateway {
        addr,
        tls: has_tls,
        task,
    })
}

impl RunningGateway {
    /// The line a person (or a test) reads to find the gateway.
    pub fn announce(&self) {
        println!(
            "  gateway  {}://{}/",
            if self.tls { "https" } else { "http" },
            self.addr
        );
    }
}
