//! Log segments and the group committer.
//!
//! Small items and tombstones are appended as frames (see [`frame`](super::frame))
//! to the current segment `segments/NNNNNNNN.log` by one committer thread. It takes
//! every request pending, writes them all with one `write`, calls `fdatasync` once
//! for the whole group and only then answers each request: an answered append is
//! durable. Segments rotate once they pass the configured size; a new segment's
//! directory entry is fsynced before anything is acknowledged in it.
//!
//! Each frame is sealed here, once its place is known (see [`frame`](super::frame)).
//!
//! If a write or an `fdatasync` fails, the segment is cut back to its last durable
//! length: after a failed `fdatasync` the kernel may have marked the group's pages
//! clean without writing them, and they must not be read back later as if they
//! were on disk (cutting drops them). After a failed `fdatasync`, or a cut that
//! fails, the log refuses every later append until the store is reopened and
//! recovers. A rotation that fails leaves the next segment, empty, to be reused by
//! the next rotation.
//!
//! Space is prepared ahead of the commits: when no request is waiting and less
//! than [`PREPARE_LOW`] bytes are left prepared past the end of the log, the
//! committer zero-fills the next [`PREPARE_CHUNK`] bytes of the current segment
//! (never past the segment size) and makes them durable with an `fdatasync`. A
//! commit that lands in prepared space overwrites blocks that are already
//! allocated and leaves the file's size as it is, so its `fdatasync` writes only
//! data, not the inode (PostgreSQL pre-fills its WAL segments for the same
//! reason). A commit that outruns the prepared space (a burst, or a failed
//! preparation) extends the file as before. Recovery takes the zeros after the
//! last frame for the end of the log (a frame starts with its magic, never with a
//! zero), see [`recover`](super::recover). A request that arrives while a chunk
//! is being prepared waits for it: one [`PREPARE_CHUNK`] write and its sync, once
//! per [`PREPARE_CHUNK`] of log written.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use super::frame::Unsealed;
use super::fsutil::{io_err, sync_dir};
use super::seam::{Seam, Step};
use crate::StoreError;

/// Largest group written with one write: bounds the latency of a group.
const MAX_GROUP_BYTES: usize = 32 << 20;

/// Space is prepared once less than this is left past the end of the log.
const PREPARE_LOW: u64 = 1 << 20;

/// The zeros written (and synced) at a time to prepare space: one preparation
/// for every this many bytes of log.
const PREPARE_CHUNK: usize = 2 << 20;

static ZEROS: [u8; PREPARE_CHUNK] = [0; PREPARE_CHUNK];

/// Where an appended frame landed. Positions order as the log does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    /// Segment number.
    pub segment: u32,
    /// Offset of the frame in the segment.
    pub offset: u64,
}

/// The file name of segment `number`.
pub(crate) fn segment_path(dir: &Path, number: u32) -> PathBuf {
    dir.join(format!("{number:08}.log"))
}

/// The segment number a file name stands for, if it names a segment.
pub(crate) fn segment_number(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".log")?;
    (digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())?
}

/// Told of every group once it is written (and durable, if one of its
/// requests asked for that), before any of its requests is answered: the
/// segment, the group's offset in it, and its frames' bytes.
pub(crate) type OnDurable = Box<dyn FnMut(u32, u64, &[u8]) + Send>;

struct Request {
    frames: Vec<Unsealed>,
    /// Whether the frames (and every one before them) must be durable before
    /// the answer; if not, they are written, and made durable by a later
    /// request that asks for it, a rotation, or the preparation of space.
    sync: bool,
    reply: oneshot::Sender<Result<Position, StoreError>>,
}

/// The handle to the committer thread. Dropping it waits for the thread to
/// answer every request sent and stop, so the segment is idle afterwards.
#[derive(Debug)]
pub(crate) struct Log {
    requests: Option<mpsc::Sender<Request>>,
    /// The segment being appended to; only ever grows.
    current: Arc<AtomicU32>,
    /// Where the log ends in the segments before it.
    ends: Ends,
    /// Whether every frame written is durable (no unsynced append since the
    /// last sync): [`Log::sync`] then has nothing to do.
    all_durable: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Log {
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("frames", &self.frames.len())
            .finish()
    }
}

impl Log {
    /// Starts the committer, appending to segment `current` in `dir` at `end`.
    /// Everything before `end` is durable, and the segment's `size - end` bytes
    /// after it are zeros (prepared space), durable too.
    pub(crate) fn start(
        dir: PathBuf,
        current: u32,
        end: SegmentEnd,
        ends: HashMap<u32, u64>,
        segment_size: u64,
        seam: Seam,
        on_durable: Option<OnDurable>,
    ) -> Result<Log, StoreError> {
        let path = segment_path(&dir, current);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_err("opening log segment", &path))?;
        let (requests, incoming) = mpsc::channel();
        let number = Arc::new(AtomicU32::new(current));
        let ends = Arc::new(Mutex::new(ends));
        let all_durable = Arc::new(AtomicBool::new(true));
        let committer = Committer {
            ends: ends.clone(),
            all_durable: all_durable.clone(),
            dir,
            number: current,
            current: number.clone(),
            file,
            len: end.len,
            synced: end.len,
            prepared: end.size.max(end.len),
            preparing: true,
            segment_size,
            failed: None,
            seam,
            on_durable,
        };
        let thread = std::thread::Builder::new()
            .name("ferry-store-log".into())
            .spawn(move || committer.run(incoming))
            .map_err(|e| StoreError::io("starting the log committer for", &path, e))?;
        Ok(Log {
            requests: Some(requests),
            current: number,
            ends,
            all_durable,
            thread: Some(thread),
        })
    }

    /// The segment being appended to: every segment below it is complete.
    pub(crate) fn current_segment(&self) -> u32 {
        self.current.load(Ordering::Acquire)
    }

    /// Where the log ends in `segment`, if it is complete (below the current one)
    /// and known: its files may go on with prepared space.
    pub(crate) fn end_of(&self, segment: u32) -> Option<u64> {
        lock(&self.ends).get(&segment).copied()
    }

    /// Whether every frame written is durable (no unsynced append since the
    /// last sync).
    pub(crate) fn is_all_durable(&self) -> bool {
        self.all_durable.load(Ordering::Acquire)
    }

    /// Where the log ends in each complete segment known.
    pub(crate) fn ends(&self) -> HashMap<u32, u64> {
        lock(&self.ends).clone()
    }

    /// Forgets where the log ended in `segments`, removed.
    pub(crate) fn forget(&self, segments: &[u32]) {
        let mut ends = lock(&self.ends);
        for segment in segments {
            ends.remove(segment);
        }
    }

    /// Appends frames, one after the other in one segment; returns once they are
    /// durable, with the place of the first.
    pub(crate) async fn append(&self, frames: Vec<Unsealed>) -> Result<Position, StoreError> {
        self.request(frames, true).await
    }

    /// Appends frames as [`append`](Self::append) does, but returns once they
    /// are written, not yet durable (see [`sync`](Self::sync)).
    pub(crate) async fn append_unsynced(
        &self,
        frames: Vec<Unsealed>,
    ) -> Result<Position, StoreError> {
        self.request(frames, false).await
    }

    /// Returns once every frame appended before it is durable: at once when
    /// each was appended synced (or synced since), without waiting behind the
    /// groups being committed.
    pub(crate) async fn sync(&self) -> Result<(), StoreError> {
        if self.all_durable.load(Ordering::Acquire) {
            return Ok(());
        }
        self.request(Vec::new(), true).await.map(drop)
    }

    async fn request(&self, frames: Vec<Unsealed>, sync: bool) -> Result<Position, StoreError> {
        let (reply, answer) = oneshot::channel();
        let requests = self.requests.as_ref().ok_or_else(stopped)?;
        requests
            .send(Request {
                frames,
                sync,
                reply,
            })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

type Ends = Arc<Mutex<HashMap<u32, u64>>>;

fn lock(ends: &Ends) -> std::sync::MutexGuard<'_, HashMap<u32, u64>> {
    ends.lock().unwrap_or_else(PoisonError::into_inner)
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the log committer has stopped".into())
}

/// Where the log of a segment ends, and how long the segment's file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentEnd {
    /// The end of the last frame: where the next one goes.
    pub len: u64,
    /// The file's size: from `len` to it, the file holds zeros.
    pub size: u64,
}

struct Committer {
    dir: PathBuf,
    number: u32,
    current: Arc<AtomicU32>,
    ends: Ends,
    /// Set after each group, before anyone is told of it: `synced == len`.
    all_durable: Arc<AtomicBool>,
    file: File,
    /// The end of the log in the current segment.
    len: u64,
    /// The end of what is durable in the current segment (`len`, unless
    /// frames were appended unsynced since).
    synced: u64,
    /// The current segment's size: its bytes from `len` to here are zeros, durable.
    prepared: u64,
    /// Whether to prepare space in the current segment (off after a failure).
    preparing: bool,
    segment_size: u64,
    failed: Option<String>,
    seam: Seam,
    on_durable: Option<OnDurable>,
}

impl Committer {
    fn run(mut self, incoming: mpsc::Receiver<Request>) {
        let mut group = Vec::new();
        let mut buffer = Vec::new();
        loop {
            let first = if self.wants_space() {
                match incoming.try_recv() {
                    Ok(first) => first,
                    Err(TryRecvError::Empty) => {
                        self.prepare();
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match incoming.recv() {
                    Ok(first) => first,
                    Err(_) => break,
                }
            };
            let mut bytes = first.len();
            group.push(first);
            while bytes < MAX_GROUP_BYTES {
                let Ok(next) = incoming.try_recv() else { break };
                bytes += next.len();
                group.push(next);
            }
            let committed = self.commit(&mut group, &mut buffer);
            self.all_durable
                .store(self.synced >= self.len, Ordering::Release);
            match committed {
                Ok(positions) => {
                    if let (Some(tell), Some(first)) = (&mut self.on_durable, positions.first()) {
                        tell(first.segment, first.offset, &buffer);
                    }
                    for (request, position) in group.drain(..).zip(positions) {
                        let _ = request.reply.send(Ok(position));
                    }
                }
                Err(err) => {
                    tracing::error!(%err, items = group.len(), "log group commit failed");
                    let reason = err.to_string();
                    for request in group.drain(..) {
                        let _ = request
                            .reply
                            .send(Err(StoreError::Unavailable(reason.clone())));
                    }
                }
            }
            buffer.clear();
            if buffer.capacity() > MAX_GROUP_BYTES {
                buffer = Vec::new();
            }
        }
    }

    /// Seals a group's frames and writes them with one write and one fdatasync.
    fn commit(
        &mut self,
        group: &mut [Request],
        buffer: &mut Vec<u8>,
    ) -> Result<Vec<Position>, StoreError> {
        if let Some(reason) = &self.failed {
            return Err(StoreError::Unavailable(format!(
                "log failed earlier: {reason}"
            )));
        }
        let total: u64 = group.iter().map(|r| r.len() as u64).sum();
        if self.len > 0 && self.len + total > self.segment_size {
            self.rotate()?;
        }
        let mut positions = Vec::with_capacity(group.len());
        let mut offset = self.len;
        for request in group.iter_mut() {
            positions.push(Position {
                segment: self.number,
                offset,
            });
            for frame in request.frames.drain(..) {
                let len = frame.len() as u64;
                buffer.extend_from_slice(&frame.seal(self.number, offset));
                offset += len;
            }
        }
        let path = segment_path(&self.dir, self.number);
        let written = self
            .seam
            .run(Step::AppendWrite, &path, || {
                self.file.write_all_at(buffer, self.len)
            })
            .map_err(|err| ("appending to log segment", err, false));
        let must_sync = group.iter().any(|r| r.sync) && self.synced < offset;
        let synced = written.and_then(|()| match must_sync {
            true => self
                .seam
                .run(Step::AppendSync, &path, || self.file.sync_data())
                .map_err(|err| ("syncing log segment", err, true)),
            false => Ok(()),
        });
        let Err((context, err, sync_failed)) = synced else {
            self.len = offset;
            if must_sync {
                self.synced = offset;
            }
            self.prepared = self.prepared.max(offset);
            return Ok(positions);
        };
        // Whatever part of the group reached the file goes, so that it is never
        // read back as if durable; after a failed sync, so does whatever was
        // appended unsynced before it.
        let back_to = if sync_failed { self.synced } else { self.len };
        let cut = self
            .seam
            .run(Step::AppendCutBack, &path, || self.file.set_len(back_to));
        if let Err(cut) = cut {
            self.failed = Some(format!(
                "cannot cut back {} after a failed append: {cut}",
                path.display()
            ));
        } else {
            self.len = back_to;
            self.prepared = back_to;
        }
        if self.failed.is_none() && sync_failed {
            self.failed = Some(format!("fdatasync of {} failed: {err}", path.display()));
        }
        Err(StoreError::io(context, path, err))
    }

    /// Starts the next segment: creates it (or takes it as it is, empty, if a
    /// rotation failed after creating it), and makes its entry durable before
    /// anything is appended to it.
    fn rotate(&mut self) -> Result<(), StoreError> {
        if self.synced < self.len {
            // Frames appended unsynced: durable before the log moves on.
            let path = segment_path(&self.dir, self.number);
            if let Err(err) = self
                .seam
                .run(Step::AppendSync, &path, || self.file.sync_data())
            {
                self.failed = Some(format!("fdatasync of {} failed: {err}", path.display()));
                return Err(StoreError::io("syncing log segment", path, err));
            }
            self.synced = self.len;
        }
        let number = self.number + 1;
        let path = segment_path(&self.dir, number);
        let file = self
            .seam
            .run(Step::RotateCreate, &path, || {
                // Not `append`: frames are written at the log's end, which is
                // before the file's once space is prepared.
                OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o600)
                    .open(&path)
            })
            .map_err(io_err("creating log segment", &path))?;
        let len = file
            .metadata()
            .map_err(io_err("reading metadata of", &path))?
            .len();
        if len != 0 {
            // Only a rotation creates segments past the current one.
            self.failed = Some(format!("{} exists and is not empty", path.display()));
            return Err(StoreError::Unavailable(format!(
                "log segment {} exists and is not empty",
                path.display()
            )));
        }
        sync_dir(&self.seam, Step::RotateSyncDir, &self.dir)?;
        lock(&self.ends).insert(self.number, self.len);
        self.file = file;
        self.number = number;
        self.current.store(number, Ordering::Release);
        self.len = 0;
        self.synced = 0;
        self.prepared = 0;
        self.preparing = true;
        Ok(())
    }

    /// Whether the current segment wants more prepared space.
    fn wants_space(&self) -> bool {
        self.preparing
            && self.failed.is_none()
            && self.prepared < self.segment_size
            && self.prepared - self.len < PREPARE_LOW
    }

    /// Zero-fills the next chunk of the current segment and makes it durable.
    /// If that fails, the zeros are cut off again (the committed frames before
    /// them are durable already) and this segment gets no more prepared space.
    fn prepare(&mut self) {
        let at = self.prepared;
        let len = (self.segment_size - at).min(PREPARE_CHUNK as u64);
        let path = segment_path(&self.dir, self.number);
        let zeros = &ZEROS[..len as usize];
        let prepared = self
            .seam
            .run(Step::PrepareWrite, &path, || {
                self.file.write_all_at(zeros, at)
            })
            .and_then(|()| {
                self.seam
                    .run(Step::PrepareSync, &path, || self.file.sync_data())
            });
        let Err(err) = prepared else {
            self.prepared = at + len;
            // That sync made every frame before the zeros durable too.
            self.synced = self.len;
            return;
        };
        tracing::warn!(path = %path.display(), %err, "cannot prepare log space; appending without it");
        self.preparing = false;
        let cut = self
            .seam
            .run(Step::PrepareCutBack, &path, || self.file.set_len(at));
        if let Err(cut) = cut {
            self.failed = Some(format!(
                "cannot cut back {} after failing to prepare space: {cut}",
                path.display()
            ));
        }
    }
}

impl Request {
    fn len(&self) -> usize {
        self.frames.iter().map(Unsealed::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip() {
        let path = segment_path(Path::new("/s"), 42);
        assert_eq!(path, Path::new("/s/00000042.log"));
        assert_eq!(segment_number("00000042.log"), Some(42));
        for bad in [
            "0000042.log",
            "00000042.rec",
            "0000004x.log",
            "../00000001.log",
            "+0000001.log",
        ] {
            assert_eq!(segment_number(bad), None, "{bad}");
        }
    }
}
