//! The listing of a [`LocalStore`](super::LocalStore): every listed item with
//! where its sealed record lives, kept on disk in the store's
//! [`Catalog`] (`DIR/catalog/`), not in memory, so that memory does not grow
//! with the number of items.
//!
//! The log and the item files are the truth; the catalog is derived from them
//! and can always be rebuilt by reading them all (see [`recover`](super::recover)).
//! A location is kept as a few bytes ([`encode`]): `Log { segment, base, len }`
//! or `File`.
//!
//! Every call blocks on the catalog (its page cache, or the disk).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::index::{Entry, Index, Location};
use crate::catalog::{Catalog, CatalogEntry, Change, Tallied};
use crate::{ItemId, ListQuery, Page, StoreError};

/// The catalog's directory in the store's.
pub(crate) const DIR: &str = "catalog";

/// The tally group of the items in files of their own (not a segment number:
/// segments never reach it).
pub(crate) const FILES: u32 = u32::MAX;

/// Entries put with one apply while the catalog is rebuilt.
const REBUILD_BATCH: usize = 50_000;

const LOG: u8 = 1;
const FILE: u8 = 2;

/// The bytes of `location`.
pub(crate) fn encode(location: Location) -> Vec<u8> {
    match location {
        Location::Log { segment, base, len } => {
            let mut out = Vec::with_capacity(21);
            out.push(LOG);
            out.extend_from_slice(&segment.to_be_bytes());
            out.extend_from_slice(&base.to_be_bytes());
            out.extend_from_slice(&len.to_be_bytes());
            out
        }
        Location::File => vec![FILE],
    }
}

/// The location `bytes` stand for; `None` if they are not one.
pub(crate) fn decode(bytes: &[u8]) -> Option<Location> {
    match bytes {
        [FILE] => Some(Location::File),
        [LOG, rest @ ..] if rest.len() == 20 => Some(Location::Log {
            segment: u32::from_be_bytes(rest[..4].try_into().ok()?),
            base: u64::from_be_bytes(rest[4..12].try_into().ok()?),
            len: u64::from_be_bytes(rest[12..].try_into().ok()?),
        }),
        _ => None,
    }
}

/// The listed items, in the catalog.
#[derive(Debug)]
pub(crate) struct Listing {
    catalog: Catalog,
    /// Held by every change that depends on what is listed (read, then
    /// written), so that it sees no other change in between.
    changing: Mutex<()>,
    /// Entries to put, queued by [`insert`](Self::insert).
    queue: Mutex<Queue>,
    /// The catalog's cursor (see [`resume`](super::resume)).
    cursor: AtomicU64,
}

impl Listing {
    /// Opens the catalog in `root`'s [`DIR`].
    pub(crate) fn open(root: &Path) -> Result<Listing, StoreError> {
        let catalog = Catalog::open_tallied(&root.join(DIR), Some(tally))?;
        let cursor = catalog.cursor()?.unwrap_or(0);
        Ok(Listing {
            catalog,
            changing: Mutex::new(()),
            queue: Mutex::default(),
            cursor: AtomicU64::new(cursor),
        })
    }

    /// Replaces the catalog in `root`'s [`DIR`] with one that lists exactly
    /// what `index` does (read from the log and the item files, the truth).
    pub(crate) fn rebuild(root: &Path, index: &mut Index) -> Result<Listing, StoreError> {
        let path = root.join(DIR).join(crate::catalog::FILE_NAME);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(StoreError::io("removing the catalog", path, err)),
        }
        let listing = Listing::open(root)?;
        let mut batch = Vec::with_capacity(REBUILD_BATCH);
        for entry in index.drain() {
            batch.push(put(entry));
            if batch.len() == REBUILD_BATCH {
                listing.apply(std::mem::take(&mut batch))?;
            }
        }
        listing.apply(batch)?;
        listing.catalog.flush()?;
        Ok(listing)
    }

    /// Puts what a replay from the cursor listed (`index`, emptied) and unlists
    /// what it unlisted.
    pub(crate) fn apply_replay(
        &self,
        index: &mut Index,
        removed: &[ItemId],
    ) -> Result<(), StoreError> {
        let mut batch: Vec<Change> = removed.iter().map(|id| Change::Remove(*id)).collect();
        for entry in index.drain() {
            batch.push(put(entry));
            if batch.len() >= REBUILD_BATCH {
                self.apply(std::mem::take(&mut batch))?;
            }
        }
        self.apply(batch)
    }

    /// Makes everything applied durable.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        self.catalog.flush()
    }

    /// The catalog's cursor, as last applied; `None` before the first apply.
    pub(crate) fn cursor(&self) -> Result<Option<u64>, StoreError> {
        self.catalog.cursor()
    }

    /// The value `name` last set.
    pub(crate) fn value(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.catalog.value(name)
    }

    /// The items listed from each segment and their frame bytes:
    /// (segment, items, bytes).
    pub(crate) fn tallies(&self) -> Result<Vec<(u32, u64, u64)>, StoreError> {
        self.catalog.tallies()
    }

    /// Sets value `name` to `value` and the cursor to `cursor`, which every
    /// later apply records too (see [`resume`](super::resume)).
    pub(crate) fn checkpoint(
        &self,
        cursor: u64,
        name: &'static str,
        value: Vec<u8>,
    ) -> Result<(), StoreError> {
        let _changing = self.changing();
        self.catalog.apply(vec![Change::Set(name, value)], cursor)?;
        self.cursor.store(cursor, Ordering::Release);
        Ok(())
    }

    /// Lists `entry` (replacing the entry of its id, if listed). Entries
    /// listed at the same time (a group commit's) are put with one apply: each
    /// caller queues its own, and whichever takes the catalog next applies
    /// every one queued.
    pub(crate) fn insert(&self, entry: Entry) -> Result<(), StoreError> {
        let ticket = {
            let mut queue = self.queue();
            queue.pending.push(put(entry));
            queue.issued += 1;
            queue.issued
        };
        drop(self.changing());
        let queue = self.queue();
        match queue
            .failed
            .iter()
            .find(|(first, last, _)| (*first..=*last).contains(&ticket))
        {
            Some((_, _, err)) => Err(StoreError::Unavailable(err.clone())),
            None => Ok(()),
        }
    }

    /// Applies every entry queued by [`insert`](Self::insert); the caller holds
    /// `changing`.
    fn drain(&self) {
        let (batch, first, last) = {
            let mut queue = self.queue();
            if queue.pending.is_empty() {
                return;
            }
            let batch = std::mem::take(&mut queue.pending);
            (batch, queue.applied + 1, queue.issued)
        };
        let result = self.catalog.apply(batch, self.applied_to());
        let mut queue = self.queue();
        queue.applied = last;
        if let Err(err) = result {
            queue
                .failed
                .retain(|(_, old, _)| *old + FAILED_KEPT >= last);
            queue.failed.push((first, last, err.to_string()));
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Unlists item `id`; returns its entry, `None` if it was not listed.
    pub(crate) fn remove(&self, id: ItemId) -> Result<Option<Entry>, StoreError> {
        let _changing = self.changing();
        let Some(old) = self.get(id)? else {
            return Ok(None);
        };
        self.catalog
            .apply(vec![Change::Remove(id)], self.applied_to())?;
        Ok(Some(old))
    }

    /// Moves each item `id` of `moves` from `from` to `to`, if it is still
    /// listed at `from`; returns which moved.
    pub(crate) fn relocate(
        &self,
        moves: &[(ItemId, Location, Location)],
    ) -> Result<Vec<bool>, StoreError> {
        let _changing = self.changing();
        let mut changes = Vec::with_capacity(moves.len());
        let mut moved = Vec::with_capacity(moves.len());
        for &(id, from, to) in moves {
            match self.get(id)? {
                Some(mut entry) if entry.location == from => {
                    entry.location = to;
                    changes.push(put(entry));
                    moved.push(true);
                }
                _ => moved.push(false),
            }
        }
        self.catalog.apply(changes, self.applied_to())?;
        Ok(moved)
    }

    /// Applies `changes` with cursor `cursor`.
    pub(crate) fn apply(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        let _changing = self.changing();
        self.catalog.apply(changes, self.applied_to())
    }

    /// The cursor that every apply records: how far the log is applied for sure.
    fn applied_to(&self) -> u64 {
        self.cursor.load(Ordering::Acquire)
    }

    /// Takes the catalog for a change, once every queued entry is applied.
    fn changing(&self) -> MutexGuard<'_, ()> {
        let changing = self.changing.lock().unwrap_or_else(PoisonError::into_inner);
        self.drain();
        changing
    }

    /// Item `id`'s entry, if listed (`held` is always false: holds are the
    /// store's [`Holds`](super::holds::Holds)).
    pub(crate) fn get(&self, id: ItemId) -> Result<Option<Entry>, StoreError> {
        let Some(found) = self.catalog.get(id)? else {
            return Ok(None);
        };
        Ok(Some(self.entry(found)?))
    }

    /// The number of listed items.
    pub(crate) fn len(&self) -> Result<u64, StoreError> {
        self.catalog.len()
    }

    /// The items matching `query`, newest first.
    pub(crate) fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let mut page = self.catalog.list(query)?;
        page.items.iter_mut().for_each(|meta| meta.held = false);
        Ok(page)
    }

    /// The items listed from log segment `segment`, with their locations.
    pub(crate) fn in_segment(&self, segment: u32) -> Result<Vec<(ItemId, Location)>, StoreError> {
        self.placed(segment, 0)
    }

    /// The items listed from log segment `segment` at offset `from` or after,
    /// with their locations, in log order.
    pub(crate) fn placed(
        &self,
        segment: u32,
        from: u64,
    ) -> Result<Vec<(ItemId, Location)>, StoreError> {
        let mut found = Vec::new();
        for (_, id) in self.catalog.placed(segment, from)? {
            if let Some(at) = self.location(id)? {
                found.push((id, at));
            }
        }
        Ok(found)
    }

    /// The items listed from files of their own. Reads the whole catalog.
    pub(crate) fn in_files(&self) -> Result<Vec<ItemId>, StoreError> {
        let found = self
            .catalog
            .locations(|bytes| decode(bytes) == Some(Location::File))?;
        Ok(found.into_iter().map(|(id, _)| id).collect())
    }

    /// Where item `id` is, if listed.
    pub(crate) fn location(&self, id: ItemId) -> Result<Option<Location>, StoreError> {
        Ok(self.get(id)?.map(|entry| entry.location))
    }

    /// Records the index of item `id`'s `stored` leaf, if it is listed.
    pub(crate) fn set_log_index(&self, updates: &[(ItemId, u64)]) -> Result<(), StoreError> {
        let _changing = self.changing();
        let mut changes = Vec::with_capacity(updates.len());
        for &(id, index) in updates {
            if let Some(mut entry) = self.get(id)? {
                entry.meta.log_index = Some(index);
                changes.push(put(entry));
            }
        }
        self.catalog.apply(changes, self.applied_to())
    }

    fn entry(&self, found: CatalogEntry) -> Result<Entry, StoreError> {
        let CatalogEntry { mut meta, location } = found;
        meta.held = false;
        let location = decode(&location).ok_or_else(|| {
            StoreError::Unavailable(format!(
                "the catalog's location of item {} cannot be read",
                meta.id
            ))
        })?;
        Ok(Entry { meta, location })
    }
}

/// The segment and frame bytes a location counts for, in the catalog's tallies.
fn tally(location: &[u8]) -> Option<Tallied> {
    match decode(location)? {
        at @ Location::Log { segment, base, .. } => Some(Tallied {
            group: segment,
            amount: at.log_frame()?.1,
            place: Some(base),
        }),
        Location::File => Some(Tallied {
            group: FILES,
            amount: 0,
            place: None,
        }),
    }
}

/// Entries queued to be put (see [`Listing::insert`]), by ticket.
#[derive(Debug, Default)]
struct Queue {
    pending: Vec<Change>,
    /// Tickets handed out; `pending` holds `applied + 1..=issued`.
    issued: u64,
    applied: u64,
    /// Tickets whose apply failed (first, last, why), recent ones only.
    failed: Vec<(u64, u64, String)>,
}

/// Tickets of a failed apply are kept this long (in tickets issued since):
/// far longer than any caller waits to look.
const FAILED_KEPT: u64 = 1 << 20;

/// The change that lists `entry`.
pub(crate) fn put(entry: Entry) -> Change {
    Change::Put(CatalogEntry {
        location: encode(entry.location),
        meta: entry.meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_round_trip() {
        for at in [
            Location::File,
            Location::Log {
                segment: 7,
                base: 1 << 40,
                len: 99,
            },
        ] {
            assert_eq!(decode(&encode(at)), Some(at));
        }
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[LOG, 1, 2]), None);
    }
}
