//! A tamper-evident log's building blocks: RFC 9162 Merkle tree hashing,
//! inclusion and consistency proofs, and signed checkpoints in the C2SP
//! `tlog-checkpoint` / `signed-note` formats. No I/O but a key file. Ferry's
//! own leaves are laid out in [`entry`], and its receipts and the proofs its
//! admin API serves in [`receipt`]; the rest knows nothing of what a leaf means.
//!
//! # Byte layouts
//!
//! **Hashes** (RFC 9162 §2.1.1) are SHA-256, 32 bytes:
//!
//! | what | bytes hashed |
//! | --- | --- |
//! | leaf hash of `data` | `0x00 \|\| data` |
//! | node hash of `left`, `right` | `0x01 \|\| left (32) \|\| right (32)` |
//! | root of 0 leaves | the empty string |
//! | root of 1 leaf | (none: the leaf hash itself) |
//! | root of `n > 1` leaves `D[0:n]` | node hash of `root(D[0:k])`, `root(D[k:n])`, `k` the largest power of two `< n` |
//!
//! **An inclusion proof** of leaf `m` in the tree of `n` leaves (RFC 9162
//! §2.1.3) is a list of hashes, leaf side first: the sibling subtrees' roots on
//! the way from the leaf to the root. [`verify_inclusion`] follows §2.1.3.2.
//!
//! **A consistency proof** from size `m` to size `n` (RFC 9162 §2.1.4) is a list
//! of hashes that proves the tree of `m` leaves is a prefix of the tree of `n`;
//! empty when `m` is 0 or `n`. [`verify_consistency`] follows §2.1.4.2. Proof
//! hashes travel as 32 raw bytes (hex or base64 in text formats).
//!
//! **A checkpoint** (C2SP `tlog-checkpoint`) is UTF-8 text, each line ending in
//! `\n` (0x0A):
//!
//! ```text
//! <origin: the log's name, e.g. example.com/log>
//! <tree size, decimal, no leading zeros>
//! <root hash, standard base64 with padding (44 characters)>
//! ```
//!
//! Ferry writes no extension lines; [`Checkpoint::parse`] ignores well-formed
//! ones and refuses anything else.
//!
//! **A signed note** (C2SP `signed-note`, as `golang.org/x/mod/sumdb/note`) is
//! the checkpoint, an empty line, and one line per signature:
//!
//! ```text
//! <checkpoint, ending in \n>
//! \n
//! — <key name> <base64(key hash (4 bytes) || Ed25519 signature (64 bytes))>\n
//! ```
//!
//! The line starts with an em dash, U+2014 (bytes `E2 80 94`), and a space. The
//! Ed25519 signature (RFC 8032) is over the checkpoint's bytes, final newline
//! included. The key hash is the first 4 bytes of
//! `SHA-256(key name || 0x0A || 0x01 || public key (32 bytes))`; 0x01 stands for
//! Ed25519. A verifier looks for a line with its key's name and key hash,
//! ignores lines by other keys and refuses a note with none by its key.
//!
//! **Keys as text** (as the Go `note` package writes them):
//!
//! ```text
//! verifier key:  <name>+<key hash, 8 hex digits>+<base64(0x01 || public key)>
//! key file:      PRIVATE+KEY+<name>+<key hash, 8 hex digits>+<base64(0x01 || 32-byte seed)>\n
//! ```
//!
//! The key file is created with mode 0600 and never overwritten
//! ([`Signer::write_key_file`]).
//!
//! # Memory
//!
//! [`Tree`] keeps the roots of the complete subtrees of 16 leaves and more
//! (about 4 bytes a leaf), so the root and proofs of any earlier size cost
//! `O(log n)` hashing, and every leaf hash (32 bytes a leaf) or, made with
//! [`Tree::keeping`], only the recent ones: it then asks a [`LeafSource`] (the
//! log on disk) for the 16 leaf hashes of an older chunk when a proof needs
//! them, and checks them against the chunk's root it kept.
//!
//! # Worked example
//!
//! A log of three leaves, the data `a`, `b` and `c`, signed with the
//! Ed25519 key whose seed is 32 bytes of 0x42 (the values were computed
//! independently with Python's `hashlib` and `cryptography`; this example is a
//! test, so it cannot drift from the code):
//!
//! ```
//! use ed25519_dalek::SigningKey;
//! use ferry_tlog::{Checkpoint, Signer, Tree, node_hash, verify_inclusion};
//!
//! let mut tree = Tree::new();
//! for data in [b"a", b"b", b"c"] {
//!     tree.append(data);
//! }
//! let leaf = |i| hex::encode(tree.leaf(i).unwrap());
//! // SHA-256(0x00 || "a"), SHA-256(0x00 || "b"), SHA-256(0x00 || "c"):
//! assert_eq!(leaf(0), "022a6979e6dab7aa5ae4c3e5e45f7e977112a7e63593820dbec1ec738a24f93c");
//! assert_eq!(leaf(1), "57eb35615d47f34ec714cacdf5fd74608a5e8e102724e80b24b287c0c27b6a31");
//! assert_eq!(leaf(2), "597fcb31282d34654c200d3418fca5705c648ebf326ec73d8ddef11841f876d8");
//! // The root is node(node(a, b), c); node(a, b) is
//! let ab = node_hash(&tree.leaf(0).unwrap(), &tree.leaf(1).unwrap());
//! assert_eq!(hex::encode(ab), "b137985ff484fb600db93107c77b0365c80d78f5b429ded0fd97361d077999eb");
//! assert_eq!(
//!     hex::encode(tree.root()),
//!     "36642e73c2540ab121e3a6bf9545b0a24982cd830eb13d3cd19de3ce6c021ec1"
//! );
//!
//! // The inclusion proof of leaf 1 ("b") in the tree of 3: its sibling a, then c.
//! let proof = tree.inclusion_proof(1, 3)?;
//! let proof_hex: Vec<String> = proof.iter().map(hex::encode).collect();
//! assert_eq!(proof_hex, [
//!     "022a6979e6dab7aa5ae4c3e5e45f7e977112a7e63593820dbec1ec738a24f93c",
//!     "597fcb31282d34654c200d3418fca5705c648ebf326ec73d8ddef11841f876d8",
//! ]);
//! verify_inclusion(&tree.leaf(1).unwrap(), 1, 3, &proof, &tree.root())?;
//!
//! // The signed checkpoint.
//! let signer = Signer::new("example.com/log", SigningKey::from_bytes(&[0x42; 32]))?;
//! assert_eq!(
//!     signer.verifier().to_string(),
//!     "example.com/log+d5ca9a19+ASFS+NGbeR0kRTJC4V8uq2y3z/p7al7TAJeWDgaYgdsS"
//! );
//! assert_eq!(
//!     *signer.key_text(),
//!     "PRIVATE+KEY+example.com/log+d5ca9a19+AUJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC"
//! );
//! let checkpoint = Checkpoint::new("example.com/log", 3, tree.root())?;
//! let note = signer.sign_checkpoint(&checkpoint);
//! assert_eq!(note, "\
//! example.com/log
//! 3
//! NmQuc8JUCrEh46a/lUWwokmCzYMOsT080Z3jzmwCHsE=
//!
//! — example.com/log 1cqaGb1CRRTRiY9zhET3SF+WGabv4RM7fdhqo2+0zP4XQAMvPqUKSScza4TqCNX8F6WwQfo701oWjQL4S4tHic2n9Qw=
//! ");
//! assert_eq!(signer.verifier().verify_note(&note)?, checkpoint);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod checkpoint;
pub mod entry;
mod error;
mod hash;
pub mod note;
mod proof;
pub mod receipt;
mod signer;
mod tree;

pub use checkpoint::Checkpoint;
pub use entry::{Actor, Entry, EntryError, Event};
pub use error::{NoteError, ProofError};
pub use hash::{Hash, empty_root, leaf_hash, node_hash, root};
pub use note::Verifier;
pub use proof::{verify_consistency, verify_inclusion};
pub use receipt::{ConsistencyProof, InclusionProof, Receipt, ReceiptError};
pub use signer::Signer;
pub use tree::{LeafSource, MEMO_MIN_LEAVES, Tree};
