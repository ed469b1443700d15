//! Verifying inclusion and consistency proofs, exactly as RFC 9162 §2.1.3.2 and
//! §2.1.4.2 describe, with nothing but the proof, the sizes and the roots.

use crate::error::ProofError;
use crate::hash::{Hash, node_hash};

/// Checks that `leaf_hash` is leaf `index` of the tree of `size` leaves whose
/// root is `root`, given the inclusion proof `proof` (RFC 9162 §2.1.3.2).
///
/// The proof binds the leaf to the root; `size` only shapes the path, and a
/// proof can verify for more than one size with the same root (the path of
/// leaf 0 in a tree of 3 leaves also passes for size 4). Take the size and the
/// root from one signed [`Checkpoint`](crate::Checkpoint), never separately.
///
/// # Errors
/// [`ProofError::IndexOutOfRange`] if `index >= size`; [`ProofError::ProofTooLong`]
/// or [`ProofError::ProofTooShort`] if the proof has the wrong number of hashes
/// for `index` and `size`; [`ProofError::RootMismatch`] if it leads to another root.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    // Step 1.
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // Steps 2 and 3.
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf_hash;
    // Step 4.
    for p in proof {
        if sn == 0 {
            return Err(ProofError::ProofTooLong);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            shift_until_lsb_set_or_zero(&mut fn_, &mut sn);
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    if sn != 0 {
        return Err(ProofError::ProofTooShort);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a prefix of
/// the tree of `new_size` leaves with root `new_root`, given the consistency
/// proof `proof` (RFC 9162 §2.1.4.2).
///
/// RFC 9162 defines proofs for `0 < old_size < new_size`; the two other cases
/// take an empty proof: when the sizes are equal the roots must be equal, and
/// every tree extends the empty tree.
///
/// # Errors
/// [`ProofError::SizesOutOfOrder`] if `old_size > new_size`;
/// [`ProofError::ProofTooLong`] or [`ProofError::ProofTooShort`] if the proof has
/// the wrong number of hashes; [`ProofError::OldRootMismatch`] or
/// [`ProofError::RootMismatch`] if it does not lead to the two roots.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == new_size || old_size == 0 {
        if !proof.is_empty() {
            return Err(ProofError::ProofTooLong);
        }
        if old_size == new_size && old_root != new_root {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }
    // Step 1.
    let Some((first, rest)) = proof.split_first() else {
        return Err(ProofError::ProofTooShort);
    };
    // Step 2: when old_size is a power of two, the old root is itself a node
    // of the new tree and is left out of the proof.
    let (start, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        (first, rest)
    };
    // Step 3.
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    // Step 4.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    let (mut fr, mut sr) = (*start, *start);
    // Step 6.
    for c in rest {
        if sn == 0 {
            return Err(ProofError::ProofTooLong);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            shift_until_lsb_set_or_zero(&mut fn_, &mut sn);
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(ProofError::ProofTooShort);
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// "If LSB(fn) is not set, then right-shift both fn and sn equally until either
/// LSB(fn) is set or fn is 0" (a step of both algorithms): climbs past the
/// levels where the node is a left child with no right sibling in the tree.
fn shift_until_lsb_set_or_zero(fn_: &mut u64, sn: &mut u64) {
    while *fn_ & 1 == 0 && *fn_ != 0 {
        *fn_ >>= 1;
        *sn >>= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tree;
    use crate::hash::tests::leaves;

    const MAX: u64 = 40;

    fn tree() -> Tree {
        Tree::from_leaf_hashes(leaves(MAX))
    }

    /// Every way of changing one hash of `proof` by one bit.
    fn corrupted(proof: &[Hash]) -> impl Iterator<Item = Vec<Hash>> + '_ {
        (0..proof.len()).map(move |i| {
            let mut bad = proof.to_vec();
            bad[i][31] ^= 0x80;
            bad
        })
    }

    #[test]
    fn every_inclusion_proof_up_to_40_leaves_verifies() {
        let tree = tree();
        for size in 1..=MAX {
            let root = tree.root_at(size).unwrap();
            for index in 0..size {
                let leaf = tree.leaf(index).unwrap();
                let proof = tree.inclusion_proof(index, size).unwrap();
                assert_eq!(
                    verify_inclusion(&leaf, index, size, &proof, &root),
                    Ok(()),
                    "leaf {index} of {size}"
                );
            }
        }
    }

    #[test]
    fn inclusion_proofs_fail_when_anything_is_changed() {
        let tree = tree();
        for size in 1..=MAX {
            let root = tree.root_at(size).unwrap();
            for index in 0..size {
                let leaf = tree.leaf(index).unwrap();
                let proof = tree.inclusion_proof(index, size).unwrap();
                let fails = |leaf: &Hash, index, size, proof: &[Hash], root: &Hash| {
                    verify_inclusion(leaf, index, size, proof, root).is_err()
                };
                for bad in corrupted(&proof) {
                    assert!(fails(&leaf, index, size, &bad, &root), "{index}/{size}");
                }
                let mut bad_leaf = leaf;
                bad_leaf[0] ^= 1;
                assert!(fails(&bad_leaf, index, size, &proof, &root));
                let mut bad_root = root;
                bad_root[0] ^= 1;
                assert!(fails(&leaf, index, size, &proof, &bad_root));
                // Another index: another leaf position in the same tree.
                for other in (0..=size).filter(|&i| i != index) {
                    assert!(
                        fails(&leaf, other, size, &proof, &root),
                        "{index}->{other}/{size}"
                    );
                }
                // Another size, with that size's true root (a checkpoint binds
                // size and root together).
                for other in (1..=MAX).filter(|&s| s != size && s > index) {
                    let other_root = tree.root_at(other).unwrap();
                    assert!(
                        fails(&leaf, index, other, &proof, &other_root),
                        "{index}/{size}->{other}"
                    );
                }
                assert!(fails(&leaf, index, 0, &proof, &root));
                // A hash too few or too many.
                if let Some((_, shorter)) = proof.split_last() {
                    assert!(fails(&leaf, index, size, shorter, &root));
                }
                let mut longer = proof.clone();
                longer.push(root);
                assert!(fails(&leaf, index, size, &longer, &root));
            }
        }
    }

    #[test]
    fn the_size_is_bound_only_through_the_root() {
        // Why a checkpoint signs size and root together: with the root of 3
        // leaves, the path of leaf 0 also passes for a claimed size of 4.
        let tree = tree();
        let (root3, root4) = (tree.root_at(3).unwrap(), tree.root_at(4).unwrap());
        let leaf = tree.leaf(0).unwrap();
        let proof = tree.inclusion_proof(0, 3).unwrap();
        assert_eq!(verify_inclusion(&leaf, 0, 4, &proof, &root3), Ok(()));
        assert!(verify_inclusion(&leaf, 0, 4, &proof, &root4).is_err());
    }

    #[test]
    fn inclusion_errors_say_what_was_wrong() {
        let tree = tree();
        let root = tree.root_at(5).unwrap();
        let leaf = tree.leaf(2).unwrap();
        let proof = tree.inclusion_proof(2, 5).unwrap();
        assert_eq!(
            verify_inclusion(&leaf, 5, 5, &proof, &root),
            Err(ProofError::IndexOutOfRange { index: 5, size: 5 })
        );
        assert_eq!(
            verify_inclusion(&leaf, 2, 5, &proof[..1], &root),
            Err(ProofError::ProofTooShort)
        );
        let longer = [proof.clone(), vec![[0; 32]]].concat();
        assert_eq!(
            verify_inclusion(&leaf, 2, 5, &longer, &root),
            Err(ProofError::ProofTooLong)
        );
        assert_eq!(
            verify_inclusion(&leaf, 2, 5, &proof, &[0; 32]),
            Err(ProofError::RootMismatch)
        );
        // A one-leaf tree: the root is the leaf, the proof is empty.
        assert_eq!(verify_inclusion(&leaf, 0, 1, &[], &leaf), Ok(()));
        // A proof of absurd length is refused without trouble.
        let huge = vec![[0u8; 32]; 10_000];
        assert_eq!(
            verify_inclusion(&leaf, 0, u64::MAX, &huge, &root),
            Err(ProofError::ProofTooLong)
        );
    }

    #[test]
    fn every_consistency_proof_up_to_40_leaves_verifies() {
        let tree = tree();
        for new in 0..=MAX {
            let new_root = tree.root_at(new).unwrap();
            for old in 0..=new {
                let old_root = tree.root_at(old).unwrap();
                let proof = tree.consistency_proof(old, new).unwrap();
                assert_eq!(
                    verify_consistency(old, new, &old_root, &new_root, &proof),
                    Ok(()),
                    "{old} -> {new}"
                );
            }
        }
    }

    #[test]
    fn consistency_proofs_fail_when_anything_is_changed() {
        let tree = tree();
        let roots: Vec<Hash> = (0..=MAX).map(|s| tree.root_at(s).unwrap()).collect();
        let fails = |old: u64, new: u64, proof: &[Hash]| {
            verify_consistency(old, new, &roots[old as usize], &roots[new as usize], proof).is_err()
        };
        for new in 1..=MAX {
            for old in 1..new {
                let proof = tree.consistency_proof(old, new).unwrap();
                let (old_root, new_root) = (roots[old as usize], roots[new as usize]);
                for bad in corrupted(&proof) {
                    assert!(fails(old, new, &bad), "{old} -> {new}");
                }
                let mut bad = old_root;
                bad[0] ^= 1;
                assert!(verify_consistency(old, new, &bad, &new_root, &proof).is_err());
                let mut bad = new_root;
                bad[0] ^= 1;
                assert!(verify_consistency(old, new, &old_root, &bad, &proof).is_err());
                // Other sizes, each with its true root.
                for other in (1..=new).filter(|&o| o != old) {
                    assert!(fails(other, new, &proof), "{old}->{other} -> {new}");
                }
                for other in (old..=MAX).filter(|&n| n != new) {
                    assert!(fails(old, other, &proof), "{old} -> {new}->{other}");
                }
                assert!(fails(new, old, &proof));
                if let Some((_, shorter)) = proof.split_last() {
                    assert!(fails(old, new, shorter), "{old} -> {new} shorter");
                }
                let mut longer = proof.clone();
                longer.push(new_root);
                assert!(fails(old, new, &longer), "{old} -> {new} longer");
                assert!(fails(old, new, &[]));
            }
        }
    }

    #[test]
    fn consistency_edge_cases() {
        let tree = tree();
        let (r0, r5, r7) = (
            tree.root_at(0).unwrap(),
            tree.root_at(5).unwrap(),
            tree.root_at(7).unwrap(),
        );
        // Equal sizes: an empty proof, equal roots.
        assert_eq!(verify_consistency(5, 5, &r5, &r5, &[]), Ok(()));
        assert_eq!(
            verify_consistency(5, 5, &r5, &r7, &[]),
            Err(ProofError::RootMismatch)
        );
        assert_eq!(
            verify_consistency(5, 5, &r5, &r5, &[r5]),
            Err(ProofError::ProofTooLong)
        );
        // Every tree extends the empty tree, with an empty proof.
        assert_eq!(verify_consistency(0, 7, &r0, &r7, &[]), Ok(()));
        assert_eq!(
            verify_consistency(0, 7, &r0, &r7, &[r7]),
            Err(ProofError::ProofTooLong)
        );
        assert_eq!(
            verify_consistency(7, 5, &r7, &r5, &[]),
            Err(ProofError::SizesOutOfOrder {
                old_size: 7,
                new_size: 5
            })
        );
        assert_eq!(
            verify_consistency(5, 7, &r5, &r7, &[]),
            Err(ProofError::ProofTooShort)
        );
        let proof = tree.consistency_proof(5, 7).unwrap();
        assert_eq!(
            verify_consistency(5, 7, &r7, &r7, &proof),
            Err(ProofError::OldRootMismatch)
        );
        assert_eq!(
            verify_consistency(5, 7, &r5, &r5, &proof),
            Err(ProofError::RootMismatch)
        );
        let huge = vec![[0u8; 32]; 10_000];
        assert!(verify_consistency(3, u64::MAX, &r5, &r7, &huge).is_err());
    }
}
