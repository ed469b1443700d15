//! The sweepers: the retention sweeper deletes expired items that are not on
//! legal hold ([`ferry_store::sweep_expired`]), the upload sweeper removes
//! unfinished uploads past their expiry; each once at start and then at an
//! interval, until shutdown.

use std::sync::Arc;
use std::time::Duration;

use ferry_store::{Retention, Store, sweep_expired};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// How often expired items are swept unless told otherwise.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Sweeps `store` under `retention` at once and then every `interval` (which must
/// not be zero), until `shutdown` is cancelled. A sweep cut short by shutdown
/// leaves the store consistent: each delete it began completes on its own. A
/// sweep that deleted something logs a summary line at info; one that failed
/// logs why at warn, and the next one goes on.
pub async fn sweep_periodically(
    store: Arc<dyn Store>,
    retention: Retention,
    interval: Duration,
    shutdown: CancellationToken,
) {
    tracing::info!(rules = %retention, ?interval, "sweeping expired items");
    periodically(interval, shutdown, || async {
        match sweep_expired(&*store, &retention, OffsetDateTime::now_utc()).await {
            Ok(swept) if swept.expired > 0 => tracing::info!(
                expired = swept.expired,
                held = swept.held,
                "retention sweep deleted expired items (held: items kept past their expiry)"
            ),
            Ok(swept) => tracing::debug!(held = swept.held, "retention sweep: nothing expired"),
            Err(err) => tracing::warn!(%err, "retention sweep failed; the next one tries again"),
        }
    })
    .await;
}

/// Removes the unfinished uploads of `store` that expired, at once and then
/// every `interval` (not zero), until `shutdown` is cancelled; each removal is
/// counted in `ferry_uploads_expired_total` by the store, and the gauge
/// `ferry_uploads_unfinished` says how many are left.
pub async fn expire_uploads_periodically(
    store: Arc<dyn Store>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    periodically(interval, shutdown, || async {
        match store.expire_uploads(OffsetDateTime::now_utc()).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "expired unfinished uploads removed"),
            Err(err) => {
                tracing::warn!(%err, "removing expired uploads failed; the next sweep tries again")
            }
        }
        if let Ok(left) = store.uploads().await {
            metrics::gauge!("ferry_uploads_unfinished").set(left.len() as f64);
        }
    })
    .await;
}

/// Runs `sweep` at once and then every `interval` until `shutdown`; a sweep cut
/// short by shutdown is dropped (each change it began completes on its own).
async fn periodically<F: Future<Output = ()>>(
    interval: Duration,
    shutdown: CancellationToken,
    mut sweep: impl FnMut() -> F,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => break,
        }
        tokio::select! {
            () = sweep() => {}
            () = shutdown.cancelled() => break,
        }
    }
}
