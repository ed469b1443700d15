//! Legal holds: set and lifted, durable across a reopen, refusing deletes, and a
//! failed write of the holds file (at each of its steps) changes nothing.

use super::super::faults::Action;
use super::super::holds::HOLDS_FILE;
use super::super::seam::Step;
use super::{Fixture, content, fill, put, read};
use crate::{ItemId, ListQuery, Store, StoreError};

/// The ids the holds file names.
fn on_disk(fx: &Fixture) -> Vec<String> {
    match std::fs::read_to_string(fx.dir.path().join(HOLDS_FILE)) {
        Ok(text) => text.lines().map(String::from).collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn a_hold_is_set_shown_and_lifted() {
    let fx = Fixture::new();
    let store = fx.open().await;
    let metas = fill(&store, 3, 100).await;
    let id = metas[1].id;
    assert!(!store.get(id).await.unwrap().unwrap().held);

    let held = store.set_hold(id, true).await.unwrap().unwrap();
    assert!(held.held);
    assert_eq!(held.id, id);
    assert!(store.get(id).await.unwrap().unwrap().held);
    let listed = store.list(&ListQuery::default()).await.unwrap().items;
    let flags: Vec<bool> = listed.iter().map(|m| m.held).collect();
    assert_eq!(flags, [false, true, false], "newest first");
    let (opened, _) = store.open(id, None).await.unwrap().unwrap();
    assert!(opened.held);
    assert_eq!(on_disk(&fx), [id.to_string()]);
    // Holding twice is no change.
    assert!(store.set_hold(id, true).await.unwrap().unwrap().held);

    let lifted = store.set_hold(id, false).await.unwrap().unwrap();
    assert!(!lifted.held);
    assert!(!store.get(id).await.unwrap().unwrap().held);
    assert!(on_disk(&fx).is_empty());
    assert!(store.set_hold(ItemId::new(), true).await.unwrap().is_none());
}

#[tokio::test]
async fn a_held_item_refuses_deletes_until_released() {
    let fx = Fixture::new();
    let store = fx.open().await;
    // A logged item and one in a file of its own.
    let small = put(&store, &content(100, 1)).await.unwrap();
    let large = put(&store, &content(100_000, 2)).await.unwrap();
    for meta in [&small, &large] {
        store.set_hold(meta.id, true).await.unwrap().unwrap();
        let err = store.delete(meta.id).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Held(id) if id == meta.id),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            format!("item {} is on legal hold", meta.id)
        );
        assert!(store.get(meta.id).await.unwrap().is_some());
    }
    assert_eq!(store.count().await, 2);
    drop(store);
    let store = fx.reopen().await;
    for (meta, seed, len) in [(&small, 1, 100), (&large, 2, 100_000)] {
        assert!(store.delete(meta.id).await.is_err(), "held after a reopen");
        assert_eq!(
            read(&store, meta.id).await.unwrap(),
            Some(content(len, seed))
        );
        store.set_hold(meta.id, false).await.unwrap().unwrap();
        assert!(store.delete(meta.id).await.unwrap());
    }
    assert_eq!(store.count().await, 0);
}

#[tokio::test]
async fn holds_survive_a_reopen_and_those_of_deleted_items_go_on_the_next_write() {
    let fx = Fixture::new();
    let store = fx.open().await;
    let metas = fill(&store, 3, 100).await;
    for meta in &metas[..2] {
        store.set_hold(meta.id, true).await.unwrap();
    }
    store.set_hold(metas[0].id, false).await.unwrap();
    assert!(store.delete(metas[0].id).await.unwrap());
    drop(store);
    let store = fx.reopen().await;
    assert!(store.get(metas[1].id).await.unwrap().unwrap().held);
    assert!(!store.get(metas[2].id).await.unwrap().unwrap().held);

    // A hold file naming an item that is no longer there (written by hand, as an
    // older copy would be): kept until the next write, then dropped.
    drop(store);
    let gone = ItemId::new();
    let mut ids = [gone.to_string(), metas[1].id.to_string()];
    ids.sort();
    std::fs::write(fx.dir.path().join(HOLDS_FILE), ids.join("\n") + "\n").unwrap();
    let store = fx.reopen().await;
    assert_eq!(store.shared.holds.len(), 2);
    store.set_hold(metas[2].id, true).await.unwrap();
    let mut expected = [metas[1].id.to_string(), metas[2].id.to_string()];
    expected.sort();
    assert_eq!(on_disk(&fx), expected);
}

/// A write of the holds file that fails at any of its steps leaves the old holds
/// in memory and on disk, and the next one succeeds.
#[tokio::test]
async fn a_failed_write_of_the_holds_changes_nothing() {
    for step in [Step::WriteHolds, Step::RenameHolds, Step::SyncHoldsDir] {
        let fx = Fixture::new();
        let store = fx.open().await;
        let metas = fill(&store, 2, 100).await;
        let (kept, new) = (metas[0].id, metas[1].id);
        store.set_hold(kept, true).await.unwrap();

        fx.faults.at(Some(step), 0, Action::Error);
        let err = store.set_hold(new, true).await.unwrap_err();
        assert!(fx.faults.all_fired(), "{step:?}");
        assert!(matches!(err, StoreError::Io { .. }), "{step:?}: {err}");
        assert!(!store.get(new).await.unwrap().unwrap().held, "{step:?}");
        assert!(
            store.delete(new).await.is_ok_and(|d| d),
            "{step:?}: not held"
        );
        assert_eq!(on_disk(&fx), [kept.to_string()], "{step:?}");

        fx.faults.at(Some(step), 0, Action::Error);
        assert!(store.set_hold(kept, false).await.is_err(), "{step:?}");
        assert!(store.get(kept).await.unwrap().unwrap().held, "{step:?}");
        assert!(matches!(store.delete(kept).await, Err(StoreError::Held(_))));
        assert_eq!(on_disk(&fx), [kept.to_string()], "{step:?}");

        drop(store);
        let store = fx.reopen().await;
        assert!(store.get(kept).await.unwrap().unwrap().held, "{step:?}");
        assert!(!store.set_hold(kept, false).await.unwrap().unwrap().held);
        assert!(on_disk(&fx).is_empty(), "{step:?}");
    }
}

#[tokio::test]
async fn a_damaged_holds_file_stops_the_open_and_a_failed_read_too() {
    let fx = Fixture::new();
    let store = fx.open().await;
    let meta = put(&store, &content(100, 1)).await.unwrap();
    store.set_hold(meta.id, true).await.unwrap();
    drop(store);
    let path = fx.dir.path().join(HOLDS_FILE);
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{good}not an id\n")).unwrap();
    let err = super::open(fx.dir.path(), &fx.key, &fx.faults)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("line 2 is not an item id"),
        "{err}"
    );

    std::fs::write(&path, good).unwrap();
    fx.faults.at(Some(Step::ReadHolds), 0, Action::Error);
    assert!(
        super::open(fx.dir.path(), &fx.key, &fx.faults)
            .await
            .is_err()
    );
    let store = fx.reopen().await;
    assert!(store.get(meta.id).await.unwrap().unwrap().held);
}

/// A store opened without the key of a held item does not list it, but keeps
/// its hold: the next write of the holds file still names it.
#[tokio::test]
async fn the_holds_of_items_sealed_with_missing_keys_are_kept() {
    let fx = Fixture::new();
    let store = fx.open().await;
    let sealed = put(&store, &content(100, 1)).await.unwrap();
    store.set_hold(sealed.id, true).await.unwrap();
    drop(store);

    let other = ferry_crypto::StorageKey::generate();
    let options = crate::LocalOptions {
        allow_missing_keys: true,
        ..super::options()
    };
    let keyring = ferry_crypto::Keyring::new(other, vec![]);
    let store = super::super::LocalStore::open(fx.dir.path(), keyring, options)
        .await
        .unwrap();
    assert!(store.get(sealed.id).await.unwrap().is_none());
    let readable = put(&store, &content(100, 2)).await.unwrap();
    store.set_hold(readable.id, true).await.unwrap();
    let mut expected = [sealed.id.to_string(), readable.id.to_string()];
    expected.sort();
    assert_eq!(on_disk(&fx), expected);
}
