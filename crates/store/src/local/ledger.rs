//! The local store's [`Ledger`]: leaves as frames of kind `Leaf` in segments of
//! their own, `ledger/NNNNNNNN.log`, appended by a second group committer (the
//! same [`Log`] as the items', so with the same prepared space, one `fdatasync`
//! per group, and the same handling of failures). A leaf's index is its place
//! in the ledger's segments; nothing in them is ever compacted or removed.
//!
//! An item's `stored` leaf is written beside its record (the record's group
//! commit and the leaf's write run at the same time, see
//! [`writer`](super::writer)). It is synced in its own group when its sender
//! gets a receipt ([`ItemWriter::sync_leaf_at_commit`](crate::ItemWriter)),
//! else made durable with the next leaf that must be (a delete's, a read's)
//! or before the next checkpoint is signed ([`Ledger::sync`], which returns
//! at once when nothing unsynced was appended); so a crash can keep one
//! without the other, and
//! [`reconcile`] brings the two in line at open (a `stored` leaf says nothing
//! its item's record does not: a lost one is written again, the same).
//!
//! `ledger/checkpoint` holds the last signed checkpoint the server saved
//! (replaced whole: temporary file, fsync, rename, fsync of `ledger/`).
//!
//! `ledger/tree` holds the tree and the leaves' places as they were when the
//! ledger last closed with every leaf durable (replaced whole the same way,
//! with a SHA-256 of its bytes at the end). An open that has no item whose
//! leaf it must look for (the catalog resumed with nothing to replay) takes it
//! instead of reading every leaf, if the segments are still those it was saved
//! with: the same segments, and in the last one the same leaves at the same
//! places (compared with the hashes the tree keeps). Anything else, and the open
//! reads every leaf as before. The leaves it did not read are checked against
//! the tree and the last signed checkpoint after the open
//! ([`Ledger::read_at_open`]).
//!
//! In memory, about 8 bytes a leaf: the tree keeps the roots of complete
//! subtrees (about 4 bytes a leaf) and only the last [`KEEP_RECENT`] leaf
//! hashes, and each leaf's place takes about 4 ([`Places`]). A proof that needs
//! older leaf hashes reads their chunk of 16 leaves back from the segments
//! (checked against the root the tree kept); the receipts of new items never
//! need to.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ferry_tlog::{
    Entry, Event, Hash, LeafSource, MEMO_MIN_LEAVES, ProofError, Tree, empty_root, leaf_hash,
};

use super::file::joined;
use super::frame::{self, HEADER_LEN, Kind, Origin, Parsed, Unsealed};
use super::fsutil::{create_private_file, io_err, sync_dir};
use super::index::Index;
use super::log::{Log, OnDurable, Position, SegmentEnd, segment_path};
use super::recover::{cut_tail, list_segments};
use super::seam::{Seam, Step};
use crate::ledger::{Ledger, Rescan, now, proof_error, seal_sha256, stored_entry, unsealed};
use crate::{ItemId, StoreError};

mod places;

use places::Places;

const CHECKPOINT: &str = "checkpoint";
const CHECKPOINT_NEW: &str = "checkpoint.new";
const TREE: &str = "tree";
const TREE_NEW: &str = "tree.new";
/// The files in `ledger/` that are not segments.
const NOT_SEGMENTS: [&str; 4] = [CHECKPOINT, CHECKPOINT_NEW, TREE, TREE_NEW];
/// The first bytes of `ledger/tree`.
const TREE_MAGIC: &[u8] = b"ferry-ledger-tree/v1\n";

/// The leaf hashes the tree keeps in memory (2 MiB): new items' receipts and
/// the checkpoints of recent sizes need no others. The store's own tests keep
/// only two chunks, so that their proofs read leaves back from disk.
const KEEP_RECENT: u64 = if cfg!(test) { 32 } else { 1 << 16 };

/// The tree and where each leaf is.
#[derive(Debug)]
struct State {
    tree: Tree,
    places: Places,
}

impl Default for State {
    fn default() -> Self {
        Self {
            tree: Tree::keeping(KEEP_RECENT),
            places: Places::default(),
        }
    }
}

impl State {
    /// Takes in the leaves of a durable group (see [`OnDurable`]).
    fn take_group(&mut self, segment: u32, offset: u64, bytes: &[u8]) {
        let origin = Origin {
            segment,
            offset,
            unbound: false,
        };
        let mut at = 0;
        while let Parsed::Frame { payload, end, .. } = frame::parse(bytes, at, origin) {
            self.tree.append(&bytes[payload]);
            self.places.push(Position {
                segment,
                offset: offset + at as u64,
            });
            at = end;
        }
    }
}

/// The items whose leaves an open must learn (see [`Known`]).
pub(crate) enum Wanted {
    /// None: the open may take the saved tree.
    None,
    /// These.
    These(HashSet<ItemId>),
    /// Every item.
    All,
}

/// What the ledger's segments are read for.
enum Purpose {
    /// To open the ledger: the tree, where each leaf is, what they say of
    /// the items wanted (`None`: every one).
    Open(Option<HashSet<ItemId>>),
    /// To check them: the tree, and its root at `size` leaves.
    Check { size: u64 },
}

/// What reading the ledger's segments found.
struct Scan {
    state: State,
    /// For an open: what the leaves say of each item.
    items: Known,
    purpose: Purpose,
    /// For a check: the root of the tree of the size asked, once read.
    root_at: Option<Hash>,
    problems: Vec<String>,
    /// The last segment, where the log ends in it, and where to cut a torn tail.
    last: Option<(u32, SegmentEnd, Option<u64>)>,
    ends: HashMap<u32, u64>,
}

/// The local store's log of what happens to items.
pub(crate) struct LocalLedger {
    dir: PathBuf,
    log: Log,
    state: Arc<Mutex<State>>,
    problems: Vec<String>,
    seam: Seam,
    /// Whether the open read every leaf (else it took `ledger/tree`).
    read_whole: bool,
    /// Set when the ledger closes: a rescan still reading stops.
    closed: Arc<AtomicBool>,
}

impl Drop for LocalLedger {
    /// A ledger closed with every leaf durable saves its tree (see the module
    /// docs), so that the next open need not read every leaf first.
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        if !self.log.is_all_durable() {
            return;
        }
        let bytes = tree_bytes(
            &lock(&self.state),
            self.log.current_segment(),
            &self.log.ends(),
        );
        if let Err(err) = replace_file(&self.dir, &self.seam, Step::WriteTree, TREE, &bytes) {
            tracing::warn!(%err, "cannot save the tree of the store's log; the next open reads every leaf");
        }
    }
}

impl std::fmt::Debug for LocalLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLedger")
            .field("dir", &self.dir)
            .field("size", &self.size())
            .finish_non_exhaustive()
    }
}

/// Per item the leaves name: the index of its `stored` leaf, and whether a
/// later leaf says it is gone (deleted, expired, aborted; `kept` says it is
/// back). For [`reconcile`].
pub(crate) type Known = HashMap<ItemId, (u64, bool)>;

impl LocalLedger {
    /// Whether every leaf appended is durable.
    pub(crate) fn is_durable(&self) -> bool {
        self.log.is_all_durable()
    }

    /// Opens (creating it) the ledger in `dir`: reads every leaf, cuts a torn
    /// tail, starts the committer. Returns what it knows of the `wanted` items.
    /// With none wanted, it may take its saved tree instead of reading every
    /// leaf (see the module docs).
    pub(crate) fn open(
        dir: &Path,
        segment_size: u64,
        seam: &Seam,
        wanted: Wanted,
    ) -> Result<(LocalLedger, Known), StoreError> {
        let (saved, wanted) = match wanted {
            Wanted::None => (saved_tree(dir, seam), Some(HashSet::new())),
            Wanted::These(ids) => (None, Some(ids)),
            Wanted::All => (None, None),
        };
        let read_whole = saved.is_none();
        let mut scan = match saved {
            Some(scan) => scan,
            None => scan(dir, seam, &AtomicBool::new(false), Purpose::Open(wanted))?,
        };
        scan.state.tree.shrink_to_fit();
        scan.state.places.shrink_to_fit();
        for problem in &scan.problems {
            tracing::error!(%problem, "the store's log is damaged");
        }
        let (segment, end) = match scan.last {
            Some((segment, end, None)) => {
                // Leaves appended unsynced before a restart are made durable
                // now: the store checkpoints its catalog on their strength.
                let path = segment_path(dir, segment);
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_err("opening the log segment", &path))?;
                seam.run(Step::SyncLastSegment, &path, || file.sync_all())
                    .map_err(io_err("syncing the log segment", &path))?;
                (segment, end)
            }
            Some((segment, _, Some(at))) => {
                tracing::warn!(
                    segment,
                    offset = at,
                    "cutting the torn tail of the store's log"
                );
                cut_tail(&segment_path(dir, segment), at, seam)?;
                (segment, SegmentEnd { len: at, size: at })
            }
            None => {
                let path = segment_path(dir, 0);
                drop(create_private_file(seam, Step::CreateFirstSegment, &path)?);
                sync_dir(seam, Step::SyncSegments, dir)?;
                (0, SegmentEnd { len: 0, size: 0 })
            }
        };
        let state = Arc::new(Mutex::new(scan.state));
        let shared = state.clone();
        let on_durable: OnDurable = Box::new(move |segment, offset, bytes| {
            lock(&shared).take_group(segment, offset, bytes);
        });
        let log = Log::start(
            dir.to_owned(),
            segment,
            end,
            scan.ends,
            segment_size,
            seam.clone(),
            Some(on_durable),
        )?;
        let ledger = LocalLedger {
            dir: dir.to_owned(),
            log,
            state,
            problems: scan.problems,
            seam: seam.clone(),
            read_whole,
            closed: Arc::new(AtomicBool::new(false)),
        };
        Ok((ledger, scan.items))
    }

    /// Appends leaves, one after the other; the index of the first, once they
    /// are durable.
    pub(crate) async fn append_all(&self, entries: Vec<Entry>) -> Result<u64, StoreError> {
        let at = self.log.append(frames(&entries)).await?;
        Ok(self.index_of(at))
    }

    /// Appends an item's `stored` leaf, written but not yet durable: it is made
    /// durable before any checkpoint that holds it is signed (see
    /// [`Ledger::sync`]), and if a crash comes first, the next open appends it
    /// again from the item's record, which says all it says.
    pub(crate) async fn append_stored(&self, entry: &Entry) -> Result<u64, StoreError> {
        let at = self
            .log
            .append_unsynced(frames(std::slice::from_ref(entry)))
            .await?;
        Ok(self.index_of(at))
    }

    /// The index of the leaf at `at`, taken in already.
    fn index_of(&self, at: Position) -> u64 {
        let state = lock(&self.state);
        let index = state
            .places
            .find(at)
            .expect("a written group is taken in before it is answered");
        index as u64
    }

    /// `f` of the tree and the leaves on disk it may need.
    fn tree<T>(
        &self,
        f: impl FnOnce(&Tree, &dyn LeafSource) -> Result<T, ProofError>,
    ) -> Result<T, StoreError> {
        let state = lock(&self.state);
        let source = OnDisk {
            dir: &self.dir,
            places: &state.places,
        };
        f(&state.tree, &source).map_err(proof_error)
    }
}

/// The leaf hashes the tree no longer keeps, read back from the segments.
struct OnDisk<'a> {
    dir: &'a Path,
    places: &'a Places,
}

impl LeafSource for OnDisk<'_> {
    fn chunk(&self, start: u64) -> Result<Vec<Hash>, ProofError> {
        let end = start.saturating_add(MEMO_MIN_LEAVES);
        let places: Vec<(u64, Position)> = (start..end)
            .filter_map(|i| {
                let at = usize::try_from(i).ok().filter(|&i| i < self.places.len())?;
                Some((i, self.places.get(at)))
            })
            .collect();
        let mut hashes = Vec::with_capacity(places.len());
        read_frames(self.dir, &places, |_, payload| {
            hashes.push(leaf_hash(payload));
            Ok(())
        })
        .map_err(|err| {
            tracing::error!(%err, start, "cannot read leaves of the store's log back");
            ProofError::LeavesUnreadable {
                start,
                reason: "reading them failed (the server's log says why)".to_owned(),
            }
        })?;
        Ok(hashes)
    }
}

/// Leaf frames of `entries`.
fn frames(entries: &[Entry]) -> Vec<Unsealed> {
    entries
        .iter()
        .map(|entry| {
            let mut bytes = frame::start();
            bytes.extend_from_slice(entry.as_bytes());
            Unsealed::new(Kind::Leaf, bytes)
        })
        .collect()
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Brings the log in line with the items recovery listed (see the module
/// docs): sets each listed item's `log_index` that has a leaf, and returns the
/// leaves to append, each with the item whose `stored` leaf it is. `blind`:
/// some records could not be read, so an unlisted item may exist; no `aborted`
/// leaf is written then.
pub(crate) fn reconcile(
    known: &Known,
    index: &mut Index,
    blind: bool,
) -> Vec<(Option<ItemId>, Entry)> {
    let mut appends = Vec::new();
    let mut late = Vec::new();
    let ids: Vec<ItemId> = index.ids().collect();
    for &id in &ids {
        match known.get(&id) {
            Some(&(leaf, gone)) => {
                index.set_log_index(id, leaf);
                if gone {
                    appends.push((None, Entry::kept(&id.to_string(), &now())));
                }
            }
            // No leaf: a crash came between the two, or the store was written
            // before it kept a log. Oldest first, as `ids` are.
            None => late.push(id),
        }
    }
    for id in late {
        if let Some(entry) = index.get(id) {
            appends.push((Some(id), stored_entry(&entry.meta)));
        }
    }
    if !blind {
        let mut aborted: Vec<ItemId> = known
            .iter()
            .filter(|(id, (_, gone))| !gone && ids.binary_search(id).is_err())
            .map(|(id, _)| *id)
            .collect();
        aborted.sort_unstable();
        for id in aborted {
            appends.push((None, Entry::aborted(&id.to_string(), &now())));
        }
    }
    appends
}

#[async_trait::async_trait]
impl Ledger for LocalLedger {
    async fn append(&self, entries: Vec<Entry>) -> Result<u64, StoreError> {
        self.append_all(entries).await
    }

    fn size(&self) -> u64 {
        lock(&self.state).tree.len()
    }

    async fn sync(&self) -> Result<(), StoreError> {
        self.log.sync().await
    }

    fn root(&self, size: u64) -> Result<Hash, StoreError> {
        self.tree(|tree, leaves| tree.root_at_from(size, leaves))
    }

    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        self.tree(|tree, leaves| tree.inclusion_proof_from(index, size, leaves))
    }

    fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>, StoreError> {
        self.tree(|tree, leaves| tree.consistency_proof_from(from, to, leaves))
    }

    async fn leaves(&self, from: u64, limit: usize) -> Result<Vec<(u64, Entry)>, StoreError> {
        let places: Vec<(u64, Position)> = {
            let state = lock(&self.state);
            let start = usize::try_from(from)
                .unwrap_or(usize::MAX)
                .min(state.places.len());
            let end = start.saturating_add(limit).min(state.places.len());
            (start..end)
                .map(|i| (i as u64, state.places.get(i)))
                .collect()
        };
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || read_leaves(&dir, &places))
            .await
            .map_err(joined)?
    }

    async fn checkpoint(&self) -> Result<Option<String>, StoreError> {
        let path = self.dir.join(CHECKPOINT);
        match tokio::fs::read_to_string(&path).await {
            Ok(note) => Ok(Some(note)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(StoreError::io("reading", path, err)),
        }
    }

    async fn save_checkpoint(&self, note: &str) -> Result<(), StoreError> {
        let (dir, seam, note) = (self.dir.clone(), self.seam.clone(), note.to_owned());
        tokio::task::spawn_blocking(move || write_checkpoint(&dir, &seam, &note))
            .await
            .map_err(joined)?
    }

    fn problems(&self) -> Vec<String> {
        self.problems.clone()
    }

    fn read_at_open(&self) -> bool {
        self.read_whole
    }

    async fn rescan(&self, size: u64) -> Result<Rescan, StoreError> {
        let (dir, seam, closed) = (self.dir.clone(), self.seam.clone(), self.closed.clone());
        let scan = tokio::task::spawn_blocking(move || {
            scan(&dir, &seam, &closed, Purpose::Check { size })
        })
        .await
        .map_err(joined)??;
        let mut problems = scan.problems;
        let fresh = &scan.state.tree;
        let (len, root) = {
            let len = lock(&self.state).tree.len();
            (len, self.root(fresh.len().min(len)))
        };
        // Leaves appended since the scan read their segment are not a problem.
        if fresh.len() > len {
            problems.push(format!(
                "the disk holds {} leaves, more than the {len} in memory",
                fresh.len()
            ));
        } else if root.ok() != Some(fresh.root()) {
            problems.push(format!(
                "the {} leaves on disk are not those in memory (their root differs)",
                fresh.len()
            ));
        }
        Ok(Rescan {
            size: fresh.len(),
            root_at: scan.root_at,
            problems,
        })
    }
}

/// Reads the leaves at `places`, each checked as a frame and as a leaf.
fn read_leaves(dir: &Path, places: &[(u64, Position)]) -> Result<Vec<(u64, Entry)>, StoreError> {
    let mut leaves = Vec::with_capacity(places.len());
    read_frames(dir, places, |index, payload| {
        let entry = Entry::parse(payload).map_err(|_| damaged(index))?;
        leaves.push((index, entry));
        Ok(())
    })?;
    Ok(leaves)
}

fn damaged(index: u64) -> StoreError {
    StoreError::LogDamaged(format!("leaf {index} cannot be read back"))
}

/// Hands `f` the payload of each leaf frame at `places`, checked as a frame.
fn read_frames(
    dir: &Path,
    places: &[(u64, Position)],
    mut f: impl FnMut(u64, &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut files: HashMap<u32, File> = HashMap::new();
    for &(index, at) in places {
        let path = segment_path(dir, at.segment);
        let file = match files.entry(at.segment) {
            std::collections::hash_map::Entry::Occupied(file) => file.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(File::open(&path).map_err(io_err("opening", &path))?)
            }
        };
        let mut header = [0; HEADER_LEN];
        file.read_exact_at(&mut header, at.offset)
            .map_err(io_err("reading", &path))?;
        let len = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes")) as usize;
        let mut bytes = vec![0; HEADER_LEN + len.min(frame::MAX_PAYLOAD)];
        file.read_exact_at(&mut bytes, at.offset)
            .map_err(io_err("reading", &path))?;
        let origin = Origin {
            segment: at.segment,
            offset: at.offset,
            unbound: false,
        };
        let Parsed::Frame { payload, .. } = frame::parse(&bytes, 0, origin) else {
            return Err(damaged(index));
        };
        f(index, &bytes[payload])?;
    }
    Ok(())
}

/// Reads every leaf in `dir` (creating it if needed), unless `stop` is set
/// meanwhile (the ledger closed).
fn scan(dir: &Path, seam: &Seam, stop: &AtomicBool, purpose: Purpose) -> Result<Scan, StoreError> {
    let segments = list_segments(dir, &NOT_SEGMENTS)?;
    let mut scan = Scan {
        state: State::default(),
        items: HashMap::new(),
        root_at: matches!(purpose, Purpose::Check { size: 0 }).then(empty_root),
        purpose,
        problems: Vec::new(),
        last: None,
        ends: HashMap::new(),
    };
    for (i, &number) in segments.iter().enumerate() {
        if stop.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("the store's log closed".into()));
        }
        let last = i + 1 == segments.len();
        let path = segment_path(dir, number);
        let data = seam
            .run(Step::ReadSegment, &path, || fs::read(&path))
            .map_err(io_err("reading the store's log segment", &path))?;
        let size = data.len() as u64;
        let (len, torn) = read_segment(&data, number, last, |found| match found {
            Found::Leaf { payload, offset } => take_leaf(&mut scan, payload, number, offset),
            Found::Problem(problem) => scan.problems.push(problem),
        });
        if last {
            scan.last = Some((number, SegmentEnd { len, size }, torn));
        } else {
            scan.ends.insert(number, len);
        }
    }
    Ok(scan)
}

/// What [`read_segment`] finds, in order.
enum Found<'a> {
    /// A leaf's payload, and the offset of its frame.
    Leaf { payload: &'a [u8], offset: u64 },
    /// Damage: frames that are not leaves, bytes that are not frames.
    Problem(String),
}

/// Reads the frames of segment `number` (`data`, its whole file) and hands
/// `found` each leaf and each problem, in order. In the `last` segment, bytes
/// that are not frames up to the zeros at its end are a torn tail, not damage.
/// Returns where the log ends in it, and where its torn tail begins, if any.
fn read_segment<'a>(
    data: &'a [u8],
    number: u32,
    last: bool,
    mut found: impl FnMut(Found<'a>),
) -> (u64, Option<u64>) {
    let content = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let origin = Origin {
        segment: number,
        offset: 0,
        unbound: false,
    };
    let mut at = 0;
    let mut torn = None;
    while at < content {
        match frame::parse(data, at, origin) {
            Parsed::Frame {
                kind: Kind::Leaf,
                payload,
                end,
            } => {
                found(Found::Leaf {
                    payload: &data[payload],
                    offset: at as u64,
                });
                at = end;
            }
            Parsed::Frame { end, .. } => {
                found(Found::Problem(format!(
                    "segment {number}, offset {at}: a frame that is not a leaf"
                )));
                at = end;
            }
            Parsed::Invalid => match frame::resync(data, at, origin) {
                Some(next) => {
                    found(Found::Problem(format!(
                        "segment {number}, offset {at}: {} damaged bytes where a leaf should be",
                        next - at
                    )));
                    at = next;
                }
                None if last => {
                    torn = Some(at as u64);
                    break;
                }
                None => {
                    found(Found::Problem(format!(
                        "segment {number} ends with {} bytes that are not leaves",
                        content - at
                    )));
                    break;
                }
            },
        }
    }
    let len = if torn.is_some() || at >= content {
        at as u64
    } else {
        data.len() as u64
    };
    (len, torn)
}

/// Takes in one leaf read from disk.
fn take_leaf(scan: &mut Scan, bytes: &[u8], segment: u32, offset: u64) {
    let index = scan.state.tree.append(bytes);
    match scan.purpose {
        Purpose::Open(_) => scan.state.places.push(Position { segment, offset }),
        Purpose::Check { size } if size == index + 1 => scan.root_at = Some(scan.state.tree.root()),
        Purpose::Check { .. } => {}
    }
    let entry = match Entry::parse(bytes) {
        Ok(entry) => entry,
        Err(err) => {
            scan.problems.push(format!("leaf {index}: {err}"));
            return;
        }
    };
    let Ok(id) = entry.id().parse::<ItemId>() else {
        scan.problems
            .push(format!("leaf {index}: an id that is not an item id"));
        return;
    };
    let Purpose::Open(wanted) = &scan.purpose else {
        return;
    };
    match entry.event() {
        Event::Stored if wanted.as_ref().is_none_or(|ids| ids.contains(&id)) => {
            scan.items.insert(id, (index, false));
        }
        Event::Stored => {}
        Event::Deleted | Event::Expired | Event::Aborted => {
            if let Some(item) = scan.items.get_mut(&id) {
                item.1 = true;
            }
        }
        Event::Kept => {
            if let Some(item) = scan.items.get_mut(&id) {
                item.1 = false;
            }
        }
        Event::Read | Event::Hold | Event::Release => {}
    }
}

/// Replaces `ledger/checkpoint` with `note`, durably.
fn write_checkpoint(dir: &Path, seam: &Seam, note: &str) -> Result<(), StoreError> {
    replace_file(
        dir,
        seam,
        Step::WriteCheckpoint,
        CHECKPOINT,
        note.as_bytes(),
    )
}

/// Replaces `dir/name` with `bytes`, durably: `name.new` written and fsynced,
/// renamed into place, `dir` fsynced.
fn replace_file(
    dir: &Path,
    seam: &Seam,
    step: Step,
    name: &str,
    bytes: &[u8],
) -> Result<(), StoreError> {
    let path = dir.join(name);
    let temp = dir.join(format!("{name}.new"));
    seam.run(step, &temp, || {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })
    .map_err(io_err("writing", &temp))?;
    seam.run(step, &path, || fs::rename(&temp, &path))
        .map_err(io_err("renaming into place", &path))?;
    sync_dir(seam, step, dir)
}

/// `ledger/tree`'s bytes (see the module docs): the magic, the last segment,
/// where the log ends in the others, the tree, the places, their SHA-256.
fn tree_bytes(state: &State, last: u32, ends: &HashMap<u32, u64>) -> Vec<u8> {
    let mut out = TREE_MAGIC.to_vec();
    out.extend_from_slice(&last.to_le_bytes());
    let mut ends: Vec<(&u32, &u64)> = ends.iter().collect();
    ends.sort_unstable();
    out.extend_from_slice(&(ends.len() as u64).to_le_bytes());
    for (segment, end) in ends {
        out.extend_from_slice(&segment.to_le_bytes());
        out.extend_from_slice(&end.to_le_bytes());
    }
    for part in [state.tree.to_bytes(), state.places.to_bytes()] {
        out.extend_from_slice(&(part.len() as u64).to_le_bytes());
        out.extend_from_slice(&part);
    }
    seal_sha256(&mut out);
    out
}

/// The ledger as `ledger/tree` saved it, if the segments are still those it
/// was saved with (see the module docs); `None` (logged) if not, or if there is
/// none.
fn saved_tree(dir: &Path, seam: &Seam) -> Option<Scan> {
    let path = dir.join(TREE);
    let bytes = seam.run(Step::ReadTree, &path, || fs::read(&path)).ok()?;
    let scan = tree_from_bytes(&bytes).and_then(|(state, last, ends)| {
        let segment = last_segment_as_saved(dir, seam, &state, last, &ends)?;
        Some(Scan {
            state,
            items: HashMap::new(),
            purpose: Purpose::Open(Some(HashSet::new())),
            root_at: None,
            problems: Vec::new(),
            last: Some((last, segment, None)),
            ends,
        })
    });
    match &scan {
        Some(scan) => tracing::info!(
            leaves = scan.state.tree.len(),
            "the store's log opened from its saved tree; its leaves are checked in the background"
        ),
        None => tracing::info!(
            "the saved tree of the store's log is not that of its segments; reading every leaf"
        ),
    }
    scan
}

/// The parts [`tree_bytes`] wrote, if `bytes` are such and whole.
fn tree_from_bytes(bytes: &[u8]) -> Option<(State, u32, HashMap<u32, u64>)> {
    let mut rest = unsealed(bytes, TREE_MAGIC)?;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let last = u32::from_le_bytes(take(4)?.try_into().ok()?);
    let count = u64::from_le_bytes(take(8)?.try_into().ok()?);
    let mut ends = HashMap::new();
    for _ in 0..count {
        let segment = u32::from_le_bytes(take(4)?.try_into().ok()?);
        ends.insert(segment, u64::from_le_bytes(take(8)?.try_into().ok()?));
    }
    let mut part = || -> Option<&[u8]> {
        let len = u64::from_le_bytes(take(8)?.try_into().ok()?);
        take(usize::try_from(len).ok()?)
    };
    let tree = Tree::from_bytes(part()?)?;
    let places = Places::from_bytes(part()?, tree.len())?;
    if !rest.is_empty() {
        return None;
    }
    Some((State { tree, places }, last, ends))
}

/// Where the log ends in segment `last`, if the segments are those `state`
/// was saved with: `last` is the last, the others are those of `ends`, and
/// `last` holds the leaves `state` places there, the kept ones with the hashes
/// kept, and nothing else but zeros after them.
fn last_segment_as_saved(
    dir: &Path,
    seam: &Seam,
    state: &State,
    last: u32,
    ends: &HashMap<u32, u64>,
) -> Option<SegmentEnd> {
    let segments = list_segments(dir, &NOT_SEGMENTS).ok()?;
    let (&found_last, others) = segments.split_last()?;
    if found_last != last
        || others.len() != ends.len()
        || !others.iter().all(|n| ends.contains_key(n))
    {
        return None;
    }
    let path = segment_path(dir, last);
    let data = seam
        .run(Step::ReadSegment, &path, || fs::read(&path))
        .ok()?;
    let mut found = Vec::new();
    let mut damaged = false;
    let (len, torn) = read_segment(&data, last, true, |leaf| match leaf {
        Found::Leaf { payload, offset } => found.push((offset, leaf_hash(payload))),
        Found::Problem(_) => damaged = true,
    });
    if damaged || torn.is_some() {
        return None;
    }
    let first = state.places.len().checked_sub(found.len())?;
    if first > 0 && state.places.get(first - 1).segment == last {
        return None;
    }
    for (index, (offset, hash)) in (first..).zip(found) {
        let place = Position {
            segment: last,
            offset,
        };
        let kept = state.tree.leaf(index as u64);
        if state.places.get(index) != place || kept.is_some_and(|kept| kept != hash) {
            return None;
        }
    }
    Some(SegmentEnd {
        len,
        size: data.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use ferry_tlog::{verify_consistency, verify_inclusion};

    use super::*;

    /// A ledger of 200 leaves in segments of 4 KiB (a chunk of 16 leaves
    /// often spans two), keeping only the last [`KEEP_RECENT`] leaf hashes.
    async fn ledger_of_200(dir: &Path) -> (LocalLedger, Vec<Entry>) {
        let (ledger, _) = open(dir, false);
        let entries = append_some(&ledger, 200).await;
        (ledger, entries)
    }

    /// The ledger in `dir`, in segments of 4 KiB; from its saved tree if
    /// `saved` and it can.
    fn open(dir: &Path, saved: bool) -> (LocalLedger, Known) {
        let wanted = if saved { Wanted::None } else { Wanted::All };
        LocalLedger::open(dir, 4096, &Seam::default(), wanted).unwrap()
    }

    #[tokio::test]
    async fn an_open_learns_the_leaves_of_the_items_wanted_only() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<ItemId> = (0..40).map(|_| ItemId::new()).collect();
        let (ledger, _) = open(dir.path(), false);
        let stored = |id: &ItemId| {
            Entry::stored(
                &id.to_string(),
                &"ab".repeat(32),
                5,
                "dictionary",
                "json",
                &now(),
            )
        };
        ledger
            .append_all(ids.iter().map(stored).collect())
            .await
            .unwrap();
        ledger
            .append_all(vec![Entry::aborted(&ids[1].to_string(), &now())])
            .await
            .unwrap();
        drop(ledger);
        let (_, all) = open(dir.path(), false);
        assert_eq!(all.len(), 40);
        assert_eq!(all[&ids[1]], (1, true));
        let these = HashSet::from([ids[1], ids[7]]);
        let (_, known) =
            LocalLedger::open(dir.path(), 4096, &Seam::default(), Wanted::These(these)).unwrap();
        assert_eq!(
            known,
            HashMap::from([(ids[1], (1, true)), (ids[7], (7, false))])
        );
    }

    /// Appends `n` leaves, seven to a group.
    async fn append_some(ledger: &LocalLedger, n: usize) -> Vec<Entry> {
        let entries: Vec<Entry> = (0..n)
            .map(|_| Entry::aborted(&ItemId::new().to_string(), &now()))
            .collect();
        for group in entries.chunks(7) {
            ledger.append_all(group.to_vec()).await.unwrap();
        }
        entries
    }

    /// The ledger's size, root and a few proofs.
    fn answers(ledger: &LocalLedger) -> Vec<Vec<Hash>> {
        let size = ledger.size();
        let mut answers = vec![vec![ledger.root(size).unwrap()]];
        for index in (0..size).step_by(13) {
            answers.push(ledger.inclusion_proof(index, size).unwrap());
            answers.push(ledger.consistency_proof(index + 1, size).unwrap());
        }
        answers
    }

    #[tokio::test]
    async fn a_closed_ledger_reopens_from_its_saved_tree_as_if_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _) = ledger_of_200(dir.path()).await;
        let before = answers(&ledger);
        drop(ledger);
        let (saved, _) = open(dir.path(), true);
        assert!(!saved.read_at_open());
        assert_eq!(answers(&saved), before);
        assert!(saved.rescan(200).await.unwrap().problems.is_empty());
        // It goes on from there, and the next open (either way) agrees.
        append_some(&saved, 30).await;
        let after = answers(&saved);
        drop(saved);
        let (saved, _) = open(dir.path(), true);
        assert!(!saved.read_at_open());
        assert_eq!(answers(&saved), after);
        drop(saved);
        let (whole, _) = open(dir.path(), false);
        assert!(whole.read_at_open());
        assert_eq!(answers(&whole), after);
    }

    #[tokio::test]
    async fn a_rescan_finds_the_roots_of_the_tree_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _) = ledger_of_200(dir.path()).await;
        for size in [0, 1, 16, 17, 150, 200] {
            let rescan = ledger.rescan(size).await.unwrap();
            assert_eq!(rescan.size, 200);
            assert!(rescan.problems.is_empty(), "{:?}", rescan.problems);
            assert_eq!(
                rescan.root_at,
                Some(ledger.root(size).unwrap()),
                "size {size}"
            );
        }
        assert_eq!(ledger.rescan(201).await.unwrap().root_at, None);
    }

    #[tokio::test]
    async fn a_rescan_stops_once_the_ledger_closes() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _) = ledger_of_200(dir.path()).await;
        let closed = ledger.closed.clone();
        assert!(
            scan(
                dir.path(),
                &Seam::default(),
                &closed,
                Purpose::Check { size: 0 }
            )
            .is_ok()
        );
        drop(ledger);
        assert!(matches!(
            scan(
                dir.path(),
                &Seam::default(),
                &closed,
                Purpose::Check { size: 0 }
            ),
            Err(StoreError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn a_saved_tree_that_is_not_of_the_segments_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join(TREE);
        let (ledger, _) = ledger_of_200(dir.path()).await;
        drop(ledger);
        let saved = fs::read(&tree).unwrap();
        // Leaves appended since: the last segment, or the segments, differ.
        for more in [1, 40] {
            let (ledger, _) = open(dir.path(), true);
            append_some(&ledger, more).await;
            let expected = answers(&ledger);
            drop(ledger);
            fs::write(&tree, &saved).unwrap();
            let (ledger, _) = open(dir.path(), true);
            assert!(ledger.read_at_open(), "{more} leaves after it");
            assert_eq!(answers(&ledger), expected);
        }
        // A changed byte anywhere in the file.
        drop(open(dir.path(), false));
        let good = fs::read(&tree).unwrap();
        for at in [0, 30, good.len() / 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            fs::write(&tree, bad).unwrap();
            assert!(open(dir.path(), true).0.read_at_open(), "byte {at}");
        }
        // None at all.
        fs::remove_file(&tree).unwrap();
        assert!(open(dir.path(), true).0.read_at_open());
        // A leaf of the last segment changed on disk since.
        drop(open(dir.path(), false));
        let last = *list_segments(dir.path(), &NOT_SEGMENTS)
            .unwrap()
            .last()
            .unwrap();
        let path = segment_path(dir.path(), last);
        let mut bytes = fs::read(&path).unwrap();
        bytes[HEADER_LEN + 4] ^= 1;
        fs::write(&path, bytes).unwrap();
        let (ledger, _) = open(dir.path(), true);
        assert!(ledger.read_at_open());
        assert!(!ledger.problems().is_empty());
    }

    #[tokio::test]
    async fn a_leaf_changed_in_an_older_segment_fails_the_check_after_an_open_from_the_saved_tree()
    {
        let dir = tempfile::tempdir().unwrap();
        let signer = ferry_tlog::Signer::generate("test.example/log").unwrap();
        let (ledger, _) = ledger_of_200(dir.path()).await;
        let ledger: Arc<dyn Ledger> = Arc::new(ledger);
        let notary = crate::Notary::start(signer.clone(), ledger.clone())
            .await
            .unwrap();
        assert!(notary.health().ok);
        drop((notary, ledger));
        let at = {
            let (ledger, _) = open(dir.path(), false);
            lock(&ledger.state).places.get(3)
        };
        assert_eq!(at.segment, 0);
        let path = segment_path(dir.path(), 0);
        let mut bytes = fs::read(&path).unwrap();
        bytes[at.offset as usize + HEADER_LEN + 4] ^= 1;
        fs::write(&path, bytes).unwrap();
        let (ledger, _) = open(dir.path(), true);
        assert!(!ledger.read_at_open());
        let notary = crate::Notary::start(signer, Arc::new(ledger))
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while notary.health().ok {
            assert!(
                std::time::Instant::now() < deadline,
                "the check never failed"
            );
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(!notary.health().problems.is_empty());
    }

    #[tokio::test]
    async fn proofs_of_leaves_no_longer_in_memory_are_read_back_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, entries) = ledger_of_200(dir.path()).await;
        assert!(list_segments(dir.path(), &[]).unwrap().len() > 5);
        assert_eq!(
            lock(&ledger.state).tree.leaf(0),
            None,
            "leaf 0 is forgotten"
        );
        for size in [1, 17, 100, 200] {
            let root = ledger.root(size).unwrap();
            for (index, entry) in (0..size).zip(&entries) {
                let proof = ledger.inclusion_proof(index, size).unwrap();
                verify_inclusion(&leaf_hash(entry.as_bytes()), index, size, &proof, &root).unwrap();
            }
            for old in [1, 5, 16, 33, size] {
                let old = old.min(size);
                let proof = ledger.consistency_proof(old, size).unwrap();
                verify_consistency(old, size, &ledger.root(old).unwrap(), &root, &proof).unwrap();
            }
        }
        let read = ledger.leaves(40, 30).await.unwrap();
        let expected: Vec<(u64, Entry)> = (40..).zip(entries[40..70].iter().cloned()).collect();
        assert_eq!(read, expected);
    }

    #[tokio::test]
    async fn an_old_leaf_changed_on_disk_is_damage_not_a_proof() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _) = ledger_of_200(dir.path()).await;
        let recent = ledger.inclusion_proof(199, 200).unwrap();
        // Change one byte of leaf 3's payload in its segment.
        let at = lock(&ledger.state).places.get(3);
        let path = segment_path(dir.path(), at.segment);
        let mut bytes = fs::read(&path).unwrap();
        bytes[at.offset as usize + HEADER_LEN + 4] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert!(matches!(
            ledger.inclusion_proof(3, 200),
            Err(StoreError::LogDamaged(_))
        ));
        assert!(matches!(ledger.root(10), Err(StoreError::LogDamaged(_))));
        // Proofs that need no leaf of that chunk are unaffected.
        assert_eq!(ledger.inclusion_proof(199, 200).unwrap(), recent);
    }
}
