//! RFC 9162 §2.1.1 hashing: leaf and node hashes with distinct one-byte prefixes
//! (so a leaf can never be passed off as an interior node), and the Merkle Tree
//! Hash of a list of leaves.

use sha2::{Digest, Sha256};

/// A SHA-256 output: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; 32];

/// Prefix of a leaf hash's input.
const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an interior node hash's input.
const NODE_PREFIX: u8 = 0x01;

/// The hash of the empty tree: SHA-256 of the empty string.
#[must_use]
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The hash of a leaf: `SHA-256(0x00 || data)`.
#[must_use]
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([LEAF_PREFIX])
        .chain_update(data)
        .finalize()
        .into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([NODE_PREFIX])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The Merkle Tree Hash of a list of leaf hashes (RFC 9162 §2.1.1): the empty
/// root for none, the leaf hash itself for one, and otherwise
/// `node_hash(MTH(D[0:k]), MTH(D[k:n]))` where `k` is the largest power of two
/// smaller than `n`.
///
/// This computes it in one pass with a stack of complete subtrees, `O(n)` time
/// and `O(log n)` memory; [`Tree`](crate::Tree) answers for any earlier size too.
#[must_use]
pub fn root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return empty_root();
    }
    // Complete subtrees, largest (leftmost) first, with their sizes; two of
    // the same size merge, as in a binary counter.
    let mut stack: Vec<(u64, Hash)> = Vec::new();
    for leaf in leaves {
        let mut entry = (1u64, *leaf);
        while let Some(&(size, left)) = stack.last() {
            if size != entry.0 {
                break;
            }
            stack.pop();
            entry = (size * 2, node_hash(&left, &entry.1));
        }
        stack.push(entry);
    }
    // The subtrees left over are the MTH's right spine: fold right to left.
    let mut iter = stack.into_iter().rev().map(|(_, hash)| hash);
    let mut acc = iter.next().unwrap_or_else(empty_root);
    for left in iter {
        acc = node_hash(&left, &acc);
    }
    acc
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// RFC 9162's definition, word for word: the reference the fast code is
    /// checked against.
    pub(crate) fn naive_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => Sha256::digest(b"").into(),
            1 => leaves[0],
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
            }
        }
    }

    pub(crate) fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(root(&[]), empty_root());
    }

    #[test]
    fn leaf_and_node_hashes_use_their_prefixes() {
        let expected: Hash = Sha256::digest(b"\x00abc").into();
        assert_eq!(leaf_hash(b"abc"), expected);
        let (l, r) = ([1u8; 32], [2u8; 32]);
        let mut input = vec![1u8];
        input.extend_from_slice(&l);
        input.extend_from_slice(&r);
        let expected: Hash = Sha256::digest(&input).into();
        assert_eq!(node_hash(&l, &r), expected);
        assert_ne!(node_hash(&l, &r), node_hash(&r, &l));
        // A leaf whose data looks like two hashes is not a node.
        assert_ne!(leaf_hash(&input[1..]), node_hash(&l, &r));
    }

    #[test]
    fn root_matches_the_recursive_definition_for_sizes_0_to_20() {
        for n in 0..=20 {
            let leaves = leaves(n);
            assert_eq!(root(&leaves), naive_root(&leaves), "size {n}");
        }
    }

    #[test]
    fn split_point_is_the_largest_power_of_two_below() {
        for (n, k) in [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1 << 40, 1 << 39),
        ] {
            assert_eq!(split_point(n), k, "n = {n}");
        }
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }

    #[test]
    fn a_changed_reordered_or_removed_leaf_changes_the_root() {
        let original = leaves(7);
        let good = root(&original);
        for i in 0..original.len() {
            let mut changed = original.clone();
            changed[i][0] ^= 1;
            assert_ne!(root(&changed), good, "changed leaf {i}");
            let mut removed = original.clone();
            removed.remove(i);
            assert_ne!(root(&removed), good, "removed leaf {i}");
            if i + 1 < original.len() {
                let mut swapped = original.clone();
                swapped.swap(i, i + 1);
                assert_ne!(root(&swapped), good, "swapped leaves {i} and {}", i + 1);
            }
        }
    }
}
