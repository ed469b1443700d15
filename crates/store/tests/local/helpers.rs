//! Shared test helpers.

use std::path::Path;
use std::sync::Arc;

use ferry_crypto::{Keyring, StorageKey};
use ferry_protocol::{DataType, Serialization};
use ferry_store::{ItemMeta, LocalOptions, LocalStore, NewItem, Store};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};

pub fn keyring(key: &StorageKey) -> Keyring {
    Keyring::new(key.clone(), vec![])
}

pub async fn open(dir: &Path, key: &StorageKey) -> Arc<LocalStore> {
    LocalStore::open(dir, keyring(key), LocalOptions::default())
        .await
        .unwrap()
}

pub fn dict(peer: &str) -> NewItem {
    NewItem {
        data_type: DataType::Dictionary,
        serialization: Serialization::Json,
        encrypted_in_transit: false,
        peer: peer.into(),
        name: None,
    }
}

pub fn text(peer: &str, name: &str) -> NewItem {
    NewItem {
        data_type: DataType::Text,
        serialization: Serialization::Txt,
        encrypted_in_transit: true,
        peer: peer.into(),
        name: Some(name.into()),
    }
}

/// Deterministic content of `len` bytes.
pub fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

/// Writes `data` in packets of 48,000 bytes and commits.
pub async fn put(store: &dyn Store, item: NewItem, data: &[u8]) -> ItemMeta {
    let mut writer = store.begin(item).await.unwrap();
    for packet in data.chunks(48_000) {
        writer.write(packet).await.unwrap();
    }
    writer.commit().await.unwrap()
}

/// Reads an item (or a range of it) whole.
pub async fn read(
    store: &dyn Store,
    meta: &ItemMeta,
    range: Option<std::ops::Range<u64>>,
) -> Result<Vec<u8>, ferry_store::StoreError> {
    let (got, stream) = store.open(meta.id, range).await?.expect("item exists");
    assert_eq!(&got, meta);
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await?;
    Ok(chunks.concat())
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Removes the store's catalog (derived state), as if it were lost: the next
/// open reads every record and rebuilds it.
pub fn forget_catalog(dir: &Path) {
    std::fs::remove_dir_all(dir.join("catalog")).unwrap();
}
