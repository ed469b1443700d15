//! Writes of a large item's sealed bytes that bypass the page cache.
//!
//! Those bytes are written once and not read again until someone downloads the
//! item, so copying them into the kernel's page cache only costs CPU (on the
//! bench's VM from 0.2 to 2 s of system time per GiB, against about 0.1 s with
//! `O_DIRECT`) and evicts what readers use. [`DirectFile`] gathers the bytes in a
//! buffer aligned for `O_DIRECT` and writes its whole blocks through a second,
//! `O_DIRECT` handle; the last, partial block goes through the ordinary handle.
//! Durability is unchanged: `O_DIRECT` alone promises nothing, and the commit's
//! `fdatasync` (on the ordinary handle: it covers the whole file) is still what
//! makes the bytes durable. Where the file system refuses `O_DIRECT`, every byte
//! goes through the ordinary handle.

use std::fs::{File, OpenOptions};
use std::io;
use std::mem;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::seam::{Seam, Step};

/// The alignment `O_DIRECT` asks of memory, file offsets and lengths (the page
/// size, which covers every logical block size in use).
const BLOCK: usize = 4096;

/// A file written from the start, whole blocks with `O_DIRECT` on a blocking
/// thread while the caller gathers the next ones (an `O_DIRECT` write returns
/// only once the device has the bytes).
pub(crate) struct DirectFile {
    file: Arc<File>,
    direct: Option<Arc<File>>,
    path: PathBuf,
    seam: Seam,
    /// Bytes handed to writes so far: whole blocks until [`DirectFile::write_all`].
    written: u64,
    /// Where bytes are gathered.
    buf: Aligned,
    /// The other buffer, when no write holds it.
    spare: Option<Aligned>,
    in_flight: Option<JoinHandle<Written>>,
}

/// What a write in flight gives back: its buffer, its outcome, and whether the
/// file system refused `O_DIRECT`.
type Written = (Aligned, io::Result<()>, bool);

impl std::fmt::Debug for DirectFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectFile")
            .field("path", &self.path)
            .field("direct", &self.direct.is_some())
            .field("written", &self.written)
            .field("gathered", &self.pending())
            .finish_non_exhaustive()
    }
}

impl DirectFile {
    /// Writes to `file` (an empty file just created at `path`), gathering up to
    /// `capacity` bytes between writes without reallocating. Each write goes
    /// through `seam` as [`Step::PartWrite`].
    pub(crate) fn new(file: File, path: &Path, capacity: usize, seam: Seam) -> DirectFile {
        let direct = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok()
            .map(Arc::new);
        DirectFile {
            file: Arc::new(file),
            direct,
            path: path.to_owned(),
            seam,
            written: 0,
            buf: Aligned::new(capacity),
            spare: None,
            in_flight: None,
        }
    }

    /// Where the bytes to write are gathered: append to it.
    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf.vec
    }

    /// The ordinary handle, for syncs.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Bytes gathered and not handed to a write yet.
    pub(crate) fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Hands the whole blocks gathered to a write on a blocking thread (after
    /// the previous write ends; its error, if any, is returned here); the rest
    /// waits for more bytes. Returns how many bytes the previous write wrote.
    pub(crate) fn write_blocks(&mut self) -> io::Result<usize> {
        let whole = self.buf.len() / BLOCK * BLOCK;
        if whole == 0 {
            return Ok(0);
        }
        let done = self.wait()?;
        if !self.buf.is_aligned() {
            self.buf = self.buf.realigned();
        }
        let mut next = self
            .spare
            .take()
            .unwrap_or_else(|| Aligned::new(self.buf.room()));
        next.vec.extend_from_slice(&self.buf.bytes()[whole..]);
        self.buf.vec.truncate(self.buf.pad + whole);
        let full = mem::replace(&mut self.buf, next);
        let offset = self.written;
        self.written += whole as u64;
        let (file, direct) = (self.file.clone(), self.direct.clone());
        let (seam, path) = (self.seam.clone(), self.path.clone());
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            let mut refused = false;
            let result = seam.run(Step::PartWrite, &path, || {
                write_at(&file, direct.as_deref(), full.bytes(), offset, &mut refused)
            });
            (full, result, refused)
        }));
        Ok(done)
    }

    /// Writes everything gathered, the last partial block through the ordinary
    /// handle, and waits for every write. Returns how many bytes were written
    /// since the last call that returned a count.
    pub(crate) fn write_all(&mut self) -> io::Result<usize> {
        let mut done = self.write_blocks()?;
        done += self.wait()?;
        let (file, rest) = (&self.file, self.buf.bytes());
        self.seam.run(Step::PartWrite, &self.path, || {
            file.write_all_at(rest, self.written)
        })?;
        self.written += rest.len() as u64;
        done += rest.len();
        self.buf.vec.truncate(self.buf.pad);
        Ok(done)
    }

    /// Waits for the write in flight; how many bytes it wrote.
    fn wait(&mut self) -> io::Result<usize> {
        let Some(task) = self.in_flight.take() else {
            return Ok(0);
        };
        let (mut buf, result, refused) = tokio::runtime::Handle::current()
            .block_on(task)
            .map_err(io::Error::other)?;
        if refused {
            self.direct = None;
        }
        result?;
        let written = buf.len();
        buf.vec.truncate(buf.pad);
        self.spare = Some(buf);
        Ok(written)
    }
}

/// Writes `bytes` at `offset`, with `direct` if given; the ordinary handle if
/// the file system refuses it there (some accept `O_DIRECT` at open and refuse
/// it at write), which sets `refused`.
fn write_at(
    file: &File,
    direct: Option<&File>,
    bytes: &[u8],
    offset: u64,
    refused: &mut bool,
) -> io::Result<()> {
    if let Some(direct) = direct {
        match direct.write_all_at(bytes, offset) {
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
                tracing::debug!(%err, "O_DIRECT refused, writing through the page cache");
                *refused = true;
            }
            done => return done,
        }
    }
    file.write_all_at(bytes, offset)
}

/// A buffer whose bytes start on a block boundary: `vec[..pad]` is unused.
struct Aligned {
    vec: Vec<u8>,
    pad: usize,
}

impl Aligned {
    /// Room for `capacity` bytes.
    fn new(capacity: usize) -> Aligned {
        let mut vec: Vec<u8> = Vec::with_capacity(capacity + BLOCK);
        let pad = vec.as_ptr().align_offset(BLOCK);
        vec.resize(pad, 0);
        Aligned { vec, pad }
    }

    fn bytes(&self) -> &[u8] {
        &self.vec[self.pad..]
    }

    fn len(&self) -> usize {
        self.vec.len() - self.pad
    }

    /// Bytes it holds without reallocating.
    fn room(&self) -> usize {
        self.vec.capacity() - self.pad
    }

    /// Whether the bytes still start on a block boundary (they do not once
    /// more than the capacity was appended and the vector moved).
    fn is_aligned(&self) -> bool {
        self.bytes().as_ptr().align_offset(BLOCK) == 0
    }

    /// The same bytes in a new, aligned buffer with the same room.
    fn realigned(&self) -> Aligned {
        let mut new = Aligned::new(self.room());
        new.vec.extend_from_slice(self.bytes());
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Runs `f` on a blocking thread of a runtime, where the store runs it.
    fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime
            .block_on(async { tokio::task::spawn_blocking(f).await })
            .unwrap()
    }

    fn open(path: &Path, capacity: usize) -> DirectFile {
        let file = File::create_new(path).unwrap();
        DirectFile::new(file, path, capacity, Seam::default())
    }

    /// Writes `pieces` (their lengths) gathered one after another; what the file
    /// holds and what was gathered.
    fn written(path: PathBuf, pieces: Vec<usize>, capacity: usize) -> (Vec<u8>, Vec<u8>) {
        blocking(move || {
            let mut out = open(&path, capacity);
            let (mut expected, mut counted) = (Vec::new(), 0);
            for (n, len) in pieces.iter().enumerate() {
                let piece = bytes(*len, n as u8);
                out.buffer().extend_from_slice(&piece);
                expected.extend_from_slice(&piece);
                counted += out.write_blocks().unwrap();
                assert!(out.pending() < BLOCK);
            }
            counted += out.write_all().unwrap();
            out.file().sync_data().unwrap();
            assert_eq!((out.pending(), counted), (0, expected.len()));
            let mut got = Vec::new();
            File::open(&path).unwrap().read_to_end(&mut got).unwrap();
            std::fs::remove_file(&path).unwrap();
            (got, expected)
        })
    }

    #[test]
    fn what_is_written_is_what_was_gathered_whatever_the_pieces() {
        let dir = tempfile::tempdir().unwrap();
        for pieces in [
            vec![],
            vec![1],
            vec![BLOCK],
            vec![BLOCK - 1, 1, BLOCK + 1, 3 * BLOCK],
            vec![100_000, 200_001, 7, 65_536, 1 << 20],
        ] {
            let (got, expected) = written(dir.path().join("part"), pieces.clone(), 1 << 20);
            assert!(got == expected, "pieces {pieces:?}");
        }
    }

    #[test]
    fn a_buffer_grown_beyond_its_capacity_is_realigned() {
        let dir = tempfile::tempdir().unwrap();
        let (got, expected) = written(dir.path().join("part"), vec![10_000, 50_000, 123_457], 8192);
        assert!(got == expected);
    }

    #[test]
    fn direct_writes_are_used_where_the_file_system_takes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part");
        let out = blocking(move || {
            let mut out = open(&path, 1 << 16);
            let direct_at_open = out.direct.is_some();
            for n in 0..4 {
                out.buffer().extend_from_slice(&bytes(3 * BLOCK + 5, n));
                out.write_blocks().unwrap();
            }
            out.write_all().unwrap();
            direct_at_open.then_some(out)
        });
        // The temporary directory's file system (ext4 here and in CI) takes them;
        // one that does not is still written correctly (the tests above).
        if let Some(out) = out {
            assert!(out.direct.is_some(), "O_DIRECT fell back: {out:?}");
        }
    }

    #[test]
    fn a_write_refused_with_o_direct_goes_through_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part");
        let out = blocking({
            let path = path.clone();
            move || open(&path, 1 << 16)
        });
        let Some(direct) = out.direct.as_deref() else {
            return; // no O_DIRECT here: every write is already ordinary
        };
        // Misaligned memory: O_DIRECT refuses it with EINVAL.
        let mut buf = Aligned::new(2 * BLOCK);
        buf.vec.extend_from_slice(&bytes(BLOCK + 1, 9));
        let mut refused = false;
        write_at(&out.file, Some(direct), &buf.bytes()[1..], 0, &mut refused).unwrap();
        assert!(refused);
        assert_eq!(std::fs::read(&path).unwrap(), &buf.bytes()[1..]);
    }
}
