//! Reclaiming log space: compacting segments that are mostly deleted, and
//! removing segments that hold nothing listed any more.
//!
//! A deleted small item's sealed bytes stay in its segment; the delete only
//! appends a tombstone. Once at least half a segment's worth of its bytes are
//! deleted, the records still listed in it are copied to the end of the log (see
//! [`compact`](super::compact)), which leaves it listing nothing. A segment that
//! lists nothing is removed, provided that removing it cannot bring anything back
//! after a restart:
//! - it is not the segment being appended to, nor will it ever be again (its
//!   number is below the committer's);
//! - it holds no record that could not be opened when the store opened (sealed
//!   with a key not given, or damaged): such bytes are never destroyed;
//! - it supersedes nothing in an older segment that still exists: none of its
//!   tombstones unlists an item of such a segment, and none of its records is a
//!   compaction's copy of a record still there. Without the tombstone, the item
//!   would be listed again on open; without the copy, a later tombstone of the
//!   item could go while the old record stays, with the same effect.
//!
//! Segments are removed oldest first, one at a time, each unlink made durable
//! (fsync of `segments/`) before the next, so a crash can only leave a prefix of
//! them removed. A segment whose tombstones still matter is not compacted either
//! (it could not be removed after): its turn comes once the segments it
//! supersedes records of are gone.
//!
//! Appends of records and tombstones hold the store's append gate (shared) from
//! before the append until the index and this book know of them; a reclaim pass
//! decides under the gate held exclusively, so it never sees a segment that holds
//! a record or tombstone it has not been told of.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::fsutil::sync_dir;
use super::log::segment_path;
use super::seam::{Seam, Step};

/// What each existing segment holds that matters for removing it.
#[derive(Debug, Default)]
pub(crate) struct Segments {
    uses: BTreeMap<u32, Use>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Use {
    /// Items listed from a record in this segment.
    listed: u64,
    /// The frame bytes of those records.
    listed_bytes: u64,
    /// Records in this segment that could not be opened at open (a key not
    /// given, damage): such a segment is never compacted nor removed.
    refused: u64,
    /// Older segments holding records that this segment supersedes: items its
    /// tombstones unlist, or records it holds compacted copies of.
    supersedes: BTreeSet<u32>,
}

impl Segments {
    /// A segment that exists on disk (called at open for every segment).
    pub(crate) fn exists(&mut self, segment: u32) {
        self.uses.entry(segment).or_default();
    }

    /// An item was listed from a record of `bytes` frame bytes in `segment`.
    pub(crate) fn listed(&mut self, segment: u32, bytes: u64) {
        let used = self.uses.entry(segment).or_default();
        used.listed += 1;
        used.listed_bytes += bytes;
    }

    /// A record in `segment` could not be opened: the segment stays.
    pub(crate) fn refused(&mut self, segment: u32) {
        self.refused_many(segment, 1);
    }

    /// `count` records in `segment` could not be opened.
    pub(crate) fn refused_many(&mut self, segment: u32, count: u64) {
        self.uses.entry(segment).or_default().refused += count;
    }

    /// The records that could not be opened, per segment that has some.
    pub(crate) fn refused_counts(&self) -> std::collections::BTreeMap<u32, u64> {
        self.uses
            .iter()
            .filter(|(_, used)| used.refused > 0)
            .map(|(segment, used)| (*segment, used.refused))
            .collect()
    }

    /// `count` items are listed from records of `bytes` frame bytes in
    /// `segment`, all told (from the catalog's tallies, at open).
    pub(crate) fn set_listed(&mut self, segment: u32, count: u64, bytes: u64) {
        let used = self.uses.entry(segment).or_default();
        used.listed = count;
        used.listed_bytes = bytes;
    }

    /// An item listed from a record of `bytes` frame bytes in `segment` was
    /// unlisted by a tombstone in `tombstone_in`.
    pub(crate) fn unlisted(&mut self, segment: u32, bytes: u64, tombstone_in: u32) {
        self.drop_listed(segment, 1, bytes);
        self.superseded(segment, tombstone_in);
    }

    /// `count` items (`bytes` frame bytes) listed from `from` were copied to `to`.
    pub(crate) fn moved(&mut self, from: u32, to: u32, count: u64, bytes: u64) {
        self.drop_listed(from, count, bytes);
        let used = self.uses.entry(to).or_default();
        used.listed += count;
        used.listed_bytes += bytes;
        if count > 0 {
            self.superseded(from, to);
        }
    }

    /// A record of `bytes` frame bytes listed from `from` moved to a file of its own.
    pub(crate) fn moved_out(&mut self, from: u32, bytes: u64) {
        self.drop_listed(from, 1, bytes);
    }

    /// A frame in `newer` supersedes a record in `older`: a tombstone unlists
    /// it, or a compaction copied it (a replaced record seen at open is either).
    pub(crate) fn superseded(&mut self, older: u32, newer: u32) {
        let used = self.uses.entry(newer).or_default();
        // (A replay from the catalog's cursor may find an item the catalog
        // already lists from a later segment: that is not superseding.)
        if older < newer {
            used.supersedes.insert(older);
        }
    }

    fn drop_listed(&mut self, segment: u32, count: u64, bytes: u64) {
        if let Some(used) = self.uses.get_mut(&segment) {
            used.listed = used.listed.saturating_sub(count);
            used.listed_bytes = used.listed_bytes.saturating_sub(bytes);
        }
    }

    /// Whether `segment` lists nothing (a reclaim pass may find it removable).
    #[cfg(test)]
    fn is_unused(&self, segment: u32) -> bool {
        self.uses.get(&segment).is_some_and(|used| used.listed == 0)
    }

    /// Whether `segment`, `size` bytes long, is worth compacting: it still lists
    /// something, at least `dead` of its bytes are no longer listed, and none of
    /// its tombstones would keep it from being removed once compacted.
    pub(crate) fn worth_compacting(&self, segment: u32, size: u64, dead: u64) -> bool {
        self.uses.get(&segment).is_some_and(|used| {
            used.listed > 0
                && used.refused == 0
                && size.saturating_sub(used.listed_bytes) >= dead
                && !self.is_blocked(used)
        })
    }

    fn is_blocked(&self, used: &Use) -> bool {
        used.supersedes
            .iter()
            .any(|older| self.uses.contains_key(older))
    }

    /// Lists nothing, holds nothing unreadable, and supersedes nothing that remains.
    fn can_go(&self, used: &Use) -> bool {
        used.listed == 0 && used.refused == 0 && !self.is_blocked(used)
    }

    /// The segments below `current`, oldest first.
    pub(crate) fn existing_below(&self, current: u32) -> Vec<u32> {
        self.uses.range(..current).map(|(&s, _)| s).collect()
    }

    /// Whether [`take_removable`](Segments::take_removable) would take anything.
    /// Asked without the append gate: appends in flight can only add listed
    /// items, so a `false` stays right; a `true` is checked again under the gate.
    pub(crate) fn any_removable(&self, current: u32) -> bool {
        self.uses
            .range(..current)
            .any(|(_, used)| self.can_go(used))
    }

    /// Takes out of the book, oldest first, every segment below `current` that
    /// can be removed (see the module docs). The caller removes them in order,
    /// and gives back with [`restore`](Segments::restore) any it could not.
    pub(crate) fn take_removable(&mut self, current: u32) -> Vec<(u32, Use)> {
        let mut removable = Vec::new();
        for segment in self.existing_below(current) {
            if self.can_go(&self.uses[&segment]) {
                let used = self
                    .uses
                    .remove(&segment)
                    .expect("a candidate is in the book");
                removable.push((segment, used));
            }
        }
        removable
    }

    /// Puts back segments that [`take_removable`](Segments::take_removable) took
    /// but that are still on disk.
    pub(crate) fn restore(&mut self, segments: impl IntoIterator<Item = (u32, Use)>) {
        self.uses.extend(segments);
    }
}

/// Removes `segments` from `dir` in order, each made durable before the next
/// (also when it was already gone: an earlier removal whose directory fsync
/// failed). Returns the ones not removed (from the first failure on), to be
/// restored.
pub(crate) fn remove_segments(
    seam: &Seam,
    dir: &Path,
    segments: Vec<(u32, Use)>,
) -> Vec<(u32, Use)> {
    let mut segments = segments.into_iter();
    for (number, used) in segments.by_ref() {
        let path = segment_path(dir, number);
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        let unlinked = seam.run(Step::SegmentUnlink, &path, || std::fs::remove_file(&path));
        let removed = match unlinked {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err.to_string()),
            _ => sync_dir(seam, Step::SyncAfterUnlink, dir).map_err(|err| err.to_string()),
        };
        match removed {
            Ok(()) => {
                metrics::counter!("ferry_store_segments_removed_total").increment(1);
                metrics::counter!("ferry_store_reclaimed_bytes_total").increment(size);
                tracing::info!(path = %path.display(), bytes = size, "log segment removed: it lists nothing")
            }
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "cannot reclaim a log segment; will retry after a later delete");
                return std::iter::once((number, used)).chain(segments).collect();
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(taken: &[(u32, Use)]) -> Vec<u32> {
        taken.iter().map(|(n, _)| *n).collect()
    }

    #[test]
    fn only_segments_below_the_current_one_and_listing_nothing_go() {
        let mut book = Segments::default();
        for s in 1..=4 {
            book.exists(s);
        }
        book.listed(2, 10);
        book.listed(4, 10);
        book.unlisted(4, 10, 4);
        assert!(book.any_removable(4));
        // 4 lists nothing but is the current segment.
        assert_eq!(numbers(&book.take_removable(4)), vec![1, 3]);
        assert!(!book.any_removable(4));
        assert_eq!(numbers(&book.take_removable(4)), Vec::<u32>::new());
        assert!(!book.is_unused(2));
        assert!(book.is_unused(4));
    }

    #[test]
    fn a_segment_whose_tombstones_unlist_items_of_a_remaining_segment_stays() {
        let mut book = Segments::default();
        book.listed(1, 10);
        book.listed(1, 10);
        book.listed(2, 10);
        // Segment 3 holds the tombstones of one item of 1 and the item of 2.
        book.unlisted(1, 10, 3);
        book.unlisted(2, 10, 3);
        book.exists(4);
        // 1 still lists an item, so 3's tombstone for it must stay: 3 stays; 2 goes.
        assert_eq!(numbers(&book.take_removable(4)), vec![2]);
        // The last item of 1 is deleted (tombstone in 4): 1 goes, and then 3.
        book.unlisted(1, 10, 4);
        assert_eq!(numbers(&book.take_removable(4)), vec![1, 3]);
    }

    #[test]
    fn a_segment_is_worth_compacting_once_enough_is_dead_and_nothing_blocks_it() {
        let mut book = Segments::default();
        book.listed(1, 100);
        book.listed(2, 100);
        book.listed(2, 100);
        book.listed(3, 300);
        // 2's tombstone unlists an item of 1.
        book.listed(1, 100);
        book.unlisted(1, 100, 2);
        assert!(
            book.worth_compacting(1, 1000, 500),
            "900 of 1000 bytes dead"
        );
        assert!(!book.worth_compacting(1, 1000, 901));
        assert!(
            !book.worth_compacting(2, 1000, 500),
            "its tombstone still matters"
        );
        assert!(!book.worth_compacting(3, 1000, 800), "only 700 bytes dead");
        // 1 compacted into 3: it lists nothing (reclaim removes it), then 2 may go.
        book.moved(1, 3, 1, 100);
        assert!(book.is_unused(1));
        assert!(!book.worth_compacting(1, 1000, 500), "nothing left to move");
        assert_eq!(numbers(&book.take_removable(4)), vec![1]);
        assert!(book.worth_compacting(2, 1000, 500));
        assert!(book.worth_compacting(3, 1000, 500), "400 of 1000 listed");
    }

    #[test]
    fn a_compacted_copy_and_its_tombstone_stay_while_the_source_segment_does() {
        let mut book = Segments::default();
        book.listed(1, 100);
        // The item of 1 is compacted into 2, then deleted: tombstone in 3.
        book.moved(1, 2, 1, 100);
        book.unlisted(2, 100, 3);
        book.exists(4);
        // While 1 (with the old record) is there, neither the copy's segment nor
        // the tombstone's may go: 1 would list the item again.
        assert!(book.is_blocked(&book.uses[&2]));
        assert!(book.is_blocked(&book.uses[&3]));
        // Oldest first, so a failure to remove 1 leaves 2 and 3 in place too.
        assert_eq!(numbers(&book.take_removable(4)), vec![1, 2, 3]);
    }

    #[test]
    fn removal_stops_at_the_first_failure_and_gives_back_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where segment 2 should be: it cannot be unlinked.
        std::fs::write(segment_path(dir.path(), 1), b"").unwrap();
        std::fs::create_dir(segment_path(dir.path(), 2)).unwrap();
        std::fs::write(segment_path(dir.path(), 3), b"").unwrap();
        let segments = (1..=3).map(|n| (n, Use::default())).collect();
        let left = remove_segments(&Seam::default(), dir.path(), segments);
        assert_eq!(numbers(&left), vec![2, 3]);
        assert!(!segment_path(dir.path(), 1).exists());
        assert!(segment_path(dir.path(), 3).exists());
    }

    #[test]
    fn restored_segments_are_considered_again() {
        let mut book = Segments::default();
        book.exists(1);
        book.exists(2);
        let taken = book.take_removable(2);
        assert_eq!(numbers(&taken), vec![1]);
        book.restore(taken);
        assert_eq!(numbers(&book.take_removable(2)), vec![1]);
    }
}
