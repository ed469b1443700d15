//! An item's plaintext as a stream of authenticated chunks, read from a
//! [`RecordReader`] over any source (a local file, a window of a log segment,
//! an object in a bucket) on blocking threads, one chunk at a time.
//!
//! Only the chunks a range needs are read and decrypted, and at most one chunk
//! is held at a time, so memory stays flat whatever the item's size.

use std::io::{ErrorKind, Read, Seek};
use std::ops::Range;

use bytes::Bytes;
use ferry_crypto::{CHUNK_SIZE, CryptoError, RecordReader};
use futures::StreamExt;

use crate::{ContentStream, ItemId, ItemMeta, StoreError};

/// The plaintext bytes `start..end` of the record `reader` opened, item `id`'s.
/// `origin` names where the record is, in errors.
pub(crate) fn content_stream<R>(
    reader: RecordReader<R>,
    origin: String,
    id: ItemId,
    start: u64,
    end: u64,
) -> ContentStream
where
    R: Read + Seek + Send + 'static,
{
    let state = Chunks {
        reader: Some(reader),
        origin,
        id,
        next: start,
        end,
    };
    futures::stream::unfold(state, Chunks::next).boxed()
}

/// The bytes `range` (all by default) of an item of `size` bytes, its end
/// clamped to the size; [`StoreError::InvalidRange`] if it does not start in
/// the item.
pub(crate) fn clamp_range(range: Option<Range<u64>>, size: u64) -> Result<(u64, u64), StoreError> {
    let Range { start, end } = range.unwrap_or(0..size);
    if start > end || start > size {
        return Err(StoreError::InvalidRange { start, end, size });
    }
    Ok((start, end.min(size)))
}

/// Opens a sealed record and parses its metadata. `id` names the item, and
/// `origin` where the record is, in errors.
pub(crate) fn open_record<R: Read + Seek, K: ferry_crypto::KeyLookup + ?Sized>(
    keys: &K,
    source: R,
    base: u64,
    len: u64,
    id: ItemId,
    origin: &str,
) -> Result<(RecordReader<R>, ItemMeta), StoreError> {
    let reader =
        RecordReader::open(keys, source, base, len).map_err(|err| crypto_error(id, origin, err))?;
    let meta = ItemMeta::from_record_bytes(reader.metadata()).map_err(|err| {
        StoreError::integrity(
            id,
            format!("{origin}: authenticated metadata is not item metadata: {err}"),
        )
    })?;
    Ok((reader, meta))
}

/// Checks that a record opened for `listed` is that item's own.
pub(crate) fn check_own(
    listed: &ItemMeta,
    found: &ItemMeta,
    origin: &str,
) -> Result<(), StoreError> {
    if found.id != listed.id || found.size != listed.size || found.sha256 != listed.sha256 {
        return Err(StoreError::integrity(
            listed.id,
            format!("{origin} holds the record of another item ({})", found.id),
        ));
    }
    Ok(())
}

/// Names the item and the reason in a record error.
pub(crate) fn crypto_error(id: ItemId, origin: &str, err: CryptoError) -> StoreError {
    match err {
        CryptoError::Io(err) if err.kind() == ErrorKind::UnexpectedEof => {
            StoreError::integrity(id, format!("{origin}: record is truncated"))
        }
        CryptoError::Io(err) => StoreError::io("reading", origin, err),
        other => StoreError::integrity(id, format!("{origin}: {other}")),
    }
}

/// The state of a content stream.
struct Chunks<R> {
    reader: Option<RecordReader<R>>,
    origin: String,
    id: ItemId,
    next: u64,
    end: u64,
}

impl<R: Read + Seek + Send + 'static> Chunks<R> {
    /// Reads, authenticates and trims the next chunk of the range.
    async fn next(mut self) -> Option<(Result<Bytes, StoreError>, Chunks<R>)> {
        if self.next >= self.end {
            return None;
        }
        let mut reader = self.reader.take()?;
        let chunk = CHUNK_SIZE as u64;
        let index = self.next / chunk;
        let chunk_start = index * chunk;
        let stop = self.end.min(chunk_start + chunk);
        let (lo, hi) = (
            (self.next - chunk_start) as usize,
            (stop - chunk_start) as usize,
        );
        let id = self.id;
        let read = tokio::task::spawn_blocking(move || {
            let result = reader.read_chunk(index);
            (reader, result)
        })
        .await;
        let result = match read {
            Ok((reader, Ok(plain))) if plain.len() >= hi => {
                self.reader = Some(reader);
                self.next = stop;
                Ok(Bytes::from(plain).slice(lo..hi))
            }
            Ok((_, Ok(plain))) => Err(StoreError::integrity(
                id,
                format!(
                    "chunk {index} holds {} bytes, expected at least {hi}",
                    plain.len()
                ),
            )),
            Ok((_, Err(err))) => Err(crypto_error(id, &self.origin, err)),
            Err(err) => Err(crate::joined(err)),
        };
        if result.is_err() {
            self.next = self.end;
        }
        Some((result, self))
    }
}
