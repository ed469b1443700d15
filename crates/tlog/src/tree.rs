//! An append-only Merkle tree in memory that answers for every size it has had:
//! the root of the first `size` leaves, and inclusion and consistency proofs
//! between any of those sizes (RFC 9162 §2.1.3.1 and §2.1.4.1).
//!
//! Memory: every leaf hash is kept (32 bytes a leaf), plus the hashes of the
//! complete, aligned subtrees of [`MEMO_MIN_LEAVES`] leaves and more (one for
//! every 16 leaves, one for every 32, ...: about 4 bytes a leaf), so about
//! 36 bytes a leaf in all. With them a root or a proof for any size costs
//! `O(log n)` memo look-ups and node hashes, plus at most 15 node hashes for
//! each subtree of fewer than 16 leaves it needs (a few); appending costs, on
//! average, about one node hash per leaf.

use std::fmt;

use crate::error::ProofError;
use crate::hash::{Hash, empty_root, leaf_hash, node_hash, split_point};

/// Subtrees of `2^MEMO_MIN_LEVEL` leaves and more are memoised.
const MEMO_MIN_LEVEL: u32 = 4;

/// The smallest complete subtree whose hash [`Tree`] keeps: 16 leaves.
pub const MEMO_MIN_LEAVES: u64 = 1 << MEMO_MIN_LEVEL;

/// An append-only Merkle tree of leaf hashes that answers for every size it has
/// had: roots, inclusion proofs and consistency proofs.
///
/// Memory: every leaf hash (32 bytes a leaf) and the roots of the complete,
/// aligned subtrees of [`MEMO_MIN_LEAVES`] leaves and more (about 4 bytes a
/// leaf): about 36 bytes a leaf in all.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tree {
    /// Every leaf hash, in order.
    leaves: Vec<Hash>,
    /// `memo[j][i]` is the hash of the complete subtree of
    /// `s = 2^(MEMO_MIN_LEVEL + j)` leaves `i*s .. (i+1)*s`.
    memo: Vec<Vec<Hash>>,
}

/// The size, not the (possibly millions of) hashes.
impl fmt::Debug for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tree")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Tree {
    /// An empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree of these leaf hashes, in order (e.g. to rebuild a log from disk).
    pub fn from_leaf_hashes(leaves: impl IntoIterator<Item = Hash>) -> Self {
        let mut tree = Self::new();
        for leaf in leaves {
            tree.push(leaf);
        }
        tree
    }

    /// Appends a leaf hash and returns its index.
    pub fn push(&mut self, leaf: Hash) -> u64 {
        self.leaves.push(leaf);
        let len = self.leaves.len();
        let base = 1usize << MEMO_MIN_LEVEL;
        if len.is_multiple_of(base) {
            let complete = crate::hash::root(&self.leaves[len - base..]);
            self.push_memo(complete);
        }
        self.len() - 1
    }

    /// Hashes `data` as a leaf ([`leaf_hash`]), appends it and returns its index.
    pub fn append(&mut self, data: &[u8]) -> u64 {
        self.push(leaf_hash(data))
    }

    /// Records a newly completed subtree of `MEMO_MIN_LEAVES` leaves, and every
    /// larger one it completes in turn.
    fn push_memo(&mut self, mut hash: Hash) {
        let mut level = 0;
        loop {
            if self.memo.len() == level {
                self.memo.push(Vec::new());
            }
            let row = &mut self.memo[level];
            row.push(hash);
            let n = row.len();
            if !n.is_multiple_of(2) {
                return;
            }
            hash = node_hash(&row[n - 2], &row[n - 1]);
            level += 1;
        }
    }

    /// The number of leaves.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.leaves.len() as u64
    }

    /// Whether the tree has no leaves.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// The hash of leaf `index`, if there is one.
    #[must_use]
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.leaves.get(i))
            .copied()
    }

    /// All leaf hashes, in order.
    #[must_use]
    pub fn leaves(&self) -> &[Hash] {
        &self.leaves
    }

    /// The root of the whole tree.
    #[must_use]
    pub fn root(&self) -> Hash {
        self.mth(0, self.len())
    }

    /// The root of the tree of the first `size` leaves.
    ///
    /// # Errors
    /// [`ProofError::SizeOutOfRange`] if `size` is more than [`len`](Self::len).
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        self.check_size(size)?;
        Ok(self.mth(0, size))
    }

    /// The inclusion proof (audit path) of leaf `index` in the tree of the first
    /// `size` leaves, leaf side first (RFC 9162 §2.1.3.1). Check it with
    /// [`verify_inclusion`](crate::verify_inclusion).
    ///
    /// # Errors
    /// [`ProofError::SizeOutOfRange`] if `size > len`,
    /// [`ProofError::IndexOutOfRange`] if `index >= size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof);
        Ok(proof)
    }

    /// The consistency proof between the trees of the first `old_size` and the
    /// first `new_size` leaves (RFC 9162 §2.1.4.1). It is empty when
    /// `old_size` is 0 or equal to `new_size`. Check it with
    /// [`verify_consistency`](crate::verify_consistency).
    ///
    /// # Errors
    /// [`ProofError::SizeOutOfRange`] if `new_size > len`,
    /// [`ProofError::SizesOutOfOrder`] if `old_size > new_size`.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(new_size)?;
        if old_size > new_size {
            return Err(ProofError::SizesOutOfOrder { old_size, new_size });
        }
        let mut proof = Vec::new();
        if old_size > 0 && old_size < new_size {
            self.subproof(old_size, 0, new_size, true, &mut proof);
        }
        Ok(proof)
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        if size > self.len() {
            return Err(ProofError::SizeOutOfRange {
                size,
                len: self.len(),
            });
        }
        Ok(())
    }

    /// `MTH(D[start:end])`, for `start <= end <= len`.
    fn mth(&self, start: u64, end: u64) -> Hash {
        let n = end - start;
        match n {
            0 => return empty_root(),
            1 => return self.leaves[start as usize],
            _ => {}
        }
        if n.is_power_of_two() && start.is_multiple_of(n) && n >= MEMO_MIN_LEAVES {
            let level = (n.trailing_zeros() - MEMO_MIN_LEVEL) as usize;
            let memoised = self
                .memo
                .get(level)
                .and_then(|row| row.get((start / n) as usize));
            if let Some(hash) = memoised {
                return *hash;
            }
        }
        let k = split_point(n);
        node_hash(&self.mth(start, start + k), &self.mth(start + k, end))
    }

    /// `PATH(m, D[start:end])` (RFC 9162 §2.1.3.1), appended to `proof`.
    fn path(&self, m: u64, start: u64, end: u64, proof: &mut Vec<Hash>) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = split_point(n);
        if m < k {
            self.path(m, start, start + k, proof);
            proof.push(self.mth(start + k, end));
        } else {
            self.path(m - k, start + k, end, proof);
            proof.push(self.mth(start, start + k));
        }
    }

    /// `SUBPROOF(m, D[start:end], complete)` (RFC 9162 §2.1.4.1), for
    /// `0 < m <= end - start`, appended to `proof`.
    fn subproof(&self, m: u64, start: u64, end: u64, complete: bool, proof: &mut Vec<Hash>) {
        let n = end - start;
        if m == n {
            if !complete {
                proof.push(self.mth(start, end));
            }
            return;
        }
        let k = split_point(n);
        if m <= k {
            self.subproof(m, start, start + k, complete, proof);
            proof.push(self.mth(start + k, end));
        } else {
            self.subproof(m - k, start + k, end, false, proof);
            proof.push(self.mth(start, start + k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::tests::{leaves, naive_root};

    #[test]
    fn roots_of_every_size_match_the_recursive_definition() {
        let all = leaves(300);
        let tree = Tree::from_leaf_hashes(all.iter().copied());
        assert_eq!(tree.len(), 300);
        for size in 0..=300u64 {
            let expected = naive_root(&all[..size as usize]);
            assert_eq!(tree.root_at(size).unwrap(), expected, "size {size}");
            let prefix = Tree::from_leaf_hashes(all[..size as usize].iter().copied());
            assert_eq!(prefix.root(), expected, "size {size}");
        }
        assert_eq!(Tree::new().root(), empty_root());
    }

    #[test]
    fn the_memo_holds_every_complete_subtree_of_16_leaves_or_more() {
        let tree = Tree::from_leaf_hashes(leaves(100));
        // 100 = 64 + 32 + 4: six of 16, three of 32, one of 64.
        let sizes: Vec<usize> = tree.memo.iter().map(Vec::len).collect();
        assert_eq!(sizes, [6, 3, 1]);
        assert_eq!(tree.memo[2][0], naive_root(&tree.leaves()[..64]));
        assert_eq!(tree.memo[0][5], naive_root(&tree.leaves()[80..96]));
    }

    #[test]
    fn push_and_append_return_indexes_and_keep_the_leaves() {
        let mut tree = Tree::new();
        assert!(tree.is_empty());
        assert_eq!(tree.append(b"a"), 0);
        assert_eq!(tree.push([7; 32]), 1);
        assert_eq!(tree.len(), 2);
        assert!(!tree.is_empty());
        assert_eq!(tree.leaf(0), Some(leaf_hash(b"a")));
        assert_eq!(tree.leaf(1), Some([7; 32]));
        assert_eq!(tree.leaf(2), None);
        assert_eq!(tree.leaf(u64::MAX), None);
        assert_eq!(tree.leaves(), &[leaf_hash(b"a"), [7; 32]]);
        assert_eq!(format!("{tree:?}"), "Tree { len: 2, .. }");
    }

    #[test]
    fn out_of_range_requests_are_errors_not_panics() {
        let tree = Tree::from_leaf_hashes(leaves(5));
        assert_eq!(
            tree.root_at(6),
            Err(ProofError::SizeOutOfRange { size: 6, len: 5 })
        );
        assert_eq!(
            tree.inclusion_proof(0, 6),
            Err(ProofError::SizeOutOfRange { size: 6, len: 5 })
        );
        assert_eq!(
            tree.inclusion_proof(5, 5),
            Err(ProofError::IndexOutOfRange { index: 5, size: 5 })
        );
        assert_eq!(
            tree.inclusion_proof(0, 0),
            Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            tree.consistency_proof(3, 6),
            Err(ProofError::SizeOutOfRange { size: 6, len: 5 })
        );
        assert_eq!(
            tree.consistency_proof(4, 3),
            Err(ProofError::SizesOutOfOrder {
                old_size: 4,
                new_size: 3
            })
        );
        assert_eq!(
            tree.consistency_proof(u64::MAX, u64::MAX).map(|_| ()),
            Err(ProofError::SizeOutOfRange {
                size: u64::MAX,
                len: 5
            })
        );
    }

    #[test]
    fn proofs_have_the_lengths_of_rfc_9162s_examples() {
        // RFC 9162 §2.1.5: the tree of 7 leaves d0..d6.
        let tree = Tree::from_leaf_hashes(leaves(7));
        let l = tree.leaves();
        // The audit path of d0 is [b, h, l]: its neighbour, h(c, d), and the
        // right subtree of three leaves.
        assert_eq!(
            tree.inclusion_proof(0, 7).unwrap(),
            [l[1], node_hash(&l[2], &l[3]), naive_root(&l[4..7])]
        );
        assert_eq!(
            tree.inclusion_proof(3, 7).unwrap(),
            [l[2], node_hash(&l[0], &l[1]), naive_root(&l[4..7])]
        );
        assert_eq!(
            tree.inclusion_proof(4, 7).unwrap(),
            [l[5], l[6], naive_root(&l[0..4])]
        );
        assert_eq!(
            tree.inclusion_proof(6, 7).unwrap(),
            [node_hash(&l[4], &l[5]), naive_root(&l[0..4])]
        );
        // Consistency: 3 -> 7 is [c, d, g, l] with g = h(a,b), l = h(e,f,g').
        assert_eq!(
            tree.consistency_proof(3, 7).unwrap(),
            [l[2], l[3], node_hash(&l[0], &l[1]), naive_root(&l[4..7])]
        );
        // 4 -> 7 is [l]; 6 -> 7 is [i, j, k] (k = h(a,b,c,d)).
        assert_eq!(
            tree.consistency_proof(4, 7).unwrap(),
            [naive_root(&l[4..7])]
        );
        assert_eq!(
            tree.consistency_proof(6, 7).unwrap(),
            [node_hash(&l[4], &l[5]), l[6], naive_root(&l[0..4])]
        );
        assert!(tree.consistency_proof(0, 7).unwrap().is_empty());
        assert!(tree.consistency_proof(7, 7).unwrap().is_empty());
    }
}
