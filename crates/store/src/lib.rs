//! The durable, encrypted item store behind a small trait.
//!
//! Every item Ferry receives (a text file or a dictionary) is written through an
//! [`ItemWriter`] obtained from [`Store::begin`], and becomes visible only when
//! [`ItemWriter::commit`] returns: at that point it is sealed with the keyring's
//! current storage key (AES-256-GCM STREAM, see `ferry-crypto`), on disk, fsynced
//! and listed. A writer dropped without commit leaves nothing listed.
//!
//! [`Store`] is the trait the server and the admin API code against; [`LocalStore`]
//! is its implementation on a local directory (an S3-compatible backend comes later).
//! Reads ([`Store::open`]) stream the decrypted plaintext chunk by chunk, each chunk
//! authenticated before it is yielded.
//!
//! The store keeps a tamper-evident log of what happens to its items
//! ([`Ledger`]): every commit appends a leaf, durable before the commit returns.
//!
//! Items can be put on legal hold ([`Store::set_hold`]): a held item is not
//! deleted until released. [`Retention`] says when items expire, by kind and
//! format, and [`sweep_expired`] deletes the expired items that are not held,
//! through the trait alone, so it works on every store.

mod chunks;
// The local store's listing (see `local::listing`). Public, hidden, only for
// its benchmark (`examples/catalog_bench.rs`): not part of the API.
#[doc(hidden)]
pub mod catalog;
mod error;
mod id;
mod ledger;
mod local;
mod meta;
mod notary;
mod retention;
mod s3;
mod seal;
mod shares;
mod upload;

use std::ops::Range;

use ferry_protocol::{DataType, Serialization};
use time::OffsetDateTime;

pub use error::StoreError;
pub(crate) use error::joined;
pub use id::ItemId;
pub use ledger::{Cause, Ledger, Rescan, local_actor, now, rfc3339, stored_entry};
pub use local::{LARGE_ITEM_MEMORY, LocalOptions, LocalStore};
pub use meta::ItemMeta;
pub use notary::{LogCheck, Notary, Published};
pub use retention::{Retention, RetentionError, Swept, sweep_expired};
pub use s3::{Compaction, S3Location, S3Options, S3Store};
pub use upload::{UploadAppender, UploadId, UploadInfo};

/// What the receiver knows about an item when it begins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewItem {
    /// Text or dictionary.
    pub data_type: DataType,
    /// How the content is serialized.
    pub serialization: Serialization,
    /// Whether the transfer's packets were Fernet tokens on the wire.
    pub encrypted_in_transit: bool,
    /// The sending peer, `"ip:port"`.
    pub peer: String,
    /// The file name the client announced, if any.
    pub name: Option<String>,
}

/// Which items [`Store::list`] returns. Every filter that is set must match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListQuery {
    /// Only items of this data type.
    pub data_type: Option<DataType>,
    /// Only items with this serialization.
    pub serialization: Option<Serialization>,
    /// Only items from this source: the peer's IP (`"10.0.0.1"`, `"::1"`), or a
    /// prefix of `"ip:port"` that covers the whole IP (`"10.0.0.1:40"`).
    pub source: Option<String>,
    /// Only items received at or after this instant.
    pub since: Option<OffsetDateTime>,
    /// Only items received strictly before this instant.
    pub until: Option<OffsetDateTime>,
    /// Only items whose file name contains this text, ignoring case.
    pub name: Option<String>,
    /// Cursor: only items strictly older than this id (from [`Page::next`]).
    pub before: Option<ItemId>,
    /// At most this many items; 0 means no limit.
    pub limit: usize,
}

/// One page of a listing, newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    /// The items of this page, newest first.
    pub items: Vec<ItemMeta>,
    /// The cursor for the next page (pass it as [`ListQuery::before`]); `None` when
    /// no further item matches.
    pub next: Option<ItemId>,
}

/// Decrypted plaintext of an item, one authenticated chunk at a time.
pub type ContentStream = futures::stream::BoxStream<'static, Result<bytes::Bytes, StoreError>>;

/// A store of sealed items. Shared by every connection (`Arc<dyn Store>`).
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Starts a new item. Nothing is listed until the writer commits.
    async fn begin(&self, item: NewItem) -> Result<Box<dyn ItemWriter>, StoreError>;

    /// Lists committed items matching `query`, newest first.
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError>;

    /// The metadata of one item, `None` if there is no such item.
    async fn get(&self, id: ItemId) -> Result<Option<ItemMeta>, StoreError>;

    /// Streams an item's plaintext, or the bytes `range` of it (`range.end` is
    /// clamped to the size; a start past the size is [`StoreError::InvalidRange`]).
    /// `None` if there is no such item. A record that fails authentication gives
    /// [`StoreError::Integrity`], from here or as an item of the stream.
    async fn open(
        &self,
        id: ItemId,
        range: Option<Range<u64>>,
    ) -> Result<Option<(ItemMeta, ContentStream)>, StoreError>;

    /// Deletes an item durably; `false` if there was no such item. An item on
    /// legal hold is not deleted: [`StoreError::Held`], and nothing changes.
    /// The store's log, if it keeps one, records the delete and its `cause`
    /// first.
    async fn delete_as(&self, id: ItemId, cause: &Cause) -> Result<bool, StoreError>;

    /// [`delete_as`](Store::delete_as) by the store's owner in-process.
    async fn delete(&self, id: ItemId) -> Result<bool, StoreError> {
        self.delete_as(id, &Cause::local()).await
    }

    /// Puts an item on legal hold (`held`), or lifts its hold, and returns once
    /// the change is durable, with the item's metadata in its new state; `None`
    /// if there is no such item. A held item is neither expired nor deleted
    /// until its hold is lifted. On an error nothing changed. The store's log,
    /// if it keeps one, records the change and who made it.
    async fn set_hold_as(
        &self,
        id: ItemId,
        held: bool,
        by: &ferry_tlog::Actor,
    ) -> Result<Option<ItemMeta>, StoreError>;

    /// [`set_hold_as`](Store::set_hold_as) by the store's owner in-process.
    async fn set_hold(&self, id: ItemId, held: bool) -> Result<Option<ItemMeta>, StoreError> {
        self.set_hold_as(id, held, &local_actor()).await
    }

    /// The store's log of what happens to its items, if it keeps one.
    fn ledger(&self) -> Option<std::sync::Arc<dyn Ledger>>;

    /// Opens a resumable upload of `item` (see [`upload`](crate::UploadInfo)):
    /// `length` is its whole size, or `None` until
    /// [`upload_set_length`](Store::upload_set_length). Durable when it returns.
    async fn upload_create(
        &self,
        item: NewItem,
        length: Option<u64>,
    ) -> Result<UploadInfo, StoreError>;

    /// An unfinished upload's state; `None` if there is no such upload (never
    /// opened, finished, cancelled or expired).
    async fn upload_info(&self, id: UploadId) -> Result<Option<UploadInfo>, StoreError>;

    /// Sets the length of an upload opened without one.
    /// [`StoreError::UploadLength`] if it has one already (and it differs), or
    /// if it is less than the bytes committed.
    async fn upload_set_length(&self, id: UploadId, length: u64) -> Result<UploadInfo, StoreError>;

    /// Starts an append of the bytes from `offset` on, which must be the
    /// upload's committed offset ([`StoreError::UploadOffset`] otherwise);
    /// [`StoreError::UploadBusy`] while another append of it is open;
    /// [`StoreError::NotFound`] if there is no such upload.
    async fn upload_append(
        &self,
        id: UploadId,
        offset: u64,
    ) -> Result<Box<dyn UploadAppender>, StoreError>;

    /// Stores a complete upload as an item and forgets the upload;
    /// [`StoreError::UploadIncomplete`] if bytes are missing.
    async fn upload_finish(&self, id: UploadId) -> Result<ItemMeta, StoreError>;

    /// Cancels an upload and removes its staged data; `false` if there was no
    /// such upload.
    async fn upload_cancel(&self, id: UploadId) -> Result<bool, StoreError>;

    /// The unfinished uploads, oldest first.
    async fn uploads(&self) -> Result<Vec<UploadInfo>, StoreError>;

    /// Removes the uploads whose `expires_at` is past `now`; returns how many.
    async fn expire_uploads(&self, now: OffsetDateTime) -> Result<u64, StoreError>;

    /// Every item committed from now on, for live updates. A receiver that falls
    /// behind gets `RecvError::Lagged` and misses items.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ItemMeta>;

    /// The number of listed items.
    async fn count(&self) -> usize;

    /// Takes in, now, what other servers sharing the store committed (a store
    /// shared by several servers otherwise does so at its next poll). A store
    /// of one server has nothing to take in.
    async fn refresh(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Receives one item's plaintext, packet by packet.
///
/// Dropping a writer without [`commit`](ItemWriter::commit) aborts the item:
/// nothing is listed and its temporary data is removed.
#[async_trait::async_trait]
pub trait ItemWriter: Send {
    /// Appends plaintext (one received packet, up to 64 KiB). Past the store's
    /// maximum item size this is [`StoreError::TooLarge`] and the writer is spent.
    async fn write(&mut self, plaintext: &[u8]) -> Result<(), StoreError>;

    /// Seals the item and returns once it is durable (fsynced) and listed.
    async fn commit(self: Box<Self>) -> Result<ItemMeta, StoreError>;

    /// Asks that the item's `stored` leaf, if the store keeps a log, be durable
    /// when [`commit`](Self::commit) returns, not only with the log's next
    /// sync: for a sender about to get a receipt, whose checkpoint may hold
    /// durable leaves only. The leaf's sync then runs beside the record's
    /// instead of after it. Stores without a log ignore it.
    fn sync_leaf_at_commit(&mut self) {}
}
