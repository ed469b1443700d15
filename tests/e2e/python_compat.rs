//! Python compatibility: a legacy-style Python client (tests/python/legacy_client.py,
//! written from docs/protocol.md with `cryptography`) sends dictionaries in every
//! serialization and text of every edge size, plain and Fernet-encrypted, over one
//! session and over many. Every reply must be exactly `OK`, and every item must read
//! back through the admin API identical to what was sent. The shared pickle vectors
//! go through the server end to end too: decoded as `expected.json` says, or
//! refused clearly, and nothing hostile runs.

use crate::harness::raw::{self, Raw};
use crate::harness::{Admin, Sent, Server, python_transfers, text_file, vectors};
use serde_json::{Value, json};
use std::path::Path;

/// A dictionary transfer in the plan, and the JSON `?as=json` must give back.
struct DictCase {
    plan: Value,
    expected: Value,
    serialization: &'static str,
    encrypted: bool,
}

/// Dictionaries a legacy client sends: nesting, unicode, every JSON type, empty,
/// and one big enough to take several packets.
fn data_dicts() -> Vec<Value> {
    let numbers: Vec<u64> = (0..6000).collect();
    vec![
        json!({"name": "sensor-1", "value": 42, "unit": "C"}),
        json!({"a": {"b": {"c": [1, 2, {"d": null}], "e": []}}, "ok": true, "no": false, "neg": -7, "pi": 3.25, "big": 9007199254740993u64}),
        json!({"héllo": "wörld ☃", "emoji": "🚀", "quote": "\"'<>&\\", "newline": "a\nb\tc"}),
        json!({}),
        json!({"blob": "x".repeat(150_000), "numbers": numbers}),
        // Numbers as Python writes them: beyond i64 (kept exact), floats, -0.0.
        serde_json::from_str(r#"{"big": 1180591620717411303424, "small": [-1180591620717411303424], "tenth": 0.1, "one": 1.0, "neg0": -0.0, "huge": 1e+300}"#).unwrap(),
    ]
}

/// What the legacy XML form turns a dictionary into: `{key: str(value)}`, an empty
/// element giving null, and the nested dictionary the text of its Python repr.
fn xml_dicts() -> Vec<(Value, Value)> {
    vec![
        (
            json!({"name": "sensor-1", "value": 42, "flag": true, "nested": {"c": 2}, "text": "a < b & c", "empty": "", "unicode": "wörld ☃"}),
            json!({"name": "sensor-1", "value": "42", "flag": "True", "nested": "{'c': 2}", "text": "a < b & c", "empty": null, "unicode": "wörld ☃"}),
        ),
        (json!({}), json!({})),
        (
            json!({"blob": "y".repeat(120_000)}),
            json!({"blob": "y".repeat(120_000)}),
        ),
    ]
}

fn dict_cases() -> Vec<DictCase> {
    let mut cases = Vec::new();
    for encrypted in [false, true] {
        for content in data_dicts() {
            cases.push(DictCase { plan: json!({"kind": "dict", "format": "json", "encrypt": encrypted, "content": content}), expected: content.clone(), serialization: "json", encrypted });
            for protocol in 0..=5 {
                cases.push(DictCase { plan: json!({"kind": "dict", "format": "pickle", "protocol": protocol, "encrypt": encrypted, "content": content}), expected: content.clone(), serialization: "binary", encrypted });
            }
        }
        for (content, expected) in xml_dicts() {
            cases.push(DictCase { plan: json!({"kind": "dict", "format": "xml", "encrypt": encrypted, "content": content}), expected, serialization: "xml", encrypted });
        }
    }
    cases
}

/// Runs the Python client (it blocks) and checks every reply is exactly `OK`.
async fn send_with_python(server: &Server, sessions: &'static str, plan: Value) -> Vec<Sent> {
    let (addr, key) = (server.tcp(), server.fernet_key_file());
    let sent =
        tokio::task::spawn_blocking(move || python_transfers(&addr, Some(&key), sessions, &plan))
            .await
            .unwrap();
    for (index, transfer) in sent.iter().enumerate() {
        assert_eq!(transfer.reply, "OK", "reply to transfer {index}");
    }
    sent
}

/// The listed items, in the order they were sent, one per transfer.
async fn listed_in_order(admin: &Admin, count: usize) -> Vec<Value> {
    let items = admin.items_oldest_first().await;
    assert_eq!(items.len(), count, "one item listed per transfer");
    items
}

/// Checks an item's metadata against what the Python client says it sent.
fn assert_meta(item: &Value, sent: &Sent, data_type: &str, serialization: &str, encrypted: bool) {
    let id = item["id"].as_str().unwrap();
    assert_eq!(item["data_type"], data_type, "data_type of {id}");
    assert_eq!(
        item["serialization"], serialization,
        "serialization of {id}"
    );
    assert_eq!(
        item["encrypted_in_transit"], encrypted,
        "encrypted_in_transit of {id}"
    );
    assert_eq!(item["size"], sent.size, "size of {id}");
    assert_eq!(item["sha256"], sent.sha256.as_str(), "sha256 of {id}");
}

async fn dictionaries_read_back_identical(sessions: &'static str) {
    let server = Server::start(&[]);
    let cases = dict_cases();
    let plan = Value::Array(cases.iter().map(|case| case.plan.clone()).collect());
    let sent = send_with_python(&server, sessions, plan).await;
    assert_eq!(sent.len(), cases.len());
    let admin = server.admin();
    let items = listed_in_order(&admin, cases.len()).await;
    for ((case, sent), item) in cases.iter().zip(&sent).zip(&items) {
        let id = item["id"].as_str().unwrap();
        assert_meta(item, sent, "dictionary", case.serialization, case.encrypted);
        assert_eq!(
            admin.content_digest(id).await,
            (sent.size, sent.sha256.clone()),
            "content of {id} ({})",
            case.plan["format"]
        );
        assert_eq!(
            admin.content_as_json(id).await,
            case.expected,
            "{id} as json ({} protocol {})",
            case.plan["format"],
            case.plan["protocol"]
        );
    }
}

#[tokio::test]
async fn dictionaries_in_every_serialization_read_back_identical_over_one_session() {
    dictionaries_read_back_identical("one").await;
}

#[tokio::test]
async fn dictionaries_in_every_serialization_read_back_identical_over_a_session_each() {
    dictionaries_read_back_identical("each").await;
}

const EDGE_SIZES: [usize; 7] = [0, 1, 47_999, 48_000, 48_001, 96_000, 1 << 20];

async fn texts_read_back_identical(sessions: &'static str, sizes: &[usize]) -> Server {
    let server = Server::start(&[]);
    let files: Vec<_> = sizes
        .iter()
        .map(|&len| text_file(server.dir.path(), &format!("text-{len}.txt"), len))
        .collect();
    let mut plan = Vec::new();
    for encrypted in [false, true] {
        for file in &files {
            plan.push(json!({"kind": "text", "path": file, "encrypt": encrypted}));
        }
    }
    let sent = send_with_python(&server, sessions, json!(plan)).await;
    let admin = server.admin();
    let items = listed_in_order(&admin, plan.len()).await;
    for ((entry, sent), item) in plan.iter().zip(&sent).zip(&items) {
        let path = Path::new(entry["path"].as_str().unwrap());
        let id = item["id"].as_str().unwrap();
        assert_eq!(
            sent.size,
            std::fs::metadata(path).unwrap().len(),
            "the client sent the whole of {}",
            path.display()
        );
        assert_meta(
            item,
            sent,
            "text",
            "txt",
            entry["encrypt"].as_bool().unwrap(),
        );
        if sent.size <= 2 << 20 {
            assert!(
                admin.content(id).await == std::fs::read(path).unwrap(),
                "content of {id} differs from {}",
                path.display()
            );
        } else {
            assert_eq!(
                admin.content_digest(id).await,
                (sent.size, crate::harness::sha256_file(path)),
                "content of {id}"
            );
        }
    }
    server
}

#[tokio::test]
async fn text_of_every_edge_size_reads_back_identical_over_one_session() {
    texts_read_back_identical("one", &EDGE_SIZES).await;
}

#[tokio::test]
async fn text_of_every_edge_size_reads_back_identical_over_a_session_each() {
    texts_read_back_identical("each", &EDGE_SIZES).await;
}

#[tokio::test]
async fn a_100_mb_text_reads_back_identical_plain_and_encrypted() {
    let server = texts_read_back_identical("one", &[100 << 20]).await;
    // Text streams through the server: it never holds a whole item.
    let peak = server.running.peak_rss_kib();
    eprintln!("server peak RSS: {peak} KiB");
    assert!(
        peak < 64 * 1024,
        "the server's peak RSS reached {peak} KiB for a 100 MB text"
    );
}

#[tokio::test]
async fn packets_of_any_payload_size_from_0_to_65535_are_accepted() {
    let server = Server::start(&[]);
    let full: Vec<u8> = (0..65_535u32).map(|i| b'a' + (i % 26) as u8).collect();
    let payloads: [&[u8]; 6] = [&full, b"", b"z", &full[..48_001], &full, b""];
    let mut conn = Raw::connect(&server.tcp()).await;
    assert_eq!(
        conn.exchange(&raw::packets(raw::text_meta(false), &payloads))
            .await,
        "OK"
    );
    let dict = br#"{"packets": "of odd sizes"}"#;
    let pieces: Vec<&[u8]> = dict.chunks(5).chain([&b""[..]]).collect();
    assert_eq!(
        conn.exchange(&raw::packets(raw::dict_meta(2, false), &pieces))
            .await,
        "OK"
    );
    conn.end().await;
    let admin = server.admin();
    let items = listed_in_order(&admin, 2).await;
    assert!(
        admin.content(items[0]["id"].as_str().unwrap()).await == payloads.concat(),
        "the text is the packets joined"
    );
    assert_eq!(admin.content(items[1]["id"].as_str().unwrap()).await, dict);
}

/// `expected.json` of the pickle vectors, by case name.
fn pickle_expectations() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(vectors().join("pickle/expected.json")).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

/// Every `.pkl` vector: (file name, case name, bytes), in name order.
fn pickle_vectors() -> Vec<(String, String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(vectors().join("pickle"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "pkl"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let case = file.split('.').next().unwrap().to_owned();
            (file, case, std::fs::read(&path).unwrap())
        })
        .collect()
}

/// Sends each pickle as a legacy dictionary transfer on one connection; the replies.
async fn send_pickles(
    server: &Server,
    pickles: &[(String, String, Vec<u8>)],
    encrypted: bool,
) -> Vec<String> {
    let key = ferry_crypto::FernetKey::load(&server.fernet_key_file()).unwrap();
    let mut conn = Raw::connect(&server.tcp()).await;
    let mut replies = Vec::new();
    for (_, _, bytes) in pickles {
        let meta = raw::dict_meta(1, encrypted);
        let transfer = if encrypted {
            raw::encrypted_transfer(meta, bytes, &key)
        } else {
            raw::transfer(meta, bytes)
        };
        replies.push(conn.exchange(&transfer).await);
    }
    conn.end().await;
    replies
}

#[tokio::test]
async fn pickle_vectors_decode_as_expected_json_says() {
    let server = Server::start(&[]);
    let expected = pickle_expectations();
    let pickles: Vec<_> = pickle_vectors()
        .into_iter()
        .filter(|(_, case, _)| expected.contains_key(case))
        .collect();
    assert!(
        pickles.len() >= 30,
        "every data vector in protocols 0-5 ({} found)",
        pickles.len()
    );
    for encrypted in [false, true] {
        let replies = send_pickles(&server, &pickles, encrypted).await;
        for ((file, _, _), reply) in pickles.iter().zip(&replies) {
            assert_eq!(reply, "OK", "{file} (encrypted: {encrypted})");
        }
    }
    let admin = server.admin();
    let items = listed_in_order(&admin, pickles.len() * 2).await;
    for ((file, case, bytes), item) in pickles.iter().chain(&pickles).zip(&items) {
        let id = item["id"].as_str().unwrap();
        assert_eq!(item["serialization"], "binary", "{file}");
        assert!(
            admin.content(id).await == *bytes,
            "{file} is stored as it arrived"
        );
        assert_eq!(
            admin.content_as_json(id).await,
            expected[case],
            "{file} as json"
        );
    }
}

#[tokio::test]
async fn special_and_hostile_pickles_are_refused_clearly_or_mapped_and_nothing_runs() {
    let pwned = Path::new("/tmp/pwned");
    let _ = std::fs::remove_file(pwned);
    let server = Server::start(&[]);
    let expected = pickle_expectations();
    let pickles: Vec<_> = pickle_vectors()
        .into_iter()
        .filter(|(_, case, _)| !expected.contains_key(case))
        .collect();
    assert!(
        pickles
            .iter()
            .any(|(file, _, _)| file.starts_with("hostile_")),
        "the hostile vectors are there"
    );
    let replies = send_pickles(&server, &pickles, false).await;
    let mut accepted = 0;
    for ((file, _, _), reply) in pickles.iter().zip(&replies) {
        if file.starts_with("hostile_") {
            assert!(
                reply.starts_with("ERROR: ") && reply.len() > "ERROR: ".len() + 10,
                "{file} must be refused with a clear reason: {reply:?}"
            );
        } else {
            assert!(
                reply == "OK"
                    || (reply.starts_with("ERROR: ") && reply.len() > "ERROR: ".len() + 10),
                "{file}: {reply:?}"
            );
            accepted += usize::from(reply == "OK");
        }
    }
    assert!(
        !pwned.exists(),
        "a hostile pickle ran code: {} exists",
        pwned.display()
    );
    // Mapped special cases are listed and read back as JSON objects; nothing refused is listed.
    let admin = server.admin();
    for item in listed_in_order(&admin, accepted).await {
        let id = item["id"].as_str().unwrap();
        assert!(admin.content_as_json(id).await.is_object(), "{id} as json");
    }
    crate::harness::assert_still_serves(&server).await;
}
