//! The `ferry` command line against the real server: dictionaries from files and
//! stdin, several files over one session, encryption, and the legacy mode.

use crate::harness::{Server, bin};
use std::io::Write;
use std::process::{Command, Stdio};

fn ferry(server: &Server, args: &[&str], stdin: Option<&str>) -> String {
    let mut command = Command::new(bin("ferry"));
    command
        .arg("send")
        .args([
            "--server",
            &server.tcp(),
            "--fernet-key",
            server.fernet_key_file().to_str().unwrap(),
        ])
        .args(args);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "ferry {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn ferry_send_stores_dictionaries_from_stdin_and_files_and_several_files_per_session() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let out = ferry(
        &server,
        &["dict", "--format", "xml", "--encrypt", "-"],
        Some(r#"{"from": "stdin", "n": 3}"#),
    );
    assert!(out.starts_with("-: stored as "), "{out}");

    let (a, b) = (dir.path().join("a.txt"), dir.path().join("b.txt"));
    std::fs::write(&a, "first file\n").unwrap();
    std::fs::write(&b, "x".repeat(100_000)).unwrap();
    let out = ferry(
        &server,
        &["file", a.to_str().unwrap(), b.to_str().unwrap()],
        None,
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("(100000 bytes"), "{out}");

    let admin = server.admin();
    let items = admin.items_oldest_first().await;
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["serialization"], "xml");
    assert_eq!(items[0]["encrypted_in_transit"], true);
    assert_eq!(
        admin
            .content_as_json(items[0]["id"].as_str().unwrap())
            .await,
        serde_json::json!({"from": "stdin", "n": "3"})
    );
    assert_eq!(items[1]["name"], "a.txt");
    assert_eq!(items[2]["name"], "b.txt");
    assert_eq!(
        items[1]["peer"], items[2]["peer"],
        "both files went over one session"
    );
    assert_eq!(
        admin.content(items[1]["id"].as_str().unwrap()).await,
        b"first file\n"
    );
}

#[tokio::test]
async fn the_legacy_mode_sends_no_extensions_and_gets_plain_oks() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain.txt");
    std::fs::write(&file, "hello").unwrap();
    let out = ferry(&server, &["--legacy", "file", file.to_str().unwrap()], None);
    assert!(out.contains(": OK (5 bytes)"), "{out}");
    let items = server.admin().all_items().await;
    assert_eq!(items.len(), 1);
    assert!(
        items[0]["name"].is_null(),
        "no name extension in legacy mode"
    );
}

#[test]
fn a_file_that_is_not_a_json_object_is_refused_before_anything_is_sent() {
    let server = Server::start(&[]);
    let output = Command::new(bin("ferry"))
        .args(["send", "--server", &server.tcp(), "dict", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = output;
    child.stdin.take().unwrap().write_all(b"[1, 2]").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not a JSON object"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
