//! Sealed records: AES-256-GCM at rest, in the STREAM construction, with random
//! access to any chunk.
//!
//! A record is one stored item: its content, cut into chunks, and a small
//! metadata block (written by the store: item id, types, sizes, SHA-256), all
//! sealed with one [`StorageKey`]. [`Sealer`] writes a
//! record without doing any I/O; [`RecordReader`] opens one from any
//! `Read + Seek` source (a whole file, or a window of a log segment) and
//! decrypts only the chunks a byte range needs.
//!
//! # Layout (all integers big-endian; see also `FORMAT.md`)
//!
//! ```text
//! header   magic "FERRYREC" (8) | version 1 (1) | key-id length L (1) | key id (L, ASCII)
//!          | nonce prefix (7, random per record)
//! chunk i  AES-256-GCM ciphertext + 16-byte tag of plaintext bytes
//!          [i*CHUNK_SIZE, min((i+1)*CHUNK_SIZE, plaintext length))
//!          STREAM position i, last_block = false, associated data = header
//! metadata AES-256-GCM ciphertext + tag of the metadata
//!          STREAM position n (= number of data chunks), last_block = true,
//!          associated data = header || plaintext length (u64)
//! footer   plaintext length (u64) | metadata ciphertext length incl. tag (u32) | "FEND"
//! ```
//!
//! Every data chunk holds exactly [`CHUNK_SIZE`] plaintext bytes except the
//! last, which holds 1..=`CHUNK_SIZE`; empty content has no data chunk at all.
//! Chunk i therefore starts at `header_len + i * (CHUNK_SIZE + 16)`, so a byte
//! range is found without scanning.
//!
//! The STREAM nonce (prefix || position u32 || last-block flag u8, as
//! `aead-stream`'s `StreamBE32`) means that reordered, dropped or duplicated
//! chunks, a truncated record, a record sealed with another key and any
//! flipped bit all fail authentication. The metadata block is the only block
//! sealed as "last", and its associated data binds the plaintext length, so
//! the footer cannot lie about the length without the metadata failing
//! authentication; a footer whose lengths do not add up to the record's length
//! is rejected before anything is allocated, and the metadata is bounded by
//! [`MAX_METADATA_LEN`].

mod read;
mod seal;

pub use read::{RangeChunks, RecordReader};
pub use seal::Sealer;

use aead_stream::aead::Buffer;
use aead_stream::{NewStream, StreamBE32};
use aes_gcm::{Aes256Gcm, KeyInit};

use crate::StorageKey;

/// Plaintext bytes per data chunk.
pub const CHUNK_SIZE: usize = 64 * 1024;

/// Largest metadata block [`Sealer::finish`] accepts and [`RecordReader`] reads.
pub const MAX_METADATA_LEN: usize = 1024 * 1024;

const MAGIC: &[u8; 8] = b"FERRYREC";
const VERSION: u8 = 1;
const FOOTER_MAGIC: &[u8; 4] = b"FEND";
const FOOTER_LEN: usize = 16;
const TAG_LEN: usize = 16;
const NONCE_PREFIX_LEN: usize = 7;
/// Magic, version and key-id length: the part of the header before the key id.
const HEADER_FIXED_LEN: usize = MAGIC.len() + 2;

type Stream = StreamBE32<Aes256Gcm>;

fn stream(key: &StorageKey, nonce_prefix: &[u8; NONCE_PREFIX_LEN]) -> Stream {
    let aead = Aes256Gcm::new_from_slice(key.bytes()).expect("storage keys are 32 bytes");
    Stream::from_aead(aead, &(*nonce_prefix).into())
}

/// Associated data of the metadata block: the header, then the plaintext length.
fn metadata_aad(header: &[u8], plaintext_len: u64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + 8);
    aad.extend_from_slice(header);
    aad.extend_from_slice(&plaintext_len.to_be_bytes());
    aad
}

/// Number of data chunks for a plaintext length.
fn chunk_count(plaintext_len: u64) -> u64 {
    plaintext_len.div_ceil(CHUNK_SIZE as u64)
}

/// The bytes of a `Vec` from `start` on, as an AEAD buffer: lets the AEAD
/// encrypt in place at the end of the caller's output, with no extra copy.
struct TailBuffer<'a> {
    vec: &'a mut Vec<u8>,
    start: usize,
}

impl AsRef<[u8]> for TailBuffer<'_> {
    fn as_ref(&self) -> &[u8] {
        &self.vec[self.start..]
    }
}

impl AsMut<[u8]> for TailBuffer<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.vec[self.start..]
    }
}

impl Buffer for TailBuffer<'_> {
    fn extend_from_slice(&mut self, other: &[u8]) -> aead_stream::aead::Result<()> {
        self.vec.extend_from_slice(other);
        Ok(())
    }

    fn truncate(&mut self, len: usize) {
        self.vec.truncate(self.start + len);
    }
}

#[cfg(test)]
mod tests;
