//! One transfer on the server side: from its INITIAL packet to the reply.
//!
//! A transfer is either receiving (text streams straight into a store writer;
//! a dictionary is collected, then decoded and validated) or refused. A refused
//! transfer keeps its framing: its remaining packets are drained and it is
//! answered once, with the reason, when its FINAL packet arrives.

use crate::{EncryptionPolicy, Shared};
use bytes::Bytes;
use ferry_protocol::{DataType, Meta, Serialization};
use ferry_store::{ItemMeta, ItemWriter, NewItem};
use std::net::SocketAddr;
use std::time::Instant;

/// Where the plaintext of an accepted transfer goes.
enum Sink {
    Text(Box<dyn ItemWriter>),
    Dictionary(Vec<u8>),
}

/// The state of the open transfer.
pub(crate) struct Transfer {
    meta: Meta,
    name: Option<String>,
    started: Instant,
    received: u64,
    state: Result<Sink, String>,
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
    /// Starts a transfer, or a refused one when its meta is not acceptable here.
    pub(crate) async fn begin(
        shared: &Shared,
        peer: SocketAddr,
        meta: Meta,
        name: Option<String>,
    ) -> Transfer {
        let state = match refusal(shared, meta) {
            Some(reason) => Err(reason),
            None if meta.data_type() == DataType::Text => shared
                .store
                .begin(new_item(meta, peer, name.clone()))
                .await
                .map(Sink::Text)
                .map_err(|err| err.to_string()),
            None => Ok(Sink::Dictionary(Vec::new())),
        };
        Transfer {
            meta,
            name,
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
        let plaintext = match (&shared.fernet, self.meta.encrypted()) {
            (Some(key), true) => match key.decrypt(&payload) {
                Ok(plain) => Bytes::from(plain),
                Err(err) => {
                    self.state = Err(format!("invalid Fernet token: {err}"));
                    return;
                }
            },
            _ => payload,
        };
        self.received += plaintext.len() as u64;
        let outcome = match sink {
            Sink::Text(writer) => writer
                .write(&plaintext)
                .await
                .map_err(|err| err.to_string()),
            Sink::Dictionary(bytes) => {
                let limit = shared.config.dict_limits.max_bytes;
                if bytes.len() + plaintext.len() > limit {
                    Err(format!("dictionary exceeds the limit of {limit} bytes"))
                } else {
                    bytes.extend_from_slice(&plaintext);
                    Ok(())
                }
            }
        };
        if let Err(reason) = outcome {
            self.state = Err(reason);
        }
    }

    /// Completes the transfer: the stored item, or the reason it was refused.
    pub(crate) async fn finish(
        self,
        shared: &Shared,
        peer: SocketAddr,
    ) -> Result<ItemMeta, String> {
        let result = match self.state {
            Err(reason) => Err(reason),
            Ok(Sink::Text(writer)) => writer.commit().await.map_err(|err| err.to_string()),
            Ok(Sink::Dictionary(bytes)) => {
                store_dictionary(shared, peer, self.meta, self.name, bytes).await
            }
        };
        let outcome = if result.is_ok() { "stored" } else { "refused" };
        crate::metrics::transfer(
            Some(self.meta),
            outcome,
            self.received,
            self.started.elapsed(),
        );
        result
    }
}

/// Why a transfer with this meta is refused here, if it is.
fn refusal(shared: &Shared, meta: Meta) -> Option<String> {
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

fn new_item(meta: Meta, peer: SocketAddr, name: Option<String>) -> NewItem {
    NewItem {
        data_type: meta.data_type(),
        serialization: meta.serialization(),
        encrypted_in_transit: meta.encrypted(),
        peer: peer.to_string(),
        name,
    }
}

/// Decodes (validates) a whole dictionary, then stores its bytes as they arrived.
async fn store_dictionary(
    shared: &Shared,
    peer: SocketAddr,
    meta: Meta,
    name: Option<String>,
    bytes: Vec<u8>,
) -> Result<ItemMeta, String> {
    let limits = shared.config.dict_limits;
    let serialization = meta.serialization();
    // Large dictionaries take a while to decode: keep them off the async workers.
    let (bytes, decoded) = if bytes.len() > 256 * 1024 {
        tokio::task::spawn_blocking(move || {
            let decoded = ferry_codec::decode(serialization, &bytes, &limits).map(drop);
            (bytes, decoded)
        })
        .await
        .map_err(|err| format!("decoder failed: {err}"))?
    } else {
        let decoded = ferry_codec::decode(serialization, &bytes, &limits).map(drop);
        (bytes, decoded)
    };
    decoded.map_err(|err| err.to_string())?;
    let mut writer = shared
        .store
        .begin(new_item(meta, peer, name))
        .await
        .map_err(|err| err.to_string())?;
    writer.write(&bytes).await.map_err(|err| err.to_string())?;
    writer.commit().await.map_err(|err| err.to_string())
}
