//! Compacting a log segment: the records still listed in it are copied to the end
//! of the log (the sealed record byte for byte, in a frame of its new place), so
//! that it lists nothing and can be removed (see [`reclaim`](super::reclaim)).
//!
//! Records are copied in batches of at most [`BATCH_BYTES`], read from the segment
//! (which no longer changes: it is below the committer's) first. Then, for each
//! batch, under the append gate held exclusively: the records still listed where
//! they were read are appended with one write and one `fdatasync`, and the index
//! and the book are pointed at the copies. A delete takes the gate before it
//! unlists its item and keeps it until its tombstone is appended, so it either
//! came first (the item is not copied) or comes after the copy (its tombstone
//! follows the copy, and unlists it); either way a replay of the log ends with the
//! item unlisted. A crash between a copy and the segment's removal leaves both
//! records; the replay lists the later one.
//!
//! A listed record whose frame no longer checks (damaged on disk since the store
//! opened) is not copied into the log: its bytes, as they are, become the item's
//! own file `items/<id>.rec` (written to `tmp/`, fsynced, renamed, `items/`
//! fsynced), so that the segment can still go and nothing is destroyed. If only
//! the frame's header was damaged, the item reads as before; if the record is
//! damaged, it fails authentication there as it did in the log.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::Shared;
use super::file::joined;
use super::frame::{self, HEADER_LEN, Kind, Origin, Parsed, Unsealed};
use super::fsutil::{create_private_file, io_err};
use super::index::Location;
use super::log::segment_path;
use super::seam::Step;
use crate::{ItemId, StoreError};

/// Most frame bytes copied with one append.
const BATCH_BYTES: u64 = 4 << 20;

/// One record to copy: the item, where it was read, its whole frame.
struct Copy {
    id: ItemId,
    from: Location,
    frame: Vec<u8>,
    /// The frame does not check any more: the record goes to a file of its own.
    damaged: bool,
}

/// Copies the records still listed in `segment` to the end of the log; returns
/// how many items now live elsewhere.
pub(crate) async fn compact(shared: &Arc<Shared>, segment: u32) -> Result<u64, StoreError> {
    let path = segment_path(&shared.paths.segments, segment);
    let listing = shared.clone();
    let listed = tokio::task::spawn_blocking(move || listing.listing.in_segment(segment))
        .await
        .map_err(joined)??;
    let mut moved = 0;
    let unbound = segment < shared.bound_from;
    for batch in batches(listed) {
        let read_from = path.clone();
        let reader = shared.clone();
        let copies = tokio::task::spawn_blocking(move || {
            reader
                .seam
                .check(Step::CompactRead, &read_from)
                .map_err(io_err("reading log segment", &read_from))?;
            read_frames(&read_from, segment, unbound, batch)
        })
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

/// Reads the frames of `batch` from segment `segment` at `path`. A frame that no
/// longer checks is logged, and marked damaged.
fn read_frames(
    path: &Path,
    segment: u32,
    unbound: bool,
    batch: Vec<(ItemId, Location)>,
) -> Result<Vec<Copy>, StoreError> {
    let file = File::open(path).map_err(io_err("opening log segment", path))?;
    let mut copies = Vec::with_capacity(batch.len());
    for (id, from) in batch {
        let Location::Log { base, len, .. } = from else {
            continue;
        };
        let mut frame = vec![0; HEADER_LEN + usize::try_from(len).expect("small records")];
        let offset = base - HEADER_LEN as u64;
        file.read_exact_at(&mut frame, offset)
            .map_err(io_err("reading log segment", path))?;
        let origin = Origin {
            segment,
            offset,
            unbound,
        };
        let damaged = !matches!(
            frame::parse(&frame, 0, origin),
            Parsed::Frame { kind: Kind::Record, end, .. } if end == frame.len()
        );
        if damaged {
            tracing::warn!(path = %path.display(), %id, offset, "log record does not check; moved to a file of its own, as it is");
        }
        copies.push(Copy {
            id,
            from,
            frame,
            damaged,
        });
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
    let mut listed = Vec::with_capacity(copies.len());
    for copy in copies {
        if shared.listing.location(copy.id)? == Some(copy.from) {
            listed.push(copy);
        }
    }
    let copies = listed;
    let (damaged, copies): (Vec<Copy>, Vec<Copy>) = copies.into_iter().partition(|c| c.damaged);
    let mut saved = 0;
    for copy in damaged {
        save_damaged(shared, &copy).await?;
        // The gate is held: nothing else moved or unlisted it.
        let moved = shared
            .listing
            .relocate(&[(copy.id, copy.from, Location::File)])?;
        debug_assert!(moved == [true], "listed under the gate");
        shared
            .segments()
            .moved_out(segment, copy.frame.len() as u64);
        saved += 1;
    }
    if copies.is_empty() {
        return Ok(saved);
    }
    let mut placed: Vec<(ItemId, Location, u64, u64)> = Vec::with_capacity(copies.len());
    let mut frames = Vec::with_capacity(copies.len());
    let mut offset = 0;
    for copy in copies {
        let len = copy.frame.len() as u64;
        placed.push((copy.id, copy.from, offset, len));
        offset += len;
        // Framed anew: the frame is bound to its new place.
        frames.push(Unsealed::new(Kind::Record, copy.frame));
    }
    let at = shared.log.append(frames).await?;
    let moves: Vec<(ItemId, Location, Location)> = placed
        .iter()
        .map(|&(id, from, offset, len)| {
            let to = Location::Log {
                segment: at.segment,
                base: at.offset + offset + HEADER_LEN as u64,
                len: len - HEADER_LEN as u64,
            };
            (id, from, to)
        })
        .collect();
    // The gate is held since the filter above: deletes wait for it.
    let moved = shared.listing.relocate(&moves)?;
    let (mut count, mut moved_bytes) = (0, 0);
    for (&(_, _, _, len), moved) in placed.iter().zip(moved) {
        debug_assert!(moved, "listed under the gate");
        if moved {
            count += 1;
            moved_bytes += len;
        }
    }
    shared
        .segments()
        .moved(segment, at.segment, count, moved_bytes);
    Ok(saved + count)
}

/// Writes the payload of a damaged frame, as it is, to `items/<id>.rec`, durably.
async fn save_damaged(shared: &Arc<Shared>, copy: &Copy) -> Result<(), StoreError> {
    let shared = shared.clone();
    let record = copy.frame[HEADER_LEN..].to_vec();
    let id = copy.id;
    tokio::task::spawn_blocking(move || {
        let part = shared.paths.tmp.join(format!("{id}.damaged"));
        let target = shared.paths.record(id);
        let mut file = create_private_file(&shared.seam, Step::SaveDamaged, &part)?;
        let written = shared.seam.run(Step::SaveDamaged, &part, || {
            std::io::Write::write_all(&mut file, &record)?;
            file.sync_data()?;
            std::fs::rename(&part, &target)
        });
        if let Err(err) = written {
            let _ = std::fs::remove_file(&part);
            return Err(StoreError::io("saving a damaged record to", target, err));
        }
        shared.items_sync.sync()
    })
    .await
    .map_err(joined)?
}
