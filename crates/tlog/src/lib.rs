//! RFC 9162 Merkle trees and proofs, and checkpoints in the C2SP signed-note format.
#![forbid(unsafe_code)]

mod checkpoint;
mod error;
mod hash;
pub mod note;
mod proof;
mod signer;
mod tree;

pub use checkpoint::Checkpoint;
pub use error::{NoteError, ProofError};
pub use hash::{Hash, empty_root, leaf_hash, node_hash, root};
pub use note::Verifier;
pub use proof::{verify_consistency, verify_inclusion};
pub use signer::Signer;
pub use tree::{MEMO_MIN_LEAVES, Tree};
