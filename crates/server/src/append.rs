//! One append of a resumable upload: the transfer that follows an `append`
//! command on the same connection.
//!
//! Its INITIAL packet must carry the upload's meta byte; its plaintext (each
//! packet decrypted as in any transfer) goes to the store's appender, which
//! commits at the FINAL packet: only then is the new offset answered, and it is
//! durable. An append that is refused keeps its framing (its packets are
//! drained, it is answered once at its FINAL packet), and one the connection
//! loses mid-way commits nothing: the upload stays at its committed offset.

use crate::transfer::{plaintext, refusal};
use crate::upload::{failure, state};
use crate::{Shared, TransferError};
use bytes::Bytes;
use ferry_protocol::Meta;
use ferry_protocol::upload::{UploadErrorCode, UploadReply};
use ferry_store::{UploadAppender, UploadId};
use std::time::Instant;

/// An append that can start: the upload's appender, waiting for the transfer.
/// Dropping it releases the upload.
pub(crate) struct Armed {
    id: UploadId,
    meta: Meta,
    offset: u64,
    appender: Box<dyn UploadAppender>,
}

impl std::fmt::Debug for Armed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Armed")
            .field("id", &self.id)
            .field("meta", &self.meta)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl Armed {
    pub(crate) fn new(
        id: UploadId,
        meta: Meta,
        offset: u64,
        appender: Box<dyn UploadAppender>,
    ) -> Armed {
        Armed {
            id,
            meta,
            offset,
            appender,
        }
    }

    pub(crate) fn id(&self) -> UploadId {
        self.id
    }
}

/// The append in progress.
pub(crate) struct Append {
    id: UploadId,
    meta: Meta,
    started: Instant,
    received: u64,
    /// The appender, or the answer of a refused append.
    state: Result<Box<dyn UploadAppender>, UploadReply>,
}

impl std::fmt::Debug for Append {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Append")
            .field("id", &self.id)
            .field("meta", &self.meta)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl Append {
    /// Starts the append armed by the last command with a transfer of `meta`.
    pub(crate) fn begin(shared: &Shared, armed: Armed, meta: Meta) -> Append {
        let state = if meta != armed.meta {
            Err(UploadReply::failure(
                UploadErrorCode::BadCommand,
                format!(
                    "the transfer's meta byte 0x{:02x} is not the upload's 0x{:02x}",
                    meta.to_byte(),
                    armed.meta.to_byte()
                ),
            ))
        } else if let Some(reason) = refusal(shared, meta) {
            Err(UploadReply::failure(UploadErrorCode::Refused, reason))
        } else {
            Ok(armed.appender)
        };
        tracing::debug!(id = %armed.id, offset = armed.offset, refused = state.is_err(), "append started");
        Append {
            id: armed.id,
            meta,
            started: Instant::now(),
            received: 0,
            state,
        }
    }

    pub(crate) fn id(&self) -> UploadId {
        self.id
    }

    pub(crate) fn meta(&self) -> Meta {
        self.meta
    }

    /// Takes one packet's payload.
    pub(crate) async fn data(&mut self, shared: &Shared, payload: Bytes) {
        let Ok(appender) = &mut self.state else {
            return;
        };
        let outcome = match plaintext(shared, self.meta, payload) {
            Ok(plain) => {
                self.received += plain.len() as u64;
                appender.write(&plain).await.map_err(failure)
            }
            Err(TransferError::Rejected(reason) | TransferError::Refused(reason)) => {
                Err(UploadReply::failure(UploadErrorCode::Refused, reason))
            }
            Err(err) => Err(UploadReply::failure(
                UploadErrorCode::Unavailable,
                err.reply().to_owned(),
            )),
        };
        if let Err(reply) = outcome {
            self.state = Err(reply);
        }
    }

    /// Commits the append: the answer, with the new durable offset, or why not.
    pub(crate) async fn finish(self) -> UploadReply {
        let reply = match self.state {
            Ok(appender) => match appender.commit().await {
                Ok(info) => UploadReply::success(state(&info)),
                Err(err) => failure(err),
            },
            Err(reply) => reply,
        };
        let outcome = match reply.code {
            None => "ok",
            Some(UploadErrorCode::Unavailable) => "failed",
            Some(_) => "refused",
        };
        crate::metrics::upload_append(outcome, self.received, self.started.elapsed());
        match &reply.upload {
            Some(upload) => {
                tracing::debug!(id = %self.id, offset = upload.offset, bytes = self.received, "append committed");
            }
            None => {
                tracing::warn!(id = %self.id, reason = reply.error.as_deref().unwrap_or(""), "append refused")
            }
        }
        reply
    }

    /// Counts an append its connection lost: nothing of it was committed.
    pub(crate) fn abandoned(&self) {
        crate::metrics::upload_append("abandoned", self.received, self.started.elapsed());
    }
}
