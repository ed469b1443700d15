//! Reading items back: a [`RecordReader`] over the item's file (or its window of a
//! log segment), opened on a blocking thread and read as a
//! [`content_stream`](crate::chunks::content_stream).
//!
//! Opening authenticates the metadata and checks that the record is the item's own
//! (same id and size as the index entry); every chunk is authenticated before it
//! is yielded.

use std::fs::File;
use std::io::ErrorKind;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use ferry_crypto::RecordReader;

use super::Shared;
use super::file::joined;
use super::index::{Entry, Location};
use super::log::segment_path;
use crate::chunks::{check_own, clamp_range, content_stream, open_record};
use crate::{ContentStream, ItemId, ItemMeta, StoreError};

/// Opens item `id` for reading the plaintext bytes `range` (all by default).
pub(crate) async fn open(
    shared: Arc<Shared>,
    id: ItemId,
    range: Option<Range<u64>>,
) -> Result<Option<(ItemMeta, ContentStream)>, StoreError> {
    let Some(entry) = shared.entry(id)? else {
        return Ok(None);
    };
    let (start, end) = clamp_range(range, entry.meta.size)?;
    let meta = entry.meta.clone();
    let Some((reader, path)) = tokio::task::spawn_blocking(move || open_listed(&shared, entry))
        .await
        .map_err(joined)??
    else {
        // Deleted since the lookup.
        return Ok(None);
    };
    let stream = content_stream(reader, path.display().to_string(), id, start, end);
    Ok(Some((meta, stream)))
}

/// Opens the record of `entry`, following the item if compaction moved it since
/// the lookup; `None` if it was deleted.
fn open_listed(
    shared: &Shared,
    mut entry: Entry,
) -> Result<Option<(RecordReader<File>, PathBuf)>, StoreError> {
    // A record moves at most once per compaction, and a compaction copies it
    // before its old segment goes: a few tries always find it.
    for _ in 0..4 {
        if let Some(opened) = open_entry(shared, &entry)? {
            return Ok(Some(opened));
        }
        match shared.entry(entry.meta.id)? {
            Some(now) if now.location != entry.location => entry = now,
            Some(_) if entry.location == Location::File => return Ok(None),
            Some(_) => {
                return Err(StoreError::integrity(
                    entry.meta.id,
                    "its log segment is missing".to_owned(),
                ));
            }
            None => return Ok(None),
        }
    }
    Err(StoreError::Unavailable(format!(
        "item {} kept moving while being opened",
        entry.meta.id
    )))
}

/// Opens the record of `entry` and checks it is the item's own; `None` if its
/// file or log segment is gone.
fn open_entry(
    shared: &Shared,
    entry: &Entry,
) -> Result<Option<(RecordReader<File>, PathBuf)>, StoreError> {
    let id = entry.meta.id;
    let (path, base, len) = match entry.location {
        Location::Log { segment, base, len } => {
            (segment_path(&shared.paths.segments, segment), base, len)
        }
        Location::File => (shared.paths.record(id), 0, 0),
    };
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(StoreError::io("opening", path, err)),
    };
    let len = match entry.location {
        Location::File => file
            .metadata()
            .map_err(|e| StoreError::io("reading metadata of", &path, e))?
            .len(),
        Location::Log { .. } => len,
    };
    let origin = path.display().to_string();
    let (reader, meta) = open_record(&*shared.keys, file, base, len, id, &origin)?;
    check_own(&entry.meta, &meta, &origin)?;
    Ok(Some((reader, path)))
}

#[cfg(test)]
mod tests {
    use ferry_crypto::{Keyring, StorageKey};
    use ferry_protocol::{DataType, Serialization};

    use super::*;
    use crate::local::{LocalOptions, LocalStore};
    use crate::{NewItem, Store};

    /// A reader that looked an item up just before compaction moved it (and its
    /// old segment was removed) still opens it, at its new place.
    #[tokio::test]
    async fn an_item_moved_after_its_lookup_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let options = LocalOptions {
            segment_size: 50_000,
            ..LocalOptions::default()
        };
        let keyring = Keyring::new(StorageKey::generate(), vec![]);
        let store = LocalStore::open(dir.path(), keyring, options)
            .await
            .unwrap();
        let mut ids = Vec::new();
        for i in 0..8u8 {
            let item = NewItem {
                data_type: DataType::Text,
                serialization: Serialization::Txt,
                encrypted_in_transit: false,
                peer: "10.0.0.3:3".into(),
                name: None,
            };
            let mut writer = store.begin(item).await.unwrap();
            writer.write(&[i; 10_000]).await.unwrap();
            ids.push(writer.commit().await.unwrap().id);
        }
        let stale = store.shared.entry(ids[0]).unwrap().unwrap();
        // Three of the first segment's four items go: it is compacted, and removed.
        for id in &ids[1..4] {
            assert!(store.delete(*id).await.unwrap());
        }
        let now = store.shared.entry(ids[0]).unwrap().unwrap();
        assert_ne!(now.location, stale.location, "the item was not moved");
        let Location::Log { segment, .. } = stale.location else {
            panic!("a small item is logged")
        };
        assert!(!segment_path(&store.shared.paths.segments, segment).exists());

        let (mut reader, _) = open_listed(&store.shared, stale)
            .unwrap()
            .expect("still listed");
        assert_eq!(reader.read_chunk(0).unwrap(), vec![0u8; 10_000]);
    }
}
