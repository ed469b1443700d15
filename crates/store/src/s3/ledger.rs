//! The S3 store's [`Ledger`]: each server keeps its own log in the bucket.
//!
//! ```text
//! s3://BUCKET/PREFIX/ledger/<name>/<seq>       the leaves of one group, numbered
//!                                              from 1 without gaps
//! s3://BUCKET/PREFIX/ledger/<name>/checkpoint  the last checkpoint it signed
//! s3://BUCKET/PREFIX/ledger/<name>/index/<n>   the leaf hashes of group objects
//!                                              n × 1024 + 1 to (n + 1) × 1024
//! ```
//!
//! `<name>` is given by the server ([`S3Options::ledger`](super::S3Options)):
//! Ferry's server names its log after its signing key, so a log has one writer
//! and one key, and the servers on one bucket never need to agree on an order
//! of their leaves. Each server's log records what that server did: the items
//! it stored, the deletes, expiries and holds it made, the reads it served. A
//! receipt names its log by the key that signed it.
//!
//! **A leaf is appended in the commit log.** It goes, with its index in the log
//! and the log's name, into the commit-log object of the next group commit (see
//! [`batch`](super::batch)); an item's `stored` leaf into the same object as
//! the item's record. So one PUT makes an item and its leaf durable together,
//! and a group commit costs no more PUTs with the log than without. A leaf is
//! counted (in the tree, the receipts, the checkpoints) once its object is in
//! the bucket; the indices follow the commit log's order, which every server
//! reads the same. A leaf of this log written by another process since the
//! open (the same key on two servers) refuses every later append, saying so.
//!
//! **Then it is copied** into the log's own group objects, by one task that
//! gathers the leaves counted meanwhile: each leaf as a 4-byte big-endian
//! length and its bytes, created with a conditional PUT (`If-None-Match: *`).
//! A *copied* entry in the commit log then says up to which commit-log object
//! this log's leaves are all copied; compaction never removes an object after
//! that point (see [`compact`](super::compact)). An open reads the group
//! objects, then the leaves of the commit-log objects after that point.
//!
//! An open builds the tree in memory (all its leaf hashes, 32 bytes a leaf,
//! and the index of each `stored` leaf by item id, for the receipts the admin
//! API serves). It reads the index chunks first: each stands for 1,024 group
//! objects (their leaves' hashes and `stored` ids, with a SHA-256 of the
//! chunk), written in the background once the copier has written them (or
//! an open has read them). Then it reads the group objects after the last
//! chunk. A chunk that is missing or does not read is not taken: the open
//! reads its group objects instead, and writes it again. When chunks stood
//! for group objects, the notary reads every group object in the background
//! ([`Ledger::rescan`]) and checks the tree against the last checkpoint, as
//! the local store does after a clean restart; a chunk that lies is caught
//! there. An object that cannot be read as leaves is a
//! problem reported by [`Ledger::problems`], kept as it is: its leaves are then
//! missing from the tree, which no longer matches the checkpoints signed
//! before, and the notary says so.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use ferry_tlog::{Entry, Event, Hash, Tree};
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::sync::{Notify, oneshot};

use super::batch::Change;
use super::commit::Committer;
use super::journal::{Journal, Missing, create, fetch};
use crate::ledger::{Ledger, Rescan, proof_error, seal_sha256, unsealed};
use crate::{ItemId, StoreError};

/// Group objects fetched at once while reading the log.
const READ_AHEAD: usize = 8;

/// At most this many bytes of leaves in one group object.
const GROUP_MAX: usize = 4 << 20;

/// How long the copier waits after a copy failed before it tries again.
const COPY_RETRY: Duration = Duration::from_secs(if cfg!(test) { 0 } else { 2 });

/// At most this many leaves wait for their copy (about 300 bytes each): beyond,
/// appends are refused until the copier catches up.
const UNCOPIED_MAX: usize = 100_000;

/// Group objects an index chunk covers.
const INDEX_EVERY: usize = if cfg!(test) { 4 } else { 1024 };

/// The first bytes of an index chunk.
const INDEX_MAGIC: &[u8] = b"ferry-s3-ledger-index/v1\n";

const CHECKPOINT: &str = "checkpoint";

/// A leaf counted but not copied yet: the commit-log object that holds it,
/// and the leaf.
#[derive(Debug, Clone)]
struct Uncopied {
    seq: u64,
    entry: Entry,
}

/// The tree of the durable leaves, and where each group object's leaves start.
#[derive(Debug, Default)]
struct State {
    tree: Tree,
    /// The index of the first leaf of group object `seq`, at `seq - 1`.
    starts: Vec<u64>,
    /// The index of each item's `stored` leaf in this log, by item id.
    stored: HashMap<String, u64>,
    /// The leaves of the group objects since the last whole index chunk.
    chunk: Vec<Vec<Indexed>>,
    /// The leaves counted and not in a group object yet, the last ones of the tree.
    uncopied: VecDeque<Uncopied>,
    /// Why no leaf is taken any more, if so.
    refused: Option<String>,
    /// What is wrong with the log, found at open or since.
    problems: Vec<String>,
}

/// A leaf as an index chunk keeps it: its hash, and its item's id if it is a
/// `stored` leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Indexed {
    hash: Hash,
    stored: Option<String>,
}

impl Indexed {
    fn of(entry: &Entry) -> Indexed {
        Indexed {
            hash: entry.leaf_hash(),
            stored: (entry.event() == Event::Stored).then(|| entry.id().to_owned()),
        }
    }
}

impl State {
    /// Counts `leaf` as the next leaf of the tree.
    fn count(&mut self, leaf: &Indexed) {
        let index = self.tree.push(leaf.hash);
        if let Some(id) = &leaf.stored {
            self.stored.insert(id.clone(), index);
        }
    }

    /// Notes the next group object, holding `leaves` (counted already).
    fn place(&mut self, leaves: Vec<Indexed>) {
        self.starts.push(self.copied() - leaves.len() as u64);
        self.chunk.push(leaves);
    }

    /// Counts `leaves`, read from the next group object (or its index chunk).
    fn read_object(&mut self, leaves: Vec<Indexed>) {
        leaves.iter().for_each(|leaf| self.count(leaf));
        self.place(leaves);
    }

    /// The number of leaves in group objects.
    fn copied(&self) -> u64 {
        self.tree.len() - self.uncopied.len() as u64
    }

    /// The leaves not copied yet, with their indices.
    fn uncopied(&self) -> impl Iterator<Item = (u64, &Entry)> {
        (self.copied()..).zip(self.uncopied.iter().map(|leaf| &leaf.entry))
    }

    /// The bytes and number of the index chunk the objects counted complete,
    /// if they just completed one.
    fn complete_chunk(&mut self) -> Option<(u64, Vec<u8>)> {
        if self.chunk.len() < INDEX_EVERY {
            return None;
        }
        let number = self.starts.len() as u64 / INDEX_EVERY as u64 - 1;
        Some((number, encode_chunk(&std::mem::take(&mut self.chunk))))
    }

    /// Takes no leaf from now on, for `reason`.
    fn refuse(&mut self, reason: String) {
        tracing::error!(%reason, "refusing every later append to the log");
        self.problems.push(reason.clone());
        self.refused.get_or_insert(reason);
    }
}

/// This server's log as the commit log sees it: what numbers its next leaf,
/// and what counts the leaves its objects hold. See the [module](self).
#[derive(Debug)]
pub(crate) struct Leaves {
    name: String,
    /// This process's mark on the leaves it writes.
    writer: [u8; 16],
    state: Mutex<State>,
    /// Wakes the copier.
    copy: Notify,
    /// Whether the open has counted what the commit log held.
    opened: std::sync::atomic::AtomicBool,
}

impl Leaves {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn writer(&self) -> [u8; 16] {
        self.writer
    }

    /// The number of leaves counted.
    pub(crate) fn size(&self) -> u64 {
        self.lock().tree.len()
    }

    /// The index the next leaf gets; why no leaf is taken, if so.
    pub(crate) fn next_index(&self) -> Result<u64, String> {
        let state = self.lock();
        match &state.refused {
            Some(reason) => Err(reason.clone()),
            None if state.uncopied.len() >= UNCOPIED_MAX => Err(
                "the log cannot copy its leaves into the bucket now (the server's log says why); try again later"
                    .into(),
            ),
            None => Ok(state.tree.len()),
        }
    }

    /// Counts leaf `index` of this log (`bytes`), found in commit-log object
    /// `seq`: unless counted already, or written by another process since
    /// the open.
    pub(crate) fn found(&self, seq: u64, index: u64, writer: [u8; 16], bytes: &[u8]) {
        let mut state = self.lock();
        let len = state.tree.len();
        if index < len || state.refused.is_some() {
            return;
        }
        if index > len {
            let reason = format!(
                "leaves {len} to {index} of the log are missing from the commit log (object {seq} holds leaf {index})"
            );
            return state.refuse(reason);
        }
        if writer != self.writer && self.opened.load(std::sync::atomic::Ordering::Acquire) {
            return state.refuse(another_writer(&self.name));
        }
        let entry = match Entry::parse(bytes) {
            Ok(entry) => entry,
            Err(err) => {
                let reason = format!(
                    "leaf {index} of the log in commit-log object {seq} is not a leaf: {err}"
                );
                return state.refuse(reason);
            }
        };
        state.count(&Indexed::of(&entry));
        state.uncopied.push_back(Uncopied { seq, entry });
        drop(state);
        self.copy.notify_one();
    }

    /// Marks the open done: a leaf of another process is refused from now on.
    pub(crate) fn opened(&self) {
        self.opened
            .store(true, std::sync::atomic::Ordering::Release);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

/// A server's log in the bucket. See the [module](self).
#[derive(Debug)]
pub(crate) struct S3Ledger {
    objects: Arc<dyn ObjectStore>,
    dir: Path,
    leaves: Arc<Leaves>,
    committer: Committer,
    /// Whether the open took index chunks for some group objects.
    indexed: bool,
    /// Stops the copier when the log is dropped (or taken, in tests).
    _stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl S3Ledger {
    /// Opens the log `name` under `root`: reads its group objects, then the
    /// leaves `journal` holds that are not copied yet (`journal` has read the
    /// commit log), and starts the copier, which lets leaves gather for
    /// `copy_delay` before each copy. Leaves are appended with `committer`.
    pub(crate) async fn open(
        objects: Arc<dyn ObjectStore>,
        (root, name): (&Path, &str),
        journal: &Journal,
        committer: Committer,
        copy_delay: Duration,
    ) -> Result<S3Ledger, StoreError> {
        let dir = root.clone().join("ledger").join(name);
        let mut read = read_all(&*objects, &dir, true).await?;
        for problem in &read.problems {
            tracing::error!(log = %dir, %problem, "the log in the bucket is damaged; it is kept as it is");
        }
        for (number, bytes) in std::mem::take(&mut read.unwritten) {
            write_chunk(objects.clone(), chunk_path(&dir, number), bytes);
        }
        read.state.problems = std::mem::take(&mut read.problems);
        let leaves = Arc::new(Leaves {
            name: name.to_owned(),
            writer: ItemId::new().to_bytes(),
            state: Mutex::new(read.state),
            copy: Notify::new(),
            opened: false.into(),
        });
        journal.attach(leaves.clone()).await?;
        let (stop, stopped) = oneshot::channel();
        let copier = Copier {
            objects: objects.clone(),
            dir: dir.clone(),
            leaves: leaves.clone(),
            committer: committer.clone(),
            next: read.objects + 1,
            unsure: None,
            delay: copy_delay,
        };
        tokio::spawn(copier.run(stopped));
        tracing::info!(log = %dir, leaves = leaves.size(), "log open");
        Ok(S3Ledger {
            objects,
            dir,
            leaves,
            committer,
            indexed: read.indexed,
            _stop: Mutex::new(Some(stop)),
        })
    }

    /// The index of item `id`'s `stored` leaf, if this server stored it.
    pub(crate) fn index_of(&self, id: ItemId) -> Option<u64> {
        self.leaves.lock().stored.get(&id.to_string()).copied()
    }

    fn tree<T>(
        &self,
        f: impl FnOnce(&Tree) -> Result<T, ferry_tlog::ProofError>,
    ) -> Result<T, StoreError> {
        f(&self.leaves.lock().tree).map_err(proof_error)
    }

    /// Stops the copier: the leaves appended from now on stay in the commit
    /// log only, as after a crash (for tests).
    #[cfg(test)]
    pub(crate) fn stop_copying(&self) {
        lock(&self._stop).take();
    }

    /// Waits until every leaf counted is in a group object (for tests).
    #[cfg(test)]
    pub(crate) async fn copied(&self) {
        for _ in 0..2000 {
            if self.leaves.lock().uncopied.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("the leaves were never copied");
    }
}

#[async_trait::async_trait]
impl Ledger for S3Ledger {
    async fn append(&self, entries: Vec<Entry>) -> Result<u64, StoreError> {
        Ok(self.committer.commit_logged(Vec::new(), entries).await?.1)
    }

    fn size(&self) -> u64 {
        self.leaves.size()
    }

    /// Every leaf counted is in the bucket already.
    async fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn root(&self, size: u64) -> Result<Hash, StoreError> {
        self.tree(|tree| tree.root_at(size))
    }

    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        self.tree(|tree| tree.inclusion_proof(index, size))
    }

    fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>, StoreError> {
        self.tree(|tree| tree.consistency_proof(from, to))
    }

    async fn leaves(&self, from: u64, limit: usize) -> Result<Vec<(u64, Entry)>, StoreError> {
        let (objects, mut kept, end) = {
            let state = self.leaves.lock();
            let end = from.saturating_add(limit as u64).min(state.tree.len());
            if from >= end {
                return Ok(Vec::new());
            }
            let copied = state.copied();
            // Leaves not copied yet, from memory.
            let kept: Vec<(u64, Entry)> = state
                .uncopied()
                .filter(|(index, _)| (from..end).contains(index))
                .map(|(index, entry)| (index, entry.clone()))
                .collect();
            // Group objects holding leaves `from..end.min(copied)`: (seq, first leaf).
            let upto = end.min(copied);
            let objects: Vec<(u64, u64)> = if from < upto {
                let first = state.starts.partition_point(|&start| start <= from) - 1;
                let last = state.starts.partition_point(|&start| start < upto);
                (first..last)
                    .map(|i| (i as u64 + 1, state.starts[i]))
                    .collect()
            } else {
                Vec::new()
            };
            (objects, kept, upto)
        };
        let mut leaves = Vec::new();
        for (seq, start) in objects {
            let bytes = fetch(&*self.objects, &group_path(&self.dir, seq))
                .await
                .map_err(|missing| damaged(seq, missing))?;
            let entries = decode(&bytes).map_err(|why| {
                StoreError::LogDamaged(format!("log object {seq} cannot be read back: {why}"))
            })?;
            for (index, entry) in (start..).zip(entries) {
                if index >= from && index < end {
                    leaves.push((index, entry));
                }
            }
        }
        leaves.append(&mut kept);
        Ok(leaves)
    }

    async fn checkpoint(&self) -> Result<Option<String>, StoreError> {
        match fetch(&*self.objects, &self.dir.clone().join(CHECKPOINT)).await {
            Ok(bytes) => String::from_utf8(bytes.to_vec())
                .map(Some)
                .map_err(|_| StoreError::LogDamaged("the saved checkpoint is not text".into())),
            Err(Missing::Gone) => Ok(None),
            Err(Missing::Failed(err)) => Err(err),
        }
    }

    async fn save_checkpoint(&self, note: &str) -> Result<(), StoreError> {
        let path = self.dir.clone().join(CHECKPOINT);
        self.objects
            .put(&path, PutPayload::from(note.to_owned()))
            .await
            .map_err(|err| StoreError::remote(format!("writing {path}"), err))?;
        Ok(())
    }

    fn problems(&self) -> Vec<String> {
        self.leaves.lock().problems.clone()
    }

    /// Not when index chunks stood for group objects: the notary then reads
    /// them all in the background ([`rescan`](Ledger::rescan)).
    fn read_at_open(&self) -> bool {
        !self.indexed
    }

    async fn rescan(&self, size: u64) -> Result<Rescan, StoreError> {
        let (known, uncopied): (u64, Vec<(u64, Hash)>) = {
            let state = self.leaves.lock();
            let uncopied = state
                .uncopied()
                .map(|(index, entry)| (index, entry.leaf_hash()))
                .collect();
            (state.starts.len() as u64, uncopied)
        };
        let mut read = read_all(&*self.objects, &self.dir, false).await?;
        // The leaves not copied when the read began are in the commit log.
        for (index, hash) in uncopied {
            if index == read.state.tree.len() {
                read.state.tree.push(hash);
            }
        }
        let fresh = &read.state.tree;
        let mut problems = read.problems;
        if read.objects < known {
            problems.push(format!(
                "log object {} is missing (the log has {known})",
                read.objects + 1
            ));
        }
        let len = self.size();
        // Leaves appended (or not copied) since the read are not a problem.
        if fresh.len() > len {
            problems.push(format!(
                "the bucket holds {} leaves, more than the {len} in memory",
                fresh.len()
            ));
        } else if self.root(fresh.len()).ok() != Some(fresh.root()) {
            problems.push(format!(
                "the {} leaves in the bucket are not those in memory (their root differs)",
                fresh.len()
            ));
        }
        Ok(Rescan {
            size: fresh.len(),
            root_at: fresh.root_at(size).ok(),
            problems,
        })
    }
}
/// What reading the log found.
struct Read {
    state: State,
    /// The group objects read (the next is `objects + 1`).
    objects: u64,
    problems: Vec<String>,
    /// Whether index chunks stood for some group objects (not read then).
    indexed: bool,
    /// The index chunks of the group objects read, by number.
    unwritten: Vec<(u64, Vec<u8>)>,
}

/// Reads the log: the index chunks from the first until one is missing or
/// unreadable (if `use_index`), then every group object after those they
/// cover, until the first missing one.
async fn read_all(
    objects: &dyn ObjectStore,
    dir: &Path,
    use_index: bool,
) -> Result<Read, StoreError> {
    let mut read = Read {
        state: State::default(),
        objects: 0,
        problems: Vec::new(),
        indexed: false,
        unwritten: Vec::new(),
    };
    if use_index {
        let mut chunks = futures::stream::iter(0u64..)
            .map(|number| async move { fetch(objects, &chunk_path(dir, number)).await })
            .buffered(READ_AHEAD);
        while let Some(got) = chunks.next().await {
            let bytes = match got {
                Ok(bytes) => bytes,
                Err(Missing::Gone) => break,
                Err(Missing::Failed(err)) => return Err(err),
            };
            let Some(chunk) = decode_chunk(&bytes) else {
                tracing::warn!(log = %dir, chunk = read.objects / INDEX_EVERY as u64, "an index chunk of the log cannot be read; reading its group objects instead");
                break;
            };
            for object in chunk {
                read.state.read_object(object);
            }
            read.state.chunk.clear();
            read.objects += INDEX_EVERY as u64;
            read.indexed = true;
        }
    }
    let mut fetched = futures::stream::iter(read.objects + 1..)
        .map(|seq| async move { (seq, fetch(objects, &group_path(dir, seq)).await) })
        .buffered(READ_AHEAD);
    while let Some((seq, got)) = fetched.next().await {
        let bytes = match got {
            Ok(bytes) => bytes,
            Err(Missing::Gone) => break,
            Err(Missing::Failed(err)) => return Err(err),
        };
        read.objects = seq;
        let leaves: Vec<Indexed> = match decode(&bytes) {
            Ok(entries) => entries.iter().map(Indexed::of).collect(),
            Err(why) => {
                read.problems
                    .push(format!("log object {seq} cannot be read: {why}"));
                Vec::new()
            }
        };
        read.state.read_object(leaves);
        // A chunk these objects complete is missing (else it was read):
        // written again after the open.
        read.unwritten.extend(read.state.complete_chunk());
    }
    Ok(read)
}

/// Writes an index chunk in the background. Only a shortcut for the opens: if
/// it is lost, the next open reads the group objects it stands for (and
/// writes it).
fn write_chunk(objects: Arc<dyn ObjectStore>, path: Path, bytes: Vec<u8>) {
    tokio::spawn(async move {
        if let Err(err) = objects.put(&path, PutPayload::from(bytes)).await {
            tracing::warn!(%path, %err, "cannot write an index chunk of the log");
        }
    });
}

fn chunk_path(dir: &Path, number: u64) -> Path {
    dir.clone().join("index").join(format!("{number:020}"))
}

/// An index chunk: for each of its [`INDEX_EVERY`] group objects, its number
/// of leaves (4 bytes, big-endian), then each leaf's hash and the length (1
/// byte, 0 for none) and bytes of its item id if it is a `stored` leaf; a
/// SHA-256 of all that at the end.
fn encode_chunk(chunk: &[Vec<Indexed>]) -> Vec<u8> {
    let mut bytes = INDEX_MAGIC.to_vec();
    for object in chunk {
        bytes.extend_from_slice(&(object.len() as u32).to_be_bytes());
        for leaf in object {
            bytes.extend_from_slice(&leaf.hash);
            let id = leaf.stored.as_deref().unwrap_or_default().as_bytes();
            bytes.push(u8::try_from(id.len()).expect("an item id is short"));
            bytes.extend_from_slice(id);
        }
    }
    seal_sha256(&mut bytes);
    bytes
}

/// The objects of an index chunk; `None` if `bytes` are not one.
fn decode_chunk(bytes: &[u8]) -> Option<Vec<Vec<Indexed>>> {
    let mut rest = unsealed(bytes, INDEX_MAGIC)?;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (taken, left) = rest.split_at_checked(n)?;
        rest = left;
        Some(taken)
    };
    let mut chunk = Vec::with_capacity(INDEX_EVERY);
    for _ in 0..INDEX_EVERY {
        let count = u32::from_be_bytes(take(4)?.try_into().ok()?);
        let mut object = Vec::new();
        for _ in 0..count {
            let hash: Hash = take(32)?.try_into().ok()?;
            let len = take(1)?[0] as usize;
            let id = std::str::from_utf8(take(len)?).ok()?;
            object.push(Indexed {
                hash,
                stored: (len > 0).then(|| id.to_owned()),
            });
        }
        chunk.push(object);
    }
    take(0)?;
    rest.is_empty().then_some(chunk)
}

fn group_path(dir: &Path, seq: u64) -> Path {
    dir.clone().join(format!("{seq:020}"))
}

fn damaged(seq: u64, missing: Missing) -> StoreError {
    match missing {
        Missing::Gone => StoreError::LogDamaged(format!("log object {seq} is missing")),
        Missing::Failed(err) => err,
    }
}

/// A group object's bytes: each leaf as its length (4 bytes, big-endian) and
/// its bytes.
fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(entries.iter().map(|e| 4 + e.as_bytes().len()).sum());
    for entry in entries {
        let leaf = entry.as_bytes();
        let len = u32::try_from(leaf.len()).expect("a leaf is far under 4 GiB");
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(leaf);
    }
    bytes
}

/// The leaves of a group object; an error says why it is not one.
fn decode(mut bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes
            .split_first_chunk::<4>()
            .ok_or("it ends inside a leaf's length")?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(format!("leaf {} runs past its end", entries.len()));
        }
        let (leaf, rest) = rest.split_at(len);
        let entry = Entry::parse(leaf)
            .map_err(|err| format!("leaf {} is not a leaf: {err}", entries.len()))?;
        entries.push(entry);
        bytes = rest;
    }
    if entries.is_empty() {
        return Err("it holds no leaf".into());
    }
    Ok(entries)
}

/// Why appends are refused when another process writes the log `log`.
fn another_writer(log: &dyn std::fmt::Display) -> String {
    format!(
        "another process writes this server's log ({log}): give each server its own log key (--tlog-key)"
    )
}

fn lock<T>(state: &Mutex<T>) -> MutexGuard<'_, T> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Copies the leaves counted into group objects, one at a time, in order.
struct Copier {
    objects: Arc<dyn ObjectStore>,
    dir: Path,
    leaves: Arc<Leaves>,
    committer: Committer,
    /// The sequence number of the next group object.
    next: u64,
    /// The last group object whose write failed: it may have landed anyway.
    unsure: Option<Bytes>,
    /// How long leaves gather before a copy.
    delay: Duration,
}

impl Copier {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        loop {
            tokio::select! {
                _ = &mut stop => return,
                () = self.leaves.copy.notified() => {}
            }
            tokio::time::sleep(self.delay).await;
            loop {
                let group: Vec<Uncopied> = {
                    let state = self.leaves.lock();
                    if state.refused.is_some() {
                        break;
                    }
                    let mut bytes = 0;
                    state
                        .uncopied
                        .iter()
                        .take_while(|leaf| {
                            let first = bytes == 0;
                            bytes += leaf.entry.as_bytes().len();
                            first || bytes <= GROUP_MAX
                        })
                        .cloned()
                        .collect()
                };
                let Some(last) = group.last() else { break };
                let last = last.seq;
                let entries: Vec<Entry> = group.into_iter().map(|leaf| leaf.entry).collect();
                match self.write(&entries).await {
                    Ok(true) => {}
                    // An earlier write had landed: placed; gather again.
                    Ok(false) => continue,
                    Err(None) => break,
                    Err(Some(err)) => {
                        tracing::warn!(log = %self.dir, %err, "cannot copy leaves of the log into its objects; trying again");
                        tokio::select! {
                            _ = &mut stop => return,
                            () = tokio::time::sleep(COPY_RETRY) => continue,
                        }
                    }
                }
                let through = self.placed(entries, last);
                let copied = Change::Copied {
                    log: self.leaves.name.clone(),
                    through,
                };
                if let Err(err) = self.committer.commit(copied).await {
                    // Only holds compaction back until the next copy says it.
                    tracing::warn!(%err, "cannot note a copy of the log in the commit log");
                }
            }
        }
    }

    /// Writes `entries` as the next group object: `false` if it found an
    /// earlier write that had landed instead (placed). `Err(None)` if the log
    /// takes no leaf any more (another process writes it).
    async fn write(&mut self, entries: &[Entry]) -> Result<bool, Option<StoreError>> {
        let object = Bytes::from(encode(entries));
        let path = group_path(&self.dir, self.next);
        let theirs = match create(&*self.objects, &path, &object).await {
            Ok(true) => None,
            Ok(false) => Some(
                fetch(&*self.objects, &path)
                    .await
                    .map_err(|missing| Some(damaged(self.next, missing)))?,
            ),
            Err(err) => {
                // It may have landed all the same: see below.
                self.unsure = Some(object);
                return Err(Some(StoreError::remote(format!("writing {path}"), err)));
            }
        };
        match theirs {
            // Written; or an earlier try of this write whose answer was lost.
            None => {}
            Some(theirs) if theirs == object => {}
            // An earlier write that failed had landed after all: its leaves
            // are copied; this one goes after them.
            Some(theirs) if self.unsure.as_ref() == Some(&theirs) => {
                self.unsure = None;
                let copied = decode(&theirs).unwrap_or_default();
                let last = (self.leaves.lock().uncopied)
                    .get(copied.len().saturating_sub(1))
                    .map_or(0, |leaf| leaf.seq);
                self.placed(copied, last);
                return Ok(false);
            }
            Some(_) => {
                self.leaves.lock().refuse(another_writer(&self.dir));
                return Err(None);
            }
        }
        self.unsure = None;
        Ok(true)
    }

    /// Notes `entries`, the first leaves not copied, as group object `next`;
    /// the last commit-log object whose leaves are all copied now (`last`
    /// holds the last of `entries`).
    fn placed(&mut self, entries: Vec<Entry>, last: u64) -> u64 {
        self.next += 1;
        let (through, chunk) = {
            let mut state = self.leaves.lock();
            let count = entries.len().min(state.uncopied.len());
            state.uncopied.drain(..count);
            state.place(entries.iter().map(Indexed::of).collect());
            let through = match state.uncopied.front() {
                Some(next) if next.seq == last => last - 1,
                _ => last,
            };
            (through, state.complete_chunk())
        };
        if let Some((number, bytes)) = chunk {
            write_chunk(self.objects.clone(), chunk_path(&self.dir, number), bytes);
        }
        through
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::view::View;
    use ferry_crypto::{Keyring, StorageKey};
    use object_store::memory::InMemory;

    fn entry(n: u64) -> Entry {
        Entry::stored(
            &format!("{n:032x}"),
            &"ab".repeat(32),
            n,
            "dict",
            "json",
            "2026-12-03T00:00:00Z",
        )
    }

    /// The log `name` of a store on `objects`, with a view of its own.
    async fn open_on(objects: Arc<dyn ObjectStore>, name: &str) -> Result<S3Ledger, StoreError> {
        let root = Path::from("store");
        let keyring = Keyring::new(StorageKey::generate(), vec![]);
        let events = tokio::sync::broadcast::channel(16).0;
        let view = View::open(None)?;
        let journal = Journal::open(objects.clone(), root.clone(), keyring, events, view).await?;
        let journal = Arc::new(journal);
        journal.catch_up().await?;
        let committer = Committer::start(journal.clone(), Duration::ZERO, 1 << 20);
        S3Ledger::open(objects, (&root, name), &journal, committer, Duration::ZERO).await
    }

    fn open(
        objects: &Arc<InMemory>,
        name: &str,
    ) -> impl Future<Output = Result<S3Ledger, StoreError>> {
        open_on(objects.clone(), name)
    }

    /// Appends `entries` and waits until they are copied into a group object
    /// of their own; the index of the first.
    async fn append_copied(ledger: &S3Ledger, entries: Vec<Entry>) -> u64 {
        let first = ledger.append(entries).await.unwrap();
        ledger.copied().await;
        first
    }

    #[test]
    fn a_group_object_reads_back_as_written_and_damage_is_refused() {
        let entries: Vec<Entry> = (0..5).map(entry).collect();
        let bytes = encode(&entries);
        assert_eq!(decode(&bytes).unwrap(), entries);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(&bytes[..2]).is_err());
        assert!(decode(&[]).is_err());
        let mut flipped = bytes.clone();
        flipped[5] ^= 0x20;
        assert!(decode(&flipped).is_err() || decode(&flipped).unwrap() != entries);
    }

    #[tokio::test]
    async fn appends_are_durable_and_a_reopen_builds_the_same_tree() {
        let objects = Arc::new(InMemory::new());
        let ledger = open(&objects, "a").await.unwrap();
        let mut expected = Tree::new();
        for n in 0..40 {
            let entries = vec![entry(n), entry(n + 1000)];
            expected.push(entries[0].leaf_hash());
            expected.push(entries[1].leaf_hash());
            assert_eq!(ledger.append(entries).await.unwrap(), 2 * n);
        }
        assert_eq!(ledger.size(), 80);
        assert_eq!(ledger.root(80).unwrap(), expected.root());
        let leaves = ledger.leaves(7, 10).await.unwrap();
        assert_eq!(leaves.len(), 10);
        assert_eq!(leaves[0], (7, entry(1003)));
        assert_eq!(leaves[9], (16, entry(8)));
        assert!(ledger.leaves(80, 5).await.unwrap().is_empty());
        ledger.save_checkpoint("a checkpoint\n").await.unwrap();

        let again = open(&objects, "a").await.unwrap();
        assert!(again.problems().is_empty());
        assert_eq!(again.size(), 80);
        assert_eq!(again.root(80).unwrap(), expected.root());
        assert_eq!(
            again.inclusion_proof(3, 80).unwrap(),
            expected.inclusion_proof(3, 80).unwrap()
        );
        assert_eq!(
            again.checkpoint().await.unwrap().as_deref(),
            Some("a checkpoint\n")
        );
        assert_eq!(again.append(vec![entry(7)]).await.unwrap(), 80);
        let rescan = again.rescan(40).await.unwrap();
        assert!(rescan.problems.is_empty(), "{:?}", rescan.problems);
        assert_eq!(rescan.root_at, Some(expected.root_at(40).unwrap()));

        let other = open(&objects, "b").await.unwrap();
        assert_eq!(other.size(), 0);
        assert_eq!(other.checkpoint().await.unwrap(), None);
    }

    #[tokio::test]
    async fn leaves_not_copied_yet_are_counted_from_the_commit_log() {
        let objects = Arc::new(InMemory::new());
        let ledger = open(&objects, "a").await.unwrap();
        for n in 0..3 {
            append_copied(&ledger, vec![entry(n)]).await;
        }
        ledger.stop_copying();
        tokio::task::yield_now().await;
        let mut expected = Tree::new();
        for n in 0..6 {
            expected.push(entry(n).leaf_hash());
        }
        for n in 3..6 {
            assert_eq!(ledger.append(vec![entry(n)]).await.unwrap(), n);
        }
        assert_eq!(ledger.root(6).unwrap(), expected.root());
        let read: Vec<(u64, Entry)> = ledger.leaves(1, 4).await.unwrap();
        assert_eq!(read, (1..5).map(|n| (n, entry(n))).collect::<Vec<_>>());
        let rescan = ledger.rescan(6).await.unwrap();
        assert!(rescan.problems.is_empty(), "{:?}", rescan.problems);
        assert_eq!(rescan.root_at, Some(expected.root()));

        // A restart finds the three not copied in the commit log, and copies them.
        drop(ledger);
        let again = open(&objects, "a").await.unwrap();
        assert_eq!(again.size(), 6);
        assert_eq!(again.root(6).unwrap(), expected.root());
        assert_eq!(again.leaves.lock().stored.get(entry(4).id()), Some(&4));
        again.copied().await;
        let whole = read_all(&*objects, &Path::from("store/ledger/a"), false)
            .await
            .unwrap();
        assert_eq!(whole.state.tree.root(), expected.root());
        assert_eq!(again.append(vec![entry(6)]).await.unwrap(), 6);
    }

    /// Waits until `path` exists (index chunks are written in the background).
    async fn written(objects: &InMemory, path: &Path) -> Vec<u8> {
        for _ in 0..500 {
            if let Ok(got) = objects.get(path).await {
                return got.bytes().await.unwrap().to_vec();
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        panic!("{path} never written");
    }

    #[tokio::test]
    async fn index_chunks_stand_for_their_group_objects_at_open() {
        let objects = Arc::new(InMemory::new());
        let ledger = open(&objects, "a").await.unwrap();
        for n in 0..10 {
            append_copied(&ledger, vec![entry(n), entry(n + 100)]).await;
        }
        let dir = Path::from("store/ledger/a");
        let first = written(&objects, &chunk_path(&dir, 0)).await;
        written(&objects, &chunk_path(&dir, 1)).await;
        assert_eq!(decode_chunk(&first).unwrap().len(), INDEX_EVERY);
        let root = ledger.root(20).unwrap();

        // Group object 2 gone: an open from the chunks does not read it; the
        // background rescan does, and says so.
        objects.delete(&group_path(&dir, 2)).await.unwrap();
        let again = open(&objects, "a").await.unwrap();
        assert!(!again.read_at_open());
        assert_eq!(again.size(), 20);
        assert_eq!(again.root(20).unwrap(), root);
        assert_eq!(again.leaves.lock().stored.get(entry(9).id()), Some(&18));
        assert_eq!(again.leaves(18, 2).await.unwrap()[1], (19, entry(109)));
        let rescan = again.rescan(20).await.unwrap();
        assert!(
            rescan
                .problems
                .iter()
                .any(|p| p.contains("log object 2 is missing")),
            "{:?}",
            rescan.problems
        );
        assert_eq!(rescan.root_at, None, "short of the checkpoint's size");
        assert_eq!(again.append(vec![entry(50)]).await.unwrap(), 20);

        // A chunk that does not read is not taken: the open reads the group
        // objects instead, and writes the chunk again.
        let mut bytes = first.clone();
        bytes[40] ^= 1;
        objects
            .put(&chunk_path(&dir, 0), bytes.into())
            .await
            .unwrap();
        objects
            .put(
                &group_path(&dir, 2),
                PutPayload::from(encode(&[entry(1), entry(101)])),
            )
            .await
            .unwrap();
        let whole = open(&objects, "a").await.unwrap();
        assert!(whole.read_at_open());
        assert_eq!(whole.root(20).unwrap(), root);
        for _ in 0..500 {
            let now = objects
                .get(&chunk_path(&dir, 0))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            if now == first {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        panic!("the damaged chunk was not written again");
    }

    #[tokio::test]
    async fn a_changed_group_object_is_reported_and_kept() {
        let objects = Arc::new(InMemory::new());
        let ledger = open(&objects, "a").await.unwrap();
        for n in 0..3 {
            append_copied(&ledger, vec![entry(n)]).await;
        }
        let root = ledger.root(3).unwrap();
        let path = group_path(&Path::from("store/ledger/a"), 2);
        let mut bytes = objects
            .get(&path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        objects
            .put(&path, PutPayload::from(bytes.clone()))
            .await
            .unwrap();

        let rescan = ledger.rescan(3).await.unwrap();
        assert!(!rescan.problems.is_empty());
        assert_ne!(rescan.root_at, Some(root));
        let again = open(&objects, "a").await.unwrap();
        assert_ne!(again.root(again.size()).ok(), Some(root));
        assert!(
            objects.get(&path).await.is_ok(),
            "the damaged object is kept"
        );
    }

    #[tokio::test]
    async fn a_second_writer_of_the_same_log_is_refused() {
        let objects = Arc::new(InMemory::new());
        let one = open(&objects, "a").await.unwrap();
        let two = open(&objects, "a").await.unwrap();
        one.append(vec![entry(1)]).await.unwrap();
        let refused = two.append(vec![entry(2)]).await.unwrap_err();
        assert!(refused.to_string().contains("its own log key"), "{refused}");
        assert!(
            two.append(vec![entry(1)]).await.is_err(),
            "refused from then on"
        );
        assert_eq!(one.append(vec![entry(3)]).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_failed_write_that_landed_all_the_same_is_counted_before_the_next() {
        let objects = Arc::new(crate::s3::faults::Faulty::default());
        let ledger = open_on(objects.clone(), "a").await.unwrap();
        ledger.stop_copying();
        ledger.append(vec![entry(0)]).await.unwrap();
        objects.lose_a_log_answer();
        assert!(ledger.append(vec![entry(1)]).await.is_err());
        assert_eq!(ledger.size(), 1, "not counted while unsure");
        // The next write finds the first in its place: both are counted, in order.
        assert_eq!(ledger.append(vec![entry(2)]).await.unwrap(), 2);
        let leaves: Vec<Entry> = ledger
            .leaves(0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        assert_eq!(leaves, [entry(0), entry(1), entry(2)]);
        let again = open_on(objects, "a").await.unwrap();
        assert_eq!(again.size(), 3);
        assert_eq!(again.root(3).unwrap(), ledger.root(3).unwrap());
    }

    #[tokio::test]
    async fn a_retried_write_that_had_landed_is_ours() {
        let objects = Arc::new(InMemory::new());
        let ledger = open(&objects, "a").await.unwrap();
        // As if an earlier try of the next write had landed, its answer lost.
        let path = group_path(&Path::from("store/ledger/a"), 1);
        objects
            .put(&path, PutPayload::from(encode(&[entry(9)])))
            .await
            .unwrap();
        assert_eq!(ledger.append(vec![entry(9)]).await.unwrap(), 0);
        assert_eq!(ledger.size(), 1);
        ledger.copied().await;
        assert!(ledger.problems().is_empty(), "{:?}", ledger.problems());
        assert_eq!(append_copied(&ledger, vec![entry(10)]).await, 1);
    }
}
