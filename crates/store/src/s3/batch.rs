//! The objects of an S3 store's commit log: `log/<seq>`, one group commit each.
//!
//! ```text
//! object   magic "FRYB" (4) | version 1 (1) | entry* | CRC-32 (IEEE) of all bytes before it (u32 BE)
//! entry    kind (1) | payload length (u32 BE) | payload
//! ```
//!
//! | kind | payload |
//! | --- | --- |
//! | 1, record | a small item's sealed record (its metadata inside) |
//! | 2, large | the length of `items/<id>.rec` (u64 BE), then a sealed record without content whose metadata is the item's |
//! | 3, tombstone | the 16-byte id of a deleted item |
//! | 4, hold | the 16-byte id of an item put on legal hold |
//! | 5, release | the 16-byte id of an item whose hold is lifted |
//!
//! An object is written whole by one PUT, so it is never torn; the CRC catches
//! an object damaged at rest, and every record authenticates itself.

use std::ops::Range;

use crate::ItemId;

const MAGIC: &[u8; 4] = b"FRYB";
const VERSION: u8 = 1;
const ENTRY_HEADER: usize = 5;
const CRC_LEN: usize = 4;

/// One change to the store, as the log carries it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A small item, sealed whole.
    Record(Vec<u8>),
    /// A large item in its own object of `record_len` bytes; `sealed_meta` is a
    /// record without content whose metadata is the item's.
    Large {
        record_len: u64,
        sealed_meta: Vec<u8>,
    },
    /// The item is deleted.
    Tombstone(ItemId),
    /// The item's legal hold is set (`true`) or lifted.
    Hold(ItemId, bool),
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Record(sealed) => write!(f, "Record({} bytes)", sealed.len()),
            Change::Large { record_len, .. } => write!(f, "Large({record_len} bytes)"),
            Change::Tombstone(id) => write!(f, "Tombstone({id})"),
            Change::Hold(id, held) => write!(f, "Hold({id}, {held})"),
        }
    }
}

impl Change {
    /// The bytes this change adds to an object.
    pub(crate) fn encoded_len(&self) -> usize {
        ENTRY_HEADER
            + match self {
                Change::Record(sealed) => sealed.len(),
                Change::Large { sealed_meta, .. } => 8 + sealed_meta.len(),
                Change::Tombstone(_) | Change::Hold(..) => 16,
            }
    }
}

/// A change read back: its kind and where its payload is in the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Read {
    Record(Range<usize>),
    Large { record_len: u64, meta: Range<usize> },
    Tombstone(ItemId),
    Hold(ItemId, bool),
}

/// The object of `changes`.
pub(crate) fn encode(changes: &[Change]) -> Vec<u8> {
    let len = MAGIC.len() + 1 + changes.iter().map(Change::encoded_len).sum::<usize>() + CRC_LEN;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    for change in changes {
        let (kind, payload_len) = match change {
            Change::Record(sealed) => (1, sealed.len()),
            Change::Large { sealed_meta, .. } => (2, 8 + sealed_meta.len()),
            Change::Tombstone(_) => (3, 16),
            Change::Hold(_, true) => (4, 16),
            Change::Hold(_, false) => (5, 16),
        };
        out.push(kind);
        out.extend_from_slice(
            &u32::try_from(payload_len)
                .expect("entries are small")
                .to_be_bytes(),
        );
        match change {
            Change::Record(sealed) => out.extend_from_slice(sealed),
            Change::Large {
                record_len,
                sealed_meta,
            } => {
                out.extend_from_slice(&record_len.to_be_bytes());
                out.extend_from_slice(sealed_meta);
            }
            Change::Tombstone(id) | Change::Hold(id, _) => out.extend_from_slice(&id.to_bytes()),
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// The changes of an object, in order; why not, if it is not a whole object of
/// this format.
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<Read>, String> {
    if bytes.len() < MAGIC.len() + 1 + CRC_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a commit-log object (bad magic or too short)".into());
    }
    if bytes[MAGIC.len()] != VERSION {
        return Err(format!(
            "unsupported commit-log object version {}",
            bytes[MAGIC.len()]
        ));
    }
    let body_end = bytes.len() - CRC_LEN;
    let crc = u32::from_be_bytes(bytes[body_end..].try_into().expect("4 bytes"));
    if crc32fast::hash(&bytes[..body_end]) != crc {
        return Err("checksum mismatch: the object is damaged".into());
    }
    let mut at = MAGIC.len() + 1;
    let mut reads = Vec::new();
    while at < body_end {
        if body_end - at < ENTRY_HEADER {
            return Err("an entry is cut short".into());
        }
        let kind = bytes[at];
        let len = u32::from_be_bytes(bytes[at + 1..at + 5].try_into().expect("4 bytes")) as usize;
        let payload = at + ENTRY_HEADER..at + ENTRY_HEADER + len;
        if payload.end > body_end {
            return Err("an entry runs past the end of the object".into());
        }
        let id = || -> Result<ItemId, String> {
            let bytes: [u8; 16] = bytes[payload.clone()]
                .try_into()
                .map_err(|_| format!("an entry of kind {kind} is not 16 bytes"))?;
            Ok(ItemId::from_bytes(bytes))
        };
        reads.push(match kind {
            1 => Read::Record(payload.clone()),
            2 if len >= 8 => Read::Large {
                record_len: u64::from_be_bytes(
                    bytes[payload.start..payload.start + 8]
                        .try_into()
                        .expect("8 bytes"),
                ),
                meta: payload.start + 8..payload.end,
            },
            3 => Read::Tombstone(id()?),
            4 => Read::Hold(id()?, true),
            5 => Read::Hold(id()?, false),
            _ => return Err(format!("unknown entry kind {kind}")),
        });
        at = payload.end;
    }
    Ok(reads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes() -> Vec<Change> {
        vec![
            Change::Record(b"sealed record".to_vec()),
            Change::Large {
                record_len: 5 << 30,
                sealed_meta: b"sealed meta".to_vec(),
            },
            Change::Tombstone(ItemId::new()),
            Change::Hold(ItemId::new(), true),
            Change::Hold(ItemId::new(), false),
        ]
    }

    #[test]
    fn changes_read_back_as_written() {
        let changes = changes();
        let object = encode(&changes);
        assert_eq!(
            object.len(),
            9 + changes.iter().map(Change::encoded_len).sum::<usize>()
        );
        let reads = decode(&object).unwrap();
        assert_eq!(reads.len(), changes.len());
        let Read::Record(record) = &reads[0] else {
            panic!("{:?}", reads[0])
        };
        assert_eq!(&object[record.clone()], b"sealed record");
        let Read::Large { record_len, meta } = &reads[1] else {
            panic!("{:?}", reads[1])
        };
        assert_eq!(
            (*record_len, &object[meta.clone()]),
            (5 << 30, &b"sealed meta"[..])
        );
        for (read, change) in reads[2..].iter().zip(&changes[2..]) {
            match (read, change) {
                (Read::Tombstone(a), Change::Tombstone(b)) => assert_eq!(a, b),
                (Read::Hold(a, x), Change::Hold(b, y)) => assert_eq!((a, x), (b, y)),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn an_empty_group_is_an_object_without_entries() {
        assert_eq!(decode(&encode(&[])).unwrap(), vec![]);
    }

    #[test]
    fn every_flipped_byte_and_every_cut_is_refused() {
        let object = encode(&changes());
        for at in 0..object.len() {
            let mut damaged = object.clone();
            damaged[at] ^= 0x40;
            assert!(decode(&damaged).is_err(), "flip at {at} accepted");
        }
        for len in 0..object.len() {
            assert!(decode(&object[..len]).is_err(), "cut at {len} accepted");
        }
    }
}
