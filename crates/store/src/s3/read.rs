//! Reading items back from the bucket. A small item's record is fetched whole
//! (a range of its log object); a large item's is read through
//! [`RangeSource`], ranged GETs of a window at a time, so memory stays flat
//! whatever the item's size. Either way every chunk is authenticated before it
//! is yielded (see [`content_stream`]).

use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::runtime::Handle;

use super::Shared;
use super::view::Location;
use crate::chunks::{check_own, clamp_range, content_stream, open_record};
use crate::{ContentStream, ItemId, ItemMeta, StoreError, joined};

/// Bytes fetched at once while streaming a large item.
const WINDOW: u64 = 8 << 20;
/// Bytes fetched at once near the end of an object (its footer and metadata).
const TAIL: u64 = 64 << 10;

/// Opens item `id` for reading the plaintext bytes `range` (all by default).
pub(crate) async fn open(
    shared: &Arc<Shared>,
    id: ItemId,
    range: Option<Range<u64>>,
) -> Result<Option<(ItemMeta, ContentStream)>, StoreError> {
    let journal = &shared.journal;
    let Some(mut entry) = shared.entry(id).await? else {
        return Ok(None);
    };
    let (start, end) = clamp_range(range, entry.meta.size)?;
    let gone = async || matches!(journal.settled().await.get(id), Ok(None));
    let stream = match entry.location {
        Location::Batch { .. } => {
            let mut moved_once = false;
            let (bytes, seq) = loop {
                let Location::Batch { seq, base, len } = entry.location else {
                    return Err(StoreError::Unavailable(
                        "the item changed as it was read; try again".into(),
                    ));
                };
                let path = journal.log_path(seq);
                match journal.objects.get_range(&path, base..base + len).await {
                    Ok(bytes) => break (bytes, seq),
                    Err(object_store::Error::NotFound { .. }) if !moved_once => {
                        // Compacted into a later log object since this
                        // server last read the log: read on, and look again.
                        moved_once = true;
                        journal.catch_up().await?;
                        let Some(now) = journal.settled().await.get(id)? else {
                            return Ok(None);
                        };
                        entry = now;
                    }
                    Err(err) => {
                        if matches!(err, object_store::Error::NotFound { .. }) && gone().await {
                            return Ok(None);
                        }
                        return Err(StoreError::remote(
                            format!("reading commit-log object {seq}"),
                            err,
                        ));
                    }
                }
            };
            let origin = format!("commit-log object {seq}");
            let len = bytes.len() as u64;
            let (reader, meta) =
                open_record(&journal.keyring, Cursor::new(bytes), 0, len, id, &origin)?;
            check_own(&entry.meta, &meta, &origin)?;
            content_stream(reader, origin, id, start, end)
        }
        Location::Object { len, .. } => {
            let origin = format!("the object of item {id}");
            let source = RangeSource::new(journal.objects.clone(), journal.item_path(id), len);
            let keyring = journal.keyring.clone();
            let opened = {
                let origin = origin.clone();
                tokio::task::spawn_blocking(move || {
                    open_record(&keyring, source, 0, len, id, &origin)
                })
                .await
                .map_err(joined)?
            };
            let (reader, meta) = match opened {
                Ok(opened) => opened,
                Err(err) => {
                    let missing = matches!(&err, StoreError::Io { source, .. }
                        if source.kind() == io::ErrorKind::NotFound);
                    if missing && gone().await {
                        return Ok(None);
                    }
                    return Err(err);
                }
            };
            check_own(&entry.meta, &meta, &origin)?;
            content_stream(reader, origin, id, start, end)
        }
    };
    Ok(Some((entry.meta, stream)))
}

/// An object read as a file: `Read + Seek` by ranged GETs of a window at a
/// time, for a [`RecordReader`](ferry_crypto::RecordReader) on a blocking
/// thread.
pub(crate) struct RangeSource {
    objects: Arc<dyn ObjectStore>,
    path: Path,
    len: u64,
    pos: u64,
    /// The bytes fetched last, and where they start.
    window: (u64, Bytes),
    runtime: Handle,
}

impl RangeSource {
    /// Reads `path`, of `len` bytes. Must be made inside a Tokio runtime.
    pub(crate) fn new(objects: Arc<dyn ObjectStore>, path: Path, len: u64) -> RangeSource {
        RangeSource {
            objects,
            path,
            len,
            pos: 0,
            window: (0, Bytes::new()),
            runtime: Handle::current(),
        }
    }

    /// Fetches the window holding `self.pos`.
    fn fetch(&mut self) -> io::Result<()> {
        let start = if self.len - self.pos <= TAIL {
            self.len.saturating_sub(TAIL)
        } else {
            self.pos
        };
        let end = (start + WINDOW).min(self.len);
        let got = self
            .runtime
            .block_on(self.objects.get_range(&self.path, start..end));
        let bytes = got.map_err(|err| match err {
            object_store::Error::NotFound { .. } => io::Error::from(io::ErrorKind::NotFound),
            other => io::Error::other(other),
        })?;
        if bytes.len() as u64 != end - start {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.window = (start, bytes);
        Ok(())
    }
}

impl Read for RangeSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let (start, bytes) = &self.window;
        if self.pos < *start || self.pos >= start + bytes.len() as u64 {
            self.fetch()?;
        }
        let (start, bytes) = &self.window;
        let from = (self.pos - start) as usize;
        let n = buf.len().min(bytes.len() - from);
        buf[..n].copy_from_slice(&bytes[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangeSource {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(pos) => Some(pos),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
        };
        self.pos = pos.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}
