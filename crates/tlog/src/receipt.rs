//! Receipts, and the proofs a log serves, as JSON.
//!
//! # Receipt
//!
//! What a sender gets for each stored item, at once: the item's `stored` leaf
//! (see [`entry`](crate::entry)), its index in the log, a signed checkpoint of a
//! tree that holds it (the log's key signs the checkpoint, C2SP
//! `tlog-checkpoint` in a signed note, see the [crate docs](crate)), and the
//! leaf's inclusion proof in that tree. The signature covers the root, the root
//! commits to every leaf, and the leaf names the item's id, SHA-256, size and
//! received time: so a receipt proves, offline, that the log held exactly this
//! leaf at this index. (As Sigstore's Rekor v2 does, in place of a signature
//! per entry: the server signs once per group commit, whatever the number of
//! items in it.)
//!
//! As JSON (every member required, no others):
//!
//! ```json
//! {"log": "<origin>", "index": 5, "id": "<item id>", "sha256": "<hex>",
//!  "size": 42, "received_at": "<RFC 3339>", "leaf": "<the leaf text>",
//!  "checkpoint": "<signed note of a checkpoint of more than index leaves>",
//!  "proof": ["<base64 hash>", ...]}
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
use crate::{Checkpoint, Hash, NoteError, ProofError, Verifier};

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
    /// The signed checkpoint of a tree of more than `index` leaves.
    pub checkpoint: String,
    /// The leaf's inclusion proof in that tree: hashes, base64, leaf side first.
    pub proof: Vec<String>,
}

impl Receipt {
    /// The receipt of the `stored` leaf `entry` at `index`, with `checkpoint`
    /// (a signed note of a checkpoint of more than `index` leaves) and the
    /// leaf's inclusion `proof` in its tree.
    ///
    /// # Errors
    /// [`ReceiptError::Mismatch`] if `entry` is not a `stored` leaf.
    pub fn new(
        origin: &str,
        index: u64,
        entry: &Entry,
        checkpoint: String,
        proof: &[Hash],
    ) -> Result<Self, ReceiptError> {
        if entry.event() != Event::Stored {
            return Err(ReceiptError::Mismatch(format!(
                "a receipt is for a stored leaf, not a {} leaf",
                entry.event()
            )));
        }
        let field = |key| entry.get(key).unwrap_or_default().to_owned();
        Ok(Self {
            log: origin.to_owned(),
            index,
            id: field("id"),
            sha256: field("sha256"),
            size: field("size").parse().unwrap_or_default(),
            received_at: field("time"),
            leaf: entry.text().to_owned(),
            checkpoint,
            proof: encode(proof),
        })
    }

    /// Checks everything a receipt claims: the checkpoint's signature by
    /// `verifier` and that it is of this log, that the leaf is a `stored` leaf
    /// whose fields the readable members repeat exactly, and that the proof
    /// leads from the leaf at `index` to the checkpoint's root. Returns the
    /// leaf and the checkpoint.
    ///
    /// # Errors
    /// [`ReceiptError`] saying which check failed.
    pub fn verify(&self, verifier: &Verifier) -> Result<(Entry, Checkpoint), ReceiptError> {
        let checkpoint = verifier.verify_note(&self.checkpoint)?;
        if self.log != verifier.name() || checkpoint.origin() != self.log {
            return Err(ReceiptError::Mismatch(format!(
                "the receipt is of log {:?}, its checkpoint of {:?}, the key of {:?}",
                self.log,
                checkpoint.origin(),
                verifier.name()
            )));
        }
        let entry = Entry::parse(self.leaf.as_bytes())?;
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
        crate::verify_inclusion(
            &entry.leaf_hash(),
            self.index,
            checkpoint.size(),
            &decode(&self.proof)?,
            checkpoint.root(),
        )?;
        Ok((entry, checkpoint))
    }

    /// The leaf hash the receipt is for.
    ///
    /// # Errors
    /// [`ReceiptError::Entry`] if the leaf text is not a leaf.
    pub fn leaf_hash(&self) -> Result<Hash, ReceiptError> {
        Ok(Entry::parse(self.leaf.as_bytes())?.leaf_hash())
    }
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
    use crate::{Signer, Tree};

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

    /// A log of seven leaves, and its signed checkpoint of `size`.
    fn log() -> Tree {
        let mut tree = Tree::new();
        for n in 0..7 {
            tree.append(stored(n).as_bytes());
        }
        tree
    }

    fn note(signer: &Signer, tree: &Tree, size: u64) -> String {
        let checkpoint = Checkpoint::new(signer.name(), size, tree.root_at(size).unwrap());
        signer.sign_checkpoint(&checkpoint.unwrap())
    }

    fn receipt(signer: &Signer, tree: &Tree, index: u64, size: u64) -> Receipt {
        let proof = tree.inclusion_proof(index, size).unwrap();
        Receipt::new(
            signer.name(),
            index,
            &stored(index),
            note(signer, tree, size),
            &proof,
        )
        .unwrap()
    }

    #[test]
    fn a_receipt_verifies_and_any_changed_byte_fails() {
        let (signer, tree) = (signer(), log());
        let receipt = receipt(&signer, &tree, 3, 6);
        assert_eq!(receipt.size, 3);
        assert_eq!(receipt.received_at, "2026-12-02T10:00:00Z");
        let verifier = signer.verifier();
        let (leaf, checkpoint) = receipt.verify(&verifier).unwrap();
        assert_eq!((leaf, checkpoint.size()), (stored(3), 6));
        let json = serde_json::to_string(&receipt).unwrap();
        for at in 0..json.len() {
            let mut bytes = json.clone().into_bytes();
            bytes[at] ^= 0x01;
            let verified = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| serde_json::from_str::<Receipt>(text).ok())
                .map(|changed| changed.verify(&verifier));
            assert!(
                !matches!(verified, Some(Ok(_))),
                "byte {at} changed and the receipt still verifies"
            );
        }
    }

    #[test]
    fn a_receipt_is_only_for_a_stored_leaf_its_index_and_its_key() {
        let (signer, tree) = (signer(), log());
        let aborted = Entry::aborted("01JQ3V7ZK9T6N2XQ8W4R5B1C00", "2026-12-02T10:00:00Z");
        assert!(Receipt::new(signer.name(), 0, &aborted, String::new(), &[]).is_err());
        let good = receipt(&signer, &tree, 2, 7);
        let other = Signer::new("ferry.test/log", SigningKey::from_bytes(&[8; 32])).unwrap();
        assert!(good.verify(&other.verifier()).is_err());
        let moved = Receipt {
            index: 3,
            ..good.clone()
        };
        assert!(moved.verify(&signer.verifier()).is_err());
        // Another leaf's proof with this leaf.
        let wrong = Receipt {
            proof: encode(&tree.inclusion_proof(4, 7).unwrap()),
            ..good
        };
        assert!(wrong.verify(&signer.verifier()).is_err());
    }

    #[test]
    fn proofs_verify_against_their_checkpoints() {
        let (signer, tree) = (signer(), log());
        let verifier = signer.verifier();
        let inclusion = InclusionProof::new(
            2,
            5,
            &tree.inclusion_proof(2, 5).unwrap(),
            note(&signer, &tree, 5),
        );
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

        let consistency = ConsistencyProof::new(
            3,
            7,
            &tree.consistency_proof(3, 7).unwrap(),
            note(&signer, &tree, 7),
        );
        let old = verifier.verify_note(&note(&signer, &tree, 3)).unwrap();
        assert_eq!(consistency.verify(&verifier, &old).unwrap().size(), 7);
        let forged = Checkpoint::new("ferry.test/log", 3, tree.root_at(4).unwrap()).unwrap();
        assert!(consistency.verify(&verifier, &forged).is_err());
    }
}
