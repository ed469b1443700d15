//! The writer of one item: plaintext stays in memory while the item is small (at
//! most `inline_max` bytes) and goes to the log at commit; past that it spills to a
//! temporary file (see [`file`](super::file)).

use std::mem;
use std::sync::Arc;

use time::OffsetDateTime;

use super::Shared;
use super::file::{Spill, joined};
use super::frame::{self, HEADER_LEN, Kind, Unsealed};
use super::index::{Entry, Location};
use crate::seal::seal_small_item;
use crate::{ItemId, ItemMeta, ItemWriter, NewItem, StoreError};

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
    /// Whether the item's leaf is made durable with its record.
    sync_leaf: bool,
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
        LocalWriter::with_id(shared, ItemId::new(), item, OffsetDateTime::now_utc())
    }

    /// A writer of the item `id`, which began to arrive at `received_at` (a
    /// finished upload's).
    pub(crate) fn with_id(
        shared: Arc<Shared>,
        id: ItemId,
        item: NewItem,
        received_at: OffsetDateTime,
    ) -> LocalWriter {
        LocalWriter {
            shared,
            id,
            item,
            received_at,
            size: 0,
            state: State::Inline(Vec::new()),
            sync_leaf: false,
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
            sync_leaf,
        } = *self;
        let meta_of =
            move |sha256, key_id| ItemMeta::new(id, item, received_at, size, sha256, key_id);
        let mut _gate = None;
        let leaf_failed;
        let (meta, location) = match state {
            State::Inline(plaintext) => {
                let key = shared.keys.allocate().await?;
                let (meta, frame) =
                    seal_small_item(key, plaintext, meta_of, frame::start()).await?;
                let frame = Unsealed::new(Kind::Record, frame);
                let len = (frame.len() - HEADER_LEN) as u64;
                // Until published: no reclaim pass may run between the two.
                _gate = Some(shared.append_gate.read().await);
                // The record and its leaf, each in a group commit of its own,
                // at the same time.
                let (at, leaf) = tokio::join!(
                    shared.log.append(vec![frame]),
                    append_leaf(&shared, &meta, sync_leaf)
                );
                let at = match at {
                    Ok(at) => at,
                    Err(err) => {
                        abort_leaf(&shared, &meta, leaf).await;
                        return Err(err);
                    }
                };
                let (meta, failed) = with_leaf(meta, leaf);
                leaf_failed = failed;
                (
                    meta,
                    Location::Log {
                        segment: at.segment,
                        base: at.offset + HEADER_LEN as u64,
                        len,
                    },
                )
            }
            State::Spilled(spill) => {
                let meta = spill.commit(meta_of).await?;
                let leaf = append_leaf(&shared, &meta, sync_leaf).await;
                let (meta, failed) = with_leaf(meta, leaf);
                leaf_failed = failed;
                (meta, Location::File)
            }
            State::Failed => {
                return Err(StoreError::spent());
            }
        };
        shared.publish(Entry {
            meta: meta.clone(),
            location,
        })?;
        if leaf_failed.is_some() {
            shared.note_leaf_gap();
        }
        if shared.checkpoint_due() {
            super::resume::take_due(&shared);
        }
        match leaf_failed {
            None => Ok(meta),
            Some(err) => Err(err),
        }
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

    fn sync_leaf_at_commit(&mut self) {
        self.sync_leaf = true;
    }
}

/// Appends an item's `stored` leaf, if the store keeps a log; durable if `sync`.
async fn append_leaf(
    shared: &Shared,
    meta: &ItemMeta,
    sync: bool,
) -> Option<Result<u64, StoreError>> {
    let ledger = shared.ledger.as_ref()?;
    let entry = crate::stored_entry(meta);
    Some(match sync {
        true => ledger.append_all(vec![entry]).await,
        false => ledger.append_stored(&entry).await,
    })
}

/// After a record that failed: says in the log that its `stored` leaf's item
/// never came (if the leaf went in; else recovery says it at the next open).
async fn abort_leaf(shared: &Shared, meta: &ItemMeta, leaf: Option<Result<u64, StoreError>>) {
    if let (Some(ledger), Some(Ok(_))) = (&shared.ledger, leaf) {
        let aborted = ferry_tlog::Entry::aborted(&meta.id.to_string(), &crate::now());
        if let Err(err) = ledger.append_all(vec![aborted]).await {
            tracing::error!(id = %meta.id, %err, "cannot log that a commit failed");
        }
    }
}

/// The metadata of a durable record with its leaf index, and the error of its
/// leaf if that failed. The item is listed either way (it is on disk, and the
/// next open would list it and append its leaf); its commit then fails.
fn with_leaf(
    mut meta: ItemMeta,
    leaf: Option<Result<u64, StoreError>>,
) -> (ItemMeta, Option<StoreError>) {
    match leaf {
        Some(Ok(index)) => {
            meta.log_index = Some(index);
            (meta, None)
        }
        Some(Err(err)) => (meta, Some(err)),
        None => (meta, None),
    }
}
