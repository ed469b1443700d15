//! A server's view of the bucket: every listed item with where its record is,
//! and the items on legal hold, as the commit log built them.
//!
//! The view is a [`Catalog`] on the server's disk, not in memory, whose cursor
//! is the sequence number of the last log object applied: a restart reads only
//! the log objects written since. Without a directory of its own, a view lives
//! in a temporary one and is rebuilt from the whole log at every open.

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
    /// Its own object, `items/<id>.rec`, of `len` bytes.
    Object { len: u64 },
}

const BATCH: u8 = 1;
const OBJECT: u8 = 2;

impl Location {
    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(25);
        match *self {
            Location::Batch { seq, base, len } => {
                bytes.push(BATCH);
                for n in [seq, base, len] {
                    bytes.extend_from_slice(&n.to_le_bytes());
                }
            }
            Location::Object { len } => {
                bytes.push(OBJECT);
                bytes.extend_from_slice(&len.to_le_bytes());
            }
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
            (OBJECT, 8) => Some(Location::Object {
                len: numbers.next()?,
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
    pub(crate) fn apply(&self, changes: Changes, seq: u64) -> Result<(), StoreError> {
        self.catalog.apply(changes.changes, seq)
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
        let Some(CatalogEntry { meta, location }) = self.catalog.get(id)? else {
            return Ok(None);
        };
        let location = Location::decode(&location).ok_or_else(|| {
            let damaged = std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the location of item {id} cannot be read"),
            );
            StoreError::io("reading the S3 store's view", Path::new("catalog"), damaged)
        })?;
        Ok(Some(Entry { meta, location }))
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

    /// Notes a record left unlisted: sealed with storage key `key_id`, not given.
    pub(crate) fn unreadable(&mut self, key_id: String) {
        self.changes.push(Change::Unreadable(key_id));
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
            Location::Object { len: 0 },
        ] {
            assert_eq!(Location::decode(&location.encode()), Some(location));
        }
        assert_eq!(Location::decode(&[BATCH, 0, 0]), None);
        assert_eq!(Location::decode(&[9; 9]), None);
        assert_eq!(Location::decode(&[]), None);
    }
}
