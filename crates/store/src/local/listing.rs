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
//! Every call but [`Listing::insert`] blocks on the catalog (its page cache,
//! or the disk).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

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
///
/// A committed item is listed by [`insert`](Listing::insert), which only queues
/// it: a thread of the listing's own (the *applier*) puts what is queued into
/// the catalog, many entries per transaction, so that no commit waits for the
/// catalog. Until then the entry is kept in memory (the overlay), where
/// [`get`](Listing::get) finds it; everything else first applies what is
/// queued. Queued entries are bounded ([`MAX_QUEUED`]): past it an insert waits
/// for the applier.
///
/// After the catalog fails to apply (a full disk, an I/O error) the listing is
/// *broken*: inserts, listings and checkpoints are refused with the cause
/// until the store is opened again, which lists everything from the log (the
/// truth). Nothing is lost: every entry queued was already committed to the log.
#[derive(Debug)]
pub(crate) struct Listing {
    shared: Arc<Applied>,
    applier: Option<JoinHandle<()>>,
}

/// What the listing and its applier share.
#[derive(Debug)]
struct Applied {
    catalog: Catalog,
    /// Held by every change that depends on what is listed (read, then
    /// written), so that it sees no other change in between.
    changing: Mutex<()>,
    /// Entries to put, queued by [`Listing::insert`].
    queue: Mutex<Queue>,
    /// Signalled when an entry is queued, or when the listing closes.
    queued: Condvar,
    /// Signalled when the applier takes the queue (room for more), or breaks.
    taken: Condvar,
    /// The catalog's cursor (see [`resume`](super::resume)).
    cursor: AtomicU64,
    /// Tests: every apply of queued entries fails.
    #[cfg(test)]
    failing: std::sync::atomic::AtomicBool,
}

/// Entries queued but not yet applied, beyond which an insert waits.
pub(crate) const MAX_QUEUED: usize = 16_384;

/// The applier applies what is queued once this many entries are, or once the
/// first of them has waited [`APPLY_AFTER`]: one connection sending item after
/// item would otherwise wake it, and cost it a transaction, for every item.
const APPLY_AT: usize = 1_024;
const APPLY_AFTER: Duration = Duration::from_millis(20);

impl Listing {
    /// Opens the catalog in `root`'s [`DIR`].
    pub(crate) fn open(root: &Path) -> Result<Listing, StoreError> {
        let catalog = Catalog::open_tallied(&root.join(DIR), Some(tally))?;
        let cursor = catalog.cursor()?.unwrap_or(0);
        let shared = Arc::new(Applied {
            catalog,
            changing: Mutex::new(()),
            queue: Mutex::default(),
            queued: Condvar::new(),
            taken: Condvar::new(),
            cursor: AtomicU64::new(cursor),
            #[cfg(test)]
            failing: std::sync::atomic::AtomicBool::new(false),
        });
        let applier = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("ferry-catalog".into())
                .spawn(move || shared.run())
                .map_err(|err| {
                    StoreError::Unavailable(format!("cannot start the catalog's thread: {err}"))
                })?
        };
        Ok(Listing {
            shared,
            applier: Some(applier),
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
        listing.flush()?;
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

    /// Makes everything inserted so far durable.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        let _changing = self.shared.changing()?;
        self.shared.catalog.flush()
    }

    /// The catalog's cursor, as last applied; `None` before the first apply.
    pub(crate) fn cursor(&self) -> Result<Option<u64>, StoreError> {
        self.shared.catalog.cursor()
    }

    /// The value `name` last set.
    pub(crate) fn value(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.shared.catalog.value(name)
    }

    /// The items listed from each segment and their frame bytes:
    /// (segment, items, bytes).
    pub(crate) fn tallies(&self) -> Result<Vec<(u32, u64, u64)>, StoreError> {
        let _changing = self.shared.changing()?;
        self.shared.catalog.tallies()
    }

    /// Sets value `name` to `value` and the cursor to `cursor`, which every
    /// later apply records too (see [`resume`](super::resume)). Everything
    /// inserted before is applied first.
    pub(crate) fn checkpoint(
        &self,
        cursor: u64,
        name: &'static str,
        value: Vec<u8>,
    ) -> Result<(), StoreError> {
        let _changing = self.shared.changing()?;
        self.shared
            .catalog
            .apply(vec![Change::Set(name, value)], cursor)?;
        self.shared.cursor.store(cursor, Ordering::Release);
        Ok(())
    }

    /// Lists `entry` (replacing the entry of its id, if listed): queues it for
    /// the applier, and keeps it in the overlay until then. Waits while
    /// [`MAX_QUEUED`] entries are queued.
    pub(crate) fn insert(&self, entry: Entry) -> Result<(), StoreError> {
        let shared = &self.shared;
        let mut queue = shared.queue();
        while queue.pending.len() >= MAX_QUEUED && queue.broken.is_none() {
            queue = shared
                .taken
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
        queue.check()?;
        queue.issued += 1;
        let ticket = queue.issued;
        queue.overlay.insert(entry.meta.id, (ticket, entry.clone()));
        queue.pending.push(put(entry));
        if matches!(queue.pending.len(), 1 | APPLY_AT) {
            shared.queued.notify_one();
        }
        Ok(())
    }

    /// Unlists item `id`; returns its entry, `None` if it was not listed.
    pub(crate) fn remove(&self, id: ItemId) -> Result<Option<Entry>, StoreError> {
        let _changing = self.shared.changing()?;
        let Some(old) = self.get(id)? else {
            return Ok(None);
        };
        self.shared
            .catalog
            .apply(vec![Change::Remove(id)], self.shared.applied_to())?;
        Ok(Some(old))
    }

    /// Moves each item `id` of `moves` from `from` to `to`, if it is still
    /// listed at `from`; returns which moved.
    pub(crate) fn relocate(
        &self,
        moves: &[(ItemId, Location, Location)],
    ) -> Result<Vec<bool>, StoreError> {
        let _changing = self.shared.changing()?;
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
        self.shared
            .catalog
            .apply(changes, self.shared.applied_to())?;
        Ok(moved)
    }

    /// Applies `changes`, after everything inserted before.
    pub(crate) fn apply(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        let _changing = self.shared.changing()?;
        self.shared.catalog.apply(changes, self.shared.applied_to())
    }

    /// Item `id`'s entry, if listed (`held` is always false: holds are the
    /// store's [`Holds`](super::holds::Holds)).
    pub(crate) fn get(&self, id: ItemId) -> Result<Option<Entry>, StoreError> {
        if let Some((_, entry)) = self.shared.queue().overlay.get(&id) {
            return Ok(Some(entry.clone()));
        }
        let Some(found) = self.shared.catalog.get(id)? else {
            return Ok(None);
        };
        Ok(Some(entry(found)?))
    }

    /// The number of listed items.
    pub(crate) fn len(&self) -> Result<u64, StoreError> {
        let _changing = self.shared.changing()?;
        self.shared.catalog.len()
    }

    /// The items matching `query`, newest first.
    pub(crate) fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let _changing = self.shared.changing()?;
        let mut page = self.shared.catalog.list(query)?;
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
        let placed = {
            let _changing = self.shared.changing()?;
            self.shared.catalog.placed(segment, from)?
        };
        let mut found = Vec::new();
        for (_, id) in placed {
            if let Some(at) = self.location(id)? {
                found.push((id, at));
            }
        }
        Ok(found)
    }

    /// The items listed from files of their own. Reads the whole catalog.
    pub(crate) fn in_files(&self) -> Result<Vec<ItemId>, StoreError> {
        let _changing = self.shared.changing()?;
        let found = self
            .shared
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
        let _changing = self.shared.changing()?;
        let mut changes = Vec::with_capacity(updates.len());
        for &(id, index) in updates {
            if let Some(mut entry) = self.get(id)? {
                entry.meta.log_index = Some(index);
                changes.push(put(entry));
            }
        }
        self.shared.catalog.apply(changes, self.shared.applied_to())
    }
}

#[cfg(test)]
impl Listing {
    /// Makes every later apply of queued entries fail, as a full disk would.
    pub(crate) fn fail_applies(&self) {
        self.shared.failing.store(true, Ordering::Release);
    }
}

impl Drop for Listing {
    /// Applies what is queued and stops the applier.
    fn drop(&mut self) {
        self.shared.queue().closing = true;
        self.shared.queued.notify_one();
        if let Some(applier) = self.applier.take() {
            let _ = applier.join();
        }
    }
}

impl Applied {
    /// The applier: applies what is queued, as long as the listing is open and
    /// not broken.
    fn run(&self) {
        loop {
            {
                let mut queue = self.queue();
                while queue.pending.is_empty() && !queue.closing {
                    queue = self
                        .queued
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                // More to come in the same transaction: inserts wake the
                // applier again only at APPLY_AT, and a close at once. A
                // listing may apply the queue meanwhile.
                queue = self
                    .queued
                    .wait_timeout_while(queue, APPLY_AFTER, |queue| {
                        queue.pending.len() < APPLY_AT && !queue.closing
                    })
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                if queue.broken.is_some() || (queue.pending.is_empty() && queue.closing) {
                    return;
                }
            }
            if let Err(err) = self.changing() {
                tracing::error!(%err, "cannot list committed items in the catalog; they are listed again when the store is opened again");
                return;
            }
        }
    }

    /// Takes the catalog for a change, once every queued entry is applied.
    fn changing(&self) -> Result<MutexGuard<'_, ()>, StoreError> {
        let changing = self.changing.lock().unwrap_or_else(PoisonError::into_inner);
        self.drain()?;
        Ok(changing)
    }

    /// Applies every entry queued by [`Listing::insert`]; the caller holds
    /// `changing`.
    fn drain(&self) -> Result<(), StoreError> {
        let (batch, last) = {
            let mut queue = self.queue();
            queue.check()?;
            if queue.pending.is_empty() {
                return Ok(());
            }
            (std::mem::take(&mut queue.pending), queue.issued)
        };
        self.taken.notify_all();
        let result = self.apply_queued(batch);
        let mut queue = self.queue();
        match result {
            Ok(()) => {
                queue.overlay.retain(|_, (ticket, _)| *ticket > last);
                Ok(())
            }
            Err(err) => {
                queue.broken = Some(err.to_string());
                self.taken.notify_all();
                queue.check()
            }
        }
    }

    fn apply_queued(&self, batch: Vec<Change>) -> Result<(), StoreError> {
        #[cfg(test)]
        if self.failing.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable(
                "the catalog cannot be written (a test)".into(),
            ));
        }
        self.catalog.apply(batch, self.applied_to())
    }

    /// The cursor that every apply records: how far the log is applied for sure.
    fn applied_to(&self) -> u64 {
        self.cursor.load(Ordering::Acquire)
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The entry `found` in the catalog stands for.
fn entry(found: CatalogEntry) -> Result<Entry, StoreError> {
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
    /// The entries inserted and not yet applied, with their tickets.
    overlay: HashMap<ItemId, (u64, Entry)>,
    /// Tickets handed out.
    issued: u64,
    /// Why the catalog could not apply, once it could not (see [`Listing`]).
    broken: Option<String>,
    closing: bool,
}

impl Queue {
    fn check(&self) -> Result<(), StoreError> {
        match &self.broken {
            Some(why) => Err(StoreError::Unavailable(format!(
                "the catalog of listed items failed ({why}); restart the server to list them again from the log"
            ))),
            None => Ok(()),
        }
    }
}

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
