//! An append-only Merkle tree that answers for every size it has had: the root
//! of the first `size` leaves, and inclusion and consistency proofs between
//! any of those sizes (RFC 9162 §2.1.3.1 and §2.1.4.1).
//!
//! Memory: the hashes of the complete, aligned subtrees of [`MEMO_MIN_LEAVES`]
//! leaves and more (one for every 16 leaves, one for every 32, ...: about 4
//! bytes a leaf), and the leaf hashes it keeps: every one (32 bytes a leaf,
//! [`Tree::new`]), or only the most recent ([`Tree::keeping`]). A root or a
//! proof for any size costs `O(log n)` memo look-ups and node hashes, plus at
//! most 15 node hashes for each subtree of fewer than 16 leaves it needs (a
//! few); appending costs, on average, about one node hash per leaf.
//!
//! A tree that keeps only the recent leaves asks a [`LeafSource`] (its log on
//! disk) for the 16 leaf hashes of an older chunk when a proof or root needs
//! them, and checks them against the chunk's memoised root first: leaves that
//! changed since they were appended are an error, never a wrong proof.

use std::collections::VecDeque;
use std::fmt;

use crate::error::ProofError;
use crate::hash::{Hash, empty_root, leaf_hash, node_hash, root, split_point};

/// Subtrees of `2^MEMO_MIN_LEVEL` leaves and more are memoised.
const MEMO_MIN_LEVEL: u32 = 4;

/// The smallest complete subtree whose hash [`Tree`] keeps: 16 leaves, a
/// chunk. A [`LeafSource`] is asked for whole chunks.
pub const MEMO_MIN_LEAVES: u64 = 1 << MEMO_MIN_LEVEL;

/// Where a [`Tree`] that keeps only its recent leaf hashes finds the others.
pub trait LeafSource {
    /// The [`MEMO_MIN_LEAVES`] leaf hashes of the chunk that starts at leaf
    /// `start` (a multiple of [`MEMO_MIN_LEAVES`]), in order.
    ///
    /// # Errors
    /// [`ProofError::LeavesUnreadable`] when they cannot be read.
    fn chunk(&self, start: u64) -> Result<Vec<Hash>, ProofError>;
}

/// The source of a tree that keeps every leaf hash: never asked.
struct NoSource;

impl LeafSource for NoSource {
    fn chunk(&self, start: u64) -> Result<Vec<Hash>, ProofError> {
        Err(ProofError::LeavesUnreadable {
            start,
            reason: "the tree keeps only recent leaves; ask with a LeafSource".to_owned(),
        })
    }
}

/// An append-only Merkle tree of leaf hashes that answers for every size it has
/// had: roots, inclusion proofs and consistency proofs.
///
/// Memory: the roots of the complete, aligned subtrees of [`MEMO_MIN_LEAVES`]
/// leaves and more (about 4 bytes a leaf), and the leaf hashes it keeps (32
/// bytes each): all of them, or the most recent (see [`Tree::keeping`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tree {
    /// The number of leaves.
    len: u64,
    /// The leaf hashes kept, from leaf `first_kept` (a multiple of
    /// `MEMO_MIN_LEAVES`) to the last.
    kept: VecDeque<Hash>,
    first_kept: u64,
    /// At least how many recent leaf hashes to keep; `None`: every one.
    keep: Option<u64>,
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
    /// An empty tree that keeps every leaf hash.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty tree that keeps only the last `recent` leaf hashes or so (whole
    /// chunks of [`MEMO_MIN_LEAVES`], at least `recent`), asking a
    /// [`LeafSource`] for older ones (the `*_from` methods).
    #[must_use]
    pub fn keeping(recent: u64) -> Self {
        Self {
            keep: Some(recent),
            ..Self::default()
        }
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
        self.kept.push_back(leaf);
        self.len += 1;
        if self.len.is_multiple_of(MEMO_MIN_LEAVES) {
            let mut chunk = [[0; 32]; MEMO_MIN_LEAVES as usize];
            let last = self.kept.range(self.kept.len() - chunk.len()..);
            for (slot, leaf) in chunk.iter_mut().zip(last) {
                *slot = *leaf;
            }
            self.push_memo(root(&chunk));
            self.forget();
        }
        self.len - 1
    }

    /// Frees the room kept for growth (e.g. once a log read from disk is in).
    pub fn shrink_to_fit(&mut self) {
        self.kept.shrink_to_fit();
        for row in &mut self.memo {
            row.shrink_to_fit();
        }
    }

    /// The tree as bytes, for [`from_bytes`](Self::from_bytes): the number of
    /// leaves, the first kept, how many it keeps, the kept leaf hashes and the
    /// roots of the chunks of 16 (the larger subtrees' are recomputed).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let chunks = self.memo.first().map_or(&[][..], Vec::as_slice);
        let mut out = Vec::with_capacity(24 + 32 * (self.kept.len() + chunks.len()));
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.first_kept.to_le_bytes());
        out.extend_from_slice(&self.keep.unwrap_or(u64::MAX).to_le_bytes());
        for hash in self.kept.iter().chain(chunks) {
            out.extend_from_slice(hash);
        }
        out
    }

    /// A tree written by [`to_bytes`](Self::to_bytes); `None` if `bytes` are
    /// not one (a wrong length, or kept leaf hashes whose chunk roots are not
    /// those written).
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Option<Tree> {
        let word = |i: usize| -> Option<u64> {
            Some(u64::from_le_bytes(
                bytes.get(i * 8..i * 8 + 8)?.try_into().ok()?,
            ))
        };
        let (len, first_kept, keep) = (word(0)?, word(1)?, word(2)?);
        if first_kept > len || !first_kept.is_multiple_of(MEMO_MIN_LEAVES) {
            return None;
        }
        let kept = usize::try_from(len - first_kept).ok()?;
        let chunks = usize::try_from(len / MEMO_MIN_LEAVES).ok()?;
        let hashes = bytes.get(24..)?;
        if hashes.len() != 32 * kept.checked_add(chunks)? {
            return None;
        }
        let mut all = hashes
            .chunks_exact(32)
            .map(|hash| Hash::try_from(hash).expect("32 bytes"));
        let mut tree = Tree {
            len,
            kept: all.by_ref().take(kept).collect(),
            first_kept,
            keep: (keep != u64::MAX).then_some(keep),
            memo: Vec::new(),
        };
        for chunk in all {
            tree.push_memo(chunk);
        }
        let first_chunk = usize::try_from(first_kept / MEMO_MIN_LEAVES).ok()?;
        let kept = tree.kept.make_contiguous();
        for (i, leaves) in kept.chunks_exact(MEMO_MIN_LEAVES as usize).enumerate() {
            if tree.memo.first()?.get(first_chunk + i) != Some(&root(leaves)) {
                return None;
            }
        }
        Some(tree)
    }

    /// Hashes `data` as a leaf ([`leaf_hash`]), appends it and returns its index.
    pub fn append(&mut self, data: &[u8]) -> u64 {
        self.push(leaf_hash(data))
    }

    /// Drops the oldest chunks of kept leaf hashes beyond what it keeps.
    fn forget(&mut self) {
        let Some(keep) = self.keep else { return };
        let chunk = MEMO_MIN_LEAVES as usize;
        while self.kept.len() as u64 >= keep + MEMO_MIN_LEAVES {
            self.kept.drain(..chunk);
            self.first_kept += MEMO_MIN_LEAVES;
        }
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
        self.len
    }

    /// Whether the tree has no leaves.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The hash of leaf `index`, if there is one and the tree keeps it.
    #[must_use]
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        let at = index.checked_sub(self.first_kept)?;
        usize::try_from(at)
            .ok()
            .and_then(|at| self.kept.get(at))
            .copied()
    }

    /// The root of the whole tree (needs no [`LeafSource`]: the leaves after
    /// the last complete chunk are always kept).
    #[must_use]
    pub fn root(&self) -> Hash {
        self.reader(&NoSource)
            .mth(0, self.len)
            .expect("the whole tree's root needs only the memo and the last chunk")
    }

    /// The root of the tree of the first `size` leaves.
    ///
    /// # Errors
    /// [`ProofError::SizeOutOfRange`] if `size` is more than [`len`](Self::len).
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        self.root_at_from(size, &NoSource)
    }

    /// [`root_at`](Self::root_at), for a tree that keeps only recent leaves.
    ///
    /// # Errors
    /// As `root_at`, and the `source`'s, or [`ProofError::LeavesChanged`].
    pub fn root_at_from(&self, size: u64, source: &dyn LeafSource) -> Result<Hash, ProofError> {
        self.check_size(size)?;
        self.reader(source).mth(0, size)
    }

    /// The inclusion proof (audit path) of leaf `index` in the tree of the first
    /// `size` leaves, leaf side first (RFC 9162 §2.1.3.1). Check it with
    /// [`verify_inclusion`](crate::verify_inclusion).
    ///
    /// # Errors
    /// [`ProofError::SizeOutOfRange`] if `size > len`,
    /// [`ProofError::IndexOutOfRange`] if `index >= size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.inclusion_proof_from(index, size, &NoSource)
    }

    /// [`inclusion_proof`](Self::inclusion_proof), for a tree that keeps only
    /// recent leaves.
    ///
    /// # Errors
    /// As `inclusion_proof`, and the `source`'s, or [`ProofError::LeavesChanged`].
    pub fn inclusion_proof_from(
        &self,
        index: u64,
        size: u64,
        source: &dyn LeafSource,
    ) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let mut proof = Vec::new();
        self.reader(source).path(index, 0, size, &mut proof)?;
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
        self.consistency_proof_from(old_size, new_size, &NoSource)
    }

    /// [`consistency_proof`](Self::consistency_proof), for a tree that keeps
    /// only recent leaves.
    ///
    /// # Errors
    /// As `consistency_proof`, and the `source`'s, or
    /// [`ProofError::LeavesChanged`].
    pub fn consistency_proof_from(
        &self,
        old_size: u64,
        new_size: u64,
        source: &dyn LeafSource,
    ) -> Result<Vec<Hash>, ProofError> {
        self.check_size(new_size)?;
        if old_size > new_size {
            return Err(ProofError::SizesOutOfOrder { old_size, new_size });
        }
        let mut proof = Vec::new();
        if old_size > 0 && old_size < new_size {
            self.reader(source)
                .subproof(old_size, 0, new_size, true, &mut proof)?;
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

    fn reader<'a>(&'a self, source: &'a dyn LeafSource) -> Reader<'a> {
        Reader {
            tree: self,
            source,
            fetched: Vec::new(),
        }
    }

    /// The memoised root of the complete subtree of `n` leaves from `start`,
    /// if `n` is a power of two of at least `MEMO_MIN_LEAVES`, aligned.
    fn memoised(&self, start: u64, n: u64) -> Option<Hash> {
        if !(n.is_power_of_two() && start.is_multiple_of(n) && n >= MEMO_MIN_LEAVES) {
            return None;
        }
        let level = (n.trailing_zeros() - MEMO_MIN_LEVEL) as usize;
        self.memo
            .get(level)
            .and_then(|row| row.get(usize::try_from(start / n).ok()?))
            .copied()
    }
}

/// One query's view of a tree: its leaf hashes, kept or fetched from the
/// source (each chunk at most once, checked against its memoised root).
struct Reader<'a> {
    tree: &'a Tree,
    source: &'a dyn LeafSource,
    fetched: Vec<(u64, Vec<Hash>)>,
}

impl Reader<'_> {
    /// The hash of leaf `index` (< len).
    fn leaf(&mut self, index: u64) -> Result<Hash, ProofError> {
        if let Some(hash) = self.tree.leaf(index) {
            return Ok(hash);
        }
        let start = index - index % MEMO_MIN_LEAVES;
        let at = (index - start) as usize;
        if let Some((_, chunk)) = self.fetched.iter().find(|(s, _)| *s == start) {
            return Ok(chunk[at]);
        }
        let chunk = self.source.chunk(start)?;
        let expected = self.tree.memoised(start, MEMO_MIN_LEAVES);
        if chunk.len() as u64 != MEMO_MIN_LEAVES || expected != Some(root(&chunk)) {
            return Err(ProofError::LeavesChanged { start });
        }
        let hash = chunk[at];
        self.fetched.push((start, chunk));
        Ok(hash)
    }

    /// `MTH(D[start:end])`, for `start <= end <= len`.
    fn mth(&mut self, start: u64, end: u64) -> Result<Hash, ProofError> {
        let n = end - start;
        match n {
            0 => return Ok(empty_root()),
            1 => return self.leaf(start),
            _ => {}
        }
        if let Some(hash) = self.tree.memoised(start, n) {
            return Ok(hash);
        }
        let k = split_point(n);
        Ok(node_hash(
            &self.mth(start, start + k)?,
            &self.mth(start + k, end)?,
        ))
    }

    /// `PATH(m, D[start:end])` (RFC 9162 §2.1.3.1), appended to `proof`.
    fn path(
        &mut self,
        m: u64,
        start: u64,
        end: u64,
        proof: &mut Vec<Hash>,
    ) -> Result<(), ProofError> {
        let n = end - start;
        if n <= 1 {
            return Ok(());
        }
        let k = split_point(n);
        if m < k {
            self.path(m, start, start + k, proof)?;
            proof.push(self.mth(start + k, end)?);
        } else {
            self.path(m - k, start + k, end, proof)?;
            proof.push(self.mth(start, start + k)?);
        }
        Ok(())
    }

    /// `SUBPROOF(m, D[start:end], complete)` (RFC 9162 §2.1.4.1), for
    /// `0 < m <= end - start`, appended to `proof`.
    fn subproof(
        &mut self,
        m: u64,
        start: u64,
        end: u64,
        complete: bool,
        proof: &mut Vec<Hash>,
    ) -> Result<(), ProofError> {
        let n = end - start;
        if m == n {
            if !complete {
                proof.push(self.mth(start, end)?);
            }
            return Ok(());
        }
        let k = split_point(n);
        if m <= k {
            self.subproof(m, start, start + k, complete, proof)?;
            proof.push(self.mth(start + k, end)?);
        } else {
            self.subproof(m - k, start + k, end, false, proof)?;
            proof.push(self.mth(start, start + k)?);
        }
        Ok(())
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
        let all = leaves(100);
        let tree = Tree::from_leaf_hashes(all.iter().copied());
        // 100 = 64 + 32 + 4: six of 16, three of 32, one of 64.
        let sizes: Vec<usize> = tree.memo.iter().map(Vec::len).collect();
        assert_eq!(sizes, [6, 3, 1]);
        assert_eq!(tree.memo[2][0], naive_root(&all[..64]));
        assert_eq!(tree.memo[0][5], naive_root(&all[80..96]));
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
        let l = leaves(7);
        let tree = Tree::from_leaf_hashes(l.iter().copied());
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

    /// Leaf hashes held elsewhere, as a log on disk holds them; `changed`
    /// leaves are read back otherwise than appended.
    struct Held {
        leaves: Vec<Hash>,
        changed: Vec<u64>,
        asked: std::cell::Cell<u64>,
    }

    impl LeafSource for Held {
        fn chunk(&self, start: u64) -> Result<Vec<Hash>, ProofError> {
            self.asked.set(self.asked.get() + 1);
            let at = start as usize;
            let mut chunk = self.leaves[at..at + MEMO_MIN_LEAVES as usize].to_vec();
            for (i, hash) in (start..).zip(&mut chunk) {
                if self.changed.contains(&i) {
                    hash[0] ^= 1;
                }
            }
            Ok(chunk)
        }
    }

    fn held(n: u64) -> Held {
        Held {
            leaves: leaves(n),
            changed: Vec::new(),
            asked: std::cell::Cell::new(0),
        }
    }

    #[test]
    fn a_tree_keeping_recent_leaves_answers_as_one_keeping_all() {
        let source = held(300);
        let all = Tree::from_leaf_hashes(source.leaves.iter().copied());
        let mut lean = Tree::keeping(20);
        for leaf in &source.leaves {
            lean.push(*leaf);
            // It keeps the last complete chunks of at least 20, and the
            // leaves since: never more than 20 + 2 chunks.
            assert!(lean.kept.len() <= 20 + 2 * MEMO_MIN_LEAVES as usize);
            assert!(lean.first_kept.is_multiple_of(MEMO_MIN_LEAVES));
        }
        assert_eq!(lean.len(), 300);
        assert_eq!(lean.root(), all.root());
        assert_eq!(lean.leaf(0), None);
        assert_eq!(lean.leaf(299), all.leaf(299));
        for size in 0..=300u64 {
            let root = lean.root_at_from(size, &source).unwrap();
            assert_eq!(root, all.root_at(size).unwrap(), "size {size}");
            for index in (0..size).step_by(7) {
                assert_eq!(
                    lean.inclusion_proof_from(index, size, &source).unwrap(),
                    all.inclusion_proof(index, size).unwrap(),
                    "index {index}, size {size}"
                );
            }
            for old in (0..=size).step_by(11) {
                assert_eq!(
                    lean.consistency_proof_from(old, size, &source).unwrap(),
                    all.consistency_proof(old, size).unwrap(),
                    "{old} -> {size}"
                );
            }
        }
        // Without a source, what needs an older chunk is an error, not a
        // wrong answer; the whole tree's root and recent proofs need none.
        assert!(matches!(
            lean.root_at(17),
            Err(ProofError::LeavesUnreadable { start: 16, .. })
        ));
        assert_eq!(
            lean.inclusion_proof(299, 300),
            all.inclusion_proof(299, 300)
        );
    }

    #[test]
    fn a_proof_asks_for_each_older_chunk_once_and_recent_ones_never() {
        let source = held(1000);
        let mut lean = Tree::keeping(64);
        for leaf in &source.leaves {
            lean.push(*leaf);
        }
        lean.inclusion_proof_from(999, 1000, &source).unwrap();
        assert_eq!(source.asked.get(), 0);
        // Leaf 3's proof in the tree of 37 leaves: its own chunk and that of
        // leaves 32..48 (for 32..37), each once.
        lean.inclusion_proof_from(3, 37, &source).unwrap();
        assert_eq!(source.asked.get(), 2);
    }

    #[test]
    fn older_leaves_read_back_changed_are_an_error_not_a_proof() {
        let mut source = held(100);
        let mut lean = Tree::keeping(0);
        for leaf in &source.leaves {
            lean.push(*leaf);
        }
        source.changed = vec![21];
        assert_eq!(
            lean.inclusion_proof_from(20, 100, &source),
            Err(ProofError::LeavesChanged { start: 16 })
        );
        assert_eq!(
            lean.root_at_from(25, &source),
            Err(ProofError::LeavesChanged { start: 16 })
        );
        // Chunks it does not need are not read, so they cannot spoil it.
        assert!(lean.inclusion_proof_from(70, 100, &source).is_ok());
    }

    #[test]
    fn a_tree_read_back_from_its_bytes_is_the_same_and_damage_is_refused() {
        let source = held(1000);
        for keep in [None, Some(40)] {
            for n in [0u64, 5, 16, 300, 1000] {
                let mut tree = keep.map_or_else(Tree::new, Tree::keeping);
                for leaf in &source.leaves[..n as usize] {
                    tree.push(*leaf);
                }
                let bytes = tree.to_bytes();
                let back = Tree::from_bytes(&bytes).expect("read back");
                assert_eq!(back, tree, "{keep:?}, {n} leaves");
                assert!(Tree::from_bytes(&bytes[..bytes.len() - 1]).is_none());
                let mut longer = bytes.clone();
                longer.push(0);
                assert!(Tree::from_bytes(&longer).is_none());
                if n - tree.first_kept >= 16 {
                    // A kept leaf hash changed: its chunk's root disagrees.
                    let mut changed = bytes.clone();
                    changed[24] ^= 1;
                    assert!(Tree::from_bytes(&changed).is_none(), "{keep:?}, {n} leaves");
                }
            }
        }
        assert!(Tree::from_bytes(&[]).is_none());
    }
}
