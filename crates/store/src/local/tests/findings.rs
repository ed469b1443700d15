//! One test for each finding of the durability review that needs the seam to
//! show (the others are in `tests/local/`).

use std::sync::Arc;
use std::time::Duration;

use ferry_crypto::StorageKey;

use super::super::faults::{Action, Faults, Pause};
use super::super::index::Location;
use super::super::seam::Step;
use super::{Fixture, content, fill, log_end, open, put, read, tempdir};
use crate::Store;

/// Finding 2: after a failed `fdatasync` the group's bytes are cut from the
/// segment (the kernel may have marked them clean without writing them), and
/// the log takes nothing more until reopened.
#[tokio::test]
async fn a_failed_fdatasync_cuts_the_group_back_and_stops_the_log() {
    let fx = Fixture::new();
    let store = fx.open().await;
    let kept = put(&store, &content(1_000, 1)).await.unwrap();
    let durable = log_end(&fx.segment(1));
    fx.faults.at(Some(Step::AppendSync), 0, Action::Error);
    assert!(put(&store, &content(1_000, 2)).await.is_err());
    assert_eq!(std::fs::metadata(fx.segment(1)).unwrap().len(), durable);
    assert!(
        put(&store, &content(1_000, 3)).await.is_err(),
        "the log went on"
    );
    drop(store);
    let store = fx.reopen().await;
    assert_eq!(store.count().await, 1);
    assert_eq!(
        read(&store, kept.id).await.unwrap(),
        Some(content(1_000, 1))
    );
    put(&store, &content(1_000, 4)).await.unwrap();
}

/// Finding 2: a process that died between a compaction's write and its
/// `fdatasync` left the copies in the page cache only. The restart must make
/// them durable before it removes the segment they came from, or a power loss
/// right after loses the items.
#[tokio::test]
async fn a_restart_makes_the_log_tail_durable_before_reclaiming_on_its_strength() {
    let fx = Fixture::new();
    let store = fx.open().await;
    let metas = fill(&store, 12, 6_000).await;
    // The copies of the compaction (the last append) are written, not synced.
    fx.faults.at(Some(Step::AppendSync), 6, Action::Crash);
    for meta in &metas[..6] {
        let _ = store.delete(meta.id).await;
    }
    assert!(fx.faults.all_fired());
    drop(store);
    let store = fx.reopen().await;
    drop(store);
    fx.faults.power_loss();
    let store = fx.open().await;
    for (i, meta) in metas.iter().enumerate().skip(6) {
        assert_eq!(
            read(&store, meta.id).await.unwrap(),
            Some(content(6_000, i as u32)),
            "item {i}"
        );
    }
    let steps = fx.faults.steps();
    let synced = steps.iter().position(|(s, _)| *s == Step::SyncLastSegment);
    let removed = steps.iter().rposition(|(s, _)| *s == Step::SegmentUnlink);
    assert!(synced.is_some() && synced < removed, "{steps:?}");
}

/// Finding 2: once an fsync of `items/` fails, large items are refused until
/// the store is reopened (a retry could report success for entries that never
/// reached the disk).
#[tokio::test]
async fn a_failed_items_fsync_refuses_large_items_until_reopened() {
    let fx = Fixture::new();
    let store = fx.open().await;
    fx.faults.at(Some(Step::SyncItems), 0, Action::Error);
    assert!(put(&store, &content(100_000, 1)).await.is_err());
    assert!(
        put(&store, &content(100_000, 2)).await.is_err(),
        "items/ went on"
    );
    // Small items go on: they do not depend on items/.
    put(&store, &content(1_000, 3)).await.unwrap();
    drop(store);
    let store = fx.reopen().await;
    assert_eq!(store.count().await, 1);
    put(&store, &content(100_000, 4)).await.unwrap();
}

/// Finding 3: a delete that lands while a compaction waits for its copies'
/// `fdatasync` must not leave a copy of the item that nothing supersedes: after
/// a failed tombstone, and the removal of the segments that list nothing, the
/// item must stay deleted across a restart. (Its data key was destroyed before
/// the tombstone failed: the delete stands, and no copy of it reads.)
#[tokio::test]
async fn a_delete_cannot_race_a_compaction_into_a_copy_that_comes_back() {
    let fx = Fixture::new();
    let store = fx.open().await;
    let metas = fill(&store, 12, 6_000).await;
    for meta in &metas[..5] {
        store.delete(meta.id).await.unwrap();
    }
    // The sixth delete compacts segment 1: its copies' fdatasync is held.
    let pause = Pause::default();
    fx.faults
        .at(Some(Step::AppendSync), 1, Action::Pause(pause.clone()));
    let compacting = tokio::spawn({
        let store = store.clone();
        let id = metas[5].id;
        async move { store.delete(id).await }
    });
    for _ in 0..5_000 {
        if pause.reached() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(pause.reached(), "the compaction did not start");
    // Meanwhile item 6 (being copied) is deleted; its tombstone's append fails.
    let victim = metas[6].id;
    fx.faults.at(Some(Step::AppendWrite), 0, Action::Error);
    let deleting = tokio::spawn({
        let store = store.clone();
        async move { store.delete(victim).await }
    });
    for _ in 0..50 {
        if store.get(victim).await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    pause.release();
    compacting.await.unwrap().unwrap();
    assert!(deleting.await.unwrap().is_err());
    assert!(
        store.get(victim).await.unwrap().is_none(),
        "a delete whose data key is destroyed stands, even if its tombstone failed"
    );
    // The log moves past the segment of the copies; the second delete's tombstone
    // goes to a later segment D.
    let segment_of = |id| match store.shared.entry(id).unwrap().unwrap().location {
        Location::Log { segment, .. } => segment,
        Location::File => panic!("a small item is logged"),
    };
    let copies = segment_of(metas[7].id);
    let mut seed = 100;
    while store.shared.log.current_segment() == copies {
        put(&store, &content(6_000, seed)).await.unwrap();
        seed += 1;
    }
    assert!(!store.delete(victim).await.unwrap());
    let d = store.shared.log.current_segment();
    // D fills up and is mostly deleted: it is worth compacting, and then goes,
    // unless its tombstone of the copy keeps it.
    let mut in_d = Vec::new();
    while store.shared.log.current_segment() == d {
        let meta = put(&store, &content(6_000, seed)).await.unwrap();
        seed += 1;
        if segment_of(meta.id) == d {
            in_d.push(meta.id);
        }
    }
    for id in in_d {
        store.delete(id).await.unwrap();
    }
    drop(store);
    let store = fx.reopen().await;
    assert!(
        store.get(victim).await.unwrap().is_none(),
        "the deleted item came back"
    );
}

/// Finding 5: every directory the store creates is made durable in its parent.
#[tokio::test]
async fn created_directories_are_synced_into_their_parents() {
    let root = tempdir();
    let dir = root.path().join("data/store");
    let faults = Arc::new(Faults::default());
    let store = open(&dir, &StorageKey::generate(), &faults).await.unwrap();
    drop(store);
    let steps = faults.steps();
    for created in [
        "data",
        "data/store",
        "data/store/segments",
        "data/store/items",
        "data/store/keys",
        "data/store/tmp",
    ] {
        let path = root.path().join(created);
        let at = steps
            .iter()
            .position(|(s, p)| *s == Step::CreateDir && *p == path)
            .unwrap_or_else(|| panic!("{created} was not created: {steps:?}"));
        let parent = path.parent().unwrap().to_owned();
        assert!(
            steps[at..]
                .iter()
                .any(|(s, p)| *s == Step::SyncNewDir && *p == parent),
            "{created} was not synced into its parent"
        );
    }
}

/// Finding 6: a rotation whose directory fsync fails does not wedge the log.
#[tokio::test]
async fn a_failed_rotation_does_not_wedge_the_log() {
    let fx = Fixture::new();
    let store = fx.open().await;
    let mut kept = Vec::new();
    fx.faults.at(Some(Step::RotateSyncDir), 0, Action::Error);
    let mut failed = 0;
    for i in 0..12 {
        match put(&store, &content(15_000, i)).await {
            Ok(meta) => kept.push((meta.id, i)),
            Err(_) => failed += 1,
        }
    }
    assert_eq!(failed, 1, "later rotations failed too");
    drop(store);
    let store = fx.reopen().await;
    for (id, i) in kept {
        assert_eq!(read(&store, id).await.unwrap(), Some(content(15_000, i)));
    }
}

/// Finding 7: an unlink that finds the segment already gone (an earlier removal
/// whose directory fsync failed) still makes the removal durable.
#[tokio::test]
async fn a_segment_found_already_gone_is_still_synced_out() {
    let fx = Fixture::new();
    let store = fx.open().await;
    let metas = fill(&store, 9, 15_000).await;
    fx.faults.at(Some(Step::SyncAfterUnlink), 0, Action::Error);
    for meta in &metas[..3] {
        store.delete(meta.id).await.unwrap();
    }
    assert!(!fx.segment(1).exists());
    // Tried again (the unlink finds it gone), and synced out that time too.
    let steps = fx.faults.steps();
    let first = fx.segment(1);
    let unlinks: Vec<usize> = (0..steps.len())
        .filter(|&i| steps[i] == (Step::SegmentUnlink, first.clone()))
        .collect();
    assert!(unlinks.len() >= 2, "{steps:?}");
    for at in unlinks {
        assert_eq!(
            steps.get(at + 1).map(|s| s.0),
            Some(Step::SyncAfterUnlink),
            "{steps:?}"
        );
    }
}

/// Finding 7: a listed record whose frame no longer checks does not keep its
/// segment for ever: compaction moves its bytes, as they are, to a file of its
/// own (an item whose frame header only was damaged reads as before).
#[tokio::test]
async fn a_listed_frame_that_no_longer_checks_does_not_pin_its_segment() {
    let fx = Fixture::new();
    let store = fx.open().await;
    let metas = fill(&store, 12, 6_000).await;
    // Damage the CRC of item 9's frame, in segment 1.
    let first = fx.segment(1);
    let Location::Log {
        segment: 1, base, ..
    } = store.shared.entry(metas[9].id).unwrap().unwrap().location
    else {
        panic!("item 9 is not in segment 1")
    };
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[base as usize - 4] ^= 0xff;
    std::fs::write(&first, &bytes).unwrap();
    for meta in &metas[..6] {
        store.delete(meta.id).await.unwrap();
    }
    assert!(!first.exists(), "the segment stayed");
    let damaged = metas
        .iter()
        .position(|m| fx.dir.path().join(format!("items/{}.rec", m.id)).exists());
    assert_eq!(damaged, Some(9));
    for (i, meta) in metas.iter().enumerate().skip(6) {
        assert_eq!(
            read(&store, meta.id).await.unwrap(),
            Some(content(6_000, i as u32))
        );
    }
    drop(store);
    let store = fx.open().await;
    assert_eq!(store.count().await, 6);
    assert_eq!(
        read(&store, metas[9].id).await.unwrap(),
        Some(content(6_000, 9))
    );
}
