//! Tests of the store's file operations through its seam: each finding of the
//! durability review (findings.rs), and a crash at every step (crash.rs).

mod catalog;
mod crash;
mod findings;
mod holds;
mod keys;
mod leaf_sync;
mod prepared;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_crypto::{Keyring, StorageKey};
use ferry_protocol::{DataType, Serialization};
use futures::TryStreamExt;

use super::LocalStore;
use super::faults::Faults;
use super::seam::Seam;
use crate::{ItemId, ItemMeta, LocalOptions, NewItem, Store, StoreError};

/// Small segments and a small inline limit, so that a few items exercise every
/// path. Without the store's log: these tests count the steps of the items' log,
/// which the ledger's would share (the crash scenarios open with it,
/// [`open_logged`]).
pub(super) fn options() -> LocalOptions {
    LocalOptions {
        segment_size: 64 << 10,
        inline_max: 16 << 10,
        ledger: false,
        ..LocalOptions::default()
    }
}

/// A temporary directory, in memory where there is one (fsyncs cost nothing:
/// what a power loss keeps is modelled by [`Faults`]).
pub(super) fn tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

pub(super) async fn open(
    dir: &Path,
    key: &StorageKey,
    faults: &Arc<Faults>,
) -> Result<Arc<LocalStore>, StoreError> {
    let keyring = Keyring::new(key.clone(), vec![]);
    LocalStore::open_with(dir, keyring, options(), Seam::with(faults.clone())).await
}

/// [`open`] with the store's log.
pub(super) async fn open_logged(
    dir: &Path,
    key: &StorageKey,
    faults: &Arc<Faults>,
) -> Result<Arc<LocalStore>, StoreError> {
    let keyring = Keyring::new(key.clone(), vec![]);
    let options = LocalOptions {
        ledger: true,
        ..options()
    };
    LocalStore::open_with(dir, keyring, options, Seam::with(faults.clone())).await
}

/// Deterministic content of `len` bytes.
pub(super) fn content(len: usize, seed: u32) -> Vec<u8> {
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)).to_be_bytes()[0]
        })
        .collect()
}

/// A text item from a test peer.
pub(super) fn text_item() -> NewItem {
    NewItem {
        data_type: DataType::Text,
        serialization: Serialization::Txt,
        encrypted_in_transit: false,
        peer: "10.0.0.1:1".into(),
        name: None,
    }
}

/// Writes `data` as one item and commits.
pub(super) async fn put(store: &LocalStore, data: &[u8]) -> Result<ItemMeta, StoreError> {
    let mut writer = store.begin(text_item()).await?;
    for packet in data.chunks(64 << 10) {
        writer.write(packet).await?;
    }
    writer.commit().await
}

/// An item's whole content.
pub(super) async fn read(store: &LocalStore, id: ItemId) -> Result<Option<Vec<u8>>, StoreError> {
    let Some((_, stream)) = store.open(id, None).await? else {
        return Ok(None);
    };
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await?;
    Ok(Some(chunks.concat()))
}

/// A store's directory, key and fault hook.
pub(super) struct Fixture {
    pub dir: tempfile::TempDir,
    pub key: StorageKey,
    pub faults: Arc<Faults>,
}

impl Fixture {
    pub(super) fn new() -> Fixture {
        Fixture {
            dir: tempdir(),
            key: StorageKey::generate(),
            faults: Arc::new(Faults::default()),
        }
    }

    pub(super) async fn open(&self) -> Arc<LocalStore> {
        open(self.dir.path(), &self.key, &self.faults)
            .await
            .unwrap()
    }

    /// Opens the store again as a restarted process would: no faults.
    pub(super) async fn reopen(&self) -> Arc<LocalStore> {
        self.faults.restart();
        self.open().await
    }

    pub(super) fn segment(&self, number: u32) -> PathBuf {
        segment(self.dir.path(), number)
    }
}

/// `count` items of `len` bytes, `content(len, i)` for the i-th.
pub(super) async fn fill(store: &LocalStore, count: u32, len: usize) -> Vec<ItemMeta> {
    let mut metas = Vec::new();
    for i in 0..count {
        metas.push(put(store, &content(len, i)).await.unwrap());
    }
    metas
}

/// The segment files of the store in `dir`.
pub(super) fn segment(dir: &Path, number: u32) -> PathBuf {
    super::log::segment_path(&dir.join("segments"), number)
}

/// Where the log ends in a segment file: after its last frame (prepared space
/// may follow, see [`log`](super::log)).
pub(super) fn log_end(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let mut at = 0;
    while bytes.get(at..at + 4) == Some(b"FRYL") {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        at += super::frame::HEADER_LEN + len as usize;
    }
    at as u64
}
