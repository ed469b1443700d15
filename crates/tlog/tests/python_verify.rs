//! A stranger's verifier: `verify_with_python.py` checks a signed checkpoint and
//! an inclusion proof with only Python's `hashlib` and the `cryptography`
//! package, no Ferry code. It must accept what this crate produces and refuse it
//! once anything is changed.

mod common;

use std::path::Path;

use ferry_tlog::{Checkpoint, Signer, Tree};
use serde_json::json;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verify_with_python.py");

struct Case {
    verifier_key: String,
    note: String,
    leaf: Vec<u8>,
    index: u64,
    proof: Vec<[u8; 32]>,
}

impl Case {
    /// A log of `size` leaves and the proof of leaf `index` against its signed
    /// checkpoint.
    fn new(size: u64, index: u64) -> Self {
        let signer = Signer::generate("ferry.example/log").unwrap();
        let mut tree = Tree::new();
        for i in 0..size {
            tree.append(format!("item {i}").as_bytes());
        }
        let checkpoint = Checkpoint::new("ferry.example/log", size, tree.root()).unwrap();
        Self {
            verifier_key: signer.verifier().to_string(),
            note: signer.sign_checkpoint(&checkpoint),
            leaf: format!("item {index}").into_bytes(),
            index,
            proof: tree.inclusion_proof(index, size).unwrap(),
        }
    }

    /// Writes the case to a fresh directory and runs the Python verifier on it.
    fn python_accepts(&self) -> bool {
        let dir = tempfile::tempdir().unwrap();
        let case = json!({
            "verifier_key": self.verifier_key,
            "note": self.note,
            "leaf": hex::encode(&self.leaf),
            "index": self.index,
            "proof": self.proof.iter().map(hex::encode).collect::<Vec<_>>(),
        });
        std::fs::write(
            dir.path().join("case.json"),
            serde_json::to_vec_pretty(&case).unwrap(),
        )
        .unwrap();
        run_python(dir.path())
    }
}

fn run_python(dir: &Path) -> bool {
    common::python(SCRIPT, &[dir.as_os_str()]).status.success()
}

#[test]
fn python_verifies_signed_checkpoints_and_inclusion_proofs() {
    for (size, index) in [
        (1, 0),
        (2, 1),
        (3, 2),
        (7, 4),
        (13, 0),
        (13, 6),
        (13, 12),
        (40, 31),
    ] {
        assert!(
            Case::new(size, index).python_accepts(),
            "leaf {index} of {size}"
        );
    }
}

#[test]
fn python_refuses_a_tampered_proof() {
    let proof_len = Case::new(13, 6).proof.len();
    assert_eq!(proof_len, 4);
    for i in 0..proof_len {
        let mut bad = Case::new(13, 6);
        bad.proof[i][0] ^= 1;
        assert!(!bad.python_accepts(), "proof hash {i} changed");
    }
    let mut shorter = Case::new(13, 6);
    shorter.proof.pop();
    assert!(!shorter.python_accepts());
}

#[test]
fn python_refuses_another_leaf_index_or_note() {
    let mut bad = Case::new(13, 6);
    bad.leaf = b"item 7".to_vec();
    assert!(!bad.python_accepts(), "another leaf");

    let mut bad = Case::new(13, 6);
    bad.index = 7;
    assert!(!bad.python_accepts(), "another index");

    let mut bad = Case::new(13, 6);
    bad.note = bad.note.replacen("\n13\n", "\n14\n", 1);
    assert!(!bad.python_accepts(), "a changed checkpoint");

    let mut bad = Case::new(13, 6);
    bad.verifier_key = Signer::generate("ferry.example/log")
        .unwrap()
        .verifier()
        .to_string();
    assert!(!bad.python_accepts(), "another key");
}
