//! The worked example of `docs/receipts.md` is what this crate produces: each
//! block of the document marked `<!-- example: NAME -->` must equal, byte for
//! byte, the value computed here from the same fixed key and leaves, so the
//! specification cannot drift from the code.

use ed25519_dalek::SigningKey;
use ferry_tlog::{
    Actor, Checkpoint, ConsistencyProof, Entry, InclusionProof, Receipt, Signer, Tree, node_hash,
};
use sha2::{Digest, Sha256};

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/receipts.md");
const ORIGIN: &str = "ferry.example/log";

/// The example's values, by block name, in the order the document shows them.
fn example() -> Vec<(&'static str, String)> {
    let signer = Signer::new(ORIGIN, SigningKey::from_bytes(&[0x42; 32])).unwrap();
    let hello = b"hello, ferry\n";
    let dict = br#"{"a": 1}"#;
    let leaves = [
        Entry::stored(
            "01JQ3V7ZK9T6N2XQ8W4R5B1C0D",
            &hex::encode(Sha256::digest(hello)),
            hello.len() as u64,
            "text",
            "utf8",
            "2026-12-02T09:49:24.5Z",
        ),
        Entry::stored(
            "01JQ3V8A1MZ2R5T7W9Y0B3C4D6",
            &hex::encode(Sha256::digest(dict)),
            dict.len() as u64,
            "dictionary",
            "json",
            "2026-12-02T09:50:01.25Z",
        ),
        Entry::read(
            "01JQ3V7ZK9T6N2XQ8W4R5B1C0D",
            "content",
            &Actor {
                credential: "token:0a1b2c3d".into(),
                address: "192.0.2.7".into(),
            },
            "2026-12-02T10:02:00Z",
        ),
    ];
    let mut tree = Tree::new();
    for leaf in &leaves {
        tree.append(leaf.as_bytes());
    }
    let note = |size| {
        let checkpoint = Checkpoint::new(ORIGIN, size, tree.root_at(size).unwrap()).unwrap();
        signer.sign_checkpoint(&checkpoint)
    };
    let hash = |i: u64| hex::encode(tree.leaf(i).unwrap());
    let hashes = format!(
        "leaf hash 0   {}\nleaf hash 1   {}\nleaf hash 2   {}\nnode(0, 1)    {}\nroot (size 2) {}\nroot (size 3) {}\n",
        hash(0),
        hash(1),
        hash(2),
        hex::encode(node_hash(&tree.leaf(0).unwrap(), &tree.leaf(1).unwrap())),
        hex::encode(tree.root_at(2).unwrap()),
        hex::encode(tree.root()),
    );
    // The receipt of leaf 1 carries the checkpoint signed when the first two
    // leaves were committed, and the leaf's proof in that tree.
    let receipt = Receipt::new(
        ORIGIN,
        1,
        &leaves[1],
        note(2),
        &tree.inclusion_proof(1, 2).unwrap(),
    )
    .unwrap();
    let inclusion = InclusionProof::new(1, 3, &tree.inclusion_proof(1, 3).unwrap(), note(3));
    let consistency = ConsistencyProof::new(2, 3, &tree.consistency_proof(2, 3).unwrap(), note(3));
    vec![
        ("key", format!("{}\n", signer.verifier())),
        ("leaf-0", leaves[0].text().to_owned()),
        ("leaf-1", leaves[1].text().to_owned()),
        ("leaf-2", leaves[2].text().to_owned()),
        ("hashes", hashes),
        ("receipt-checkpoint", note(2)),
        ("receipt", pretty(&receipt)),
        ("checkpoint", note(3)),
        ("inclusion", pretty(&inclusion)),
        ("consistency", pretty(&consistency)),
    ]
}

/// Pretty JSON with a final newline.
fn pretty(value: &impl serde::Serialize) -> String {
    format!("{}\n", serde_json::to_string_pretty(value).unwrap())
}

/// The fenced block after `<!-- example: NAME -->`, its final newline kept.
fn block<'a>(doc: &'a str, name: &str) -> Option<&'a str> {
    let marker = format!("<!-- example: {name} -->\n");
    let after = &doc[doc.find(&marker)? + marker.len()..];
    let start = after.strip_prefix("```")?.find('\n')? + 4;
    let len = after[start..].find("\n```\n")? + 1;
    Some(&after[start..start + len])
}

#[test]
fn the_documents_worked_example_is_what_the_code_produces() {
    let doc = std::fs::read_to_string(DOC).expect("docs/receipts.md");
    let mut wrong = Vec::new();
    for (name, value) in example() {
        if block(&doc, name) != Some(value.as_str()) {
            wrong.push(format!("<!-- example: {name} -->\n```text\n{value}```\n"));
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/receipts.md differs from the code; these blocks are what it computes:\n\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_examples_receipt_and_proofs_verify() {
    let example: std::collections::HashMap<_, _> = example().into_iter().collect();
    let verifier = ferry_tlog::Verifier::from_text(&example["key"]).unwrap();
    let receipt: Receipt = serde_json::from_str(&example["receipt"]).unwrap();
    let (leaf, receipts) = receipt.verify(&verifier).unwrap();
    assert_eq!(
        (receipts.size(), receipts.root()),
        (2, &root(&example["hashes"], "root (size 2)"))
    );
    // Later: the log's checkpoint of 3 still holds the leaf, and extends the
    // receipt's checkpoint.
    let inclusion: InclusionProof = serde_json::from_str(&example["inclusion"]).unwrap();
    let checkpoint = inclusion
        .verify(&verifier, receipt.index, &leaf.leaf_hash())
        .unwrap();
    assert_eq!(
        checkpoint.root(),
        &root(&example["hashes"], "root (size 3)")
    );
    let consistency: ConsistencyProof = serde_json::from_str(&example["consistency"]).unwrap();
    assert_eq!(
        consistency.verify(&verifier, &receipts).unwrap(),
        checkpoint
    );
}

/// The hash on the line of the hashes block that starts with `name`.
fn root(hashes: &str, name: &str) -> ferry_tlog::Hash {
    let line = hashes.lines().find(|line| line.starts_with(name)).unwrap();
    let hex = line.rsplit(' ').next().unwrap();
    hex::decode(hex).unwrap().try_into().unwrap()
}
