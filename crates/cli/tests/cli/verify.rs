//! `ferry verify` on receipts of logs built in process: every check asked for
//! must hold for exit 0; a tampered receipt, another file, another key, a log
//! rewritten after the fact or a forked saved checkpoint exit 1; inputs that
//! cannot be read exit 2.

use std::path::{Path, PathBuf};

use crate::harness::{TestLog, assert_exit, content, ferry, serve, stderr, stdout};

/// A receipt of leaf 2 of a log of 5, with the checkpoint of its first 3
/// leaves, the item's file and the key, in a fresh directory.
struct Case {
    dir: tempfile::TempDir,
    log: TestLog,
    index: u64,
}

impl Case {
    fn new() -> Self {
        let case = Self {
            dir: tempfile::tempdir().unwrap(),
            log: TestLog::new(7, 5, 0),
            index: 2,
        };
        let receipt = case.log.receipt_in(case.index, 3);
        let receipt = serde_json::to_vec_pretty(&receipt).unwrap();
        std::fs::write(case.path("r.json"), receipt).unwrap();
        std::fs::write(case.path("item.txt"), content(case.index)).unwrap();
        std::fs::write(case.path("log.key"), format!("{}\n", case.log.key())).unwrap();
        case
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

#[tokio::test]
async fn a_good_receipt_verifies_offline_with_its_key_and_file() {
    let case = Case::new();
    let key = case.log.key();
    let output = ferry(case.dir(), &["verify", "r.json", "--key", &key]).await;
    assert_exit(&output, 0);
    let out = stdout(&output);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "ok   signature    the receipt's checkpoint of 3 leaves is signed by the key of ferry.test/log",
            "ok   inclusion    item 01JQ3V7ZK9T6N2XQ8W4R5B1C02 is leaf 2 of log ferry.test/log, in the receipt's checkpoint of 3 leaves",
            "verified: all 2 checks hold",
        ]
    );

    let output = ferry(
        case.dir(),
        &[
            "verify",
            "r.json",
            "--key-file",
            "log.key",
            "--file",
            "item.txt",
        ],
    )
    .await;
    assert_exit(&output, 0);
    assert!(stdout(&output).contains("ok   file"));
    assert!(stdout(&output).contains("verified: all 3 checks hold"));
}

#[tokio::test]
async fn a_changed_byte_of_the_receipt_fails() {
    let case = Case::new();
    let good = std::fs::read(case.path("r.json")).unwrap();
    // Every 11th byte (the library's test changes every byte of a receipt).
    for at in (0..good.len()).step_by(11) {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        std::fs::write(case.path("bad.json"), &bad).unwrap();
        let output = ferry(case.dir(), &["verify", "bad.json", "--key-file", "log.key"]).await;
        assert_exit(&output, 1);
        assert!(
            stdout(&output).contains("FAIL"),
            "byte {at}: {}",
            stdout(&output)
        );
    }
}

#[tokio::test]
async fn another_file_or_another_key_fails() {
    let case = Case::new();
    std::fs::write(case.path("other.txt"), content(3)).unwrap();
    let output = ferry(
        case.dir(),
        &[
            "verify",
            "r.json",
            "--key-file",
            "log.key",
            "--file",
            "other.txt",
        ],
    )
    .await;
    assert_exit(&output, 1);
    assert!(stdout(&output).contains("ok   signature"));
    assert!(stdout(&output).contains("FAIL file"), "{}", stdout(&output));

    let other_key = TestLog::new(8, 1, 0).key();
    let output = ferry(case.dir(), &["verify", "r.json", "--key", &other_key]).await;
    assert_exit(&output, 1);
    assert!(stdout(&output).contains("FAIL signature"));
}

#[tokio::test]
async fn a_receipt_whose_proof_or_checkpoint_does_not_hold_the_leaf_fails_inclusion() {
    let case = Case::new();
    let good = case.log.receipt_in(case.index, 3);
    let bad = [
        // Another leaf's proof.
        ferry_tlog::Receipt {
            proof: case.log.receipt_in(1, 3).proof,
            ..good.clone()
        },
        // The proof of a larger tree than the checkpoint's.
        ferry_tlog::Receipt {
            proof: case.log.receipt_in(case.index, 5).proof,
            ..good.clone()
        },
        // A signed checkpoint that does not hold the leaf.
        ferry_tlog::Receipt {
            checkpoint: case.log.note(2),
            ..good
        },
    ];
    for receipt in bad {
        std::fs::write(
            case.path("bad.json"),
            serde_json::to_vec_pretty(&receipt).unwrap(),
        )
        .unwrap();
        let output = ferry(case.dir(), &["verify", "bad.json", "--key-file", "log.key"]).await;
        assert_exit(&output, 1);
        let out = stdout(&output);
        assert!(out.contains("ok   signature"), "{out}");
        assert!(out.contains("FAIL inclusion"), "{out}");
    }
}

#[tokio::test]
async fn what_cannot_be_read_is_a_usage_error() {
    let case = Case::new();
    let key = case.log.key();
    for args in [
        vec!["verify", "r.json"],
        vec!["verify", "missing.json", "--key", &key],
        vec!["verify", "r.json", "--key", "not a key"],
        vec!["verify", "r.json", "--key-file", "missing.key"],
        vec!["verify", "r.json", "--key", &key, "--file", "missing.txt"],
    ] {
        let output = ferry(case.dir(), &args).await;
        assert_exit(&output, 2);
        assert!(
            stderr(&output).starts_with("error: "),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let output = ferry(case.dir(), &["verify", "r.json"]).await;
    assert!(stderr(&output).contains("--key"), "it says what to do");
}

#[tokio::test]
async fn online_the_log_extends_the_receipts_checkpoint_and_the_saved_one() {
    let case = Case::new();
    std::fs::write(case.path("old.ckpt"), case.log.note(4)).unwrap();
    let latest = case.log.note(5);
    let admin = serve(TestLog::new(7, 5, 0), 2).await;
    let output = ferry(
        case.dir(),
        &[
            "verify",
            "r.json",
            "--key-file",
            "log.key",
            "--file",
            "item.txt",
            "--admin",
            &admin,
            "--checkpoint",
            "old.ckpt",
            "--save-checkpoint",
            "saved/new.ckpt",
        ],
    )
    .await;
    assert_exit(&output, 0);
    let out = stdout(&output);
    for check in [
        "signature",
        "inclusion",
        "file",
        "log",
        "checkpoint",
        "consistency",
        "save",
    ] {
        assert!(out.contains(&format!("ok   {check} ")), "{check}: {out}");
    }
    assert!(
        out.contains("ok   log          the receipt's checkpoint of 3 leaves is a prefix of the log's checkpoint of 5 leaves"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(case.path("saved/new.ckpt")).unwrap(),
        latest
    );

    // Next time, from the checkpoint saved.
    let output = ferry(
        case.dir(),
        &[
            "verify",
            "r.json",
            "--key-file",
            "log.key",
            "--admin",
            &admin,
            "--checkpoint",
            "saved/new.ckpt",
        ],
    )
    .await;
    assert_exit(&output, 0);
}

#[tokio::test]
async fn without_a_key_the_servers_is_used_and_the_user_told() {
    let case = Case::new();
    let admin = serve(TestLog::new(7, 5, 0), 0).await;
    let output = ferry(case.dir(), &["verify", "r.json", "--admin", &admin]).await;
    assert_exit(&output, 0);
    assert!(
        stderr(&output).contains("trust on first use"),
        "{}",
        stderr(&output)
    );
    assert!(
        !stdout(&output).contains(&case.log.key()),
        "no key is printed"
    );
}

#[tokio::test]
async fn a_log_rewritten_after_the_receipt_fails_the_log_check() {
    let case = Case::new();
    // The same key, but leaf 2 is another item.
    let admin = serve(TestLog::new(7, 5, 1), 0).await;
    let output = ferry(
        case.dir(),
        &[
            "verify",
            "r.json",
            "--key-file",
            "log.key",
            "--admin",
            &admin,
        ],
    )
    .await;
    assert_exit(&output, 1);
    let out = stdout(&output);
    assert!(out.contains("ok   signature"), "{out}");
    assert!(out.contains("ok   inclusion"), "{out}");
    assert!(out.contains("FAIL log"), "{out}");
    assert!(out.contains("the log was rewritten"), "{out}");
}

#[tokio::test]
async fn a_saved_checkpoint_of_a_forked_log_fails_consistency() {
    let case = Case::new();
    // The server's log holds the receipt's leaf, but what was saved earlier was
    // another history of 4 leaves signed by the same key.
    let mut fork = TestLog::new(7, 4, 0);
    fork.entries.clear();
    fork.tree = ferry_tlog::Tree::new();
    for n in [0, 1, 2, 9] {
        fork.push(&content(n));
    }
    std::fs::write(case.path("fork.ckpt"), fork.note(4)).unwrap();
    let admin = serve(TestLog::new(7, 5, 0), 0).await;
    let output = ferry(
        case.dir(),
        &[
            "verify",
            "r.json",
            "--key-file",
            "log.key",
            "--admin",
            &admin,
            "--checkpoint",
            "fork.ckpt",
            "--save-checkpoint",
            "fork.ckpt",
        ],
    )
    .await;
    assert_exit(&output, 1);
    let out = stdout(&output);
    assert!(out.contains("ok   log"), "{out}");
    assert!(out.contains("ok   checkpoint"), "{out}");
    assert!(out.contains("FAIL consistency"), "{out}");
    assert_eq!(
        std::fs::read_to_string(case.path("fork.ckpt")).unwrap(),
        fork.note(4),
        "a failed run saves nothing"
    );

    // A fork of the same size: two different trees of 5 leaves.
    let mut same_size = TestLog::new(7, 4, 0);
    same_size.push(b"another fifth item");
    std::fs::write(case.path("same.ckpt"), same_size.note(5)).unwrap();
    let output = ferry(
        case.dir(),
        &[
            "verify",
            "r.json",
            "--key-file",
            "log.key",
            "--admin",
            &admin,
            "--checkpoint",
            "same.ckpt",
        ],
    )
    .await;
    assert_exit(&output, 1);
    assert!(
        stdout(&output).contains("FAIL consistency"),
        "{}",
        stdout(&output)
    );
}

#[tokio::test]
async fn an_unreachable_admin_api_is_a_failed_check() {
    let case = Case::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let output = ferry(
        case.dir(),
        &[
            "verify",
            "r.json",
            "--key-file",
            "log.key",
            "--admin",
            &admin,
        ],
    )
    .await;
    assert_exit(&output, 1);
    assert!(
        stdout(&output).contains("cannot reach the admin API"),
        "{}",
        stdout(&output)
    );
}

#[tokio::test]
async fn a_receipt_that_does_not_verify_is_not_checked_against_the_log() {
    let case = Case::new();
    let other_key = TestLog::new(8, 1, 0).key();
    let admin = serve(TestLog::new(7, 5, 0), 0).await;
    let output = ferry(
        case.dir(),
        &["verify", "r.json", "--key", &other_key, "--admin", &admin],
    )
    .await;
    assert_exit(&output, 1);
    let out = stdout(&output);
    assert!(out.contains("FAIL signature"), "{out}");
    assert!(
        out.contains("skip log          the receipt does not verify"),
        "{out}"
    );
    assert!(out.contains("NOT VERIFIED: 1 of 1 checks failed"), "{out}");
}
