//! Resuming from the catalog at open, instead of reading every record.
//!
//! The catalog (see [`listing`](super::listing)) is derived from the log and
//! the item files; the log stays the truth. A checkpoint records how far the
//! log is applied to the catalog: the catalog's cursor (a log position, see
//! [`pack`]) and, beside it in the same transaction, what the open would
//! otherwise learn from the records before it ([`Checkpoint`]: where the log
//! ends in each segment, which segments hold records that could not be read,
//! and the last bytes before the cursor, to tell that the log there is still
//! the one applied).
//!
//! A checkpoint is taken with the store's append gate held exclusively, so that
//! every frame before the log's end is applied: at open, every
//! [`CHECKPOINT_BYTES`] of log, and when the store closes. Changes applied after
//! it (not necessarily durable) record the same cursor, so that after a crash the
//! catalog is at some state at or after its cursor, and the replay of the log
//! from there puts and unlists each item again (idempotent: a put of what is
//! there, or a removal of what is not, changes nothing). The catalog keeps, in
//! the same transactions as the entries, how many items (and frame bytes) each
//! segment lists, so those counts always agree with its entries.
//!
//! The catalog is flushed (made durable) before anything it may point to is
//! destroyed: before a log segment is removed, and before a delete destroys a
//! data key or unlinks an item file.
//!
//! Nothing of this is trusted blindly: a catalog that cannot be opened, has no
//! checkpoint, or whose checkpoint does not match the log (a segment it does not
//! know, other bytes before the cursor), and a store holding keys wrapped by a
//! storage key not given or records sealed without data keys, is read whole as
//! before, and the catalog rebuilt from it (logged).
//!
//! Resuming relies on crypto-shredding for deleted items: a delete destroys the
//! item's data key first, so that its record, wherever it is, is never listed
//! again even if the tombstone's segment goes before the record's (a replay does
//! not learn which older segments tombstones before the cursor supersede).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::index::{Entry, Index};
use super::keys::Wrapping;
use super::listing::Listing;
use super::log::{Position, segment_path};
use super::recover::{Sink, list_segments, read_format};
use super::{Paths, Shared};
use crate::{ItemId, Ledger as _, StoreError};

/// The log bytes appended between two checkpoints while the store runs.
pub(crate) const CHECKPOINT_BYTES: u64 = 16 << 20;

/// The name of the checkpoint's value in the catalog.
pub(crate) const VALUE: &str = "local-checkpoint";

/// Bytes of the log before the cursor that a checkpoint keeps.
const TAIL: usize = 16;

const VERSION: u8 = 1;

/// A log position as the catalog's cursor.
pub(crate) fn pack(at: Position) -> u64 {
    (u64::from(at.segment) << 40) | (at.offset & ((1 << 40) - 1))
}

/// The log position a cursor stands for.
pub(crate) fn unpack(cursor: u64) -> Position {
    Position {
        segment: (cursor >> 40) as u32,
        offset: cursor & ((1 << 40) - 1),
    }
}

/// What an open needs of the log before the cursor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub cursor: Position,
    /// Where the log ends in each segment below the cursor's.
    pub ends: BTreeMap<u32, u64>,
    /// Records that could not be read, per segment.
    pub refused: BTreeMap<u32, u64>,
    /// The last bytes of the log before the cursor (fewer at a segment's start).
    pub tail: Vec<u8>,
    /// The size of the store's log of items (a [`Ledger`](crate::Ledger)),
    /// durable, when the checkpoint was taken; `None` if it kept none. An open
    /// with a log that has fewer leaves (lost since), or with a log where the
    /// store kept none, reads every record, to give each its leaf.
    pub ledger: Option<u64>,
}

impl Checkpoint {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION, u8::from(self.ledger.is_some())];
        out.extend_from_slice(&self.ledger.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&self.cursor.segment.to_be_bytes());
        out.extend_from_slice(&self.cursor.offset.to_be_bytes());
        for map in [&self.ends, &self.refused] {
            out.extend_from_slice(&(map.len() as u32).to_be_bytes());
            for (segment, n) in map {
                out.extend_from_slice(&segment.to_be_bytes());
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        out.push(self.tail.len() as u8);
        out.extend_from_slice(&self.tail);
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Checkpoint> {
        let mut r = bytes;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, rest) = r.split_at_checked(n)?;
            r = rest;
            Some(head)
        };
        if take(1)? != [VERSION] {
            return None;
        }
        let kept = take(1)? == [1];
        let size = u64::from_be_bytes(take(8)?.try_into().ok()?);
        let ledger = kept.then_some(size);
        let segment = u32::from_be_bytes(take(4)?.try_into().ok()?);
        let offset = u64::from_be_bytes(take(8)?.try_into().ok()?);
        let mut maps = [BTreeMap::new(), BTreeMap::new()];
        for map in &mut maps {
            let count = u32::from_be_bytes(take(4)?.try_into().ok()?);
            for _ in 0..count {
                let segment = u32::from_be_bytes(take(4)?.try_into().ok()?);
                let n = u64::from_be_bytes(take(8)?.try_into().ok()?);
                map.insert(segment, n);
            }
        }
        let len = take(1)?[0] as usize;
        let tail = take(len)?.to_vec();
        let [ends, refused] = maps;
        Some(Checkpoint {
            cursor: Position { segment, offset },
            ends,
            refused,
            tail,
            ledger,
        })
    }
}

/// The last bytes before `at` in the segments in `dir`; `None` if the segment
/// is not there or shorter.
pub(crate) fn tail_before(dir: &Path, at: Position) -> Option<Vec<u8>> {
    let file = File::open(segment_path(dir, at.segment)).ok()?;
    let start = at.offset.saturating_sub(TAIL as u64);
    let mut tail = vec![0; (at.offset - start) as usize];
    file.read_exact_at(&mut tail, start).ok()?;
    Some(tail)
}

/// Takes a checkpoint now (see the module docs), unless the store takes none.
pub(crate) async fn take(shared: &Shared) -> Result<(), StoreError> {
    if !shared.checkpoints || shared.leaf_gap() {
        return Ok(());
    }
    let _no_appends = shared.append_gate.write().await;
    // Every listed item's leaf is durable before the checkpoint: the next open
    // checks only the leaves of the items it reads.
    if let Some(ledger) = &shared.ledger {
        ledger.sync().await?;
    }
    shared.checkpoint_now()
}

/// Takes the checkpoint [`Shared::checkpoint_due`] claimed, in a task of its own.
pub(crate) fn take_due(shared: &Arc<Shared>) {
    let shared = shared.clone();
    tokio::spawn(async move {
        if let Err(err) = take(&shared).await {
            tracing::warn!(%err, "cannot checkpoint the catalog; the next open reads more of the log");
        }
        shared.log_end.taking.store(false, Ordering::Release);
    });
}

/// A catalog to resume from, its checkpoint, and how the data keys were
/// found wrapped (never [`Wrapping::Other`]: the store is then read whole).
#[derive(Debug)]
pub(crate) struct Resume<'a> {
    pub listing: &'a Listing,
    pub checkpoint: Checkpoint,
    pub wrapping: Wrapping,
}

/// The catalog's checkpoint, if the log is still the one it was taken of (see
/// the module docs); `None`, and why, if the store must be read whole.
pub(crate) fn checkpoint(
    paths: &Paths,
    listing: &Listing,
    ledger: bool,
) -> Result<Checkpoint, String> {
    let value = listing
        .value(VALUE)
        .map_err(|e| format!("the catalog cannot be read: {e}"))?
        .ok_or("the catalog has no checkpoint")?;
    let checkpoint = Checkpoint::decode(&value).ok_or("the checkpoint cannot be read")?;
    let cursor = listing
        .cursor()
        .map_err(|e| format!("the catalog cannot be read: {e}"))?;
    if cursor != Some(pack(checkpoint.cursor)) {
        return Err("the catalog's cursor is not its checkpoint's".into());
    }
    if ledger && checkpoint.ledger.is_none() {
        return Err("the store kept no log of its items until now".into());
    }
    if read_format(&paths.root).ok().flatten().is_none() {
        return Err("the store has no FORMAT".into());
    }
    let segments = list_segments(&paths.segments, &[]).map_err(|e| e.to_string())?;
    let at = checkpoint.cursor;
    if segments.last().is_none_or(|&last| last < at.segment) {
        return Err("the log ends before the catalog's cursor".into());
    }
    if let Some(unknown) = segments
        .iter()
        .find(|&&s| s < at.segment && !checkpoint.ends.contains_key(&s))
    {
        return Err(format!("segment {unknown} is not known to the checkpoint"));
    }
    if segments.contains(&at.segment)
        && tail_before(&paths.segments, at).as_ref() != Some(&checkpoint.tail)
    {
        return Err("the log before the catalog's cursor is not the one applied".into());
    }
    Ok(checkpoint)
}

/// The changes a replay from the cursor makes, over what the catalog lists.
#[derive(Debug)]
pub(crate) struct Overlay<'a> {
    pub listing: &'a Listing,
    /// Listed by the replay.
    index: Index,
    /// Unlisted by the replay.
    removed: BTreeSet<ItemId>,
}

impl<'a> Overlay<'a> {
    pub(crate) fn new(listing: &'a Listing) -> Overlay<'a> {
        Overlay {
            listing,
            index: Index::default(),
            removed: BTreeSet::new(),
        }
    }

    /// What the replay lists, and the ids it unlists.
    pub(crate) fn into_parts(self) -> (Index, Vec<ItemId>) {
        (self.index, self.removed.into_iter().collect())
    }

    /// Whether the replay lists or unlists item `id`.
    pub(crate) fn touches(&self, id: ItemId) -> bool {
        self.index.get(id).is_some() || self.removed.contains(&id)
    }

    fn current(&mut self, id: ItemId) -> Result<Option<Entry>, StoreError> {
        if let Some(entry) = self.index.remove(id) {
            return Ok(Some(entry));
        }
        if self.removed.contains(&id) {
            return Ok(None);
        }
        self.listing.get(id)
    }
}

impl Sink for Overlay<'_> {
    fn insert(&mut self, entry: Entry) -> Result<Option<Entry>, StoreError> {
        let id = entry.meta.id;
        let old = self.current(id)?;
        self.removed.remove(&id);
        self.index.insert(entry);
        Ok(old)
    }

    fn remove(&mut self, id: ItemId) -> Result<Option<Entry>, StoreError> {
        let old = self.current(id)?;
        self.removed.insert(id);
        Ok(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_and_cursors_round_trip() {
        let checkpoint = Checkpoint {
            cursor: Position {
                segment: 7,
                offset: 123_456,
            },
            ends: [(3, 10), (5, 99)].into(),
            refused: [(5, 2)].into(),
            tail: vec![1, 2, 3],
            ledger: Some(12),
        };
        assert_eq!(
            Checkpoint::decode(&checkpoint.encode()),
            Some(checkpoint.clone())
        );
        assert_eq!(unpack(pack(checkpoint.cursor)), checkpoint.cursor);
        assert_eq!(Checkpoint::decode(&[9]), None);
    }
}
