//! A server's view of the bucket: every listed item with where its record is,
//! and the items on legal hold, as the commit log built them.
//!
//! The view is a [`Catalog`] on the server's disk, not in memory, whose cursor
//! is the sequence number of the last log object applied: a restart reads only
//! the log objects written since. Without a directory of its own, a view lives
//! in a temporary one and is rebuilt from the whole log at every open.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tempfile::TempDir;

use crate::catalog::{Catalog, CatalogEntry, Change};
use crate::{ItemId, ItemMeta, ListQuery, Page, StoreError};

/// Where an item's sealed record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// Bytes `base..base + len` of the commit-log object `log/<seq>`.
    Batch { seq: u64, base: u64, len: u64 },
    /// Its own object, `items/<id>.rec`, of `len` bytes; listed by the entry
    /// of log object `seq` whose sealed metadata is at `meta_base..+meta_len`.
    Object {
        len: u64,
        seq: u64,
        meta_base: u64,
        meta_len: u64,
    },
}

const BATCH: u8 = 1;
const OBJECT: u8 = 2;

impl Location {
    /// The log object that lists the item.
    pub(crate) fn seq(&self) -> u64 {
        match *self {
            Location::Batch { seq, .. } | Location::Object { seq, .. } => seq,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let (tag, numbers) = match *self {
            Location::Batch { seq, base, len } => (BATCH, vec![seq, base, len]),
            Location::Object {
                len,
                seq,
                meta_base,
                meta_len,
            } => (OBJECT, vec![len, seq, meta_base, meta_len]),
        };
        let mut bytes = vec![tag];
        for n in numbers {
            bytes.extend_from_slice(&n.to_le_bytes());
        }
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Location> {
        let (&tag, rest) = bytes.split_first()?;
        let mut numbers = rest
            .chunks_exact(8)
            .map(|n| u64::from_le_bytes(n.try_into().expect("chunks of 8")));
        match (tag, rest.len()) {
            (BATCH, 24) => Some(Location::Batch {
                seq: numbers.next()?,
                base: numbers.next()?,
                len: numbers.next()?,
            }),
            (OBJECT, 32) => Some(Location::Object {
                len: numbers.next()?,
                seq: numbers.next()?,
                meta_base: numbers.next()?,
                meta_len: numbers.next()?,
            }),
            _ => None,
        }
    }
}

/// One listed item.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub meta: ItemMeta,
    pub location: Location,
}

impl Entry {
    fn read(CatalogEntry { meta, location }: CatalogEntry) -> Result<Entry, StoreError> {
        let id = meta.id;
        let location = Location::decode(&location).ok_or_else(|| {
            let damaged = std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the location of item {id} cannot be read"),
            );
            StoreError::io("reading the S3 store's view", Path::new("catalog"), damaged)
        })?;
        Ok(Entry { meta, location })
    }
}

/// The catalog's numbers for the last compaction applied.
const COMPACTED_THROUGH: &str = "compacted_through";
const COMPACTED_AT_MS: &str = "compacted_at_ms";
/// The catalog's number for [`View::first_left_out`].
const FIRST_LEFT_OUT: &str = "first_left_out";
/// The catalog's value for [`View::logs`].
const LOGS: &str = "ledger_logs";

/// What the commit log says of one server's signed log (see
/// [`batch`](super::batch)): the last object holding one of its leaves, and
/// the last up to which its leaves are all copied into the log's own objects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogMarks {
    pub last_leaf: u64,
    pub copied_through: u64,
}

/// The marks of every log, one line each: its name, `last_leaf`,
/// `copied_through`.
fn encode_logs(logs: &BTreeMap<String, LogMarks>) -> Vec<u8> {
    logs.iter()
        .map(|(name, m)| format!("{name} {} {}\n", m.last_leaf, m.copied_through))
        .collect::<String>()
        .into_bytes()
}

fn decode_logs(bytes: &[u8]) -> Option<BTreeMap<String, LogMarks>> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.lines()
        .map(|line| {
            let mut fields = line.split(' ');
            let name = fields.next()?.to_owned();
            let last_leaf = fields.next()?.parse().ok()?;
            let copied_through = fields.next()?.parse().ok()?;
            Some((
                name,
                LogMarks {
                    last_leaf,
                    copied_through,
                },
            ))
        })
        .collect()
}

/// The listed items and the held ones (see the [module](self)). Clones share
/// one catalog.
#[derive(Clone, Debug)]
pub(crate) struct View {
    catalog: Arc<Catalog>,
    /// The directory of a view without one of its own, removed with the last clone.
    _scratch: Option<Arc<TempDir>>,
}

impl View {
    /// Opens the view kept in `dir`, or a new one in a temporary directory.
    pub(crate) fn open(dir: Option<&Path>) -> Result<View, StoreError> {
        let (catalog, scratch) = match dir {
            Some(dir) => (Catalog::open(dir)?, None),
            None => {
                let scratch = tempfile::Builder::new()
                    .prefix("ferry-s3-view-")
                    .tempdir()
                    .map_err(|e| {
                        StoreError::io("creating a temporary view", std::env::temp_dir(), e)
                    })?;
                (Catalog::open(scratch.path())?, Some(Arc::new(scratch)))
            }
        };
        Ok(View {
            catalog: Arc::new(catalog),
            _scratch: scratch,
        })
    }

    /// The sequence number of the last log object applied; 0 before the first.
    pub(crate) fn cursor(&self) -> Result<u64, StoreError> {
        Ok(self.catalog.cursor()?.unwrap_or(0))
    }

    /// Applies the changes of log object `seq` (see [`Changes`]).
    pub(crate) fn apply(&self, mut changes: Changes, seq: u64) -> Result<(), StoreError> {
        if let Some(logs) = &changes.logs {
            changes.changes.push(Change::Set(LOGS, encode_logs(logs)));
        }
        self.catalog.apply(changes.changes, seq)
    }

    /// The marks of every server's log that has leaves in the commit log.
    pub(crate) fn logs(&self) -> Result<BTreeMap<String, LogMarks>, StoreError> {
        let Some(bytes) = self.catalog.value(LOGS)? else {
            return Ok(BTreeMap::new());
        };
        decode_logs(&bytes).ok_or_else(|| {
            let damaged = std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the marks of the servers' logs cannot be read",
            );
            StoreError::io("reading the S3 store's view", Path::new("catalog"), damaged)
        })
    }

    /// The last log object a compaction may copy and remove without taking a
    /// leaf not yet copied into its log's own objects, and the log that
    /// holds it there; `None` if any may go.
    pub(crate) fn copy_floor(&self) -> Result<Option<(u64, String)>, StoreError> {
        Ok(self
            .logs()?
            .into_iter()
            .filter(|(_, m)| m.last_leaf > m.copied_through)
            .map(|(name, m)| (m.copied_through, name))
            .min())
    }

    /// Forgets everything, to be rebuilt from the first log object.
    pub(crate) fn clear(&self) -> Result<(), StoreError> {
        self.catalog.clear()
    }

    /// The records left unlisted for want of their storage key, by key id.
    pub(crate) fn unreadable(&self) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        self.catalog.unreadable()
    }

    /// The item's entry, its metadata marked held or not.
    pub(crate) fn get(&self, id: ItemId) -> Result<Option<Entry>, StoreError> {
        self.catalog.get(id)?.map(Entry::read).transpose()
    }

    /// Up to `limit` entries in id order after `after` (see [`Catalog::entries`]).
    pub(crate) fn entries(
        &self,
        after: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let page = self.catalog.entries(after, limit)?;
        page.into_iter().map(Entry::read).collect()
    }

    /// Which of `entries` are still listed where they were.
    pub(crate) fn still_at(&self, entries: &[(ItemId, Location)]) -> Result<Vec<bool>, StoreError> {
        entries
            .iter()
            .map(|(id, location)| {
                Ok(self
                    .get(*id)?
                    .is_some_and(|entry| entry.location == *location))
            })
            .collect()
    }

    /// The first log object holding something the view left out, if any.
    pub(crate) fn first_left_out(&self) -> Result<Option<u64>, StoreError> {
        self.catalog.number(FIRST_LEFT_OUT)
    }

    /// The last compaction applied: the log objects it copied (up to and with
    /// this sequence number) and when (ms since the epoch).
    pub(crate) fn compacted(&self) -> Result<Option<(u64, i64)>, StoreError> {
        let through = self.catalog.number(COMPACTED_THROUGH)?;
        let at_ms = self.catalog.number(COMPACTED_AT_MS)?;
        Ok(through.zip(at_ms).map(|(t, at)| (t, at as i64)))
    }

    pub(crate) fn is_held(&self, id: ItemId) -> Result<bool, StoreError> {
        self.catalog.is_held(id)
    }

    pub(crate) fn len(&self) -> Result<usize, StoreError> {
        Ok(self.catalog.len()? as usize)
    }

    /// The items matching `query`, newest first.
    pub(crate) fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        self.catalog.list(query)
    }
}

/// The changes one log object makes to the view, gathered before they are
/// applied together. Tombstones and holds depend on the holds and items before
/// them, in the view or earlier in the same object.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    changes: Vec<Change>,
    /// Ids listed (`true`) or unlisted by these changes.
    listed: std::collections::HashMap<ItemId, bool>,
    /// Ids held (`true`) or released by these changes.
    held: std::collections::HashMap<ItemId, bool>,
    /// The compaction these changes note.
    compacted: Option<(u64, i64)>,
    /// Whether these changes note the first object with something left out.
    left_out: bool,
    /// The marks of the logs, if these changes move any.
    logs: Option<BTreeMap<String, LogMarks>>,
}

impl Changes {
    pub(crate) fn insert(&mut self, entry: Entry) {
        self.listed.insert(entry.meta.id, true);
        self.changes.push(Change::Put(CatalogEntry {
            location: entry.location.encode(),
            meta: entry.meta,
        }));
    }

    /// Unlists `id` unless it is held; `false` (nothing changed) if it is.
    pub(crate) fn remove(&mut self, view: &View, id: ItemId) -> Result<bool, StoreError> {
        if self.is_held(view, id)? {
            return Ok(false);
        }
        self.listed.insert(id, false);
        self.changes.push(Change::Remove(id));
        Ok(true)
    }

    /// Sets or lifts a listed item's hold; `false` (nothing changed) if it is
    /// not listed.
    pub(crate) fn set_held(
        &mut self,
        view: &View,
        id: ItemId,
        held: bool,
    ) -> Result<bool, StoreError> {
        let listed = match self.listed.get(&id) {
            Some(&listed) => listed,
            None => view.catalog.get(id)?.is_some(),
        };
        if listed {
            self.held.insert(id, held);
            self.changes.push(Change::Hold(id, held));
        }
        Ok(listed)
    }

    /// Notes a compaction of the log objects up to `through`, done at `at_ms`,
    /// unless one reached as far before.
    pub(crate) fn compacted(
        &mut self,
        view: &View,
        through: u64,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        if self
            .compacted
            .or(view.compacted()?)
            .is_some_and(|(t, _)| t >= through)
        {
            return Ok(());
        }
        self.compacted = Some((through, at_ms));
        self.changes
            .push(Change::SetNumber(COMPACTED_THROUGH, through));
        self.changes
            .push(Change::SetNumber(COMPACTED_AT_MS, at_ms as u64));
        Ok(())
    }

    /// Notes a record left unlisted: sealed with storage key `key_id`, not given.
    pub(crate) fn unreadable(&mut self, key_id: String) {
        self.changes.push(Change::Unreadable(key_id));
    }

    /// Notes that log object `seq` holds something the view left out (a record
    /// it cannot read, or the whole object): compaction never removes it, nor
    /// any object after it.
    pub(crate) fn left_out(&mut self, view: &View, seq: u64) -> Result<(), StoreError> {
        if self.left_out || view.first_left_out()?.is_some() {
            return Ok(());
        }
        self.left_out = true;
        self.changes.push(Change::SetNumber(FIRST_LEFT_OUT, seq));
        Ok(())
    }

    /// Notes a leaf of `log` in log object `seq`.
    pub(crate) fn leaf(&mut self, view: &View, log: &str, seq: u64) -> Result<(), StoreError> {
        let marks = self.marks(view, log)?;
        marks.last_leaf = marks.last_leaf.max(seq);
        Ok(())
    }

    /// Notes that the leaves of `log` up to log object `through` are copied.
    pub(crate) fn copied(
        &mut self,
        view: &View,
        log: &str,
        through: u64,
    ) -> Result<(), StoreError> {
        let marks = self.marks(view, log)?;
        marks.copied_through = marks.copied_through.max(through);
        Ok(())
    }

    fn marks(&mut self, view: &View, log: &str) -> Result<&mut LogMarks, StoreError> {
        let logs = match &mut self.logs {
            Some(logs) => logs,
            none => none.insert(view.logs()?),
        };
        Ok(logs.entry(log.to_owned()).or_default())
    }

    fn is_held(&self, view: &View, id: ItemId) -> Result<bool, StoreError> {
        match self.held.get(&id) {
            Some(&held) => Ok(held),
            None => view.is_held(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_read_back_as_written() {
        for location in [
            Location::Batch {
                seq: 7,
                base: 40,
                len: u64::MAX,
            },
            Location::Object {
                len: 0,
                seq: 1,
                meta_base: 2,
                meta_len: 3,
            },
        ] {
            assert_eq!(Location::decode(&location.encode()), Some(location));
        }
        assert_eq!(Location::decode(&[BATCH, 0, 0]), None);
        assert_eq!(Location::decode(&[9; 9]), None);
        assert_eq!(Location::decode(&[]), None);
    }

    #[test]
    fn compaction_stops_before_the_first_leaf_a_log_has_not_copied() {
        let view = View::open(None).unwrap();
        let apply = |seq: u64, marks: &[(&str, Option<u64>)]| {
            let mut changes = Changes::default();
            for (log, copied) in marks {
                match copied {
                    None => changes.leaf(&view, log, seq).unwrap(),
                    Some(through) => changes.copied(&view, log, *through).unwrap(),
                }
            }
            view.apply(changes, seq).unwrap();
        };
        assert_eq!(view.copy_floor().unwrap(), None);
        apply(3, &[("a", None), ("b", None)]);
        assert_eq!(view.copy_floor().unwrap(), Some((0, "a".into())));
        apply(5, &[("a", Some(3)), ("a", None), ("b", Some(2))]);
        assert_eq!(view.copy_floor().unwrap(), Some((2, "b".into())));
        apply(6, &[("b", Some(5))]);
        assert_eq!(view.copy_floor().unwrap(), Some((3, "a".into())));
        apply(7, &[("a", Some(6)), ("a", Some(4))]);
        assert_eq!(view.copy_floor().unwrap(), None, "every leaf copied");
        let marks = view.logs().unwrap();
        assert_eq!(
            marks["a"],
            LogMarks {
                last_leaf: 5,
                copied_through: 6
            }
        );
    }
}
