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
//! | 6, moved record | as 1: a listed small item's record, copied by compaction |
//! | 7, moved large | as 2: a listed large item's entry, copied by compaction |
//! | 8, compacted | `through` (u64 BE), then the time of the copy (i64 BE, ms since the epoch) |
//! | 9, leaf | a leaf of a server's signed log: the log's name (its length, 1 byte, then UTF-8), the leaf's index in that log (u64 BE), the writing process's 16-byte nonce, then the leaf's bytes |
//! | 10, copied | the log's name (as in 9), then `through` (u64 BE): every leaf of that log in the objects up to `log/<through>` is in the log's own objects |
//!
//! A *compacted* entry closes a compaction (see [`compact`](super::compact)):
//! every entry of the objects up to `log/<through>` that still matters (listed
//! items and their holds) is copied into later objects, so those objects can go.
//!
//! A server's leaves go into the commit log with the changes they record (an
//! item's `stored` leaf in the object of its record), so one PUT makes both
//! durable; the server copies them into its log's own objects afterwards (see
//! the [ledger](super::ledger)), and compaction never removes an object holding
//! a leaf not copied yet.
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
    /// A listed small item's record, copied from an older object.
    MovedRecord(Vec<u8>),
    /// A listed large item's entry, copied from an older object.
    MovedLarge {
        record_len: u64,
        sealed_meta: Vec<u8>,
    },
    /// Every entry that matters of the objects up to `log/<through>` is
    /// copied into later ones, at `at_ms` (ms since the Unix epoch).
    Compacted { through: u64, at_ms: i64 },
    /// Leaf `index` of the signed log `log`, appended by the process `writer`.
    Leaf {
        log: String,
        index: u64,
        writer: [u8; 16],
        leaf: Vec<u8>,
    },
    /// Every leaf of `log` in the objects up to `log/<through>` is copied
    /// into the log's own objects.
    Copied { log: String, through: u64 },
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Record(sealed) => write!(f, "Record({} bytes)", sealed.len()),
            Change::Large { record_len, .. } => write!(f, "Large({record_len} bytes)"),
            Change::Tombstone(id) => write!(f, "Tombstone({id})"),
            Change::Hold(id, held) => write!(f, "Hold({id}, {held})"),
            Change::MovedRecord(sealed) => write!(f, "MovedRecord({} bytes)", sealed.len()),
            Change::MovedLarge { record_len, .. } => write!(f, "MovedLarge({record_len} bytes)"),
            Change::Compacted { through, at_ms } => write!(f, "Compacted({through} at {at_ms})"),
            Change::Leaf { log, index, .. } => write!(f, "Leaf({log}, {index})"),
            Change::Copied { log, through } => write!(f, "Copied({log}, {through})"),
        }
    }
}

impl Change {
    /// The bytes this change adds to an object.
    pub(crate) fn encoded_len(&self) -> usize {
        ENTRY_HEADER
            + match self {
                Change::Record(sealed) | Change::MovedRecord(sealed) => sealed.len(),
                Change::Large { sealed_meta, .. } | Change::MovedLarge { sealed_meta, .. } => {
                    8 + sealed_meta.len()
                }
                Change::Tombstone(_) | Change::Hold(..) | Change::Compacted { .. } => 16,
                Change::Leaf { log, leaf, .. } => 1 + log.len() + 8 + 16 + leaf.len(),
                Change::Copied { log, .. } => 1 + log.len() + 8,
            }
    }
}

/// A change read back: its kind and where its payload is in the object.
/// `moved`: copied by compaction, not newly stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Read {
    Record {
        record: Range<usize>,
        moved: bool,
    },
    Large {
        record_len: u64,
        meta: Range<usize>,
        moved: bool,
    },
    Tombstone(ItemId),
    Hold(ItemId, bool),
    Compacted {
        through: u64,
        at_ms: i64,
    },
    Leaf {
        log: String,
        index: u64,
        writer: [u8; 16],
        leaf: Range<usize>,
    },
    Copied {
        log: String,
        through: u64,
    },
}

/// The object of `changes`.
pub(crate) fn encode(changes: &[Change]) -> Vec<u8> {
    let len = MAGIC.len() + 1 + changes.iter().map(Change::encoded_len).sum::<usize>() + CRC_LEN;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    for change in changes {
        let kind = match change {
            Change::Record(_) => 1,
            Change::Large { .. } => 2,
            Change::Tombstone(_) => 3,
            Change::Hold(_, true) => 4,
            Change::Hold(_, false) => 5,
            Change::MovedRecord(_) => 6,
            Change::MovedLarge { .. } => 7,
            Change::Compacted { .. } => 8,
            Change::Leaf { .. } => 9,
            Change::Copied { .. } => 10,
        };
        out.push(kind);
        let payload_len = change.encoded_len() - ENTRY_HEADER;
        out.extend_from_slice(
            &u32::try_from(payload_len)
                .expect("entries are small")
                .to_be_bytes(),
        );
        match change {
            Change::Record(sealed) | Change::MovedRecord(sealed) => out.extend_from_slice(sealed),
            Change::Large {
                record_len,
                sealed_meta,
            }
            | Change::MovedLarge {
                record_len,
                sealed_meta,
            } => {
                out.extend_from_slice(&record_len.to_be_bytes());
                out.extend_from_slice(sealed_meta);
            }
            Change::Tombstone(id) | Change::Hold(id, _) => out.extend_from_slice(&id.to_bytes()),
            Change::Compacted { through, at_ms } => {
                out.extend_from_slice(&through.to_be_bytes());
                out.extend_from_slice(&at_ms.to_be_bytes());
            }
            Change::Leaf {
                log,
                index,
                writer,
                leaf,
            } => {
                push_name(&mut out, log);
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(writer);
                out.extend_from_slice(leaf);
            }
            Change::Copied { log, through } => {
                push_name(&mut out, log);
                out.extend_from_slice(&through.to_be_bytes());
            }
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// A log's name: its length (1 byte), then its bytes.
fn push_name(out: &mut Vec<u8>, name: &str) {
    out.push(u8::try_from(name.len()).expect("a log's name is short"));
    out.extend_from_slice(name.as_bytes());
}

/// The name at the start of `payload`, and the position after it.
fn read_name(payload: &[u8]) -> Result<(String, usize), String> {
    let len = *payload.first().ok_or("an entry names no log")? as usize;
    let name = payload
        .get(1..1 + len)
        .and_then(|name| std::str::from_utf8(name).ok())
        .ok_or("an entry's log name is cut short or not text")?;
    Ok((name.to_owned(), 1 + len))
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
        let number = |at: usize| -> [u8; 8] {
            bytes[payload.start + at..payload.start + at + 8]
                .try_into()
                .expect("8 bytes")
        };
        reads.push(match kind {
            1 | 6 => Read::Record {
                record: payload.clone(),
                moved: kind == 6,
            },
            2 | 7 if len >= 8 => Read::Large {
                record_len: u64::from_be_bytes(number(0)),
                meta: payload.start + 8..payload.end,
                moved: kind == 7,
            },
            3 => Read::Tombstone(id()?),
            4 => Read::Hold(id()?, true),
            5 => Read::Hold(id()?, false),
            8 if len == 16 => Read::Compacted {
                through: u64::from_be_bytes(number(0)),
                at_ms: i64::from_be_bytes(number(8)),
            },
            9 => {
                let (log, at) = read_name(&bytes[payload.clone()])?;
                let start = payload.start + at;
                if payload.end < start + 24 {
                    return Err("a leaf entry is cut short".into());
                }
                Read::Leaf {
                    log,
                    index: u64::from_be_bytes(number(at)),
                    writer: bytes[start + 8..start + 24].try_into().expect("16 bytes"),
                    leaf: start + 24..payload.end,
                }
            }
            10 => {
                let (log, at) = read_name(&bytes[payload.clone()])?;
                if len != at + 8 {
                    return Err("a copied entry is not as long as it says".into());
                }
                Read::Copied {
                    log,
                    through: u64::from_be_bytes(number(at)),
                }
            }
            _ => return Err(format!("unknown entry kind {kind} (of {len} bytes)")),
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
            Change::MovedRecord(b"moved record".to_vec()),
            Change::MovedLarge {
                record_len: 7,
                sealed_meta: b"moved meta".to_vec(),
            },
            Change::Compacted {
                through: 41,
                at_ms: -3,
            },
            Change::Leaf {
                log: "ab12".into(),
                index: 9,
                writer: [7; 16],
                leaf: b"a leaf".to_vec(),
            },
            Change::Copied {
                log: "ab12".into(),
                through: 40,
            },
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
        for (read, change) in reads.iter().zip(&changes) {
            match (read, change) {
                (
                    Read::Record { record, moved },
                    Change::Record(sealed) | Change::MovedRecord(sealed),
                ) => {
                    assert_eq!(&object[record.clone()], sealed);
                    assert_eq!(*moved, matches!(change, Change::MovedRecord(_)));
                }
                (
                    Read::Large {
                        record_len,
                        meta,
                        moved,
                    },
                    Change::Large {
                        record_len: len,
                        sealed_meta,
                    }
                    | Change::MovedLarge {
                        record_len: len,
                        sealed_meta,
                    },
                ) => {
                    assert_eq!((record_len, &object[meta.clone()]), (len, &sealed_meta[..]));
                    assert_eq!(*moved, matches!(change, Change::MovedLarge { .. }));
                }
                (Read::Tombstone(a), Change::Tombstone(b)) => assert_eq!(a, b),
                (Read::Hold(a, x), Change::Hold(b, y)) => assert_eq!((a, x), (b, y)),
                (
                    Read::Compacted { through, at_ms },
                    Change::Compacted {
                        through: t,
                        at_ms: a,
                    },
                ) => assert_eq!((through, at_ms), (t, a)),
                (
                    Read::Leaf {
                        log,
                        index,
                        writer,
                        leaf,
                    },
                    Change::Leaf {
                        log: l,
                        index: i,
                        writer: w,
                        leaf: bytes,
                    },
                ) => assert_eq!(
                    (log, index, writer, &object[leaf.clone()]),
                    (l, i, w, &bytes[..])
                ),
                (Read::Copied { log, through }, Change::Copied { log: l, through: t }) => {
                    assert_eq!((log, through), (l, t))
                }
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
