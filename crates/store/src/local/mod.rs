//! [`LocalStore`]: the store on a local directory.
//!
//! ```text
//! DIR/            mode 0700
//!   LOCK          held (flock) while a store has the directory open
//!   segments/     NNNNNNNN.log: append-only logs of small items and tombstones,
//!                 each followed by zeros: space prepared for the next commits
//!   items/        <id>.rec: one sealed record per large item
//!   keys/         NNNNNNNN.keys: every item's own data key, wrapped by the
//!                 storage key (see [`keys`])
//!   tmp/          <id>.part: large items being received (emptied on open)
//!   holds         the ids of the items on legal hold, sorted, one a line (absent
//!                 until the first hold); replaced whole through holds.new
//!   uploads/      <upload id>/: an unfinished resumable upload, its committed
//!                 appends each a sealed piece (see [`uploads`])
//!   ledger/       NNNNNNNN.log: the store's log of what happens to items, one
//!                 leaf a frame; checkpoint: the last signed checkpoint saved
//!                 (see [`ledger`])
//!   catalog/      catalog.redb: the listed items and where each record is, on
//!                 disk (see [`listing`]); derived from segments/ and items/,
//!                 resumed from its cursor at open (see [`resume`]), rebuilt by
//!                 reading them all if lost
//! ```
//!
//! Guarantees:
//! - An item is listed only once its sealed record is durable: small items (at
//!   most `inline_max` bytes) after the group fsync of the log (see [`log`]), large
//!   ones after `fdatasync`, rename into `items/` and an fsync of `items/`.
//! - An item whose commit did not return (a dropped writer, a cut transfer) is
//!   not listed, and its temporary file is removed at once or on the next open.
//!   After a crash, or a failed commit, exactly two kinds of unacknowledged item
//!   may be listed, always whole (every listed record authenticates):
//!   - a small item of the last group written, whose `fdatasync` had not
//!     returned when the process or the machine stopped, if its frame reached
//!     the disk whole, even after a torn frame of the same group (recovery skips
//!     a frame that does not check and reads on). The open fsyncs the last
//!     segment before it trusts its tail, so such an item, once listed, stays;
//!   - a large item renamed into `items/` whose commit then failed or did not
//!     return: the fsync of `items/` failed and the unlink of the record failed
//!     too, or the process died between the rename and the end of that fsync.
//!
//!   An acknowledged item is never lost, and a deleted item never comes back.
//! - Reads authenticate every chunk before yielding it, and check that the record
//!   found is the item's own.
//! - Each item is sealed with its own data key (envelope encryption), kept in
//!   `keys/` apart from the item data. A delete first destroys that key durably
//!   (crypto-shredding): from then on no copy of the record, anywhere, can be
//!   decrypted. Records written before data keys (sealed with a storage key
//!   directly) still read, and their deletes are not shredded.
//! - Deletes are durable when they return: an item file is unlinked and `items/`
//!   fsynced; a logged item gets a tombstone frame through the group committer.
//!   Log space comes back as items are deleted: a segment at least half deleted is
//!   compacted (its listed records copied to the end of the log), and a segment
//!   that lists nothing is removed (see [`reclaim`] and [`compact`]).
//! - Nothing the store cannot read is destroyed: a record sealed with a key that
//!   was not given makes the open fail ([`StoreError::MissingKeys`]) unless
//!   [`LocalOptions::allow_missing_keys`] is set, and then nothing is reclaimed; a
//!   damaged record is kept where it is (see [`recover`]).
//! - A failed `fdatasync` of the log or fsync of `items/` is never retried: the
//!   log cuts the group back and stops, `items/` refuses large items, until the
//!   store is reopened (see [`log`] and [`fsutil`]).
//! - A held item is not deleted ([`StoreError::Held`]) until its hold is lifted.
//!   A change of holds returns once the new `holds` file is durable (written to
//!   `holds.new`, fsynced, renamed, the directory fsynced); a failed one changes
//!   nothing (see [`holds`]).
//! - With a log ([`LocalOptions::ledger`]), an item's `stored` leaf is written
//!   before its commit returns (beside the record's group commit; durable
//!   then too if its sender gets a receipt) and durable before any checkpoint
//!   holds it (a lost one is written again from its
//!   record at the next open); a delete's leaf is durable before its key is
//!   destroyed, a hold's after the change (see [`ledger`]).
//! - Memory does not grow with the number of items: the listing is the on-disk
//!   catalog (see [`listing`]); only a few counters per log segment are kept.
//!   (The store's signed log, when kept, holds about 8 bytes a leaf in memory
//!   and an open reads every leaf: see [`ledger`].)
//!   An open reads the log only from the catalog's cursor (see [`resume`]).
//! - A commit or delete, once begun, runs to completion in a task of its own even
//!   if its caller stops waiting, so the index always agrees with the disk.
//! - Every file operation goes through a [`seam`], where tests fail it or crash
//!   the store (`tests/crash.rs` does so at every step).
//!
//! Throughput: with `W` writers each waiting for its commit, small items commit
//! at about `W / (fdatasync latency + W × ~15 µs of CPU)` per second, since one
//! fdatasync covers everything queued while the previous one ran
//! (`examples/bench_store.rs` measures it). The log prepares its space ahead (see
//! [`log`]), so that fdatasync writes the group's data blocks and not the inode.

mod compact;
mod direct;
#[cfg(test)]
mod faults;
mod file;
mod frame;
mod fsutil;
mod holds;
mod index;
mod keys;
mod ledger;
mod listing;
mod log;
mod maintain;
mod read;
mod reclaim;
mod recover;
mod resume;
mod seam;
#[cfg(test)]
mod tests;
mod uploads;
mod writer;

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ferry_crypto::Keyring;
use tokio::sync::broadcast;

use self::file::joined;
use self::fsutil::{GroupSync, create_private_dir, io_err};
use self::holds::Holds;
use self::index::{Entry, Location};
use self::keys::{KeyRef, KeyStore, Wrapping};
use self::ledger::{LocalLedger, Wanted, reconcile};
use self::listing::Listing;
use self::log::{Log, OnDurable, Position};
use self::maintain::maintain_log;
use self::reclaim::Segments;
use self::seam::{Seam, Step};
use self::uploads::Uploads;
use self::writer::LocalWriter;
use crate::shares::MemoryShares;
use crate::{
    Cause, ContentStream, ItemId, ItemMeta, ItemWriter, Ledger, ListQuery, NewItem, Page, Store,
    StoreError, UploadAppender, UploadId, UploadInfo,
};
use ferry_tlog::Actor;
use time::OffsetDateTime;

/// The store's log rotates its segments at this size.
const LEDGER_SEGMENT_SIZE: u64 = 16 << 20;

/// Leaves appended with one request while catching up at open.
const CATCH_UP_BATCH: usize = 4096;

/// Appends the leaves [`reconcile`] planned, and records the indices of the
/// `stored` ones among them.
async fn catch_up(
    ledger: &LocalLedger,
    shared: &Shared,
    plan: Vec<(Option<ItemId>, ferry_tlog::Entry)>,
) -> Result<(), StoreError> {
    if plan.is_empty() {
        return Ok(());
    }
    tracing::info!(
        leaves = plan.len(),
        "bringing the store's log up to date with its items"
    );
    for batch in plan.chunks(CATCH_UP_BATCH) {
        let entries = batch.iter().map(|(_, entry)| entry.clone()).collect();
        let first = ledger.append_all(entries).await?;
        let updates: Vec<(ItemId, u64)> = batch
            .iter()
            .enumerate()
            .filter_map(|(offset, (id, _))| Some(((*id)?, first + offset as u64)))
            .collect();
        shared.listing.set_log_index(&updates)?;
    }
    Ok(())
}

/// Committed items buffered for slow subscribers.
const EVENT_BUFFER: usize = 4096;

/// Settings of a [`LocalStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalOptions {
    /// Largest item accepted, in bytes; writing past it is [`StoreError::TooLarge`].
    pub max_item_size: Option<u64>,
    /// Items of at most this many bytes are kept in memory while they arrive and
    /// appended to the log on commit; larger ones stream to their own file.
    /// Capped at 16 MiB.
    pub inline_max: usize,
    /// Log segments rotate once they reach this many bytes; a segment is
    /// compacted once half this many of its bytes are deleted.
    pub segment_size: u64,
    /// Open even if some records were sealed with storage keys that are not in
    /// the keyring: serve what the keyring reads, and touch nothing else (no log
    /// space is reclaimed while such records are there). Without it, such a
    /// store refuses to open with [`StoreError::MissingKeys`].
    pub allow_missing_keys: bool,
    /// Data keys per key file: a new file of fresh keys (128 bytes each) is
    /// written whenever the last one is used up.
    pub key_file_slots: u32,
    /// Unfinished uploads expire after this long without a committed append.
    pub upload_ttl: std::time::Duration,
    /// Keep a tamper-evident log of what happens to items (see
    /// [`Ledger`](crate::Ledger)). A store opened without it appends nothing
    /// to a log it has; the next open with it brings the log up to date.
    pub ledger: bool,
    /// Memory all large items being written may hold together: each holds about
    /// [`LARGE_ITEM_MEMORY`] bytes (the batch being received, the one being
    /// sealed, the sealed bytes being gathered and those being written). A large item beyond that many waits for
    /// one to end before it starts.
    pub large_item_memory: usize,
}

/// What one large item being written holds in memory (see
/// [`LocalOptions::large_item_memory`]).
pub const LARGE_ITEM_MEMORY: usize = file::SPILL_MEMORY;

impl Default for LocalOptions {
    fn default() -> LocalOptions {
        LocalOptions {
            max_item_size: None,
            inline_max: 256 << 10,
            segment_size: 64 << 20,
            allow_missing_keys: false,
            key_file_slots: 16_384,
            upload_ttl: std::time::Duration::from_secs(24 * 3600),
            ledger: true,
            large_item_memory: 256 << 20,
        }
    }
}

/// The directories of a store.
#[derive(Debug)]
pub(crate) struct Paths {
    pub root: PathBuf,
    pub segments: PathBuf,
    pub items: PathBuf,
    pub keys: PathBuf,
    pub tmp: PathBuf,
    pub ledger: PathBuf,
    pub uploads: PathBuf,
}

impl Paths {
    fn new(root: &Path) -> Paths {
        Paths {
            root: root.to_owned(),
            segments: root.join("segments"),
            items: root.join("items"),
            keys: root.join("keys"),
            tmp: root.join("tmp"),
            ledger: root.join("ledger"),
            uploads: root.join("uploads"),
        }
    }

    /// The file of a large item.
    pub(crate) fn record(&self, id: ItemId) -> PathBuf {
        self.items.join(format!("{id}.rec"))
    }
}

/// What every writer, reader and the store itself share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub paths: Paths,
    /// The data keys, and the storage keys that wrap them.
    pub keys: Arc<KeyStore>,
    pub options: LocalOptions,
    /// The listed items (see [`listing`]).
    pub listing: Listing,
    pub log: Log,
    /// Where the log ends, for checkpoints.
    log_end: Arc<LogEnd>,
    /// Whether the catalog is checkpointed (not while records the keyring does
    /// not open are kept, nor for a store with records sealed without data
    /// keys: those are read whole at every open).
    checkpoints: bool,
    /// Held (shared) by every append from before it is written until the index
    /// and `segments` know of it; held exclusively while a reclaim pass decides.
    pub append_gate: tokio::sync::RwLock<()>,
    segments: Mutex<Segments>,
    /// One pass of compaction and reclaiming at a time.
    maintaining: tokio::sync::Mutex<()>,
    /// Records sealed with keys not given were found at open (and the store was
    /// told to open anyway): no log space is reclaimed, since a tombstone may
    /// unlist an item of such a record.
    keep_everything: bool,
    pub items_sync: GroupSync,
    /// The items on legal hold.
    holds: Holds,
    /// The store's log, if it keeps one.
    pub ledger: Option<Arc<LocalLedger>>,
    /// The unfinished uploads.
    pub uploads: Uploads,
    /// [`LocalOptions::large_item_memory`], a share per large item being written.
    pub large_items: MemoryShares,
    /// Every file operation goes through it (see [`seam`]).
    pub seam: Seam,
    /// The segments below this one hold frames of the first version.
    pub bound_from: u32,
    events: broadcast::Sender<ItemMeta>,
    _lock: File,
}

impl Shared {
    fn segments(&self) -> MutexGuard<'_, Segments> {
        self.segments.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lists a committed item and tells subscribers. A logged item's caller holds
    /// the append gate.
    pub(crate) fn publish(&self, entry: Entry) -> Result<(), StoreError> {
        let meta = entry.meta.clone();
        let frame = entry.location.log_frame();
        self.listing.insert(entry)?;
        if let Some((segment, bytes)) = frame {
            self.segments().listed(segment, bytes);
        }
        let _ = self.events.send(meta);
        Ok(())
    }

    pub(crate) fn entry(&self, id: ItemId) -> Result<Option<Entry>, StoreError> {
        self.listing.get(id)
    }

    /// Records in the catalog how far the log is applied (see [`resume`]).
    /// The caller holds the append gate exclusively.
    fn checkpoint_now(&self) -> Result<(), StoreError> {
        let written = self.log_end.written.load(Ordering::Acquire);
        let at = resume::unpack(self.log_end.end.load(Ordering::Acquire));
        let tail = resume::tail_before(&self.paths.segments, at).ok_or_else(|| {
            StoreError::Unavailable(format!("log segment {} cannot be read", at.segment))
        })?;
        let checkpoint = resume::Checkpoint {
            cursor: at,
            ends: self
                .log
                .ends()
                .into_iter()
                .filter(|(segment, _)| *segment < at.segment)
                .collect(),
            refused: self.segments().refused_counts(),
            tail,
            ledger: self.ledger.as_ref().map(|l| l.size()),
        };
        self.listing
            .checkpoint(resume::pack(at), resume::VALUE, checkpoint.encode())?;
        self.log_end.checkpointed.store(written, Ordering::Release);
        Ok(())
    }

    /// Some listed item has no leaf (its append failed): no checkpoint may
    /// pass it until an open reads it again and appends it.
    pub(crate) fn leaf_gap(&self) -> bool {
        self.log_end.leaf_gap.load(Ordering::Acquire)
    }

    /// Notes that a listed item has no leaf (see [`Shared::leaf_gap`]).
    pub(crate) fn note_leaf_gap(&self) {
        self.log_end.leaf_gap.store(true, Ordering::Release);
    }

    /// Whether enough log was written since the last checkpoint for another;
    /// `true` claims it (see [`resume::take_due`]).
    pub(crate) fn checkpoint_due(&self) -> bool {
        let end = &self.log_end;
        self.checkpoints
            && !self.leaf_gap()
            && end
                .written
                .load(Ordering::Acquire)
                .saturating_sub(end.checkpointed.load(Ordering::Acquire))
                >= resume::CHECKPOINT_BYTES
            && !end.taking.swap(true, Ordering::AcqRel)
    }

    /// Fills in whether the item is on hold.
    fn mark(&self, meta: &mut ItemMeta) {
        meta.held = self.holds.contains(meta.id);
    }

    fn marked(&self, mut meta: ItemMeta) -> ItemMeta {
        self.mark(&mut meta);
        meta
    }
}

impl Drop for Shared {
    /// A store closed checkpoints its catalog, so that the next open reads
    /// nothing of the log.
    fn drop(&mut self) {
        if !self.checkpoints {
            return;
        }
        let Ok(_no_appends) = self.append_gate.try_write() else {
            return;
        };
        // Every listed item's leaf must be durable before the checkpoint: the
        // next open checks only the leaves of the items it reads.
        if self.ledger.as_ref().is_some_and(|l| !l.is_durable()) || self.leaf_gap() {
            return;
        }
        if let Err(err) = self.checkpoint_now().and_then(|()| self.listing.flush()) {
            tracing::warn!(%err, "cannot checkpoint the catalog at close; the next open reads more of the log");
        }
    }
}

/// The store on a local directory. See the module docs of `local/mod.rs` for the layout and
/// what it guarantees.
#[derive(Debug)]
pub struct LocalStore {
    shared: Arc<Shared>,
}

impl LocalStore {
    /// Opens (creating it, mode 0700, if needed) the store in `dir`: takes the
    /// directory's lock, empties `tmp/`, recovers the log (cutting a torn tail) and
    /// rebuilds the index. Records that fail authentication are logged, left out
    /// of the listing and kept.
    ///
    /// # Errors
    /// [`StoreError::MissingKeys`] if some records were sealed with keys that are
    /// not in `keyring` (and [`LocalOptions::allow_missing_keys`] is not set):
    /// nothing was changed.
    pub async fn open(
        dir: &Path,
        keyring: Keyring,
        options: LocalOptions,
    ) -> Result<Arc<LocalStore>, StoreError> {
        LocalStore::open_with(dir, keyring, options, Seam::default()).await
    }

    /// [`LocalStore::open`] with a seam over its file operations (tests give it
    /// a hook).
    pub(crate) async fn open_with(
        dir: &Path,
        keyring: Keyring,
        mut options: LocalOptions,
        seam: Seam,
    ) -> Result<Arc<LocalStore>, StoreError> {
        options.inline_max = options.inline_max.min(16 << 20);
        let dir = dir.to_owned();
        let shared = tokio::task::spawn_blocking(move || {
            let paths = Paths::new(&dir);
            for d in [&dir, &paths.segments, &paths.items, &paths.keys, &paths.tmp] {
                create_private_dir(&seam, d)?;
            }
            let lock = lock_dir(&dir)?;
            let keys = Arc::new(KeyStore::open(
                &paths.keys,
                keyring,
                seam.clone(),
                options.key_file_slots,
            )?);
            let wrapping = keys.wrapping()?;
            // Some data key wrapped by a storage key not given: the store is
            // read whole (no checkpoint is resumed then) before the catalog is
            // opened, so that a start refused for a missing key leaves every
            // file as it was (opening the catalog's database rewrites its
            // bookkeeping).
            let read_first = match wrapping {
                Wrapping::Other => Some(recover::recover(
                    &paths,
                    &keys,
                    &seam,
                    options.allow_missing_keys,
                    None,
                )?),
                _ => None,
            };
            let (listing, checkpoint) = open_listing(&paths, wrapping, options.ledger)?;
            let mut recovered = match read_first {
                Some(recovered) => recovered,
                None => {
                    let resume = match (&listing, checkpoint) {
                        (Some(listing), Some(checkpoint)) => Some(resume::Resume {
                            listing,
                            checkpoint,
                            wrapping,
                        }),
                        _ => None,
                    };
                    recover::recover(&paths, &keys, &seam, options.allow_missing_keys, resume)?
                }
            };
            let (uploads, upload_keys) = Uploads::load(&paths.uploads, options.upload_ttl, &seam)?;
            // The pieces name their keys as records do: kept, and never handed
            // out again as fresh ones.
            let key_use_of = |recovered: &mut recover::Recovered| {
                let mut key_use = std::mem::take(&mut recovered.key_use);
                key_use.named.extend(upload_keys.iter().copied());
                key_use.kept.extend(upload_keys.iter().copied());
                key_use
            };
            let mut key_use = key_use_of(&mut recovered);
            let keep_everything = !recovered.missing_keys.is_empty();
            if keep_everything {
                tracing::warn!(
                    records = recovered.missing_keys.values().sum::<usize>(),
                    key_ids = %recovered.missing_keys.keys().cloned().collect::<Vec<_>>().join(", "),
                    "starting without the storage keys of some records, as told: they are not listed, and kept as they are (no log space is reclaimed until they can be read)"
                );
            }
            let log_end = Arc::new(LogEnd::at(Position {
                segment: recovered.segment,
                offset: recovered.segment_end.len,
            }));
            let log = Log::start(
                paths.segments.clone(),
                recovered.segment,
                recovered.segment_end,
                recovered.ends,
                options.segment_size,
                seam.clone(),
                Some(log_end.tracker()),
            )?;
            let items_sync = GroupSync::new(paths.items.clone(), seam.clone());
            let holds = Holds::load(&paths.root, &seam)?;
            let (ledger, plan) = if options.ledger {
                create_private_dir(&seam, &paths.ledger)?;
                // Resumed, only the replayed items' leaves are looked for (see
                // `reconcile`); with none, the ledger may take its saved tree.
                let wanted = match (recovered.resumed, recovered.index.len()) {
                    (true, 0) => Wanted::None,
                    (true, _) => Wanted::These(recovered.index.ids().collect()),
                    (false, _) => Wanted::All,
                };
                let every_item = matches!(wanted, Wanted::All);
                let (mut ledger, mut known) =
                    LocalLedger::open(&paths.ledger, LEDGER_SEGMENT_SIZE, &seam, wanted)?;
                if recovered.ledger_size.is_some_and(|size| ledger.size() < size) {
                    tracing::warn!(
                        "the store's log has lost leaves since the catalog's checkpoint; reading every record to give each its leaf"
                    );
                    if !every_item {
                        drop(ledger);
                        (ledger, known) = LocalLedger::open(
                            &paths.ledger,
                            LEDGER_SEGMENT_SIZE,
                            &seam,
                            Wanted::All,
                        )?;
                    }
                    recovered = recover::recover(
                        &paths,
                        &keys,
                        &seam,
                        options.allow_missing_keys,
                        None,
                    )?;
                    key_use = key_use_of(&mut recovered);
                }
                // Resumed, the index holds only what the replay read: which
                // leaves have no listed item is not known.
                let blind = keep_everything || recovered.resumed;
                let plan = reconcile(&known, &mut recovered.index, blind);
                (Some(Arc::new(ledger)), plan)
            } else {
                (None, Vec::new())
            };
            let listing = match listing {
                Some(listing) if recovered.resumed => {
                    listing.apply_replay(&mut recovered.index, &recovered.removed)?;
                    listing
                }
                other => {
                    drop(other);
                    Listing::rebuild(&paths.root, &mut recovered.index)?
                }
            };
            for (segment, count, bytes) in listing.tallies()? {
                if segment != listing::FILES {
                    recovered.segments.set_listed(segment, count, bytes);
                }
            }
            let shared = Shared {
                paths,
                keys,
                large_items: MemoryShares::new(
                    options.large_item_memory,
                    LARGE_ITEM_MEMORY,
                    "ferry_store_large_item_waits_total",
                ),
                options,
                listing,
                log,
                log_end,
                checkpoints: !keep_everything && !recovered.legacy,
                append_gate: tokio::sync::RwLock::new(()),
                segments: Mutex::new(recovered.segments),
                maintaining: tokio::sync::Mutex::new(()),
                keep_everything,
                items_sync,
                holds,
                ledger,
                uploads,
                seam,
                bound_from: recovered.bound_from,
                events: broadcast::channel(EVENT_BUFFER).0,
                _lock: lock,
            };
            Ok::<_, StoreError>((shared, key_use, plan))
        })
        .await
        .map_err(joined)??;
        let (shared, key_use, plan) = shared;
        if let Some(ledger) = &shared.ledger {
            catch_up(ledger, &shared, plan).await?;
        }
        shared.keys.settle(key_use).await?;
        let shared = Arc::new(shared);
        if let Err(err) = resume::take(&shared).await {
            tracing::warn!(%err, "cannot checkpoint the catalog; the next open reads more of the log");
        }
        maintain_log(&shared, None).await;
        Ok(Arc::new(LocalStore { shared }))
    }
}

/// Opens the store's catalog, and its checkpoint if the open can resume from
/// it (not when `wrapping`, how the data keys are wrapped, is
/// [`Wrapping::Other`]); without a catalog (it cannot be opened) or a
/// checkpoint, the store is read whole and the catalog rebuilt from it (see
/// [`resume`]).
fn open_listing(
    paths: &Paths,
    wrapping: Wrapping,
    ledger: bool,
) -> Result<(Option<Listing>, Option<resume::Checkpoint>), StoreError> {
    let listing = match Listing::open(&paths.root) {
        Ok(listing) => listing,
        Err(err) => {
            tracing::warn!(%err, "the catalog cannot be opened; reading the whole store to rebuild it (nothing else is changed)");
            return Ok((None, None));
        }
    };
    let why = match resume::checkpoint(paths, &listing, ledger) {
        Ok(checkpoint) => match wrapping {
            Wrapping::Other => "some data keys are wrapped by a storage key not given".to_owned(),
            _ => return Ok((Some(listing), Some(checkpoint))),
        },
        Err(why) => why,
    };
    let empty = std::fs::read_dir(&paths.segments).map_or(true, |mut dir| dir.next().is_none());
    if empty {
        tracing::debug!(reason = %why, "a new store: its catalog is made");
    } else {
        tracing::info!(reason = %why, "reading the whole store; the catalog is rebuilt from it");
    }
    Ok((Some(listing), None))
}

/// Where the log of items ends, as its committer last said, and how much of it
/// was written since the last checkpoint (see [`resume`]).
#[derive(Debug)]
pub(crate) struct LogEnd {
    /// The end, as a cursor ([`resume::pack`]).
    end: std::sync::atomic::AtomicU64,
    /// Bytes written since the store opened.
    written: std::sync::atomic::AtomicU64,
    /// `written` at the last checkpoint.
    checkpointed: std::sync::atomic::AtomicU64,
    /// A checkpoint is being taken.
    taking: std::sync::atomic::AtomicBool,
    /// See [`Shared::leaf_gap`].
    leaf_gap: std::sync::atomic::AtomicBool,
}

impl LogEnd {
    fn at(end: Position) -> LogEnd {
        LogEnd {
            end: resume::pack(end).into(),
            written: 0.into(),
            checkpointed: 0.into(),
            taking: false.into(),
            leaf_gap: false.into(),
        }
    }

    /// Told of every group the committer writes.
    fn tracker(self: &Arc<Self>) -> OnDurable {
        let end = self.clone();
        Box::new(move |segment, offset, bytes| {
            let len = bytes.len() as u64;
            let at = Position {
                segment,
                offset: offset + len,
            };
            end.end.store(resume::pack(at), Ordering::Release);
            end.written.fetch_add(len, Ordering::AcqRel);
        })
    }
}

/// Takes the store directory's lock, so that two stores never share a directory.
fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err("opening", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked(dir.to_owned())),
        Err(std::fs::TryLockError::Error(err)) => Err(StoreError::io("locking", path, err)),
    }
}

#[async_trait::async_trait]
impl Store for LocalStore {
    async fn begin(&self, item: NewItem) -> Result<Box<dyn ItemWriter>, StoreError> {
        Ok(Box::new(LocalWriter::new(self.shared.clone(), item)))
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        // Off the runtime's threads: a listing first applies what is queued.
        let shared = self.shared.clone();
        let query = query.clone();
        let mut page = tokio::task::spawn_blocking(move || shared.listing.list(&query))
            .await
            .map_err(joined)??;
        page.items
            .iter_mut()
            .for_each(|meta| self.shared.mark(meta));
        Ok(page)
    }

    async fn get(&self, id: ItemId) -> Result<Option<ItemMeta>, StoreError> {
        let meta = self.shared.listing.get(id)?.map(|e| e.meta);
        Ok(meta.map(|meta| self.shared.marked(meta)))
    }

    async fn open(
        &self,
        id: ItemId,
        range: Option<Range<u64>>,
    ) -> Result<Option<(ItemMeta, ContentStream)>, StoreError> {
        let opened = read::open(self.shared.clone(), id, range).await?;
        Ok(opened.map(|(meta, stream)| (self.shared.marked(meta), stream)))
    }

    async fn set_hold_as(
        &self,
        id: ItemId,
        held: bool,
        by: &Actor,
    ) -> Result<Option<ItemMeta>, StoreError> {
        // A task of its own, like a delete: memory always agrees with the file.
        tokio::spawn(set_hold(self.shared.clone(), id, held, by.clone()))
            .await
            .map_err(joined)?
    }

    async fn delete_as(&self, id: ItemId, cause: &Cause) -> Result<bool, StoreError> {
        // A task of its own, so that a delete completes even if the caller stops
        // waiting: the index never disagrees with the disk.
        tokio::spawn(delete(self.shared.clone(), id, cause.clone()))
            .await
            .map_err(joined)?
    }

    async fn upload_create(
        &self,
        item: NewItem,
        length: Option<u64>,
    ) -> Result<UploadInfo, StoreError> {
        uploads::create(&self.shared, item, length).await
    }

    async fn upload_info(&self, id: UploadId) -> Result<Option<UploadInfo>, StoreError> {
        uploads::info(&self.shared, id).await
    }

    async fn upload_set_length(&self, id: UploadId, length: u64) -> Result<UploadInfo, StoreError> {
        uploads::set_length(&self.shared, id, length).await
    }

    async fn upload_append(
        &self,
        id: UploadId,
        offset: u64,
    ) -> Result<Box<dyn UploadAppender>, StoreError> {
        uploads::append(&self.shared, id, offset).await
    }

    async fn upload_finish(&self, id: UploadId) -> Result<ItemMeta, StoreError> {
        tokio::spawn(uploads::finish(self.shared.clone(), id))
            .await
            .map_err(joined)?
    }

    async fn upload_cancel(&self, id: UploadId) -> Result<bool, StoreError> {
        uploads::cancel(&self.shared, id).await
    }

    async fn uploads(&self) -> Result<Vec<UploadInfo>, StoreError> {
        uploads::list(&self.shared).await
    }

    async fn expire_uploads(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        uploads::expire(&self.shared, now).await
    }

    fn ledger(&self) -> Option<Arc<dyn Ledger>> {
        self.shared
            .ledger
            .clone()
            .map(|ledger| ledger as Arc<dyn Ledger>)
    }

    fn subscribe(&self) -> broadcast::Receiver<ItemMeta> {
        self.shared.events.subscribe()
    }

    async fn count(&self) -> usize {
        let shared = self.shared.clone();
        let counted = tokio::task::spawn_blocking(move || shared.listing.len())
            .await
            .unwrap_or_else(|err| Err(joined(err)));
        match counted {
            Ok(len) => usize::try_from(len).unwrap_or(usize::MAX),
            Err(err) => {
                tracing::error!(%err, "cannot count the listed items");
                0
            }
        }
    }
}

/// Deletes an item durably (see [`Store::delete`]).
async fn delete(shared: Arc<Shared>, id: ItemId, cause: Cause) -> Result<bool, StoreError> {
    // Refused if held; and no hold changes until this delete is done.
    let _unheld = shared.holds.unheld(id).await?;
    if shared.entry(id)?.is_none() {
        return Ok(false);
    }
    // The log says so first; if the delete then does not happen, it says that too.
    if let Some(ledger) = &shared.ledger {
        ledger
            .append_all(vec![cause.entry(&id.to_string())])
            .await?;
    }
    let result = delete_logged(&shared, id).await;
    if let (Some(ledger), Err(_)) = (&shared.ledger, &result)
        && shared.entry(id).is_ok_and(|e| e.is_some())
    {
        let kept = ferry_tlog::Entry::kept(&id.to_string(), &crate::now());
        if let Err(err) = ledger.append_all(vec![kept]).await {
            tracing::error!(%id, %err, "cannot log that a failed delete kept the item");
        }
    }
    result
}

/// The delete itself, once its leaf is durable.
async fn delete_logged(shared: &Arc<Shared>, id: ItemId) -> Result<bool, StoreError> {
    // A logged item is unlisted and its tombstone appended under the append gate,
    // so that no compaction copies it in between: a copy the index does not know
    // of would come back after a restart.
    let gate = match shared.entry(id)? {
        None => return Ok(false),
        Some(entry) if entry.location.log_frame().is_some() => {
            Some(shared.append_gate.read().await)
        }
        Some(_) => None,
    };
    let Some(entry) = shared.listing.remove(id)? else {
        return Ok(false);
    };
    // Durable before the key or the file goes: a catalog rolled back by a
    // crash must not list an item that can no longer be read.
    let flusher = shared.clone();
    let flushed = tokio::task::spawn_blocking(move || flusher.listing.flush())
        .await
        .map_err(joined)?;
    if let Err(err) = flushed {
        shared.listing.insert(entry)?;
        return Err(err);
    }
    // Crypto-shredding: the data key goes first, durably. Once its zeros are
    // written the item is unreadable, whatever happens next.
    let data_key = KeyRef::parse(&entry.meta.key_id);
    if let Some(at) = data_key {
        let keys = shared.keys.clone();
        let destroyed = tokio::task::spawn_blocking(move || keys.destroy(at))
            .await
            .map_err(joined)?;
        if let Err((written, err)) = destroyed {
            if !written {
                shared.listing.insert(entry)?;
            }
            return Err(err);
        }
    }
    // `gone`: the item is no longer on disk (even if making that durable failed).
    let mut maintain = None;
    let (gone, result) = match entry.location {
        Location::Log { segment, .. } => {
            let result = shared.log.append(vec![frame::tombstone(id)]).await;
            if let (Ok(at), Some((_, bytes))) = (&result, entry.location.log_frame()) {
                shared.segments().unlisted(segment, bytes, at.segment);
                maintain = Some(segment);
            }
            (result.is_ok(), result.map(drop))
        }
        Location::File => {
            let shared = shared.clone();
            tokio::task::spawn_blocking(move || {
                let path = shared.paths.record(id);
                let removed = shared
                    .seam
                    .run(Step::RecordUnlink, &path, || std::fs::remove_file(&path));
                match removed {
                    Ok(()) => (true, shared.items_sync.sync()),
                    Err(err) => (false, Err(StoreError::io("deleting", path, err))),
                }
            })
            .await
            .map_err(joined)?
        }
    };
    if !gone && data_key.is_none() {
        shared.listing.insert(entry)?;
    }
    drop(gate);
    if let Some(segment) = maintain {
        maintain_log(shared, Some(segment)).await;
    }
    result.map(|()| true)
}

/// Puts an item on legal hold or lifts its hold (see [`Store::set_hold`]).
async fn set_hold(
    shared: Arc<Shared>,
    id: ItemId,
    held: bool,
    by: Actor,
) -> Result<Option<ItemMeta>, StoreError> {
    // A catalog that cannot be read keeps holds rather than dropping them.
    let listed = |id: ItemId| !matches!(shared.listing.location(id), Ok(None));
    let found = shared
        .holds
        .set(id, held, &shared.seam, listed, shared.keep_everything)
        .await?;
    if let (Some(ledger), true) = (&shared.ledger, found) {
        let entry = ferry_tlog::Entry::hold(&id.to_string(), held, &by, &crate::now());
        ledger.append_all(vec![entry]).await?;
    }
    if !found {
        return Ok(None);
    }
    Ok(shared.entry(id)?.map(|entry| shared.marked(entry.meta)))
}
