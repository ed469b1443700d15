//! The server's Prometheus metrics (recorded through the `metrics` facade; the
//! admin API installs the exporter).

use ferry_protocol::Meta;
use std::time::Duration;

/// Counts a finished transfer by its outcome: `ok`, `refused` (policy), `rejected`
/// (bad input), `failed` (the server's own failure) or `abandoned` (the peer left).
pub fn transfer(meta: Option<Meta>, outcome: &'static str, bytes: u64, elapsed: Duration) {
    let (data_type, format) = meta.map_or(("unknown", "unknown"), |m| {
        (m.data_type().as_str(), m.serialization().as_str())
    });
    let labels = [
        ("data_type", data_type),
        ("format", format),
        ("outcome", outcome),
    ];
    metrics::counter!("ferry_transfers_total", &labels).increment(1);
    metrics::counter!("ferry_received_bytes_total", &labels).increment(bytes);
    metrics::histogram!("ferry_transfer_duration_seconds", &labels).record(elapsed.as_secs_f64());
}

/// Counts an append of a resumable upload by its outcome: `ok` (committed),
/// `refused`, `failed` or `abandoned` (the connection was lost; nothing of it
/// was committed). Its bytes are counted as the item's only when the upload is
/// finished ([`transfer`]).
pub fn upload_append(outcome: &'static str, bytes: u64, elapsed: Duration) {
    let labels = [("outcome", outcome)];
    metrics::counter!("ferry_upload_appends_total", &labels).increment(1);
    metrics::counter!("ferry_upload_appended_bytes_total", &labels).increment(bytes);
    metrics::histogram!("ferry_upload_append_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
}

/// Tracks open connections while alive.
#[derive(Debug)]
pub struct OpenConnection;

impl OpenConnection {
    pub fn new() -> Self {
        metrics::gauge!("ferry_open_connections").increment(1.0);
        OpenConnection
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!("ferry_open_connections").decrement(1.0);
    }
}
