//! The commit log in the bucket, and this server's view built from it.
//!
//! Every change to the store (an item stored, deleted, held or released) is an
//! entry of an object `log/<seq>`, sequence numbers counting up from 1 without
//! gaps. An object is only ever created with a conditional PUT
//! (`If-None-Match: *`, [`PutMode::Create`]): of two servers that try to write
//! the same sequence number, one wins and the other reads the winner's object,
//! then tries the next number. So no server overwrites another's entries, and
//! every server applies the same entries in the same order: their views agree,
//! each as of the last object it read. A server reads new objects every poll
//! interval (see [`S3Options`](super::S3Options)) and before each of its own
//! writes that lost a race.
//!
//! Applying an entry never fails the log: a record that does not authenticate,
//! or a damaged object, is reported and left where it is, never deleted.
//!
//! The view is kept on the server's disk with the number of the last object
//! applied (see [`View`]), so a restart reads only the objects written since.
//! A view whose last object is not in the bucket (the bucket emptied or
//! replaced) is rebuilt from the first, and so is one that left records out for
//! want of a storage key the server has now been given.

use std::io::Cursor;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use ferry_crypto::{CryptoError, Keyring, RecordReader};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};
use tokio::sync::broadcast;

use super::batch::{self, Change, Read};
use super::ledger::Leaves;
use super::view::{Changes, Entry, Location, View};
use crate::{ItemId, ItemMeta, StoreError};

/// Log objects fetched at once while catching up.
const READ_AHEAD: usize = 8;
/// Rebuilds of the view [`Journal::read_new`] starts before it gives up: each
/// one after the first means a compaction removed objects while it read them.
const REBUILD_TRIES: u32 = 5;
/// The pause before the second rebuild, doubled before each one after.
const REBUILD_PAUSE: Duration = Duration::from_millis(100);

/// A listed item's entry copied by a compaction: the item, where it was when
/// copied, and the changes that restate it (its record or entry, and its hold).
#[derive(Debug)]
pub(crate) struct Move {
    pub id: ItemId,
    pub from: Location,
    pub changes: Vec<Change>,
}

/// The commit log and the view it builds.
#[derive(Debug)]
pub(crate) struct Journal {
    pub objects: Arc<dyn ObjectStore>,
    root: Path,
    pub keyring: Keyring,
    view: View,
    /// The sequence number of the next object to read (or write). Held while
    /// reading or writing the log, so that objects are applied in order.
    next: tokio::sync::Mutex<u64>,
    events: broadcast::Sender<ItemMeta>,
    /// This server's signed log, once [attached](Self::attach).
    leaves: OnceLock<Arc<Leaves>>,
    /// Held for writing while the view is rebuilt (see [`settled`](Self::settled)).
    rebuilding: tokio::sync::RwLock<()>,
}

/// The view while no rebuild of it is under way (see [`Journal::settled`]).
pub(crate) struct Settled<'a> {
    view: &'a View,
    _no_rebuild: tokio::sync::RwLockReadGuard<'a, ()>,
}

impl std::ops::Deref for Settled<'_> {
    type Target = View;

    fn deref(&self) -> &View {
        self.view
    }
}

impl Journal {
    /// The journal of the log under `root`, resuming `view` where it stopped
    /// (or rebuilding it: see the [module](self)). Reads no log object yet.
    pub(crate) async fn open(
        objects: Arc<dyn ObjectStore>,
        root: Path,
        keyring: Keyring,
        events: broadcast::Sender<ItemMeta>,
        view: View,
    ) -> Result<Journal, StoreError> {
        let mut journal = Journal {
            objects,
            root,
            keyring,
            view,
            next: tokio::sync::Mutex::new(1),
            events,
            leaves: OnceLock::new(),
            rebuilding: tokio::sync::RwLock::new(()),
        };
        let view = journal.view.clone();
        let unreadable = blocking(move || view.unreadable()).await?;
        if let Some(key_id) = unreadable
            .keys()
            .find(|k| journal.keyring.find(k).is_some())
        {
            tracing::info!(%key_id, "the storage key of records the view left out is given now: rebuilding the view from the whole commit log");
            journal.clear().await?;
        }
        let view = journal.view.clone();
        let mut cursor = blocking(move || view.cursor()).await?;
        if cursor > 0 {
            match journal.objects.head(&journal.log_path(cursor)).await {
                Ok(_) => {}
                Err(object_store::Error::NotFound { .. }) => {
                    tracing::warn!(
                        cursor,
                        "the view's last commit-log object is not in the bucket (emptied or replaced?): rebuilding the view from the whole commit log"
                    );
                    journal.clear().await?;
                    cursor = 0;
                }
                Err(err) => return Err(StoreError::remote("reading the commit log", err)),
            }
        }
        *journal.next.get_mut() = cursor + 1;
        Ok(journal)
    }

    async fn clear(&self) -> Result<(), StoreError> {
        let view = self.view.clone();
        blocking(move || view.clear()).await
    }

    pub(crate) fn events(&self) -> &broadcast::Sender<ItemMeta> {
        &self.events
    }

    /// The view, once no rebuild of it is under way. Between a rebuild's
    /// clearing of the view and its end, the view holds only part of the
    /// items: a listing would miss some, a sweep would take their objects for
    /// orphans. Outside the journal, the view is read only through this (or
    /// [`read_view`](Self::read_view)); hold it only while reading the view,
    /// never across a read of the log (which may rebuild it).
    pub(crate) async fn settled(&self) -> Settled<'_> {
        Settled {
            view: &self.view,
            _no_rebuild: self.rebuilding.read().await,
        }
    }

    /// Runs `read` on the [settled](Self::settled) view, on a blocking thread.
    pub(crate) async fn read_view<T: Send + 'static>(
        &self,
        read: impl FnOnce(&View) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let settled = self.settled().await;
        let view = settled.view.clone();
        blocking(move || read(&view)).await
    }

    /// Where large items' objects are.
    pub(crate) fn item_dir(&self) -> Path {
        self.root.clone().join("items")
    }

    /// The object of a large item.
    pub(crate) fn item_path(&self, id: ItemId) -> Path {
        self.item_dir().join(format!("{id}.rec"))
    }

    /// The log object `seq`.
    pub(crate) fn log_path(&self, seq: u64) -> Path {
        self.root.clone().join("log").join(format!("{seq:020}"))
    }

    /// Reads and applies the log objects written since the last one read.
    pub(crate) async fn catch_up(&self) -> Result<(), StoreError> {
        let mut next = self.next.lock().await;
        self.read_new(&mut next).await
    }

    /// Reads and applies the log objects from `*next` on. If some of them
    /// are gone (a compaction removed them while this server was away), the
    /// view is rebuilt from the objects there are; again if a compaction
    /// removes some while the rebuild reads them, up to [`REBUILD_TRIES`]
    /// times.
    async fn read_new(&self, next: &mut u64) -> Result<(), StoreError> {
        if self.read_from(next).await? {
            return Ok(());
        }
        let _rebuilding = self.rebuilding.write().await;
        for attempt in 0..REBUILD_TRIES {
            tracing::warn!(
                from = *next,
                "commit-log objects this server had not read are compacted away: rebuilding its view from the log"
            );
            if attempt > 0 {
                // Let the removal that overtook the last rebuild end first.
                tokio::time::sleep(REBUILD_PAUSE * (1 << (attempt - 1))).await;
            }
            metrics::counter!("ferry_s3_view_rebuilds_total").increment(1);
            self.clear().await?;
            *next = 1;
            if self.read_from(next).await? {
                return Ok(());
            }
        }
        Err(StoreError::Unavailable(
            "the commit log changed while it was read; try again".into(),
        ))
    }

    /// Reads and applies the log objects from `*next` on; `false` if one is
    /// missing (see [`read_new`](Self::read_new)).
    async fn read_from(&self, next: &mut u64) -> Result<bool, StoreError> {
        let objects = self.objects.clone();
        let mut fetched = self
            .list_log(*next - 1)
            .map_ok(|(seq, _)| {
                let objects = objects.clone();
                let path = self.log_path(seq);
                async move {
                    match fetch(&*objects, &path).await {
                        Ok(bytes) => Ok((seq, Some(bytes))),
                        Err(Missing::Gone) => Ok((seq, None)),
                        Err(Missing::Failed(err)) => Err(err),
                    }
                }
            })
            .try_buffered(READ_AHEAD);
        // Read from the start, the log starts at the first object there is:
        // compactions remove objects oldest first, so those gone since the
        // listing were before it.
        let mut at_start = *next == 1;
        while let Some((seq, bytes)) = fetched.try_next().await? {
            if seq < *next {
                continue;
            }
            let bytes = match bytes {
                Some(bytes) if seq == *next || at_start => bytes,
                None if at_start => continue,
                _ => return Ok(false),
            };
            at_start = false;
            self.apply(seq, &bytes).await?;
            *next = seq + 1;
        }
        Ok(true)
    }

    /// The log objects after `after` (all from 0), oldest first: their
    /// sequence numbers and sizes. Other objects under `log/` are skipped.
    pub(crate) fn list_log(
        &self,
        after: u64,
    ) -> impl futures::Stream<Item = Result<(u64, u64), StoreError>> + Send + 'static {
        let dir = self.root.clone().join("log");
        let listing = match after {
            0 => self.objects.list(Some(&dir)),
            n => self.objects.list_with_offset(Some(&dir), &self.log_path(n)),
        };
        listing
            .map_err(|err| StoreError::remote("listing the commit log", err))
            .try_filter_map(|meta| {
                let seq = meta
                    .location
                    .filename()
                    .and_then(|name| name.parse::<u64>().ok());
                if seq.is_none() {
                    tracing::warn!(object = %meta.location, "not a commit-log object: skipped");
                }
                futures::future::ready(Ok(seq.map(|seq| (seq, meta.size))))
            })
    }

    /// Gives the journal this server's signed log: the leaves of it that the
    /// log objects since its last copy hold are counted first (those of
    /// objects the view applied before; later ones are counted as they are
    /// applied).
    pub(crate) async fn attach(&self, leaves: Arc<Leaves>) -> Result<(), StoreError> {
        let next = self.next.lock().await;
        let view = self.view.clone();
        let marks = blocking(move || view.logs())
            .await?
            .get(leaves.name())
            .copied()
            .unwrap_or_default();
        let before = leaves.size();
        if marks.last_leaf > marks.copied_through {
            let mut listed = std::pin::pin!(self.list_log(marks.copied_through));
            while let Some((seq, _)) = listed.try_next().await? {
                if seq >= *next {
                    break;
                }
                let object = match fetch(&*self.objects, &self.log_path(seq)).await {
                    Ok(object) => object,
                    Err(Missing::Gone) => continue,
                    Err(Missing::Failed(err)) => return Err(err),
                };
                // An object that does not read is reported by the view.
                for read in batch::decode(&object).unwrap_or_default() {
                    if let Read::Leaf {
                        log,
                        index,
                        writer,
                        leaf,
                    } = read
                        && log == leaves.name()
                    {
                        leaves.found(seq, index, writer, &object[leaf]);
                    }
                }
            }
        }
        if leaves.size() > before {
            tracing::info!(
                log = leaves.name(),
                leaves = leaves.size() - before,
                "leaves of this server's log found in the commit log, not copied before it stopped: copying them"
            );
        }
        leaves.opened();
        self.leaves
            .set(leaves)
            .map_err(|_| StoreError::Unavailable("the store has a log already".into()))
    }

    /// Writes `changes`, and `leaves` of this server's signed log, as the next
    /// log object, and applies it; returns its sequence number and the index
    /// of the first leaf. Once it returns, the object storage holds the
    /// object.
    pub(crate) async fn commit(
        &self,
        mut changes: Vec<Change>,
        leaves: Vec<ferry_tlog::Entry>,
    ) -> Result<(u64, u64), StoreError> {
        let no_log = || StoreError::Unavailable("this store keeps no log".into());
        let log = match leaves.is_empty() {
            true => None,
            false => Some(self.leaves.get().ok_or_else(no_log)?),
        };
        let first_leaf = changes.len();
        if let Some(log) = log {
            changes.extend(leaves.iter().map(|leaf| Change::Leaf {
                log: log.name().to_owned(),
                index: 0,
                writer: log.writer(),
                leaf: leaf.as_bytes().to_vec(),
            }));
        }
        let mut next = self.next.lock().await;
        loop {
            // The leaves' indices follow those counted, which a lost race
            // may have moved on: numbered again before each try.
            let first = match log {
                Some(log) => log.next_index().map_err(StoreError::Unavailable)?,
                None => 0,
            };
            for (change, n) in changes[first_leaf..].iter_mut().zip(first..) {
                if let Change::Leaf { index, .. } = change {
                    *index = n;
                }
            }
            let object = Bytes::from(batch::encode(&changes));
            if let Some(seq) = self.try_commit(&mut next, object).await? {
                let counted = first + (changes.len() - first_leaf) as u64;
                if let Some(log) = log
                    && log.size() < counted
                {
                    return Err(StoreError::Unavailable(
                        log.next_index().err().unwrap_or_else(|| {
                            "the log did not take the leaves (the server's log says why)".into()
                        }),
                    ));
                }
                return Ok((seq, first));
            }
        }
    }

    /// Writes the copies of `moves` that are still listed where they were, and
    /// then `closing`, as the next log object (see
    /// [`compact`](super::compact)); returns its sequence number and how many
    /// moves it holds. Which moves still hold is decided again before each
    /// try, on the view as of the object before it, so that no server ever
    /// reads a copy of an item deleted or moved meanwhile.
    pub(crate) async fn commit_moves(
        &self,
        moves: &[Move],
        closing: Option<Change>,
    ) -> Result<(u64, usize), StoreError> {
        let mut next = self.next.lock().await;
        loop {
            let view = self.view.clone();
            let at: Vec<_> = moves.iter().map(|m| (m.id, m.from)).collect();
            let still = blocking(move || view.still_at(&at)).await?;
            let kept: Vec<&Move> = moves
                .iter()
                .zip(still)
                .filter_map(|(m, still)| still.then_some(m))
                .collect();
            let changes: Vec<Change> = kept
                .iter()
                .flat_map(|m| m.changes.iter().cloned())
                .chain(closing.clone())
                .collect();
            let object = Bytes::from(batch::encode(&changes));
            if let Some(seq) = self.try_commit(&mut next, object).await? {
                return Ok((seq, kept.len()));
            }
        }
    }

    /// Tries to create `object` as log object `*next`, then applies it;
    /// `None` if another server wrote that number first (its object is
    /// applied, and the log read on, before the caller tries again).
    async fn try_commit(&self, next: &mut u64, object: Bytes) -> Result<Option<u64>, StoreError> {
        let seq = *next;
        let path = self.log_path(seq);
        match create(&*self.objects, &path, &object).await {
            Ok(true) => {
                if let Err(err) = self.apply(seq, &object).await {
                    // Committed all the same: the object is in the bucket,
                    // and is read again (first as a lost race) until the
                    // view takes it.
                    tracing::error!(seq, %err, "cannot apply a commit-log object to the view; it is read again");
                } else {
                    *next = seq + 1;
                }
                Ok(Some(seq))
            }
            Ok(false) => {
                // Another server (or an earlier try of ours whose answer
                // was lost) wrote `seq` first: read it, then try the next.
                metrics::counter!("ferry_s3_log_races_total").increment(1);
                let theirs = fetch(&*self.objects, &path)
                    .await
                    .map_err(Missing::into_error)?;
                self.apply(seq, &theirs).await?;
                *next = seq + 1;
                self.read_new(next).await?;
                Ok(None)
            }
            Err(err) => Err(StoreError::remote("writing to the commit log", err)),
        }
    }

    /// Applies the log object `seq` to the view.
    async fn apply(&self, seq: u64, object: &[u8]) -> Result<(), StoreError> {
        let reads = match batch::decode(object) {
            Ok(reads) => Some(reads),
            Err(why) => {
                metrics::counter!("ferry_s3_log_damaged_total").increment(1);
                tracing::error!(seq, %why, "a commit-log object cannot be read: its changes are left out, and the object is kept");
                None
            }
        };
        let mut listed = Vec::new();
        let mut changes = Changes::default();
        let Some(reads) = reads else {
            changes.left_out(&self.view, seq)?;
            let view = self.view.clone();
            return blocking(move || view.apply(changes, seq)).await;
        };
        for read in reads {
            match read {
                Read::Record { record, moved } => {
                    let (base, len) = (record.start as u64, record.len() as u64);
                    let location = Location::Batch { seq, base, len };
                    let source = Cursor::new(object);
                    if let Some(meta) = self.record_meta(source, base, len, seq, &mut changes)? {
                        if !moved {
                            listed.push(meta.clone());
                        }
                        changes.insert(Entry { meta, location });
                    }
                }
                Read::Large {
                    record_len,
                    meta,
                    moved,
                } => {
                    let location = Location::Object {
                        len: record_len,
                        seq,
                        meta_base: meta.start as u64,
                        meta_len: meta.len() as u64,
                    };
                    let sealed = &object[meta];
                    let (source, len) = (Cursor::new(sealed), sealed.len() as u64);
                    if let Some(meta) = self.record_meta(source, 0, len, seq, &mut changes)? {
                        if !moved {
                            listed.push(meta.clone());
                        }
                        changes.insert(Entry { meta, location });
                    }
                }
                Read::Tombstone(id) => {
                    if !changes.remove(&self.view, id)? {
                        tracing::info!(%id, seq, "a delete of an item on legal hold is not applied");
                    }
                }
                Read::Hold(id, held) => {
                    changes.set_held(&self.view, id, held)?;
                }
                Read::Compacted { through, at_ms } => {
                    changes.compacted(&self.view, through, at_ms)?;
                }
                Read::Leaf {
                    log,
                    index,
                    writer,
                    leaf,
                } => {
                    changes.leaf(&self.view, &log, seq)?;
                    if let Some(leaves) = self.leaves.get()
                        && leaves.name() == log
                    {
                        leaves.found(seq, index, writer, &object[leaf]);
                    }
                }
                Read::Copied { log, through } => {
                    changes.copied(&self.view, &log, through)?;
                }
            }
        }
        let view = self.view.clone();
        blocking(move || view.apply(changes, seq)).await?;
        for meta in listed {
            let _ = self.events.send(meta);
        }
        Ok(())
    }

    /// The metadata of the record at `base..base + len` of `source`, or `None`
    /// (reported) if it cannot be read.
    fn record_meta(
        &self,
        source: Cursor<&[u8]>,
        base: u64,
        len: u64,
        seq: u64,
        changes: &mut Changes,
    ) -> Result<Option<ItemMeta>, StoreError> {
        let opened = match RecordReader::open(&self.keyring, source, base, len) {
            Ok(reader) => ItemMeta::from_record_bytes(reader.metadata()).map_err(|err| {
                tracing::error!(seq, base, %err, "a record of the commit log holds no item metadata: left out, and kept");
            }),
            Err(CryptoError::UnknownKey(key_id)) => {
                changes.unreadable(key_id);
                Err(())
            }
            Err(err) => {
                metrics::counter!("ferry_s3_log_damaged_total").increment(1);
                tracing::error!(seq, base, %err, "a record of the commit log does not authenticate: left out, and kept");
                Err(())
            }
        };
        match opened {
            Ok(meta) => Ok(Some(meta)),
            Err(()) => {
                changes.left_out(&self.view, seq)?;
                Ok(None)
            }
        }
    }
}

/// Why a log object could not be read.
pub(crate) enum Missing {
    /// It is not in the bucket (any more).
    Gone,
    Failed(StoreError),
}

impl Missing {
    pub(crate) fn into_error(self) -> StoreError {
        match self {
            Missing::Gone => StoreError::Unavailable("a commit-log object is missing".into()),
            Missing::Failed(err) => err,
        }
    }
}

/// Creates `object` at `path` if nothing is there (`If-None-Match: *`):
/// `false` if something is.
pub(crate) async fn create(
    objects: &dyn ObjectStore,
    path: &Path,
    object: &Bytes,
) -> Result<bool, object_store::Error> {
    let put = objects
        .put_opts(
            path,
            PutPayload::from(object.clone()),
            PutMode::Create.into(),
        )
        .await;
    match put {
        Ok(_) => Ok(true),
        Err(
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
        ) => Ok(false),
        Err(err) => Err(err),
    }
}

/// The whole object at `path`.
pub(crate) async fn fetch(objects: &dyn ObjectStore, path: &Path) -> Result<Bytes, Missing> {
    let context = || format!("reading object {path}");
    let failed = |err| match err {
        object_store::Error::NotFound { .. } => Missing::Gone,
        err => Missing::Failed(StoreError::remote(context(), err)),
    };
    let got = objects.get(path).await.map_err(failed)?;
    got.bytes().await.map_err(failed)
}

/// Runs `work` (on the view's catalog, which blocks on the disk) on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(crate::joined)?
}
