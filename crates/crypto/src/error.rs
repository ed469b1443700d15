//! The one error type of this crate.
//!
//! Messages never contain key material or plaintext.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in `ferry-crypto`.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Key text that is not a valid key (wrong alphabet, wrong length, ...).
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),

    /// A key file could not be read, created or written.
    #[error("key file {}: {source}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },

    /// A Fernet token that does not verify: malformed, tampered with, or made
    /// with another key.
    #[error("invalid Fernet token (malformed, tampered with, or made with another key)")]
    InvalidToken,

    /// A sealed record names a storage key that is not in the keyring.
    #[error("record was sealed with storage key {0:?}, which is not in the keyring")]
    UnknownKey(String),

    /// A sealed record names a data key that was destroyed: the item was
    /// deleted, and nothing can decrypt it any more.
    #[error("record was sealed with data key {0:?}, which was destroyed (the item was deleted)")]
    KeyDestroyed(String),

    /// The bytes are not a sealed record of a version this crate reads, or the
    /// lengths in its header and footer do not fit together.
    #[error("malformed record: {0}")]
    MalformedRecord(String),

    /// A block of a sealed record failed authentication.
    #[error("record failed authentication at {0} (tampered with, truncated, or the wrong key)")]
    Authentication(String),

    /// A data chunk index past the end of the record.
    #[error("chunk {index} is out of range (the record has {count} chunks)")]
    ChunkOutOfRange {
        /// The requested chunk.
        index: u64,
        /// The number of data chunks in the record.
        count: u64,
    },

    /// A byte range that is not inside the record's plaintext.
    #[error("byte range {start}..{end} is not within the plaintext length {len}")]
    InvalidRange {
        /// First byte requested.
        start: u64,
        /// One past the last byte requested.
        end: u64,
        /// Plaintext length of the record.
        len: u64,
    },

    /// Reading a sealed record from its source failed.
    #[error("reading sealed record: {0}")]
    Io(#[from] io::Error),
}
