//! One transfer on the server side: from its INITIAL packet to the reply.
//!
//! A transfer is either receiving (text streams straight into a store writer;
//! a dictionary is collected within the memory budget, then decoded and
//! validated) or refused. A refused transfer keeps its framing: its remaining
//! packets are drained and it is answered once, with the reason, when its FINAL
//! packet arrives. An accepted one is durable, and its legacy outputs written,
//! before it is answered.

use crate::budget::DictBuffer;
use crate::outputs::Content;
use crate::{EncryptionPolicy, Shared, TransferError};
use bytes::Bytes;
use ferry_protocol::{DataType, Meta, Serialization};
use ferry_store::{ItemMeta, ItemWriter, NewItem};
use std::net::SocketAddr;
use std::time::Instant;

/// Dictionaries larger than this are decoded on a blocking thread, a few at a time.
const LARGE_DICT: usize = 256 * 1024;

/// Where the plaintext of an accepted transfer goes.
enum Sink {
    Text(Box<dyn ItemWriter>),
    Dictionary(DictBuffer),
}

/// The state of the open transfer.
pub(crate) struct Transfer {
    meta: Meta,
    name: Option<String>,
    /// Whether the sender gets a receipt (see [`ItemWriter::sync_leaf_at_commit`]).
    receipt: bool,
    started: Instant,
    received: u64,
    state: Result<Sink, TransferError>,
}

impl std::fmt::Debug for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer")
            .field("meta", &self.meta)
            .field("received", &self.received)
            .field("refused", &self.state.as_ref().err())
            .finish()
    }
}

impl Transfer {
    /// Starts a transfer, or a refused one when its meta is not acceptable
    /// here; `receipt`: the sender is to get the stored item's receipt.
    pub(crate) async fn begin(
        shared: &Shared,
        peer: SocketAddr,
        meta: Meta,
        name: Option<String>,
        receipt: bool,
    ) -> Transfer {
        let state = match refusal(shared, meta) {
            Some(reason) => Err(TransferError::Refused(reason)),
            None if meta.data_type() == DataType::Text => {
                begin_item(shared, new_item(meta, peer, name.clone()), receipt)
                    .await
                    .map(Sink::Text)
            }
            None => Ok(Sink::Dictionary(DictBuffer::default())),
        };
        Transfer {
            meta,
            name,
            receipt,
            started: Instant::now(),
            received: 0,
            state,
        }
    }

    pub(crate) fn meta(&self) -> Meta {
        self.meta
    }

    /// Takes one packet's payload.
    pub(crate) async fn data(&mut self, shared: &Shared, payload: Bytes) {
        let Ok(sink) = &mut self.state else { return };
        let plaintext = match plaintext(shared, self.meta, payload) {
            Ok(plaintext) => plaintext,
            Err(err) => {
                self.state = Err(err);
                return;
            }
        };
        self.received += plaintext.len() as u64;
        let outcome = match sink {
            Sink::Text(writer) => writer.write(&plaintext).await.map_err(TransferError::from),
            Sink::Dictionary(buffer) => {
                let limit = shared.config.dict_limits.max_bytes;
                if buffer.bytes().len() + plaintext.len() > limit {
                    Err(TransferError::Refused(format!(
                        "dictionary exceeds the limit of {limit} bytes"
                    )))
                } else {
                    buffer.push(&shared.budget, &plaintext, limit).await
                }
            }
        };
        if let Err(err) = outcome {
            self.state = Err(err);
        }
    }

    /// Completes the transfer: the stored item (outputs written), or why not.
    pub(crate) async fn finish(
        self,
        shared: &Shared,
        peer: SocketAddr,
    ) -> Result<ItemMeta, TransferError> {
        let result = match self.state {
            Err(err) => Err(err),
            Ok(Sink::Text(writer)) => match writer.commit().await {
                Ok(item) => output(shared, item, Content::Stored).await,
                Err(err) => Err(err.into()),
            },
            Ok(Sink::Dictionary(buffer)) => {
                let item = new_item(self.meta, peer, self.name);
                store_dictionary(shared, item, self.receipt, buffer).await
            }
        };
        let outcome = result
            .as_ref()
            .map_or_else(TransferError::outcome, |_| "ok");
        crate::metrics::transfer(
            Some(self.meta),
            outcome,
            self.received,
            self.started.elapsed(),
        );
        result
    }
}

/// A packet's plaintext: its payload, Fernet-decrypted when the transfer is
/// encrypted (a transfer with no key to decrypt it was refused at its start).
pub(crate) fn plaintext(
    shared: &Shared,
    meta: Meta,
    payload: Bytes,
) -> Result<Bytes, TransferError> {
    match (&shared.fernet, meta.encrypted()) {
        (Some(key), true) => key
            .decrypt_to_bytes(&payload)
            .map_err(|err| TransferError::Rejected(format!("invalid Fernet token: {err}"))),
        _ => Ok(payload),
    }
}

/// Why a transfer with this meta is refused here, if it is.
pub(crate) fn refusal(shared: &Shared, meta: Meta) -> Option<String> {
    match (shared.config.encryption, meta.encrypted()) {
        (EncryptionPolicy::Disabled, true) => {
            return Some("encryption is disabled on this server".into());
        }
        (EncryptionPolicy::Required, false) => {
            return Some("this server accepts encrypted transfers only".into());
        }
        (_, true) if shared.fernet.is_none() => {
            return Some("encryption is disabled on this server".into());
        }
        _ => {}
    }
    if meta.serialization() == Serialization::Binary && !shared.config.allow_pickle {
        return Some("pickle is disabled on this server".into());
    }
    None
}

pub(crate) fn new_item(meta: Meta, peer: SocketAddr, name: Option<String>) -> NewItem {
    NewItem {
        data_type: meta.data_type(),
        serialization: meta.serialization(),
        encrypted_in_transit: meta.encrypted(),
        peer: peer.to_string(),
        name,
    }
}

/// A writer of `item`, whose leaf is durable at commit if a `receipt` follows.
async fn begin_item(
    shared: &Shared,
    item: NewItem,
    receipt: bool,
) -> Result<Box<dyn ItemWriter>, TransferError> {
    let mut writer = shared.store.begin(item).await?;
    if receipt {
        writer.sync_leaf_at_commit();
    }
    Ok(writer)
}

/// Decodes (validates) a whole dictionary, stores its bytes as they arrived, then
/// writes its outputs.
async fn store_dictionary(
    shared: &Shared,
    item: NewItem,
    receipt: bool,
    mut buffer: DictBuffer,
) -> Result<ItemMeta, TransferError> {
    let json = decode(shared, item.serialization, &mut buffer).await?;
    let mut writer = begin_item(shared, item, receipt).await?;
    writer.write(buffer.bytes()).await?;
    let item = writer.commit().await?;
    let content = Content::Dictionary {
        original: buffer.bytes(),
        json: json.as_deref(),
    };
    output(shared, item, content).await
}

/// Decodes the dictionary in `buffer`; its indented JSON when the outputs want it
/// (charged to the budget, like the buffer).
async fn decode(
    shared: &Shared,
    serialization: Serialization,
    buffer: &mut DictBuffer,
) -> Result<Option<String>, TransferError> {
    let limits = shared.config.dict_limits;
    let render = shared.outputs.as_ref().is_some_and(|o| o.wants_json());
    let run = move |bytes: &[u8]| {
        let dict = ferry_codec::decode(serialization, bytes, &limits)?;
        render
            .then(|| serde_json::to_string_pretty(&dict))
            .transpose()
            .map_err(TransferError::failed)
    };
    let json = if buffer.bytes().len() <= LARGE_DICT {
        run(buffer.bytes())?
    } else {
        // A decoded dictionary takes a few times its serialized size: a few at a
        // time, off the async workers.
        let _turn = shared
            .decoding
            .acquire()
            .await
            .map_err(TransferError::failed)?;
        let bytes = std::mem::take(buffer);
        let (bytes, json) = tokio::task::spawn_blocking(move || {
            let json = run(bytes.bytes());
            (bytes, json)
        })
        .await
        .map_err(TransferError::failed)?;
        *buffer = bytes;
        json?
    };
    if let Some(json) = &json {
        let bytes = json.len().saturating_sub(crate::budget::FREE_BYTES);
        buffer.charge(&shared.budget, bytes).await?;
    }
    Ok(json)
}

/// Writes a stored item's outputs, if any are enabled.
pub(crate) async fn output(
    shared: &Shared,
    item: ItemMeta,
    content: Content<'_>,
) -> Result<ItemMeta, TransferError> {
    if let Some(outputs) = &shared.outputs
        && let Err(detail) = outputs.emit(shared.store.as_ref(), &item, content).await
    {
        return Err(TransferError::OutputFailed {
            id: item.id,
            detail,
        });
    }
    Ok(item)
}
