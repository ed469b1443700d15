//! RFC 9162 Merkle tree hashing, inclusion and consistency proofs.
#![forbid(unsafe_code)]

mod error;
mod hash;
mod proof;
mod tree;

pub use error::{NoteError, ProofError};
pub use hash::{Hash, empty_root, leaf_hash, node_hash, root};
pub use proof::{verify_consistency, verify_inclusion};
pub use tree::{MEMO_MIN_LEAVES, Tree};
