//! Reading and damaging log frames in tests (the layout is in `frame.rs`).

use std::fs;
use std::path::Path;

/// The offsets of the frames of a segment that holds nothing else (but the zeros
/// of prepared space after them).
pub fn starts(segment: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = 0;
    while at + 16 <= segment.len() {
        if segment[at..].iter().all(|&b| b == 0) {
            break;
        }
        assert_eq!(&segment[at..at + 4], b"FRYL", "frame at {at}");
        starts.push(at);
        at = frame_end(segment, at);
    }
    starts
}

fn frame_end(segment: &[u8], at: usize) -> usize {
    at + 16 + u32::from_le_bytes(segment[at + 8..at + 12].try_into().unwrap()) as usize
}

/// Where the log ends in a segment file: after its last frame.
pub fn log_end(segment: &Path) -> u64 {
    let bytes = fs::read(segment).unwrap();
    starts(&bytes)
        .last()
        .map_or(0, |&at| frame_end(&bytes, at) as u64)
}

/// The checksum a frame at `at` of segment `number` should carry.
pub fn checksum(bytes: &[u8], number: u32, at: usize) -> u32 {
    let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes[at + 4..at + 12]);
    if bytes[at + 5] == 1 {
        crc.update(&number.to_le_bytes());
        crc.update(&(at as u64).to_le_bytes());
    }
    crc.update(&bytes[at + 16..at + 16 + len]);
    crc.finalize()
}

/// Flips a bit `into` bytes into the payload of the frame at `at` and fixes its
/// checksum, so that only authentication catches it.
pub fn damage_payload(segment: &Path, at: usize, into: usize) {
    let number: u32 = segment
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut bytes = fs::read(segment).unwrap();
    bytes[at + 16 + into] ^= 0x01;
    let crc = checksum(&bytes, number, at);
    bytes[at + 12..at + 16].copy_from_slice(&crc.to_le_bytes());
    fs::write(segment, &bytes).unwrap();
}
