//! The server never destroys what it cannot read: a restart whose storage keys
//! do not open the items already stored (a key file not mounted, a typo, the
//! wrong file, a rotation without `--old-storage-keys`) refuses to start, names
//! the key ids it needs and changes nothing; with the right keys everything is
//! back. `--allow-missing-keys` starts anyway and touches nothing it cannot read.

use crate::harness::{Server, bin};
use ferry_client::{Options, Session};
use ferry_protocol::Meta;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// 320 texts of 240 kB: two 64 MiB log segments.
const ITEMS: u32 = 320;
const SIZE: u32 = 240_000;

/// Sends the texts over one session; their ids and SHA-256 digests.
async fn send_texts(server: &Server) -> BTreeMap<String, String> {
    let mut session = Session::connect(&server.tcp(), Options::default())
        .await
        .unwrap();
    let mut sent = BTreeMap::new();
    for i in 0..ITEMS {
        let text: Vec<u8> = (0..SIZE).map(|j| b'a' + ((i * 7 + j) % 26) as u8).collect();
        let receipt = session
            .send_bytes(Meta::text(false), &text, None)
            .await
            .unwrap();
        sent.insert(receipt.id.unwrap(), hex::encode(Sha256::digest(&text)));
    }
    session.end().await.unwrap();
    sent
}

/// The name and size of every file under `dir`, to show nothing changed.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, u64> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                todo.push(entry.path());
            } else if entry.file_name() != "LOCK" {
                files.insert(entry.path(), meta.len());
            }
        }
    }
    files
}

/// Runs `ferry-server` on `data` with `extra` flags, expecting it to refuse to
/// start: its exit status is a failure, and its stderr is returned.
fn refused_start(data: &Path, extra: &[&str]) -> String {
    let mut child = Command::new(bin("ferry-server"))
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .env("FERRY_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read as it comes, so that a full pipe never blocks the server.
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
        stderr
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("ferry-server {extra:?} started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = reader.join().unwrap();
    assert!(
        !status.success(),
        "{extra:?} exited with {status}: {stderr}"
    );
    stderr
}

/// Every item sent is listed and reads back identical.
async fn assert_all_intact(server: &Server, sent: &BTreeMap<String, String>) {
    let admin = server.admin();
    let listed = admin.all_items().await;
    assert_eq!(listed.len(), sent.len(), "items listed");
    for (id, sha256) in sent {
        assert_eq!(
            admin.content_digest(id).await,
            (u64::from(SIZE), sha256.clone()),
            "{id}"
        );
    }
}

fn stop(server: Server) -> tempfile::TempDir {
    let Server { mut running, dir } = server;
    assert!(running.terminate().success());
    drop(running);
    dir
}

#[tokio::test]
async fn a_restart_without_the_storage_key_refuses_to_start_and_loses_nothing() {
    let server = Server::start(&[]);
    let sent = send_texts(&server).await;
    let data = server.data_dir();
    let key = data.join("storage.key");
    let key_id = ferry_crypto::StorageKey::load(&key)
        .unwrap()
        .id()
        .to_owned();
    assert!(data.join("store/segments/00000002.log").exists());
    let dir = stop(server);
    let before = snapshot(&data.join("store"));

    // The key file is not there (a secret not mounted, a typo).
    let missing = dir.path().join("not-mounted/storage.key");
    let stderr = refused_start(&data, &["--storage-key", missing.to_str().unwrap()]);
    for needed in [key_id.as_str(), "--storage-key", "--old-storage-keys"] {
        assert!(stderr.contains(needed), "no {needed:?} in:\n{stderr}");
    }
    assert!(!missing.exists(), "a new key was created");

    // The wrong key file (it exists, and opens none of the items).
    let wrong = dir.path().join("wrong.key");
    let wrong_key = ferry_crypto::StorageKey::generate();
    std::fs::write(&wrong, format!("{}\n", *wrong_key.to_base64())).unwrap();
    let stderr = refused_start(&data, &["--storage-key", wrong.to_str().unwrap()]);
    assert!(
        stderr.contains(&key_id) && stderr.contains(wrong_key.id()),
        "{stderr}"
    );
    assert_eq!(snapshot(&data.join("store")), before, "the store changed");

    // With the right key, everything is there.
    let server = Server::start_in(dir, &[]);
    assert_all_intact(&server, &sent).await;
    let dir = stop(server);
    let before = snapshot(&data.join("store"));

    // A rotation without --old-storage-keys: the old key moved away.
    let old = dir.path().join("old.key");
    std::fs::rename(&key, &old).unwrap();
    let stderr = refused_start(&data, &[]);
    assert!(stderr.contains(&key_id), "{stderr}");
    assert!(!key.exists(), "a new key was created");
    assert_eq!(snapshot(&data.join("store")), before, "the store changed");

    // Starting anyway serves what it can read (with a new key for new items)
    // and touches nothing else but the catalog, which is derived from the rest
    // and rebuilt to list what can be read.
    let server = Server::start_in(dir, &["--allow-missing-keys"]);
    assert!(server.admin().all_items().await.is_empty());
    assert!(key.exists(), "no key for new items");
    let dir = stop(server);
    let after = snapshot(&data.join("store"));
    let catalog = data.join("store/catalog");
    for (file, len) in before
        .iter()
        .filter(|(file, _)| !file.starts_with(&catalog))
    {
        assert_eq!(after.get(file), Some(len), "{} changed", file.display());
    }

    // Given the old key, everything is back.
    let server = Server::start_in(dir, &["--old-storage-keys", old.to_str().unwrap()]);
    assert_all_intact(&server, &sent).await;
}
