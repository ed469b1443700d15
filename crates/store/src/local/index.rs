//! An in-memory index: listed items, ordered by id, with where their sealed
//! records live. Recovery builds it from what it reads (see
//! [`recover`](super::recover)): every record when the catalog is rebuilt, or
//! the log from the catalog's cursor; it is then put into the catalog and
//! dropped: the store lists from the catalog (see [`listing`](super::listing)),
//! not from memory. So it holds every item only while a catalog is rebuilt.
//!
//! Entries are kept packed (about a third of an [`ItemMeta`] with its strings):
//! the digest as bytes, the peer as a socket address, the storage key id shared
//! by every item sealed with it. Metadata that does not pack exactly (a peer that
//! is not `ip:port`, say) is kept as it is.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use ferry_protocol::{DataType, Serialization};
use time::OffsetDateTime;

use super::frame::HEADER_LEN;
use super::keys::KeyRef;
use crate::meta::digest_bytes;
use crate::{ItemId, ItemMeta};

/// Where an item's sealed record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// A window of a log segment.
    Log { segment: u32, base: u64, len: u64 },
    /// Its own file, `items/<id>.rec`.
    File,
}

impl Location {
    /// For a logged item: its segment and the length of its whole frame.
    pub(crate) fn log_frame(&self) -> Option<(u32, u64)> {
        match *self {
            Location::Log { segment, len, .. } => Some((segment, HEADER_LEN as u64 + len)),
            Location::File => None,
        }
    }
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
    items: BTreeMap<ItemId, Stored>,
    /// The storage key ids in use; a handful at most (one per rotation).
    key_ids: Vec<Arc<str>>,
}

impl Index {
    /// Lists `entry`; returns the entry it replaces, if its id was listed.
    pub(crate) fn insert(&mut self, entry: Entry) -> Option<Entry> {
        let id = entry.meta.id;
        let stored = Stored::pack(entry, &mut self.key_ids);
        self.items.insert(id, stored).map(|old| old.unpack(id))
    }

    pub(crate) fn remove(&mut self, id: ItemId) -> Option<Entry> {
        self.items.remove(&id).map(|old| old.unpack(id))
    }

    pub(crate) fn get(&self, id: ItemId) -> Option<Entry> {
        self.items.get(&id).map(|stored| stored.unpack(id))
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The data keys of the listed items.
    pub(crate) fn data_keys(&self) -> impl Iterator<Item = KeyRef> + '_ {
        self.items.values().filter_map(|stored| match stored {
            Stored::Packed(packed) => match packed.key_id {
                PackedKey::Data(at) => Some(at),
                PackedKey::Storage(_) => None,
            },
            Stored::Whole(entry) => KeyRef::parse(&entry.meta.key_id),
        })
    }

    /// The ids of the listed items, oldest first.
    pub(crate) fn ids(&self) -> impl Iterator<Item = ItemId> + '_ {
        self.items.keys().copied()
    }

    /// Every entry, oldest first, emptying the index as it goes.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Entry> + '_ {
        std::iter::from_fn(move || {
            let (id, stored) = self.items.pop_first()?;
            Some(stored.unpack(id))
        })
    }

    /// Records the index of item `id`'s `stored` leaf.
    pub(crate) fn set_log_index(&mut self, id: ItemId, index: u64) {
        match self.items.get_mut(&id) {
            Some(Stored::Packed(p)) => p.log_index = Some(index),
            Some(Stored::Whole(e)) => e.meta.log_index = Some(index),
            None => {}
        }
    }
}

/// An entry as the index keeps it.
#[derive(Clone, Debug)]
enum Stored {
    Packed(Box<Packed>),
    /// Metadata that does not pack exactly, kept whole.
    Whole(Box<Entry>),
}

/// An entry without its id (the map's key) and with its fields in their
/// smallest exact form. Boxed, so that the map's nodes stay small.
#[derive(Clone, Debug)]
struct Packed {
    data_type: DataType,
    serialization: Serialization,
    encrypted_in_transit: bool,
    peer: SocketAddr,
    name: Option<Box<str>>,
    received_at: OffsetDateTime,
    size: u64,
    sha256: [u8; 32],
    key_id: PackedKey,
    location: Location,
    log_index: Option<u64>,
}

/// The key an item is sealed with: a storage key (shared by every item sealed
/// with it), or the item's own data key.
#[derive(Clone, Debug)]
enum PackedKey {
    Storage(Arc<str>),
    Data(KeyRef),
}

impl Stored {
    fn pack(entry: Entry, key_ids: &mut Vec<Arc<str>>) -> Stored {
        let meta = &entry.meta;
        let peer = meta
            .peer
            .parse::<SocketAddr>()
            .ok()
            .filter(|addr| addr.to_string() == meta.peer);
        let sha256 = digest_bytes(&meta.sha256);
        let (Some(peer), Some(sha256)) = (peer, sha256) else {
            return Stored::Whole(Box::new(entry));
        };
        let key_id = match KeyRef::parse(&meta.key_id) {
            Some(at) if at.id() == meta.key_id => PackedKey::Data(at),
            _ => PackedKey::Storage(match key_ids.iter().find(|k| ***k == *meta.key_id) {
                Some(known) => known.clone(),
                None => {
                    let new: Arc<str> = meta.key_id.as_str().into();
                    key_ids.push(new.clone());
                    new
                }
            }),
        };
        let Entry { meta, location } = entry;
        Stored::Packed(Box::new(Packed {
            data_type: meta.data_type,
            serialization: meta.serialization,
            encrypted_in_transit: meta.encrypted_in_transit,
            peer,
            name: meta.name.map(String::into_boxed_str),
            received_at: meta.received_at,
            size: meta.size,
            sha256,
            key_id,
            location,
            log_index: meta.log_index,
        }))
    }

    fn unpack(&self, id: ItemId) -> Entry {
        match self {
            Stored::Whole(entry) => (**entry).clone(),
            Stored::Packed(packed) => Entry {
                meta: ItemMeta {
                    id,
                    data_type: packed.data_type,
                    serialization: packed.serialization,
                    encrypted_in_transit: packed.encrypted_in_transit,
                    peer: packed.peer.to_string(),
                    name: packed.name.as_deref().map(String::from),
                    received_at: packed.received_at,
                    size: packed.size,
                    sha256: hex::encode(packed.sha256),
                    key_id: match &packed.key_id {
                        PackedKey::Storage(id) => id.to_string(),
                        PackedKey::Data(at) => at.id(),
                    },
                    held: false,
                    log_index: packed.log_index,
                },
                location: packed.location,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewItem;

    fn entry(peer: &str, sha256: [u8; 32], location: Location) -> Entry {
        let item = NewItem {
            data_type: DataType::Text,
            serialization: Serialization::Txt,
            encrypted_in_transit: true,
            peer: peer.into(),
            name: Some("notes.txt".into()),
        };
        let meta = ItemMeta::new(
            ItemId::new(),
            item,
            OffsetDateTime::now_utc(),
            42,
            sha256,
            "k-1".into(),
        );
        Entry { meta, location }
    }

    #[test]
    fn entries_come_back_exactly_as_listed() {
        let log = Location::Log {
            segment: 3,
            base: 17,
            len: 99,
        };
        let cases = [
            entry("127.0.0.1:5000", [7; 32], log),
            entry("[::1]:8", [0xab; 32], Location::File),
            // Not socket addresses: kept whole, still exact.
            entry("gateway", [1; 32], log),
            entry("127.000.0.1:5000", [2; 32], log),
        ];
        let mut index = Index::default();
        for case in &cases {
            assert!(index.insert(case.clone()).is_none());
        }
        for case in &cases {
            let got = index.get(case.meta.id).expect("listed");
            assert_eq!(got.meta, case.meta);
            assert_eq!(got.location, case.location);
        }
        let mut whole = cases[0].clone();
        whole.meta.sha256 = "not a digest".into();
        let again = index.insert(whole.clone()).expect("replaces the first");
        assert_eq!(again.meta, cases[0].meta);
        assert_eq!(index.get(whole.meta.id).unwrap().meta, whole.meta);
        assert_eq!(index.remove(cases[1].meta.id).unwrap().meta, cases[1].meta);
        assert_eq!(index.len(), 3);
    }

    #[test]
    fn key_ids_are_shared() {
        let mut index = Index::default();
        for _ in 0..3 {
            index.insert(entry("10.0.0.1:1", [3; 32], Location::File));
        }
        assert_eq!(index.key_ids.len(), 1);
    }

    #[test]
    fn only_lowercase_hex_digests_pack() {
        assert_eq!(digest_bytes(&"0f".repeat(32)), Some([0x0f; 32]));
        assert_eq!(digest_bytes(&"0F".repeat(32)), None);
        assert_eq!(digest_bytes(&"0f".repeat(31)), None);
        assert_eq!(digest_bytes(&"zz".repeat(32)), None);
    }
}
