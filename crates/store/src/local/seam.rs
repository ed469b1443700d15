//! The seam over the store's file operations.
//!
//! Every step that changes or reads the store's files on the way of a commit, a
//! rotation, a large item, a compaction, a removal, recovery or a change of legal
//! holds asks [`Seam::check`] first, naming the [`Step`] and the path. In a running
//! store the seam is empty (one branch per operation). Tests give it a [`Hook`]
//! that fails a step with an I/O error, or stops the store there as a crash would
//! (every later step fails too, so the files stay as they were at that point), and
//! that models what a power loss would keep.

use std::io;
use std::path::Path;
use std::sync::Arc;

/// A file operation of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Step {
    /// Creating one of the store's directories (at open).
    CreateDir,
    /// Fsyncing a directory's parent after creating it (at open).
    SyncNewDir,
    /// Recovery: removing what `tmp/` holds.
    EmptyTmp,
    /// Recovery: fsyncing the last log segment before its tail is trusted.
    SyncLastSegment,
    /// Recovery: reading a log segment.
    ReadSegment,
    /// Recovery: cutting the torn tail of the last segment.
    CutTail,
    /// Recovery: fsyncing the segment after cutting its tail.
    SyncCutTail,
    /// Recovery: creating the first segment of a new store.
    CreateFirstSegment,
    /// Recovery (and the first segment of a new format): fsyncing `segments/`.
    SyncSegments,
    /// Recovery: reading an item file.
    ReadItem,
    /// Recovery: writing the `FORMAT` file (the first open of a store by a
    /// version that binds frames to their place), fsyncing it, renaming it into
    /// place, fsyncing the store's directory.
    WriteFormat,
    /// Commit: writing a group of frames to the current segment.
    AppendWrite,
    /// Commit: the group's `fdatasync`.
    AppendSync,
    /// Commit: cutting the segment back after a failed write or sync.
    AppendCutBack,
    /// Preparing log space: zero-filling the next chunk of the current segment.
    PrepareWrite,
    /// Preparing log space: the `fdatasync` of the zeros.
    PrepareSync,
    /// Preparing log space: cutting the zeros off again after a failure.
    PrepareCutBack,
    /// Rotation: creating the next segment.
    RotateCreate,
    /// Rotation: fsyncing `segments/` so the new segment's entry is durable.
    RotateSyncDir,
    /// Large item: creating `tmp/<id>.part`.
    PartCreate,
    /// Large item: writing a sealed batch.
    PartWrite,
    /// Large item: an early `fdatasync` while the item streams in.
    PartEarlySync,
    /// Large item: the commit's `fdatasync`.
    PartSync,
    /// Large item: renaming the record into `items/`.
    RecordRename,
    /// Large item commit or delete: fsyncing `items/`.
    SyncItems,
    /// Large item: unlinking a record (a delete, or a commit whose `items/` fsync failed).
    RecordUnlink,
    /// Compaction: reading the records to copy.
    CompactRead,
    /// Compaction: writing a damaged record out to `items/`, or fsyncing it.
    SaveDamaged,
    /// Removal: unlinking a segment that lists nothing.
    SegmentUnlink,
    /// Removal: fsyncing `segments/` after the unlink.
    SyncAfterUnlink,
    /// Key store: writing a key file whole (a new one, or one settled at open) to
    /// its temporary file, or removing such a leftover at open.
    KeyFileWrite,
    /// Key store: fsyncing that temporary file.
    KeyFileSync,
    /// Key store: renaming it into place.
    KeyFileRename,
    /// Key store: fsyncing `keys/` after the rename.
    SyncKeys,
    /// Key store, at open: reading a key file to settle it.
    ReadKeys,
    /// Delete: overwriting the item's data key with zeros.
    KeyDestroy,
    /// Delete: the `fdatasync` of the key file after that.
    KeyDestroySync,
    /// Open: reading the `holds` file.
    ReadHolds,
    /// Setting a hold: writing and fsyncing `holds.new`.
    WriteHolds,
    /// Setting a hold: renaming `holds.new` over `holds`.
    RenameHolds,
    /// Setting a hold: fsyncing the store's directory after the rename.
    SyncHoldsDir,
    /// Uploads: creating or writing a piece, or an upload's manifest.
    UploadWrite,
    /// Uploads: the `fdatasync` of a piece.
    UploadSync,
    /// Uploads: renaming a piece or a manifest into place.
    UploadRename,
    /// Uploads: fsyncing an upload's directory, or `uploads/`.
    UploadSyncDir,
    /// Uploads: removing an upload, or what an append left.
    UploadRemove,
    /// Saving a signed checkpoint of the store's log: writing and fsyncing
    /// `ledger/checkpoint.new`, renaming it, fsyncing `ledger/`.
    WriteCheckpoint,
    /// Closing the store's log: writing and fsyncing `ledger/tree.new`,
    /// renaming it, fsyncing `ledger/`.
    WriteTree,
    /// Opening the store's log: reading `ledger/tree`.
    ReadTree,
}

/// What a test puts in the seam.
pub(crate) trait Hook: Send + Sync + std::fmt::Debug {
    /// Called before the store performs `step` on `path`; an error is returned as
    /// that operation's.
    fn before(&self, step: Step, path: &Path) -> io::Result<()>;
}

/// The seam: empty in a running store, a test's [`Hook`] in tests.
#[derive(Clone, Debug, Default)]
pub(crate) struct Seam(Option<Arc<dyn Hook>>);

impl Seam {
    #[cfg(test)]
    pub(crate) fn with(hook: Arc<dyn Hook>) -> Seam {
        Seam(Some(hook))
    }

    /// Asks the hook, if any, whether `step` on `path` may go ahead.
    #[inline]
    pub(crate) fn check(&self, step: Step, path: &Path) -> io::Result<()> {
        match &self.0 {
            None => Ok(()),
            Some(hook) => hook.before(step, path),
        }
    }

    /// Runs `op` as `step` on `path`.
    #[inline]
    pub(crate) fn run<T>(
        &self,
        step: Step,
        path: &Path,
        op: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        self.check(step, path)?;
        op()
    }
}
