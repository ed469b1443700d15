//! Rebuilding the index when a store opens.
//!
//! With a catalog to resume from (see [`resume`](super::resume)), only the log
//! from the catalog's cursor is read (and every item file), over the catalog's
//! entries; without one, everything is read, and the catalog rebuilt from it.
//! Either way, as follows.
//!
//! - Nothing is changed until every record has been read: a store holding
//!   records sealed with keys not given is refused as it is (see below).
//! - `tmp/` is emptied: whatever is there was never committed.
//! - The last log segment is fsynced before anything in it is trusted: a process
//!   that died between a write and its `fdatasync` left bytes that are only in
//!   the page cache, and nothing may be reclaimed on their strength (a compaction's
//!   copies, say) until they are on disk. If that fsync fails, the store does not
//!   open.
//! - Each log segment is read in order and every frame's CRC checked, at its
//!   place (see [`frame`](super::frame)). Where only zeros follow the last frame,
//!   the log ends there: that is space prepared ahead of the commits (see
//!   [`log`](super::log)), and the log goes on in it. A frame that does not check
//!   is skipped up to the next valid frame; if no valid frame follows in the last
//!   segment, it is a torn tail (never acknowledged) and the segment is cut there.
//! - `FORMAT` says from which segment on frames are bound to their place; the
//!   segments below it were written by the first version. A store without it (new,
//!   or written by the first version) gets it, with a fresh segment to append to
//!   if the last one holds frames. Records are listed from their authenticated metadata;
//!   tombstones unlist the item they name. Logged records are small and already
//!   in memory, so all their chunks are authenticated too.
//! - Each `items/<id>.rec` is opened (header, footer and metadata only, on several
//!   threads) and listed from its authenticated metadata.
//!
//! A record that cannot be opened is never taken for "nothing there": its bytes
//! are kept, and a log segment holding one is never compacted or removed.
//! - Sealed with a key that is not in the keyring: the store refuses to open
//!   ([`StoreError::MissingKeys`], naming the key ids), unless told to start
//!   anyway; then nothing is reclaimed while the store is open (a tombstone may
//!   unlist an item of such a record, which cannot be told).
//! - Failing authentication, or holding another item's metadata: logged with
//!   `tracing::warn!` naming the file, and left out of the listing.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Instant;

use std::cell::Cell;

use ferry_crypto::{CryptoError, KeyLookup, RecordReader, StorageKey};

use super::Paths;
use super::frame::Origin;
use super::frame::{self, Kind, Parsed};
use super::fsutil::{create_private_file, empty_dir, io_err, sync_dir};
use super::index::{Entry, Index, Location};
use super::keys::{KeyRef, KeyStore, KeyUse, Wrapping};
use super::listing::FILES;
use super::log::{SegmentEnd, segment_number, segment_path};
use super::reclaim::Segments;
use super::resume::{Overlay, Resume};
use super::seam::{Seam, Step};
use crate::{ItemId, ItemMeta, StoreError};

/// The rebuilt index and where the log goes on.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub index: Index,
    /// What each segment holds, for reclaiming the ones that list nothing.
    pub segments: Segments,
    /// The segment to append to.
    pub segment: u32,
    /// Where its log ends, and its size.
    pub segment_end: SegmentEnd,
    /// Where the log ends in each segment before it.
    pub ends: HashMap<u32, u64>,
    /// Records sealed with keys that are not in the keyring, by key id.
    pub missing_keys: BTreeMap<String, usize>,
    /// The segments below this one were written by the first version.
    pub bound_from: u32,
    /// The data keys the records name, and which of them are still needed.
    pub key_use: KeyUse,
    /// Items to unlist from the catalog (when resuming).
    pub removed: Vec<ItemId>,
    /// Whether only the log from the catalog's cursor was read: `index` then
    /// holds what it lists, to be put in the catalog.
    pub resumed: bool,
    /// Some listed record is sealed with a storage key directly (written before
    /// data keys): such a store is always read whole at open.
    pub legacy: bool,
    /// Resumed: the size of the store's log of items at the checkpoint.
    pub ledger_size: Option<u64>,
}

/// Where a scan lists and unlists what it reads: the whole [`Index`] at a full
/// rescan, or an overlay over the catalog when resuming (see [`resume`](super::resume)).
pub(crate) trait Sink {
    /// Lists `entry`; returns the entry it replaces, if its id was listed.
    fn insert(&mut self, entry: Entry) -> Result<Option<Entry>, StoreError>;
    /// Unlists item `id`; returns its entry, if it was listed.
    fn remove(&mut self, id: ItemId) -> Result<Option<Entry>, StoreError>;
}

impl Sink for Index {
    fn insert(&mut self, entry: Entry) -> Result<Option<Entry>, StoreError> {
        Ok(Index::insert(self, entry))
    }

    fn remove(&mut self, id: ItemId) -> Result<Option<Entry>, StoreError> {
        Ok(Index::remove(self, id))
    }
}

/// Why a record was not listed.
#[derive(Debug)]
enum Refusal {
    /// Sealed with a key that is not in the keyring.
    UnknownKey(String),
    /// Sealed with a data key that was destroyed: a deleted item's.
    Shredded,
    /// Sealed with a data key that the key store does not have.
    NoDataKey(String),
    /// Damaged, tampered with, truncated, another item's record.
    Unreadable(String),
    /// Reading failed: the store does not open.
    Failed(std::io::Error),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::UnknownKey(id) => {
                write!(f, "sealed with storage key {id}, which was not given")
            }
            Refusal::Shredded => f.write_str("its data key was destroyed (a deleted item)"),
            Refusal::NoDataKey(id) => {
                write!(
                    f,
                    "sealed with data key {id}, which the key store does not hold"
                )
            }
            Refusal::Unreadable(reason) => f.write_str(reason),
            Refusal::Failed(err) => write!(f, "cannot be read: {err}"),
        }
    }
}

impl From<CryptoError> for Refusal {
    fn from(err: CryptoError) -> Refusal {
        match err {
            CryptoError::UnknownKey(id) if KeyRef::parse(&id).is_some() => Refusal::NoDataKey(id),
            CryptoError::UnknownKey(id) => Refusal::UnknownKey(id),
            CryptoError::KeyDestroyed(_) => Refusal::Shredded,
            CryptoError::Io(err) if err.kind() != std::io::ErrorKind::UnexpectedEof => {
                Refusal::Failed(err)
            }
            other => Refusal::Unreadable(other.to_string()),
        }
    }
}

/// What recovery learns while it reads the records: the keys they need.
#[derive(Debug, Default)]
pub(crate) struct Needs {
    /// Records sealed with storage keys not given, by key id.
    pub missing_keys: BTreeMap<String, usize>,
    /// Records sealed with data keys the key store does not hold.
    pub no_data_key: usize,
    pub key_use: KeyUse,
}

impl Needs {
    /// Notes the outcome of reading a record that named data key `named`.
    fn note<T>(&mut self, named: Option<KeyRef>, result: &Result<T, Refusal>) {
        if let Some(at) = named {
            self.key_use.named.insert(at);
        }
        let Err(reason) = result else { return };
        match (reason, named) {
            (Refusal::Shredded | Refusal::Failed(_), _) => {}
            (Refusal::NoDataKey(_), _) => self.no_data_key += 1,
            (Refusal::UnknownKey(id), at) => {
                *self.missing_keys.entry(id.clone()).or_default() += 1;
                self.key_use.kept.extend(at);
            }
            (Refusal::Unreadable(_), Some(at)) => {
                self.key_use.kept.insert(at);
            }
            // Which key it needs is not known: destroy none at this open.
            (Refusal::Unreadable(_), None) => self.key_use.blind = true,
        }
    }
}

/// Looks keys up in the key store, and remembers which data key was asked for.
struct Naming<'a> {
    keys: &'a KeyStore,
    named: Cell<Option<KeyRef>>,
}

impl<'a> Naming<'a> {
    fn new(keys: &'a KeyStore) -> Naming<'a> {
        Naming {
            keys,
            named: Cell::new(None),
        }
    }
}

impl KeyLookup for Naming<'_> {
    fn lookup(&self, key_id: &str) -> Result<StorageKey, CryptoError> {
        self.named.set(KeyRef::parse(key_id));
        self.keys.lookup(key_id)
    }
}

/// Recovers the store in `paths` (see the module docs).
///
/// Nothing is changed before the records are known to open with `keyring`: if
/// some were sealed with keys it does not hold, and `allow_missing_keys` is not
/// set, this fails with [`StoreError::MissingKeys`] having only read (and fsynced
/// the last segment).
pub(crate) fn recover(
    paths: &Paths,
    keys: &KeyStore,
    seam: &Seam,
    allow_missing_keys: bool,
    resume: Option<Resume<'_>>,
) -> Result<Recovered, StoreError> {
    let started = Instant::now();
    let mut index = Index::default();
    let mut overlay = resume.as_ref().map(|r| Overlay::new(r.listing));
    let mut book = Segments::default();
    let mut needs = Needs::default();
    let segments = list_segments(&paths.segments, &[])?;
    let format = read_format(&paths.root)?;
    let bound_from = match format {
        Some(from) => from,
        None => first_bound_segment(paths, &segments)?,
    };
    let empty = SegmentEnd { len: 0, size: 0 };
    let (mut segment, mut segment_end, mut torn) = (bound_from, empty, None);
    let mut ends = HashMap::new();
    let mut scanned = 0;
    for (i, &number) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        book.exists(number);
        let mut from = 0;
        if let Some(resume) = &resume {
            let cursor = resume.checkpoint.cursor;
            if number < cursor.segment && !last {
                // Applied to the catalog already: not read again.
                let end = resume.checkpoint.ends.get(&number).copied();
                ends.insert(number, end.unwrap_or(0));
                continue;
            }
            if number == cursor.segment {
                from = usize::try_from(cursor.offset).unwrap_or(usize::MAX);
            }
        }
        let sink: &mut dyn Sink = match &mut overlay {
            Some(overlay) => overlay,
            None => &mut index,
        };
        scanned += 1;
        let (end, torn_at) = scan_segment(
            &segment_path(&paths.segments, number),
            Origin {
                segment: number,
                offset: 0,
                unbound: number < bound_from,
            },
            from,
            last,
            keys,
            seam,
            sink,
            &mut book,
            &mut needs,
        )?;
        if !last {
            ends.insert(number, end.len);
        }
        (segment, segment_end, torn) = (number, end, torn_at);
        if let Some(overlay) = &mut overlay {
            // What the catalog lists past the cursor and the replay did not
            // read (a frame lost or damaged since it was applied) is not there.
            for (id, _) in overlay.listing.placed(number, from as u64)? {
                if !overlay.touches(id) {
                    tracing::warn!(%id, segment = number, "listed in the catalog past its cursor, but not in the log; unlisted");
                    overlay.remove(id)?;
                }
            }
        }
    }
    match &mut overlay {
        None => {
            for entry in scan_items(&paths.items, keys, seam, &mut needs)?.0 {
                if let Some(old) = index.insert(entry) {
                    tracing::warn!(id = %old.meta.id, "item is both in the log and in items/; keeping the file");
                }
            }
        }
        Some(overlay) => {
            // Every file, as at a full rescan: a file's leaf is checked too.
            let (entries, refused) = scan_items(&paths.items, keys, seam, &mut needs)?;
            let listing = overlay.listing;
            let files = listing
                .tallies()?
                .iter()
                .find(|(group, ..)| *group == FILES)
                .map_or(0, |(_, count, _)| *count);
            let mut loaded = std::collections::BTreeSet::new();
            for entry in entries {
                loaded.insert(entry.meta.id);
                overlay.insert(entry)?;
            }
            for id in refused {
                if listing.location(id)? == Some(Location::File) {
                    overlay.remove(id)?;
                }
            }
            // Files gone that the catalog lists (rare: read the catalog).
            if files as usize != loaded.len() {
                for id in listing.in_files()? {
                    if !loaded.contains(&id) && !overlay.touches(id) {
                        tracing::warn!(%id, "listed in the catalog in a file that is not there; unlisted");
                        overlay.remove(id)?;
                    }
                }
            }
        }
    }
    let Needs {
        missing_keys,
        no_data_key,
        mut key_use,
    } = needs;
    if no_data_key > 0 {
        return Err(StoreError::KeyStoreIncomplete {
            records: no_data_key,
        });
    }
    if !missing_keys.is_empty() && !allow_missing_keys {
        return Err(StoreError::MissingKeys {
            key_ids: missing_keys.keys().cloned().collect(),
            records: missing_keys.values().sum(),
        });
    }
    // Only now is anything changed.
    let leftovers = empty_dir(seam, &paths.tmp)?;
    if let Some(at) = torn {
        cut_tail(&segment_path(&paths.segments, segment), at, seam)?;
        segment_end = SegmentEnd { len: at, size: at };
    }
    if segments.last().is_none_or(|&last| last < bound_from) {
        let path = segment_path(&paths.segments, bound_from);
        drop(create_private_file(seam, Step::CreateFirstSegment, &path)?);
        sync_dir(seam, Step::SyncSegments, &paths.segments)?;
        book.exists(bound_from);
        (segment, segment_end) = (bound_from, empty);
    }
    if format.is_none() {
        write_format(paths, bound_from, seam)?;
        if !segments.is_empty() {
            tracing::info!(
                from = bound_from,
                "this store was written by the first version; its frames are bound to their place from this segment on"
            );
        }
    }
    // Records that cannot be read are there: destroy no key at this open.
    key_use.blind |= !missing_keys.is_empty();
    let (legacy, removed) = match overlay {
        None => {
            let listed = index.len();
            let data_keyed = index.data_keys().count();
            key_use.kept.extend(index.data_keys());
            (data_keyed < listed, Vec::new())
        }
        Some(overlay) => {
            let resume = resume.as_ref().expect("an overlay resumes");
            for (&segment, &refused) in &resume.checkpoint.refused {
                book.refused_many(segment, refused);
            }
            // Which keys the items before the cursor use is not read: none is
            // destroyed, and new keys come from a new file.
            key_use.blind = true;
            key_use.fresh_unknown = true;
            key_use.all_current = resume.wrapping == Wrapping::Current;
            let (replayed, removed) = overlay.into_parts();
            index = replayed;
            (false, removed)
        }
    };
    tracing::info!(
        resumed = resume.is_some(),
        segments_read = scanned,
        items_read = index.len(),
        unlisted = removed.len(),
        leftovers,
        segments = segments.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "store recovered"
    );
    Ok(Recovered {
        key_use,
        index,
        removed,
        resumed: resume.is_some(),
        ledger_size: resume.as_ref().and_then(|r| r.checkpoint.ledger),
        legacy,
        segments: book,
        segment,
        segment_end,
        ends,
        missing_keys,
        bound_from,
    })
}

/// The file that says from which segment on frames are bound to their place.
const FORMAT: &str = "FORMAT";

/// The first segment of bound frames, from `FORMAT`; `None` if there is no such file.
pub(crate) fn read_format(root: &Path) -> Result<Option<u32>, StoreError> {
    let path = root.join(FORMAT);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(StoreError::io("reading", path, err)),
    };
    text.trim()
        .strip_prefix("bound-frames-from ")
        .and_then(|n| n.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            StoreError::Unavailable(format!("{} is not a store format file", path.display()))
        })
}

/// For a store without `FORMAT` (new, or written by the first version): the
/// segment from which frames are bound. That is the last segment if it is empty,
/// else the next one (created by the caller).
fn first_bound_segment(paths: &Paths, segments: &[u32]) -> Result<u32, StoreError> {
    Ok(match segments.last() {
        None => 1,
        Some(&last) => {
            let path = segment_path(&paths.segments, last);
            let len = fs::metadata(&path)
                .map_err(io_err("reading metadata of", &path))?
                .len();
            if len == 0 { last } else { last + 1 }
        }
    })
}

/// Writes `FORMAT` durably: frames are bound from segment `from` on.
fn write_format(paths: &Paths, from: u32, seam: &Seam) -> Result<(), StoreError> {
    let path = paths.root.join(FORMAT);
    let new = paths.root.join(format!("{FORMAT}.new"));
    seam.run(Step::WriteFormat, &new, || {
        let mut file = fs::File::create(&new)?;
        std::io::Write::write_all(&mut file, format!("bound-frames-from {from}\n").as_bytes())?;
        file.sync_all()?;
        fs::rename(&new, &path)
    })
    .map_err(io_err("writing", &path))?;
    sync_dir(seam, Step::WriteFormat, &paths.root)
}

/// Cuts the torn tail of the last segment at `at`, durably.
pub(crate) fn cut_tail(path: &Path, at: u64, seam: &Seam) -> Result<(), StoreError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err("opening log segment", path))?;
    seam.run(Step::CutTail, path, || file.set_len(at))
        .map_err(io_err("truncating log segment", path))?;
    seam.run(Step::SyncCutTail, path, || file.sync_all())
        .map_err(io_err("syncing log segment", path))
}

/// The segment numbers in `dir`, in order; other files are warned of, except
/// those named in `also`.
pub(crate) fn list_segments(dir: &Path, also: &[&str]) -> Result<Vec<u32>, StoreError> {
    let mut numbers = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("reading directory", dir))? {
        let entry = entry.map_err(io_err("reading directory", dir))?;
        let name = entry.file_name();
        match name.to_str().and_then(segment_number) {
            Some(number) => numbers.push(number),
            None if name.to_str().is_some_and(|name| also.contains(&name)) => {}
            None => {
                tracing::warn!(path = %entry.path().display(), "ignoring a file that is not a log segment")
            }
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Indexes one segment, and notes in `book` the older segments whose items its
/// tombstones unlist; returns where its log ends (and the file's size as read),
/// and where to cut its torn tail if it is the `last` and has one.
#[allow(clippy::too_many_arguments)]
fn scan_segment(
    path: &Path,
    origin: Origin,
    from: usize,
    last: bool,
    keys: &KeyStore,
    seam: &Seam,
    index: &mut dyn Sink,
    book: &mut Segments,
    needs: &mut Needs,
) -> Result<(SegmentEnd, Option<u64>), StoreError> {
    let number = origin.segment;
    if last {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_err("opening log segment", path))?;
        seam.run(Step::SyncLastSegment, path, || file.sync_all())
            .map_err(io_err("syncing log segment", path))?;
    }
    let data = seam
        .run(Step::ReadSegment, path, || fs::read(path))
        .map_err(io_err("reading log segment", path))?;
    let size = data.len() as u64;
    // Frames start with their magic: past the last byte that is not zero, there
    // are none (prepared space).
    let content = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let mut at = from;
    while at < data.len() {
        if at >= content {
            return Ok((
                SegmentEnd {
                    len: at as u64,
                    size,
                },
                None,
            ));
        }
        match frame::parse(&data, at, origin) {
            Parsed::Frame {
                kind: Kind::Record,
                payload,
                end,
            } => {
                let base = payload.start as u64;
                let (named, loaded) = load_logged(keys, &data[payload]);
                needs.note(named, &loaded);
                match loaded {
                    Ok(meta) => {
                        let len = (end as u64) - base;
                        let replaced = index.insert(Entry {
                            meta,
                            location: Location::Log {
                                segment: number,
                                base,
                                len,
                            },
                        })?;
                        // A compaction's copy (its source segment outlived it).
                        if let Some((older, _)) = replaced.and_then(|e| e.location.log_frame()) {
                            book.superseded(older, number);
                        }
                    }
                    // A deleted item's: its space is reclaimed as any unlisted frame's.
                    Err(Refusal::Shredded) => {}
                    Err(reason) => {
                        tracing::warn!(path = %path.display(), offset = at, %reason, "log record refused; not listed, kept");
                        // (A logged record is read from memory: `Failed` cannot happen.)
                        book.refused(number);
                    }
                }
                at = end;
            }
            Parsed::Frame {
                kind: Kind::Tombstone,
                payload,
                end,
            } => {
                match <[u8; 16]>::try_from(&data[payload]) {
                    Ok(bytes) => {
                        let unlisted = index.remove(ItemId::from_bytes(bytes))?;
                        if let Some((segment, _)) = unlisted.and_then(|e| e.location.log_frame()) {
                            book.superseded(segment, number);
                        }
                    }
                    Err(_) => {
                        tracing::warn!(path = %path.display(), offset = at, "malformed tombstone ignored")
                    }
                }
                at = end;
            }
            Parsed::Frame {
                kind: Kind::Leaf,
                end,
                ..
            } => {
                tracing::warn!(path = %path.display(), offset = at, "a leaf of the store's log among the items' frames ignored");
                at = end;
            }
            Parsed::Invalid => match frame::resync(&data, at, origin) {
                Some(next) => {
                    tracing::warn!(path = %path.display(), offset = at, skipped = next - at, "corrupt log frame skipped");
                    at = next;
                }
                None if last => {
                    tracing::warn!(path = %path.display(), offset = at, cut = data.len() - at, "cutting the torn tail of the log");
                    let end = SegmentEnd {
                        len: at as u64,
                        size,
                    };
                    return Ok((end, Some(at as u64)));
                }
                None => {
                    tracing::warn!(path = %path.display(), offset = at, bytes = data.len() - at, "log segment ends with bytes that are not frames");
                    break;
                }
            },
        }
    }
    Ok((SegmentEnd { len: size, size }, None))
}

/// Authenticates a logged record, all of it (it is small and already in memory),
/// and returns its metadata; and the data key it names, if it names one.
fn load_logged(keys: &KeyStore, record: &[u8]) -> (Option<KeyRef>, Result<ItemMeta, Refusal>) {
    let naming = Naming::new(keys);
    let result = (|| {
        let mut reader = RecordReader::open(&naming, Cursor::new(record), 0, record.len() as u64)?;
        let meta = item_meta(&reader).map_err(Refusal::Unreadable)?;
        for index in 0..reader.chunk_count() {
            reader.read_chunk(index)?;
        }
        Ok(meta)
    })();
    (naming.named.get(), result)
}

/// The item metadata of an opened record, checked against the record.
fn item_meta<R>(reader: &RecordReader<R>) -> Result<ItemMeta, String>
where
    R: std::io::Read + std::io::Seek,
{
    let meta = ItemMeta::from_record_bytes(reader.metadata())
        .map_err(|e| format!("authenticated metadata is not item metadata: {e}"))?;
    if meta.size != reader.plaintext_len() {
        return Err(format!(
            "metadata says {} bytes, record holds {}",
            meta.size,
            reader.plaintext_len()
        ));
    }
    Ok(meta)
}

/// Opens every `items/<id>.rec`, on a few threads.
pub(crate) fn scan_items(
    dir: &Path,
    keys: &KeyStore,
    seam: &Seam,
    needs: &mut Needs,
) -> Result<(Vec<Entry>, Vec<ItemId>), StoreError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("reading directory", dir))? {
        let path = entry.map_err(io_err("reading directory", dir))?.path();
        let id = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".rec"))
            .and_then(|n| ItemId::parse(n).ok());
        match id {
            Some(id) => files.push((id, path)),
            None => {
                tracing::warn!(path = %path.display(), "ignoring a file that is not an item record")
            }
        }
    }
    let threads = thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    let per_thread = files.len().div_ceil(threads).max(1);
    type Loaded<'a> = (ItemId, &'a PathBuf, Option<KeyRef>, Result<Entry, Refusal>);
    let loaded: Vec<Loaded<'_>> = thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(per_thread)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(id, path)| {
                            let (named, result) = load_file(keys, seam, *id, path);
                            (*id, path, named, result)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("record loading does not panic"))
            .collect()
    });
    let mut entries = Vec::with_capacity(loaded.len());
    let mut refused = Vec::new();
    for (id, path, named, result) in loaded {
        needs.note(named, &result);
        match result {
            Ok(entry) => entries.push(entry),
            Err(Refusal::Failed(err)) => return Err(StoreError::io("reading", path, err)),
            Err(_) => refused.push(id),
        }
    }
    Ok((entries, refused))
}

/// Opens one item file; a refusal (and a warning) if it is not a valid record of
/// `id`. A refused file is left as it is. Also the data key it names, if any.
fn load_file(
    keys: &KeyStore,
    seam: &Seam,
    id: ItemId,
    path: &PathBuf,
) -> (Option<KeyRef>, Result<Entry, Refusal>) {
    let naming = Naming::new(keys);
    let opened = seam.run(Step::ReadItem, path, || File::open(path));
    let result = opened.map_err(Refusal::Failed).and_then(|file| {
        let len = file.metadata().map_err(Refusal::Failed)?.len();
        let reader = RecordReader::open(&naming, file, 0, len)?;
        let meta = item_meta(&reader).map_err(Refusal::Unreadable)?;
        if meta.id != id {
            return Err(Refusal::Unreadable(format!(
                "the record is item {}'s",
                meta.id
            )));
        }
        Ok(meta)
    });
    let result = match result {
        Ok(meta) => Ok(Entry {
            meta,
            location: Location::File,
        }),
        Err(Refusal::Failed(err)) => Err(Refusal::Failed(err)),
        Err(reason) => {
            tracing::warn!(path = %path.display(), %reason, "item file refused; not listed, kept");
            Err(reason)
        }
    };
    (naming.named.get(), result)
}
