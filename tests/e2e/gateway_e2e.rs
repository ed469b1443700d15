//! The HTTP gateway end to end, against the real `ferry-gateway` and `ferry-server`:
//! every dictionary format, with and without encryption, arrives and reads back
//! identical through the admin API, and its `Location` names the stored item; the
//! TCP payloads of `encrypt=true` requests are Fernet tokens of the server's key
//! (checked on the wire through a recording proxy) and the plain ones carry the
//! plaintext; a 1 GiB upload streams with both processes' memory flat; a legacy
//! Python client and the gateway send at the same time and each hears its own
//! reply; a refusal is a 422, an unreachable server a 503, and the pool reconnects
//! by itself after the server drops every connection.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::harness::gateway::{Gateway, Proxy, Reply, wire_transfers};
use crate::harness::{Server, python_transfers, text_file};
use ferry_crypto::FernetKey;
use futures::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const FORMATS: [&str; 4] = ["json", "binary", "pickle", "xml"];

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A dictionary with nesting, unicode and every JSON type; `n` makes each distinct.
fn sample(n: usize) -> Value {
    json!({
        "sensor": format!("s-{n}"),
        "reading": {"value": 21.5, "unit": "C", "ok": true, "tags": ["roof", "north"]},
        "count": 36,
        "missing": null,
        "label": "Dachboden ☃",
    })
}

/// What the legacy xml form carries: `str(value)` of each top-level value.
fn sample_as_xml_reads_back(n: usize) -> Value {
    json!({
        "sensor": format!("s-{n}"),
        "reading": "{'value': 21.5, 'unit': 'C', 'ok': True, 'tags': ['roof', 'north']}",
        "count": "36",
        "missing": "None",
        "label": "Dachboden ☃",
    })
}

/// The serialization the server reports for a `format` query value.
fn wire_format(format: &str) -> &str {
    if format == "pickle" { "binary" } else { format }
}

#[tokio::test]
async fn every_format_with_and_without_encryption_reads_back_identical_and_is_located() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let admin = server.admin();
    let mut n = 0;
    for format in FORMATS {
        for encrypt in [false, true] {
            n += 1;
            let reply = gateway.post_dict(format, encrypt, &sample(n)).await;
            let id = reply.id();
            let body = &reply.body;
            assert_eq!(body["data_type"], "dictionary", "{body}");
            assert_eq!(body["format"], wire_format(format), "{body}");
            assert_eq!(body["encrypted"], encrypt, "{body}");

            let expected = if format == "xml" {
                sample_as_xml_reads_back(n)
            } else {
                sample(n)
            };
            assert_eq!(
                admin.content_as_json(&id).await,
                expected,
                "{format}, encrypt={encrypt}"
            );

            // Location is the item in the admin API, and it is there.
            let location = reply.location.clone().expect("a Location header");
            assert_eq!(location, format!("{}/api/items/{id}", server.admin_url()));
            let item = admin
                .http
                .get(&location)
                .bearer_auth(&admin.token)
                .send()
                .await
                .unwrap();
            assert_eq!(item.status(), 200, "GET {location}");
            let item: Value = item.json().await.unwrap();
            assert_eq!(item["id"], id.as_str());
            assert_eq!(item["serialization"], wire_format(format), "{item}");
            assert_eq!(item["encrypted_in_transit"], encrypt, "{item}");
            assert_eq!(item["size"], body["size"], "{item}");
            assert_eq!(item["sha256"], body["sha256"], "{item}");
        }
    }
    assert_eq!(admin.all_items().await.len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_requests_travel_as_fernet_tokens_and_plain_ones_as_plaintext() {
    let server = Server::start(&[]);
    let proxy = Proxy::start(&server.tcp()).await;
    let gateway = Gateway::start(&server, &proxy.addr, &[]);
    let key = FernetKey::load(&server.fernet_key_file()).expect("the server's fernet key");
    let marker = "wire-marker-7f3a";

    // sha256 of the plaintext -> (encrypted, format) for every 201.
    let mut sent: HashMap<String, (bool, String)> = HashMap::new();
    for format in FORMATS {
        for encrypt in [false, true] {
            let dict = json!({"marker": marker, "format": format, "encrypt": encrypt, "nested": {"a": [1, 2]}});
            let reply = gateway.post_dict(format, encrypt, &dict).await;
            reply.id();
            sent.insert(
                reply.body["sha256"].as_str().unwrap().to_owned(),
                (encrypt, wire_format(format).to_owned()),
            );
        }
    }
    // Files of several packets: each packet is its own token.
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::read(text_file(dir.path(), "big.txt", 150_000)).unwrap();
    let file = [file, marker.as_bytes().to_vec()].concat();
    for encrypt in [false, true] {
        let reply = gateway
            .post_file(&format!("encrypt={encrypt}&name=big.txt"), file.clone())
            .await;
        reply.id();
        assert_eq!(reply.body["sha256"], sha256_hex(&file));
        sent.insert(
            format!("{}-{encrypt}", sha256_hex(&file)),
            (encrypt, "txt".to_owned()),
        );
    }

    let mut seen = 0;
    for connection in proxy.recorded() {
        for transfer in wire_transfers(&connection) {
            seen += 1;
            let encrypted = transfer.meta.encrypted();
            let plaintext = transfer.plaintext(&key);
            let wire: Vec<u8> = transfer.payloads.concat();
            let format = transfer.meta.serialization().as_str().to_owned();
            let lookup = if format == "txt" {
                format!("{}-{encrypted}", sha256_hex(&plaintext))
            } else {
                sha256_hex(&plaintext)
            };
            assert_eq!(
                sent.remove(&lookup),
                Some((encrypted, format.clone())),
                "a transfer nobody asked for: {format}, encrypted={encrypted}"
            );
            let carries_marker = wire.windows(marker.len()).any(|w| w == marker.as_bytes());
            if encrypted {
                assert!(
                    !carries_marker,
                    "{format}: the plaintext is visible in an encrypted transfer"
                );
                for payload in &transfer.payloads {
                    assert!(
                        payload.starts_with(b"gAAAAA"),
                        "{format}: a payload is not a Fernet token"
                    );
                }
            } else {
                assert!(carries_marker, "{format}: the plaintext is not on the wire");
                assert_eq!(wire, plaintext);
            }
            if format == "txt" {
                assert_eq!(plaintext, file);
                assert!(
                    transfer.payloads.len() >= 4,
                    "150 kB travel in pieces of at most 48,000 bytes"
                );
                assert!(transfer.payloads.iter().all(|p| p.len() <= 65_535));
            }
        }
    }
    assert!(
        sent.is_empty(),
        "requests with no transfer on the wire: {sent:?}"
    );
    assert_eq!(seen, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_gib_upload_streams_with_the_memory_of_both_processes_flat() {
    const LEN: u64 = 1 << 30;
    const CHUNK: usize = 1 << 20;
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);

    // A random 1 MiB block, each chunk stamped with its index: generated while sent.
    let mut block = vec![0u8; CHUNK];
    rand::Rng::fill(&mut rand::rng(), &mut block[..]);
    let hasher = Arc::new(Mutex::new(Sha256::new()));
    let tap = hasher.clone();
    let chunks = futures::stream::iter(0..LEN / CHUNK as u64).map(move |index| {
        let mut chunk = block.clone();
        chunk[..8].copy_from_slice(&index.to_le_bytes());
        tap.lock().unwrap().update(&chunk);
        Ok::<_, std::io::Error>(bytes::Bytes::from(chunk))
    });
    let reply = gateway
        .post_file(
            "encrypt=true&name=huge.bin",
            reqwest::Body::wrap_stream(chunks),
        )
        .await;
    let id = reply.id();
    let sha256 = hex::encode(hasher.lock().unwrap().clone().finalize());
    assert_eq!(reply.body["size"], LEN, "{}", reply.body);
    assert_eq!(reply.body["sha256"], sha256.as_str(), "{}", reply.body);

    let (gateway_kib, server_kib) = (
        gateway.running.peak_rss_kib(),
        server.running.peak_rss_kib(),
    );
    eprintln!("peak RSS after 1 GiB: gateway {gateway_kib} KiB, server {server_kib} KiB");
    assert!(
        gateway_kib > 0 && gateway_kib < 100 * 1024,
        "the gateway peaked at {gateway_kib} KiB"
    );
    assert!(
        server_kib > 0 && server_kib < 100 * 1024,
        "the server peaked at {server_kib} KiB"
    );

    let item = server
        .admin()
        .all_items()
        .await
        .into_iter()
        .find(|item| item["id"] == id.as_str())
        .expect("the item is listed");
    assert_eq!(item["size"], LEN);
    assert_eq!(item["sha256"], sha256.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_python_client_and_the_gateway_sending_at_once_each_hear_their_own_replies() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &["--pool-size", "8"]);
    let dir = tempfile::tempdir().unwrap();
    let python_file = text_file(dir.path(), "python.txt", 2_000_000);

    let mut plan = Vec::new();
    for n in 0..24 {
        let format = ["json", "pickle", "xml"][n % 3];
        plan.push(json!({"kind": "dict", "format": format, "encrypt": n.is_multiple_of(2), "content": {"from": "python", "n": n}}));
    }
    plan.insert(
        12,
        json!({"kind": "text", "path": python_file, "encrypt": true}),
    );
    plan.push(json!({"kind": "text", "path": python_file, "encrypt": false}));
    let python = {
        let (tcp, key, plan) = (
            server.tcp(),
            server.fernet_key_file(),
            Value::Array(plan.clone()),
        );
        tokio::task::spawn_blocking(move || python_transfers(&tcp, Some(&key), "one", &plan))
    };

    // Waves of 8 concurrent requests until the Python client is done (48 at least),
    // so the two overlap whatever the machine's speed.
    let one = |n: usize| {
        let gateway = &gateway;
        async move {
            if n % 8 == 7 {
                let text = format!("gateway file {n}\n").repeat(1000 + n);
                let reply = gateway
                    .post_file(
                        &format!("encrypt={}&name=g{n}.txt", n.is_multiple_of(2)),
                        text.clone(),
                    )
                    .await;
                (n, reply, Expected::File(text))
            } else {
                let format = FORMATS[n % 4];
                let reply = gateway
                    .post_dict(
                        format,
                        n.is_multiple_of(2),
                        &json!({"from": "gateway", "n": n}),
                    )
                    .await;
                // xml carries str(value).
                let reads_back = if format == "xml" {
                    json!({"from": "gateway", "n": n.to_string()})
                } else {
                    json!({"from": "gateway", "n": n})
                };
                (n, reply, Expected::Dict(reads_back))
            }
        }
    };
    let mut replies: Vec<(usize, Reply, Expected)> = Vec::new();
    let mut waves_while_python_ran = 0;
    while !python.is_finished() || replies.len() < 48 {
        if !python.is_finished() {
            waves_while_python_ran += 1;
        }
        let first = replies.len();
        replies.extend(futures::future::join_all((first..first + 8).map(one)).await);
    }
    assert!(waves_while_python_ran > 0);
    let python = python.await.unwrap();

    assert_eq!(python.len(), plan.len());
    for (n, sent) in python.iter().enumerate() {
        assert_eq!(sent.reply, "OK", "python transfer {n}");
    }
    let admin = server.admin();
    let listed: HashSet<String> = admin
        .all_items()
        .await
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed.len(), plan.len() + replies.len());
    for (n, reply, expected) in replies {
        let id = reply.id();
        assert!(listed.contains(&id), "request {n}: {id} is not listed");
        match expected {
            Expected::Dict(dict) => {
                assert_eq!(admin.content_as_json(&id).await, dict, "request {n}")
            }
            Expected::File(text) => {
                assert_eq!(
                    reply.body["sha256"],
                    sha256_hex(text.as_bytes()),
                    "request {n}"
                );
                assert_eq!(admin.content(&id).await, text.as_bytes(), "request {n}");
            }
        }
    }
}

/// What a gateway request sent, to check its reply against.
#[derive(Debug)]
enum Expected {
    Dict(Value),
    File(String),
}

#[tokio::test]
async fn a_refusal_by_the_server_is_a_422_with_its_reason_and_the_next_request_succeeds() {
    let server = Server::start(&["--allow-pickle", "false"]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    for format in ["pickle", "binary"] {
        for encrypt in [false, true] {
            let reply = gateway.post_dict(format, encrypt, &sample(1)).await;
            assert_eq!(reply.status, 422, "{}", reply.body);
            assert_eq!(reply.code(), "upstream_refused", "{}", reply.body);
            assert_eq!(reply.body["error"]["status"], 422);
            let message = reply.body["error"]["message"].as_str().unwrap();
            assert!(
                message.to_lowercase().contains("pickl"),
                "the server's reason: {message}"
            );
            assert!(reply.location.is_none());
        }
    }
    gateway.post_dict("json", true, &sample(2)).await.id();
    assert_eq!(server.admin().all_items().await.len(), 1);
}

#[tokio::test]
async fn an_unreachable_server_is_a_503() {
    // Nothing listens: the port of a listener that is closed again.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let server = Server::start(&[]);
    let nowhere = Gateway::start(&server, &closed, &[]);
    for reply in [
        nowhere.post_dict("json", false, &sample(1)).await,
        nowhere.post_file("name=a.txt", "text").await,
    ] {
        assert_eq!(
            (reply.status, reply.code()),
            (503, "upstream_unavailable"),
            "{}",
            reply.body
        );
    }

    // A server that goes away after the pool has sessions to it.
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    gateway.post_dict("json", false, &sample(2)).await.id();
    let mut server = server;
    server.running.kill();
    for reply in [
        gateway.post_dict("json", false, &sample(3)).await,
        gateway.post_file("name=b.txt", "text").await,
    ] {
        assert_eq!(
            (reply.status, reply.code()),
            (503, "upstream_unavailable"),
            "{}",
            reply.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_reconnects_by_itself_when_the_server_drops_every_connection() {
    let server = Server::start(&[]);
    let proxy = Proxy::start(&server.tcp()).await;
    let gateway = Gateway::start(&server, &proxy.addr, &[]);
    let text = "line of a file\n".repeat(10_000);

    gateway.post_dict("json", true, &sample(1)).await.id();
    gateway
        .post_file("encrypt=true&name=a.txt", text.clone())
        .await
        .id();
    let before = proxy.connections();
    assert!(before >= 1);

    // As a server restart would: every open connection is closed under the pool.
    proxy.drop_all().await;
    gateway.post_dict("xml", false, &sample(2)).await.id();
    gateway.post_file("name=b.txt", text.clone()).await.id();
    assert!(
        proxy.connections() > before,
        "the pool opened a new connection"
    );

    // And again, a file first this time.
    proxy.drop_all().await;
    let reply = gateway
        .post_file("encrypt=true&name=c.txt", text.clone())
        .await;
    reply.id();
    assert_eq!(reply.body["sha256"], sha256_hex(text.as_bytes()));
    gateway.post_dict("pickle", true, &sample(3)).await.id();

    let admin = server.admin();
    assert_eq!(admin.all_items().await.len(), 6);
    // Still the same gateway process: nothing was restarted.
    let healthz = crate::harness::http()
        .get(format!("{}/healthz", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200);
}
