//! The writer of one item: plaintext stays in memory while the item is small (at
//! most `inline_max` bytes) and goes to the log at commit; past that it spills to a
//! temporary file (see [`file`](super::file)).

use std::mem;
use std::sync::Arc;

use ferry_crypto::{CHUNK_SIZE, Sealer, StorageKey};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::Shared;
use super::file::{Spill, joined};
use super::frame::{self, HEADER_LEN, Kind, Unsealed};
use super::index::{Entry, Location};
use crate::{ItemId, ItemMeta, ItemWriter, NewItem, StoreError};

/// Inline items larger than this are sealed on a blocking thread.
const SEAL_INLINE_ON_RUNTIME: usize = 64 << 10;

enum State {
    Inline(Vec<u8>),
    Spilled(Spill),
    Failed,
}

/// Writes one item of a [`LocalStore`](super::LocalStore).
pub(crate) struct LocalWriter {
    shared: Arc<Shared>,
    id: ItemId,
    item: NewItem,
    received_at: OffsetDateTime,
    size: u64,
    state: State,
}

impl std::fmt::Debug for LocalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalWriter")
            .field("id", &self.id)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl LocalWriter {
    pub(crate) fn new(shared: Arc<Shared>, item: NewItem) -> LocalWriter {
        let received_at = OffsetDateTime::now_utc();
        LocalWriter {
            shared,
            id: ItemId::new(),
            item,
            received_at,
            size: 0,
            state: State::Inline(Vec::new()),
        }
    }

    /// Seals the item, makes it durable and lists it.
    async fn seal_and_store(self: Box<Self>) -> Result<ItemMeta, StoreError> {
        let LocalWriter {
            shared,
            id,
            item,
            received_at,
            size,
            state,
        } = *self;
        let meta_of =
            move |sha256, key_id| ItemMeta::new(id, item, received_at, size, sha256, key_id);
        let mut _gate = None;
        let (meta, location) = match state {
            State::Inline(plaintext) => {
                let key = shared.keys.allocate().await?;
                let (meta, frame) = if plaintext.len() > SEAL_INLINE_ON_RUNTIME {
                    tokio::task::spawn_blocking(move || seal_inline(&key, &plaintext, meta_of))
                        .await
                        .map_err(joined)?
                } else {
                    seal_inline(&key, &plaintext, meta_of)
                };
                let len = (frame.len() - HEADER_LEN) as u64;
                // Until published: no reclaim pass may run between the two.
                _gate = Some(shared.append_gate.read().await);
                let at = shared.log.append(vec![frame]).await?;
                (
                    meta,
                    Location::Log {
                        segment: at.segment,
                        base: at.offset + HEADER_LEN as u64,
                        len,
                    },
                )
            }
            State::Spilled(spill) => (spill.commit(meta_of).await?, Location::File),
            State::Failed => {
                return Err(StoreError::spent());
            }
        };
        shared.publish(Entry {
            meta: meta.clone(),
            location,
        });
        Ok(meta)
    }

    async fn absorb(&mut self, plaintext: &[u8]) -> Result<(), StoreError> {
        match &mut self.state {
            State::Inline(buf) if buf.len() + plaintext.len() <= self.shared.options.inline_max => {
                buf.extend_from_slice(plaintext);
                Ok(())
            }
            State::Inline(buf) => {
                let head = mem::take(buf);
                self.state = State::Failed;
                let mut spill = Spill::create(self.shared.clone(), self.id, head).await?;
                spill.write(plaintext).await?;
                self.state = State::Spilled(spill);
                Ok(())
            }
            State::Spilled(spill) => spill.write(plaintext).await,
            State::Failed => Err(StoreError::spent()),
        }
    }
}

#[async_trait::async_trait]
impl ItemWriter for LocalWriter {
    async fn write(&mut self, plaintext: &[u8]) -> Result<(), StoreError> {
        let size = self.size + plaintext.len() as u64;
        if let Some(limit) = self.shared.options.max_item_size
            && size > limit
        {
            self.state = State::Failed;
            return Err(StoreError::TooLarge { limit });
        }
        self.size = size;
        let result = self.absorb(plaintext).await;
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    async fn commit(self: Box<Self>) -> Result<ItemMeta, StoreError> {
        // A task of its own: once begun, a commit completes (and lists the item)
        // even if the caller stops waiting, so the index never lags the disk.
        tokio::spawn(self.seal_and_store()).await.map_err(joined)?
    }
}

/// Seals a whole small item with its data key into a log frame (whose header
/// the log writes).
fn seal_inline(
    key: &StorageKey,
    plaintext: &[u8],
    meta_of: impl FnOnce([u8; 32], String) -> ItemMeta,
) -> (ItemMeta, Unsealed) {
    let meta = meta_of(Sha256::digest(plaintext).into(), key.id().to_owned());
    let metadata = meta.to_record_bytes();
    let mut frame = frame::start();
    frame.reserve(plaintext.len() + (plaintext.len() / CHUNK_SIZE + 1) * 16 + metadata.len() + 128);
    let mut sealer = Sealer::new(key);
    sealer.push(plaintext, &mut frame);
    sealer.finish(&metadata, &mut frame);
    (meta, Unsealed::new(Kind::Record, frame))
}
