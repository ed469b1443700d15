//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

use crate::ItemId;

/// Everything that can go wrong in a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// There is no such item.
    #[error("no such item")]
    NotFound,

    /// The item is on legal hold: it cannot be deleted until the hold is lifted
    /// ([`Store::set_hold`](crate::Store::set_hold) with `false`).
    #[error("item {0} is on legal hold")]
    Held(ItemId),

    /// Text that is not an item id (a ULID).
    #[error("invalid item id {0:?}: not a ULID")]
    InvalidId(String),

    /// The item grew past the store's maximum item size.
    #[error("item is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The maximum item size in bytes.
        limit: u64,
    },

    /// A byte range that does not start inside the item.
    #[error("byte range {start}..{end} is not satisfiable for an item of {size} bytes")]
    InvalidRange {
        /// First byte requested.
        start: u64,
        /// One past the last byte requested.
        end: u64,
        /// The item's size.
        size: u64,
    },

    /// A stored record failed authentication or does not match its index entry.
    #[error("item {id} failed integrity checks: {reason}")]
    Integrity {
        /// The item.
        id: ItemId,
        /// Why: tampered with, truncated, unknown key, wrong record, ...
        reason: String,
    },

    /// A leaf of the store's log that cannot be read back as written.
    #[error("the store's log is damaged: {0}")]
    LogDamaged(String),

    /// A question about the store's log that it cannot answer: a leaf index or
    /// tree size past its end, sizes out of order.
    #[error("{0}")]
    InvalidLogRequest(String),

    /// An append that does not start at the upload's committed offset.
    #[error("the upload is at offset {expected}, not {given}")]
    UploadOffset {
        /// The committed offset.
        expected: u64,
        /// The offset the append named.
        given: u64,
    },

    /// Another append of the upload is in progress.
    #[error("the upload is busy with another append")]
    UploadBusy,

    /// Bytes past the upload's length.
    #[error("the upload would grow past its length of {length} bytes")]
    UploadTooLarge {
        /// The upload's length.
        length: u64,
    },

    /// A length that cannot be set: the upload has another one, or more bytes.
    #[error("{0}")]
    UploadLength(String),

    /// A finish before the last byte arrived.
    #[error("the upload has {offset} of its {} bytes", length.map_or("(unknown)".into(), |l| l.to_string()))]
    UploadIncomplete {
        /// The bytes committed.
        offset: u64,
        /// The upload's length, if known.
        length: Option<u64>,
    },

    /// The store keeps no log (it was opened without one).
    #[error("this store keeps no log")]
    NoLog,

    /// A file operation failed.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// A request to the object storage failed.
    #[error("{context}: {source}")]
    Remote {
        /// What was being done.
        context: String,
        /// The object storage client's error.
        source: object_store::Error,
    },

    /// Something this store cannot do.
    #[error("{0}")]
    Unsupported(&'static str),

    /// Another process has this store directory open.
    #[error("store directory {} is in use by another process", .0.display())]
    Locked(PathBuf),

    /// The store holds records sealed with storage keys that are not in the
    /// keyring. Nothing was changed: give those keys, or open with
    /// [`LocalOptions::allow_missing_keys`](crate::LocalOptions::allow_missing_keys).
    #[error(
        "{records} stored records were sealed with storage keys that were not given (key ids: {})",
        key_ids.join(", ")
    )]
    MissingKeys {
        /// The ids of the keys needed, sorted.
        key_ids: Vec<String>,
        /// How many records need them.
        records: usize,
    },

    /// Stored records name data keys that the key store does not hold: its
    /// `keys/` directory is missing, or older than the data. Nothing was changed.
    #[error(
        "{records} stored records name data keys that the store's keys/ directory does not hold (missing, or restored from another backup than the data); restore keys/ from the backup the data came from. Nothing was changed"
    )]
    KeyStoreIncomplete {
        /// How many records name such keys.
        records: usize,
    },

    /// The writer was used after an error, or the store failed earlier and refuses
    /// writes until it is reopened.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Builds an [`StoreError::Io`].
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
        source: io::Error,
    ) -> StoreError {
        StoreError::Io {
            context,
            path: path.into(),
            source,
        }
    }

    /// The error of a writer used after one of its writes failed.
    pub(crate) fn spent() -> StoreError {
        StoreError::Unavailable("the item's earlier write failed".into())
    }

    /// Builds a [`StoreError::Remote`].
    pub(crate) fn remote(context: impl Into<String>, source: object_store::Error) -> StoreError {
        StoreError::Remote {
            context: context.into(),
            source,
        }
    }

    /// Builds an [`StoreError::Integrity`].
    pub(crate) fn integrity(id: ItemId, reason: impl Into<String>) -> StoreError {
        StoreError::Integrity {
            id,
            reason: reason.into(),
        }
    }
}

/// Maps a failed blocking task.
pub(crate) fn joined(err: tokio::task::JoinError) -> StoreError {
    StoreError::Unavailable(format!("a storage task failed: {err}"))
}
