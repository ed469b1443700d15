//! The machine's limits, measured in the same run as Ferry's figures: what the
//! disk writes with fsync, what loopback TCP carries, what the ciphers and the hash
//! do on one core.

use crate::Rate;
use anyhow::{Context, Result, bail};
use ferry_crypto::{CryptoError, FernetKey, Keyring, RecordReader, Sealer, StorageKey};
use sha2::{Digest, Sha256};
use std::io::Cursor;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `dd if=/dev/zero of=DIR/ddtest bs=1M count=MIB conv=fdatasync`, timed from
/// start to exit (so the final fdatasync is inside); the file is removed after.
pub async fn disk_fsync(dir: &Path, mib: u64) -> Result<Rate> {
    let file = dir.join("ddtest");
    let started = Instant::now();
    let output = tokio::process::Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", file.display()))
        .arg("bs=1M")
        .arg(format!("count={mib}"))
        .arg("conv=fdatasync")
        .output()
        .await
        .context("running dd")?;
    let elapsed = started.elapsed();
    let _ = std::fs::remove_file(&file);
    if !output.status.success() {
        bail!("dd failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(Rate::new(mib << 20, elapsed))
}

/// `bytes` written in 1 MiB blocks to a new file under `dir`, without a sync:
/// the kernel copying them into its page cache, on one core (the file is
/// removed after). Every byte a server stores is copied so once; blocking,
/// so call it from a blocking thread.
pub fn page_cache_write(dir: &Path, bytes: u64) -> Result<Rate> {
    use std::io::Write;

    const BLOCK: usize = 1 << 20;
    let path = dir.join("pagecachetest");
    let result = (|| {
        let mut file = std::fs::File::create(&path)?;
        let block = vec![b'p'; BLOCK];
        let started = Instant::now();
        let mut left = bytes;
        while left > 0 {
            let n = left.min(BLOCK as u64) as usize;
            file.write_all(&block[..n])?;
            left -= n as u64;
        }
        std::io::Result::Ok(Rate::new(bytes, started.elapsed()))
    })();
    let _ = std::fs::remove_file(&path);
    result.with_context(|| format!("writing into the page cache in {}", dir.display()))
}

/// `bytes` through one loopback TCP connection in 1 MiB writes, in-process,
/// timed until the receiver has read the last byte.
pub async fn loopback(bytes: u64) -> Result<Rate> {
    const WRITE: usize = 1 << 20;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let receiver = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await?;
        let mut buf = vec![0u8; WRITE];
        let mut got = 0u64;
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        Ok::<_, std::io::Error>((got, Instant::now()))
    });
    let mut stream = TcpStream::connect(addr).await?;
    let block = vec![b'x'; WRITE];
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        let n = WRITE.min(usize::try_from(bytes - sent).unwrap_or(WRITE));
        stream.write_all(&block[..n]).await?;
        sent += n as u64;
    }
    stream.shutdown().await?;
    let (got, ended) = receiver.await??;
    if got != bytes {
        bail!("loopback: sent {bytes} bytes, received {got}");
    }
    Ok(Rate::new(bytes, ended - started))
}

/// Fernet on one core through [`FernetKey`], in the protocol's 48,000-byte pieces.
#[derive(Debug, Clone, Copy)]
pub struct CipherRates {
    pub encrypt: Rate,
    pub decrypt: Rate,
    /// Encrypt then decrypt each piece: plaintext bytes over the time of both.
    pub round_trip: Rate,
}

/// Encrypts `bytes` of plaintext in 48,000-byte pieces, then decrypts the tokens;
/// blocking, so call it from a blocking thread.
pub fn cipher(bytes: u64) -> Result<CipherRates> {
    const PIECE: usize = 48_000;
    let key = FernetKey::generate();
    let piece = vec![b'a'; PIECE];
    let pieces = bytes.div_ceil(PIECE as u64).max(1);
    let (mut encrypt, mut decrypt) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..pieces {
        let started = Instant::now();
        let sealed = std::hint::black_box(key.encrypt(std::hint::black_box(&piece)));
        let middle = Instant::now();
        let opened = key
            .decrypt(std::hint::black_box(&sealed))
            .context("decrypting our own token")?;
        decrypt += middle.elapsed();
        encrypt += middle - started;
        std::hint::black_box(opened);
    }
    let total = pieces * PIECE as u64;
    Ok(CipherRates {
        encrypt: Rate::new(total, encrypt),
        decrypt: Rate::new(total, decrypt),
        round_trip: Rate::new(total, encrypt + decrypt),
    })
}

/// What the store does to every plaintext byte it keeps, on one core, in the
/// 1 MiB batches it works in: the item's SHA-256 and the AES-256-GCM record; and
/// what it does to every byte it serves back: opening the record and reading it,
/// each chunk authenticated.
#[derive(Debug, Clone, Copy)]
pub struct AtRestRates {
    pub sha256: Rate,
    pub seal: Rate,
    pub open: Rate,
}

/// The largest record [`at_rest`] opens and reads (read again until `bytes`).
const RECORD_MAX: u64 = 64 << 20;

/// Hashes `bytes` of plaintext, seals them into one record, then opens and reads
/// records back until as many bytes have been read; blocking, so call it from a
/// blocking thread.
pub fn at_rest(bytes: u64) -> Result<AtRestRates> {
    const BATCH: usize = 1 << 20;
    let batch = vec![b'a'; BATCH];
    let batches = bytes.div_ceil(BATCH as u64).max(1);
    let total = batches * BATCH as u64;

    let started = Instant::now();
    let mut hasher = Sha256::new();
    for _ in 0..batches {
        hasher.update(std::hint::black_box(&batch));
    }
    std::hint::black_box(hasher.finalize());
    let sha256 = Rate::new(total, started.elapsed());

    let mut sealer = Sealer::new(&StorageKey::generate());
    let mut sealed = Vec::with_capacity(2 * BATCH);
    let started = Instant::now();
    for _ in 0..batches {
        sealer.push(std::hint::black_box(&batch), &mut sealed);
        std::hint::black_box(&sealed);
        sealed.clear();
    }
    let seal = Rate::new(total, started.elapsed());

    let key = StorageKey::generate();
    let mut sealer = Sealer::new(&key);
    let mut record = Vec::new();
    let record_batches = total.min(RECORD_MAX) / BATCH as u64;
    for _ in 0..record_batches {
        sealer.push(&batch, &mut record);
    }
    let record_len = sealer.plaintext_len();
    sealer.finish(b"", &mut record);
    let keyring = Keyring::new(key, Vec::new());
    let reads = total.div_ceil(record_len);
    let started = Instant::now();
    for _ in 0..reads {
        let source = Cursor::new(record.as_slice());
        let mut reader = RecordReader::open(&keyring, source, 0, record.len() as u64)
            .context("opening our own record")?;
        reader
            .read_range(0, record_len, |plaintext| {
                std::hint::black_box(plaintext);
                Ok::<_, CryptoError>(())
            })
            .context("reading our own record")?;
    }
    let open = Rate::new(reads * record_len, started.elapsed());
    Ok(AtRestRates { sha256, seal, open })
}

/// What the disk does for small synced writes, one at a time: the most items a
/// store that syncs each one before answering can commit from one client.
#[derive(Debug, Clone, Copy)]
pub struct SyncRates {
    /// Appending 200 bytes to a file, then `fdatasync` (the file grows: the sync
    /// also writes the inode).
    pub append: Rate,
    /// Overwriting 200 bytes of space written and synced before, then
    /// `fdatasync` (only data is written).
    pub overwrite: Rate,
    /// The same with [`FRAME_WRITE`]-byte records: what the store writes for
    /// the benchmark's small dictionary.
    pub overwrite_frame: Rate,
}

/// The size of [`SyncRates`]' writes (the issue that asked for them used 200).
pub const SMALL_WRITE: usize = 200;

/// The log frame of the benchmark's small dictionary: 43 bytes of JSON sealed
/// with its metadata (id, times, peer, SHA-256, key id) and framed, as
/// `ferry_store` writes it today (seen with `strace -e pwrite64`).
pub const FRAME_WRITE: usize = 450;

/// `count` synced appends of [`SMALL_WRITE`] bytes, then `count` synced
/// overwrites of prepared space of [`SMALL_WRITE`] and of [`FRAME_WRITE`] bytes,
/// in a file under `dir` (removed after); blocking, so call it from a blocking
/// thread.
pub fn sync_writes(dir: &Path, count: u64) -> Result<SyncRates> {
    use std::fs::OpenOptions;
    use std::io::Write;

    let path = dir.join("synctest");
    let result = (|| {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        let record = [b'r'; SMALL_WRITE];
        let started = Instant::now();
        for _ in 0..count {
            file.write_all(&record)?;
            file.sync_data()?;
        }
        let append = Rate::new(count, started.elapsed());
        let overwrite = overwrites(&path, SMALL_WRITE, count)?;
        let overwrite_frame = overwrites(&path, FRAME_WRITE, count)?;
        std::io::Result::Ok(SyncRates {
            append,
            overwrite,
            overwrite_frame,
        })
    })();
    let _ = std::fs::remove_file(&path);
    result.with_context(|| format!("synced small writes in {}", dir.display()))
}

/// `count` writes of `size` bytes, one after the other, each followed by
/// `fdatasync`, over `path` zero-filled and synced first.
fn overwrites(path: &Path, size: usize, count: u64) -> std::io::Result<Rate> {
    use std::os::unix::fs::FileExt;

    let file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    file.write_all_at(&vec![0; size * count as usize], 0)?;
    file.sync_all()?;
    let record = vec![b'r'; size];
    let started = Instant::now();
    for i in 0..count {
        file.write_all_at(&record, i * size as u64)?;
        file.sync_data()?;
    }
    Ok(Rate::new(count, started.elapsed()))
}

/// What one encrypted transfer costs per byte, spread over `cores`: Fernet
/// encrypt (client) and decrypt (server), the item's SHA-256 and the AES-256-GCM
/// sealing, each at its one-core rate. No transfer through both processes on
/// this machine can go faster.
pub fn encrypted_ceiling(cipher: &CipherRates, at_rest: &AtRestRates, cores: usize) -> f64 {
    let per_byte: f64 = [cipher.encrypt, cipher.decrypt, at_rest.sha256, at_rest.seal]
        .iter()
        .map(|rate| 1.0 / rate.mb_per_sec())
        .sum();
    cores as f64 / per_byte
}

/// [`encrypted_ceiling`] with one more step per byte: the server's copy of it
/// into the page cache, at `page_cache`'s one-core rate.
pub fn with_page_cache(ceiling: f64, page_cache: &Rate, cores: usize) -> f64 {
    let per_byte = cores as f64 / ceiling + 1.0 / page_cache.mb_per_sec();
    cores as f64 / per_byte
}
