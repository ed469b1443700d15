//! The frame format of log segments.
//!
//! A segment is a sequence of frames. Each frame is a 16-byte header, then its
//! payload:
//!
//! | bytes | field |
//! | --- | --- |
//! | 0..4 | magic `FRYL` |
//! | 4 | kind: 1 = sealed record, 2 = tombstone, 3 = leaf (only in `ledger/`) |
//! | 5 | format: 1 = bound to its place (0 in stores of the first version) |
//! | 6..8 | zero |
//! | 8..12 | payload length, u32 little-endian |
//! | 12..16 | CRC-32 (IEEE), little-endian, of bytes 4..12, then the segment number (u32 LE) and the frame's offset in it (u64 LE), then the payload |
//!
//! A record's payload is a sealed record (self-authenticating); a tombstone's is the
//! 16-byte id of the deleted item. The CRC detects torn writes, and binds a frame
//! to its place (as RocksDB's recyclable log format binds records to their log
//! number): stale blocks of a removed segment, which some file systems can expose
//! in a file's extended tail after a crash, never check where they are found, and
//! a frame copied elsewhere must be framed anew (compaction does). The committer
//! seals each frame's header once it knows where the frame goes
//! ([`Unsealed::seal`]).
//! Authenticity comes from the sealed record.
//!
//! Frames of format 0 (the first version: the CRC covers bytes 4..12 and the
//! payload only) are read in the segments written before the store was opened by
//! a version that binds frames (see [`recover`](super::recover)), and nowhere else;
//! bound frames are read everywhere.

use std::ops::Range;

use crate::ItemId;

/// Bytes before a frame's payload.
pub(crate) const HEADER_LEN: usize = 16;
const MAGIC: [u8; 4] = *b"FRYL";
/// The longest payload a frame may claim; anything longer is garbage.
pub(crate) const MAX_PAYLOAD: usize = 1 << 30;
/// Format byte of frames bound to their place.
const BOUND: u8 = 1;
/// Format byte of the first version's frames.
const UNBOUND: u8 = 0;

/// What a frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Record = 1,
    Tombstone = 2,
    /// A leaf of the store's log (see [`ledger`](super::ledger)): its payload
    /// is the leaf's text.
    Leaf = 3,
}

/// The outcome of reading a frame at some offset of a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A whole, valid frame: its kind and the byte range of its payload.
    Frame {
        kind: Kind,
        payload: Range<usize>,
        end: usize,
    },
    /// Not a valid frame (bad magic, kind, length, format or CRC), or cut short.
    Invalid,
}

/// Where bytes being parsed are: which segment, at which offset of it, and
/// whether it may hold frames of the first version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    pub segment: u32,
    /// The offset in the segment of the first byte given to [`parse`].
    pub offset: u64,
    /// The segment was written by the first version (unbound frames).
    pub unbound: bool,
}

/// A frame whose header is not written yet: the committer seals it with its place.
pub(crate) struct Unsealed {
    kind: Kind,
    /// Header room, then the payload.
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Unsealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unsealed")
            .field("kind", &self.kind)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Unsealed {
    /// A frame of `kind` from `bytes`: [`HEADER_LEN`] bytes of room (their value
    /// does not matter), then the payload.
    pub(crate) fn new(kind: Kind, bytes: Vec<u8>) -> Unsealed {
        assert!(bytes.len() >= HEADER_LEN && bytes.len() - HEADER_LEN <= MAX_PAYLOAD);
        Unsealed { kind, bytes }
    }

    /// The whole frame's length.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Writes the header for the frame's place, `offset` in segment `segment`;
    /// the whole frame.
    pub(crate) fn seal(mut self, segment: u32, offset: u64) -> Vec<u8> {
        let len = u32::try_from(self.bytes.len() - HEADER_LEN).expect("bounded by MAX_PAYLOAD");
        let header = &mut self.bytes[..HEADER_LEN];
        header[..4].copy_from_slice(&MAGIC);
        header[4..8].copy_from_slice(&[self.kind as u8, BOUND, 0, 0]);
        header[8..12].copy_from_slice(&len.to_le_bytes());
        let mut crc = place_crc(&header[4..12], segment, offset);
        // (Computed here, not combined with a CRC of the payload made earlier:
        // `Hasher::combine` costs more than the CRC of a small payload.)
        crc.update(&self.bytes[HEADER_LEN..]);
        self.bytes[12..16].copy_from_slice(&crc.finalize().to_le_bytes());
        self.bytes
    }
}

/// The CRC of a header's bytes 4..12 and of the place they are bound to.
fn place_crc(fields: &[u8], segment: u32, offset: u64) -> crc32fast::Hasher {
    let mut crc = crc32fast::Hasher::new();
    crc.update(fields);
    crc.update(&segment.to_le_bytes());
    crc.update(&offset.to_le_bytes());
    crc
}

/// A frame with room for its header, to append a payload to.
pub(crate) fn start() -> Vec<u8> {
    vec![0; HEADER_LEN]
}

/// A tombstone frame for `id`.
pub(crate) fn tombstone(id: ItemId) -> Unsealed {
    let mut frame = start();
    frame.extend_from_slice(&id.to_bytes());
    Unsealed::new(Kind::Tombstone, frame)
}

/// Reads the frame starting at `at` in `data`, whose first byte is at `origin`.
pub(crate) fn parse(data: &[u8], at: usize, origin: Origin) -> Parsed {
    let Some(header) = data.get(at..at + HEADER_LEN) else {
        return Parsed::Invalid;
    };
    // A segment of the first version may also hold bound frames: a store whose
    // `FORMAT` file was lost takes every segment for one.
    let unbound = match header[5] {
        BOUND => false,
        UNBOUND if origin.unbound => true,
        _ => return Parsed::Invalid,
    };
    if header[..4] != MAGIC || header[6..8] != [0, 0] {
        return Parsed::Invalid;
    }
    let kind = match header[4] {
        1 => Kind::Record,
        2 => Kind::Tombstone,
        3 => Kind::Leaf,
        _ => return Parsed::Invalid,
    };
    let len = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[12..16].try_into().expect("4 bytes"));
    let payload = at + HEADER_LEN..at + HEADER_LEN + len;
    if len > MAX_PAYLOAD || payload.end > data.len() {
        return Parsed::Invalid;
    }
    let mut computed = if unbound {
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header[4..12]);
        crc
    } else {
        place_crc(&header[4..12], origin.segment, origin.offset + at as u64)
    };
    computed.update(&data[payload.clone()]);
    if computed.finalize() != crc {
        return Parsed::Invalid;
    }
    Parsed::Frame {
        kind,
        end: payload.end,
        payload,
    }
}

/// The offset of the next valid frame after a bad one at `at`, if any.
pub(crate) fn resync(data: &[u8], at: usize, origin: Origin) -> Option<usize> {
    let mut from = at + 1;
    while let Some(found) = data.get(from..)?.windows(4).position(|w| w == MAGIC) {
        let candidate = from + found;
        if matches!(parse(data, candidate, origin), Parsed::Frame { .. }) {
            return Some(candidate);
        }
        from = candidate + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: Origin = Origin {
        segment: 7,
        offset: 0,
        unbound: false,
    };

    fn record(payload: &[u8], segment: u32, offset: u64) -> Vec<u8> {
        let mut frame = start();
        frame.extend_from_slice(payload);
        Unsealed::new(Kind::Record, frame).seal(segment, offset)
    }

    #[test]
    fn frames_parse_back_and_any_damage_is_invalid() {
        let id = ItemId::new();
        let mut segment = record(b"hello", 7, 0);
        segment.extend(tombstone(id).seal(7, 21));
        assert_eq!(
            parse(&segment, 0, HERE),
            Parsed::Frame {
                kind: Kind::Record,
                payload: 16..21,
                end: 21
            }
        );
        let Parsed::Frame { kind, payload, end } = parse(&segment, 21, HERE) else {
            panic!()
        };
        assert_eq!((kind, end), (Kind::Tombstone, segment.len()));
        assert_eq!(ItemId::from_bytes(segment[payload].try_into().unwrap()), id);

        for cut in 0..segment.len() {
            let torn = &segment[..cut];
            assert!(cut >= 21 || parse(torn, 0, HERE) == Parsed::Invalid);
        }
        for flip in 0..21 {
            let mut bad = segment.clone();
            bad[flip] ^= 0x40;
            assert_eq!(parse(&bad, 0, HERE), Parsed::Invalid, "byte {flip}");
            assert_eq!(resync(&bad, 0, HERE), Some(21));
        }
        assert_eq!(resync(&segment, 21, HERE), None);
    }

    #[test]
    fn a_frame_checks_only_at_its_own_place() {
        let frame = record(b"stale bytes of a removed segment", 3, 4096);
        let at = |segment, offset| Origin {
            segment,
            offset,
            unbound: false,
        };
        assert!(matches!(
            parse(&frame, 0, at(3, 4096)),
            Parsed::Frame { .. }
        ));
        for (segment, offset) in [(4, 4096), (3, 0), (3, 4097), (2, 4096)] {
            assert_eq!(parse(&frame, 0, at(segment, offset)), Parsed::Invalid);
        }
        // Found at the right place of a larger buffer that starts earlier.
        let mut data = vec![0u8; 100];
        data.extend_from_slice(&frame);
        assert!(matches!(
            parse(&data, 100, at(3, 3996)),
            Parsed::Frame { .. }
        ));
        assert_eq!(resync(&data, 0, at(3, 3996)), Some(100));
        assert_eq!(resync(&data, 0, at(3, 3995)), None);
        // In a segment of the first version, still only at its place.
        let unbound = |offset| Origin {
            unbound: true,
            ..at(3, offset)
        };
        assert!(matches!(
            parse(&frame, 0, unbound(4096)),
            Parsed::Frame { .. }
        ));
        assert_eq!(parse(&frame, 0, unbound(0)), Parsed::Invalid);
    }

    #[test]
    fn frames_of_the_first_version_are_read_only_where_they_may_be() {
        // The first version's tombstone: the CRC covers bytes 4..12 and the payload.
        let id = ItemId::new();
        let mut frame = start();
        frame.extend_from_slice(&id.to_bytes());
        frame[..4].copy_from_slice(b"FRYL");
        frame[4..12].copy_from_slice(&[2, 0, 0, 0, 16, 0, 0, 0]);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&frame[4..12]);
        crc.update(&frame[16..]);
        frame[12..16].copy_from_slice(&crc.finalize().to_le_bytes());
        let unbound = Origin {
            segment: 1,
            offset: 0,
            unbound: true,
        };
        assert!(matches!(
            parse(&frame, 0, unbound),
            Parsed::Frame {
                kind: Kind::Tombstone,
                ..
            }
        ));
        assert_eq!(parse(&frame, 0, HERE), Parsed::Invalid);
    }
}
