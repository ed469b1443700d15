//! Rebuilding the index when a store opens.
//!
//! - `tmp/` is emptied: whatever is there was never committed.
//! - Each log segment is read in order and every frame's CRC checked. A frame that
//!   does not check is skipped up to the next valid frame; if no valid frame
//!   follows in the last segment, it is a torn tail (never acknowledged) and the
//!   segment is cut there. Records are listed from their authenticated metadata;
//!   tombstones unlist the item they name. Logged records are small and already
//!   in memory, so all their chunks are authenticated too.
//! - Each `items/<id>.rec` is opened (header, footer and metadata only, on several
//!   threads) and listed from its authenticated metadata.
//!
//! A record that fails authentication, or whose metadata is not its item's, is
//! logged with `tracing::warn!` naming the file, and left out of the listing (its
//! bytes are kept for inspection).

use std::fs::{self, File, OpenOptions};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Instant;

use ferry_crypto::{Keyring, RecordReader};

use super::Paths;
use super::frame::{self, Kind, Parsed};
use super::fsutil::{create_private_file, empty_dir, io_err, sync_dir};
use super::index::{Entry, Index, Location};
use super::log::{segment_number, segment_path};
use super::reclaim::Segments;
use crate::{ItemId, ItemMeta, StoreError};

/// The rebuilt index and where the log goes on.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub index: Index,
    /// What each segment holds, for reclaiming the ones that list nothing.
    pub segments: Segments,
    /// The segment to append to.
    pub segment: u32,
    /// Its valid length.
    pub segment_len: u64,
}

/// Recovers the store in `paths` (see the module docs).
pub(crate) fn recover(paths: &Paths, keyring: &Keyring) -> Result<Recovered, StoreError> {
    let started = Instant::now();
    let leftovers = empty_dir(&paths.tmp)?;
    let mut index = Index::default();
    let mut book = Segments::default();
    let segments = list_segments(&paths.segments)?;
    let (mut segment, mut segment_len) = (1, 0);
    for (i, &number) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        book.exists(number);
        let len = scan_segment(
            &segment_path(&paths.segments, number),
            number,
            last,
            keyring,
            &mut index,
            &mut book,
        )?;
        (segment, segment_len) = (number, len);
    }
    if segments.is_empty() {
        drop(create_private_file(&segment_path(&paths.segments, 1))?);
        sync_dir(&paths.segments)?;
    }
    for entry in scan_items(&paths.items, keyring)? {
        if let Some(old) = index.insert(entry) {
            tracing::warn!(id = %old.meta.id, "item is both in the log and in items/; keeping the file");
        }
    }
    let mut logged = 0;
    for (segment, bytes) in index.logged_segments() {
        book.listed(segment, bytes);
        logged += 1;
    }
    tracing::info!(
        items = index.len(),
        logged,
        files = index.len() - logged,
        leftovers,
        segments = segments.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "store recovered"
    );
    Ok(Recovered {
        index,
        segments: book,
        segment,
        segment_len,
    })
}

/// The segment numbers in `dir`, in order.
fn list_segments(dir: &Path) -> Result<Vec<u32>, StoreError> {
    let mut numbers = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("reading directory", dir))? {
        let entry = entry.map_err(io_err("reading directory", dir))?;
        match entry.file_name().to_str().and_then(segment_number) {
            Some(number) => numbers.push(number),
            None => {
                tracing::warn!(path = %entry.path().display(), "ignoring a file that is not a log segment")
            }
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Indexes one segment, and notes in `book` the older segments whose items its
/// tombstones unlist; returns its valid length (after cutting a torn tail if
/// `last`).
fn scan_segment(
    path: &Path,
    number: u32,
    last: bool,
    keyring: &Keyring,
    index: &mut Index,
    book: &mut Segments,
) -> Result<u64, StoreError> {
    let data = fs::read(path).map_err(io_err("reading log segment", path))?;
    let mut at = 0;
    while at < data.len() {
        match frame::parse(&data, at) {
            Parsed::Frame {
                kind: Kind::Record,
                payload,
                end,
            } => {
                let base = payload.start as u64;
                match load_logged(keyring, &data[payload]) {
                    Ok(meta) => {
                        let len = (end as u64) - base;
                        let replaced = index.insert(Entry {
                            meta,
                            location: Location::Log {
                                segment: number,
                                base,
                                len,
                            },
                        });
                        // A compaction's copy (its source segment outlived it).
                        if let Some((older, _)) = replaced.and_then(|e| e.location.log_frame()) {
                            book.superseded(older, number);
                        }
                    }
                    Err(reason) => {
                        tracing::warn!(path = %path.display(), offset = at, %reason, "log record refused; not listed")
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
                        let unlisted = index.remove(ItemId::from_bytes(bytes));
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
            Parsed::Invalid => match frame::resync(&data, at) {
                Some(next) => {
                    tracing::warn!(path = %path.display(), offset = at, skipped = next - at, "corrupt log frame skipped");
                    at = next;
                }
                None if last => {
                    tracing::warn!(path = %path.display(), offset = at, cut = data.len() - at, "cutting the torn tail of the log");
                    let file = OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(io_err("opening log segment", path))?;
                    file.set_len(at as u64)
                        .map_err(io_err("truncating log segment", path))?;
                    file.sync_all()
                        .map_err(io_err("syncing log segment", path))?;
                    return Ok(at as u64);
                }
                None => {
                    tracing::warn!(path = %path.display(), offset = at, bytes = data.len() - at, "log segment ends with bytes that are not frames");
                    break;
                }
            },
        }
    }
    Ok(data.len() as u64)
}

/// Authenticates a logged record, all of it (it is small and already in memory),
/// and returns its metadata.
fn load_logged(keyring: &Keyring, record: &[u8]) -> Result<ItemMeta, String> {
    let mut reader = RecordReader::open(keyring, Cursor::new(record), 0, record.len() as u64)
        .map_err(|e| e.to_string())?;
    let meta = item_meta(&reader)?;
    for index in 0..reader.chunk_count() {
        reader.read_chunk(index).map_err(|e| e.to_string())?;
    }
    Ok(meta)
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
fn scan_items(dir: &Path, keyring: &Keyring) -> Result<Vec<Entry>, StoreError> {
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
    let loaded: Vec<Option<Entry>> = thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(per_thread)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(id, path)| load_file(keyring, *id, path))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("record loading does not panic"))
            .collect()
    });
    Ok(loaded.into_iter().flatten().collect())
}

/// Opens one item file; `None` (and a warning) if it is not a valid record of `id`.
fn load_file(keyring: &Keyring, id: ItemId, path: &PathBuf) -> Option<Entry> {
    let result = File::open(path)
        .map_err(|e| e.to_string())
        .and_then(|file| {
            let len = file.metadata().map_err(|e| e.to_string())?.len();
            let reader = RecordReader::open(keyring, file, 0, len).map_err(|e| e.to_string())?;
            let meta = item_meta(&reader)?;
            if meta.id != id {
                return Err(format!("the record is item {}'s", meta.id));
            }
            Ok(meta)
        });
    match result {
        Ok(meta) => Some(Entry {
            meta,
            location: Location::File,
        }),
        Err(reason) => {
            tracing::warn!(path = %path.display(), %reason, "item file refused; not listed");
            None
        }
    }
}
