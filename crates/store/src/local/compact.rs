//! Compacting a log segment: the records still listed in it are copied, byte for
//! byte, to the end of the log, so that it lists nothing and can be removed (see
//! [`reclaim`](super::reclaim)).
//!
//! Records are copied in batches of at most [`BATCH_BYTES`], read from the segment
//! (which no longer changes: it is below the committer's) first. Then, for each
//! batch, under the append gate held exclusively: the records still listed where
//! they were read are appended with one write and one `fdatasync`, and the index
//! and the book are pointed at the copies. A delete racing a copy either unlisted
//! the item first (it is not copied) or appends its tombstone once the gate is
//! free, after the copy; either way a replay of the log ends with the item
//! unlisted. A crash between a copy and the segment's removal leaves both records;
//! the replay lists the later one.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::Shared;
use super::file::joined;
use super::frame::{self, HEADER_LEN, Kind, Parsed};
use super::fsutil::io_err;
use super::index::Location;
use super::log::segment_path;
use crate::{ItemId, StoreError};

/// Most frame bytes copied with one append.
const BATCH_BYTES: u64 = 4 << 20;

/// One record to copy: the item, where it was read, its whole frame.
struct Copy {
    id: ItemId,
    from: Location,
    frame: Vec<u8>,
}

/// Copies the records still listed in `segment` to the end of the log; returns
/// how many items now live elsewhere.
pub(crate) async fn compact(shared: &Arc<Shared>, segment: u32) -> Result<u64, StoreError> {
    let path = segment_path(&shared.paths.segments, segment);
    let listed = shared.index().in_segment(segment);
    let mut moved = 0;
    for batch in batches(listed) {
        let read_from = path.clone();
        let copies = tokio::task::spawn_blocking(move || read_frames(&read_from, batch))
            .await
            .map_err(joined)??;
        moved += append_copies(shared, segment, copies).await?;
    }
    Ok(moved)
}

/// Cuts the listed records into batches of at most [`BATCH_BYTES`] frame bytes.
fn batches(listed: Vec<(ItemId, Location)>) -> Vec<Vec<(ItemId, Location)>> {
    let mut batches: Vec<Vec<(ItemId, Location)>> = Vec::new();
    let mut bytes = BATCH_BYTES;
    for (id, at) in listed {
        let Some((_, frame)) = at.log_frame() else {
            continue;
        };
        if bytes + frame > BATCH_BYTES {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes += frame;
        batches.last_mut().expect("pushed above").push((id, at));
    }
    batches
}

/// Reads the frames of `batch` from the segment at `path`. A frame that no longer
/// checks is left where it is (and logged): its segment then stays.
fn read_frames(path: &Path, batch: Vec<(ItemId, Location)>) -> Result<Vec<Copy>, StoreError> {
    let file = File::open(path).map_err(io_err("opening log segment", path))?;
    let mut copies = Vec::with_capacity(batch.len());
    for (id, from) in batch {
        let Location::Log { base, len, .. } = from else {
            continue;
        };
        let mut frame = vec![0; HEADER_LEN + usize::try_from(len).expect("small records")];
        file.read_exact_at(&mut frame, base - HEADER_LEN as u64)
            .map_err(io_err("reading log segment", path))?;
        match frame::parse(&frame, 0) {
            Parsed::Frame {
                kind: Kind::Record,
                end,
                ..
            } if end == frame.len() => copies.push(Copy { id, from, frame }),
            _ => {
                tracing::warn!(path = %path.display(), %id, offset = base, "log record does not check; not compacted");
            }
        }
    }
    Ok(copies)
}

/// Appends the copies whose items are still listed where they were read, and
/// points the index and the book at them; returns how many moved.
async fn append_copies(
    shared: &Arc<Shared>,
    segment: u32,
    copies: Vec<Copy>,
) -> Result<u64, StoreError> {
    let _no_other_appends = shared.append_gate.write().await;
    let copies: Vec<Copy> = {
        let index = shared.index();
        copies
            .into_iter()
            .filter(|copy| index.location(copy.id) == Some(copy.from))
            .collect()
    };
    if copies.is_empty() {
        return Ok(0);
    }
    let mut bytes = Vec::with_capacity(copies.iter().map(|c| c.frame.len()).sum());
    let mut offsets = Vec::with_capacity(copies.len());
    for copy in &copies {
        offsets.push(bytes.len() as u64);
        bytes.extend_from_slice(&copy.frame);
    }
    let at = shared.log.append(bytes).await?;
    let (mut count, mut moved_bytes) = (0, 0);
    {
        let mut index = shared.index_mut();
        for (copy, offset) in copies.iter().zip(offsets) {
            let to = Location::Log {
                segment: at.segment,
                base: at.offset + offset + HEADER_LEN as u64,
                len: (copy.frame.len() - HEADER_LEN) as u64,
            };
            // Unlisted meanwhile: its tombstone follows once the gate is free.
            if index.relocate(copy.id, copy.from, to) {
                count += 1;
                moved_bytes += copy.frame.len() as u64;
            }
        }
    }
    shared
        .segments()
        .moved(segment, at.segment, count, moved_bytes);
    Ok(count)
}
