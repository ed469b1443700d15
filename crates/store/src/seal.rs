//! Sealing a whole item held in memory into one record, for every store: its
//! metadata is made from the plaintext's digest and the key, then the record
//! is sealed after whatever the caller's buffer already holds (a log frame's
//! header room, or nothing).

use ferry_crypto::{CHUNK_SIZE, Sealer, StorageKey};
use sha2::{Digest, Sha256};

use crate::{ItemMeta, StoreError, joined};

/// Items larger than this are sealed on a blocking thread.
const SEAL_ON_RUNTIME_MAX: usize = 64 << 10;

/// Seals `plaintext` (it may be empty: a large item's listing) with `key`,
/// appending the record to `out`; the item's metadata and `out`.
pub(crate) fn seal_whole(
    key: &StorageKey,
    plaintext: &[u8],
    meta_of: impl FnOnce([u8; 32], String) -> ItemMeta,
    mut out: Vec<u8>,
) -> (ItemMeta, Vec<u8>) {
    let meta = meta_of(Sha256::digest(plaintext).into(), key.id().to_owned());
    let metadata = meta.to_record_bytes();
    out.reserve(plaintext.len() + (plaintext.len() / CHUNK_SIZE + 1) * 16 + metadata.len() + 128);
    let mut sealer = Sealer::new(key);
    sealer.push(plaintext, &mut out);
    sealer.finish(&metadata, &mut out);
    (meta, out)
}

/// [`seal_whole`], on a blocking thread if `plaintext` is large, in place if
/// not (a thread hop costs more than sealing a small item).
pub(crate) async fn seal_small_item(
    key: StorageKey,
    plaintext: Vec<u8>,
    meta_of: impl FnOnce([u8; 32], String) -> ItemMeta + Send + 'static,
    out: Vec<u8>,
) -> Result<(ItemMeta, Vec<u8>), StoreError> {
    if plaintext.len() <= SEAL_ON_RUNTIME_MAX {
        return Ok(seal_whole(&key, &plaintext, meta_of, out));
    }
    tokio::task::spawn_blocking(move || seal_whole(&key, &plaintext, meta_of, out))
        .await
        .map_err(joined)
}
