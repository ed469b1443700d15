//! The crate's error types: [`ProofError`] for trees and proofs, [`NoteError`]
//! for checkpoints, signed notes, keys and key files.
//!
//! Messages never contain key material.

use std::io;
use std::path::PathBuf;

/// A request a [`Tree`](crate::Tree) cannot answer, or a proof that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// A leaf index that is not in the tree of the given size.
    #[error("leaf index {index} is not in a tree of {size} leaves")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },

    /// A tree size larger than the tree.
    #[error("tree size {size} is larger than the tree ({len} leaves)")]
    SizeOutOfRange {
        /// The size asked for.
        size: u64,
        /// The number of leaves in the tree.
        len: u64,
    },

    /// A consistency proof asked for from a larger tree to a smaller one.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    SizesOutOfOrder {
        /// The older tree's size.
        old_size: u64,
        /// The newer tree's size.
        new_size: u64,
    },

    /// The proof has more hashes than the sizes call for.
    #[error("proof has too many hashes")]
    ProofTooLong,

    /// The proof has fewer hashes than the sizes call for.
    #[error("proof has too few hashes")]
    ProofTooShort,

    /// The proof leads to another root than the one given (for a consistency
    /// proof: another new root).
    #[error("proof does not lead to the given root")]
    RootMismatch,

    /// A consistency proof that does not lead to the given old root.
    #[error("consistency proof does not lead to the given old root")]
    OldRootMismatch,

    /// The leaf hashes of an older chunk, which a tree that keeps only recent
    /// ones needs, cannot be read from its source.
    #[error("the leaves from {start} cannot be read back: {reason}")]
    LeavesUnreadable {
        /// The chunk's first leaf.
        start: u64,
        /// Why, for the operator (no paths).
        reason: String,
    },

    /// The leaf hashes of an older chunk, read from the tree's source, are not
    /// those appended: their root differs from the one the tree kept.
    #[error("the leaves from {start} are not those appended (their root differs)")]
    LeavesChanged {
        /// The chunk's first leaf.
        start: u64,
    },
}

/// A checkpoint, signed note, key or key file that cannot be parsed, written or
/// verified.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    /// A checkpoint body or a signed note that does not follow the format.
    #[error("malformed note: {0}")]
    Malformed(&'static str),

    /// A key name that is empty, holds white space or a `+`, or is not UTF-8.
    #[error("invalid key name: a key name must be non-empty, without white space or '+'")]
    InvalidKeyName,

    /// Key text (a verifier key or a private key) that cannot be parsed.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),

    /// The note has no signature by this verifier's key (its signatures are all
    /// by other keys).
    #[error("note has no signature by key {0:?}")]
    UnknownSigner(String),

    /// A signature line names this verifier's key but carries another key hash.
    #[error("note is signed by a key named {0:?} but with another key hash")]
    WrongKeyHash(String),

    /// A signature by this verifier's key that does not verify: the note was
    /// changed after signing, or the signature was.
    #[error("signature by key {0:?} does not verify (the note or the signature was changed)")]
    BadSignature(String),

    /// A key file could not be read or created.
    #[error("key file {}: {source}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
}
