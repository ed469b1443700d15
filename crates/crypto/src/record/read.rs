//! Opening a sealed record and decrypting chunks or byte ranges of it.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};

use aead_stream::StreamPrimitive;

use super::{
    CHUNK_SIZE, FOOTER_LEN, FOOTER_MAGIC, HEADER_FIXED_LEN, MAGIC, MAX_METADATA_LEN,
    NONCE_PREFIX_LEN, Stream, TAG_LEN, VERSION, chunk_count, metadata_aad, stream,
};
use crate::{CryptoError, KeyLookup};

/// A sealed record opened from a `Read + Seek` source (layout in the
/// [module docs](super)).
///
/// [`open`](RecordReader::open) authenticates the metadata, which also
/// vouches for the plaintext length; every data chunk is authenticated when
/// it is read, before any of its bytes are handed out.
pub struct RecordReader<R> {
    source: R,
    base: u64,
    header: Vec<u8>,
    key_id: String,
    stream: Stream,
    plaintext_len: u64,
    chunk_count: u64,
    metadata: Vec<u8>,
}

impl<R: Read + Seek> RecordReader<R> {
    /// Opens the record stored at bytes `[base, base + len)` of `source`.
    ///
    /// Reads the header and footer, checks them, looks the key up in `keys` (a
    /// [`Keyring`](crate::Keyring), or a store's data keys),
    /// and decrypts and authenticates the metadata block, so a tampered,
    /// truncated or foreign record fails here.
    ///
    /// # Errors
    /// [`CryptoError::MalformedRecord`] when the bytes are not a record of
    /// this version or their lengths disagree; whatever `keys` answers when it
    /// has no such key ([`CryptoError::UnknownKey`] from a keyring); [`CryptoError::Authentication`] when
    /// the metadata does not authenticate; [`CryptoError::Io`] when reading fails.
    pub fn open<K: KeyLookup + ?Sized>(
        keys: &K,
        mut source: R,
        base: u64,
        len: u64,
    ) -> Result<Self, CryptoError> {
        let malformed = |why: &str| CryptoError::MalformedRecord(why.to_owned());
        let smallest = (HEADER_FIXED_LEN + 1 + NONCE_PREFIX_LEN + TAG_LEN + FOOTER_LEN) as u64;
        if len < smallest {
            return Err(malformed("too short to be a sealed record"));
        }
        base.checked_add(len)
            .ok_or_else(|| malformed("record extends past the end of any source"))?;

        let mut header = vec![0u8; HEADER_FIXED_LEN];
        read_at(&mut source, base, &mut header)?;
        if &header[..MAGIC.len()] != MAGIC {
            return Err(malformed("not a sealed record (bad magic)"));
        }
        if header[MAGIC.len()] != VERSION {
            return Err(CryptoError::MalformedRecord(format!(
                "unsupported record version {}",
                header[MAGIC.len()]
            )));
        }
        let id_len = usize::from(header[MAGIC.len() + 1]);
        let header_len = HEADER_FIXED_LEN + id_len + NONCE_PREFIX_LEN;
        if id_len == 0 || (header_len + TAG_LEN + FOOTER_LEN) as u64 > len {
            return Err(malformed("bad key id length"));
        }
        header.resize(header_len, 0);
        read_at(
            &mut source,
            base + HEADER_FIXED_LEN as u64,
            &mut header[HEADER_FIXED_LEN..],
        )?;
        let id_bytes = &header[HEADER_FIXED_LEN..HEADER_FIXED_LEN + id_len];
        if !id_bytes.iter().all(u8::is_ascii_graphic) {
            return Err(malformed("key id is not printable ASCII"));
        }
        let key_id = String::from_utf8(id_bytes.to_vec()).expect("checked ASCII");
        let key = keys.lookup(&key_id)?;
        let prefix: [u8; NONCE_PREFIX_LEN] = header[header_len - NONCE_PREFIX_LEN..]
            .try_into()
            .expect("slice of the prefix length");

        let mut footer = [0u8; FOOTER_LEN];
        read_at(&mut source, base + len - FOOTER_LEN as u64, &mut footer)?;
        if &footer[12..] != FOOTER_MAGIC {
            return Err(malformed("bad footer magic (truncated record?)"));
        }
        let plaintext_len = u64::from_be_bytes(footer[..8].try_into().expect("8 bytes"));
        let metadata_ct_len = u32::from_be_bytes(footer[8..12].try_into().expect("4 bytes"));
        let metadata_ct_len = metadata_ct_len as usize;
        if !(TAG_LEN..=MAX_METADATA_LEN + TAG_LEN).contains(&metadata_ct_len) {
            return Err(malformed("metadata length in the footer is out of bounds"));
        }
        let chunks = chunk_count(plaintext_len);
        let expected_len = u32::try_from(chunks)
            .ok()
            .and_then(|_| chunks.checked_mul(TAG_LEN as u64))
            .and_then(|tags| tags.checked_add(plaintext_len))
            .and_then(|n| n.checked_add((header_len + metadata_ct_len + FOOTER_LEN) as u64));
        if expected_len != Some(len) {
            return Err(malformed(
                "lengths in the footer do not match the record length",
            ));
        }

        let stream = stream(&key, &prefix);
        let mut metadata = vec![0u8; metadata_ct_len];
        let metadata_at = base + len - (FOOTER_LEN + metadata_ct_len) as u64;
        read_at(&mut source, metadata_at, &mut metadata)?;
        let position = u32::try_from(chunks).expect("checked above");
        stream
            .decrypt_in_place(
                position,
                true,
                &metadata_aad(&header, plaintext_len),
                &mut metadata,
            )
            .map_err(|_| CryptoError::Authentication("the metadata block".to_owned()))?;

        Ok(RecordReader {
            source,
            base,
            header,
            key_id,
            stream,
            plaintext_len,
            chunk_count: chunks,
            metadata,
        })
    }

    /// The authenticated metadata.
    pub fn metadata(&self) -> &[u8] {
        &self.metadata
    }

    /// Length of the content (authenticated by the metadata block).
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Id of the key the record was sealed with.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Number of data chunks (0 for empty content).
    pub fn chunk_count(&self) -> u64 {
        self.chunk_count
    }

    /// Decrypts and authenticates data chunk `index`: plaintext bytes
    /// `[index * CHUNK_SIZE, ...)`, `CHUNK_SIZE` of them except in the last chunk.
    ///
    /// # Errors
    /// [`CryptoError::ChunkOutOfRange`], [`CryptoError::Authentication`],
    /// [`CryptoError::Io`].
    pub fn read_chunk(&mut self, index: u64) -> Result<Vec<u8>, CryptoError> {
        let mut chunk = Vec::new();
        self.read_chunk_into(index, &mut chunk)?;
        Ok(chunk)
    }

    /// Hands plaintext bytes `[start, end)` to `f`, one piece per chunk, each
    /// authenticated before it is handed out. Stops at the first error, from
    /// the record or from `f`.
    ///
    /// # Errors
    /// [`CryptoError::InvalidRange`] unless `start <= end <= plaintext_len`,
    /// then as [`read_chunk`](RecordReader::read_chunk), or `f`'s error.
    pub fn read_range<E: From<CryptoError>>(
        &mut self,
        start: u64,
        end: u64,
        mut f: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut chunks = self.range(start, end)?;
        let mut buf = Vec::new();
        while let Some((index, lo, hi)) = chunks.next_span() {
            chunks.reader.read_chunk_into(index, &mut buf)?;
            f(&buf[lo..hi])?;
        }
        Ok(())
    }

    /// Plaintext bytes `[start, end)` as an iterator of pieces, one per chunk,
    /// each authenticated before it is yielded.
    ///
    /// # Errors
    /// [`CryptoError::InvalidRange`] unless `start <= end <= plaintext_len`.
    pub fn range(&mut self, start: u64, end: u64) -> Result<RangeChunks<'_, R>, CryptoError> {
        if start > end || end > self.plaintext_len {
            return Err(CryptoError::InvalidRange {
                start,
                end,
                len: self.plaintext_len,
            });
        }
        Ok(RangeChunks {
            reader: self,
            next: start,
            end,
        })
    }

    /// Gives the source back.
    pub fn into_inner(self) -> R {
        self.source
    }

    fn read_chunk_into(&mut self, index: u64, buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        if index >= self.chunk_count {
            return Err(CryptoError::ChunkOutOfRange {
                index,
                count: self.chunk_count,
            });
        }
        let start = index * CHUNK_SIZE as u64;
        // At most CHUNK_SIZE: the length was checked against the record in `open`.
        let plain_len = (self.plaintext_len - start).min(CHUNK_SIZE as u64) as usize;
        let offset = self.header.len() as u64 + index * (CHUNK_SIZE + TAG_LEN) as u64;
        buf.clear();
        buf.resize(plain_len + TAG_LEN, 0);
        read_at(&mut self.source, self.base + offset, buf)?;
        let position = u32::try_from(index).expect("chunk count checked in open");
        self.stream
            .decrypt_in_place(position, false, &self.header, buf)
            .map_err(|_| CryptoError::Authentication(format!("data chunk {index}")))
    }
}

impl<R> fmt::Debug for RecordReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordReader")
            .field("key_id", &self.key_id)
            .field("base", &self.base)
            .field("plaintext_len", &self.plaintext_len)
            .field("chunk_count", &self.chunk_count)
            .finish_non_exhaustive()
    }
}

/// Iterator over the authenticated plaintext of a byte range, one piece per
/// chunk; see [`RecordReader::range`]. Ends after the first error.
#[derive(Debug)]
pub struct RangeChunks<'a, R> {
    reader: &'a mut RecordReader<R>,
    next: u64,
    end: u64,
}

impl<R> RangeChunks<'_, R> {
    /// The next chunk to read and the part of its plaintext that is in range.
    fn next_span(&mut self) -> Option<(u64, usize, usize)> {
        if self.next >= self.end {
            return None;
        }
        let chunk = CHUNK_SIZE as u64;
        let index = self.next / chunk;
        let chunk_start = index * chunk;
        let stop = self.end.min(chunk_start + chunk);
        let span = (
            index,
            (self.next - chunk_start) as usize,
            (stop - chunk_start) as usize,
        );
        self.next = stop;
        Some(span)
    }
}

impl<R: Read + Seek> Iterator for RangeChunks<'_, R> {
    type Item = Result<Vec<u8>, CryptoError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (index, lo, hi) = self.next_span()?;
        let mut buf = Vec::new();
        match self.reader.read_chunk_into(index, &mut buf) {
            Ok(()) => {
                buf.truncate(hi);
                buf.drain(..lo);
                Some(Ok(buf))
            }
            Err(e) => {
                self.next = self.end;
                Some(Err(e))
            }
        }
    }
}

fn read_at<R: Read + Seek>(source: &mut R, at: u64, buf: &mut [u8]) -> Result<(), CryptoError> {
    source.seek(SeekFrom::Start(at))?;
    source.read_exact(buf)?;
    Ok(())
}
