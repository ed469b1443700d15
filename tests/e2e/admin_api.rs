//! The admin API end to end, against the real `ferry-server`: items sent by the
//! native client and by the Python compatibility client are listed with the right
//! metadata; the filters select the right items; a 1 GiB item downloads streamed
//! and byte-identical while the server's memory stays flat; byte ranges return
//! exactly those bytes; a tampered record is refused and logged; and the token is
//! required. Paging and the details of tampering are the admin crate's tests
//! (`crates/admin/tests/api/{items,integrity}.rs`).

use std::time::{Duration, Instant};

use crate::harness::admin::{Generated, id_of, send_dict, send_text, session, sha256_hex};
use crate::harness::{Server, python_transfers, text_file, wait_until};
use ferry_protocol::{Meta, Serialization};
use futures::StreamExt;
use serde_json::{Value, json};
use sha2::Digest;

/// Checks the metadata every listed item has, whoever sent it.
fn assert_metadata(
    item: &Value,
    data_type: &str,
    serialization: &str,
    encrypted: bool,
    size: u64,
    sha256: &str,
) {
    let id = item["id"].as_str().unwrap();
    assert_eq!(item["data_type"], data_type, "{item}");
    assert_eq!(item["serialization"], serialization, "{item}");
    assert_eq!(item["encrypted_in_transit"], encrypted, "{item}");
    assert_eq!(item["size"], size, "{item}");
    assert_eq!(item["sha256"], sha256, "{item}");
    assert!(
        item["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{item}"
    );
    assert!(
        item["key_id"].as_str().unwrap().starts_with("dk-"),
        "sealed with its own data key: {item}"
    );
    let extension = match serialization {
        "txt" => "txt",
        "binary" => "pkl",
        other => other,
    };
    if item["name"].is_null() {
        assert_eq!(item["file_name"], format!("{id}.{extension}"), "{item}");
    }
    let content_type = match serialization {
        "txt" => "text/plain; charset=utf-8",
        "binary" => "application/x-python-pickle",
        "json" => "application/json",
        _ => "application/xml",
    };
    assert_eq!(item["content_type"], content_type, "{item}");
    let received = item["received_at"].as_str().unwrap();
    assert!(
        received.len() >= 20 && received.contains('T'),
        "received_at is RFC 3339: {received}"
    );
}

#[tokio::test]
async fn items_from_the_native_and_the_python_client_are_listed_with_their_metadata() {
    let server = Server::start(&[]);
    let admin = server.admin();

    let mut native = session(&server).await;
    let dict = send_dict(
        &mut native,
        json!({"sensor": "s-17", "value": 21.5}),
        Serialization::Json,
        false,
    )
    .await;
    let pickle = send_dict(
        &mut native,
        json!({"a": [1, 2, {"b": null}]}),
        Serialization::Binary,
        true,
    )
    .await;
    let xml = send_dict(
        &mut native,
        json!({"name": "legacy"}),
        Serialization::Xml,
        false,
    )
    .await;
    let text = send_text(
        &mut native,
        b"hello from the native client\n",
        Some("notes.txt"),
        true,
    )
    .await;
    native.end().await.unwrap();

    let scratch = tempfile::tempdir().unwrap();
    let file = text_file(scratch.path(), "python.txt", 100_000);
    let plan = json!([
        {"kind": "dict", "format": "json", "encrypt": true, "content": {"from": "python", "n": 1}},
        {"kind": "dict", "format": "pickle", "protocol": 2, "encrypt": false, "content": {"from": "python", "n": 2}},
        {"kind": "text", "path": file, "encrypt": true},
    ]);
    let (addr, key) = (server.tcp(), server.fernet_key_file());
    let python =
        tokio::task::spawn_blocking(move || python_transfers(&addr, Some(&key), "one", &plan))
            .await
            .unwrap();
    assert!(python.iter().all(|sent| sent.reply == "OK"), "{python:?}");

    let items = admin.items_oldest_first().await;
    assert_eq!(items.len(), 7, "every transfer is listed once");
    let expected_native = [
        (&dict, "dictionary", "json", false),
        (&pickle, "dictionary", "binary", true),
        (&xml, "dictionary", "xml", false),
        (&text, "text", "txt", true),
    ];
    for (item, (receipt, data_type, serialization, encrypted)) in items.iter().zip(expected_native)
    {
        assert_eq!(item["id"], id_of(receipt), "listed in the order sent");
        assert_metadata(
            item,
            data_type,
            serialization,
            encrypted,
            receipt.size,
            receipt.sha256.as_deref().unwrap(),
        );
    }
    assert_eq!(items[3]["name"], "notes.txt");
    assert_eq!(items[3]["file_name"], "notes.txt");
    let expected_python = [
        ("dictionary", "json", true),
        ("dictionary", "binary", false),
        ("text", "txt", true),
    ];
    for (item, (sent, (data_type, serialization, encrypted))) in
        items[4..].iter().zip(python.iter().zip(expected_python))
    {
        assert_metadata(
            item,
            data_type,
            serialization,
            encrypted,
            sent.size,
            &sent.sha256,
        );
        assert!(
            item["name"].is_null(),
            "the legacy client names nothing: {item}"
        );
    }

    // The metadata route says the same as the list, and the content is what was sent.
    for item in &items {
        let id = item["id"].as_str().unwrap();
        assert_eq!(&admin.get_json(&format!("/api/items/{id}")).await, item);
        let (size, sha) = admin.content_digest(id).await;
        assert_eq!(
            (size, sha.as_str()),
            (
                item["size"].as_u64().unwrap(),
                item["sha256"].as_str().unwrap()
            )
        );
    }
    assert_eq!(
        admin
            .content_as_json(items[1]["id"].as_str().unwrap())
            .await,
        json!({"a": [1, 2, {"b": null}]})
    );
    assert_eq!(
        admin
            .content_as_json(items[5]["id"].as_str().unwrap())
            .await,
        json!({"from": "python", "n": 2})
    );
    assert_eq!(
        admin.content(items[3]["id"].as_str().unwrap()).await,
        b"hello from the native client\n"
    );
}

/// The ids of `GET /api/items?<query>` (one page of up to 1000).
async fn listed(admin: &crate::harness::Admin, query: &str) -> Vec<String> {
    let page = admin
        .get_json(&format!("/api/items?limit=1000&{query}"))
        .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A UTC RFC 3339 instant as text that sorts in time order: the fraction of a
/// second (which RFC 3339 lets be any length) padded to nanoseconds.
fn sortable_instant(text: &str) -> String {
    let text = text.strip_suffix('Z').expect("the server speaks UTC");
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    format!("{seconds}.{fraction:0<9}")
}

#[tokio::test]
async fn filters_select_exactly_the_matching_items() {
    let server = Server::start(&[]);
    let admin = server.admin();
    let seeded = crate::harness::admin::seed_every_kind(&server).await;
    let items = admin.items_oldest_first().await;
    assert_eq!(items.len(), seeded.ids.len());

    let newest_first = |keep: &dyn Fn(&Value) -> bool| -> Vec<String> {
        items
            .iter()
            .rev()
            .filter(|item| keep(item))
            .map(|item| item["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "data_type=text",
            newest_first(&|i| i["data_type"] == "text"),
        ),
        (
            "data_type=dictionary",
            newest_first(&|i| i["data_type"] == "dictionary"),
        ),
        (
            "serialization=json",
            newest_first(&|i| i["serialization"] == "json"),
        ),
        (
            "serialization=binary",
            newest_first(&|i| i["serialization"] == "binary"),
        ),
        (
            "serialization=xml",
            newest_first(&|i| i["serialization"] == "xml"),
        ),
        (
            "data_type=dictionary&serialization=json",
            newest_first(&|i| i["serialization"] == "json"),
        ),
        ("data_type=text&serialization=json", vec![]),
        ("source=127.0.0.1", newest_first(&|_| true)),
        ("source=10.0.0.1", vec![]),
    ];
    assert!(
        cases.iter().take(5).all(|(_, ids)| !ids.is_empty()),
        "the seed has every kind"
    );
    for (query, expected) in cases {
        assert_eq!(listed(&admin, query).await, expected, "{query}");
    }

    // since is inclusive, until exclusive, on received_at.
    let pivot = &items[3];
    let at = pivot["received_at"].as_str().unwrap();
    let encoded = at.replace('+', "%2B");
    let since = listed(&admin, &format!("since={encoded}")).await;
    assert!(
        since.contains(&pivot["id"].as_str().unwrap().to_owned()),
        "since includes the instant itself"
    );
    let received = |item: &Value| sortable_instant(item["received_at"].as_str().unwrap());
    assert_eq!(
        since,
        newest_first(&|i| received(i) >= sortable_instant(at))
    );
    let until = listed(&admin, &format!("until={encoded}")).await;
    assert_eq!(until, newest_first(&|i| received(i) < sortable_instant(at)));
    assert_eq!(
        listed(
            &admin,
            "since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z"
        )
        .await,
        Vec::<String>::new()
    );

    for bad in [
        "data_type=image",
        "serialization=yaml",
        "since=yesterday",
        "until=2024-13-01T00:00:00Z",
    ] {
        assert_eq!(
            admin.get(&format!("/api/items?{bad}")).await.status(),
            400,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn a_gibibyte_item_downloads_streamed_and_byte_identical_with_the_server_memory_flat() {
    const SIZE: u64 = 1 << 30;
    const PEAK_LIMIT_KIB: u64 = 100 * 1024;
    let server = Server::start(&[]);
    let admin = server.admin();
    let started = Instant::now();

    let mut s = session(&server).await;
    let mut source = Generated::new(SIZE, 0x5eed_f00d);
    let receipt = s
        .send_reader(
            Meta::text(false),
            &mut source,
            Some("huge.bin"),
            &mut |_| {},
        )
        .await
        .expect("1 GiB accepted");
    s.end().await.unwrap();
    let sent_sha = source.sha256();
    assert_eq!(receipt.size, SIZE);
    assert_eq!(
        receipt.sha256.as_deref(),
        Some(sent_sha.as_str()),
        "the server hashed what was sent"
    );
    let after_upload = server.running.peak_rss_kib();
    eprintln!(
        "uploaded 1 GiB in {:?}; server peak RSS {after_upload} KiB",
        started.elapsed()
    );

    let id = id_of(&receipt);
    let response = admin.get(&format!("/api/items/{id}/content")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), Some(SIZE));
    let mut hasher = sha2::Sha256::new();
    let mut received = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk
            .unwrap_or_else(|err| panic!("the download broke off after {received} bytes: {err}"));
        received += chunk.len() as u64;
        hasher.update(&chunk);
    }
    assert_eq!(received, SIZE);
    assert_eq!(hex::encode(hasher.finalize()), sent_sha, "byte-identical");
    let peak = server.running.peak_rss_kib();
    eprintln!(
        "downloaded 1 GiB; server peak RSS {peak} KiB; {:?} in all",
        started.elapsed()
    );
    assert!(peak > 0, "VmHWM is readable");
    assert!(
        peak < PEAK_LIMIT_KIB,
        "server peak RSS {peak} KiB: the item was held in memory"
    );
}

#[tokio::test]
async fn a_range_request_returns_exactly_those_bytes() {
    let server = Server::start(&[]);
    let admin = server.admin();
    // Larger than the store keeps inline and several 64 KiB sealed chunks long.
    let content: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_be_bytes()).collect();
    let size = content.len() as u64;
    let mut s = session(&server).await;
    let big = id_of(&send_text(&mut s, &content, Some("ranges.bin"), false).await);
    let small = id_of(&send_text(&mut s, b"0123456789", None, false).await);
    s.end().await.unwrap();

    let cases: Vec<(&str, std::ops::Range<u64>)> = vec![
        ("bytes=0-99", 0..100),
        ("bytes=65530-65545", 65530..65546),
        ("bytes=131071-131072", 131071..131073),
        ("bytes=1000000-", 1_000_000..size),
        ("bytes=-100", size - 100..size),
        ("bytes=1199990-2000000", 1_199_990..size),
        ("bytes=7-7", 7..8),
    ];
    for (range, expected) in cases {
        let response = admin
            .get_with(&format!("/api/items/{big}/content"), &[("Range", range)])
            .await;
        assert_eq!(response.status(), 206, "{range}");
        let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(
            header("content-range"),
            format!("bytes {}-{}/{size}", expected.start, expected.end - 1),
            "{range}"
        );
        assert_eq!(
            header("content-length"),
            (expected.end - expected.start).to_string(),
            "{range}"
        );
        assert_eq!(header("accept-ranges"), "bytes");
        let body = response.bytes().await.unwrap();
        assert!(
            body[..] == content[expected.start as usize..expected.end as usize],
            "{range}: wrong bytes"
        );
    }

    let small_range = admin
        .get_with(
            &format!("/api/items/{small}/content"),
            &[("Range", "bytes=2-4")],
        )
        .await;
    assert_eq!(small_range.status(), 206);
    assert_eq!(&small_range.bytes().await.unwrap()[..], b"234");

    let beyond = admin
        .get_with(
            &format!("/api/items/{big}/content"),
            &[("Range", "bytes=1200000-")],
        )
        .await;
    assert_eq!(beyond.status(), 416);
    assert_eq!(
        beyond.headers()["content-range"],
        format!("bytes */{size}").as_str()
    );
    assert_eq!(
        beyond.json::<Value>().await.unwrap()["error"]["code"],
        "range_not_satisfiable"
    );

    // A range the server does not serve (several of them) gets the whole content.
    let several = admin
        .get_with(
            &format!("/api/items/{small}/content"),
            &[("Range", "bytes=0-1,4-5")],
        )
        .await;
    assert_eq!(several.status(), 200);
    assert_eq!(&several.bytes().await.unwrap()[..], b"0123456789");
}

/// Flips one byte of a file in place (the server keeps running).
fn flip_byte(path: &std::path::Path, offset: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.read_exact(&mut byte).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(&[byte[0] ^ 0x5a]).unwrap();
    file.sync_all().unwrap();
}

/// Waits (with a deadline) until the server's log has a line naming `id` at ERROR.
async fn wait_for_logged_error(server: &Server, id: &str) -> String {
    wait_until(Duration::from_secs(10), async || {
        let log = std::fs::read_to_string(server.log_file()).unwrap_or_default();
        log.lines()
            .find(|line| line.contains(id) && line.contains("ERROR"))
            .map(str::to_owned)
            .ok_or_else(|| format!("no ERROR line names {id}; the log:\n{log}"))
    })
    .await
}

#[tokio::test]
async fn a_tampered_record_is_refused_and_logged() {
    // Sealed records (crates/crypto/FORMAT.md): a header (magic 8, version 1, key-id
    // length 1, key id, nonce prefix 7), then data chunks of 64 KiB + a 16-byte tag.
    const CHUNK: u64 = 65_536 + 16;
    let server = Server::start_logged(&[]);
    let admin = server.admin();
    let content: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut s = session(&server).await;
    let first = id_of(&send_text(&mut s, &content, Some("first.bin"), false).await);
    let later = id_of(&send_text(&mut s, &content, Some("later.bin"), false).await);
    let intact = id_of(&send_text(&mut s, &content, Some("intact.bin"), false).await);
    s.end().await.unwrap();
    let record = |id: &str| {
        server
            .data_dir()
            .join("store/items")
            .join(format!("{id}.rec"))
    };
    let header_len = |id: &str| {
        let rec = record(id);
        assert!(rec.exists(), "large items are stored as {}", rec.display());
        let bytes = std::fs::read(&rec).unwrap();
        assert_eq!(&bytes[..8], b"FERRYREC");
        8 + 1 + 1 + u64::from(bytes[9]) + 7
    };

    // A changed byte in the first chunk: a clean error before any byte is sent.
    flip_byte(&record(&first), header_len(&first) + 100);
    let response = admin.get(&format!("/api/items/{first}/content")).await;
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "integrity_failure", "{body}");
    let line = wait_for_logged_error(&server, &first).await;
    eprintln!("logged: {line}");

    // A changed byte in chunk 5: the body breaks off (what arrives before it is
    // checked by the admin crate's tests), and the failure is logged.
    flip_byte(&record(&later), header_len(&later) + 5 * CHUNK + 7);
    let response = admin.get(&format!("/api/items/{later}/content")).await;
    let mut body = response.bytes_stream();
    let mut received = 0;
    while let Some(Ok(bytes)) = body.next().await {
        received += bytes.len();
    }
    assert!(
        received < content.len(),
        "the whole tampered item was served"
    );
    wait_for_logged_error(&server, &later).await;

    // The untouched record is unaffected, and the server still serves.
    assert_eq!(
        admin.content_digest(&intact).await,
        (content.len() as u64, sha256_hex(&content))
    );
}

#[tokio::test]
async fn requests_without_or_with_a_wrong_token_get_401() {
    let server = Server::start(&[]);
    let admin = server.admin();
    let mut s = session(&server).await;
    let id = id_of(&send_text(&mut s, b"secret", None, false).await);
    s.end().await.unwrap();

    let http = crate::harness::http();
    let protected = [
        ("GET", "/api/items".to_owned()),
        ("GET", format!("/api/items/{id}")),
        ("GET", format!("/api/items/{id}/content")),
        ("DELETE", format!("/api/items/{id}")),
        ("GET", "/api/events".to_owned()),
        ("GET", "/metrics".to_owned()),
    ];
    let wrong = format!("{}x", admin.token);
    let credentials: [Option<String>; 5] = [
        None,
        Some(format!("Bearer {wrong}")),
        Some("Bearer ".to_owned()),
        Some(format!("Basic {}", admin.token)),
        Some(admin.token.clone()),
    ];
    for (method, path) in &protected {
        for authorization in &credentials {
            let mut request =
                http.request(method.parse().unwrap(), format!("{}{path}", admin.base));
            if let Some(value) = authorization {
                request = request.header("Authorization", value);
            }
            let response = request.send().await.unwrap();
            let what = format!(
                "{method} {path} with {:?}",
                authorization
                    .as_ref()
                    .map(|a| a.replace(&admin.token, "<token>"))
            );
            assert_eq!(response.status(), 401, "{what}");
            assert_eq!(
                response.headers()["www-authenticate"],
                r#"Bearer realm="ferry-admin""#,
                "{what}"
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{what}");
            assert_eq!(body["error"]["status"], 401, "{what}");
        }
    }
    // Nothing was deleted, and the right token (any case of the scheme) works.
    let ok = http
        .get(format!("{}/api/items/{id}", admin.base))
        .header("Authorization", format!("bearer {}", admin.token))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    for open in ["/healthz", "/readyz", "/openapi.json", "/"] {
        assert_eq!(
            http.get(format!("{}{open}", admin.base))
                .send()
                .await
                .unwrap()
                .status(),
            200,
            "{open} needs no token"
        );
    }
}

#[tokio::test]
async fn deleted_items_are_gone_and_live_events_announce_new_ones() {
    let server = Server::start(&[]);
    let admin = server.admin();

    let events = admin
        .get_with("/api/events", &[("Accept", "text/event-stream")])
        .await;
    assert_eq!(events.status(), 200);
    assert!(
        events.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut stream = events.bytes_stream();

    let mut s = session(&server).await;
    let id = id_of(&send_dict(&mut s, json!({"live": true}), Serialization::Json, false).await);
    s.end().await.unwrap();

    let mut text = String::new();
    let deadline = Duration::from_secs(10);
    let found = tokio::time::timeout(deadline, async {
        while let Some(chunk) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if text.contains("\n\n") && text.contains(&id) {
                return;
            }
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "no event for {id} within {deadline:?}: {text:?}"
    );
    assert!(text.contains("event: item"), "{text}");
    let data = text
        .lines()
        .find_map(|line| line.strip_prefix("data:"))
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(data.trim()).unwrap()["id"],
        id.as_str()
    );

    assert_eq!(admin.delete(&id).await, 204);
    assert_eq!(admin.get(&format!("/api/items/{id}")).await.status(), 404);
    assert_eq!(
        admin
            .get(&format!("/api/items/{id}/content"))
            .await
            .status(),
        404
    );
    assert!(admin.all_items().await.is_empty());
    assert_eq!(admin.delete(&id).await, 404, "deleted again");
    assert_eq!(admin.get("/api/items/not-a-ulid").await.status(), 400);
}
