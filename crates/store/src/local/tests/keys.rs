//! The key store's writes at open: a rotation's rewrap, failing or stopping at
//! each of its steps, loses no key; and a delete whose key destruction fails.

use std::sync::Arc;

use ferry_crypto::{Keyring, StorageKey};

use super::super::LocalStore;
use super::super::faults::{Action, Faults};
use super::super::seam::{Seam, Step};
use super::{content, options, put, read, tempdir};
use crate::{ItemId, Store, StoreError};

async fn open_ring(
    dir: &std::path::Path,
    ring: Keyring,
    faults: &Arc<Faults>,
) -> Result<Arc<LocalStore>, StoreError> {
    LocalStore::open_with(dir, ring, options(), Seam::with(faults.clone())).await
}

#[tokio::test]
async fn a_rotation_that_fails_or_stops_at_any_step_of_its_rewrap_loses_no_key() {
    let steps = [
        Step::ReadKeys,
        Step::KeyFileWrite,
        Step::KeyFileSync,
        Step::KeyFileRename,
        Step::SyncKeys,
    ];
    for step in steps {
        for action in [Action::Error, Action::Crash] {
            let what = format!("{step:?} {action:?}");
            let dir = tempdir();
            let (old, new) = (StorageKey::generate(), StorageKey::generate());
            let faults = Arc::new(Faults::default());
            let store = open_ring(dir.path(), Keyring::new(old.clone(), vec![]), &faults)
                .await
                .unwrap();
            let mut kept: Vec<(ItemId, Vec<u8>)> = Vec::new();
            for (i, len) in [100, 20_000, 3_000].into_iter().enumerate() {
                let data = content(len, i as u32);
                kept.push((put(&store, &data).await.unwrap().id, data));
            }
            let gone = put(&store, &content(500, 9)).await.unwrap().id;
            assert!(store.delete(gone).await.unwrap());
            drop(store);

            faults.at(Some(step), 0, action);
            let rotated = Keyring::new(new.clone(), vec![old.clone()]);
            let failed = open_ring(dir.path(), rotated.clone(), &faults).await;
            assert!(failed.is_err(), "{what}: the open went on");
            assert!(faults.all_fired(), "{what}");
            drop(failed);
            faults.restart();
            faults.power_loss();
            for ring in [rotated, Keyring::new(new.clone(), vec![])] {
                let store = open_ring(dir.path(), ring, &faults)
                    .await
                    .unwrap_or_else(|err| panic!("{what}: {err}"));
                for (id, data) in &kept {
                    assert_eq!(
                        read(&store, *id).await.unwrap().as_ref(),
                        Some(data),
                        "{what}"
                    );
                }
                assert!(store.get(gone).await.unwrap().is_none(), "{what}");
            }
        }
    }
}

#[tokio::test]
async fn a_delete_whose_key_cannot_be_destroyed_keeps_the_item() {
    let dir = tempdir();
    let key = StorageKey::generate();
    let faults = Arc::new(Faults::default());
    let store = open_ring(dir.path(), Keyring::new(key.clone(), vec![]), &faults)
        .await
        .unwrap();
    let data = content(2_000, 1);
    let id = put(&store, &data).await.unwrap().id;
    faults.at(Some(Step::KeyDestroy), 0, Action::Error);
    assert!(store.delete(id).await.is_err());
    assert_eq!(read(&store, id).await.unwrap(), Some(data.clone()));
    // Zeros written, their sync failed: the item is unlisted and unreadable.
    faults.at(Some(Step::KeyDestroySync), 0, Action::Error);
    assert!(store.delete(id).await.is_err());
    assert!(store.get(id).await.unwrap().is_none());
    drop(store);
    faults.restart();
    let store = open_ring(dir.path(), Keyring::new(key, vec![]), &faults)
        .await
        .unwrap();
    assert!(store.get(id).await.unwrap().is_none());
}
