//! One client connection: read packets, drive transfers, write replies.
//!
//! Refusals that keep the framing intact are answered once per transfer and the
//! connection stays usable; a broken framing is answered with `ERROR: …` and the
//! connection is closed. A peer that goes quiet for the idle timeout, or vanishes
//! mid-transfer, is dropped, and its unfinished item is discarded by the store.
//!
//! An upload command (extension 3) is run between transfers and answered at
//! once, to a client that sent the hello only; an `append` that can start arms
//! the next transfer as that append (see [`crate::append`]).

use crate::append::{Append, Armed};
use crate::metrics::OpenConnection;
use crate::progress::Progress;
use crate::transfer::Transfer;
use crate::{Shared, TransferError};
use bytes::BytesMut;
use ferry_protocol::{
    Decoder, ExtendedReply, ProtocolError, Reply, TransferEvent, TransferTracker, UploadCommands,
};
use ferry_store::ItemMeta;
use ferry_tlog::Receipt;
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
        commands: UploadCommands::new(),
        transfer: None,
        armed: None,
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
    commands: UploadCommands,
    transfer: Option<Receiving>,
    /// The append the last upload command armed, for the next transfer.
    armed: Option<Armed>,
    extended: bool,
}

/// The open transfer: an item, or an append of a resumable upload.
#[derive(Debug)]
enum Receiving {
    Item(Transfer),
    Append(Append),
}

impl Connection {
    async fn run(&mut self, shutdown: &CancellationToken) -> std::io::Result<Ending> {
        let mut progress = Progress::new(self.shared.config.idle_timeout);
        loop {
            while let Some(frame) = match Decoder.decode(&mut self.buf) {
                Ok(frame) => frame,
                Err(err) => return self.protocol_error(err).await,
            } {
                // Upload commands are Ferry's clients': a client without the hello
                // gets the legacy server's behaviour, every such byte ignored.
                let open = self.tracker.open().is_some();
                let command = match self.extended {
                    true => match self.commands.accept(&frame, open) {
                        Ok(command) => command,
                        Err(err) => return self.protocol_error(err).await,
                    },
                    false => None,
                };
                let events = match self.tracker.accept(frame) {
                    Ok(events) => events,
                    Err(err) => return self.protocol_error(err).await,
                };
                for event in events {
                    if let Some(ending) = self.on_event(event).await? {
                        return Ok(ending);
                    }
                }
                if let Some(line) = command {
                    self.upload_command(&line).await?;
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
                self.transfer = Some(match self.armed.take() {
                    Some(armed) => Receiving::Append(Append::begin(&self.shared, armed, meta)),
                    None => {
                        let receipt = self.extended;
                        let transfer =
                            Transfer::begin(&self.shared, self.peer, meta, name, receipt).await;
                        Receiving::Item(transfer)
                    }
                });
            }
            TransferEvent::Data(payload) => match &mut self.transfer {
                Some(Receiving::Item(transfer)) => transfer.data(&self.shared, payload).await,
                Some(Receiving::Append(append)) => append.data(&self.shared, payload).await,
                None => {}
            },
            TransferEvent::Finish => {
                let transfer = match self.transfer.take() {
                    Some(Receiving::Item(transfer)) => transfer,
                    Some(Receiving::Append(append)) => {
                        let reply = append.finish().await;
                        self.stream.write_all(&reply.to_bytes()).await?;
                        return Ok(None);
                    }
                    None => unreachable!("the tracker only finishes an open transfer"),
                };
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

    /// Runs an upload command and answers it; a client that did not send the
    /// hello is not answered and its command is ignored, as a legacy server does.
    async fn upload_command(&mut self, line: &str) -> std::io::Result<()> {
        if !self.extended {
            tracing::debug!(peer = %self.peer, "upload command without the hello; ignored");
            return Ok(());
        }
        if let Some(armed) = self.armed.take() {
            tracing::info!(peer = %self.peer, id = %armed.id(), "an armed append was not sent; released");
        }
        let ran = crate::upload::run(&self.shared, self.peer, line).await;
        self.armed = ran.armed;
        self.stream.write_all(&ran.reply).await
    }

    async fn reply(&mut self, result: Result<ItemMeta, TransferError>) -> std::io::Result<()> {
        let bytes = match (self.extended, result) {
            (false, Ok(_)) => Reply::Ok.to_bytes(),
            (false, Err(err)) => Reply::Error(err.reply().to_owned()).to_bytes(),
            (true, Ok(item)) => stored_reply(&self.shared, &item).await.to_bytes(),
            (true, Err(err)) => ExtendedReply::<Receipt> {
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
        self.armed = None;
        self.reply(Err(TransferError::Rejected(format!(
            "protocol error: {err}"
        ))))
        .await?;
        let _ = self.stream.shutdown().await;
        Ok(Ending::ProtocolError)
    }

    fn log_abandoned(&self, why: &str) {
        match &self.transfer {
            Some(Receiving::Item(transfer)) => {
                tracing::warn!(peer = %self.peer, why, meta = ?transfer.meta(), "transfer abandoned; nothing was stored");
                crate::metrics::transfer(
                    Some(transfer.meta()),
                    "abandoned",
                    0,
                    std::time::Duration::ZERO,
                );
            }
            Some(Receiving::Append(append)) => {
                tracing::warn!(peer = %self.peer, why, id = %append.id(), meta = ?append.meta(), "append abandoned; the upload stays at its committed offset");
                append.abandoned();
            }
            None => {}
        }
    }
}

/// The extended reply naming a stored item, with its signed receipt when the
/// server keeps a log.
pub(crate) async fn stored_reply(shared: &Shared, item: &ItemMeta) -> ExtendedReply<Receipt> {
    let receipt = match &shared.notary {
        Some(notary) => notary.receipt(item).await,
        None => None,
    };
    ExtendedReply {
        ok: true,
        id: Some(item.id.to_string()),
        size: Some(item.size),
        sha256: Some(item.sha256.clone()),
        error: None,
        receipt,
    }
}
