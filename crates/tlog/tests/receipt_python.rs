//! A stranger's verifier of receipts: `tests/python/verify_receipt.py` checks a
//! receipt (its checkpoint's signature and the leaf's inclusion proof in it) and
//! a later inclusion proof with only Python's standard library and the
//! `cryptography` package, no Ferry code. It must accept what this crate
//! produces, and refuse it once any bit of the receipt or the proof is changed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use ferry_tlog::{Checkpoint, Entry, InclusionProof, Receipt, Signer, Tree};
use serde_json::json;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/python/verify_receipt.py"
);
const ORIGIN: &str = "ferry.example/log";

/// The receipt of leaf 6 of a log of 13 stored leaves, with the checkpoint of
/// the first 9, as pretty JSON (as `ferry send --receipts` saves it), the leaf's
/// inclusion proof in the checkpoint of 13 as JSON, and the key.
struct Case {
    key: String,
    signer: Signer,
    tree: Tree,
    entries: Vec<Entry>,
    receipt: Vec<u8>,
    inclusion: Vec<u8>,
}

impl Case {
    fn new() -> Self {
        let signer = Signer::new(ORIGIN, SigningKey::from_bytes(&[0x42; 32])).unwrap();
        let entries: Vec<Entry> = (0..13)
            .map(|n| {
                Entry::stored(
                    &format!("01JQ3V7ZK9T6N2XQ8W4R5B1C{n:02}"),
                    &format!("{n:02x}").repeat(32),
                    100 + n,
                    "dictionary",
                    "json",
                    &format!("2026-12-02T10:00:{n:02}.5Z"),
                )
            })
            .collect();
        let mut tree = Tree::new();
        for entry in &entries {
            tree.append(entry.as_bytes());
        }
        let note = |size| sign(&signer, ORIGIN, size, tree.root_at(size).unwrap());
        let receipt = Receipt::new(
            ORIGIN,
            6,
            &entries[6],
            note(9),
            &tree.inclusion_proof(6, 9).unwrap(),
        )
        .unwrap();
        let inclusion = InclusionProof::new(6, 13, &tree.inclusion_proof(6, 13).unwrap(), note(13));
        Self {
            key: signer.verifier().to_string(),
            receipt: serde_json::to_vec_pretty(&receipt).unwrap(),
            inclusion: serde_json::to_vec_pretty(&inclusion).unwrap(),
            signer,
            tree,
            entries,
        }
    }

    /// The receipt as it is, changed by `change`, as pretty JSON.
    fn receipt_with(&self, change: impl FnOnce(&mut Receipt)) -> Vec<u8> {
        let mut receipt: Receipt = serde_json::from_slice(&self.receipt).unwrap();
        change(&mut receipt);
        serde_json::to_vec_pretty(&receipt).unwrap()
    }
}

/// The signed note of the checkpoint `origin`, `size`, `root`.
fn sign(signer: &Signer, origin: &str, size: u64, root: ferry_tlog::Hash) -> String {
    signer.sign_checkpoint(&Checkpoint::new(origin, size, root).unwrap())
}

fn encode(hashes: &[ferry_tlog::Hash]) -> Vec<String> {
    hashes.iter().map(|hash| STANDARD.encode(hash)).collect()
}

fn python(args: &[&str]) -> Output {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    common::python(SCRIPT, &args)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Every copy of `bytes` with one bit flipped: each bit of each byte.
fn flipped(bytes: &[u8]) -> impl Iterator<Item = (String, Vec<u8>)> + '_ {
    (0..bytes.len() * 8).map(|bit| {
        let mut bad = bytes.to_vec();
        bad[bit / 8] ^= 1 << (bit % 8);
        (format!("{}.{}", bit / 8, bit % 8), bad)
    })
}

#[test]
fn python_verifies_a_receipt_and_its_inclusion_proof() {
    let case = Case::new();
    let dir = tempfile::tempdir().unwrap();
    let receipt = write(dir.path(), "receipt.json", &case.receipt);
    let proof = write(dir.path(), "proof.json", &case.inclusion);
    let output = python(&["--key", &case.key, &receipt, "--inclusion", &proof]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("in the receipt's signed checkpoint of 9 leaves, and in the signed checkpoint of 13 leaves"),
        "{stdout}"
    );

    // The receipt alone, offline.
    let key_file = write(dir.path(), "log.key", format!("{}\n", case.key).as_bytes());
    let output = python(&["--key-file", &key_file, &receipt]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("leaf 6 of ferry.example/log, item 01JQ3V7ZK9T6N2XQ8W4R5B1C06, in the receipt's signed checkpoint of 9 leaves\n"),
        "{stdout}"
    );
}

#[test]
fn python_refuses_a_receipt_whose_parts_do_not_agree() {
    let case = Case::new();
    let dir = tempfile::tempdir().unwrap();
    let root = |size| case.tree.root_at(size).unwrap();
    let proof = |index, size| encode(&case.tree.inclusion_proof(index, size).unwrap());
    let wrong = [
        (
            "a checkpoint of another origin, signed by the key",
            case.receipt_with(|r| {
                r.checkpoint = sign(&case.signer, "other.example/log", 9, root(9))
            }),
            "its checkpoint of 'other.example/log'",
        ),
        (
            "a checkpoint that does not hold the leaf",
            case.receipt_with(|r| r.checkpoint = sign(&case.signer, ORIGIN, 6, root(6))),
            "not below the tree size",
        ),
        (
            "another leaf's proof",
            case.receipt_with(|r| r.proof = proof(5, 9)),
            "does not lead to the checkpoint's root",
        ),
        (
            "the proof in another tree than the checkpoint's",
            case.receipt_with(|r| r.proof = proof(6, 7)),
            "too short",
        ),
        (
            "another leaf, its members changed with it",
            case.receipt_with(|r| {
                let other = Receipt::new(ORIGIN, 6, &case.entries[7], String::new(), &[]).unwrap();
                *r = Receipt {
                    checkpoint: r.checkpoint.clone(),
                    proof: r.proof.clone(),
                    ..other
                };
            }),
            "does not lead to the checkpoint's root",
        ),
    ];
    for (what, bytes, reason) in wrong {
        let path = write(dir.path(), "wrong.json", &bytes);
        let output = python(&["--key", &case.key, &path]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{what}: {stdout}");
        assert!(stdout.contains(reason), "{what}: {stdout}");
    }
}

#[test]
fn python_refuses_another_key_and_bad_key_text() {
    let case = Case::new();
    let dir = tempfile::tempdir().unwrap();
    let receipt = write(dir.path(), "receipt.json", &case.receipt);
    let other = Signer::new(ORIGIN, SigningKey::from_bytes(&[0x43; 32]))
        .unwrap()
        .verifier()
        .to_string();
    assert_eq!(python(&["--key", &other, &receipt]).status.code(), Some(1));
    // A key whose key hash does not match its name and key is no key: usage.
    let mut bad_hash = case.key.clone().into_bytes();
    let at = case.key.find('+').unwrap() + 1;
    bad_hash[at] = if bad_hash[at] == b'0' { b'1' } else { b'0' };
    let bad_hash = String::from_utf8(bad_hash).unwrap();
    assert_eq!(
        python(&["--key", &bad_hash, &receipt]).status.code(),
        Some(2)
    );
}

#[test]
fn python_refuses_every_changed_bit_of_the_receipt_and_of_the_proof() {
    let case = Case::new();
    let dir = tempfile::tempdir().unwrap();
    let good_receipt = write(dir.path(), "receipt.json", &case.receipt);
    let good_proof = write(dir.path(), "proof.json", &case.inclusion);
    // The good pair first: the batch as a whole can verify.
    let mut cases = vec![json!({"receipt": good_receipt, "inclusion": good_proof})];
    let mut names: Vec<PathBuf> = Vec::new();
    for (at, bad) in flipped(&case.receipt) {
        let path = write(dir.path(), &format!("receipt-{at}.json"), &bad);
        cases.push(json!({"receipt": path, "inclusion": null}));
        names.push(path.into());
    }
    for (at, bad) in flipped(&case.inclusion) {
        let path = write(dir.path(), &format!("proof-{at}.json"), &bad);
        cases.push(json!({"receipt": good_receipt, "inclusion": path}));
        names.push(format!("proof {at}").into());
    }
    let list = write(
        dir.path(),
        "cases.json",
        &serde_json::to_vec(&cases).unwrap(),
    );
    let output = python(&["--key", &case.key, "--cases", &list]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let verdicts: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        verdicts.len(),
        cases.len(),
        "one verdict per case:\n{stdout}"
    );
    assert!(verdicts[0].starts_with("ok "), "{}", verdicts[0]);
    for (verdict, name) in verdicts[1..].iter().zip(&names) {
        assert!(
            verdict.starts_with("invalid "),
            "{} changed and Python still accepts it: {verdict}",
            name.display()
        );
    }
    // Every part was changed: the receipt's leaf, members, checkpoint note and
    // proof hashes, and the later proof's checkpoint note and hashes.
    for text in [&case.receipt, &case.inclusion] {
        let text = String::from_utf8(text.clone()).unwrap();
        assert!(text.contains("\"checkpoint\"") && text.contains("\"proof\""));
    }
}
