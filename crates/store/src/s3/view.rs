//! A server's view of the bucket: every listed item with where its record is,
//! and the items on legal hold, as the commit log built them.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use crate::{ItemId, ItemMeta, ListQuery, Page};

/// Where an item's sealed record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// Bytes `base..base + len` of the commit-log object `log/<seq>`.
    Batch { seq: u64, base: u64, len: u64 },
    /// Its own object, `items/<id>.rec`, of `len` bytes.
    Object { len: u64 },
}

/// One listed item.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub meta: ItemMeta,
    pub location: Location,
}

/// The listed items by id, and the held ones.
#[derive(Debug, Default)]
pub(crate) struct View {
    items: BTreeMap<ItemId, Entry>,
    held: HashSet<ItemId>,
}

impl View {
    /// Lists `entry` (again, if the log holds its item twice).
    pub(crate) fn insert(&mut self, entry: Entry) {
        self.items.insert(entry.meta.id, entry);
    }

    pub(crate) fn remove(&mut self, id: ItemId) -> Option<Entry> {
        self.held.remove(&id);
        self.items.remove(&id)
    }

    /// The item's entry, its metadata marked held or not.
    pub(crate) fn get(&self, id: ItemId) -> Option<Entry> {
        let mut entry = self.items.get(&id)?.clone();
        entry.meta.held = self.held.contains(&id);
        Some(entry)
    }

    pub(crate) fn is_held(&self, id: ItemId) -> bool {
        self.held.contains(&id)
    }

    /// Sets or lifts a listed item's hold; `false` if it is not listed.
    pub(crate) fn set_held(&mut self, id: ItemId, held: bool) -> bool {
        if !self.items.contains_key(&id) {
            return false;
        }
        if held {
            self.held.insert(id);
        } else {
            self.held.remove(&id);
        }
        true
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The items matching `query`, newest first.
    pub(crate) fn list(&self, query: &ListQuery) -> Page {
        let upper = query.before.map_or(Bound::Unbounded, Bound::Excluded);
        let limit = match query.limit {
            0 => usize::MAX,
            limit => limit,
        };
        let mut matching = self
            .items
            .range((Bound::Unbounded, upper))
            .rev()
            .map(|(_, entry)| &entry.meta)
            .filter(|meta| matches(meta, query));
        let items: Vec<ItemMeta> = matching
            .by_ref()
            .take(limit)
            .map(|meta| {
                let mut meta = meta.clone();
                meta.held = self.held.contains(&meta.id);
                meta
            })
            .collect();
        let next = match items.last() {
            Some(last) if matching.next().is_some() => Some(last.id),
            _ => None,
        };
        Page { items, next }
    }
}

/// Whether `meta` passes every filter of `query`.
fn matches(meta: &ItemMeta, query: &ListQuery) -> bool {
    query.data_type.is_none_or(|t| meta.data_type == t)
        && query.serialization.is_none_or(|s| meta.serialization == s)
        && query.since.is_none_or(|t| meta.received_at >= t)
        && query.until.is_none_or(|t| meta.received_at < t)
        && query.source.as_deref().is_none_or(|s| meta.is_from(s))
}
