//! A persistent catalog of listed items, on disk and not in memory: each item's
//! metadata and an opaque location chosen by the store, the items' legal holds,
//! and a cursor saying how far the catalog has applied its source (a bucket
//! listing, a log), so that a reopened catalog resumes from there.
//!
//! It is one [redb](https://docs.rs/redb) file, `catalog.redb`, in the directory
//! given to [`Catalog::open`]. The source is the truth: [`Catalog::apply`] commits
//! a batch of changes and the cursor together, atomically but without waiting for
//! the disk, so that after a crash the catalog is an earlier state with that
//! state's cursor, and the source is replayed from it. A commit is made durable
//! at least once a second (`SYNC_EVERY`), and by [`Catalog::flush`] or a clean close.
//!
//! Memory stays small whatever the number of items: redb's page cache is capped
//! at 32 MiB (`CACHE_BYTES`). `cargo run --release -p ferry-store --example
//! catalog_bench` measures it with five million items.
//!
//! Crate-internal: the module is public only for that benchmark.

mod codec;
mod span;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::ops::Bound;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use redb::{
    Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    TableHandle,
};

use crate::{ItemId, ItemMeta, ListQuery, Page, StoreError};
use codec::Fields;
use span::Skew;

/// Entries by id (the ULID's 16 bytes as a big-endian number, so in id order).
const ITEMS: TableDefinition<u128, &[u8]> = TableDefinition::new("items");
/// The ids on legal hold, whether or not they have an entry.
const HOLDS: TableDefinition<u128, ()> = TableDefinition::new("holds");
/// `"cursor"`: how far the source is applied.
const STATE: TableDefinition<&str, u64> = TableDefinition::new("state");
/// `"low"` and `"high"`: the [`Skew`] of every entry ever put.
const SKEW: TableDefinition<&str, i64> = TableDefinition::new("skew");
/// Per tally group (see [`Tally`]): the entries in it and the sum of their
/// amounts, kept with the entries in every transaction.
const TALLIES: TableDefinition<u32, (u64, u64)> = TableDefinition::new("tallies");
/// Values the source keeps beside its cursor ([`Change::Set`]).
const VALUES: TableDefinition<&str, &[u8]> = TableDefinition::new("values");

/// Entries by their place in a tally group: (group, place) to id.
const PLACES: TableDefinition<(u32, u64), u128> = TableDefinition::new("places");

/// Where an entry's location counts: in which group, with what amount, at which
/// place in it (say, a log segment, the bytes of the record there, and its
/// offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tallied {
    pub group: u32,
    pub amount: u64,
    /// Unique in its group, if given.
    pub place: Option<u64>,
}

/// Where an entry's location counts; `None` for nowhere.
pub type Tally = fn(&[u8]) -> Option<Tallied>;

pub(crate) const FILE_NAME: &str = "catalog.redb";
/// The [`STATE`] names of the counts of [`Change::Unreadable`], before the key id.
const UNREADABLE: &str = "unreadable:";
/// redb's page cache. Listings read a few pages; more cache mostly holds pages
/// written by inserts, which are not read again.
pub(crate) const CACHE_BYTES: usize = 32 << 20;
/// The longest an applied change waits to be made durable (while changes come).
pub(crate) const SYNC_EVERY: Duration = Duration::from_secs(1);

/// One listed item: its metadata, and where the store keeps it (a few dozen
/// opaque bytes, chosen by the store).
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogEntry {
    pub meta: ItemMeta,
    pub location: Vec<u8>,
}

/// One change to the catalog.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Lists an item, or replaces its entry. `meta.held` is ignored: holds are
    /// [`Change::Hold`]s.
    Put(CatalogEntry),
    /// Unlists an item (no error if it is not listed). Its hold, if any, stays.
    Remove(ItemId),
    /// Puts an id on legal hold (`true`) or lifts its hold. Holds are kept apart
    /// from entries: a hold may come before its item, and outlives its removal.
    Hold(ItemId, bool),
    /// Notes a record of the source left unlisted because it is sealed with the
    /// storage key of this id, which the store was not given (see
    /// [`Catalog::unreadable`]).
    Unreadable(String),
    /// Sets a number of the store's own, read back by [`Catalog::number`].
    /// Names are the store's; they do not start with `unreadable:` or `cursor`.
    SetNumber(&'static str, u64),
    /// Sets the value `name` (see [`Catalog::value`]), with the changes it
    /// comes with.
    Set(&'static str, Vec<u8>),
}

/// A persistent catalog of listed items (see the [module](self)). Shared by
/// threads: reads run beside each other and beside a write; writes take turns.
/// Every call blocks on the disk: call it from a blocking task.
pub struct Catalog {
    db: redb::Database,
    /// The catalog's directory, for errors (never shown to clients).
    dir: PathBuf,
    /// When a commit was last made durable.
    synced: Mutex<Instant>,
    tally: Option<Tally>,
}

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalog")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// Opens the catalog in directory `dir`, creating the directory (mode 0700)
    /// and its file (mode 0600) if missing. [`StoreError::Locked`] if it is open
    /// already, here or in another process.
    pub fn open(dir: &Path) -> Result<Catalog, StoreError> {
        Catalog::open_tallied(dir, None)
    }

    /// [`Catalog::open`], keeping [`tallies`](Self::tallies) of the entries'
    /// locations by `tally`. A catalog must always be opened with the same one.
    pub fn open_tallied(dir: &Path, tally: Option<Tally>) -> Result<Catalog, StoreError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| StoreError::io("creating the catalog directory", dir, e))?;
        let path = dir.join(FILE_NAME);
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StoreError::io("creating the catalog", &path, e))?;
        let fail = |context| move |e: redb::DatabaseError| failure(context, dir, e.into());
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(fail("opening the catalog"))?;
        let catalog = Catalog {
            db,
            dir: dir.to_owned(),
            synced: Mutex::new(Instant::now()),
            tally,
        };
        // Every table exists from here on, so that reads need not ask. An
        // open that finds them writes nothing (a refused start must leave the
        // store as it was).
        if !catalog.has_every_table()? {
            let txn = catalog.write(Durability::Immediate)?;
            catalog.tables(&txn, |_| Ok(()))?;
            txn.commit().map_err(catalog.fail("creating the catalog"))?;
        }
        Ok(catalog)
    }

    /// Whether every table of the catalog was created.
    fn has_every_table(&self) -> Result<bool, StoreError> {
        let txn = self.read()?;
        let found: Vec<String> = txn
            .list_tables()
            .map_err(self.fail(READING))?
            .map(|table| table.name().to_owned())
            .collect();
        Ok([
            ITEMS.name(),
            HOLDS.name(),
            STATE.name(),
            SKEW.name(),
            TALLIES.name(),
            PLACES.name(),
            VALUES.name(),
        ]
        .iter()
        .all(|name| found.iter().any(|f| f == name)))
    }

    /// Applies `changes` in order and sets the cursor to `cursor`, all in one
    /// transaction. Not durable at once (see the [module](self)), but a crash
    /// leaves the catalog at some earlier state with its own cursor.
    pub fn apply(&self, changes: Vec<Change>, cursor: u64) -> Result<(), StoreError> {
        let mut synced = self.synced.lock().unwrap_or_else(PoisonError::into_inner);
        let durable = synced.elapsed() >= SYNC_EVERY;
        let txn = self.write(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })?;
        self.tables(&txn, |tables| {
            let old = read_skew(&tables.skew)?;
            let mut skew = old;
            let mut deltas = std::collections::BTreeMap::<u32, (i64, i64)>::new();
            let count = |deltas: &mut std::collections::BTreeMap<u32, (i64, i64)>,
                         places: &mut redb::Table<'_, (u32, u64), u128>,
                         id: u128,
                         location: &[u8],
                         sign: i64|
             -> Result<(), redb::Error> {
                if let Some(t) = self.tally.and_then(|tally| tally(location)) {
                    let delta = deltas.entry(t.group).or_default();
                    delta.0 += sign;
                    delta.1 += sign * t.amount as i64;
                    match (t.place, sign > 0) {
                        (Some(place), true) => drop(places.insert((t.group, place), id)?),
                        (Some(place), false) => drop(places.remove((t.group, place))?),
                        (None, _) => {}
                    }
                }
                Ok(())
            };
            for change in changes {
                match change {
                    Change::Put(entry) => {
                        let of = Skew::of(&entry.meta);
                        skew = Some(skew.map_or(of, |s| s.widen(of)));
                        let id = key(entry.meta.id);
                        let old = tables
                            .items
                            .insert(id, codec::encode(&entry).as_slice())?
                            .map(|o| o.value().to_vec());
                        if let Some(fields) = old.as_deref().and_then(Fields::read) {
                            count(&mut deltas, &mut tables.places, id, fields.location(), -1)?;
                        }
                        count(&mut deltas, &mut tables.places, id, &entry.location, 1)?;
                    }
                    Change::Remove(id) => {
                        let id = key(id);
                        let old = tables.items.remove(id)?.map(|o| o.value().to_vec());
                        if let Some(fields) = old.as_deref().and_then(Fields::read) {
                            count(&mut deltas, &mut tables.places, id, fields.location(), -1)?;
                        }
                    }
                    Change::Set(name, value) => {
                        tables.values.insert(name, value.as_slice())?;
                    }
                    Change::Hold(id, true) => {
                        tables.holds.insert(key(id), ())?;
                    }
                    Change::Hold(id, false) => {
                        tables.holds.remove(key(id))?;
                    }
                    Change::SetNumber(name, value) => {
                        tables.state.insert(name, value)?;
                    }
                    Change::Unreadable(key_id) => {
                        let name = format!("{UNREADABLE}{key_id}");
                        let count = tables.state.get(name.as_str())?.map_or(0, |c| c.value());
                        tables.state.insert(name.as_str(), count + 1)?;
                    }
                }
            }
            for (group, (entries, amount)) in deltas {
                let (was_entries, was_amount) =
                    tables.tallies.get(group)?.map_or((0, 0), |v| v.value());
                let now = (
                    was_entries.saturating_add_signed(entries),
                    was_amount.saturating_add_signed(amount),
                );
                if now.0 == 0 {
                    tables.tallies.remove(group)?;
                } else {
                    tables.tallies.insert(group, now)?;
                }
            }
            if let Some(skew) = skew.filter(|s| Some(*s) != old) {
                tables.skew.insert("low", skew.low)?;
                tables.skew.insert("high", skew.high)?;
            }
            tables.state.insert("cursor", cursor)?;
            Ok(())
        })?;
        txn.commit()
            .map_err(self.fail("committing to the catalog"))?;
        if durable {
            *synced = Instant::now();
        }
        Ok(())
    }

    /// Makes everything applied durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        let mut synced = self.synced.lock().unwrap_or_else(PoisonError::into_inner);
        self.write(Durability::Immediate)?
            .commit()
            .map_err(self.fail("syncing the catalog"))?;
        *synced = Instant::now();
        Ok(())
    }

    /// Empties the catalog: entries, holds, tallies, notes, values and cursor, at once and
    /// durably. For a store that finds its catalog does not match its source
    /// and rebuilds it from the start.
    pub fn clear(&self) -> Result<(), StoreError> {
        let mut synced = self.synced.lock().unwrap_or_else(PoisonError::into_inner);
        let txn = self.write(Durability::Immediate)?;
        let clearing = "clearing the catalog";
        let found: Vec<_> = txn.list_tables().map_err(self.fail(clearing))?.collect();
        for table in found {
            txn.delete_table(table).map_err(self.fail(clearing))?;
        }
        // Made again, empty.
        self.tables(&txn, |_| Ok(()))?;
        txn.commit().map_err(self.fail(clearing))?;
        *synced = Instant::now();
        Ok(())
    }

    /// The records left unlisted for want of their storage key
    /// ([`Change::Unreadable`]), counted by key id.
    pub fn unreadable(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let txn = self.read()?;
        let state = txn.open_table(STATE).map_err(self.fail(READING))?;
        let mut counts = BTreeMap::new();
        let notes = state
            .range::<&str>(UNREADABLE..)
            .map_err(self.fail(READING))?;
        for row in notes {
            let (name, count) = row.map_err(self.fail(READING))?;
            let Some(key_id) = name.value().strip_prefix(UNREADABLE) else {
                break;
            };
            counts.insert(key_id.to_owned(), count.value());
        }
        Ok(counts)
    }

    /// A number set by [`Change::SetNumber`]; `None` if never set.
    pub fn number(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let txn = self.read()?;
        let state = txn.open_table(STATE).map_err(self.fail(READING))?;
        let value = state.get(name).map_err(self.fail(READING))?;
        Ok(value.map(|v| v.value()))
    }

    /// Up to `limit` entries in id order, from the first after `after` (from
    /// the first of all with `None`): a page of a walk through every entry.
    pub fn entries(
        &self,
        after: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<CatalogEntry>, StoreError> {
        let txn = self.read()?;
        let items = txn.open_table(ITEMS).map_err(self.fail(READING))?;
        let lower = after.map_or(Bound::Unbounded, |id| Bound::Excluded(key(id)));
        let rows = items
            .range::<u128>((lower, Bound::Unbounded))
            .map_err(self.fail(READING))?;
        let mut page = Vec::new();
        for row in rows.take(limit) {
            let (k, v) = row.map_err(self.fail(READING))?;
            let id = ItemId::from_bytes(k.value().to_be_bytes());
            let held = self.held(&txn, id)?;
            page.push(self.fields(id, v.value())?.to_entry(id, held));
        }
        Ok(page)
    }

    /// The cursor of the last [`apply`](Self::apply); `None` before the first.
    pub fn cursor(&self) -> Result<Option<u64>, StoreError> {
        let txn = self.read()?;
        let state = txn.open_table(STATE).map_err(self.fail(READING))?;
        let cursor = state.get("cursor").map_err(self.fail(READING))?;
        Ok(cursor.map(|c| c.value()))
    }

    /// Every tally group with entries: (group, entries, sum of their amounts).
    pub fn tallies(&self) -> Result<Vec<(u32, u64, u64)>, StoreError> {
        let txn = self.read()?;
        let tallies = txn.open_table(TALLIES).map_err(self.fail(READING))?;
        let mut all = Vec::new();
        for row in tallies.iter().map_err(self.fail(READING))? {
            let (group, counts) = row.map_err(self.fail(READING))?;
            let (entries, amount) = counts.value();
            all.push((group.value(), entries, amount));
        }
        Ok(all)
    }

    /// The ids placed in tally group `group` at `from` or after, by place.
    pub fn placed(&self, group: u32, from: u64) -> Result<Vec<(u64, ItemId)>, StoreError> {
        let txn = self.read()?;
        let places = txn.open_table(PLACES).map_err(self.fail(READING))?;
        let mut found = Vec::new();
        let range = places
            .range((group, from)..=(group, u64::MAX))
            .map_err(self.fail(READING))?;
        for row in range {
            let (at, id) = row.map_err(self.fail(READING))?;
            found.push((at.value().1, ItemId::from_bytes(id.value().to_be_bytes())));
        }
        Ok(found)
    }

    /// The value `name` last [set](Change::Set); `None` if never.
    pub fn value(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.read()?;
        let values = txn.open_table(VALUES).map_err(self.fail(READING))?;
        let value = values.get(name).map_err(self.fail(READING))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// Item `id`'s entry, with `meta.held` from its hold; `None` if not listed.
    pub fn get(&self, id: ItemId) -> Result<Option<CatalogEntry>, StoreError> {
        let txn = self.read()?;
        let items = txn.open_table(ITEMS).map_err(self.fail(READING))?;
        let Some(bytes) = items.get(key(id)).map_err(self.fail(READING))? else {
            return Ok(None);
        };
        let held = self.held(&txn, id)?;
        let fields = self.fields(id, bytes.value())?;
        Ok(Some(fields.to_entry(id, held)))
    }

    /// Whether id `id` is on legal hold.
    pub fn is_held(&self, id: ItemId) -> Result<bool, StoreError> {
        self.held(&self.read()?, id)
    }

    /// The number of listed items.
    // A count is what the store needs; an emptiness test would be the same read.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> Result<u64, StoreError> {
        let txn = self.read()?;
        let items = txn.open_table(ITEMS).map_err(self.fail(READING))?;
        items.len().map_err(self.fail(READING))
    }

    /// The items matching `query`, newest first, as
    /// [`Store::list`](crate::Store::list) answers. A listing with `since` or
    /// `until` reads only the ids that can be in that time range (see [`span`]);
    /// other filters are tested on each entry in turn.
    pub fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let txn = self.read()?;
        let items = txn.open_table(ITEMS).map_err(self.fail(READING))?;
        let (mut lower, mut upper) = (Bound::Unbounded, Bound::Unbounded);
        if query.since.is_some() || query.until.is_some() {
            let skew = txn.open_table(SKEW).map_err(self.fail(READING))?;
            if let Some(skew) = read_skew(&skew).map_err(self.fail(READING))? {
                match skew.keys(query.since, query.until) {
                    Some(keys) => (lower, upper) = keys,
                    None => return Ok(Page::default()),
                }
            }
        }
        if let Some(before) = query.before {
            let before = key(before);
            if !matches!(upper, Bound::Excluded(k) if k <= before) {
                upper = Bound::Excluded(before);
            }
        }
        if matches!((lower, upper), (Bound::Included(l), Bound::Excluded(u)) if l >= u) {
            return Ok(Page::default());
        }
        let limit = if query.limit == 0 {
            usize::MAX
        } else {
            query.limit
        };
        let mut page = Page::default();
        let range = items
            .range::<u128>((lower, upper))
            .map_err(self.fail(READING))?;
        for row in range.rev() {
            let (k, v) = row.map_err(self.fail(READING))?;
            let id = ItemId::from_bytes(k.value().to_be_bytes());
            let fields = self.fields(id, v.value())?;
            if !matches(&fields, query) {
                continue;
            }
            if page.items.len() == limit {
                page.next = page.items.last().map(|last| last.id);
                break;
            }
            let held = self.held(&txn, id)?;
            page.items.push(fields.to_meta(id, held));
        }
        Ok(page)
    }

    /// Every entry whose location `keep` accepts, as (id, location), in id
    /// order. Reads the whole catalog: for rare passes (a compaction), not for
    /// requests.
    pub fn locations(
        &self,
        mut keep: impl FnMut(&[u8]) -> bool,
    ) -> Result<Vec<(ItemId, Vec<u8>)>, StoreError> {
        let txn = self.read()?;
        let items = txn.open_table(ITEMS).map_err(self.fail(READING))?;
        let mut found = Vec::new();
        for row in items.iter().map_err(self.fail(READING))? {
            let (k, v) = row.map_err(self.fail(READING))?;
            let id = ItemId::from_bytes(k.value().to_be_bytes());
            let fields = self.fields(id, v.value())?;
            if keep(fields.location()) {
                found.push((id, fields.location().to_vec()));
            }
        }
        Ok(found)
    }

    fn held(&self, txn: &redb::ReadTransaction, id: ItemId) -> Result<bool, StoreError> {
        let holds = txn.open_table(HOLDS).map_err(self.fail(READING))?;
        let held = holds.get(key(id)).map_err(self.fail(READING))?;
        Ok(held.is_some())
    }

    fn fields<'a>(&self, id: ItemId, bytes: &'a [u8]) -> Result<Fields<'a>, StoreError> {
        Fields::read(bytes).ok_or_else(|| {
            let damaged = io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the entry of item {id} cannot be read"),
            );
            StoreError::io(READING, &self.dir, damaged)
        })
    }

    fn read(&self) -> Result<redb::ReadTransaction, StoreError> {
        self.db.begin_read().map_err(self.fail(READING))
    }

    fn write(&self, durability: Durability) -> Result<redb::WriteTransaction, StoreError> {
        let mut txn = self
            .db
            .begin_write()
            .map_err(self.fail("writing to the catalog"))?;
        txn.set_durability(durability)
            .map_err(self.fail("writing to the catalog"))?;
        Ok(txn)
    }

    /// Runs `f` on the tables of `txn`; an error leaves them to be dropped with
    /// the uncommitted transaction.
    fn tables(
        &self,
        txn: &redb::WriteTransaction,
        f: impl FnOnce(&mut Tables<'_>) -> Result<(), redb::Error>,
    ) -> Result<(), StoreError> {
        let run = || -> Result<(), redb::Error> {
            f(&mut Tables {
                items: txn.open_table(ITEMS)?,
                holds: txn.open_table(HOLDS)?,
                state: txn.open_table(STATE)?,
                skew: txn.open_table(SKEW)?,
                tallies: txn.open_table(TALLIES)?,
                places: txn.open_table(PLACES)?,
                values: txn.open_table(VALUES)?,
            })
        };
        run().map_err(|e| failure("writing to the catalog", &self.dir, e))
    }

    fn fail<E: Into<redb::Error>>(&self, context: &'static str) -> impl FnOnce(E) -> StoreError {
        let dir = self.dir.clone();
        move |e| failure(context, &dir, e.into())
    }
}

const READING: &str = "reading the catalog";

/// The tables of a write transaction.
struct Tables<'txn> {
    items: redb::Table<'txn, u128, &'static [u8]>,
    holds: redb::Table<'txn, u128, ()>,
    state: redb::Table<'txn, &'static str, u64>,
    skew: redb::Table<'txn, &'static str, i64>,
    tallies: redb::Table<'txn, u32, (u64, u64)>,
    places: redb::Table<'txn, (u32, u64), u128>,
    values: redb::Table<'txn, &'static str, &'static [u8]>,
}

/// The key of item `id`.
fn key(id: ItemId) -> u128 {
    u128::from_be_bytes(id.to_bytes())
}

fn read_skew(table: &impl ReadableTable<&'static str, i64>) -> Result<Option<Skew>, redb::Error> {
    let (Some(low), Some(high)) = (table.get("low")?, table.get("high")?) else {
        return Ok(None);
    };
    Ok(Some(Skew {
        low: low.value(),
        high: high.value(),
    }))
}

/// Whether an entry passes every filter of `query` (all but `before`).
fn matches(fields: &Fields<'_>, query: &ListQuery) -> bool {
    query.data_type.is_none_or(|t| fields.data_type == t)
        && query
            .serialization
            .is_none_or(|s| fields.serialization == s)
        && query.since.is_none_or(|t| fields.received_at >= t)
        && query.until.is_none_or(|t| fields.received_at < t)
        && query
            .source
            .as_deref()
            .is_none_or(|source| crate::meta::peer_is_from(fields.peer, source))
        && query
            .name
            .as_deref()
            .is_none_or(|wanted| crate::meta::name_has(fields.name, wanted))
}

/// A redb error as a [`StoreError`]: the catalog's directory is in the error for
/// the log, and kept from clients as every [`StoreError::Io`] is.
fn failure(context: &'static str, dir: &Path, err: redb::Error) -> StoreError {
    match err {
        redb::Error::DatabaseAlreadyOpen => StoreError::Locked(dir.to_owned()),
        redb::Error::Io(source) => StoreError::io(context, dir, source),
        other => StoreError::io(context, dir, io::Error::other(other.to_string())),
    }
}
