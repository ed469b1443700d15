//! Resumable uploads of the local store (see [`UploadInfo`]).
//!
//! ```text
//! uploads/<upload id>/
//!   upload.json       what the upload is: its item's kind, format, name, peer,
//!                     length (if known), when it was opened, the item id it
//!                     becomes; replaced whole (temporary file, fsync, rename,
//!                     fsync of the directory)
//!   NNNNNNNN.piece    the bytes of one committed append: a sealed record of its
//!                     own, under a data key of its own, whose metadata names
//!                     the upload, the piece's number and its offset
//!   NNNNNNNN.part     an append in progress (removed if it does not commit)
//! ```
//!
//! An append commits when its piece is sealed, `fdatasync`ed, renamed from
//! `.part` to `.piece` and the directory fsynced: only then is the new offset
//! reported. Each piece has its own key and nonce, so bytes sent again after a
//! lost connection are never sealed twice under one nonce. The committed
//! offset is the sum of the pieces' lengths, numbered from 0 without a gap.
//!
//! Finishing reads the pieces back in order (each authenticated, and checked to
//! be this upload's piece at its place) into an ordinary item writer under the
//! id the upload named when it was opened, so that a finish repeated after a
//! crash finds the item and does not store it twice; then the upload's keys
//! are destroyed and its files removed. Cancelling and expiring do the same
//! without the item. At open, `.part` files are removed; the pieces' keys are
//! kept (given to [`KeyStore::settle`](super::keys::KeyStore::settle)).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ferry_crypto::{RecordReader, Sealer};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::OwnedMutexGuard;

use super::Shared;
use super::file::joined;
use super::fsutil::{create_private_dir, create_private_file, io_err, sync_dir};
use super::keys::KeyRef;
use super::seam::{Seam, Step};
use super::writer::LocalWriter;
use crate::{
    ItemId, ItemMeta, ItemWriter, NewItem, StoreError, UploadAppender, UploadId, UploadInfo,
};

const MANIFEST: &str = "upload.json";
/// Sealed bytes gathered before they are written out.
const WRITE_BATCH: usize = 1 << 20;
/// Decrypted chunks in flight from the reading thread while finishing.
const FINISH_QUEUE: usize = 8;

/// What `upload.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    item_id: ItemId,
    item: NewItemFields,
    length: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

/// [`NewItem`], as `upload.json` keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct NewItemFields {
    data_type: ferry_protocol::DataType,
    serialization: ferry_protocol::Serialization,
    encrypted_in_transit: bool,
    peer: String,
    name: Option<String>,
}

impl From<NewItem> for NewItemFields {
    fn from(item: NewItem) -> Self {
        NewItemFields {
            data_type: item.data_type,
            serialization: item.serialization,
            encrypted_in_transit: item.encrypted_in_transit,
            peer: item.peer,
            name: item.name,
        }
    }
}

/// What a piece's sealed metadata says: where it belongs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PieceMeta {
    upload: UploadId,
    piece: u32,
    offset: u64,
}

/// A committed append.
#[derive(Debug, Clone, Copy)]
struct Piece {
    len: u64,
    key: Option<KeyRef>,
}

/// One unfinished upload.
#[derive(Debug)]
struct Staged {
    manifest: Mutex<Manifest>,
    /// The state as last committed, readable while an append holds `pieces`.
    info: Mutex<UploadInfo>,
    /// The committed pieces; held by an append, a finish or a cancel.
    pieces: Arc<tokio::sync::Mutex<Vec<Piece>>>,
}

/// The unfinished uploads of a store.
#[derive(Debug)]
pub(crate) struct Uploads {
    dir: PathBuf,
    ttl: Duration,
    staged: Mutex<HashMap<UploadId, Arc<Staged>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Uploads {
    /// Loads the uploads in `dir` (creating it): removes appends that did not
    /// commit, and returns the data keys the pieces are sealed with.
    pub(crate) fn load(
        dir: &Path,
        ttl: Duration,
        seam: &Seam,
    ) -> Result<(Uploads, Vec<KeyRef>), StoreError> {
        create_private_dir(seam, dir)?;
        let mut staged = HashMap::new();
        let mut keys = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err("reading directory", dir))? {
            let entry = entry.map_err(io_err("reading directory", dir))?;
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| UploadId::parse(n).ok())
            else {
                tracing::warn!(path = %entry.path().display(), "ignoring what is not an upload");
                continue;
            };
            match load_one(&entry.path(), id, ttl, seam)? {
                Some((upload, pieces)) => {
                    keys.extend(pieces.iter().filter_map(|p| p.key));
                    staged.insert(id, Arc::new(upload));
                }
                None => remove_dir(seam, &entry.path())?,
            }
        }
        if !staged.is_empty() {
            tracing::info!(uploads = staged.len(), "unfinished uploads found");
        }
        let uploads = Uploads {
            dir: dir.to_owned(),
            ttl,
            staged: Mutex::new(staged),
        };
        Ok((uploads, keys))
    }

    fn get(&self, id: UploadId) -> Result<Arc<Staged>, StoreError> {
        lock(&self.staged)
            .get(&id)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    /// An upload, held (its pieces locked) for one change at a time;
    /// [`StoreError::UploadBusy`] while another holds it.
    fn hold(&self, id: UploadId) -> Result<(Arc<Staged>, OwnedMutexGuard<Vec<Piece>>), StoreError> {
        let staged = self.get(id)?;
        let pieces = staged
            .pieces
            .clone()
            .try_lock_owned()
            .map_err(|_| StoreError::UploadBusy)?;
        Ok((staged, pieces))
    }

    fn upload_dir(&self, id: UploadId) -> PathBuf {
        self.dir.join(id.to_string())
    }

    fn expires(&self, updated_at: OffsetDateTime) -> OffsetDateTime {
        updated_at + self.ttl
    }
}

/// One upload's directory: its manifest and committed pieces (`None` if it has
/// no manifest: its opening never completed).
fn load_one(
    dir: &Path,
    id: UploadId,
    ttl: Duration,
    seam: &Seam,
) -> Result<Option<(Staged, Vec<Piece>)>, StoreError> {
    let path = dir.join(MANIFEST);
    let manifest: Manifest = match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| {
            StoreError::Unavailable(format!(
                "{} is not an upload's manifest: {err}",
                path.display()
            ))
        })?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(StoreError::io("reading", path, err)),
    };
    let mut numbered = Vec::new();
    let mut updated_at = manifest.created_at;
    for entry in fs::read_dir(dir).map_err(io_err("reading directory", dir))? {
        let entry = entry.map_err(io_err("reading directory", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".part") || name.ends_with(".json.new") {
            seam.run(Step::UploadRemove, &entry.path(), || {
                fs::remove_file(entry.path())
            })
            .map_err(io_err("removing", &entry.path()))?;
        } else if let Some(number) = name
            .strip_suffix(".piece")
            .and_then(|n| n.parse::<u32>().ok())
        {
            numbered.push(number);
            if let Some(modified) = entry.metadata().ok().and_then(|m| m.modified().ok()) {
                updated_at = updated_at.max(modified.into());
            }
        }
    }
    numbered.sort_unstable();
    let mut pieces = Vec::new();
    for (expected, number) in numbered.into_iter().enumerate() {
        if number as usize != expected {
            tracing::warn!(upload = %id, piece = number, "a piece after a missing one is left out of the upload");
            break;
        }
        pieces.push(read_piece_frame(&piece_path(dir, number))?);
    }
    let offset = pieces.iter().map(|p| p.len).sum();
    let info = info_of(id, &manifest, offset, updated_at, ttl);
    let staged = Staged {
        manifest: Mutex::new(manifest),
        info: Mutex::new(info),
        pieces: Arc::new(tokio::sync::Mutex::new(pieces.clone())),
    };
    Ok(Some((staged, pieces)))
}

/// A piece's length (from its footer) and key (from its header), unauthenticated:
/// the finish authenticates every byte.
fn read_piece_frame(path: &Path) -> Result<Piece, StoreError> {
    let file = File::open(path).map_err(io_err("opening", path))?;
    let size = file
        .metadata()
        .map_err(io_err("reading metadata of", path))?
        .len();
    let malformed = || StoreError::Unavailable(format!("{} is not a sealed piece", path.display()));
    let mut header = [0u8; 10];
    file.read_exact_at(&mut header, 0)
        .map_err(|_| malformed())?;
    let mut key_id = vec![0u8; usize::from(header[9])];
    file.read_exact_at(&mut key_id, 10)
        .map_err(|_| malformed())?;
    let mut footer = [0u8; 16];
    file.read_exact_at(&mut footer, size.checked_sub(16).ok_or_else(malformed)?)
        .map_err(|_| malformed())?;
    let len = u64::from_be_bytes(footer[..8].try_into().expect("8 bytes"));
    let key = std::str::from_utf8(&key_id).ok().and_then(KeyRef::parse);
    Ok(Piece { len, key })
}

fn piece_path(dir: &Path, number: u32) -> PathBuf {
    dir.join(format!("{number:08}.piece"))
}

fn info_of(
    id: UploadId,
    manifest: &Manifest,
    offset: u64,
    updated_at: OffsetDateTime,
    ttl: Duration,
) -> UploadInfo {
    UploadInfo {
        id,
        data_type: manifest.item.data_type,
        serialization: manifest.item.serialization,
        encrypted_in_transit: manifest.item.encrypted_in_transit,
        peer: manifest.item.peer.clone(),
        name: manifest.item.name.clone(),
        offset,
        length: manifest.length,
        created_at: manifest.created_at,
        updated_at,
        expires_at: updated_at + ttl,
    }
}

/// Replaces `dir/upload.json` durably.
fn write_manifest(seam: &Seam, dir: &Path, manifest: &Manifest) -> Result<(), StoreError> {
    let path = dir.join(MANIFEST);
    let temp = dir.join("upload.json.new");
    let bytes = serde_json::to_vec(manifest).expect("a manifest serializes");
    seam.run(Step::UploadWrite, &temp, || {
        let mut file = File::create(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()
    })
    .map_err(io_err("writing", &temp))?;
    seam.run(Step::UploadRename, &path, || fs::rename(&temp, &path))
        .map_err(io_err("renaming into place", &path))?;
    sync_dir(seam, Step::UploadSyncDir, dir)
}

/// Removes an upload's directory and makes that durable.
fn remove_dir(seam: &Seam, dir: &Path) -> Result<(), StoreError> {
    seam.run(Step::UploadRemove, dir, || fs::remove_dir_all(dir))
        .map_err(io_err("removing", dir))?;
    match dir.parent() {
        Some(parent) => sync_dir(seam, Step::UploadSyncDir, parent),
        None => Ok(()),
    }
}

pub(crate) async fn create(
    shared: &Arc<Shared>,
    item: NewItem,
    length: Option<u64>,
) -> Result<UploadInfo, StoreError> {
    if let (Some(length), Some(limit)) = (length, shared.options.max_item_size)
        && length > limit
    {
        return Err(StoreError::TooLarge { limit });
    }
    let uploads = &shared.uploads;
    let id = UploadId::new();
    let manifest = Manifest {
        version: 1,
        item_id: ItemId::new(),
        item: item.into(),
        length,
        created_at: OffsetDateTime::now_utc(),
    };
    let dir = uploads.upload_dir(id);
    let seam = shared.seam.clone();
    let written = manifest.clone();
    tokio::task::spawn_blocking(move || {
        create_private_dir(&seam, &dir)?;
        write_manifest(&seam, &dir, &written)
    })
    .await
    .map_err(joined)??;
    let info = info_of(id, &manifest, 0, manifest.created_at, uploads.ttl);
    let staged = Staged {
        manifest: Mutex::new(manifest),
        info: Mutex::new(info.clone()),
        pieces: Arc::default(),
    };
    lock(&uploads.staged).insert(id, Arc::new(staged));
    Ok(info)
}

pub(crate) async fn info(
    shared: &Arc<Shared>,
    id: UploadId,
) -> Result<Option<UploadInfo>, StoreError> {
    Ok(lock(&shared.uploads.staged)
        .get(&id)
        .map(|staged| lock(&staged.info).clone()))
}

pub(crate) async fn set_length(
    shared: &Arc<Shared>,
    id: UploadId,
    length: u64,
) -> Result<UploadInfo, StoreError> {
    let (staged, _pieces) = shared.uploads.hold(id)?;
    let mut manifest = lock(&staged.manifest).clone();
    let offset = lock(&staged.info).offset;
    match manifest.length {
        Some(known) if known == length => return Ok(lock(&staged.info).clone()),
        Some(known) => {
            return Err(StoreError::UploadLength(format!(
                "the upload's length is {known} already"
            )));
        }
        None if length < offset => {
            return Err(StoreError::UploadLength(format!(
                "the upload has {offset} bytes already, more than {length}"
            )));
        }
        None => {}
    }
    if let Some(limit) = shared.options.max_item_size
        && length > limit
    {
        return Err(StoreError::TooLarge { limit });
    }
    manifest.length = Some(length);
    let (seam, dir, written) = (
        shared.seam.clone(),
        shared.uploads.upload_dir(id),
        manifest.clone(),
    );
    tokio::task::spawn_blocking(move || write_manifest(&seam, &dir, &written))
        .await
        .map_err(joined)??;
    *lock(&staged.manifest) = manifest;
    let mut info = lock(&staged.info);
    info.length = Some(length);
    Ok(info.clone())
}

pub(crate) async fn append(
    shared: &Arc<Shared>,
    id: UploadId,
    offset: u64,
) -> Result<Box<dyn UploadAppender>, StoreError> {
    let (staged, pieces) = shared.uploads.hold(id)?;
    let info = lock(&staged.info).clone();
    if offset != info.offset {
        return Err(StoreError::UploadOffset {
            expected: info.offset,
            given: offset,
        });
    }
    let number = u32::try_from(pieces.len())
        .map_err(|_| StoreError::UploadLength("an upload has at most 2^32 pieces".into()))?;
    let dir = shared.uploads.upload_dir(id);
    let part = dir.join(format!("{number:08}.part"));
    let (seam, path) = (shared.seam.clone(), part.clone());
    let file =
        tokio::task::spawn_blocking(move || create_private_file(&seam, Step::UploadWrite, &path))
            .await
            .map_err(joined)??;
    let key = shared.keys.allocate().await?;
    let limit = match (info.length, shared.options.max_item_size) {
        (Some(length), _) => Some(length),
        (None, Some(max)) => Some(max),
        (None, None) => None,
    };
    Ok(Box::new(Appender {
        shared: shared.clone(),
        staged,
        pieces,
        id,
        number,
        start: offset,
        written: 0,
        limit,
        key: KeyRef::parse(key.id()),
        sealer: Some(Sealer::new(&key)),
        sealed: Vec::with_capacity(WRITE_BATCH + (64 << 10)),
        file: Some(file),
        part,
        committed: false,
    }))
}

/// One append in progress (see [`UploadAppender`]).
struct Appender {
    shared: Arc<Shared>,
    staged: Arc<Staged>,
    pieces: OwnedMutexGuard<Vec<Piece>>,
    id: UploadId,
    number: u32,
    start: u64,
    written: u64,
    /// Bytes the upload may not grow past.
    limit: Option<u64>,
    key: Option<KeyRef>,
    sealer: Option<Sealer>,
    sealed: Vec<u8>,
    file: Option<File>,
    part: PathBuf,
    committed: bool,
}

impl Appender {
    /// Writes the sealed bytes gathered so far (`sync`: and `fdatasync`s).
    async fn flush(&mut self, sync: bool) -> Result<(), StoreError> {
        let mut file = self.file.take().ok_or_else(StoreError::spent)?;
        let sealed = std::mem::take(&mut self.sealed);
        let (seam, path) = (self.shared.seam.clone(), self.part.clone());
        let (file, mut sealed) = tokio::task::spawn_blocking(move || {
            seam.run(Step::UploadWrite, &path, || file.write_all(&sealed))
                .map_err(io_err("writing", &path))?;
            if sync {
                seam.run(Step::UploadSync, &path, || file.sync_data())
                    .map_err(io_err("syncing", &path))?;
            }
            Ok::<_, StoreError>((file, sealed))
        })
        .await
        .map_err(joined)??;
        sealed.clear();
        self.sealed = sealed;
        self.file = Some(file);
        Ok(())
    }
}

#[async_trait::async_trait]
impl UploadAppender for Appender {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let total = self.start + self.written + bytes.len() as u64;
        if let Some(limit) = self.limit
            && total > limit
        {
            self.sealer = None;
            return Err(StoreError::UploadTooLarge { length: limit });
        }
        let sealer = self.sealer.as_mut().ok_or_else(StoreError::spent)?;
        sealer.push(bytes, &mut self.sealed);
        self.written += bytes.len() as u64;
        if self.sealed.len() >= WRITE_BATCH {
            self.flush(false).await?;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<UploadInfo, StoreError> {
        if self.written == 0 {
            return Ok(lock(&self.staged.info).clone());
        }
        let sealer = self.sealer.take().ok_or_else(StoreError::spent)?;
        let meta = PieceMeta {
            upload: self.id,
            piece: self.number,
            offset: self.start,
        };
        sealer.finish(
            &serde_json::to_vec(&meta).expect("piece metadata serializes"),
            &mut self.sealed,
        );
        self.flush(true).await?;
        drop(self.file.take());
        let (seam, part) = (self.shared.seam.clone(), self.part.clone());
        let piece = piece_path(&self.shared.uploads.upload_dir(self.id), self.number);
        tokio::task::spawn_blocking(move || {
            seam.run(Step::UploadRename, &part, || fs::rename(&part, &piece))
                .map_err(io_err("renaming into place", &part))?;
            let dir = piece
                .parent()
                .expect("a piece is in its upload's directory");
            sync_dir(&seam, Step::UploadSyncDir, dir)
        })
        .await
        .map_err(joined)??;
        self.committed = true;
        self.pieces.push(Piece {
            len: self.written,
            key: self.key,
        });
        let now = OffsetDateTime::now_utc();
        let mut info = lock(&self.staged.info);
        info.offset = self.start + self.written;
        info.updated_at = now;
        info.expires_at = self.shared.uploads.expires(now);
        Ok(info.clone())
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        if !self.committed
            && let Err(err) = fs::remove_file(&self.part)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.part.display(), %err, "cannot remove an append that did not commit");
        }
    }
}

pub(crate) async fn finish(shared: Arc<Shared>, id: UploadId) -> Result<ItemMeta, StoreError> {
    let (staged, pieces) = shared.uploads.hold(id)?;
    let info = lock(&staged.info).clone();
    if !info.is_complete() {
        return Err(StoreError::UploadIncomplete {
            offset: info.offset,
            length: info.length,
        });
    }
    let manifest = lock(&staged.manifest).clone();
    // Finished before, and the removal did not complete (a crash): the item is there.
    let meta = match shared.entry(manifest.item_id)? {
        Some(entry) => entry.meta,
        None => store_whole(&shared, id, &manifest, &info, &pieces).await?,
    };
    remove(&shared, id, &pieces).await?;
    Ok(meta)
}

/// Reads every piece back, authenticated, into an item writer under the
/// upload's item id, and commits it.
async fn store_whole(
    shared: &Arc<Shared>,
    id: UploadId,
    manifest: &Manifest,
    info: &UploadInfo,
    pieces: &[Piece],
) -> Result<ItemMeta, StoreError> {
    let mut writer: Box<dyn ItemWriter> = Box::new(LocalWriter::with_id(
        shared.clone(),
        manifest.item_id,
        info.new_item(),
        manifest.created_at,
    ));
    let (chunks, mut received) = tokio::sync::mpsc::channel(FINISH_QUEUE);
    let (keys, dir, count) = (
        shared.keys.clone(),
        shared.uploads.upload_dir(id),
        pieces.len(),
    );
    let reading = tokio::task::spawn_blocking(move || {
        let mut offset = 0;
        for number in 0..count as u32 {
            let path = piece_path(&dir, number);
            let damaged =
                |why: String| StoreError::Unavailable(format!("{}: {why}", path.display()));
            let file = File::open(&path).map_err(io_err("opening", &path))?;
            let len = file
                .metadata()
                .map_err(io_err("reading metadata of", &path))?
                .len();
            let mut reader =
                RecordReader::open(&*keys, file, 0, len).map_err(|e| damaged(e.to_string()))?;
            let meta: PieceMeta = serde_json::from_slice(reader.metadata())
                .map_err(|e| damaged(format!("not a piece: {e}")))?;
            if meta
                != (PieceMeta {
                    upload: id,
                    piece: number,
                    offset,
                })
            {
                return Err(damaged("a piece of another upload or place".into()));
            }
            for chunk in 0..reader.chunk_count() {
                let bytes = reader
                    .read_chunk(chunk)
                    .map_err(|e| damaged(e.to_string()))?;
                if chunks.blocking_send(bytes).is_err() {
                    return Ok(());
                }
            }
            offset += reader.plaintext_len();
        }
        Ok::<_, StoreError>(())
    });
    while let Some(bytes) = received.recv().await {
        writer.write(&bytes).await?;
    }
    reading.await.map_err(joined)??;
    writer.commit().await
}

pub(crate) async fn cancel(shared: &Arc<Shared>, id: UploadId) -> Result<bool, StoreError> {
    let pieces = match shared.uploads.hold(id) {
        Ok((_, pieces)) => pieces,
        Err(StoreError::NotFound) => return Ok(false),
        Err(err) => return Err(err),
    };
    remove(shared, id, &pieces).await?;
    Ok(true)
}

/// Forgets an upload: destroys its pieces' keys, then removes its files.
async fn remove(shared: &Arc<Shared>, id: UploadId, pieces: &[Piece]) -> Result<(), StoreError> {
    let (keys, seam, dir) = (
        shared.keys.clone(),
        shared.seam.clone(),
        shared.uploads.upload_dir(id),
    );
    let used: Vec<KeyRef> = pieces.iter().filter_map(|p| p.key).collect();
    tokio::task::spawn_blocking(move || {
        for key in used {
            keys.destroy(key).map_err(|(_, err)| err)?;
        }
        remove_dir(&seam, &dir)
    })
    .await
    .map_err(joined)??;
    lock(&shared.uploads.staged).remove(&id);
    Ok(())
}

pub(crate) async fn list(shared: &Arc<Shared>) -> Result<Vec<UploadInfo>, StoreError> {
    let mut infos: Vec<UploadInfo> = lock(&shared.uploads.staged)
        .values()
        .map(|staged| lock(&staged.info).clone())
        .collect();
    infos.sort_by_key(|info| (info.created_at, info.id));
    Ok(infos)
}

pub(crate) async fn expire(shared: &Arc<Shared>, now: OffsetDateTime) -> Result<u64, StoreError> {
    let expired: Vec<(UploadId, Arc<Staged>)> = lock(&shared.uploads.staged)
        .iter()
        .filter(|(_, staged)| lock(&staged.info).expires_at <= now)
        .map(|(id, staged)| (*id, staged.clone()))
        .collect();
    let mut count = 0;
    for (id, staged) in expired {
        // Busy with an append: it is active, not expired.
        let Ok(pieces) = staged.pieces.clone().try_lock_owned() else {
            continue;
        };
        remove(shared, id, &pieces).await?;
        metrics::counter!("ferry_uploads_expired_total").increment(1);
        count += 1;
    }
    Ok(count)
}
