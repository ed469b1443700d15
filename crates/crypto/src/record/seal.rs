//! Writing a sealed record, without I/O.

use std::fmt;

use aead_stream::StreamPrimitive;
use rand::RngCore;

use super::{
    CHUNK_SIZE, FOOTER_MAGIC, MAGIC, MAX_METADATA_LEN, NONCE_PREFIX_LEN, Stream, TAG_LEN,
    TailBuffer, VERSION, metadata_aad, stream,
};
use crate::StorageKey;

/// Sans-I/O writer of one sealed record (layout in the [module docs](super)).
///
/// Feed the content with [`push`](Sealer::push) in pieces of any size, then
/// call [`finish`](Sealer::finish) with the metadata. Both append sealed bytes
/// to a caller-owned `Vec`; writing them out is the caller's business. Less
/// than [`CHUNK_SIZE`] bytes of plaintext are held back at any time.
pub struct Sealer {
    stream: Stream,
    key_id: String,
    header: Vec<u8>,
    header_emitted: bool,
    /// Plaintext of the next data chunk, always shorter than `CHUNK_SIZE`.
    pending: Vec<u8>,
    /// Data chunks sealed so far: the STREAM position of the next block.
    chunks: u32,
    plaintext_len: u64,
}

impl Sealer {
    /// Starts a record sealed with `key`, under a fresh random nonce prefix.
    pub fn new(key: &StorageKey) -> Sealer {
        let mut prefix = [0u8; NONCE_PREFIX_LEN];
        rand::rng().fill_bytes(&mut prefix);
        let id = key.id().as_bytes();
        let mut header = Vec::with_capacity(MAGIC.len() + 2 + id.len() + NONCE_PREFIX_LEN);
        header.extend_from_slice(MAGIC);
        header.push(VERSION);
        header.push(u8::try_from(id.len()).expect("key ids are 16 characters"));
        header.extend_from_slice(id);
        header.extend_from_slice(&prefix);
        Sealer {
            stream: stream(key, &prefix),
            key_id: key.id().to_owned(),
            header,
            header_emitted: false,
            pending: Vec::new(),
            chunks: 0,
            plaintext_len: 0,
        }
    }

    /// Adds content. Appends to `out` the header (on the first call) and every
    /// data chunk that is now complete; keeps the rest (< `CHUNK_SIZE` bytes).
    ///
    /// # Panics
    /// If the record would exceed 2^32 - 1 data chunks (256 TiB).
    pub fn push(&mut self, mut plaintext: &[u8], out: &mut Vec<u8>) {
        self.emit_header(out);
        self.plaintext_len += plaintext.len() as u64;
        if !self.pending.is_empty() {
            let missing = CHUNK_SIZE - self.pending.len();
            if plaintext.len() < missing {
                self.pending.extend_from_slice(plaintext);
                return;
            }
            let start = out.len();
            out.reserve(CHUNK_SIZE + TAG_LEN);
            out.extend_from_slice(&self.pending);
            out.extend_from_slice(&plaintext[..missing]);
            self.pending.clear();
            self.seal_data_chunk(out, start);
            plaintext = &plaintext[missing..];
        }
        let whole = plaintext.chunks_exact(CHUNK_SIZE);
        let rest = whole.remainder();
        out.reserve(whole.len() * (CHUNK_SIZE + TAG_LEN));
        for chunk in whole {
            let start = out.len();
            out.extend_from_slice(chunk);
            self.seal_data_chunk(out, start);
        }
        if !rest.is_empty() {
            self.pending.reserve_exact(CHUNK_SIZE);
            self.pending.extend_from_slice(rest);
        }
    }

    /// Ends the record: appends the header (if no content was pushed), the last
    /// data chunk (if any content is pending), the sealed metadata block and
    /// the footer.
    ///
    /// # Panics
    /// If `metadata` is longer than [`MAX_METADATA_LEN`].
    pub fn finish(mut self, metadata: &[u8], out: &mut Vec<u8>) {
        assert!(
            metadata.len() <= MAX_METADATA_LEN,
            "record metadata is limited to {MAX_METADATA_LEN} bytes"
        );
        self.emit_header(out);
        out.reserve(self.pending.len() + metadata.len() + 2 * TAG_LEN + super::FOOTER_LEN);
        if !self.pending.is_empty() {
            let start = out.len();
            out.extend_from_slice(&self.pending);
            self.seal_data_chunk(out, start);
        }
        let start = out.len();
        out.extend_from_slice(metadata);
        let aad = metadata_aad(&self.header, self.plaintext_len);
        self.stream
            .encrypt_in_place(self.chunks, true, &aad, &mut TailBuffer { vec: out, start })
            .expect("AES-GCM seals any block under 64 GiB");
        let metadata_ct_len = u32::try_from(metadata.len() + TAG_LEN).expect("bounded above");
        out.extend_from_slice(&self.plaintext_len.to_be_bytes());
        out.extend_from_slice(&metadata_ct_len.to_be_bytes());
        out.extend_from_slice(FOOTER_MAGIC);
    }

    /// Content bytes pushed so far.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Id of the key this record is sealed with.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn emit_header(&mut self, out: &mut Vec<u8>) {
        if !self.header_emitted {
            out.extend_from_slice(&self.header);
            self.header_emitted = true;
        }
    }

    /// Seals `out[start..]`, one data chunk of plaintext, in place.
    fn seal_data_chunk(&mut self, out: &mut Vec<u8>, start: usize) {
        // Position u32::MAX stays free for the metadata block.
        assert!(
            self.chunks < u32::MAX,
            "a sealed record holds at most 256 TiB"
        );
        self.stream
            .encrypt_in_place(
                self.chunks,
                false,
                &self.header,
                &mut TailBuffer { vec: out, start },
            )
            .expect("AES-GCM seals any block under 64 GiB");
        self.chunks += 1;
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("key_id", &self.key_id)
            .field("plaintext_len", &self.plaintext_len)
            .field("chunks", &self.chunks)
            .finish_non_exhaustive()
    }
}
