//! The in-memory index: every listed item, ordered by id, with where its sealed
//! record lives. It is rebuilt from disk on open (see [`recover`](super::recover))
//! and only ever holds committed items.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::{ItemId, ItemMeta, ListQuery, Page};

/// Where an item's sealed record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// A window of a log segment.
    Log { segment: u32, base: u64, len: u64 },
    /// Its own file, `items/<id>.rec`.
    File,
}

/// One listed item.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub meta: ItemMeta,
    pub location: Location,
}

/// Committed items by id.
#[derive(Debug, Default)]
pub(crate) struct Index {
    items: BTreeMap<ItemId, Entry>,
}

impl Index {
    pub(crate) fn insert(&mut self, entry: Entry) -> Option<Entry> {
        self.items.insert(entry.meta.id, entry)
    }

    pub(crate) fn remove(&mut self, id: ItemId) -> Option<Entry> {
        self.items.remove(&id)
    }

    pub(crate) fn get(&self, id: ItemId) -> Option<&Entry> {
        self.items.get(&id)
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The items matching `query`, newest first.
    pub(crate) fn list(&self, query: &ListQuery) -> Page {
        let upper = query.before.map_or(Bound::Unbounded, Bound::Excluded);
        let limit = if query.limit == 0 {
            usize::MAX
        } else {
            query.limit
        };
        let mut matching = self
            .items
            .range((Bound::Unbounded, upper))
            .rev()
            .map(|(_, e)| &e.meta)
            .filter(|m| matches(query, m));
        let items: Vec<ItemMeta> = matching.by_ref().take(limit).cloned().collect();
        let next = match items.last() {
            Some(last) if matching.next().is_some() => Some(last.id),
            _ => None,
        };
        Page { items, next }
    }
}

fn matches(query: &ListQuery, meta: &ItemMeta) -> bool {
    query.data_type.is_none_or(|t| meta.data_type == t)
        && query.serialization.is_none_or(|s| meta.serialization == s)
        && query.source.as_deref().is_none_or(|s| meta.is_from(s))
        && query.since.is_none_or(|t| meta.received_at >= t)
        && query.until.is_none_or(|t| meta.received_at < t)
}
