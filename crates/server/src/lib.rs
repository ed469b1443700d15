//! The Ferry TCP server: speaks the legacy protocol on a listener it is given, checks
//! and decodes every transfer, and stores each item durably and encrypted before it
//! answers `OK`.
//!
//! [`serve`] takes an already-bound listener (port 0 in tests), caps concurrent
//! connections, and stops on a cancellation token: it stops accepting, lets
//! transfers in flight finish within the grace period, and aborts the rest, which
//! leaves nothing partial in the store.

mod append;
mod budget;
mod config;
mod connection;
mod error;
mod metrics;
mod outputs;
mod per_ip;
mod progress;
mod retention;
mod transfer;
mod upload;

pub use budget::FREE_BYTES;
pub use config::{
    DEFAULT_EXPORT_TEMPLATE, DEFAULT_LISTEN, EncryptionPolicy, ExportConfig, ServerConfig,
};
pub use error::TransferError;
pub use outputs::{Outputs, render_template};
pub use retention::{DEFAULT_SWEEP_INTERVAL, expire_uploads_periodically, sweep_periodically};

use ferry_crypto::FernetKey;
use ferry_store::{Notary, Store};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What every connection shares.
pub struct Shared {
    config: ServerConfig,
    fernet: Option<Arc<FernetKey>>,
    store: Arc<dyn Store>,
    outputs: Option<Outputs>,
    /// Signs each stored item's receipt, when the store keeps a log.
    notary: Option<Arc<Notary>>,
    budget: budget::MemoryBudget,
    /// Turns to decode a large dictionary (a decoded one takes a few times its size).
    decoding: Semaphore,
    /// The resumable uploads finished lately, for a `finish` asked again.
    finished: upload::RecentlyFinished,
}

impl Shared {
    /// What the connections of one server share: its settings, the Fernet key
    /// (`None` when encryption is disabled), the store and the legacy outputs.
    pub fn new(
        config: ServerConfig,
        fernet: Option<Arc<FernetKey>>,
        store: Arc<dyn Store>,
        outputs: Option<Outputs>,
        notary: Option<Arc<Notary>>,
    ) -> Shared {
        let budget = budget::MemoryBudget::new(config.max_inflight_bytes, config.inflight_wait);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Shared {
            config,
            fernet,
            store,
            outputs,
            notary,
            budget,
            decoding: Semaphore::new(cores),
            finished: upload::RecentlyFinished::default(),
        }
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("encryption_key", &self.fernet.is_some())
            .finish_non_exhaustive()
    }
}

/// Accepts connections on `listener` until `shutdown` is cancelled, then drains.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    let permits = Arc::new(Semaphore::new(shared.config.max_connections));
    let per_ip = per_ip::PerIp::new(
        shared.config.max_connections_per_ip,
        shared.config.new_connections_per_ip,
    );
    let mut forget = tokio::time::interval(std::time::Duration::from_secs(60));
    let tasks = TaskTracker::new();
    let aborts = CancellationToken::new();
    let mut backoff = std::time::Duration::from_millis(5);
    'serving: loop {
        // Waiting for a permit before accepting leaves extra connections queued in
        // the kernel's backlog: they wait, and the ones inside keep being served.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = shutdown.cancelled() => break,
        };
        let accepted = loop {
            tokio::select! {
                accepted = listener.accept() => break accepted,
                _ = forget.tick() => per_ip.forget_idle(),
                () = shutdown.cancelled() => break 'serving,
            }
        };
        let (stream, peer) = match accepted {
            Ok(pair) => {
                backoff = std::time::Duration::from_millis(5);
                pair
            }
            Err(err) => {
                tracing::warn!(error = %err, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                continue;
            }
        };
        let admitted = match per_ip.admit(peer.ip().to_canonical()) {
            Ok(admitted) => admitted,
            Err(why) => {
                tasks.spawn(async move {
                    let _permit = permit;
                    per_ip::refuse(stream, peer, why).await;
                });
                continue;
            }
        };
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        let aborts = aborts.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let _admitted = admitted;
            tokio::select! {
                () = connection::handle(stream, peer, shared, shutdown) => {}
                () = aborts.cancelled() => tracing::warn!(%peer, "connection aborted at the end of the shutdown grace period"),
            }
        });
    }
    drop(listener);
    tasks.close();
    let grace = shared.config.shutdown_grace;
    tracing::info!(
        connections = tasks.len(),
        ?grace,
        "stopped accepting; letting transfers in flight finish"
    );
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        aborts.cancel();
        tasks.wait().await;
    }
}
