//! `ferry-server`: the TCP listener and the admin API in one process.

use crate::settings::{Secret, layered, tls_files};
use anyhow::Context;
use ferry_admin::AdminState;
use ferry_crypto::{CryptoError, FernetKey, Keyring, StorageKey};
use ferry_http::{BearerToken, ServeOptions};
use ferry_server::{EncryptionPolicy, ExportConfig, Outputs, ServerConfig, Shared};
use ferry_store::{
    LocalOptions, LocalStore, Notary, Retention, S3Location, S3Options, S3Store, Store, StoreError,
};
use ferry_tlog::Signer;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Flags of `ferry-server`; each also reads a `FERRY_…` environment variable.
/// Unset ones fall back to the config file, then to [`ServerSettings::default`].
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct ServerArgs {
    /// TOML file with any of these settings (keys as the flags, with `_`).
    #[arg(long, env = "FERRY_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// The legacy server's INI files (etc/default.ini, then etc/config.ini); repeatable, later ones win; everything else overrides them.
    #[arg(
        long = "legacy-config",
        env = "FERRY_LEGACY_CONFIG",
        value_delimiter = ','
    )]
    #[serde(skip)]
    pub legacy_config: Vec<PathBuf>,
    /// Address of the legacy TCP listener.
    #[arg(long, env = "FERRY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address of the admin HTTP API and page.
    #[arg(long, env = "FERRY_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Bearer token of the admin API (default: generated into DATA_DIR/admin.token).
    #[arg(long, env = "FERRY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
    /// File holding the admin API token (for example a container secret).
    #[arg(long, env = "FERRY_ADMIN_TOKEN_FILE", conflicts_with = "admin_token")]
    pub admin_token_file: Option<PathBuf>,
    /// PEM certificate chain: serve the admin API over HTTPS (with --admin-tls-key).
    #[arg(long, env = "FERRY_ADMIN_TLS_CERT", requires = "admin_tls_key")]
    pub admin_tls_cert: Option<PathBuf>,
    /// PEM private key for --admin-tls-cert.
    #[arg(long, env = "FERRY_ADMIN_TLS_KEY", requires = "admin_tls_cert")]
    pub admin_tls_key: Option<PathBuf>,
    /// Where items, keys and the admin token live.
    #[arg(long, env = "FERRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep items in an S3-compatible bucket, s3://BUCKET[/PREFIX], shared with other servers (endpoint, region and credentials from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ALLOW_HTTP); default: the local store in DATA_DIR/store.
    #[arg(long, env = "FERRY_STORE")]
    pub store: Option<String>,
    /// S3 store: milliseconds a group commit waits for more items after the first (0: only what arrives while the previous group is written).
    #[arg(long, env = "FERRY_S3_BATCH_WINDOW_MS")]
    pub s3_batch_window_ms: Option<u64>,
    /// S3 store: milliseconds between two reads of what other servers committed.
    #[arg(long, env = "FERRY_S3_POLL_INTERVAL_MS")]
    pub s3_poll_interval_ms: Option<u64>,
    /// S3 store: parts of one large item uploaded at once.
    #[arg(long, env = "FERRY_S3_UPLOAD_CONCURRENCY")]
    pub s3_upload_concurrency: Option<usize>,
    /// S3 store: milliseconds the leaves of this server's signed log gather in the commit log before they are copied into the log's own objects (one PUT a copy).
    #[arg(long, env = "FERRY_S3_LOG_COPY_MS")]
    pub s3_log_copy_ms: Option<u64>,
    /// S3 store: seconds between two compactions of the commit log (the space of deleted items comes back).
    #[arg(long, env = "FERRY_S3_COMPACT_INTERVAL_SECS")]
    pub s3_compact_interval_secs: Option<u64>,
    /// S3 store: seconds the log objects a compaction copied are kept after it (longer than any server lags behind).
    #[arg(long, env = "FERRY_S3_COMPACT_GRACE_SECS")]
    pub s3_compact_grace_secs: Option<u64>,
    /// Fernet key file shared with clients (created, mode 0600, when absent).
    #[arg(long, env = "FERRY_FERNET_KEY")]
    pub fernet_key: Option<PathBuf>,
    /// AES-256-GCM storage key file (created, mode 0600, when absent and every stored item opens without it).
    #[arg(long, env = "FERRY_STORAGE_KEY")]
    pub storage_key: Option<PathBuf>,
    /// Older storage key files, still read after a rotation (comma-separated).
    #[arg(long, env = "FERRY_OLD_STORAGE_KEYS", value_delimiter = ',')]
    pub old_storage_keys: Option<Vec<PathBuf>>,
    /// Start even if some stored items were sealed with keys not given: serve the others, touch nothing else.
    #[arg(long, env = "FERRY_ALLOW_MISSING_KEYS", num_args = 0..=1, default_missing_value = "true")]
    pub allow_missing_keys: Option<bool>,
    /// Encrypted transfers: disabled, accepted or required.
    #[arg(long, env = "FERRY_ENCRYPTION", value_parser = parse_policy)]
    pub encryption: Option<EncryptionPolicy>,
    /// Accept pickled dictionaries (decoded as data only, never run).
    #[arg(long, env = "FERRY_ALLOW_PICKLE")]
    pub allow_pickle: Option<bool>,
    /// Largest dictionary accepted, in bytes.
    #[arg(long, env = "FERRY_MAX_DICT_BYTES")]
    pub max_dict_bytes: Option<usize>,
    /// Deepest nesting accepted in a dictionary.
    #[arg(long, env = "FERRY_MAX_DEPTH")]
    pub max_depth: Option<usize>,
    /// Largest item accepted, in bytes (default: unlimited).
    #[arg(long, env = "FERRY_MAX_ITEM_BYTES")]
    pub max_item_bytes: Option<u64>,
    /// Seconds of silence after which a connection is dropped (TCP; admin API connections without a request).
    #[arg(long, env = "FERRY_IDLE_TIMEOUT")]
    pub idle_timeout: Option<u64>,
    /// Connections served at once; more wait.
    #[arg(long, env = "FERRY_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds that transfers in flight get to finish on shutdown.
    #[arg(long, env = "FERRY_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<u64>,
    /// Memory, in bytes, that all dictionaries in flight may hold together.
    #[arg(long, env = "FERRY_MAX_INFLIGHT_BYTES")]
    pub max_inflight_bytes: Option<usize>,
    /// Seconds a dictionary waits for room in that memory before it is refused.
    #[arg(long, env = "FERRY_INFLIGHT_WAIT")]
    pub inflight_wait: Option<u64>,
    /// Memory, in bytes, that all large items being written may hold together
    /// (about 4.4 MiB each on the local store, `s3_upload_concurrency` + 1 parts of
    /// 5 MiB each on the S3 store); a large item beyond it waits for one to end.
    #[arg(long, env = "FERRY_LARGE_ITEM_MEMORY")]
    pub large_item_memory: Option<usize>,
    /// Print each item on stdout, like the legacy server.
    #[arg(long, env = "FERRY_PRINT", num_args = 0..=1, default_missing_value = "true")]
    pub print: Option<bool>,
    /// Also write each item's plaintext to this directory, one file per transfer.
    #[arg(long, env = "FERRY_EXPORT_DIR")]
    pub export_dir: Option<PathBuf>,
    /// File name template for exports: {source} {timestamp} {format} {id} {name}.
    #[arg(long, env = "FERRY_EXPORT_TEMPLATE")]
    pub export_template: Option<String>,
    /// Export dictionaries in their original form instead of indented JSON.
    #[arg(long, env = "FERRY_EXPORT_ORIGINAL", num_args = 0..=1, default_missing_value = "true")]
    pub export_original: Option<bool>,
    /// Serve /metrics without the admin token.
    #[arg(long, env = "FERRY_METRICS_PUBLIC", num_args = 0..=1, default_missing_value = "true")]
    pub metrics_public: Option<bool>,
    /// Admin API requests per second per client address; 0 turns the limit off.
    #[arg(long, env = "FERRY_ADMIN_RATE_LIMIT")]
    pub admin_rate_limit: Option<u32>,
    /// Admin API requests a client may send at once before the rate applies.
    #[arg(long, env = "FERRY_ADMIN_RATE_LIMIT_BURST")]
    pub admin_rate_limit_burst: Option<u32>,
    /// Proxies whose X-Forwarded-For names the admin API's client (comma-separated addresses).
    #[arg(long, env = "FERRY_ADMIN_TRUSTED_PROXIES", value_delimiter = ',')]
    pub admin_trusted_proxies: Option<Vec<IpAddr>>,
    /// Most TCP connections open at once from one client address; 0: no limit.
    #[arg(long, env = "FERRY_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<u32>,
    /// New TCP connections per second from one client address; 0: no limit.
    #[arg(long, env = "FERRY_NEW_CONNECTIONS_PER_IP")]
    pub new_connections_per_ip: Option<u32>,
    /// How long items are kept, by kind and format: dict=30d,text=7d,dict.json=1d (the most specific rule wins); unset: until deleted. Held items are kept.
    #[arg(long, env = "FERRY_RETENTION")]
    pub retention: Option<Retention>,
    /// Seconds between two sweeps of expired items (the first at start).
    #[arg(long, env = "FERRY_RETENTION_SWEEP_INTERVAL")]
    pub retention_sweep_interval: Option<u64>,
    /// Seconds an unfinished resumable upload is kept without new bytes before it expires (its staged data removed).
    #[arg(long, env = "FERRY_UPLOAD_TTL")]
    pub upload_ttl: Option<u64>,
    /// Keep the signed, tamper-evident log of what happens to items, and give every stored item a receipt.
    #[arg(long, env = "FERRY_TLOG", num_args = 0..=1, default_missing_value = "true")]
    pub tlog: Option<bool>,
    /// Ed25519 key file that signs the log's checkpoints and receipts (created, mode 0600, when absent; default DATA_DIR/tlog.key).
    #[arg(long, env = "FERRY_TLOG_KEY")]
    pub tlog_key: Option<PathBuf>,
    /// The log's name when its key is created (default: ferry/HOSTNAME); a key file keeps its own.
    #[arg(long, env = "FERRY_TLOG_ORIGIN")]
    pub tlog_origin: Option<String>,
    /// Milliseconds between two signed checkpoints of the log (at most; none when nothing changed).
    #[arg(long, env = "FERRY_CHECKPOINT_INTERVAL_MS")]
    pub checkpoint_interval_ms: Option<u64>,
}

fn parse_policy(text: &str) -> Result<EncryptionPolicy, String> {
    match text {
        "disabled" => Ok(EncryptionPolicy::Disabled),
        "accepted" => Ok(EncryptionPolicy::Accepted),
        "required" => Ok(EncryptionPolicy::Required),
        other => Err(format!(
            "expected disabled, accepted or required, not {other:?}"
        )),
    }
}

/// Every server setting, resolved.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub admin_token: Option<Secret>,
    pub admin_token_file: Option<PathBuf>,
    pub admin_tls_cert: Option<PathBuf>,
    pub admin_tls_key: Option<PathBuf>,
    pub data_dir: PathBuf,
    /// `s3://BUCKET[/PREFIX]`, or `None` for the local store.
    pub store: Option<String>,
    pub s3_batch_window_ms: u64,
    pub s3_poll_interval_ms: u64,
    pub s3_upload_concurrency: usize,
    pub s3_log_copy_ms: u64,
    pub s3_compact_interval_secs: u64,
    pub s3_compact_grace_secs: u64,
    pub fernet_key: Option<PathBuf>,
    pub storage_key: Option<PathBuf>,
    pub old_storage_keys: Vec<PathBuf>,
    pub allow_missing_keys: bool,
    pub encryption: EncryptionPolicy,
    pub allow_pickle: bool,
    pub max_dict_bytes: usize,
    pub max_depth: usize,
    pub max_item_bytes: Option<u64>,
    pub idle_timeout: u64,
    pub max_connections: usize,
    pub shutdown_grace: u64,
    pub max_inflight_bytes: usize,
    pub inflight_wait: u64,
    pub large_item_memory: usize,
    pub print: bool,
    pub export_dir: Option<PathBuf>,
    pub export_template: String,
    pub export_original: bool,
    pub metrics_public: bool,
    pub admin_rate_limit: u32,
    pub admin_rate_limit_burst: u32,
    pub admin_trusted_proxies: Vec<IpAddr>,
    pub max_connections_per_ip: u32,
    pub new_connections_per_ip: u32,
    /// The text `dict=30d,text=7d`, or a table `[retention]` of the same rules.
    pub retention: Option<Retention>,
    pub retention_sweep_interval: u64,
    pub upload_ttl: u64,
    pub tlog: bool,
    pub tlog_key: Option<PathBuf>,
    pub tlog_origin: Option<String>,
    pub checkpoint_interval_ms: u64,
}

impl Default for ServerSettings {
    /// The libraries' defaults ([`ServerConfig`], [`LocalOptions`], the admin API's
    /// address), so that the binary and the crates never disagree.
    fn default() -> Self {
        let config = ServerConfig::default();
        let store = LocalOptions::default();
        let s3 = S3Options::default();
        let admin_limit = ferry_http::RateLimit::default();
        ServerSettings {
            listen: ferry_server::DEFAULT_LISTEN,
            admin_listen: ferry_admin::DEFAULT_LISTEN,
            admin_token: None,
            admin_token_file: None,
            admin_tls_cert: None,
            admin_tls_key: None,
            data_dir: PathBuf::from("ferry-data"),
            store: None,
            s3_batch_window_ms: s3.batch_window.as_millis() as u64,
            s3_poll_interval_ms: s3.poll_interval.as_millis() as u64,
            s3_upload_concurrency: s3.upload_concurrency,
            s3_log_copy_ms: s3.ledger_copy_delay.as_millis() as u64,
            s3_compact_interval_secs: s3.compact_interval.as_secs(),
            s3_compact_grace_secs: s3.compact_grace.as_secs(),
            fernet_key: None,
            storage_key: None,
            old_storage_keys: Vec::new(),
            allow_missing_keys: store.allow_missing_keys,
            encryption: config.encryption,
            allow_pickle: config.allow_pickle,
            max_dict_bytes: config.dict_limits.max_bytes,
            max_depth: config.dict_limits.max_depth,
            max_item_bytes: store.max_item_size,
            idle_timeout: config.idle_timeout.as_secs(),
            max_connections: config.max_connections,
            shutdown_grace: config.shutdown_grace.as_secs(),
            max_inflight_bytes: config.max_inflight_bytes,
            inflight_wait: config.inflight_wait.as_secs(),
            large_item_memory: store.large_item_memory,
            print: false,
            export_dir: None,
            export_template: ferry_server::DEFAULT_EXPORT_TEMPLATE.into(),
            export_original: false,
            metrics_public: false,
            admin_rate_limit: admin_limit.per_second,
            admin_rate_limit_burst: admin_limit.burst,
            admin_trusted_proxies: admin_limit.trusted_proxies,
            max_connections_per_ip: config.max_connections_per_ip,
            new_connections_per_ip: config.new_connections_per_ip,
            retention: None,
            retention_sweep_interval: ferry_server::DEFAULT_SWEEP_INTERVAL.as_secs(),
            upload_ttl: store.upload_ttl.as_secs(),
            tlog: store.ledger,
            tlog_key: None,
            tlog_origin: None,
            checkpoint_interval_ms: 1000,
        }
    }
}

impl ServerSettings {
    /// Resolves flags and environment over the config file over the legacy
    /// config files over the defaults.
    pub fn resolve(args: &ServerArgs) -> anyhow::Result<ServerSettings> {
        let defaults = crate::legacy_config::apply(ServerSettings::default(), &args.legacy_config)?;
        layered(defaults, args.config.as_deref(), args)
    }

    fn fernet_key_path(&self) -> PathBuf {
        self.fernet_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join("fernet.key"))
    }

    fn tlog_key_path(&self) -> PathBuf {
        self.tlog_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join("tlog.key"))
    }

    fn storage_key_path(&self) -> PathBuf {
        self.storage_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join("storage.key"))
    }
}

/// Opens the store: the S3 store `--store` names, or the local store in
/// `DATA_DIR/store`, with `keys`.
async fn open_store(settings: &ServerSettings, keys: &Keys) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(store) = &settings.store {
        return open_s3_store(settings, keys, store).await;
    }
    let options = LocalOptions {
        max_item_size: settings.max_item_bytes,
        allow_missing_keys: settings.allow_missing_keys,
        ledger: settings.tlog,
        upload_ttl: Duration::from_secs(settings.upload_ttl),
        large_item_memory: settings.large_item_memory,
        ..LocalOptions::default()
    };
    let store_dir = settings.data_dir.join("store");
    match LocalStore::open(&store_dir, keys.keyring.clone(), options).await {
        Ok(store) => Ok(store),
        Err(StoreError::MissingKeys { key_ids, records }) => {
            anyhow::bail!(keys.missing(&store_dir, &key_ids, records))
        }
        Err(err @ StoreError::Locked(_)) => Err(err).context(
            "cannot open the store: a server is running on it (stop it, or ask it with POST /api/log/verify)",
        ),
        Err(err) => Err(err).context("cannot open the store"),
    }
}

/// Opens the S3 store at `location` with `keys`.
async fn open_s3_store(
    settings: &ServerSettings,
    keys: &Keys,
    location: &str,
) -> anyhow::Result<Arc<dyn Store>> {
    let location: S3Location = location
        .parse()
        .map_err(|why: String| anyhow::anyhow!("--store: {why}"))?;
    anyhow::ensure!(
        settings.s3_poll_interval_ms > 0
            && settings.s3_upload_concurrency > 0
            && settings.s3_compact_interval_secs > 0,
        "s3_poll_interval_ms, s3_upload_concurrency and s3_compact_interval_secs must be at least 1"
    );
    let options = S3Options {
        max_item_size: settings.max_item_bytes,
        allow_missing_keys: settings.allow_missing_keys,
        batch_window: Duration::from_millis(settings.s3_batch_window_ms),
        poll_interval: Duration::from_millis(settings.s3_poll_interval_ms),
        upload_concurrency: settings.s3_upload_concurrency,
        upload_memory: settings.large_item_memory,
        ledger_copy_delay: Duration::from_millis(settings.s3_log_copy_ms),
        compact_interval: Duration::from_secs(settings.s3_compact_interval_secs),
        compact_grace: Duration::from_secs(settings.s3_compact_grace_secs),
        view_dir: Some(
            settings
                .data_dir
                .join("s3-view")
                .join(location.view_dir_name()),
        ),
        ..S3Options::default()
    };
    // Each server keeps its own log in the bucket, named by its signing key.
    let options = S3Options {
        ledger: match settings.tlog {
            true => Some(hex::encode(
                load_signer(settings)?.verifier().public_key().as_bytes(),
            )),
            false => None,
        },
        ..options
    };
    match S3Store::open(&location, keys.keyring.clone(), options).await {
        Ok(store) => Ok(store),
        Err(StoreError::MissingKeys { key_ids, records }) => {
            anyhow::bail!(keys.missing(Path::new(&location.to_string()), &key_ids, records))
        }
        Err(err) => Err(err).with_context(|| {
            format!(
                "cannot open the S3 store {location}: check that the bucket exists and AWS_ENDPOINT_URL, AWS_REGION and the credentials"
            )
        }),
    }
}

/// `ferry-server verify-log`: opens the store (the server must be stopped),
/// checks its log against the last signed checkpoint and prints what it found.
/// `Ok(true)` when the log verifies.
pub async fn verify_log(settings: &ServerSettings) -> anyhow::Result<bool> {
    anyhow::ensure!(
        settings.tlog,
        "the log is turned off (--tlog false): nothing to verify"
    );
    let keys = Keys::load(settings)?;
    // Loaded first: the S3 store finds this server's log by its key.
    let path = settings.tlog_key_path();
    let signer = Signer::load_key_file(&path)
        .with_context(|| format!("cannot load the log's signing key {}", path.display()))?;
    let store = open_store(settings, &keys).await?;
    let ledger = store.ledger().context("the store keeps no log")?;
    let read_at_open = ledger.read_at_open();
    let notary = Notary::start(signer, ledger)
        .await
        .context("cannot read the store's log")?;
    // An open from the tree saved at close read only the last segment: read
    // every leaf now, as the check in the background would.
    let check = match read_at_open {
        true => notary.health(),
        false => notary
            .check()
            .await
            .context("cannot read the store's log")?,
    };
    println!("log:        {}", notary.origin());
    println!("key:        {}", notary.verifier());
    println!("leaves:     {}", check.size);
    match check.checkpoint_size {
        Some(size) => println!("checkpoint: {size} leaves (the last signed one)"),
        None => println!("checkpoint: none saved yet"),
    }
    if check.ok {
        println!("ok: the leaves match the last signed checkpoint");
    } else {
        for problem in &check.problems {
            println!("PROBLEM: {problem}");
        }
        match settings.store {
            Some(_) => println!(
                "FAILED: the log does not verify; restore this server's ledger/ objects in the bucket from a backup"
            ),
            None => println!(
                "FAILED: the log does not verify; restore DATA_DIR/store/ledger from a backup"
            ),
        }
    }
    Ok(check.ok)
}

/// `ferry-server log-key`: prints the log's public key (creating the key,
/// mode 0600, if there is none yet).
pub fn log_key(settings: &ServerSettings) -> anyhow::Result<()> {
    create_private_dir(&settings.data_dir)?;
    println!("{}", load_signer(settings)?.verifier());
    Ok(())
}

/// Loads (or creates, mode 0600) the log's signing key and starts its notary,
/// which checks the log against its last checkpoint.
async fn start_notary(
    settings: &ServerSettings,
    ledger: Arc<dyn ferry_store::Ledger>,
) -> anyhow::Result<Arc<Notary>> {
    anyhow::ensure!(
        settings.checkpoint_interval_ms > 0,
        "checkpoint_interval_ms must be at least 1"
    );
    let signer = load_signer(settings)?;
    if settings
        .tlog_origin
        .as_deref()
        .is_some_and(|o| o != signer.name())
    {
        tracing::warn!(
            key = signer.name(),
            "the log's key file names another origin than --tlog-origin; the key file's is used"
        );
    }
    tracing::info!(verifier = %signer.verifier(), "receipts and checkpoints verify with this key");
    Notary::start(signer, ledger)
        .await
        .context("cannot check the store's log")
}

/// Loads the log's signing key, or creates it (mode 0600) if there is none.
fn load_signer(settings: &ServerSettings) -> anyhow::Result<Signer> {
    let path = settings.tlog_key_path();
    let origin = settings.tlog_origin.clone().unwrap_or_else(default_origin);
    let (signer, created) = Signer::load_or_create_key_file(&path, &origin).with_context(|| {
        format!(
            "cannot load or create the log's signing key {}",
            path.display()
        )
    })?;
    if created {
        tracing::info!(file = %path.display(), "created the log's signing key (mode 0600)");
    }
    Ok(signer)
}

/// `ferry/<host name>`: a key name has no white space and no `+`.
fn default_origin() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '+' {
                '-'
            } else {
                c
            }
        })
        .collect();
    format!("ferry/{host}")
}

/// A started server: where it listens, and the task that runs it.
#[derive(Debug)]
pub struct RunningServer {
    pub tcp: SocketAddr,
    pub admin: SocketAddr,
    /// Whether the admin API speaks HTTPS.
    pub admin_https: bool,
    pub token_file: Option<PathBuf>,
    pub fernet_key_file: Option<PathBuf>,
    pub task: JoinHandle<anyhow::Result<()>>,
}

/// Opens the store, loads or creates keys, binds both listeners and starts serving
/// until `shutdown` is cancelled.
pub async fn start(
    settings: &ServerSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningServer> {
    anyhow::ensure!(
        settings.retention_sweep_interval > 0,
        "retention_sweep_interval must be at least 1 (second)"
    );
    anyhow::ensure!(
        settings.upload_ttl > 0,
        "upload_ttl must be at least 1 (second)"
    );
    create_private_dir(&settings.data_dir)?;
    let fernet = match settings.encryption {
        EncryptionPolicy::Disabled => None,
        _ => Some(Arc::new(load_key(
            &settings.fernet_key_path(),
            "Fernet",
            FernetKey::load_or_create,
        )?)),
    };
    let keys = Keys::load(settings)?;
    // Before the store and its log, whose checks at start set metrics.
    let metrics = crate::settings::prometheus();
    let store = open_store(settings, &keys).await?;
    keys.create_new()?;
    let notary = match store.ledger() {
        Some(ledger) => Some(start_notary(settings, ledger).await?),
        None => None,
    };

    let (token, token_file) = match &settings.admin_token {
        Some(Secret(token)) => (
            BearerToken::parse(token).context("invalid admin token")?,
            None,
        ),
        None => {
            let (token, file, generated) = ferry_admin::load_or_generate_token(&settings.data_dir)
                .context("cannot load the admin token")?;
            if generated {
                tracing::info!(file = %file.display(), "generated an admin API token; read it from this file");
            }
            (token, Some(file))
        }
    };

    let config = ServerConfig {
        encryption: settings.encryption,
        allow_pickle: settings.allow_pickle,
        dict_limits: ferry_codec::Limits {
            max_bytes: settings.max_dict_bytes,
            max_depth: settings.max_depth,
        },
        idle_timeout: Duration::from_secs(settings.idle_timeout),
        max_connections: settings.max_connections,
        max_connections_per_ip: settings.max_connections_per_ip,
        new_connections_per_ip: settings.new_connections_per_ip,
        shutdown_grace: Duration::from_secs(settings.shutdown_grace),
        max_inflight_bytes: settings.max_inflight_bytes,
        inflight_wait: Duration::from_secs(settings.inflight_wait),
    };
    let export = settings.export_dir.clone().map(|dir| ExportConfig {
        dir,
        template: settings.export_template.clone(),
        original_form: settings.export_original,
    });
    let outputs = Outputs::new(settings.print, export);
    let shared = Arc::new(Shared::new(
        config,
        fernet,
        store.clone(),
        outputs,
        notary.clone(),
    ));

    let tcp_listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let admin_tls = tls_files(
        settings.admin_tls_cert.as_deref(),
        settings.admin_tls_key.as_deref(),
        "admin API",
    )?;
    let admin_listener = std::net::TcpListener::bind(settings.admin_listen)
        .with_context(|| format!("cannot listen on {}", settings.admin_listen))?;
    let tcp = tcp_listener.local_addr()?;
    let admin = admin_listener.local_addr()?;
    let retention = settings.retention.clone().unwrap_or_default();
    let sweeper = (!retention.is_empty()).then(|| {
        tokio::spawn(ferry_server::sweep_periodically(
            store.clone(),
            retention.clone(),
            Duration::from_secs(settings.retention_sweep_interval),
            shutdown.clone(),
        ))
    });
    let upload_sweeper = tokio::spawn(ferry_server::expire_uploads_periodically(
        store.clone(),
        Duration::from_secs(settings.retention_sweep_interval),
        shutdown.clone(),
    ));
    let app = ferry_admin::app(AdminState {
        store,
        token,
        metrics,
        metrics_public: settings.metrics_public,
        rate_limit: ferry_http::RateLimit {
            per_second: settings.admin_rate_limit,
            burst: settings.admin_rate_limit_burst,
            trusted_proxies: settings.admin_trusted_proxies.clone(),
        },
        retention,
        notary: notary.clone(),
    });
    let publisher = notary.map(|notary| {
        tokio::spawn(notary.publish_periodically(
            Duration::from_millis(settings.checkpoint_interval_ms),
            shutdown.clone(),
        ))
    });

    let admin_shutdown = shutdown.clone();
    let admin_https = admin_tls.is_some();
    // The admin API drops a connection that has not sent a request's headers
    // within the idle timeout, like the TCP listener drops a silent peer.
    let options = ServeOptions {
        tls: admin_tls,
        header_timeout: Duration::from_secs(settings.idle_timeout),
        drain: None,
    };
    let task = tokio::spawn(async move {
        let admin_task = tokio::spawn(ferry_admin::serve(
            admin_listener,
            app,
            options,
            async move { admin_shutdown.cancelled().await },
        ));
        ferry_server::serve(tcp_listener, shared, shutdown).await;
        admin_task
            .await
            .context("admin API task failed")?
            .context("admin API failed")?;
        if let Some(sweeper) = sweeper {
            sweeper.await.context("retention sweeper failed")?;
        }
        upload_sweeper.await.context("upload sweeper failed")?;
        if let Some(publisher) = publisher {
            publisher.await.context("checkpoint publisher failed")?;
        }
        Ok(())
    });
    let fernet_key_file =
        (settings.encryption != EncryptionPolicy::Disabled).then(|| settings.fernet_key_path());
    Ok(RunningServer {
        tcp,
        admin,
        admin_https,
        token_file,
        fernet_key_file,
        task,
    })
}

impl RunningServer {
    /// The admin API's base URL.
    pub fn admin_url(&self) -> String {
        let scheme = if self.admin_https { "https" } else { "http" };
        format!("{scheme}://{}", self.admin)
    }

    /// The lines a person (or a test) reads to find the listeners.
    pub fn announce(&self) {
        println!("  tcp      {}", self.tcp);
        println!("  admin    {}/", self.admin_url());
        if let Some(file) = &self.token_file {
            println!("  token    {}", file.display());
        }
        if let Some(file) = &self.fernet_key_file {
            println!("  key      {}", file.display());
        }
    }
}

/// The storage keys given. A current key file that does not exist is created
/// only once the store has opened without it (see [`Keys::create_new`]): a store
/// that holds items never gets a new key silently.
struct Keys {
    keyring: Keyring,
    current: PathBuf,
    /// The current key file does not exist: `keyring`'s current key is new.
    new: bool,
    older: Vec<PathBuf>,
}

impl Keys {
    fn load(settings: &ServerSettings) -> anyhow::Result<Keys> {
        let current = settings.storage_key_path();
        let (key, new) = match StorageKey::load(&current) {
            Ok(key) => (key, false),
            Err(CryptoError::KeyFile { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                (StorageKey::generate(), true)
            }
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("cannot load the storage key {}", current.display()));
            }
        };
        let older = settings
            .old_storage_keys
            .iter()
            .map(|path| {
                StorageKey::load(path)
                    .with_context(|| format!("cannot read old storage key {}", path.display()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Keys {
            keyring: Keyring::new(key, older),
            current,
            new,
            older: settings.old_storage_keys.clone(),
        })
    }

    /// Writes the current key's file if it is new (the store opened without it).
    fn create_new(&self) -> anyhow::Result<()> {
        if self.new {
            self.keyring
                .current()
                .create_file(&self.current)
                .with_context(|| {
                    format!("cannot create the storage key {}", self.current.display())
                })?;
            tracing::info!(file = %self.current.display(), "created a new storage key (mode 0600)");
        }
        Ok(())
    }

    /// Why the server does not start when the store holds `records` items
    /// sealed with the keys `needed`, and what to do.
    fn missing(&self, store: &Path, needed: &[String], records: usize) -> String {
        let given = if self.new {
            format!(
                "The storage key file {} does not exist; no new key was created, since the store already holds items.",
                self.current.display()
            )
        } else {
            let mut given = format!(
                "The storage key given, {}, is key {}",
                self.current.display(),
                self.keyring.current().id()
            );
            for path in &self.older {
                let id = StorageKey::load(path)
                    .map(|k| k.id().to_owned())
                    .unwrap_or_default();
                given.push_str(&format!("; {} is key {id}", path.display()));
            }
            given + "."
        };
        format!(
            "not starting: the store {} holds {records} items sealed with storage keys that were not given: {}. {given} \
             Nothing was changed. Give the key file of each: --storage-key FILE (FERRY_STORAGE_KEY) for the current key, \
             --old-storage-keys FILE,... (FERRY_OLD_STORAGE_KEYS) for older ones. To start anyway, serving only the items \
             the given keys read and touching nothing else, set --allow-missing-keys (FERRY_ALLOW_MISSING_KEYS=true, \
             allow_missing_keys = true in the config file).",
            store.display(),
            needed.join(", ")
        )
    }
}

fn load_key<K, E>(
    path: &Path,
    what: &str,
    load_or_create: impl FnOnce(&Path) -> Result<(K, bool), E>,
) -> anyhow::Result<K>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let (key, created) = load_or_create(path)
        .with_context(|| format!("cannot load the {what} key {}", path.display()))?;
    if created {
        tracing::info!(file = %path.display(), "created a new {what} key (mode 0600)");
    }
    Ok(key)
}

/// Creates the data directory (and missing parents) with mode 0700, each made
/// durable in its parent, so that a first start's keys and items do not hang
/// off a directory entry that a crash could lose.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let missing: Vec<&Path> = dir.ancestors().take_while(|p| !p.exists()).collect();
    for path in missing.into_iter().rev() {
        match std::fs::DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("cannot create the data directory {}", dir.display())
                });
            }
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync the directory {}", parent.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::{DataType, Serialization};

    fn resolve(toml: &str, args: ServerArgs) -> anyhow::Result<ServerSettings> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ferry.toml");
        std::fs::write(&file, toml).unwrap();
        ServerSettings::resolve(&ServerArgs {
            config: Some(file),
            ..args
        })
    }

    fn keep(settings: &ServerSettings, data_type: DataType, format: Serialization) -> Option<u64> {
        let retention = settings.retention.as_ref()?;
        retention.keep(data_type, format).map(|d| d.as_secs())
    }

    /// Retention reads from the file as text or as a table, and a flag (or the
    /// environment) replaces the file's rules whole.
    #[test]
    fn retention_is_text_or_a_table_in_the_file_and_a_flag_overrides_it() {
        let defaults = ServerSettings::resolve(&ServerArgs::default()).unwrap();
        assert!(defaults.retention.is_none());
        assert_eq!(defaults.retention_sweep_interval, 60);

        let text = resolve(
            "retention = \"dict=30d,text=7d\"\nretention_sweep_interval = 5\n",
            ServerArgs::default(),
        )
        .unwrap();
        assert_eq!(
            keep(&text, DataType::Text, Serialization::Txt),
            Some(7 * 86_400)
        );
        assert_eq!(text.retention_sweep_interval, 5);

        let table = "[retention]\ndict = \"30d\"\n\"dict.json\" = \"1d\"\n";
        let table_settings = resolve(table, ServerArgs::default()).unwrap();
        let json = keep(&table_settings, DataType::Dictionary, Serialization::Json);
        assert_eq!(json, Some(86_400));
        let xml = keep(&table_settings, DataType::Dictionary, Serialization::Xml);
        assert_eq!(xml, Some(30 * 86_400));
        assert_eq!(
            keep(&table_settings, DataType::Text, Serialization::Txt),
            None
        );

        let flag = ServerArgs {
            retention: Some("text=1h".parse().unwrap()),
            ..ServerArgs::default()
        };
        let overridden = resolve(table, flag).unwrap();
        let dict = keep(&overridden, DataType::Dictionary, Serialization::Json);
        assert_eq!(dict, None, "the flag's rules replace the file's");
        let text = keep(&overridden, DataType::Text, Serialization::Txt);
        assert_eq!(text, Some(3600));

        let err = resolve("retention = \"dict=0s\"\n", ServerArgs::default()).unwrap_err();
        assert!(err.to_string().contains("longer than zero"), "{err}");
    }
}
