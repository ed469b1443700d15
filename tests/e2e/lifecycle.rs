//! The server's life around the transfers: keys and tokens on disk, logs that keep
//! secrets out, graceful shutdown, settings from files and the environment, and
//! the legacy outputs (`--print`, `--export-dir`).

use crate::harness::{Running, Server, bin, wait_until};
use ferry_client::{ClientError, Options, Receipt, Session};
use ferry_crypto::FernetKey;
use ferry_protocol::{Meta, Serialization};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn keys_and_the_token_are_created_private_and_never_logged() {
    let server = Server::start_logged(&[]);
    let data = server.data_dir();
    for file in ["fernet.key", "storage.key", "admin.token"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    let fernet = std::fs::read_to_string(data.join("fernet.key")).unwrap();
    let storage = std::fs::read_to_string(data.join("storage.key")).unwrap();
    let token = server.token();
    // Python's Fernet accepts the key Ferry made.
    let status = std::process::Command::new("python3").args(["-c", "import sys; from cryptography.fernet import Fernet; Fernet(open(sys.argv[1],'rb').read().strip())"]).arg(data.join("fernet.key")).status().unwrap();
    assert!(status.success());

    let mut session = Session::connect(
        &server.tcp(),
        Options {
            fernet: Some(Arc::new(FernetKey::load(&data.join("fernet.key")).unwrap())),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    session
        .send_bytes(Meta::text(true), b"secret stuff", None)
        .await
        .unwrap();
    session.end().await.unwrap();
    let unauthorized = crate::harness::http()
        .get(format!("{}/api/items", server.admin_url()))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);

    let log = std::fs::read_to_string(server.log_file()).unwrap();
    assert!(
        log.contains("admin.token"),
        "the log says where the token is:\n{log}"
    );
    for secret in [fernet.trim(), storage.trim(), token.as_str()] {
        assert!(!log.contains(secret), "a secret is in the log");
    }
}

#[test]
fn ferry_keygen_writes_a_private_python_compatible_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.key");
    let output = std::process::Command::new(bin("ferry"))
        .arg("keygen")
        .arg(&path)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(mode(&path), 0o600);
    let status = std::process::Command::new("python3").args(["-c", "import sys; from cryptography.fernet import Fernet; f=Fernet(open(sys.argv[1],'rb').read().strip()); assert f.decrypt(f.encrypt(b'x'))==b'x'"]).arg(&path).status().unwrap();
    assert!(status.success());
    // It never overwrites a key.
    let again = std::process::Command::new(bin("ferry"))
        .arg("keygen")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!again.status.success());
}

/// A server on a fresh directory that logs at debug level to [`Server::log_file`].
fn start_debug_logged(grace: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    Server::start_with(
        dir,
        &["--shutdown-grace", grace],
        &[("FERRY_LOG", "debug")],
        Stdio::from(log),
    )
}

/// Waits until the server's log says `what`.
async fn wait_for_log(log: &Path, what: &str) {
    wait_until(Duration::from_secs(20), async || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        match text.contains(what) {
            true => Ok(()),
            false => Err(format!("the log does not say {what:?}:\n{text}")),
        }
    })
    .await
}

type Sending = tokio::task::JoinHandle<Result<Receipt, ClientError>>;

/// Opens a text transfer fed through the returned writer, sends `first` bytes of
/// it, and waits until the server's log shows the transfer has begun.
async fn transfer_in_flight(
    running: &Running,
    log: &Path,
    first: usize,
    name: Option<&'static str>,
) -> (tokio::io::DuplexStream, Sending) {
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let mut session = Session::connect(&running.addr("tcp"), Options::default())
        .await
        .unwrap();
    let sending = tokio::spawn(async move {
        session
            .send_reader(Meta::text(false), reader, name, &mut |_| {})
            .await
    });
    writer.write_all(&vec![b'a'; first]).await.unwrap();
    wait_for_log(log, "transfer started").await;
    (writer, sending)
}

#[tokio::test]
async fn shutdown_lets_a_transfer_in_flight_finish_and_refuses_new_connections() {
    let Server { mut running, dir } = start_debug_logged("20");
    let log = dir.path().join("server.log");
    let (mut writer, sending) = transfer_in_flight(&running, &log, 200_000, Some("late.txt")).await;

    running.send_term();
    wait_for_log(&log, "stopped accepting").await;
    assert!(
        tokio::net::TcpStream::connect(running.addr("tcp"))
            .await
            .is_err(),
        "a stopping server accepts no new connection"
    );

    writer.write_all(&vec![b'b'; 100_000]).await.unwrap();
    drop(writer);
    let receipt = sending
        .await
        .unwrap()
        .expect("the transfer in flight completes");
    assert_eq!(receipt.size, 300_000);
    let status = running.child.wait().unwrap();
    assert!(status.success(), "clean exit: {status:?}");

    // After a restart the item is there, whole.
    drop(running);
    let server = Server::start_in(dir, &[]);
    let items = server.admin().all_items().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["size"], 300_000);
    assert_eq!(items[0]["name"], "late.txt");
}

#[tokio::test]
async fn a_transfer_that_outlasts_the_grace_period_is_discarded() {
    let Server { mut running, dir } = start_debug_logged("1");
    let log = dir.path().join("server.log");
    let (writer, sending) = transfer_in_flight(&running, &log, 500_000, None).await;
    running.send_term();
    let status = running.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    drop(writer);
    assert!(
        sending.await.unwrap().is_err(),
        "the unfinished transfer is not acknowledged"
    );
    drop(running);
    let server = Server::start_in(dir, &[]);
    assert!(
        server.admin().all_items().await.is_empty(),
        "nothing partial is listed"
    );
    let leftovers: Vec<_> = walk(&server.data_dir().join("store"))
        .into_iter()
        .filter(|path| path.to_string_lossy().contains(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn settings_come_from_a_toml_file_and_the_environment_with_flags_winning() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(
        &config,
        "max_dict_bytes = 100\nallow_pickle = false\nencryption = \"disabled\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    let envs = [("FERRY_CONFIG", config.as_str()), ("FERRY_MAX_DEPTH", "2")];
    let server = Server::start_with(dir, &["--allow-pickle", "true"], &envs, Stdio::inherit());
    let data = server.data_dir();
    let mut session = Session::connect(
        &server.tcp(),
        Options {
            fernet: Some(Arc::new(FernetKey::generate())),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let small = json!({"a": 1}).as_object().unwrap().clone();
    // The flag beats the file: pickle is accepted.
    session
        .send_dict(&small, Serialization::Binary, false)
        .await
        .expect("pickle accepted");
    // The file: dictionaries over 100 bytes are refused, and so is encryption.
    let big = json!({"a": "x".repeat(200)}).as_object().unwrap().clone();
    let refused = session
        .send_dict(&big, Serialization::Json, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("limit"), "{refused}");
    let refused = session
        .send_dict(&small, Serialization::Json, true)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("encryption"), "{refused}");
    // The environment: nesting deeper than 2 is refused.
    let deep = json!({"a": {"b": {"c": 1}}}).as_object().unwrap().clone();
    let refused = session
        .send_dict(&deep, Serialization::Json, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("deeper"), "{refused}");
    session.end().await.unwrap();
    assert!(
        !data.join("fernet.key").exists(),
        "no Fernet key is made when encryption is disabled"
    );
}

#[tokio::test]
async fn print_and_export_give_the_legacy_outputs() {
    let export = tempfile::tempdir().unwrap();
    let server = Server::start(&["--print", "--export-dir", export.path().to_str().unwrap()]);
    let mut session = Session::connect(&server.tcp(), Options::default())
        .await
        .unwrap();
    let dict = json!({"sensor": "s-1", "nested": {"v": [1, 2]}})
        .as_object()
        .unwrap()
        .clone();
    session
        .send_dict(&dict, Serialization::Xml, false)
        .await
        .unwrap();
    session
        .send_dict(&dict, Serialization::Binary, false)
        .await
        .unwrap();
    session
        .send_bytes(Meta::text(false), b"plain text\n", Some("notes.txt"))
        .await
        .unwrap();
    session.end().await.unwrap();

    let mut printed = String::new();
    let printed = wait_until(Duration::from_secs(20), async || {
        while let Ok(line) = server.running.stdout.try_recv() {
            printed.push_str(&line);
            printed.push('\n');
        }
        match printed.contains("plain text") {
            true => Ok(printed.clone()),
            false => Err(format!("printed so far:\n{printed}")),
        }
    })
    .await;
    assert!(
        printed.contains("Received dictionary (xml) from 127.0.0.1"),
        "{printed}"
    );
    assert!(
        printed.contains("\"sensor\": \"s-1\""),
        "dictionaries print as indented JSON:\n{printed}"
    );
    assert!(printed.contains("Received text (txt)"), "{printed}");

    // Outputs are written before the replies (tests/legacy_outputs.rs checks that strictly).
    let list = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(export.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect()
    };
    let complete = |files: &[std::path::PathBuf]| {
        files.len() == 3
            && files.iter().all(|path| {
                std::fs::metadata(path)
                    .map(|m| m.len() > 0)
                    .unwrap_or(false)
            })
    };
    wait_until(Duration::from_secs(20), async || {
        let files = list();
        match complete(&files) {
            true => Ok(()),
            false => Err(format!("exports so far: {files:?}")),
        }
    })
    .await;
    let mut files = list();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|name| name.starts_with("127.0.0.1_")),
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|name| name.ends_with(".json")).count(),
        2,
        "{names:?}"
    );
    let text = files
        .iter()
        .find(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .unwrap();
    assert_eq!(std::fs::read(text).unwrap(), b"plain text\n");
    let json_file = files
        .iter()
        .find(|path| path.extension().is_some_and(|ext| ext == "json"))
        .unwrap();
    let exported: serde_json::Value =
        serde_json::from_slice(&std::fs::read(json_file).unwrap()).unwrap();
    assert!(exported["sensor"] == "s-1");
}

/// Sends one text over a session of its own; the stored item's id.
async fn send_one_text(server: &Server, text: &[u8]) -> String {
    let mut session = Session::connect(&server.tcp(), Options::default())
        .await
        .unwrap();
    let receipt = session
        .send_bytes(Meta::text(false), text, None)
        .await
        .unwrap();
    session.end().await.unwrap();
    receipt.id.expect("Ferry's server names the item")
}

#[tokio::test]
async fn items_stay_readable_after_the_storage_key_is_rotated() {
    let server = Server::start(&[]);
    let old_item = send_one_text(&server, b"sealed with the first key").await;

    // Rotate: a new current key, the old one kept for reading.
    let old_key = server.data_dir().join("storage.key");
    let kept = server.dir.path().join("storage-old.key");
    std::fs::rename(&old_key, &kept).unwrap();
    let Server { mut running, dir } = server;
    running.terminate();
    drop(running);
    let server = Server::start_in(dir, &["--old-storage-keys", kept.to_str().unwrap()]);
    assert!(old_key.exists(), "a new storage key was created");

    let new_item = send_one_text(&server, b"sealed with the second key").await;
    let admin = server.admin();
    assert_eq!(admin.content(&old_item).await, b"sealed with the first key");
    assert_eq!(
        admin.content(&new_item).await,
        b"sealed with the second key"
    );
    let items = admin.all_items().await;
    assert_ne!(items[0]["key_id"], items[1]["key_id"]);
}

#[tokio::test]
async fn metrics_count_transfers_bytes_connections_and_items() {
    let server = Server::start(&["--allow-pickle", "false"]);
    send_one_text(&server, b"twelve bytes").await;
    let mut session = Session::connect(&server.tcp(), Options::default())
        .await
        .unwrap();
    let dict = json!({"a": 1}).as_object().unwrap().clone();
    assert!(
        session
            .send_dict(&dict, Serialization::Binary, false)
            .await
            .is_err()
    );
    let text = server.admin().metrics().await;
    for expected in [
        r#"ferry_transfers_total{data_type="text",format="txt",outcome="ok"} 1"#,
        r#"ferry_transfers_total{data_type="dictionary",format="binary",outcome="refused"} 1"#,
        r#"ferry_received_bytes_total{data_type="text",format="txt",outcome="ok"} 12"#,
        "ferry_transfer_duration_seconds",
        "ferry_open_connections 1",
        "ferry_items_stored 1",
    ] {
        assert!(text.contains(expected), "no {expected} in:\n{text}");
    }
    session.end().await.unwrap();
    let unauthorized = crate::harness::http()
        .get(format!("{}/metrics", server.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
}

/// The prometheus counter `name`'s value in `text`, 0 if absent.
fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0, |value| value.trim().parse::<f64>().unwrap() as u64)
}

/// Deleting items through the admin API gives their log space back: the first
/// 64 MiB log segment, once mostly deleted, is compacted and removed, the metrics
/// count it, and the items left read back identical, also after a SIGKILL and a
/// restart.
#[tokio::test]
async fn deleted_items_give_their_log_space_back() {
    let server = Server::start(&[]);
    let mut session = Session::connect(&server.tcp(), Options::default())
        .await
        .unwrap();
    // 300 items of 250 kB: small enough for the log, 75 MB in all.
    let mut sent = Vec::new();
    for i in 0..300u32 {
        let text: Vec<u8> = (0..250_000u32)
            .map(|j| b'a' + ((i + j) % 26) as u8)
            .collect();
        let receipt = session
            .send_bytes(Meta::text(false), &text, None)
            .await
            .unwrap();
        sent.push((receipt.id.unwrap(), text));
    }
    session.end().await.unwrap();
    let first_segment = server.data_dir().join("store/segments/00000001.log");
    assert!(first_segment.exists());

    let admin = server.admin();
    let mut kept = Vec::new();
    for (i, (id, text)) in sent.into_iter().enumerate() {
        if i % 10 == 0 {
            kept.push((id, text));
        } else {
            assert_eq!(admin.delete(&id).await, 204);
        }
    }
    assert!(
        !first_segment.exists(),
        "the first segment was not reclaimed"
    );
    let metrics = admin.metrics().await;
    assert!(
        counter(&metrics, "ferry_store_segments_compacted_total") >= 1,
        "{metrics}"
    );
    assert!(
        counter(&metrics, "ferry_store_segments_removed_total") >= 1,
        "{metrics}"
    );
    assert!(
        counter(&metrics, "ferry_store_reclaimed_bytes_total") >= 60_000_000,
        "{metrics}"
    );

    let server = server.crash_and_restart(&[]);
    let admin = server.admin();
    assert_eq!(admin.all_items().await.len(), kept.len());
    for (id, text) in &kept {
        assert_eq!(&admin.content(id).await, text, "{id}");
    }
}
