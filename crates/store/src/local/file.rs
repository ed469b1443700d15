//! Large items: sealed chunk by chunk into `tmp/<id>.part` as they stream in,
//! then made durable and listed by a rename into `items/<id>.rec`.
//!
//! Plaintext is gathered into [`FLUSH_BYTES`] batches; each batch is hashed, sealed
//! and written on a blocking thread while the next one is being received, so memory
//! stays at about three batches whatever the item's size, and all large items
//! being written together wait for room in
//! [`LocalOptions::large_item_memory`](super::LocalOptions::large_item_memory).
//! The sealed bytes go out past the page cache where the file system allows it
//! ([`DirectFile`]). Commit = write the last bytes and the metadata block,
//! `fdatasync`, rename, then fsync `items/` (shared by
//! concurrent commits through [`GroupSync`]). A spill dropped before it commits
//! removes its temporary file.

use std::fs::{self, File};
use std::mem;
use std::path::PathBuf;
use std::sync::Arc;

use ferry_crypto::Sealer;
use futures::FutureExt;
use sha2::{Digest, Sha256};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;

use super::Shared;
use super::direct::DirectFile;
use super::fsutil::{create_private_file, io_err};
use super::seam::{Seam, Step};
use crate::{ItemId, ItemMeta, StoreError};

/// Plaintext gathered before it is sealed and written out.
pub(crate) const FLUSH_BYTES: usize = 1 << 20;
/// Room for a full batch plus one packet, so that buffers never reallocate.
const BATCH_CAPACITY: usize = FLUSH_BYTES + (64 << 10);
/// Room for a batch's sealed bytes (a chunk held back by the sealer, the tags).
const SEALED_CAPACITY: usize = BATCH_CAPACITY + (1 << 16);
/// What a spill holds: the batch being received, the one being sealed, and the
/// sealed bytes being gathered and written ([`DirectFile`]'s two buffers).
pub(crate) const SPILL_MEMORY: usize = 2 * BATCH_CAPACITY + 2 * SEALED_CAPACITY;

/// Written bytes after which an early `fdatasync` starts in the background
/// (less in tests, so that small items go through it).
const EARLY_SYNC_BYTES: u64 = if cfg!(test) { 256 << 10 } else { 16 << 20 };

/// The part of a spill that moves to a blocking thread for each batch.
struct Sink {
    out: DirectFile,
    sealer: Sealer,
    hasher: Sha256,
    path: PathBuf,
    early: EarlySync,
    seam: Seam,
}

impl Sink {
    fn absorb(&mut self, plaintext: &[u8]) -> Result<(), StoreError> {
        self.hasher.update(plaintext);
        self.sealer.push(plaintext, self.out.buffer());
        let written = self
            .out
            .write_blocks()
            .map_err(io_err("writing", &self.path))?;
        self.early
            .wrote(&self.seam, &self.path, self.out.file(), written as u64);
        Ok(())
    }
}

/// Starts `fdatasync`s of a growing file in the background, so that the disk
/// writes while later batches are sealed, and the commit's `fdatasync` has
/// little left to do. A failed early sync fails the commit: the kernel reports
/// a writeback error only once per open file.
#[derive(Default)]
struct EarlySync {
    unsynced: u64,
    running: Option<JoinHandle<std::io::Result<()>>>,
    failed: Option<std::io::Error>,
}

impl EarlySync {
    /// Called on a blocking thread after `bytes` were written to `file` (at `path`).
    fn wrote(&mut self, seam: &Seam, path: &std::path::Path, file: &File, bytes: u64) {
        self.unsynced += bytes;
        if self.unsynced < EARLY_SYNC_BYTES {
            return;
        }
        if let Some(running) = &mut self.running {
            match running.now_or_never() {
                None => return,
                Some(result) => self.record(result),
            }
        }
        self.unsynced = 0;
        let (seam, path) = (seam.clone(), path.to_owned());
        self.running = file.try_clone().ok().map(|file| {
            tokio::task::spawn_blocking(move || {
                seam.run(Step::PartEarlySync, &path, || file.sync_data())
            })
        });
    }

    fn record(&mut self, result: Result<std::io::Result<()>, tokio::task::JoinError>) {
        if let Err(err) = result.unwrap_or_else(|e| Err(std::io::Error::other(e))) {
            self.failed.get_or_insert(err);
        }
    }

    /// Waits for the sync in flight; the error of any early sync that failed.
    async fn finish(&mut self) -> Option<std::io::Error> {
        if let Some(running) = self.running.take() {
            let result = running.await;
            self.record(result);
        }
        self.failed.take()
    }
}

enum Slot {
    Idle(Box<Sink>),
    Busy(JoinHandle<Result<Box<Sink>, StoreError>>),
    Empty,
}

/// A large item being written to `tmp/<id>.part`.
pub(crate) struct Spill {
    shared: Arc<Shared>,
    id: ItemId,
    part: PathBuf,
    pending: Vec<u8>,
    slot: Slot,
    committed: bool,
    /// This spill's share of the large items' memory.
    _memory: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Spill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spill")
            .field("id", &self.id)
            .field("part", &self.part)
            .finish_non_exhaustive()
    }
}

impl Spill {
    /// Creates the temporary file, once the spill fits in the large items'
    /// memory; `head` is the plaintext received so far.
    pub(crate) async fn create(
        shared: Arc<Shared>,
        id: ItemId,
        head: Vec<u8>,
    ) -> Result<Spill, StoreError> {
        let memory = shared.large_items.take().await?;
        let part = shared.paths.tmp.join(format!("{id}.part"));
        let path = part.clone();
        let seam = shared.seam.clone();
        let file = tokio::task::spawn_blocking(move || {
            create_private_file(&seam, Step::PartCreate, &path)
        })
        .await
        .map_err(joined)??;
        let key = shared.keys.allocate().await?;
        let sealer = Sealer::new(&key);
        let sink = Sink {
            out: DirectFile::new(file, &part, SEALED_CAPACITY, shared.seam.clone()),
            sealer,
            hasher: Sha256::new(),
            path: part.clone(),
            early: EarlySync::default(),
            seam: shared.seam.clone(),
        };
        let mut spill = Spill {
            shared,
            id,
            part,
            pending: Vec::with_capacity(BATCH_CAPACITY),
            slot: Slot::Idle(Box::new(sink)),
            committed: false,
            _memory: memory,
        };
        spill.pending.extend_from_slice(&head);
        Ok(spill)
    }

    /// Adds plaintext; hands a batch to a blocking thread when one is full.
    pub(crate) async fn write(&mut self, plaintext: &[u8]) -> Result<(), StoreError> {
        self.pending.extend_from_slice(plaintext);
        if self.pending.len() >= FLUSH_BYTES {
            let batch = mem::replace(&mut self.pending, Vec::with_capacity(BATCH_CAPACITY));
            let mut sink = self.sink().await?;
            self.slot = Slot::Busy(tokio::task::spawn_blocking(move || {
                sink.absorb(&batch).map(|()| sink)
            }));
        }
        Ok(())
    }

    /// Seals the rest and the metadata, makes the record durable and renames it
    /// into `items/`. `meta` builds the metadata from the plaintext's SHA-256
    /// and the id of the key it is sealed with.
    pub(crate) async fn commit(
        mut self,
        meta: impl FnOnce([u8; 32], String) -> ItemMeta + Send + 'static,
    ) -> Result<ItemMeta, StoreError> {
        let mut sink = self.sink().await?;
        if let Some(err) = sink.early.finish().await {
            return Err(StoreError::io("syncing", &self.part, err));
        }
        let batch = mem::take(&mut self.pending);
        let record = self.shared.paths.items.join(format!("{}.rec", self.id));
        let shared = self.shared.clone();
        let meta = tokio::task::spawn_blocking(move || {
            sink.hasher.update(&batch);
            let Sink {
                mut out,
                mut sealer,
                hasher,
                path,
                early: _,
                seam,
            } = *sink;
            sealer.push(&batch, out.buffer());
            let meta = meta(hasher.finalize().into(), sealer.key_id().to_owned());
            sealer.finish(&meta.to_record_bytes(), out.buffer());
            out.write_all().map_err(io_err("writing", &path))?;
            seam.run(Step::PartSync, &path, || out.file().sync_data())
                .map_err(io_err("syncing", &path))?;
            drop(out);
            seam.run(Step::RecordRename, &path, || fs::rename(&path, &record))
                .map_err(io_err("renaming into place", &path))?;
            if let Err(err) = shared.items_sync.sync() {
                // Not acknowledged: it should not come back after a restart (it
                // may, if this unlink fails or does not reach the disk).
                let _ = seam.run(Step::RecordUnlink, &record, || fs::remove_file(&record));
                return Err(err);
            }
            Ok::<_, StoreError>(meta)
        })
        .await
        .map_err(joined)??;
        self.committed = true;
        Ok(meta)
    }

    /// Takes the sink back, waiting for the batch in flight.
    async fn sink(&mut self) -> Result<Box<Sink>, StoreError> {
        match mem::replace(&mut self.slot, Slot::Empty) {
            Slot::Idle(sink) => Ok(sink),
            Slot::Busy(task) => task.await.map_err(joined)?,
            Slot::Empty => Err(StoreError::spent()),
        }
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        if !self.committed {
            // The sink (and its file handle) may still be on a blocking thread:
            // unlinking now is fine, the data goes when the handle closes.
            if let Err(err) = fs::remove_file(&self.part)
                && err.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %self.part.display(), %err, "cannot remove an aborted item's temporary file");
            }
        }
    }
}

pub(crate) use crate::error::joined;
