//! A crash, or an I/O error, at every step of a commit, a rotation, a large item,
//! a compaction, a removal, recovery, legal holds and resumable uploads (see
//! [`seam`](super::super::seam)).
//!
//! Each scenario sets a store up, then runs its part with the seam counting the
//! steps. Then, for each step of that part: the same again, with the step failing
//! (the store goes on, and is closed) or with a crash there (that step and every
//! later one fail: the files stay as they were), with or without a power loss
//! right after (what was not durable goes, see [`Faults`]). Then the store is
//! reopened, checked, a power loss strikes, and it is reopened and checked again:
//! every acknowledged item reads back whole, no deleted item is listed (and its
//! data key stays destroyed, so no copy of it reads either), and every
//! item listed is whole and one that was written; an unfinished upload is at
//! its last acknowledged offset (or at one an unacknowledged append reached),
//! and a finished or cancelled one never comes back. The store's log agrees: its
//! leaves read back as the tree in memory has them, every listed item's
//! `stored` leaf is its own, and every deleted item's delete is logged.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use ferry_crypto::{CryptoError, KeyLookup, StorageKey};
use futures::StreamExt;

use super::super::LocalStore;
use super::super::faults::{Action, Faults};
use super::super::seam::Step;
use super::{content, open_logged as open, put, read, segment, tempdir};
use crate::{ItemId, Ledger as _, ListQuery, Store, StoreError, UploadId, stored_entry};
use ferry_tlog::Event;

/// What the store told the scenario.
#[derive(Debug, Default)]
struct Ledger {
    /// Committed (and not deleted since).
    acked: BTreeMap<ItemId, Vec<u8>>,
    /// Deleted: never listed again.
    deleted: BTreeSet<ItemId>,
    /// The data key of every item committed: a deleted item's stays destroyed.
    keys: BTreeMap<ItemId, String>,
    /// Contents whose commit failed: listed whole, or not at all.
    unacked: Vec<Vec<u8>>,
    /// Items whose delete failed: listed whole, or not at all.
    undecided: BTreeMap<ItemId, Vec<u8>>,
    /// Hold states acknowledged (and not changed by a failed call since).
    holds: BTreeMap<ItemId, bool>,
    /// Resumable uploads opened.
    uploads: Vec<Upload>,
}

/// What the store said of one upload.
#[derive(Debug)]
struct Upload {
    id: UploadId,
    whole: Vec<u8>,
    /// The offset of the last append acknowledged.
    acked: u64,
    /// The offsets an append tried to reach (acknowledged or not).
    tried: Vec<u64>,
    /// Finished (its item is in `acked`), cancelled: gone for good.
    gone: bool,
}

impl Ledger {
    /// Opens an upload of `whole` and appends it in `cuts`, then finishes it
    /// (or cancels it, if `cancel`).
    async fn upload(&mut self, store: &LocalStore, whole: Vec<u8>, cuts: &[usize], cancel: bool) {
        let item = crate::NewItem {
            data_type: ferry_protocol::DataType::Text,
            serialization: ferry_protocol::Serialization::Txt,
            encrypted_in_transit: false,
            peer: "127.0.0.1:1".into(),
            name: None,
        };
        let Ok(info) = store.upload_create(item, Some(whole.len() as u64)).await else {
            return;
        };
        let mut upload = Upload {
            id: info.id,
            whole,
            acked: 0,
            tried: vec![0],
            gone: false,
        };
        for pair in cuts.windows(2) {
            upload.tried.push(pair[1] as u64);
            let appended = async {
                let mut appender = store.upload_append(upload.id, pair[0] as u64).await?;
                appender.write(&upload.whole[pair[0]..pair[1]]).await?;
                appender.commit().await
            };
            match appended.await {
                Ok(info) => upload.acked = info.offset,
                Err(_) => break,
            }
        }
        if cancel {
            upload.gone = matches!(store.upload_cancel(upload.id).await, Ok(true));
        } else if upload.acked == upload.whole.len() as u64 {
            match store.upload_finish(upload.id).await {
                Ok(meta) => {
                    self.keys.insert(meta.id, meta.key_id);
                    self.acked.insert(meta.id, upload.whole.clone());
                    upload.gone = true;
                }
                Err(_) => self.unacked.push(upload.whole.clone()),
            }
        }
        self.uploads.push(upload);
    }
}

impl Ledger {
    async fn put(&mut self, store: &LocalStore, data: Vec<u8>) -> Option<ItemId> {
        match put(store, &data).await {
            Ok(meta) => {
                self.keys.insert(meta.id, meta.key_id);
                self.acked.insert(meta.id, data);
                Some(meta.id)
            }
            Err(_) => {
                self.unacked.push(data);
                None
            }
        }
    }

    async fn delete(&mut self, store: &LocalStore, id: Option<ItemId>) {
        let Some(id) = id else { return };
        let Some(data) = self.acked.remove(&id) else {
            return;
        };
        match store.delete(id).await {
            Ok(true) => {
                self.deleted.insert(id);
            }
            Ok(false) => panic!("{id} was listed"),
            // Refused: it stays as it was.
            Err(StoreError::Held(_)) => {
                self.acked.insert(id, data);
            }
            Err(_) => {
                self.undecided.insert(id, data);
            }
        }
    }
}

impl Ledger {
    /// Puts an item on hold or lifts its hold.
    async fn hold(&mut self, store: &LocalStore, id: Option<ItemId>, held: bool) {
        let Some(id) = id else { return };
        match store.set_hold(id, held).await {
            Ok(Some(meta)) => {
                assert_eq!(meta.held, held);
                self.holds.insert(id, held);
            }
            Ok(None) => panic!("{id} was listed"),
            Err(_) => {
                self.holds.remove(&id);
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// Small items appended to the log.
    Commit,
    /// Small items filling segments: two rotations.
    Rotation,
    /// Large items (early syncs, rename, `items/` fsync) and a delete of one.
    Large,
    /// Deletes that make a segment worth compacting: copies, then its removal.
    Compaction,
    /// Deletes that leave segments listing nothing: their removal.
    Removal,
    /// Opening a store with a torn tail, leftovers in `tmp/`, and a segment
    /// worth compacting (compacted and removed at open).
    Recovery,
    /// Opening a store in a directory that does not exist yet, and a commit.
    Fresh,
    /// Holds put and lifted, a delete refused by a hold, a delete after its
    /// release.
    Holds,
    /// Resumable uploads: appends, a finish into an item, a cancel; and the
    /// open that finds them.
    Uploads,
}

impl Scenario {
    /// The steps the part must go through (at least these).
    fn covers(self) -> &'static [Step] {
        match self {
            Scenario::Commit => &[Step::AppendWrite, Step::AppendSync],
            Scenario::Rotation => &[
                Step::AppendWrite,
                Step::AppendSync,
                Step::RotateCreate,
                Step::RotateSyncDir,
                Step::PrepareWrite,
                Step::PrepareSync,
            ],
            Scenario::Large => &[
                Step::PartCreate,
                Step::PartWrite,
                Step::PartEarlySync,
                Step::PartSync,
                Step::RecordRename,
                Step::SyncItems,
                Step::RecordUnlink,
                Step::KeyDestroy,
                Step::KeyDestroySync,
            ],
            Scenario::Compaction => &[
                Step::AppendWrite,
                Step::AppendSync,
                Step::CompactRead,
                Step::SegmentUnlink,
                Step::SyncAfterUnlink,
            ],
            Scenario::Removal => &[
                Step::AppendWrite,
                Step::AppendSync,
                Step::SegmentUnlink,
                Step::SyncAfterUnlink,
            ],
            Scenario::Recovery => &[
                Step::EmptyTmp,
                Step::SyncLastSegment,
                Step::ReadSegment,
                Step::CutTail,
                Step::SyncCutTail,
                Step::ReadItem,
                Step::CompactRead,
                Step::AppendWrite,
                Step::AppendSync,
                Step::SegmentUnlink,
                Step::SyncAfterUnlink,
                Step::ReadKeys,
            ],
            Scenario::Holds => &[
                Step::ReadHolds,
                Step::WriteHolds,
                Step::RenameHolds,
                Step::SyncHoldsDir,
                Step::KeyDestroy,
                Step::AppendWrite,
            ],
            Scenario::Uploads => &[
                Step::UploadWrite,
                Step::UploadSync,
                Step::UploadRename,
                Step::UploadSyncDir,
                Step::UploadRemove,
                Step::PartWrite,
                Step::RecordRename,
                Step::KeyDestroy,
            ],
            Scenario::Fresh => &[
                Step::CreateDir,
                Step::SyncNewDir,
                Step::CreateFirstSegment,
                Step::SyncSegments,
                Step::WriteFormat,
                Step::PrepareWrite,
                Step::PrepareSync,
                Step::KeyFileWrite,
                Step::KeyFileSync,
                Step::KeyFileRename,
                Step::SyncKeys,
                Step::AppendWrite,
                Step::AppendSync,
            ],
        }
    }

    /// Items of 6 kB, ten to a 64 KiB segment.
    async fn ten_small(store: &LocalStore, ledger: &mut Ledger, seed: u32) -> Vec<Option<ItemId>> {
        let mut ids = Vec::new();
        for i in 0..10 {
            ids.push(ledger.put(store, content(6_000, seed + i)).await);
        }
        ids
    }

    async fn setup(
        self,
        dir: &Path,
        store: &LocalStore,
        faults: &Faults,
        ledger: &mut Ledger,
    ) -> Vec<Option<ItemId>> {
        match self {
            Scenario::Holds => {
                let mut ids = Vec::new();
                for i in 0..3 {
                    ids.push(ledger.put(store, content(2_000, 50 + i)).await);
                }
                ids
            }
            Scenario::Commit | Scenario::Rotation | Scenario::Large => {
                vec![ledger.put(store, content(1_000, 1)).await]
            }
            Scenario::Uploads => {
                // One left half done, for the open to find.
                ledger
                    .upload(store, content(90_000, 60), &[0, 40_000], false)
                    .await;
                Vec::new()
            }
            Scenario::Compaction => {
                let ids = Scenario::ten_small(store, ledger, 100).await;
                for i in 0..3 {
                    ledger.put(store, content(6_000, 120 + i)).await;
                }
                ids
            }
            Scenario::Removal => {
                let mut ids = Vec::new();
                for i in 0..7 {
                    ids.push(ledger.put(store, content(15_000, 200 + i)).await);
                }
                ids
            }
            Scenario::Recovery => {
                // Compaction fails while the store runs: it is left to the open.
                faults.at(Some(Step::CompactRead), 0, Action::ErrorEvery);
                let ids = Scenario::ten_small(store, ledger, 300).await;
                ledger.put(store, content(100_000, 310)).await;
                ledger.put(store, content(6_000, 311)).await;
                for id in &ids[..6] {
                    ledger.delete(store, *id).await;
                }
                let _ = dir;
                ids
            }
            Scenario::Fresh => Vec::new(),
        }
    }

    /// After the store set up is closed (recovery only): damage to repair at open.
    fn prepare(self, dir: &Path) {
        if self == Scenario::Recovery {
            let last = (1..100)
                .rev()
                .map(|n| segment(dir, n))
                .find(|p| p.exists())
                .unwrap();
            let mut bytes = std::fs::read(&last).unwrap();
            bytes.extend_from_slice(b"FRYL\x01\x01\0\0\xff\0\0\0torn");
            std::fs::write(&last, bytes).unwrap();
            std::fs::write(dir.join("tmp/01J0000000000000000000000.part"), b"partial").unwrap();
        }
    }

    async fn act(self, store: &LocalStore, ledger: &mut Ledger, ids: &[Option<ItemId>]) {
        match self {
            Scenario::Commit => {
                for i in 0..5 {
                    ledger
                        .put(store, content(500 + 600 * i, 10 + i as u32))
                        .await;
                }
            }
            Scenario::Rotation => {
                for i in 0..8 {
                    ledger.put(store, content(15_000, 20 + i)).await;
                }
            }
            Scenario::Large => {
                let first = ledger.put(store, content(100_000, 30)).await;
                ledger.put(store, content(2_500_000, 31)).await;
                ledger.delete(store, first).await;
            }
            Scenario::Compaction => {
                for id in &ids[..6] {
                    ledger.delete(store, *id).await;
                }
            }
            Scenario::Removal => {
                for id in &ids[..6] {
                    ledger.delete(store, *id).await;
                }
            }
            Scenario::Recovery => {}
            Scenario::Fresh => {
                ledger.put(store, content(2_000, 40)).await;
            }
            Scenario::Uploads => {
                let cuts = [0, 70_000, 70_001, 150_000];
                ledger
                    .upload(store, content(150_000, 61), &cuts, false)
                    .await;
                ledger
                    .upload(store, content(30_000, 62), &[0, 30_000], true)
                    .await;
            }
            Scenario::Holds => {
                ledger.hold(store, ids[0], true).await;
                ledger.hold(store, ids[1], true).await;
                ledger.delete(store, ids[0]).await;
                ledger.hold(store, ids[1], false).await;
                ledger.delete(store, ids[1]).await;
            }
        }
    }
}

/// Where the store is, in a scenario.
fn store_dir(root: &Path, scenario: Scenario) -> std::path::PathBuf {
    match scenario {
        Scenario::Fresh => root.join("data/store"),
        _ => root.to_owned(),
    }
}

/// Runs `scenario`, with `rule` (the nth step of its part, and what happens
/// there) and a power loss right after its part if `power_loss`; checks the
/// store. Returns the steps of its part, and whether the fault was injected (the
/// steps of a part can differ a little from run to run: early syncs run in the
/// background).
async fn run(
    scenario: Scenario,
    rule: Option<(usize, Action)>,
    power_loss: bool,
) -> (Vec<Step>, bool) {
    let root = tempdir();
    let dir = store_dir(root.path(), scenario);
    let key = StorageKey::generate();
    let faults = Arc::new(Faults::default());
    let mut ledger = Ledger::default();
    let ids = if scenario == Scenario::Fresh {
        Vec::new()
    } else {
        let store = open(&dir, &key, &faults).await.unwrap();
        let ids = scenario.setup(&dir, &store, &faults, &mut ledger).await;
        drop(store);
        faults.restart();
        scenario.prepare(&dir);
        ids
    };
    let what = format!("{scenario:?} {rule:?} power loss {power_loss}");
    let before = faults.steps().len();
    if let Some((nth, action)) = rule.clone() {
        faults.at(None, nth, action);
    }
    match open(&dir, &key, &faults).await {
        Ok(store) => {
            scenario.act(&store, &mut ledger, &ids).await;
            drop(store);
        }
        Err(err) => assert!(rule.is_some(), "{what}: {err}"),
    }
    let steps: Vec<Step> = faults.steps()[before..].iter().map(|(s, _)| *s).collect();
    let fired = faults.all_fired();
    faults.restart();
    if power_loss {
        faults.power_loss();
    }
    for round in 0..2 {
        let store = open(&dir, &key, &faults)
            .await
            .unwrap_or_else(|err| panic!("{what}: reopening: {err}"));
        check(&store, &ledger, &format!("{what}, round {round}")).await;
        drop(store);
        faults.power_loss();
    }
    (steps, fired)
}

/// Every acknowledged item reads back whole, no deleted item is listed, and
/// every listed item is whole and one that was written.
async fn check(store: &LocalStore, ledger: &Ledger, what: &str) {
    for (id, data) in &ledger.acked {
        let got = read(store, *id)
            .await
            .unwrap_or_else(|e| panic!("{what}: {id}: {e}"));
        assert!(
            got.as_ref() == Some(data),
            "{what}: acknowledged {id} is not there whole"
        );
    }
    for (id, held) in &ledger.holds {
        if let Some(meta) = store.get(*id).await.unwrap() {
            assert_eq!(meta.held, *held, "{what}: the hold of {id} was not kept");
        }
    }
    for id in &ledger.deleted {
        assert!(
            store.get(*id).await.unwrap().is_none(),
            "{what}: deleted {id} came back"
        );
        let key = store.shared.keys.lookup(&ledger.keys[id]);
        assert!(
            matches!(key, Err(CryptoError::KeyDestroyed(_))),
            "{what}: the data key of deleted {id} was not destroyed: {:?}",
            key.map(|k| k.id().to_owned())
        );
    }
    check_log(store, ledger, what).await;
    for upload in &ledger.uploads {
        let info = store.upload_info(upload.id).await.unwrap();
        match (upload.gone, info) {
            (true, Some(_)) => panic!(
                "{what}: finished or cancelled upload {} came back",
                upload.id
            ),
            (false, Some(info)) => assert!(
                info.offset >= upload.acked && upload.tried.contains(&info.offset),
                "{what}: upload {} is at {}, acknowledged at {}",
                upload.id,
                info.offset,
                upload.acked
            ),
            // A finish or cancel that failed may still have happened.
            (false, None) => {}
            (true, None) => {}
        }
    }
    for meta in store.list(&ListQuery::default()).await.unwrap().items {
        let data = read(store, meta.id)
            .await
            .unwrap_or_else(|e| panic!("{what}: listed {} does not read: {e}", meta.id))
            .unwrap();
        let known = ledger.acked.get(&meta.id) == Some(&data)
            || ledger.undecided.get(&meta.id) == Some(&data)
            || ledger.unacked.contains(&data);
        assert!(
            known,
            "{what}: {} is listed but was never written whole",
            meta.id
        );
    }
}

/// The store's log: its leaves on disk are the tree's, each listed item's
/// `stored` leaf is its own, and each deleted item's delete is logged after it.
async fn check_log(store: &LocalStore, ledger: &Ledger, what: &str) {
    let log = store.shared.ledger.as_ref().expect("opened with a log");
    let rescan = log.rescan(0).await.unwrap();
    assert!(rescan.problems.is_empty(), "{what}: {:?}", rescan.problems);
    let leaves = log.leaves(0, usize::MAX).await.unwrap();
    assert_eq!(leaves.len() as u64, log.size(), "{what}");
    for meta in store.list(&ListQuery::default()).await.unwrap().items {
        let index = meta
            .log_index
            .unwrap_or_else(|| panic!("{what}: {} has no leaf", meta.id));
        assert!(
            (index as usize) < leaves.len(),
            "{what}: {} has leaf {index} of {}",
            meta.id,
            leaves.len()
        );
        assert_eq!(
            leaves[index as usize].1,
            stored_entry(&meta),
            "{what}: {}",
            meta.id
        );
    }
    for id in &ledger.deleted {
        let text = id.to_string();
        let stored = leaves
            .iter()
            .position(|(_, e)| e.id() == text && e.event() == Event::Stored);
        let deleted = leaves
            .iter()
            .rposition(|(_, e)| e.id() == text && e.event() == Event::Deleted);
        assert!(
            matches!((stored, deleted), (Some(s), Some(d)) if s < d),
            "{what}: the delete of {id} is not logged after its leaf"
        );
    }
}

/// Runs `scenario` with a fault at each of its steps.
async fn every_step(scenario: Scenario) {
    let (steps, _) = run(scenario, None, false).await;
    for step in scenario.covers() {
        assert!(
            steps.contains(step),
            "{scenario:?} never goes through {step:?}: {steps:?}"
        );
    }
    let runs: Vec<_> = (0..steps.len())
        .flat_map(|nth| {
            [Action::Error, Action::Crash]
                .into_iter()
                .flat_map(move |action| [false, true].map(|power| (nth, action.clone(), power)))
        })
        .collect();
    let total = runs.len();
    let fired = futures::stream::iter(runs)
        .map(|(nth, action, power)| tokio::spawn(run(scenario, Some((nth, action)), power)))
        .buffer_unordered(4)
        .map(|done| match done {
            Ok((_, fired)) => usize::from(fired),
            Err(err) => std::panic::resume_unwind(err.into_panic()),
        })
        .fold(0, |sum, fired| async move { sum + fired })
        .await;
    assert!(
        fired * 10 >= total * 9,
        "{scenario:?}: only {fired} of {total} faults fired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_or_an_error_at_any_step_of_a_commit() {
    every_step(Scenario::Commit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_or_an_error_at_any_step_of_a_rotation() {
    every_step(Scenario::Rotation).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_or_an_error_at_any_step_of_a_large_item() {
    every_step(Scenario::Large).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_or_an_error_at_any_step_of_a_compaction() {
    every_step(Scenario::Compaction).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_or_an_error_at_any_step_of_a_removal() {
    every_step(Scenario::Removal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_or_an_error_at_any_step_of_recovery() {
    every_step(Scenario::Recovery).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_or_an_error_at_any_step_of_a_first_start() {
    every_step(Scenario::Fresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_or_an_error_at_any_step_of_a_hold() {
    every_step(Scenario::Holds).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_or_an_error_at_any_step_of_an_upload() {
    every_step(Scenario::Uploads).await;
}
