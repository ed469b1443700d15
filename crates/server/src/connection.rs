//! One client connection: read packets, drive transfers, write replies.
//!
//! Refusals that keep the framing intact are answered once per transfer and the
//! connection stays usable; a broken framing is answered with `ERROR: …` and the
//! connection is closed. A peer that goes quiet for the idle timeout, or vanishes
//! mid-transfer, is dropped, and its unfinished item is discarded by the store.

use crate::metrics::OpenConnection;
use crate::progress::Progress;
use crate::transfer::Transfer;
use crate::{Shared, TransferError};
use bytes::BytesMut;
use ferry_protocol::{
    Decoder, ExtendedReply, ProtocolError, Reply, TransferEvent, TransferTracker,
};
use ferry_store::{ItemMeta, Notary};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const READ_CHUNK: usize = 64 * 1024;

/// Serves one connection until END, an error, the idle timeout, or shutdown.
pub(crate) async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let _open = OpenConnection::new();
    let _ = stream.set_nodelay(true);
    let mut connection = Connection {
        stream,
        peer,
        shared,
        buf: BytesMut::with_capacity(READ_CHUNK),
        tracker: TransferTracker::new(),
        transfer: None,
        extended: false,
    };
    tracing::debug!(%peer, "connection opened");
    match connection.run(&shutdown).await {
        Ok(end) => tracing::debug!(%peer, ?end, "connection closed"),
        Err(err) => tracing::info!(%peer, error = %err, "connection dropped"),
    }
}

/// Why a connection ended normally.
#[derive(Debug)]
enum Ending {
    End,
    PeerClosed,
    IdleTimeout,
    TooSlow,
    Shutdown,
    ProtocolError,
}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    buf: BytesMut,
    tracker: TransferTracker,
    transfer: Option<Transfer>,
    extended: bool,
}

impl Connection {
    async fn run(&mut self, shutdown: &CancellationToken) -> std::io::Result<Ending> {
        let mut progress = Progress::new(self.shared.config.idle_timeout);
        loop {
            while let Some(frame) = match Decoder.decode(&mut self.buf) {
                Ok(frame) => frame,
                Err(err) => return self.protocol_error(err).await,
            } {
                let events = match self.tracker.accept(frame) {
                    Ok(events) => events,
                    Err(err) => return self.protocol_error(err).await,
                };
                for event in events {
                    if let Some(ending) = self.on_event(event).await? {
                        return Ok(ending);
                    }
                }
            }
            let idle = self.shared.config.idle_timeout;
            let between_transfers = self.transfer.is_none();
            if between_transfers && shutdown.is_cancelled() {
                return Ok(Ending::Shutdown);
            }
            let busy = !between_transfers || !self.buf.is_empty();
            self.buf.reserve(READ_CHUNK);
            let read = tokio::select! {
                read = tokio::time::timeout(idle, self.stream.read_buf(&mut self.buf)) => read,
                () = shutdown.cancelled(), if between_transfers => return Ok(Ending::Shutdown),
            };
            match read {
                Err(_) => {
                    self.log_abandoned("idle timeout");
                    return Ok(Ending::IdleTimeout);
                }
                Ok(Ok(0)) => {
                    self.log_abandoned("peer closed the connection");
                    return Ok(Ending::PeerClosed);
                }
                Ok(Ok(read)) => {
                    if !progress.record(read, busy) {
                        self.log_abandoned("peer too slow");
                        return Ok(Ending::TooSlow);
                    }
                }
                Ok(Err(err)) => {
                    self.log_abandoned("read failed");
                    return Err(err);
                }
            }
        }
    }

    async fn on_event(&mut self, event: TransferEvent) -> std::io::Result<Option<Ending>> {
        match event {
            TransferEvent::Begin { meta, name } => {
                tracing::debug!(peer = %self.peer, data_type = meta.data_type().as_str(), format = meta.serialization().as_str(), encrypted = meta.encrypted(), "transfer started");
                self.transfer = Some(Transfer::begin(&self.shared, self.peer, meta, name).await);
            }
            TransferEvent::Data(payload) => {
                if let Some(transfer) = &mut self.transfer {
                    transfer.data(&self.shared, payload).await;
                }
            }
            TransferEvent::Finish => {
                let transfer = self
                    .transfer
                    .take()
                    .expect("the tracker only finishes an open transfer");
                let meta = transfer.meta();
                let result = transfer.finish(&self.shared, self.peer).await;
                let (data_type, format) =
                    (meta.data_type().as_str(), meta.serialization().as_str());
                match &result {
                    Ok(item) => {
                        tracing::debug!(peer = %self.peer, id = %item.id, data_type, format, encrypted = meta.encrypted(), size = item.size, "item stored");
                    }
                    Err(err @ (TransferError::Failed(_) | TransferError::OutputFailed { .. })) => {
                        tracing::error!(peer = %self.peer, data_type, format, error = %err, "transfer failed");
                    }
                    Err(err) => {
                        tracing::warn!(peer = %self.peer, data_type, format, outcome = err.outcome(), reason = %err, "transfer refused");
                    }
                }
                self.reply(result).await?;
            }
            TransferEvent::End => return Ok(Some(Ending::End)),
            TransferEvent::Hello => self.extended = true,
            TransferEvent::Ignored => {}
        }
        Ok(None)
    }

    async fn reply(&mut self, result: Result<ItemMeta, TransferError>) -> std::io::Result<()> {
        let bytes = match (self.extended, result) {
            (false, Ok(_)) => Reply::Ok.to_bytes(),
            (false, Err(err)) => Reply::Error(err.reply().to_owned()).to_bytes(),
            (true, Ok(item)) => ExtendedReply {
                ok: true,
                id: Some(item.id.to_string()),
                size: Some(item.size),
                receipt: receipt(self.shared.notary.clone(), &item).await,
                sha256: Some(item.sha256),
                ..ExtendedReply::default()
            }
            .to_bytes(),
            (true, Err(err)) => ExtendedReply {
                ok: false,
                error: Some(err.reply().to_owned()),
                ..ExtendedReply::default()
            }
            .to_bytes(),
        };
        self.stream.write_all(&bytes).await
    }

    async fn protocol_error(&mut self, err: ProtocolError) -> std::io::Result<Ending> {
        tracing::warn!(peer = %self.peer, error = %err, "protocol error; closing the connection");
        self.log_abandoned("protocol error");
        self.transfer = None;
        self.reply(Err(TransferError::Rejected(format!(
            "protocol error: {err}"
        ))))
        .await?;
        let _ = self.stream.shutdown().await;
        Ok(Ending::ProtocolError)
    }

    fn log_abandoned(&self, why: &str) {
        if let Some(transfer) = &self.transfer {
            tracing::warn!(peer = %self.peer, why, meta = ?transfer.meta(), "transfer abandoned; nothing was stored");
            crate::metrics::transfer(
                Some(transfer.meta()),
                "abandoned",
                0,
                std::time::Duration::ZERO,
            );
        }
    }
}

/// The stored item's signed receipt, as JSON, when the server keeps a log.
async fn receipt(notary: Option<Arc<Notary>>, item: &ItemMeta) -> Option<serde_json::Value> {
    let receipt = notary?.receipt(item).await?;
    serde_json::to_value(receipt).ok()
}
