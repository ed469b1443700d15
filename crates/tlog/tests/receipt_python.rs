//! A stranger's verifier of receipts: `tests/python/verify_receipt.py` checks a
//! receipt and its inclusion proof with only Python's standard library and the
//! `cryptography` package, no Ferry code. It must accept what this crate
//! produces, and refuse it once any byte of the receipt or the proof is changed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use ed25519_dalek::SigningKey;
use ferry_tlog::{Checkpoint, Entry, InclusionProof, Receipt, Signer, Tree};
use serde_json::json;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/python/verify_receipt.py"
);
const ORIGIN: &str = "ferry.example/log";

/// The receipt of leaf 6 of a log of 13 stored leaves, as pretty JSON (as
/// `ferry send --receipts` saves it), its inclusion proof as JSON, and the key.
struct Case {
    key: String,
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
        let receipt = Receipt::issue(&signer, 6, &entries[6]).unwrap();
        let checkpoint = Checkpoint::new(ORIGIN, 13, tree.root()).unwrap();
        let inclusion = InclusionProof::new(
            6,
            13,
            &tree.inclusion_proof(6, 13).unwrap(),
            signer.sign_checkpoint(&checkpoint),
        );
        Self {
            key: signer.verifier().to_string(),
            receipt: serde_json::to_vec_pretty(&receipt).unwrap(),
            inclusion: serde_json::to_vec_pretty(&inclusion).unwrap(),
        }
    }
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
        stdout.contains("in the signed checkpoint of 13 leaves"),
        "{stdout}"
    );

    let key_file = write(dir.path(), "log.key", format!("{}\n", case.key).as_bytes());
    let output = python(&["--key-file", &key_file, &receipt]);
    assert!(output.status.success());
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
    // Both kinds of changes were made: the receipt's bytes and the proof's
    // (its checkpoint note and its hashes).
    let proof_text = String::from_utf8(case.inclusion.clone()).unwrap();
    assert!(proof_text.contains("\"checkpoint\"") && proof_text.contains("\"proof\""));
}
