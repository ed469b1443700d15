//! Compaction of an S3 store's commit log: the space of deleted items comes
//! back, and a new server reads only what still matters.
//!
//! A small item's record lives in the log object of its group commit, beside
//! others; deleting it leaves its bytes there. A compaction, run by any server
//! (several at once are safe), does two things:
//!
//! 1. **Copy.** When at least half the bytes of the log objects since the last
//!    compaction belong to nothing listed, every entry of those objects that
//!    still matters (a listed item's record or large-item entry, and its hold)
//!    is copied into new log objects, as *moved* entries, and the last of them
//!    ends with a *compacted* entry naming the last object copied. Which items
//!    still hold where they were is decided again before each PUT, on the view
//!    as of the object before it (see [`Journal::commit_moves`]): an item
//!    deleted or moved meanwhile is never copied, so replaying the log from
//!    any object on gives the same items as the whole log.
//! 2. **Remove.** Once a *compacted* entry is older than the grace period, the
//!    objects it covers are deleted, oldest first, so the log is always a
//!    suffix. A server that reads an item where it was finds it moved (it reads
//!    the log and looks again); one whose next object is gone rebuilds its view
//!    from the objects there are.
//!
//! 3. **Sweep.** A large item's object that no entry lists, older than
//!    [`S3Options::orphan_age`](super::S3Options::orphan_age) (an upload whose
//!    listing failed, or a delete whose removal of the object failed), is
//!    deleted.
//!
//! Nor is a leaf of a server's signed log that the server has not copied into
//! its log's own objects yet: a copy stops before the first object that may
//! hold one (see [`View::copy_floor`](super::view::View::copy_floor)). A
//! server that stopped for good with leaves not copied holds compaction back
//! until it runs again with its key.
//!
//! Nothing the store cannot read is removed: no object from the first one
//! holding a record the view left out (damaged, or sealed with a key not given)
//! is ever copied over or deleted, and no large object is swept while the view
//! leaves anything out.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use time::OffsetDateTime;

use super::Shared;
use super::batch::Change;
use super::journal::{Journal, Missing, Move, fetch};
use super::view::{Entry, Location, View};
use crate::{ItemId, StoreError};

/// Entries read from the view at a time.
const PAGE: usize = 1000;
/// Below this many bytes of log since the last compaction, copying is not worth it.
const MIN_LOG_BYTES: u64 = 1 << 20;
/// Log objects kept fetched while copying from them.
const CACHE_BYTES: usize = 64 << 20;

/// What one compaction did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compaction {
    /// Listed items whose entries were copied into new log objects.
    pub copied: usize,
    /// The last log object copied, if the copy ran.
    pub copied_through: Option<u64>,
    /// Log objects deleted, and their bytes.
    pub removed_objects: usize,
    pub removed_bytes: u64,
    /// Large items' objects deleted because nothing lists them.
    pub swept_objects: usize,
}

/// Runs one compaction (see the [module](self)): removes what an earlier one
/// copied at least `grace` ago, then copies if enough of the log is garbage
/// (or whatever there is to copy, if `force`).
pub(crate) async fn compact(
    shared: &Shared,
    grace: Duration,
    force: bool,
) -> Result<Compaction, StoreError> {
    let journal = &shared.journal;
    journal.catch_up().await?;
    let mut done = Compaction::default();
    let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let compacted = journal.read_view(View::compacted).await?;
    if let Some((through, at_ms)) = compacted
        && now_ms >= at_ms.saturating_add(grace.as_millis() as i64)
    {
        (done.removed_objects, done.removed_bytes) = remove_through(journal, through).await?;
    }

    let (cursor, first_left_out, copy_floor) = journal
        .read_view(|view| Ok((view.cursor()?, view.first_left_out()?, view.copy_floor()?)))
        .await?;
    if first_left_out.is_none() {
        done.swept_objects = sweep(journal, shared.options.orphan_age, now_ms).await?;
    }
    let through = match first_left_out {
        Some(left_out) => cursor.min(left_out.saturating_sub(1)),
        None => cursor,
    };
    // Never past a leaf that its server has not copied into its own log yet.
    let held_back_by = copy_floor.filter(|(floor, _)| *floor < through);
    let through = held_back_by.as_ref().map_or(through, |(floor, _)| *floor);
    let after = compacted.map_or(0, |(t, _)| t);
    if through <= after {
        return Ok(done);
    }
    if !force {
        let log = log_bytes(journal, after, through).await?;
        let live = live_bytes(journal, through).await?;
        if log < MIN_LOG_BYTES || live.saturating_mul(2) > log {
            return Ok(done);
        }
    }
    done.copied = copy_through(shared, through, now_ms).await?;
    done.copied_through = Some(through);
    tracing::info!(
        through,
        copied = done.copied,
        held_back_by = held_back_by.as_ref().map(|(_, log)| log.as_str()),
        "commit log compacted: the copied objects go after the grace period"
    );
    Ok(done)
}

/// Copies every listed item's entry that is in a log object up to `through`
/// into new log objects, the last one closed by a *compacted* entry.
async fn copy_through(shared: &Shared, through: u64, now_ms: i64) -> Result<usize, StoreError> {
    let journal = &shared.journal;
    let mut objects = Objects::default();
    let (mut moves, mut bytes, mut copied) = (Vec::new(), 0, 0);
    let mut after = None;
    loop {
        let page = journal
            .read_view(move |view| view.entries(after, PAGE))
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.meta.id);
        for entry in page.into_iter().filter(|e| e.location.seq() <= through) {
            let Some(change) = objects.copy(journal, &entry).await? else {
                continue;
            };
            let mut changes = vec![change];
            if entry.meta.held {
                changes.push(Change::Hold(entry.meta.id, true));
            }
            bytes += changes.iter().map(Change::encoded_len).sum::<usize>();
            moves.push(Move {
                id: entry.meta.id,
                from: entry.location,
                changes,
            });
            if bytes >= shared.options.batch_max {
                copied += journal.commit_moves(&moves, None).await?.1;
                (moves, bytes) = (Vec::new(), 0);
            }
        }
    }
    let closing = Change::Compacted {
        through,
        at_ms: now_ms,
    };
    copied += journal.commit_moves(&moves, Some(closing)).await?.1;
    Ok(copied)
}

/// The log objects being copied from, fetched once each.
#[derive(Default)]
struct Objects {
    fetched: HashMap<u64, Bytes>,
    bytes: usize,
}

impl Objects {
    /// The moved entry that restates `entry`; `None` if its log object is
    /// gone (another compaction moved it, and removed the object).
    async fn copy(
        &mut self,
        journal: &Journal,
        entry: &Entry,
    ) -> Result<Option<Change>, StoreError> {
        let seq = entry.location.seq();
        if !self.fetched.contains_key(&seq) {
            let object = match fetch(&*journal.objects, &journal.log_path(seq)).await {
                Ok(object) => object,
                Err(Missing::Gone) => return Ok(None),
                Err(Missing::Failed(err)) => return Err(err),
            };
            if self.bytes + object.len() > CACHE_BYTES {
                self.fetched.clear();
                self.bytes = 0;
            }
            self.bytes += object.len();
            self.fetched.insert(seq, object);
        }
        let object = &self.fetched[&seq];
        let slice = |base: u64, len: u64| {
            let range = base as usize..(base + len) as usize;
            object.get(range).map(<[u8]>::to_vec).ok_or_else(|| {
                StoreError::Unavailable(format!(
                    "commit-log object {seq} is shorter than its entries"
                ))
            })
        };
        Ok(Some(match entry.location {
            Location::Batch { base, len, .. } => Change::MovedRecord(slice(base, len)?),
            Location::Object {
                len,
                meta_base,
                meta_len,
                ..
            } => Change::MovedLarge {
                record_len: len,
                sealed_meta: slice(meta_base, meta_len)?,
            },
        }))
    }
}

/// The bytes of the log objects after `after`, up to `through`.
async fn log_bytes(journal: &Journal, after: u64, through: u64) -> Result<u64, StoreError> {
    let mut total = 0;
    let mut listing = journal.list_log(after);
    while let Some((seq, size)) = listing.try_next().await? {
        if seq > through {
            break;
        }
        total += size;
    }
    Ok(total)
}

/// The bytes of the listed items' entries in log objects up to `through`.
async fn live_bytes(journal: &Journal, through: u64) -> Result<u64, StoreError> {
    journal
        .read_view(move |view| {
            let (mut live, mut after) = (0, None);
            loop {
                let page = view.entries(after, PAGE)?;
                let Some(last) = page.last() else {
                    return Ok(live);
                };
                after = Some(last.meta.id);
                for entry in page.iter().filter(|e| e.location.seq() <= through) {
                    live += match entry.location {
                        Location::Batch { len, .. } => len,
                        Location::Object { meta_len, .. } => meta_len,
                    };
                }
            }
        })
        .await
}

/// Deletes the log objects up to `through`, oldest first; returns how many
/// and their bytes.
async fn remove_through(journal: &Journal, through: u64) -> Result<(usize, u64), StoreError> {
    let (mut count, mut bytes) = (0, 0);
    let mut listing = journal.list_log(0);
    while let Some((seq, size)) = listing.try_next().await? {
        if seq > through {
            break;
        }
        match journal.objects.delete(&journal.log_path(seq)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(err) => {
                return Err(StoreError::remote(
                    "removing a compacted commit-log object",
                    err,
                ));
            }
        }
        count += 1;
        bytes += size;
    }
    if count > 0 {
        metrics::counter!("ferry_s3_log_objects_removed_total").increment(count as u64);
        tracing::info!(
            through,
            objects = count,
            bytes,
            "compacted commit-log objects removed"
        );
    }
    Ok((count, bytes))
}

/// Deletes the large items' objects that nothing lists and that are older than
/// `age`; returns how many.
async fn sweep(journal: &Journal, age: Duration, now_ms: i64) -> Result<usize, StoreError> {
    let before_ms = now_ms.saturating_sub(age.as_millis() as i64);
    let dir = journal.item_dir();
    let mut listing = journal.objects.list(Some(&dir));
    let mut swept = 0;
    while let Some(object) = listing
        .try_next()
        .await
        .map_err(|err| StoreError::remote("listing large items' objects", err))?
    {
        if object.last_modified.timestamp_millis() >= before_ms {
            continue;
        }
        let Some(id) = object
            .location
            .filename()
            .and_then(|name| name.strip_suffix(".rec"))
            .and_then(|id| id.parse::<ItemId>().ok())
        else {
            continue;
        };
        if journal.read_view(move |view| view.get(id)).await?.is_some() {
            continue;
        }
        match journal.objects.delete(&object.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => swept += 1,
            Err(err) => return Err(StoreError::remote("removing an unlisted object", err)),
        }
        tracing::info!(%id, "an object no entry lists is removed");
    }
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use ferry_crypto::{Keyring, StorageKey};
    use ferry_protocol::{DataType, Serialization};
    use object_store::ObjectStore;
    use object_store::memory::InMemory;

    use crate::s3::faults::Faulty;
    use crate::s3::{S3Location, S3Options, S3Store};
    use crate::{ItemId, Ledger, ListQuery, NewItem, Store};

    /// A store keeping log `a`, that compacts when told and removes what it
    /// copied at once.
    fn told() -> S3Options {
        S3Options {
            ledger: Some("a".into()),
            compact_interval: Duration::from_secs(3600),
            compact_grace: Duration::ZERO,
            ..S3Options::default()
        }
    }

    async fn open(objects: &Arc<InMemory>, key: &StorageKey) -> Arc<S3Store> {
        open_with(objects.clone(), key, told()).await
    }

    async fn open_with(
        objects: Arc<dyn ObjectStore>,
        key: &StorageKey,
        options: S3Options,
    ) -> Arc<S3Store> {
        let location: S3Location = "s3://bucket/store".parse().unwrap();
        let keyring = Keyring::new(key.clone(), vec![]);
        S3Store::open_on(objects, &location, keyring, options)
            .await
            .unwrap()
    }

    fn ledger(store: &S3Store) -> Arc<crate::s3::ledger::S3Ledger> {
        store.shared.ledger.clone().unwrap()
    }

    /// Stores 12 small dictionaries and deletes two of every three.
    async fn store_and_delete(store: &S3Store) {
        for n in 0..12u8 {
            let mut writer = store
                .begin(NewItem {
                    data_type: DataType::Dictionary,
                    serialization: Serialization::Json,
                    encrypted_in_transit: false,
                    peer: "10.0.0.1:1".into(),
                    name: None,
                })
                .await
                .unwrap();
            writer.write(&[n; 3000]).await.unwrap();
            let meta = writer.commit().await.unwrap();
            if n % 3 != 0 {
                assert!(store.delete(meta.id).await.unwrap());
            }
        }
    }

    #[tokio::test]
    async fn leaves_not_copied_into_their_log_are_never_compacted_away() {
        let (objects, key) = (Arc::new(InMemory::new()), StorageKey::generate());
        let store = open(&objects, &key).await;
        ledger(&store).stop_copying();
        store_and_delete(&store).await;
        let size = ledger(&store).size();
        let root = ledger(&store).root(size).unwrap();
        for _ in 0..2 {
            let done = store.compact(true).await.unwrap();
            assert_eq!((done.copied_through, done.removed_objects), (None, 0));
        }

        // As after a crash: the next open counts the leaves from the commit
        // log and copies them; compaction then goes on, and loses no leaf.
        drop(store);
        let store = open(&objects, &key).await;
        assert_eq!(ledger(&store).size(), size);
        assert_eq!(ledger(&store).root(size).unwrap(), root);
        ledger(&store).copied().await;
        let mut removed = 0;
        for _ in 0..200 {
            let done = store.compact(true).await.unwrap();
            removed += done.removed_objects;
            if removed > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(removed > 0, "compaction stayed held back");
        drop(store);
        let store = open(&objects, &key).await;
        assert_eq!(ledger(&store).root(size).unwrap(), root);
        assert_eq!(store.count().await, 4);
    }

    async fn ids(store: &S3Store) -> Vec<ItemId> {
        let page = store.list(&ListQuery::default()).await.unwrap();
        page.items.iter().map(|meta| meta.id).collect()
    }

    /// Server `a`, and server `b` that reads the log only when asked and
    /// has not read what a compaction of `a` then removed: `b`'s next read
    /// rebuilds its view.
    async fn one_behind(faulty: &Arc<Faulty>) -> (Arc<S3Store>, Arc<S3Store>) {
        let key = StorageKey::generate();
        let a = open_with(faulty.inner(), &key, told()).await;
        store_and_delete(&a).await;
        let asleep = S3Options {
            ledger: None,
            poll_interval: Duration::from_secs(3600),
            ..told()
        };
        let b = open_with(faulty.clone(), &key, asleep).await;
        assert_eq!(ids(&b).await, ids(&a).await);
        store_and_delete(&a).await;
        ledger(&a).copied().await;
        a.compact(true).await.unwrap();
        assert!(a.compact(false).await.unwrap().removed_objects > 0);
        (a, b)
    }

    #[tokio::test]
    async fn a_rebuild_that_meets_another_compactions_removal_still_ends() {
        let faulty = Arc::new(Faulty::default());
        let (a, b) = one_behind(&faulty).await;
        // Another compaction removes what it copied while b's rebuild reads the log.
        store_and_delete(&a).await;
        ledger(&a).copied().await;
        let second = a.compact(true).await.unwrap().copied_through.unwrap();
        faulty.remove_after_listing(second);

        b.refresh().await.unwrap();
        assert_eq!(ids(&b).await, ids(&a).await);
        assert_eq!(b.count().await, 12);
    }

    #[tokio::test]
    async fn nothing_reads_a_view_while_it_is_rebuilt() {
        let faulty = Arc::new(Faulty::default());
        let (a, b) = one_behind(&faulty).await;
        let all = ids(&a).await;
        assert_eq!(all.len(), 8);

        // b's rebuild stops once its view is cleared, before it reads the log.
        faulty.pause_after_listing();
        let refresh = tokio::spawn({
            let b = b.clone();
            async move { b.refresh().await }
        });
        faulty.paused().await;
        let early = tokio::time::timeout(Duration::from_millis(300), ids(&b)).await;
        if let Ok(listed) = early {
            assert_eq!(listed, all, "a listing during the rebuild");
        }
        faulty.resume();
        refresh.await.unwrap().unwrap();
        assert_eq!(ids(&b).await, all);
    }
}
