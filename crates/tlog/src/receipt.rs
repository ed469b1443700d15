//! Receipts (signed entry timestamps) and the proofs a log serves, as JSON.
//!
//! # Receipt
//!
//! What a sender gets for each stored item, at once: the item's `stored` leaf
//! (see [`entry`](crate::entry)), its index in the log, and a signed note by
//! the log's key whose body is
//!
//! ```text
//! ferry-receipt/v1
//! <origin: the log's name>
//! <leaf index, decimal>
//! <leaf hash (RFC 9162: SHA-256 of 0x00 || leaf), standard base64, padded>
//! ```
//!
//! As JSON (every member required, no others):
//!
//! ```json
//! {"log": "<origin>", "index": 5, "id": "<item id>", "sha256": "<hex>",
//!  "size": 42, "received_at": "<RFC 3339>", "leaf": "<the leaf text>",
//!  "note": "<the signed note>"}
//! ```
//!
//! `id`, `sha256`, `size` and `received_at` repeat the leaf's `id`, `sha256`,
//! `size` and `time` for people to read; a verifier checks that they are
//! equal, character for character, to the leaf's. [`Receipt::verify`] does every
//! check.
//!
//! # Proofs
//!
//! [`InclusionProof`]: a leaf's path to the root of the tree of `size` leaves,
//! with the signed checkpoint of exactly that size. [`ConsistencyProof`]: that
//! the tree of `from` leaves is a prefix of the tree of `to` leaves, with the
//! signed checkpoint of size `to`. Hashes travel as padded standard base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::entry::{Entry, EntryError, Event};
use crate::{Checkpoint, Hash, NoteError, ProofError, Signer, Verifier};

/// The first line of a receipt's signed body.
pub const RECEIPT_HEADER: &str = "ferry-receipt/v1";

/// Why a receipt or proof does not verify.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// The signed note (of the receipt or of a checkpoint) does not verify.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The leaf text is not a leaf.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// The proof does not lead to the checkpoint's root.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The receipt's parts do not agree with each other or with what was asked.
    #[error("{0}")]
    Mismatch(String),
}

/// A receipt for one stored item. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The log's origin.
    pub log: String,
    /// The leaf's index in the log.
    pub index: u64,
    /// The item's id.
    pub id: String,
    /// The SHA-256 of the item's content, lowercase hex.
    pub sha256: String,
    /// The content's size in bytes.
    pub size: u64,
    /// When the item began to arrive, RFC 3339 (the leaf's `time`).
    pub received_at: String,
    /// The `stored` leaf's text.
    pub leaf: String,
    /// The signed note over the receipt body.
    pub note: String,
}

impl Receipt {
    /// Signs a receipt for the `stored` leaf `entry` at `index`.
    ///
    /// # Errors
    /// [`ReceiptError::Mismatch`] if `entry` is not a `stored` leaf.
    pub fn issue(signer: &Signer, index: u64, entry: &Entry) -> Result<Self, ReceiptError> {
        if entry.event() != Event::Stored {
            return Err(ReceiptError::Mismatch(format!(
                "a receipt is for a stored leaf, not a {} leaf",
                entry.event()
            )));
        }
        let field = |key| entry.get(key).unwrap_or_default().to_owned();
        Ok(Self {
            log: signer.name().to_owned(),
            index,
            id: field("id"),
            sha256: field("sha256"),
            size: field("size").parse().unwrap_or_default(),
            received_at: field("time"),
            leaf: entry.text().to_owned(),
            note: signer.sign_body(&body(signer.name(), index, &entry.leaf_hash())),
        })
    }

    /// Checks everything a receipt claims: the note's signature by
    /// `verifier`, that its body names this log, index and leaf, that the leaf
    /// is a `stored` leaf, and that the readable members equal the leaf's
    /// fields. Returns the leaf.
    ///
    /// # Errors
    /// [`ReceiptError`] saying which check failed.
    pub fn verify(&self, verifier: &Verifier) -> Result<Entry, ReceiptError> {
        let signed = verifier.open(&self.note)?;
        let entry = Entry::parse(self.leaf.as_bytes())?;
        if signed != body(&self.log, self.index, &entry.leaf_hash()) {
            return Err(ReceiptError::Mismatch(
                "the signed body does not name this log, index and leaf".into(),
            ));
        }
        if self.log != verifier.name() {
            return Err(ReceiptError::Mismatch(format!(
                "the receipt is of log {:?}, the key of {:?}",
                self.log,
                verifier.name()
            )));
        }
        if entry.event() != Event::Stored {
            return Err(ReceiptError::Mismatch(
                "the leaf is not a stored leaf".into(),
            ));
        }
        let size = self.size.to_string();
        for (member, key, value) in [
            ("id", "id", self.id.as_str()),
            ("sha256", "sha256", &self.sha256),
            ("size", "size", &size),
            ("received_at", "time", &self.received_at),
        ] {
            if entry.get(key) != Some(value) {
                return Err(ReceiptError::Mismatch(format!(
                    "the receipt's {member} is not the leaf's {key}"
                )));
            }
        }
        Ok(entry)
    }

    /// The leaf hash the receipt is for.
    ///
    /// # Errors
    /// [`ReceiptError::Entry`] if the leaf text is not a leaf.
    pub fn leaf_hash(&self) -> Result<Hash, ReceiptError> {
        Ok(Entry::parse(self.leaf.as_bytes())?.leaf_hash())
    }
}

/// The signed body of a receipt.
fn body(log: &str, index: u64, leaf_hash: &Hash) -> String {
    format!(
        "{RECEIPT_HEADER}\n{log}\n{index}\n{}\n",
        STANDARD.encode(leaf_hash)
    )
}

/// Leaf `index`'s inclusion in the tree of `size` leaves. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The leaf index.
    pub index: u64,
    /// The tree size: the checkpoint's.
    pub size: u64,
    /// The proof's hashes, leaf side first, base64.
    pub proof: Vec<String>,
    /// The signed checkpoint of the tree of `size` leaves.
    pub checkpoint: String,
}

impl InclusionProof {
    /// The proof of `index` in the tree of `size` leaves, with that tree's
    /// signed checkpoint.
    #[must_use]
    pub fn new(index: u64, size: u64, proof: &[Hash], checkpoint: String) -> Self {
        Self {
            index,
            size,
            proof: encode(proof),
            checkpoint,
        }
    }

    /// Checks that `leaf_hash` is leaf `index` of the checkpoint's tree and that
    /// the checkpoint is signed by `verifier`; returns the checkpoint.
    ///
    /// # Errors
    /// [`ReceiptError`] saying which check failed.
    pub fn verify(
        &self,
        verifier: &Verifier,
        index: u64,
        leaf_hash: &Hash,
    ) -> Result<Checkpoint, ReceiptError> {
        let checkpoint = verifier.verify_note(&self.checkpoint)?;
        if self.index != index || self.size != checkpoint.size() {
            return Err(ReceiptError::Mismatch(
                "the proof is for another leaf or tree size than its checkpoint's".into(),
            ));
        }
        crate::verify_inclusion(
            leaf_hash,
            index,
            checkpoint.size(),
            &decode(&self.proof)?,
            checkpoint.root(),
        )?;
        Ok(checkpoint)
    }
}

/// That the tree of `from` leaves is a prefix of the tree of `to`. See the
/// [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// The older tree size.
    pub from: u64,
    /// The newer tree size: the checkpoint's.
    pub to: u64,
    /// The proof's hashes, base64.
    pub proof: Vec<String>,
    /// The signed checkpoint of the tree of `to` leaves.
    pub checkpoint: String,
}

impl ConsistencyProof {
    /// The proof from `from` to `to` leaves, with the signed checkpoint of `to`.
    #[must_use]
    pub fn new(from: u64, to: u64, proof: &[Hash], checkpoint: String) -> Self {
        Self {
            from,
            to,
            proof: encode(proof),
            checkpoint,
        }
    }

    /// Checks that `old` (a checkpoint the caller trusts, saved earlier) is a
    /// prefix of this proof's checkpoint, signed by `verifier`; returns the
    /// newer checkpoint.
    ///
    /// # Errors
    /// [`ReceiptError`] saying which check failed.
    pub fn verify(
        &self,
        verifier: &Verifier,
        old: &Checkpoint,
    ) -> Result<Checkpoint, ReceiptError> {
        let new = verifier.verify_note(&self.checkpoint)?;
        if new.origin() != old.origin() {
            return Err(ReceiptError::Mismatch(format!(
                "the checkpoints are of two logs, {:?} and {:?}",
                old.origin(),
                new.origin()
            )));
        }
        if self.from != old.size() || self.to != new.size() {
            return Err(ReceiptError::Mismatch(
                "the proof is between other sizes than the two checkpoints'".into(),
            ));
        }
        crate::verify_consistency(
            old.size(),
            new.size(),
            old.root(),
            new.root(),
            &decode(&self.proof)?,
        )?;
        Ok(new)
    }
}

fn encode(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|hash| STANDARD.encode(hash)).collect()
}

fn decode(hashes: &[String]) -> Result<Vec<Hash>, ReceiptError> {
    hashes
        .iter()
        .map(|text| {
            STANDARD
                .decode(text)
                .ok()
                .and_then(|bytes| Hash::try_from(bytes).ok())
                .ok_or_else(|| {
                    ReceiptError::Mismatch("a proof hash is not 32 bytes of base64".into())
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::Tree;

    fn signer() -> Signer {
        Signer::new("ferry.test/log", SigningKey::from_bytes(&[7; 32])).unwrap()
    }

    fn stored(n: u64) -> Entry {
        Entry::stored(
            &format!("01JQ3V7ZK9T6N2XQ8W4R5B1C{n:02}"),
            &"cd".repeat(32),
            n,
            "text",
            "utf8",
            "2026-12-02T10:00:00Z",
        )
    }

    #[test]
    fn a_receipt_verifies_and_any_changed_byte_fails() {
        let signer = signer();
        let receipt = Receipt::issue(&signer, 3, &stored(5)).unwrap();
        assert_eq!(receipt.size, 5);
        assert_eq!(receipt.received_at, "2026-12-02T10:00:00Z");
        let verifier = signer.verifier();
        assert_eq!(receipt.verify(&verifier).unwrap(), stored(5));
        let json = serde_json::to_string(&receipt).unwrap();
        let mut failures = 0;
        for at in 0..json.len() {
            let mut bytes = json.clone().into_bytes();
            bytes[at] ^= 0x01;
            let verified = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| serde_json::from_str::<Receipt>(text).ok())
                .map(|changed| changed.verify(&verifier));
            match verified {
                Some(Ok(_)) => panic!("byte {at} changed and the receipt still verifies"),
                _ => failures += 1,
            }
        }
        assert_eq!(failures, json.len());
    }

    #[test]
    fn a_receipt_is_only_for_a_stored_leaf_and_only_by_its_key() {
        let signer = signer();
        let aborted = Entry::aborted("01JQ3V7ZK9T6N2XQ8W4R5B1C00", "2026-12-02T10:00:00Z");
        assert!(Receipt::issue(&signer, 0, &aborted).is_err());
        let receipt = Receipt::issue(&signer, 0, &stored(1)).unwrap();
        let other = Signer::new("ferry.test/log", SigningKey::from_bytes(&[8; 32])).unwrap();
        assert!(receipt.verify(&other.verifier()).is_err());
    }

    #[test]
    fn proofs_verify_against_their_checkpoints() {
        let signer = signer();
        let verifier = signer.verifier();
        let mut tree = Tree::new();
        for n in 0..7 {
            tree.append(stored(n).as_bytes());
        }
        let note = |size| {
            let checkpoint = Checkpoint::new("ferry.test/log", size, tree.root_at(size).unwrap());
            signer.sign_checkpoint(&checkpoint.unwrap())
        };
        let inclusion = InclusionProof::new(2, 5, &tree.inclusion_proof(2, 5).unwrap(), note(5));
        let checkpoint = inclusion
            .verify(&verifier, 2, &stored(2).leaf_hash())
            .unwrap();
        assert_eq!(checkpoint.size(), 5);
        assert!(
            inclusion
                .verify(&verifier, 2, &stored(3).leaf_hash())
                .is_err()
        );
        assert!(
            inclusion
                .verify(&verifier, 3, &stored(2).leaf_hash())
                .is_err()
        );
        let wrong_size = InclusionProof {
            size: 6,
            ..inclusion.clone()
        };
        assert!(
            wrong_size
                .verify(&verifier, 2, &stored(2).leaf_hash())
                .is_err()
        );

        let consistency =
            ConsistencyProof::new(3, 7, &tree.consistency_proof(3, 7).unwrap(), note(7));
        let old = verifier.verify_note(&note(3)).unwrap();
        assert_eq!(consistency.verify(&verifier, &old).unwrap().size(), 7);
        let forged = Checkpoint::new("ferry.test/log", 3, tree.root_at(4).unwrap()).unwrap();
        assert!(consistency.verify(&verifier, &forged).is_err());
    }
}
