//! A full disk: the data directory on a 16 MiB tmpfs, filled by a legacy client.
//! Every transfer is answered (`OK` or `ERROR: …`, never silence or a dropped
//! connection), no reply names a path or an OS error, small items keep being
//! answered while the disk is full, new items are accepted once deletes through
//! the admin API free space, and after a SIGKILL and a restart exactly the
//! acknowledged, undeleted items are listed, each with its SHA-256.
//!
//! Mounting needs root (the test machine runs tests as root); where mounting is
//! not permitted the test says so and does nothing else.

use crate::harness::Server;
use crate::harness::raw::{self, Raw};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A tmpfs mounted for the test; unmounted on drop, whatever happened.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status();
        match status {
            Ok(status) if status.success() => Some(Mount(dir.to_owned())),
            _ => None,
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// One transfer's reply, checked: answered, and revealing nothing of the server.
async fn send(addr: &str, data: &[u8]) -> String {
    let mut conn = Raw::connect(addr).await;
    let reply = conn
        .exchange(&raw::transfer(raw::text_meta(false), data))
        .await;
    assert!(
        reply == "OK" || reply.starts_with("ERROR: "),
        "a legacy reply: {reply:?}"
    );
    assert!(
        !reply.contains('/') && !reply.contains("os error") && !reply.contains("No space"),
        "a reply names no path or OS detail: {reply:?}"
    );
    conn.end().await;
    reply
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `len` bytes unique to `n`.
fn item(n: usize, len: usize) -> Vec<u8> {
    let line = format!("item {n:06} of the disk-full test\n");
    line.bytes().cycle().take(len).collect()
}

#[tokio::test]
async fn a_full_disk_is_answered_with_a_generic_error_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_mount) = Mount::tmpfs(&dir.path().join("data"), "16m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root); the disk-full test did not run"
        );
        return;
    };
    let server = Server::start_in(dir, &[]);
    let addr = server.tcp();
    let mut acked: BTreeMap<String, usize> = BTreeMap::new();
    let mut refused = 0;
    let mut n = 0;

    // Large items (a file each) until the disk is full and a few past it.
    while refused < 3 {
        assert!(n < 60, "16 MiB never filled up");
        let data = item(n, 1 << 20);
        if send(&addr, &data).await == "OK" {
            acked.insert(sha256(&data), n);
        } else {
            refused += 1;
        }
        n += 1;
    }
    assert!(acked.len() >= 5, "some items fit first: {}", acked.len());

    // Small items keep being answered while the disk is full.
    for _ in 0..20 {
        let data = item(n, 200);
        if send(&addr, &data).await == "OK" {
            acked.insert(sha256(&data), n);
        }
        n += 1;
    }

    let admin = server.admin();
    let metrics = admin.metrics().await;
    assert!(
        metrics.contains(r#"outcome="failed""#),
        "/metrics counts server failures apart from refusals:\n{metrics}"
    );

    // Deletes free space; new large items are accepted again.
    let listed = admin.items_oldest_first().await;
    let mut deleted = Vec::new();
    for listed in listed.iter().filter(|i| i["size"] == 1 << 20).take(4) {
        assert_eq!(admin.delete(listed["id"].as_str().unwrap()).await, 204);
        deleted.push(listed["sha256"].as_str().unwrap().to_owned());
    }
    for hash in &deleted {
        acked.remove(hash);
    }
    for _ in 0..2 {
        let data = item(n, 1 << 20);
        assert_eq!(send(&addr, &data).await, "OK", "space was freed by deletes");
        acked.insert(sha256(&data), n);
        n += 1;
    }

    // After a crash, exactly the acknowledged, undeleted items are there.
    let server = server.crash_and_restart(&[]);
    let listed: BTreeMap<String, String> = server
        .admin()
        .all_items()
        .await
        .into_iter()
        .map(|i| {
            (
                i["sha256"].as_str().unwrap().to_owned(),
                i["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<_> = acked.keys().cloned().collect();
    let found: Vec<_> = listed.keys().cloned().collect();
    assert_eq!(found, expected, "listed items after the restart");
    let admin = server.admin();
    for (hash, id) in &listed {
        let (_, content_hash) = admin.content_digest(id).await;
        assert_eq!(&content_hash, hash, "item {id} reads back whole");
    }
}
