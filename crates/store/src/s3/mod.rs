//! [`S3Store`]: the store in an S3-compatible bucket, shared by any number of
//! servers.
//!
//! ```text
//! s3://BUCKET/PREFIX/
//!   log/<seq>        the commit log: one object per group commit, numbered
//!                    from 1 without gaps, each created with If-None-Match: *
//!                    (see [`journal`] and [`batch`])
//!   items/<id>.rec   one sealed record per large item, uploaded in parts
//!   ledger/<name>/   each server's own log of what it did to items, when
//!                    the server keeps one (see [`ledger`])
//! ```
//!
//! Guarantees, as on the local store:
//! - An item is listed only once the object storage has acknowledged its
//!   record: a small item's with its group's log object, a large item's object
//!   (its multipart upload completed) before the log entry that lists it.
//! - Items are sealed with AES-256-GCM by Ferry, with the keyring's current
//!   storage key, before they leave the process; the bucket's own encryption
//!   is never relied on. Reads authenticate every chunk and check that the
//!   record is the item's own.
//! - A writer dropped without commit, or a failed upload, aborts its multipart
//!   upload: nothing partial is listed or left behind.
//! - No server overwrites another's objects: log objects are only created
//!   conditionally, and item objects are named by ids unique to their writer.
//! - Every server applies the same log in the same order. An item committed by
//!   one server is listed by the others once they read its log object: within
//!   [`S3Options::poll_interval`] plus one listing and one GET.
//! - Nothing the store cannot read is destroyed: a record sealed with a key not
//!   given makes the open fail ([`StoreError::MissingKeys`]) unless
//!   [`S3Options::allow_missing_keys`] is set; a record or log object that does
//!   not authenticate is reported and kept.
//! - A delete is a tombstone in the log, then the removal of a large item's
//!   object. A held item's tombstone is not applied (by any server), so a hold
//!   set on one server and a delete on another resolve the same everywhere.

mod batch;
mod commit;
mod compact;
#[cfg(test)]
mod faults;
mod journal;
mod ledger;
mod read;
mod view;
mod writer;

use std::ops::Range;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use ferry_crypto::Keyring;
use ferry_tlog::Actor;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use time::OffsetDateTime;
use tokio::sync::broadcast;

pub use self::compact::Compaction;

use self::batch::Change;
use self::commit::Committer;
use self::journal::Journal;
use self::ledger::S3Ledger;
use self::view::{Location, View};
use self::writer::S3Writer;
use crate::shares::MemoryShares;
use crate::{
    Cause, ContentStream, ItemId, ItemMeta, ItemWriter, Ledger, ListQuery, NewItem, Page, Store,
    StoreError, UploadAppender, UploadId, UploadInfo,
};

/// Committed items buffered for slow subscribers.
const EVENT_BUFFER: usize = 4096;

/// Where an S3 store is: `s3://BUCKET[/PREFIX]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket's name.
    pub bucket: String,
    /// The key prefix of every object of the store, without slashes around it;
    /// empty for the whole bucket.
    pub prefix: String,
}

impl FromStr for S3Location {
    type Err = String;

    fn from_str(text: &str) -> Result<S3Location, String> {
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{text:?} is not an s3://BUCKET[/PREFIX] address"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{text:?} names no bucket (s3://BUCKET[/PREFIX])"));
        }
        Ok(S3Location {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }
}

impl S3Location {
    /// A directory name for this location's view on a server: readable, and
    /// distinct for every location (`BUCKET[_PREFIX]-HASH`).
    pub fn view_dir_name(&self) -> String {
        use sha2::{Digest, Sha256};
        let readable: String = match self.prefix.as_str() {
            "" => self.bucket.clone(),
            prefix => format!("{}_{prefix}", self.bucket),
        }
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => c,
            _ => '_',
        })
        .collect();
        let digest = Sha256::digest(self.to_string().as_bytes());
        format!("{readable}-{}", hex::encode(&digest[..4]))
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.prefix.as_str() {
            "" => write!(f, "s3://{}", self.bucket),
            prefix => write!(f, "s3://{}/{prefix}", self.bucket),
        }
    }
}

/// Settings of an [`S3Store`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Options {
    /// Largest item accepted, in bytes; writing past it is [`StoreError::TooLarge`].
    pub max_item_size: Option<u64>,
    /// Items of at most this many bytes go into the commit log whole; larger
    /// ones into objects of their own.
    pub inline_max: usize,
    /// How long the committer waits after the first change of a group for
    /// more. Zero (the default) still groups everything that arrives while
    /// the previous log object is being written.
    pub batch_window: Duration,
    /// At most this many bytes of changes in one log object.
    pub batch_max: usize,
    /// The part size of large items' uploads (at least 5 MiB, as S3 requires).
    pub part_size: usize,
    /// Parts of one item uploaded at once.
    pub upload_concurrency: usize,
    /// Bytes all large items' uploads together may hold in memory. Each holds
    /// the part it fills and those in flight, `upload_concurrency + 1` parts
    /// (25 MiB by default); beyond that many uploads, a large item waits for
    /// one to end before its upload starts.
    pub upload_memory: usize,
    /// How often the store reads the log objects other servers wrote.
    pub poll_interval: Duration,
    /// Open even if some records were sealed with storage keys that are not in
    /// the keyring: serve what the keyring reads.
    pub allow_missing_keys: bool,
    /// Where this server keeps its view of the bucket (its catalog of items),
    /// so that a restart reads only the commit log written since. One
    /// directory per server and store. `None`: a temporary directory, and the
    /// whole log read at every open.
    pub view_dir: Option<PathBuf>,
    /// The name of this server's own log in the bucket (`ledger/<name>/`), if
    /// it keeps one: what it stores, deletes, holds and reads, each a leaf.
    /// One writer per name (Ferry's server names it after its signing key).
    pub ledger: Option<String>,
    /// How long the leaves of this server's log gather in the commit log
    /// before they are copied into the log's own objects (one PUT a copy).
    pub ledger_copy_delay: Duration,
    /// How often the store compacts the commit log (see [`S3Store::compact`]).
    pub compact_interval: Duration,
    /// How long log objects a compaction copied are kept after it: longer
    /// than any server lags behind the log while running, or reads one item.
    pub compact_grace: Duration,
    /// How old a large item's object that nothing lists must be before a
    /// compaction deletes it: far longer than any upload takes to be listed.
    pub orphan_age: Duration,
}

impl Default for S3Options {
    fn default() -> S3Options {
        S3Options {
            max_item_size: None,
            inline_max: 256 << 10,
            batch_window: Duration::ZERO,
            batch_max: 8 << 20,
            // 80 sealed chunks: 5,244,160 bytes, just over S3's 5 MiB minimum.
            part_size: 80 * (ferry_crypto::CHUNK_SIZE + 16),
            upload_concurrency: 4,
            upload_memory: 256 << 20,
            poll_interval: Duration::from_millis(200),
            allow_missing_keys: false,
            view_dir: None,
            ledger: None,
            ledger_copy_delay: Duration::from_millis(200),
            compact_interval: Duration::from_secs(600),
            compact_grace: Duration::from_secs(600),
            orphan_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// What every writer and reader share.
#[derive(Debug)]
pub(crate) struct Shared {
    journal: Arc<Journal>,
    committer: Committer,
    options: S3Options,
    /// One permit per large item's upload that fits in
    /// [`S3Options::upload_memory`].
    uploads: MemoryShares,
    /// This server's log, if it keeps one ([`S3Options::ledger`]).
    ledger: Option<Arc<S3Ledger>>,
}

/// The store in an S3-compatible bucket. See the module docs of `s3/mod.rs`.
#[derive(Debug)]
pub struct S3Store {
    shared: Arc<Shared>,
}

impl S3Store {
    /// Opens the store at `location`, with the endpoint, region and
    /// credentials of the standard `AWS_*` variables (`AWS_ENDPOINT_URL`,
    /// `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_ALLOW_HTTP`, ...): reads the whole commit log, then follows it.
    ///
    /// # Errors
    /// [`StoreError::Remote`] if the bucket cannot be read;
    /// [`StoreError::MissingKeys`] as on the local store.
    pub async fn open(
        location: &S3Location,
        keyring: Keyring,
        options: S3Options,
    ) -> Result<Arc<S3Store>, StoreError> {
        let objects = AmazonS3Builder::from_env()
            .with_bucket_name(&location.bucket)
            .build()
            .map_err(|err| StoreError::remote("configuring the S3 client", err))?;
        S3Store::open_on(Arc::new(objects), location, keyring, options).await
    }

    /// [`S3Store::open`] on any object store (tests give it an in-memory one).
    pub async fn open_on(
        objects: Arc<dyn ObjectStore>,
        location: &S3Location,
        keyring: Keyring,
        options: S3Options,
    ) -> Result<Arc<S3Store>, StoreError> {
        let root = Path::from(location.prefix.as_str());
        if let Some(name) = &options.ledger {
            check_ledger_name(name)?;
        }
        let events = broadcast::channel(EVENT_BUFFER).0;
        let view = View::open(options.view_dir.as_deref())?;
        let journal = Journal::open(objects.clone(), root.clone(), keyring, events, view).await?;
        let journal = Arc::new(journal);
        journal.catch_up().await?;
        let missing = journal.read_view(View::unreadable).await?;
        if !missing.is_empty() {
            let records = missing.values().sum::<u64>() as usize;
            let key_ids: Vec<String> = missing.into_keys().collect();
            if !options.allow_missing_keys {
                return Err(StoreError::MissingKeys { key_ids, records });
            }
            tracing::warn!(records, key_ids = %key_ids.join(", "), "starting without the storage keys of some records, as told: they are not listed, and kept as they are");
        }
        let committer = Committer::start(journal.clone(), options.batch_window, options.batch_max);
        let ledger = match &options.ledger {
            Some(name) => Some(Arc::new(
                S3Ledger::open(
                    objects,
                    (&root, name),
                    &journal,
                    committer.clone(),
                    options.ledger_copy_delay,
                )
                .await?,
            )),
            None => None,
        };
        tokio::spawn(follow(Arc::downgrade(&journal), options.poll_interval));
        let per_upload = (options.upload_concurrency + 1) * options.part_size;
        let uploads = MemoryShares::new(
            options.upload_memory,
            per_upload,
            "ferry_s3_upload_waits_total",
        );
        let shared = Arc::new(Shared {
            journal,
            committer,
            options,
            uploads,
            ledger,
        });
        tokio::spawn(compact_every(Arc::downgrade(&shared)));
        let items = shared.journal.settled().await.len()?;
        tracing::info!(store = %location, items, "S3 store open");
        Ok(Arc::new(S3Store { shared }))
    }
}

impl S3Store {
    /// Compacts the commit log now (see the module docs of `s3/compact.rs`): removes
    /// the log objects an earlier compaction copied at least
    /// [`S3Options::compact_grace`] ago, then copies what still matters of
    /// the objects since, if at least half their bytes are garbage (or if
    /// `force`). The store does it by itself every
    /// [`S3Options::compact_interval`].
    pub async fn compact(&self, force: bool) -> Result<Compaction, StoreError> {
        let grace = self.shared.options.compact_grace;
        compact::compact(&self.shared, grace, force).await
    }
}

impl Shared {
    /// Commits `change` with the leaf that records it in this server's log
    /// (if it keeps one), in one log object: both are durable, or neither.
    /// Returns the index of the leaf (0 without a log).
    async fn logged(
        &self,
        change: Change,
        leaf: impl FnOnce() -> ferry_tlog::Entry,
    ) -> Result<u64, StoreError> {
        let leaves = match &self.ledger {
            Some(_) => vec![leaf()],
            None => Vec::new(),
        };
        let (_, index) = self.committer.commit_logged(vec![change], leaves).await?;
        Ok(index)
    }

    /// `meta` with the index of its `stored` leaf in this server's log, if it
    /// has one there.
    fn with_leaf(&self, mut meta: ItemMeta) -> ItemMeta {
        if let Some(ledger) = &self.ledger {
            meta.log_index = ledger.index_of(meta.id);
        }
        meta
    }

    /// The entry of item `id`; if it is not listed, reads the commit log
    /// first (it may have been committed on another server since the last
    /// poll).
    async fn entry(&self, id: ItemId) -> Result<Option<view::Entry>, StoreError> {
        if let Some(entry) = self.journal.settled().await.get(id)? {
            return Ok(Some(entry));
        }
        self.journal.catch_up().await?;
        self.journal.settled().await.get(id)
    }
}

/// Reads the log objects other servers write, every `interval`, for as long
/// as the store is open.
async fn follow(journal: Weak<Journal>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(journal) = journal.upgrade() else {
            return;
        };
        if let Err(err) = journal.catch_up().await {
            tracing::warn!(%err, "cannot read the commit log; trying again");
        }
    }
}

/// Compacts the commit log every [`S3Options::compact_interval`], for as long
/// as the store is open.
async fn compact_every(shared: Weak<Shared>) {
    let Some(interval) = shared.upgrade().map(|s| s.options.compact_interval) else {
        return;
    };
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let grace = shared.options.compact_grace;
        if let Err(err) = compact::compact(&shared, grace, false).await {
            tracing::warn!(%err, "cannot compact the commit log; trying again later");
        }
    }
}

const NO_UPLOADS: &str =
    "resumable uploads are not available on the S3 store yet; send the item in one transfer";

#[async_trait::async_trait]
impl Store for S3Store {
    async fn begin(&self, item: NewItem) -> Result<Box<dyn ItemWriter>, StoreError> {
        Ok(Box::new(S3Writer::new(self.shared.clone(), item)))
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let query = query.clone();
        let journal = &self.shared.journal;
        let mut page = journal.read_view(move |view| view.list(&query)).await?;
        page.items = page
            .items
            .into_iter()
            .map(|meta| self.shared.with_leaf(meta))
            .collect();
        Ok(page)
    }

    async fn get(&self, id: ItemId) -> Result<Option<ItemMeta>, StoreError> {
        let meta = self.shared.entry(id).await?.map(|entry| entry.meta);
        Ok(meta.map(|meta| self.shared.with_leaf(meta)))
    }

    async fn open(
        &self,
        id: ItemId,
        range: Option<Range<u64>>,
    ) -> Result<Option<(ItemMeta, ContentStream)>, StoreError> {
        read::open(&self.shared, id, range).await
    }

    async fn delete_as(&self, id: ItemId, cause: &Cause) -> Result<bool, StoreError> {
        tokio::spawn(delete(self.shared.clone(), id, cause.clone()))
            .await
            .map_err(crate::joined)?
    }

    async fn set_hold_as(
        &self,
        id: ItemId,
        held: bool,
        by: &Actor,
    ) -> Result<Option<ItemMeta>, StoreError> {
        let journal = &self.shared.journal;
        if self.shared.entry(id).await?.is_none() {
            return Ok(None);
        }
        let leaf = || ferry_tlog::Entry::hold(&id.to_string(), held, by, &crate::now());
        self.shared.logged(Change::Hold(id, held), leaf).await?;
        Ok(journal.settled().await.get(id)?.map(|entry| entry.meta))
    }

    fn ledger(&self) -> Option<Arc<dyn Ledger>> {
        self.shared
            .ledger
            .clone()
            .map(|ledger| ledger as Arc<dyn Ledger>)
    }

    async fn upload_create(
        &self,
        _item: NewItem,
        _length: Option<u64>,
    ) -> Result<UploadInfo, StoreError> {
        Err(StoreError::Unsupported(NO_UPLOADS))
    }

    async fn upload_info(&self, _id: UploadId) -> Result<Option<UploadInfo>, StoreError> {
        Ok(None)
    }

    async fn upload_set_length(
        &self,
        _id: UploadId,
        _length: u64,
    ) -> Result<UploadInfo, StoreError> {
        Err(StoreError::NotFound)
    }

    async fn upload_append(
        &self,
        _id: UploadId,
        _offset: u64,
    ) -> Result<Box<dyn UploadAppender>, StoreError> {
        Err(StoreError::NotFound)
    }

    async fn upload_finish(&self, _id: UploadId) -> Result<ItemMeta, StoreError> {
        Err(StoreError::NotFound)
    }

    async fn upload_cancel(&self, _id: UploadId) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn uploads(&self) -> Result<Vec<UploadInfo>, StoreError> {
        Ok(Vec::new())
    }

    async fn expire_uploads(&self, _now: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(0)
    }

    fn subscribe(&self) -> broadcast::Receiver<ItemMeta> {
        self.shared.journal.events().subscribe()
    }

    async fn count(&self) -> usize {
        match self.shared.journal.settled().await.len() {
            Ok(count) => count,
            Err(err) => {
                tracing::warn!(%err, "cannot count the items of the view");
                0
            }
        }
    }

    async fn refresh(&self) -> Result<(), StoreError> {
        self.shared.journal.catch_up().await
    }
}

/// Deletes an item (see [`Store::delete`]): its tombstone in the commit log,
/// with its leaf in this server's log, then a large item's object.
async fn delete(shared: Arc<Shared>, id: ItemId, cause: Cause) -> Result<bool, StoreError> {
    let journal = &shared.journal;
    let Some(entry) = shared.entry(id).await? else {
        return Ok(false);
    };
    if entry.meta.held {
        return Err(StoreError::Held(id));
    }
    shared
        .logged(Change::Tombstone(id), || cause.entry(&id.to_string()))
        .await?;
    if journal.settled().await.is_held(id)? {
        // Held by another server before the tombstone: not applied anywhere,
        // and the log says so.
        if let Some(ledger) = &shared.ledger {
            let kept = ferry_tlog::Entry::kept(&id.to_string(), &crate::now());
            if let Err(err) = ledger.append(vec![kept]).await {
                tracing::error!(%id, %err, "cannot log that a failed delete kept the item");
            }
        }
        return Err(StoreError::Held(id));
    }
    if let Location::Object { .. } = entry.location
        && let Err(err) = journal.objects.delete(&journal.item_path(id)).await
    {
        // Unlisted everywhere already; the object is only space until a sweep.
        tracing::warn!(%id, %err, "cannot remove a deleted item's object");
    }
    Ok(true)
}

/// A log's name must be one path segment of plain characters.
fn check_ledger_name(name: &str) -> Result<(), StoreError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.starts_with('.') || !name.chars().all(plain) {
        return Err(StoreError::Unavailable(format!(
            "{name:?} cannot name a log in the bucket (letters, digits, '-', '_', '.')"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_location_has_its_own_readable_view_directory() {
        let name = |text: &str| text.parse::<S3Location>().unwrap().view_dir_name();
        let whole = name("s3://ferry-items");
        let nested = name("s3://ferry-items/a/b");
        assert!(whole.starts_with("ferry-items-"), "{whole}");
        assert!(nested.starts_with("ferry-items_a_b-"), "{nested}");
        assert_ne!(nested, name("s3://ferry-items/a_b"));
        assert_eq!(whole, name("s3://ferry-items/"));
        assert!(!name("s3://b/../x").contains('/'));
    }
}
