//! Resumable uploads: an item that arrives in pieces, over several connections
//! (or several servers' lifetimes), staged in the store until its last byte.
//!
//! [`Store::upload_create`](crate::Store::upload_create) opens an upload and
//! names it; [`Store::upload_append`](crate::Store::upload_append) takes the next
//! bytes at the upload's committed offset and returns once they are durable
//! (sealed and synced), with the new offset; an appender dropped before its
//! commit leaves the offset where it was. [`Store::upload_finish`](crate::Store::upload_finish)
//! stores the whole as an item like any other (one id, the SHA-256 of the
//! whole, listed, downloadable, a leaf in the log). Unfinished uploads survive
//! restarts, can be listed and cancelled, and expire after a time without
//! activity (their staged data removed).

use std::fmt;
use std::str::FromStr;

use ferry_protocol::{DataType, Serialization};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use ulid::Ulid;

use crate::{NewItem, StoreError};

/// The id of an upload: a ULID (its text is safe as a file name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UploadId(Ulid);

impl UploadId {
    /// A new, random id.
    #[allow(clippy::new_without_default)]
    pub fn new() -> UploadId {
        UploadId(Ulid::generate())
    }

    /// Parses the text of an id; anything that is not a ULID is refused.
    pub fn parse(text: &str) -> Result<UploadId, StoreError> {
        let invalid = || StoreError::InvalidId(text.chars().take(64).collect());
        let ulid = Ulid::from_string(text).map_err(|_| invalid())?;
        if !ulid.to_string().eq_ignore_ascii_case(text) {
            return Err(invalid());
        }
        Ok(UploadId(ulid))
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for UploadId {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<UploadId, StoreError> {
        UploadId::parse(text)
    }
}

impl Serialize for UploadId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UploadId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<UploadId, D::Error> {
        let text = String::deserialize(deserializer)?;
        UploadId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What is known of an unfinished upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadInfo {
    /// The upload's id.
    pub id: UploadId,
    /// Text or dictionary.
    pub data_type: DataType,
    /// How the content is serialized.
    pub serialization: Serialization,
    /// Whether its pieces were Fernet tokens on the wire.
    pub encrypted_in_transit: bool,
    /// The peer that opened it, `"ip:port"`.
    pub peer: String,
    /// The file name, if any.
    pub name: Option<String>,
    /// Bytes committed (durable) so far: where the next append starts.
    pub offset: u64,
    /// The whole size, once known (`None`: deferred, see
    /// [`Store::upload_set_length`](crate::Store::upload_set_length)).
    pub length: Option<u64>,
    /// When it was opened.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When bytes were last committed (or it was opened).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When it expires unless more bytes come.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl UploadInfo {
    /// The item the upload becomes.
    pub fn new_item(&self) -> NewItem {
        NewItem {
            data_type: self.data_type,
            serialization: self.serialization,
            encrypted_in_transit: self.encrypted_in_transit,
            peer: self.peer.clone(),
            name: self.name.clone(),
        }
    }

    /// Whether every byte has arrived.
    pub fn is_complete(&self) -> bool {
        self.length == Some(self.offset)
    }
}

/// Takes the bytes of one append (see
/// [`Store::upload_append`](crate::Store::upload_append)). Holds the upload:
/// another append of it meanwhile is refused ([`StoreError::UploadBusy`]).
#[async_trait::async_trait]
pub trait UploadAppender: Send {
    /// Takes bytes. Past the upload's length this is
    /// [`StoreError::UploadTooLarge`] and the appender is spent.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError>;

    /// Makes every byte written durable and returns the upload's new state.
    async fn commit(self: Box<Self>) -> Result<UploadInfo, StoreError>;
}
