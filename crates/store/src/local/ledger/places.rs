//! [`Places`]: where each leaf of the ledger is, in about 4 bytes a leaf.

use crate::local::log::Position;

/// Where each leaf is, in order: runs of leaves in one segment, and each
/// leaf's offset from its run's base as a `u32` (a run ends where the segment
/// changes or an offset would not fit).
#[derive(Debug, Default)]
pub(super) struct Places {
    runs: Vec<Run>,
    offsets: Vec<u32>,
}

/// Leaves from `first` on, in `segment`, at `base` plus their offsets.
#[derive(Debug)]
struct Run {
    first: u64,
    segment: u32,
    base: u64,
}

impl Places {
    /// Records the place of the next leaf, after every one recorded.
    pub(super) fn push(&mut self, at: Position) {
        let index = self.offsets.len() as u64;
        let offset = self
            .runs
            .last()
            .filter(|run| run.segment == at.segment && at.offset >= run.base)
            .and_then(|run| u32::try_from(at.offset - run.base).ok());
        let offset = offset.unwrap_or_else(|| {
            self.runs.push(Run {
                first: index,
                segment: at.segment,
                base: at.offset,
            });
            0
        });
        self.offsets.push(offset);
    }

    /// Frees the room kept for growth.
    pub(super) fn shrink_to_fit(&mut self) {
        self.runs.shrink_to_fit();
        self.offsets.shrink_to_fit();
    }

    /// The places as bytes, for [`from_bytes`](Self::from_bytes).
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 20 * self.runs.len() + 4 * self.offsets.len());
        out.extend_from_slice(&(self.runs.len() as u64).to_le_bytes());
        for run in &self.runs {
            out.extend_from_slice(&run.first.to_le_bytes());
            out.extend_from_slice(&run.segment.to_le_bytes());
            out.extend_from_slice(&run.base.to_le_bytes());
        }
        for offset in &self.offsets {
            out.extend_from_slice(&offset.to_le_bytes());
        }
        out
    }

    /// Places written by [`to_bytes`](Self::to_bytes) for `len` leaves;
    /// `None` if `bytes` are not that (runs out of order, a wrong length).
    pub(super) fn from_bytes(bytes: &[u8], len: u64) -> Option<Places> {
        let runs = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
        let (runs_bytes, offsets) = bytes.get(8..)?.split_at_checked(runs.checked_mul(20)?)?;
        if offsets.len() as u64 != len.checked_mul(4)? {
            return None;
        }
        let runs: Vec<Run> = runs_bytes
            .chunks_exact(20)
            .map(|run| Run {
                first: u64::from_le_bytes(run[..8].try_into().expect("8 bytes")),
                segment: u32::from_le_bytes(run[8..12].try_into().expect("4 bytes")),
                base: u64::from_le_bytes(run[12..].try_into().expect("8 bytes")),
            })
            .collect();
        let ordered = runs.windows(2).all(|two| two[0].first < two[1].first);
        let starts = runs.first().is_none_or(|run| run.first == 0);
        if !ordered || !starts || runs.last().is_some_and(|run| run.first >= len) {
            return None;
        }
        let offsets = offsets
            .chunks_exact(4)
            .map(|offset| u32::from_le_bytes(offset.try_into().expect("4 bytes")))
            .collect();
        Some(Places { runs, offsets })
    }

    /// The number of leaves.
    pub(super) fn len(&self) -> usize {
        self.offsets.len()
    }

    /// The place of leaf `index` (< `len`).
    pub(super) fn get(&self, index: usize) -> Position {
        let run = &self.runs[self.runs.partition_point(|run| run.first <= index as u64) - 1];
        Position {
            segment: run.segment,
            offset: run.base + u64::from(self.offsets[index]),
        }
    }

    /// The index of the leaf at `at`, if one is there (leaves lie in the log's
    /// order, so their places increase).
    pub(super) fn find(&self, at: Position) -> Option<usize> {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = low + (high - low) / 2;
            match self.get(mid).cmp(&at) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(segment: u32, offset: u64) -> Position {
        Position { segment, offset }
    }

    #[test]
    fn places_read_back_as_pushed_across_segments_and_large_offsets() {
        let pushed = [
            at(0, 0),
            at(0, 120),
            at(0, 4_000),
            at(1, 0),
            at(1, 90),
            // Past a u32 from the run's base: a run of its own.
            at(1, 90 + (1 << 32)),
            at(1, 100 + (1 << 32)),
            at(3, 7),
        ];
        let mut places = Places::default();
        for place in pushed {
            places.push(place);
        }
        assert_eq!(places.len(), pushed.len());
        assert_eq!(places.runs.len(), 4);
        for (i, place) in pushed.iter().enumerate() {
            assert_eq!(places.get(i), *place);
            assert_eq!(places.find(*place), Some(i));
        }
        let back = Places::from_bytes(&places.to_bytes(), 8).unwrap();
        assert_eq!(back.runs.len(), 4);
        assert!((0..8).all(|i| back.get(i) == places.get(i)));
        assert!(Places::from_bytes(&places.to_bytes(), 7).is_none());
        assert!(Places::from_bytes(&places.to_bytes()[..50], 8).is_none());
        assert_eq!(places.find(at(0, 60)), None);
        assert_eq!(places.find(at(2, 0)), None);
        assert_eq!(places.find(at(4, 0)), None);
        assert_eq!(Places::default().find(at(0, 0)), None);
    }
}
