//! The store's log of what happens to its items: a Merkle tree of leaves in
//! Ferry's leaf format (see `ferry_tlog::entry`), kept durably by the store so
//! that it moves with the items.
//!
//! The store appends a `stored` leaf for every item it commits (written before
//! the commit returns, durable then too if asked, durable before any
//! checkpoint holds it in any case, and written again from the item's record
//! at the next open if a crash lost it), a
//! `deleted` or `expired` leaf before every delete (durable), and
//! `hold` / `release` leaves after legal hold changes; its users append others
//! (the admin API's `read` leaves). Leaves are never changed or removed. At
//! open, the store brings the log in line with what recovery found: a `stored`
//! leaf for a committed item that has none (a crash came between the two) and
//! an `aborted` leaf for a `stored` leaf whose item was never committed.
//!
//! Signing is not the store's business: it keeps the latest signed checkpoint
//! it is given ([`Ledger::save_checkpoint`]) so that the next start can check
//! the leaves against it.

use ferry_tlog::{Actor, Entry, Hash, ProofError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{ItemMeta, StoreError};

/// Why an item is deleted, as its leaf says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// Someone asked (through the admin API).
    By(Actor),
    /// A retention rule expired it.
    Expired {
        /// The rule, as the settings name it (`dict=30d`).
        rule: String,
    },
}

impl Cause {
    /// A delete asked for by the store's owner in-process (tests, tools).
    #[must_use]
    pub fn local() -> Cause {
        Cause::By(local_actor())
    }

    /// The leaf that records this delete of `id`.
    #[must_use]
    pub fn entry(&self, id: &str) -> Entry {
        match self {
            Cause::By(actor) => Entry::deleted(id, actor, &now()),
            Cause::Expired { rule } => Entry::expired(id, rule, &now()),
        }
    }
}

/// The actor of changes made in-process, not through the admin API.
#[must_use]
pub fn local_actor() -> Actor {
    Actor {
        credential: "local".into(),
        address: "-".into(),
    }
}

/// The `stored` leaf of an item.
#[must_use]
pub fn stored_entry(meta: &ItemMeta) -> Entry {
    Entry::stored(
        &meta.id.to_string(),
        &meta.sha256,
        meta.size,
        meta.data_type.as_str(),
        meta.serialization.as_str(),
        &rfc3339(meta.received_at),
    )
}

/// `at` as leaves write times: RFC 3339, UTC.
#[must_use]
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .expect("a UTC time always formats")
}

/// Now, as leaves write times.
#[must_use]
pub fn now() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

/// What a fresh reading of the leaves on disk found (see [`Ledger::rescan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rescan {
    /// The leaves read.
    pub size: u64,
    /// The root of the tree of the first `at` leaves read, for the size asked.
    pub root_at: Option<Hash>,
    /// Damage found: unreadable frames, leaves that are not leaves, and any
    /// disagreement with the tree in memory. Empty when all is well.
    pub problems: Vec<String>,
}

/// The store's log. See the module docs of `ledger.rs`.
#[async_trait::async_trait]
pub trait Ledger: Send + Sync + std::fmt::Debug {
    /// Appends `entries`, one after the other, and returns the leaf index of
    /// the first once they are all durable.
    async fn append(&self, entries: Vec<Entry>) -> Result<u64, StoreError>;

    /// The number of leaves (written; see [`sync`](Ledger::sync)).
    fn size(&self) -> u64;

    /// Makes every leaf written so far durable. Items' `stored` leaves are
    /// written without waiting for it: a checkpoint must be signed only over
    /// leaves made durable.
    async fn sync(&self) -> Result<(), StoreError>;

    /// The root of the tree of the first `size` leaves.
    fn root(&self, size: u64) -> Result<Hash, StoreError>;

    /// The inclusion proof of leaf `index` in the tree of `size` leaves.
    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError>;

    /// The consistency proof from the tree of `from` leaves to that of `to`.
    fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>, StoreError>;

    /// Up to `limit` leaves from index `from` on, read from disk.
    async fn leaves(&self, from: u64, limit: usize) -> Result<Vec<(u64, Entry)>, StoreError>;

    /// The last signed checkpoint saved, if any.
    async fn checkpoint(&self) -> Result<Option<String>, StoreError>;

    /// Saves a signed checkpoint durably, replacing the one before.
    async fn save_checkpoint(&self, note: &str) -> Result<(), StoreError>;

    /// What was found wrong with the leaves at open (empty when nothing).
    fn problems(&self) -> Vec<String>;

    /// Whether the open read every leaf and checked it against the tree (its
    /// [`problems`](Self::problems) say what it found); if not, a
    /// [`rescan`](Self::rescan) should check them soon.
    fn read_at_open(&self) -> bool {
        true
    }

    /// Reads every leaf from disk again, rebuilds the tree, and compares it
    /// with the tree in memory; `root_at` is the rebuilt tree's root at `size`
    /// (when it has that many leaves).
    async fn rescan(&self, size: u64) -> Result<Rescan, StoreError>;
}

/// A request the tree cannot answer is the asker's; leaves it cannot read
/// back as appended are damage.
pub(crate) fn proof_error(err: ProofError) -> StoreError {
    match err {
        ProofError::LeavesUnreadable { .. } | ProofError::LeavesChanged { .. } => {
            StoreError::LogDamaged(err.to_string())
        }
        _ => StoreError::InvalidLogRequest(err.to_string()),
    }
}

/// Appends a SHA-256 of `bytes` to them: the files and objects a ledger saves
/// as a shortcut (its tree, its index chunks), read back with [`unsealed`].
pub(crate) fn seal_sha256(bytes: &mut Vec<u8>) {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(&*bytes);
    bytes.extend_from_slice(&digest);
}

/// What [`seal_sha256`] sealed after `magic`, if `bytes` are that, whole.
pub(crate) fn unsealed<'a>(bytes: &'a [u8], magic: &[u8]) -> Option<&'a [u8]> {
    use sha2::{Digest, Sha256};
    let (body, digest) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    if Sha256::digest(body).as_slice() != digest {
        return None;
    }
    body.strip_prefix(magic)
}
