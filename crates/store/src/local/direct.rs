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
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// The alignment `O_DIRECT` asks of memory, file offsets and lengths (the page
/// size, which covers every logical block size in use).
const BLOCK: usize = 4096;

/// A file written from the start, whole blocks with `O_DIRECT`.
pub(crate) struct DirectFile {
    file: File,
    direct: Option<File>,
    /// Bytes written to the file so far: whole blocks until [`DirectFile::write_all`].
    written: u64,
    /// `buf[..pad]` is unused, so that `buf[pad..]`, the bytes not written yet,
    /// starts on a block boundary.
    buf: Vec<u8>,
    pad: usize,
}

impl std::fmt::Debug for DirectFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectFile")
            .field("direct", &self.direct.is_some())
            .field("written", &self.written)
            .field("buffered", &self.pending())
            .finish_non_exhaustive()
    }
}

impl DirectFile {
    /// Writes to `file` (an empty file just created at `path`), gathering up to
    /// `capacity` bytes between writes without reallocating.
    pub(crate) fn new(file: File, path: &Path, capacity: usize) -> DirectFile {
        let direct = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok();
        let (buf, pad) = aligned_buffer(capacity);
        DirectFile {
            file,
            direct,
            written: 0,
            buf,
            pad,
        }
    }

    /// Where the bytes to write are gathered: append to it.
    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// The ordinary handle, for syncs.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Bytes gathered and not written yet.
    pub(crate) fn pending(&self) -> usize {
        self.buf.len() - self.pad
    }

    /// Writes the whole blocks gathered; the rest waits for more bytes.
    /// Returns how many bytes were written.
    pub(crate) fn write_blocks(&mut self) -> io::Result<usize> {
        let whole = self.pending() / BLOCK * BLOCK;
        if whole == 0 {
            return Ok(0);
        }
        if self.buf.as_ptr().wrapping_add(self.pad).align_offset(BLOCK) != 0 {
            self.realign();
        }
        let start = self.pad;
        self.write_direct(start..start + whole)?;
        self.buf.copy_within(start + whole.., start);
        self.buf.truncate(self.buf.len() - whole);
        Ok(whole)
    }

    /// Writes everything gathered, the last partial block through the
    /// ordinary handle. Returns how many bytes were written.
    pub(crate) fn write_all(&mut self) -> io::Result<usize> {
        let whole = self.write_blocks()?;
        let rest = &self.buf[self.pad..];
        self.file.write_all_at(rest, self.written)?;
        self.written += rest.len() as u64;
        let written = whole + rest.len();
        self.buf.truncate(self.pad);
        Ok(written)
    }

    fn write_direct(&mut self, range: std::ops::Range<usize>) -> io::Result<()> {
        let bytes = &self.buf[range];
        if let Some(direct) = &self.direct {
            match direct.write_all_at(bytes, self.written) {
                Ok(()) => {
                    self.written += bytes.len() as u64;
                    return Ok(());
                }
                // Accepted at open, refused at write (some file systems do):
                // the ordinary handle writes the same bytes, now and from now on.
                Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
                    tracing::debug!(%err, "O_DIRECT refused, writing through the page cache");
                    self.direct = None;
                }
                Err(err) => return Err(err),
            }
        }
        self.file.write_all_at(bytes, self.written)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Moves the bytes gathered to an aligned buffer, after the caller
    /// appended more than the capacity and the buffer moved.
    fn realign(&mut self) {
        let (mut buf, pad) = aligned_buffer(self.buf.capacity());
        buf.extend_from_slice(&self.buf[self.pad..]);
        self.buf = buf;
        self.pad = pad;
    }
}

/// A buffer of `capacity` bytes after `pad` unused ones, the first of them on a
/// block boundary.
fn aligned_buffer(capacity: usize) -> (Vec<u8>, usize) {
    let mut buf: Vec<u8> = Vec::with_capacity(capacity + BLOCK);
    let pad = buf.as_ptr().align_offset(BLOCK);
    buf.resize(pad, 0);
    (buf, pad)
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

    fn written(dir: &tempfile::TempDir, pieces: &[usize], capacity: usize) -> (Vec<u8>, Vec<u8>) {
        let path = dir.path().join("part");
        let file = File::create_new(&path).unwrap();
        let mut out = DirectFile::new(file, &path, capacity);
        let mut expected = Vec::new();
        for (n, len) in pieces.iter().enumerate() {
            let piece = bytes(*len, n as u8);
            out.buffer().extend_from_slice(&piece);
            expected.extend_from_slice(&piece);
            out.write_blocks().unwrap();
            assert!(out.pending() < BLOCK);
        }
        out.write_all().unwrap();
        out.file().sync_data().unwrap();
        assert_eq!(out.pending(), 0);
        let mut got = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut got).unwrap();
        (got, expected)
    }

    #[test]
    fn what_is_written_is_what_was_gathered_whatever_the_pieces() {
        let dir = tempfile::tempdir().unwrap();
        for pieces in [
            &[][..],
            &[1],
            &[BLOCK],
            &[BLOCK - 1, 1, BLOCK + 1, 3 * BLOCK],
            &[100_000, 200_001, 7, 65_536],
        ] {
            let (got, expected) = written(&dir, pieces, 1 << 20);
            assert_eq!(got, expected, "pieces {pieces:?}");
            std::fs::remove_file(dir.path().join("part")).unwrap();
        }
    }

    #[test]
    fn a_buffer_grown_beyond_its_capacity_is_realigned() {
        let dir = tempfile::tempdir().unwrap();
        let (got, expected) = written(&dir, &[10_000, 50_000, 123_457], 8192);
        assert_eq!(got, expected);
    }

    #[test]
    fn direct_writes_are_used_where_the_file_system_takes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part");
        let mut out = DirectFile::new(File::create_new(&path).unwrap(), &path, 1 << 16);
        let direct_at_open = out.direct.is_some();
        out.buffer().extend_from_slice(&bytes(3 * BLOCK + 5, 1));
        out.write_all().unwrap();
        // The temporary directory's file system (ext4 here and in CI) takes them;
        // one that does not is still written correctly (the tests above).
        if direct_at_open {
            assert!(out.direct.is_some(), "O_DIRECT fell back: {out:?}");
        }
    }
}
