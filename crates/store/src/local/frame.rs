//! The frame format of log segments.
//!
//! A segment is a sequence of frames. Each frame is a 16-byte header, then its
//! payload:
//!
//! | bytes | field |
//! | --- | --- |
//! | 0..4 | magic `FRYL` |
//! | 4 | kind: 1 = sealed record, 2 = tombstone |
//! | 5..8 | zero |
//! | 8..12 | payload length, u32 little-endian |
//! | 12..16 | CRC-32 (IEEE) of bytes 4..12 and of the payload, little-endian |
//!
//! A record's payload is a sealed record (self-authenticating); a tombstone's is the
//! 16-byte id of the deleted item. The CRC only detects torn writes: authenticity
//! comes from the sealed record.

use std::ops::Range;

use crate::ItemId;

/// Bytes before a frame's payload.
pub(crate) const HEADER_LEN: usize = 16;
const MAGIC: [u8; 4] = *b"FRYL";
/// The longest payload a frame may claim; anything longer is garbage.
pub(crate) const MAX_PAYLOAD: usize = 1 << 30;

/// What a frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Record = 1,
    Tombstone = 2,
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
    /// Not a valid frame (bad magic, kind, length or CRC), or cut short.
    Invalid,
}

/// Makes a frame: the header is written into `frame[..HEADER_LEN]`, which the
/// caller reserved before appending the payload.
pub(crate) fn seal_header(kind: Kind, frame: &mut [u8]) {
    let len = u32::try_from(frame.len() - HEADER_LEN).expect("frame payloads are small");
    frame[..4].copy_from_slice(&MAGIC);
    frame[4..8].copy_from_slice(&[kind as u8, 0, 0, 0]);
    frame[8..12].copy_from_slice(&len.to_le_bytes());
    let crc = checksum(&frame[4..12], &frame[HEADER_LEN..]);
    frame[12..16].copy_from_slice(&crc.to_le_bytes());
}

/// A frame with room for its header, to append a payload to.
pub(crate) fn start() -> Vec<u8> {
    vec![0; HEADER_LEN]
}

/// A whole tombstone frame for `id`.
pub(crate) fn tombstone(id: ItemId) -> Vec<u8> {
    let mut frame = start();
    frame.extend_from_slice(&id.to_bytes());
    seal_header(Kind::Tombstone, &mut frame);
    frame
}

/// Reads the frame starting at `at` in `segment`.
pub(crate) fn parse(segment: &[u8], at: usize) -> Parsed {
    let Some(header) = segment.get(at..at + HEADER_LEN) else {
        return Parsed::Invalid;
    };
    if header[..4] != MAGIC || header[5..8] != [0, 0, 0] {
        return Parsed::Invalid;
    }
    let kind = match header[4] {
        1 => Kind::Record,
        2 => Kind::Tombstone,
        _ => return Parsed::Invalid,
    };
    let len = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[12..16].try_into().expect("4 bytes"));
    let payload = at + HEADER_LEN..at + HEADER_LEN + len;
    if len > MAX_PAYLOAD
        || payload.end > segment.len()
        || checksum(&header[4..12], &segment[payload.clone()]) != crc
    {
        return Parsed::Invalid;
    }
    Parsed::Frame {
        kind,
        end: payload.end,
        payload,
    }
}

/// The offset of the next valid frame after a bad one at `at`, if any.
pub(crate) fn resync(segment: &[u8], at: usize) -> Option<usize> {
    let mut from = at + 1;
    while let Some(found) = segment.get(from..)?.windows(4).position(|w| w == MAGIC) {
        let candidate = from + found;
        if matches!(parse(segment, candidate), Parsed::Frame { .. }) {
            return Some(candidate);
        }
        from = candidate + 1;
    }
    None
}

fn checksum(header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(payload);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(payload: &[u8]) -> Vec<u8> {
        let mut frame = start();
        frame.extend_from_slice(payload);
        seal_header(Kind::Record, &mut frame);
        frame
    }

    #[test]
    fn frames_parse_back_and_any_damage_is_invalid() {
        let id = ItemId::new();
        let mut segment = record(b"hello");
        segment.extend(tombstone(id));
        assert_eq!(
            parse(&segment, 0),
            Parsed::Frame {
                kind: Kind::Record,
                payload: 16..21,
                end: 21
            }
        );
        let Parsed::Frame { kind, payload, end } = parse(&segment, 21) else {
            panic!()
        };
        assert_eq!((kind, end), (Kind::Tombstone, segment.len()));
        assert_eq!(ItemId::from_bytes(segment[payload].try_into().unwrap()), id);

        for cut in 0..segment.len() {
            let torn = &segment[..cut];
            assert!(cut >= 21 || parse(torn, 0) == Parsed::Invalid);
        }
        for flip in 0..21 {
            let mut bad = segment.clone();
            bad[flip] ^= 0x40;
            assert_eq!(parse(&bad, 0), Parsed::Invalid, "byte {flip}");
            assert_eq!(resync(&bad, 0), Some(21));
        }
        assert_eq!(resync(&segment, 21), None);
    }
}
