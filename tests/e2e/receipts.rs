//! The signed log against the real server: every stored item has a receipt that
//! verifies with the log's public key, and an inclusion proof in a signed
//! checkpoint; admin reads, deletes and expiries are leaves, each naming the
//! credential and address; every two checkpoints the server published are
//! linked by a consistency proof; a changed leaf or a changed checkpoint on disk
//! is caught at the next start (`/readyz` unhealthy, the metric at 0,
//! `ferry-server verify-log` exits 1), and nothing is published over it.

use std::path::Path;
use std::time::Duration;

use ferry_protocol::Serialization;
use ferry_tlog::{Checkpoint, ConsistencyProof, InclusionProof, Receipt, Verifier};
use serde_json::{Value, json};

use crate::harness::admin::{id_of, send_dict, send_text, session};
use crate::harness::{Admin, Server, bin, wait_until};

const FAST: [&str; 2] = ["--checkpoint-interval-ms", "100"];
const PATIENCE: Duration = Duration::from_secs(30);

async fn key(admin: &Admin) -> Verifier {
    let text = admin
        .http
        .get(format!("{}/api/log/key", admin.base))
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 200);
    Verifier::from_text(text.text().await.unwrap().trim()).unwrap()
}

/// The latest checkpoint note, unauthenticated.
async fn checkpoint(admin: &Admin) -> String {
    let response = admin
        .http
        .get(format!("{}/api/log/checkpoint", admin.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// `GET path` without the token: the status and the JSON.
async fn open_get(admin: &Admin, path: &str) -> (u16, Value) {
    let response = admin
        .http
        .get(format!("{}{path}", admin.base))
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn inclusion(admin: &Admin, index: u64) -> InclusionProof {
    let (status, json) = open_get(admin, &format!("/api/log/inclusion?index={index}")).await;
    assert_eq!(status, 200, "{json}");
    serde_json::from_value(json).unwrap()
}

async fn entries(admin: &Admin) -> Vec<Value> {
    let json = admin.get_json("/api/log/entries?from=0&limit=500").await;
    json["entries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_item_has_a_receipt_that_verifies_in_a_signed_checkpoint() {
    let server = Server::start(&FAST);
    let admin = server.admin();
    let verifier = key(&admin).await;
    let mut s = session(&server).await;
    let mut sent = Vec::new();
    for n in 0..5 {
        let reply = send_dict(&mut s, json!({ "n": n }), Serialization::Json, n % 2 == 0).await;
        // The native reply carries the receipt, at once.
        let native: Receipt =
            serde_json::from_value(reply.signed.clone().expect("a receipt")).unwrap();
        assert_eq!(Some(&native.id), reply.id.as_ref());
        native.verify(&verifier).unwrap();
        sent.push(id_of(&reply));
    }
    sent.push(id_of(
        &send_text(&mut s, b"a text file", Some("a.txt"), true).await,
    ));
    s.end().await.unwrap();

    for id in &sent {
        let receipt: Receipt =
            serde_json::from_value(admin.get_json(&format!("/api/items/{id}/receipt")).await)
                .unwrap();
        assert_eq!(&receipt.id, id);
        let (leaf, held_by) = receipt.verify(&verifier).unwrap();
        assert!(held_by.size() > receipt.index);
        let item = admin.get_json(&format!("/api/items/{id}")).await;
        assert_eq!(receipt.sha256, item["sha256"].as_str().unwrap());
        assert_eq!(receipt.size, item["size"].as_u64().unwrap());
        let checkpoint = inclusion(&admin, receipt.index)
            .await
            .verify(&verifier, receipt.index, &leaf.leaf_hash())
            .unwrap();
        assert!(checkpoint.size() > receipt.index);
        // Another item's leaf does not verify at this index.
        let other = inclusion(&admin, receipt.index).await;
        let wrong = ferry_tlog::Entry::aborted(id, "2026-01-01T00:00:00Z");
        assert!(
            other
                .verify(&verifier, receipt.index, &wrong.leaf_hash())
                .is_err()
        );
    }
    // A changed receipt fails.
    let json = admin
        .get_json(&format!("/api/items/{}/receipt", sent[0]))
        .await;
    let mut changed: Receipt = serde_json::from_value(json).unwrap();
    changed.size += 1;
    assert!(changed.verify(&verifier).is_err());
}

#[tokio::test]
async fn reads_deletes_and_expiries_are_logged_and_every_two_checkpoints_are_consistent() {
    let mut args = FAST.to_vec();
    args.extend([
        "--retention",
        "dict.xml=1s",
        "--retention-sweep-interval",
        "1",
    ]);
    let server = Server::start(&args);
    let admin = server.admin();
    let verifier = key(&admin).await;
    let mut notes = vec![checkpoint(&admin).await];
    let mut s = session(&server).await;
    let kept = id_of(&send_dict(&mut s, json!({"keep": 1}), Serialization::Json, true).await);
    let doomed = id_of(&send_dict(&mut s, json!({"drop": 1}), Serialization::Json, true).await);
    let expiring = id_of(&send_dict(&mut s, json!({"old": 1}), Serialization::Xml, true).await);
    s.end().await.unwrap();
    let next_checkpoint = async |notes: &mut Vec<String>| {
        let last = notes.last().unwrap().clone();
        wait_until(PATIENCE, async || match checkpoint(&admin).await {
            note if note != last => {
                notes.push(note);
                Ok(())
            }
            _ => Err("no new checkpoint yet".to_owned()),
        })
        .await;
    };
    next_checkpoint(&mut notes).await;

    let content = admin.get(&format!("/api/items/{kept}/content")).await;
    assert_eq!(content.status(), 200);
    let response = admin
        .http
        .delete(format!("{}/api/items/{doomed}", admin.base))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    wait_until(PATIENCE, async || {
        match admin
            .get(&format!("/api/items/{expiring}"))
            .await
            .status()
            .as_u16()
        {
            404 => Ok(()),
            status => Err(format!("{expiring} not expired yet ({status})")),
        }
    })
    .await;
    next_checkpoint(&mut notes).await;

    let log = entries(&admin).await;
    let find = |event: &str, id: &str| {
        log.iter()
            .find(|e| e["event"] == event && e["id"] == id)
            .unwrap_or_else(|| panic!("no {event} leaf for {id}: {log:#?}"))
            .clone()
    };
    let read = find("read", &kept);
    assert_eq!(read["what"], "content");
    assert!(
        read["credential"].as_str().unwrap().starts_with("token:"),
        "{read}"
    );
    assert!(!read["leaf"].as_str().unwrap().contains(&admin.token));
    assert_eq!(read["address"], "127.0.0.1");
    let deleted = find("deleted", &doomed);
    assert_eq!(deleted["credential"], read["credential"]);
    assert!(find("stored", &doomed)["index"].as_u64() < deleted["index"].as_u64());
    let expired = find("expired", &expiring);
    assert!(
        expired["leaf"]
            .as_str()
            .unwrap()
            .contains("rule dict.xml=1s"),
        "{expired}"
    );
    // Reading the metadata is logged too.
    admin.get_json(&format!("/api/items/{kept}")).await;
    wait_until(PATIENCE, async || {
        let reads = entries(&admin)
            .await
            .into_iter()
            .filter(|e| e["event"] == "read" && e["id"] == kept.as_str() && e["what"] == "metadata")
            .count();
        if reads > 0 {
            Ok(())
        } else {
            Err("no metadata read".into())
        }
    })
    .await;
    next_checkpoint(&mut notes).await;

    // Every two checkpoints published are consistent.
    let checkpoints: Vec<Checkpoint> = notes
        .iter()
        .map(|note| verifier.verify_note(note).unwrap())
        .collect();
    for (i, old) in checkpoints.iter().enumerate() {
        for new in &checkpoints[i + 1..] {
            let path = format!("/api/log/consistency?from={}&to={}", old.size(), new.size());
            let (status, json) = open_get(&admin, &path).await;
            assert_eq!(status, 200, "{json}");
            let proof: ConsistencyProof = serde_json::from_value(json).unwrap();
            assert_eq!(&proof.verify(&verifier, old).unwrap(), new);
        }
    }
    // A checkpoint of another history does not verify against the newest.
    let newest = checkpoints.last().unwrap();
    let forged = Checkpoint::new(newest.origin(), 2, [7; 32]).unwrap();
    let (_, json) = open_get(
        &admin,
        &format!("/api/log/consistency?from=2&to={}", newest.size()),
    )
    .await;
    let proof: ConsistencyProof = serde_json::from_value(json).unwrap();
    assert!(proof.verify(&verifier, &forged).is_err());
}

/// Flips one byte of the first leaf's text in the ledger's first segment.
fn flip_a_leaf_byte(data: &Path) {
    let path = data.join("store/ledger/00000000.log");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(b"event stored".len())
        .position(|w| w == b"event stored")
        .expect("a stored leaf");
    bytes[at + 6] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
}

/// Flips one byte of the saved checkpoint's root.
fn flip_a_checkpoint_byte(data: &Path) {
    let path = data.join("store/ledger/checkpoint");
    let text = std::fs::read_to_string(&path).unwrap();
    let root_line = text.lines().nth(2).unwrap().to_owned();
    let mut changed = root_line.clone().into_bytes();
    changed[0] = if changed[0] == b'A' { b'B' } else { b'A' };
    let text = text.replacen(&root_line, std::str::from_utf8(&changed).unwrap(), 1);
    std::fs::write(&path, text).unwrap();
}

async fn tampered_start_is_caught(tamper: fn(&Path)) {
    let server = Server::start(&FAST);
    let admin = server.admin();
    let mut s = session(&server).await;
    for n in 0..3 {
        send_dict(&mut s, json!({ "n": n }), Serialization::Json, true).await;
    }
    s.end().await.unwrap();
    // Wait for a checkpoint that covers them.
    wait_until(PATIENCE, async || {
        let note = checkpoint(&admin).await;
        match note.lines().nth(1).and_then(|l| l.parse::<u64>().ok()) {
            Some(size) if size >= 3 => Ok(()),
            _ => Err(format!("not covered yet: {note}")),
        }
    })
    .await;
    let Server { mut running, dir } = server;
    assert!(running.terminate().success());
    drop(running);
    tamper(&dir.path().join("data"));

    let verify = std::process::Command::new(bin("ferry-server"))
        .args([
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
            "verify-log",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(
        verify.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(stdout.contains("does not verify"), "{stdout}");

    let server = Server::start_in(dir, &FAST);
    let admin = server.admin();
    let ready = admin
        .http
        .get(format!("{}/readyz", admin.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["error"]["code"], "log_unverified", "{body}");
    let metrics = admin.metrics().await;
    assert!(
        metrics.lines().any(|l| l == "ferry_log_verified 0"),
        "{metrics}"
    );
    let (status, _) = open_get(&admin, "/api/log/inclusion?index=0").await;
    assert_ne!(
        status, 200,
        "a proof was served over a log that does not verify"
    );
    // Items are still served; the check on demand says the same.
    let check = admin
        .http
        .post(format!("{}/api/log/verify", admin.base))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(check["ok"], false, "{check}");
}

#[tokio::test]
async fn a_changed_leaf_on_disk_is_caught_at_start() {
    tampered_start_is_caught(flip_a_leaf_byte).await;
}

#[tokio::test]
async fn a_changed_checkpoint_on_disk_is_caught_at_start() {
    tampered_start_is_caught(flip_a_checkpoint_byte).await;
}

fn run(program: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap()
}

fn assert_ok(output: &std::process::Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: {:?}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `ferry send --receipts`, then `ferry verify` offline and online and the
/// Python-only verifier, on what the real server returned; a changed file or
/// receipt fails both.
#[tokio::test]
async fn ferry_send_saves_receipts_that_ferry_verify_and_python_check() {
    let server = Server::start(&FAST);
    let admin = server.admin();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("notes.txt");
    std::fs::write(&file, "receipts for everything\n").unwrap();
    let receipts = work.path().join("receipts");
    let key_text = key(&admin).await.to_string();
    let key_file = work.path().join("log.pub");
    std::fs::write(&key_file, format!("{key_text}\n")).unwrap();
    let fernet = server.fernet_key_file();
    let send = run(
        &bin("ferry"),
        &[
            "send",
            "--server",
            &server.tcp(),
            "--fernet-key",
            fernet.to_str().unwrap(),
            "--receipts",
            receipts.to_str().unwrap(),
            "file",
            file.to_str().unwrap(),
        ],
    );
    assert_ok(&send, "ferry send --receipts");
    let saved: Vec<_> = std::fs::read_dir(&receipts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    let receipt_file = saved[0].to_str().unwrap().to_owned();
    let checkpoint_file = work.path().join("checkpoint.txt");
    let admin_url = server.admin_url();
    let (key_path, file_path) = (key_file.to_str().unwrap(), file.to_str().unwrap());

    let offline = run(
        &bin("ferry"),
        &[
            "verify",
            &receipt_file,
            "--key-file",
            key_path,
            "--file",
            file_path,
        ],
    );
    assert_ok(&offline, "ferry verify offline");
    let online = [
        "verify",
        &receipt_file,
        "--key-file",
        key_path,
        "--admin",
        &admin_url,
        "--save-checkpoint",
        checkpoint_file.to_str().unwrap(),
    ];
    assert_ok(&run(&bin("ferry"), &online), "ferry verify online");
    // Later, against the saved checkpoint: consistent.
    let mut s = session(&server).await;
    send_dict(&mut s, json!({"later": true}), Serialization::Json, true).await;
    s.end().await.unwrap();
    let later = [
        "verify",
        &receipt_file,
        "--key-file",
        key_path,
        "--admin",
        &admin_url,
        "--checkpoint",
        checkpoint_file.to_str().unwrap(),
    ];
    assert_ok(
        &run(&bin("ferry"), &later),
        "ferry verify against a saved checkpoint",
    );

    // The Python-only verifier, on the receipt and its inclusion proof.
    let receipt: Receipt = serde_json::from_slice(&std::fs::read(&receipt_file).unwrap()).unwrap();
    let proof = inclusion(&admin, receipt.index).await;
    let proof_file = work.path().join("inclusion.json");
    std::fs::write(&proof_file, serde_json::to_vec(&proof).unwrap()).unwrap();
    let script = crate::harness::python_script("verify_receipt.py");
    let python = |receipt: &str| {
        run(
            Path::new("python3"),
            &[
                script.to_str().unwrap(),
                "--key",
                &key_text,
                receipt,
                "--inclusion",
                proof_file.to_str().unwrap(),
            ],
        )
    };
    assert_ok(&python(&receipt_file), "python verifier");

    // Changed: the file, or one byte of the receipt.
    std::fs::write(&file, "receipts for everything!\n").unwrap();
    let changed = run(
        &bin("ferry"),
        &[
            "verify",
            &receipt_file,
            "--key-file",
            key_path,
            "--file",
            file_path,
        ],
    );
    assert_eq!(changed.status.code(), Some(1));
    let text = std::fs::read_to_string(&receipt_file).unwrap();
    let forged = text.replacen(
        &receipt.sha256,
        &receipt.sha256.replace('a', "b").replace('0', "1"),
        1,
    );
    assert_ne!(forged, text);
    let forged_file = work.path().join("forged.json");
    std::fs::write(&forged_file, forged).unwrap();
    let forged_path = forged_file.to_str().unwrap();
    assert_eq!(
        run(
            &bin("ferry"),
            &["verify", forged_path, "--key-file", key_path]
        )
        .status
        .code(),
        Some(1)
    );
    assert_eq!(python(forged_path).status.code(), Some(1));
}

/// The gateway's `201` carries the receipt, which verifies.
#[tokio::test]
async fn the_gateways_created_answer_carries_the_receipt() {
    let server = Server::start(&FAST);
    let admin = server.admin();
    let verifier = key(&admin).await;
    let gateway = crate::harness::gateway::Gateway::start(&server, &server.tcp(), &[]);
    let reply = gateway
        .post_dict("json", true, &json!({"via": "http"}))
        .await;
    let id = reply.id();
    let receipt: Receipt = serde_json::from_value(reply.body["receipt"].clone())
        .unwrap_or_else(|err| panic!("{err}: {}", reply.body));
    assert_eq!(receipt.id, id);
    assert_eq!(receipt.sha256, reply.body["sha256"].as_str().unwrap());
    receipt.verify(&verifier).unwrap();
}
