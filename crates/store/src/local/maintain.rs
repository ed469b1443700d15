//! Giving log space back: after a delete (for the deleted item's segment) and at
//! open (for every segment), the segments worth it are compacted (see
//! [`compact`](super::compact)) and those that list nothing are removed (see
//! [`reclaim`](super::reclaim)). One pass runs at a time, and none while the
//! store holds records sealed with keys it was not given.

use std::sync::Arc;

use super::{Shared, compact, log, reclaim};

/// Gives back log space after a delete from `segment`, or at open (`None`: every
/// segment): compacts the segments worth it, then removes the segments that list
/// nothing (see [`reclaim`] and [`compact`]). One pass at a time.
pub(crate) async fn maintain_log(shared: &Arc<Shared>, segment: Option<u32>) {
    if shared.keep_everything {
        return;
    }
    let _one_pass = shared.maintaining.lock().await;
    let current = shared.log.current_segment();
    let candidates = match segment {
        Some(segment) => vec![segment],
        None => shared.segments().existing_below(current),
    };
    for segment in candidates.into_iter().filter(|s| *s < current) {
        let path = log::segment_path(&shared.paths.segments, segment);
        let size = match shared.log.end_of(segment) {
            Some(end) => end,
            None => tokio::fs::metadata(&path).await.map_or(0, |m| m.len()),
        };
        let dead = shared.options.segment_size / 2;
        if shared.segments().worth_compacting(segment, size, dead) {
            match compact::compact(shared, segment).await {
                Ok(moved) => {
                    metrics::counter!("ferry_store_segments_compacted_total").increment(1);
                    metrics::counter!("ferry_store_compacted_items_total").increment(moved);
                    tracing::info!(path = %path.display(), moved, "log segment compacted");
                }
                Err(err) => {
                    tracing::warn!(path = %path.display(), %err, "cannot compact a log segment; will retry later")
                }
            }
            // Its removal may unblock the next segment's compaction.
            remove_unused_segments(shared).await;
        }
    }
    remove_unused_segments(shared).await;
}

/// Removes the log segments that list nothing and supersede nothing that
/// remains (see [`reclaim`]).
async fn remove_unused_segments(shared: &Arc<Shared>) {
    if !shared
        .segments()
        .any_removable(shared.log.current_segment())
    {
        return;
    }
    let removable = {
        let _no_appends = shared.append_gate.write().await;
        shared
            .segments()
            .take_removable(shared.log.current_segment())
    };
    if removable.is_empty() {
        return;
    }
    let dir = shared.paths.segments.clone();
    let seam = shared.seam.clone();
    let numbers: Vec<u32> = removable.iter().map(|(number, _)| *number).collect();
    let flusher = shared.clone();
    // The catalog may still point into them until it is durable.
    let removing = move || match flusher.listing.flush() {
        Ok(()) => reclaim::remove_segments(&seam, &dir, removable),
        Err(err) => {
            tracing::warn!(%err, "cannot make the catalog durable; no log segment is removed");
            removable
        }
    };
    match tokio::task::spawn_blocking(removing).await {
        Ok(left) => {
            let removed = numbers.len() - left.len();
            shared.log.forget(&numbers[..removed]);
            shared.segments().restore(left);
        }
        // Only when the runtime shuts down: the next open rebuilds the book.
        Err(err) => tracing::warn!(%err, "reclaiming log segments stopped"),
    }
}
