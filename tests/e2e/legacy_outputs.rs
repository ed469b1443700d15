//! The legacy outputs are written before the `OK`: a program that reads the export
//! directory (or the printed output) the moment a legacy client's send returns
//! finds the item there, complete. The sends are made by the legacy client's own
//! code (tests/python/legacy_client.py, driven by legacy_export_probe.py), for
//! every kind of item: dictionaries in json, pickle and xml, text plain and
//! Fernet-encrypted, each small and large.

use crate::harness::{bin, python_lines, python_script, text_file};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server whose stdout goes to a file, so what it printed can be read at any moment.
struct PrintingServer {
    child: Child,
    tcp: String,
    stdout: PathBuf,
    data: PathBuf,
}

impl Drop for PrintingServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PrintingServer {
    fn start(dir: &Path, extra: &[&str]) -> PrintingServer {
        let stdout = dir.join("stdout.txt");
        let data = dir.join("data");
        let child = Command::new(bin("ferry-server"))
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&data)
            .args(extra)
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ferry-server");
        let mut server = PrintingServer {
            child,
            tcp: String::new(),
            stdout,
            data,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        server.tcp = loop {
            let printed = std::fs::read_to_string(&server.stdout).unwrap_or_default();
            let tcp = printed.lines().find_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some("tcp")).then(|| words.next().unwrap_or("").to_owned())
            });
            if let Some(tcp) = tcp.filter(|_| printed.contains("admin")) {
                break tcp;
            }
            assert!(
                Instant::now() < deadline && server.child.try_wait().unwrap().is_none(),
                "ferry-server did not announce its listener:\n{printed}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        server
    }
}

/// Every kind of item, small and large (large ones take many packets; large
/// dictionaries are decoded off the async workers).
fn plan(dir: &Path) -> Vec<Value> {
    let small = json!({"sensor": "s-1", "value": 21.5, "tags": ["a", "b"]});
    let large_json =
        json!({"values": (0..60_000).collect::<Vec<u32>>(), "note": "x".repeat(200_000)});
    let flat: serde_json::Map<String, Value> = (0..12_000)
        .map(|i| (format!("k{i}"), json!(format!("value number {i}"))))
        .collect();
    let large_flat = Value::Object(flat);
    // xml carries str(value) of each top-level value: strings only, to compare.
    let small_flat = json!({"sensor": "s-1", "unit": "C"});
    let mut plan = Vec::new();
    for format in ["json", "pickle", "xml"] {
        let (small, large) = if format == "xml" {
            (&small_flat, &large_flat)
        } else {
            (&small, &large_json)
        };
        for content in [small, large] {
            plan.push(json!({"kind": "dict", "format": format, "content": content}));
        }
    }
    let small_text = text_file(dir, "small.txt", 300);
    let large_text = text_file(dir, "large.txt", 3 * 1024 * 1024 + 17);
    for encrypt in [false, true] {
        for path in [&small_text, &large_text] {
            plan.push(json!({"kind": "text", "path": path, "encrypt": encrypt}));
        }
    }
    plan
}

/// One transfer as the probe saw it the moment the send returned.
#[derive(Debug)]
struct Seen {
    reply: String,
    sha256: String,
    files: BTreeMap<String, String>,
    printed: String,
}

fn probe(server: &PrintingServer, export: &Path, plan: &[Value]) -> Vec<Seen> {
    let mut command = Command::new("python3");
    command
        .arg(python_script("legacy_export_probe.py"))
        .args(["--server", &server.tcp])
        .arg("--key")
        .arg(server.data.join("fernet.key"))
        .arg("--export-dir")
        .arg(export)
        .arg("--stdout")
        .arg(&server.stdout);
    python_lines(command, &Value::from(plan.to_vec()))
        .into_iter()
        .map(|line| Seen {
            reply: line["reply"].as_str().unwrap().to_owned(),
            sha256: line["sha256"].as_str().unwrap().to_owned(),
            files: serde_json::from_value(line["files"].clone()).unwrap(),
            printed: line["printed"].as_str().unwrap().to_owned(),
        })
        .collect()
}

/// A short name for a plan item, for messages.
fn describe(item: &Value) -> String {
    format!(
        "{} {} encrypt={} {}",
        item["kind"], item["format"], item["encrypt"], item["path"]
    )
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Runs the plan and checks, send by send, that the new export file was there and
/// complete (its hash then is its hash for good) and the item already printed.
/// Returns each transfer's export file, with what the client sent.
fn run(original: bool) -> Vec<(Value, Seen, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    let mut flags = vec!["--print", "--export-dir", export.to_str().unwrap()];
    if original {
        flags.push("--export-original");
    }
    let server = PrintingServer::start(dir.path(), &flags);
    let plan = plan(dir.path());
    let seen = probe(&server, &export, &plan);
    assert_eq!(seen.len(), plan.len(), "one line per transfer");

    let mut before = BTreeMap::new();
    let mut exported = Vec::new();
    for (index, (item, seen)) in plan.into_iter().zip(seen).enumerate() {
        let what = format!("transfer {index} ({})", describe(&item));
        assert_eq!(seen.reply, "OK", "{what}");
        let new: Vec<_> = seen
            .files
            .iter()
            .filter(|(name, _)| !before.contains_key(*name))
            .collect();
        assert_eq!(
            new.len(),
            1,
            "{what}: one new export file when the send returned: {new:?}"
        );
        assert_eq!(seen.files.len(), index + 1, "{what}: earlier exports stay");
        let (name, hash_then) = new[0];
        let content = std::fs::read(export.join(name)).unwrap();
        assert_eq!(
            &sha256(&content),
            hash_then,
            "{what}: {name} was incomplete when the send returned"
        );
        assert_eq!(
            seen.printed.matches("Received ").count(),
            index + 1,
            "{what}: printed and flushed before the OK"
        );
        before = seen.files.clone();
        exported.push((item, seen, content));
    }
    exported
}

#[test]
fn exports_in_their_original_form_are_complete_when_each_legacy_send_returns() {
    for (item, seen, content) in run(true) {
        assert_eq!(
            sha256(&content),
            seen.sha256,
            "the export of {} is exactly the plaintext sent",
            describe(&item)
        );
    }
}

#[test]
fn exports_as_json_are_complete_when_each_legacy_send_returns() {
    for (item, seen, content) in run(false) {
        if item["kind"] == "dict" {
            let exported: Value = serde_json::from_slice(&content).unwrap();
            assert_eq!(
                exported,
                item["content"],
                "the JSON export of {}",
                describe(&item)
            );
        } else {
            assert_eq!(
                sha256(&content),
                seen.sha256,
                "the export of {}",
                describe(&item)
            );
        }
    }
}
