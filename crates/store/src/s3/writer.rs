//! The writer of one item on the S3 store: a small item (at most `inline_max`
//! bytes) stays in memory and goes into the commit log whole; a larger one is
//! sealed as it arrives and streamed to its own object, `items/<id>.rec`, as a
//! multipart upload (parts uploaded concurrently up to a bound), then listed by
//! a log entry. An upload not committed is aborted, so no part is left behind.

use std::mem;
use std::sync::Arc;

use ferry_crypto::Sealer;
use object_store::{ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::Shared;
use super::batch::Change;
use crate::seal::{seal_small_item, seal_whole};
use crate::{ItemId, ItemMeta, ItemWriter, NewItem, StoreError, joined};

/// A large item on its way to its object.
struct Upload {
    sealer: Sealer,
    hasher: Sha256,
    /// Sealed bytes not yet handed to the upload.
    sealed: Vec<u8>,
    record_len: u64,
    multipart: WriteMultipart,
    /// This upload's share of [`S3Options::upload_memory`](super::S3Options::upload_memory).
    _memory: tokio::sync::OwnedSemaphorePermit,
}

enum State {
    Inline(Vec<u8>),
    Upload(Box<Upload>),
    Failed,
}

/// Writes one item of an [`S3Store`](super::S3Store).
pub(crate) struct S3Writer {
    shared: Arc<Shared>,
    id: ItemId,
    item: NewItem,
    received_at: OffsetDateTime,
    size: u64,
    state: State,
}

impl std::fmt::Debug for S3Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Writer")
            .field("id", &self.id)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl S3Writer {
    pub(crate) fn new(shared: Arc<Shared>, item: NewItem) -> S3Writer {
        S3Writer {
            shared,
            id: ItemId::new(),
            item,
            received_at: OffsetDateTime::now_utc(),
            size: 0,
            state: State::Inline(Vec::new()),
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
                let mut upload = start_upload(self.shared.clone(), self.id).await?;
                upload.push(&head);
                upload.push(plaintext);
                self.state = State::Upload(upload);
                self.flush().await
            }
            State::Upload(upload) => {
                upload.push(plaintext);
                self.flush().await
            }
            State::Failed => Err(StoreError::spent()),
        }
    }
}

/// Starts the multipart upload of item `id`'s object, once it fits in memory.
async fn start_upload(shared: Arc<Shared>, id: ItemId) -> Result<Box<Upload>, StoreError> {
    {
        let memory = shared.uploads.take().await?;
        let path = shared.journal.item_path(id);
        let upload = shared
            .journal
            .objects
            .put_multipart(&path)
            .await
            .map_err(|err| StoreError::remote("starting the upload of a large item", err))?;
        Ok(Box::new(Upload {
            sealer: Sealer::new(shared.journal.keyring.current()),
            hasher: Sha256::new(),
            sealed: Vec::new(),
            record_len: 0,
            multipart: WriteMultipart::new_with_chunk_size(upload, shared.options.part_size),
            _memory: memory,
        }))
    }
}

impl S3Writer {
    /// Hands the sealed bytes to the upload, and waits while too many parts
    /// are in flight.
    async fn flush(&mut self) -> Result<(), StoreError> {
        let State::Upload(upload) = &mut self.state else {
            return Ok(());
        };
        upload.multipart.write(&upload.sealed);
        upload.record_len += upload.sealed.len() as u64;
        upload.sealed.clear();
        upload
            .multipart
            .wait_for_capacity(self.shared.options.upload_concurrency)
            .await
            .map_err(|err| StoreError::remote("uploading a large item", err))
    }

    /// Seals the item, makes it durable in the bucket and lists it.
    async fn store(mut self: Box<Self>) -> Result<ItemMeta, StoreError> {
        let state = mem::replace(&mut self.state, State::Failed);
        let (id, size, received_at) = (self.id, self.size, self.received_at);
        let item = self.item.clone();
        let meta_of =
            move |sha256, key_id| ItemMeta::new(id, item, received_at, size, sha256, key_id);
        let key = self.shared.journal.keyring.current().clone();
        let (change, meta) = match state {
            State::Inline(plaintext) => {
                let (meta, sealed) = seal_small_item(key, plaintext, meta_of, Vec::new()).await?;
                (Change::Record(sealed), meta)
            }
            State::Upload(mut upload) => {
                let meta = meta_of(upload.hasher.finalize_reset().into(), key.id().to_owned());
                let mut tail = mem::take(&mut upload.sealed);
                upload.sealer.finish(&meta.to_record_bytes(), &mut tail);
                let Upload {
                    mut multipart,
                    record_len,
                    _memory: memory,
                    ..
                } = *upload;
                multipart.write(&tail);
                let record_len = record_len + tail.len() as u64;
                multipart.finish().await.map_err(|err| {
                    StoreError::remote("finishing the upload of a large item", err)
                })?;
                drop(memory);
                let (meta, sealed_meta) = seal_whole(&key, &[], |_, _| meta, Vec::new());
                let change = Change::Large {
                    record_len,
                    sealed_meta,
                };
                (change, meta)
            }
            State::Failed => return Err(StoreError::spent()),
        };
        let large = matches!(change, Change::Large { .. });
        // The item's `stored` leaf goes into the same log object as its
        // record: both are durable, or neither.
        let committed = (self.shared)
            .logged(change, || crate::stored_entry(&meta))
            .await;
        if let (Err(err), true) = (&committed, large) {
            // The object may be listed after all, if the log object was written
            // and only its answer lost: it is kept, never deleted on a guess.
            tracing::warn!(%id, %err, "a large item's object is written but its listing failed; the object is kept");
        }
        let log_index = committed?;
        let mut meta = self
            .shared
            .journal
            .settled()
            .await
            .get(id)?
            .map(|entry| entry.meta)
            .ok_or_else(|| {
                StoreError::Unavailable("the item was deleted as it was stored".into())
            })?;
        if self.shared.ledger.is_some() {
            meta.log_index = Some(log_index);
        }
        Ok(meta)
    }
}

impl Upload {
    fn push(&mut self, plaintext: &[u8]) {
        self.hasher.update(plaintext);
        self.sealer.push(plaintext, &mut self.sealed);
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        self.abandon();
    }
}

impl S3Writer {
    /// Marks the writer spent, and aborts its upload, if it began one.
    fn abandon(&mut self) {
        if let State::Upload(upload) = mem::replace(&mut self.state, State::Failed)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let id = self.id;
            runtime.spawn(async move {
                if let Err(err) = upload.multipart.abort().await {
                    tracing::warn!(%id, %err, "cannot abort the upload of an item not stored");
                }
            });
        }
    }
}

#[async_trait::async_trait]
impl ItemWriter for S3Writer {
    async fn write(&mut self, plaintext: &[u8]) -> Result<(), StoreError> {
        let size = self.size + plaintext.len() as u64;
        if let Some(limit) = self.shared.options.max_item_size
            && size > limit
        {
            self.abandon();
            return Err(StoreError::TooLarge { limit });
        }
        self.size = size;
        let result = self.absorb(plaintext).await;
        if result.is_err() {
            self.abandon();
        }
        result
    }

    async fn commit(self: Box<Self>) -> Result<ItemMeta, StoreError> {
        // A task of its own: once begun, a commit completes even if the caller
        // stops waiting.
        tokio::spawn(self.store()).await.map_err(joined)?
    }
}
