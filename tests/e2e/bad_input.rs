//! Bad input keeps the server serving: random bytes, truncated packets, wrong keys,
//! tampered tokens, INITIAL twice, a peer that vanishes mid-transfer, a peer that
//! stalls, more connections than the cap.
//!
//! What the server promises (crates/server/src/connection.rs, transfer.rs):
//! - a refusal that keeps the framing intact (bad token, wrong key, encryption or
//!   pickle disabled, undecodable or oversized dictionary) drains the rest of the
//!   transfer, answers ONE `ERROR: …`, and the connection stays usable;
//! - a broken framing (INITIAL twice, a packet with no transfer open, a bad meta
//!   byte) is answered `ERROR: …` and the connection is closed;
//! - an unassigned operation byte is ignored, with no reply;
//! - whatever happens, nothing refused or partial is ever listed.

use crate::harness::raw::{self, Heard, Raw};
use crate::harness::{Server, assert_still_serves, wait_until};
use ferry_crypto::FernetKey;
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const QUIET: Duration = Duration::from_millis(300);

fn json_transfer(body: &str) -> Vec<u8> {
    raw::transfer(raw::dict_meta(2, false), body.as_bytes())
}

fn server_key(server: &Server) -> FernetKey {
    FernetKey::load(&server.fernet_key_file()).unwrap()
}

/// Three packets of text whose payloads are `tokens` (for the encrypted cases).
fn three_packets(meta: u8, payloads: [&[u8]; 3]) -> Vec<u8> {
    raw::packets(meta, &payloads)
}

/// Sends a transfer that must be refused, then a good one on the same connection:
/// exactly one `ERROR: …` for the first, exactly `OK` for the second. Returns the error.
async fn refused_then_usable(server: &Server, bad: &[u8]) -> String {
    let mut conn = Raw::connect(&server.tcp()).await;
    let reply = conn.exchange(bad).await;
    assert!(reply.starts_with("ERROR: "), "refused transfer: {reply:?}");
    assert_eq!(
        conn.exchange(&json_transfer(r#"{"after": "refusal"}"#))
            .await,
        "OK",
        "the connection stays usable, with no second reply"
    );
    conn.end().await;
    reply
}

/// After the hostile part of a test: a fresh client is served, and exactly `good`
/// items are listed (the good transfers; nothing refused or partial).
async fn still_serving_and_only_good_items_listed(server: &Server, good: usize) {
    assert_still_serves(server).await;
    server
        .admin()
        .wait_for_count(good + 1, Duration::from_secs(5))
        .await;
}

/// Waits until the store holds no temporary file of an unfinished item.
async fn no_unfinished_item_is_kept(server: &Server) {
    let tmp = server.data_dir().join("store/tmp");
    wait_until(Duration::from_secs(5), async || {
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        match left.is_empty() {
            true => Ok(()),
            false => Err(format!("left in {}: {left:?}", tmp.display())),
        }
    })
    .await;
}

// ---- Refusals that keep the framing: one ERROR, connection still usable ----

#[tokio::test]
async fn tokens_made_with_a_wrong_key_are_refused_once_and_the_connection_stays_usable() {
    let server = Server::start(&[]);
    let wrong = FernetKey::generate();
    let tokens = [
        wrong.encrypt(b"one"),
        wrong.encrypt(b"two"),
        wrong.encrypt(b"three"),
    ];
    let bad = three_packets(raw::text_meta(true), [&tokens[0], &tokens[1], &tokens[2]]);
    let reason = refused_then_usable(&server, &bad).await;
    assert!(
        reason.to_lowercase().contains("token"),
        "the reason names the token: {reason}"
    );
    still_serving_and_only_good_items_listed(&server, 1).await;
}

#[tokio::test]
async fn tampered_tokens_are_refused_once_and_the_connection_stays_usable() {
    let server = Server::start(&[]);
    let key = server_key(&server);
    let good = key.encrypt(b"a piece of text");
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    let truncated = &good[..good.len() - 4];
    let cases: [[&[u8]; 3]; 4] = [
        [&good, &flipped, &good],
        [&flipped, &good, &good],
        [&good, &good, truncated],
        [&good, b"not a token at all", &good],
    ];
    for payloads in cases {
        refused_then_usable(&server, &three_packets(raw::text_meta(true), payloads)).await;
    }
    // The same key with intact tokens is accepted: the refusals were the tampering.
    let mut conn = Raw::connect(&server.tcp()).await;
    assert_eq!(
        conn.exchange(&three_packets(raw::text_meta(true), [&good, &good, &good]))
            .await,
        "OK"
    );
    conn.end().await;
    still_serving_and_only_good_items_listed(&server, cases.len() + 1).await;
}

#[tokio::test]
async fn a_refused_transfer_gets_no_reply_before_its_final_packet() {
    let server = Server::start(&[]);
    let wrong = FernetKey::generate();
    let token = wrong.encrypt(b"wrong key");
    let whole = three_packets(raw::text_meta(true), [&token, &token, &token]);
    let last_packet = 2 + token.len() + 2;
    let mut conn = Raw::connect(&server.tcp()).await;
    conn.send(&whole[..whole.len() - last_packet])
        .await
        .unwrap();
    assert_eq!(
        conn.hear(QUIET).await,
        Heard::Silence,
        "the refusal waits for the FINAL packet"
    );
    conn.send(&whole[whole.len() - last_packet..])
        .await
        .unwrap();
    assert!(conn.reply().await.starts_with("ERROR: "));
    assert_eq!(conn.exchange(&json_transfer(r#"{"a": 1}"#)).await, "OK");
    conn.end().await;
}

#[tokio::test]
async fn encrypted_transfers_are_refused_when_encryption_is_disabled() {
    let server = Server::start(&["--encryption", "disabled"]);
    let key = FernetKey::generate();
    let token = key.encrypt(br#"{"secret": true}"#);
    refused_then_usable(&server, &raw::packets(raw::dict_meta(2, true), &[&token])).await;
    let token = key.encrypt(b"text");
    refused_then_usable(
        &server,
        &three_packets(raw::text_meta(true), [&token, &token, &token]),
    )
    .await;
    still_serving_and_only_good_items_listed(&server, 2).await;
}

#[tokio::test]
async fn pickles_are_refused_when_pickle_is_disabled() {
    let server = Server::start(&["--allow-pickle", "false"]);
    let pickle = std::fs::read(crate::harness::vectors().join("pickle/flat_str.p4.pkl")).unwrap();
    let reason =
        refused_then_usable(&server, &raw::transfer(raw::dict_meta(1, false), &pickle)).await;
    assert!(
        reason.to_lowercase().contains("pickle"),
        "the reason names pickle: {reason}"
    );
    let hostile =
        std::fs::read(crate::harness::vectors().join("pickle/hostile_reduce.p4.pkl")).unwrap();
    refused_then_usable(&server, &raw::transfer(raw::dict_meta(1, false), &hostile)).await;
    still_serving_and_only_good_items_listed(&server, 2).await;
}

#[tokio::test]
async fn undecodable_dictionaries_are_refused_once_and_the_connection_stays_usable() {
    let server = Server::start(&[]);
    let cases: [(u8, &[u8]); 9] = [
        (2, b"{not json"),
        (2, b"[1, 2, 3]"),
        (2, b""),
        (2, b"{\"a\": 1} trailing"),
        (3, b"<root><a>unclosed"),
        (3, b"not xml at all"),
        (1, b"\x80\x04garbage"),
        (1, b""),
        (1, b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01."), // a pickled int, not a dict
    ];
    for (serialization, body) in cases {
        // Cut into several packets so that draining is exercised.
        let pieces: Vec<&[u8]> = if body.len() > 4 {
            body.chunks(body.len() / 3 + 1).collect()
        } else {
            vec![body]
        };
        refused_then_usable(
            &server,
            &raw::packets(raw::dict_meta(serialization, false), &pieces),
        )
        .await;
    }
    still_serving_and_only_good_items_listed(&server, cases.len()).await;
}

#[tokio::test]
async fn dictionaries_over_the_size_limit_are_refused_once_and_the_connection_stays_usable() {
    let server = Server::start(&["--max-dict-bytes", "1000"]);
    let body = format!(r#"{{"blob": "{}"}}"#, "z".repeat(3000));
    let pieces: Vec<&[u8]> = body.as_bytes().chunks(700).collect();
    let reason =
        refused_then_usable(&server, &raw::packets(raw::dict_meta(2, false), &pieces)).await;
    assert!(
        reason.contains("1000"),
        "the reason gives the limit: {reason}"
    );
    still_serving_and_only_good_items_listed(&server, 1).await;
}

#[tokio::test]
async fn plain_transfers_are_refused_when_encryption_is_required() {
    let server = Server::start(&["--encryption", "required"]);
    let reason = refused_then_usable_encrypted(
        &server,
        &raw::transfer(raw::text_meta(false), b"plain text"),
    )
    .await;
    assert!(
        reason.to_lowercase().contains("encrypt"),
        "the reason names encryption: {reason}"
    );
    assert_eq!(
        server.admin().all_items().await.len(),
        1,
        "only the encrypted transfer is listed"
    );
}

/// Like [`refused_then_usable`], the good transfer being an encrypted one.
async fn refused_then_usable_encrypted(server: &Server, bad: &[u8]) -> String {
    let key = server_key(server);
    let mut conn = Raw::connect(&server.tcp()).await;
    let reply = conn.exchange(bad).await;
    assert!(reply.starts_with("ERROR: "), "refused transfer: {reply:?}");
    assert_eq!(
        conn.exchange(&raw::encrypted_transfer(
            raw::dict_meta(2, true),
            br#"{"a": 1}"#,
            &key
        ))
        .await,
        "OK"
    );
    conn.end().await;
    reply
}

#[tokio::test]
async fn texts_over_the_item_size_limit_are_refused_once_and_nothing_is_kept() {
    let server = Server::start(&["--max-item-bytes", "300000"]);
    let text = vec![b't'; 500_000];
    refused_then_usable(&server, &raw::transfer(raw::text_meta(false), &text)).await;
    let key = server_key(&server);
    refused_then_usable(
        &server,
        &raw::encrypted_transfer(raw::text_meta(true), &text, &key),
    )
    .await;
    // Up to the limit is fine.
    let mut conn = Raw::connect(&server.tcp()).await;
    assert_eq!(
        conn.exchange(&raw::transfer(raw::text_meta(false), &text[..300_000]))
            .await,
        "OK"
    );
    conn.end().await;
    still_serving_and_only_good_items_listed(&server, 3).await;
    no_unfinished_item_is_kept(&server).await;
}

// ---- Broken framing: ERROR, then the connection is closed ----

/// An INITIAL text packet without FINAL: a transfer left open.
const OPENED: [u8; 7] = [0x08, 0x00, 0x00, 0x03, b'a', b'b', b'c'];

async fn broken_framing_closes_the_connection(bytes: &[u8]) {
    let server = Server::start(&[]);
    let mut conn = Raw::connect(&server.tcp()).await;
    conn.send(bytes).await.unwrap();
    let reply = conn.reply().await;
    assert!(
        reply.starts_with("ERROR: ") && reply.contains("protocol"),
        "reply: {reply:?}"
    );
    assert!(
        conn.closed_within(Duration::from_secs(5)).await,
        "the connection is closed after a protocol error"
    );
    still_serving_and_only_good_items_listed(&server, 0).await;
    no_unfinished_item_is_kept(&server).await;
}

#[tokio::test]
async fn initial_twice_is_answered_with_an_error_and_the_connection_closed() {
    let mut bytes = OPENED.to_vec();
    bytes.extend_from_slice(&raw::transfer(raw::text_meta(false), b"again"));
    broken_framing_closes_the_connection(&bytes).await;
}

#[tokio::test]
async fn a_packet_with_no_transfer_open_is_answered_with_an_error_and_the_connection_closed() {
    broken_framing_closes_the_connection(&[0x04, 0x00, 0x02, b'h', b'i']).await;
    broken_framing_closes_the_connection(&[0x00, 0x00, 0x00]).await;
}

#[tokio::test]
async fn an_unknown_meta_byte_is_answered_with_an_error_and_the_connection_closed() {
    for meta in [0xff, 0x40, 0x01, 0x20 | (5 << 2)] {
        broken_framing_closes_the_connection(&[0x0c, meta, 0x00, 0x02, b'{', b'}']).await;
    }
}

#[tokio::test]
async fn a_malformed_operation_byte_is_answered_with_an_error_and_the_connection_closed() {
    broken_framing_closes_the_connection(&[0x0d, 0x00, 0x00, 0x00]).await;
}

#[tokio::test]
async fn end_inside_a_transfer_is_answered_with_an_error_and_the_connection_closed() {
    let mut bytes = OPENED.to_vec();
    bytes.push(0x10);
    broken_framing_closes_the_connection(&bytes).await;
}

#[tokio::test]
async fn unassigned_operation_bytes_are_ignored_with_no_reply() {
    let server = Server::start(&[]);
    let mut conn = Raw::connect(&server.tcp()).await;
    // Operations 4-15 (2 and 3 are Ferry's extensions), with every low nibble.
    let unassigned: Vec<u8> = (0x40..=0xff).collect();
    conn.send(&unassigned).await.unwrap();
    assert_eq!(
        conn.hear(QUIET).await,
        Heard::Silence,
        "no reply to unassigned operations"
    );
    // Between the packets of a transfer too, as the legacy server read them.
    let mut transfer = raw::packets(raw::text_meta(false), &[b"abc", b"def"]);
    let first_packet_len = 1 + 1 + 2 + 3;
    transfer.splice(first_packet_len..first_packet_len, [0x50, 0x60, 0xf0]);
    assert_eq!(conn.exchange(&transfer).await, "OK");
    conn.end().await;
    let items = server
        .admin()
        .wait_for_count(1, Duration::from_secs(5))
        .await;
    assert_eq!(
        server
            .admin()
            .content(items[0]["id"].as_str().unwrap())
            .await,
        b"abcdef"
    );
}

// ---- Garbage and cut-off transfers ----

/// Sends `bytes`, then closes the sending side; the server must close its side soon
/// (a reply on the way is fine). Sending may fail when it closes first.
async fn send_and_hang_up(addr: &str, bytes: &[u8]) {
    use tokio::io::AsyncWriteExt;
    let mut conn = Raw::connect(addr).await;
    let _ = conn.send(bytes).await;
    let _ = conn.stream.shutdown().await;
    assert!(
        conn.closed_within(Duration::from_secs(10)).await,
        "the server hung on to a connection after {} bytes",
        bytes.len()
    );
}

#[tokio::test]
async fn random_bytes_on_many_connections_leave_the_server_serving() {
    let server = Server::start(&[]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x_f377_9b4d);
    let buffers: Vec<Vec<u8>> = (0..300)
        .map(|index| {
            let len = if index % 10 == 0 {
                rng.random_range(10_000..70_000)
            } else {
                rng.random_range(1..600)
            };
            let mut buffer = vec![0u8; len];
            rng.fill(&mut buffer[..]);
            // Some start like a real transfer, so that garbage reaches the decoders.
            if index % 3 == 0 {
                buffer[0] = 0x08 | if index % 2 == 0 { 0x04 } else { 0 };
                buffer[1] = [0x00, 0x02, 0x24, 0x28, 0x2c, 0x26, 0x2a][index % 7];
            }
            buffer
        })
        .collect();
    let addr = server.tcp();
    futures::stream::iter(&buffers)
        .for_each_concurrent(16, |buffer| send_and_hang_up(&addr, buffer))
        .await;
    assert_still_serves(&server).await;
    // Random bytes may happen to frame a valid text: whatever is listed must be whole.
    let admin = server.admin();
    for item in admin.all_items().await {
        let id = item["id"].as_str().unwrap();
        assert_eq!(
            admin.content_digest(id).await,
            (
                item["size"].as_u64().unwrap(),
                item["sha256"].as_str().unwrap().to_owned()
            ),
            "{id} is intact"
        );
    }
    no_unfinished_item_is_kept(&server).await;
}

#[tokio::test]
async fn every_truncation_of_a_transfer_lists_nothing() {
    let server = Server::start(&[]);
    let key = server_key(&server);
    let tokens = [
        key.encrypt(b"first piece"),
        key.encrypt(b"second"),
        key.encrypt(b""),
    ];
    let transfers = [
        raw::packets(
            raw::text_meta(false),
            &[b"The quick brown fox", b" jumps over", b" the lazy dog."],
        ),
        raw::packets(
            raw::dict_meta(2, false),
            &[br#"{"a": [1, 2"#, br#", 3], "b""#, br#": "c"}"#],
        ),
        raw::packets(raw::text_meta(true), &[&tokens[0], &tokens[1], &tokens[2]]),
    ];
    let addr = server.tcp();
    let prefixes: Vec<&[u8]> = transfers
        .iter()
        .flat_map(|whole| (0..whole.len()).map(move |cut| &whole[..cut]))
        .collect();
    assert!(prefixes.len() > 300);
    futures::stream::iter(prefixes)
        .for_each_concurrent(16, |prefix| send_and_hang_up(&addr, prefix))
        .await;
    still_serving_and_only_good_items_listed(&server, 0).await;
    // The whole transfers themselves are fine: the truncations were the only problem.
    let mut conn = Raw::connect(&addr).await;
    for whole in &transfers {
        assert_eq!(conn.exchange(whole).await, "OK");
    }
    conn.end().await;
    server
        .admin()
        .wait_for_count(1 + transfers.len(), Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn a_peer_that_vanishes_mid_transfer_leaves_nothing_listed() {
    let server = Server::start(&[]);
    let key = server_key(&server);
    let big = vec![b'v'; 48_000];
    let token = key.encrypt(&big);
    // Small and large (over 256 KiB, written to a temporary file) texts, plain and
    // encrypted, and a dictionary, each cut off before its FINAL packet.
    let half_transfers: Vec<Vec<u8>> = vec![
        raw::packets(
            raw::text_meta(false),
            &[b"only the start", b"never finished"],
        ),
        raw::packets(raw::text_meta(false), &[big.as_slice(); 9]),
        raw::packets(raw::text_meta(true), &[token.as_slice(); 9]),
        raw::packets(raw::dict_meta(2, false), &[br#"{"a": "#, b"1}"]),
    ];
    for whole in &half_transfers {
        let mut conn = Raw::connect(&server.tcp()).await;
        let cut = whole.len() - 1; // the FINAL packet never completes
        conn.send(&whole[..cut]).await.unwrap();
        assert_eq!(conn.hear(Duration::from_millis(50)).await, Heard::Silence);
        drop(conn);
    }
    // A later transfer is listed, and alone.
    still_serving_and_only_good_items_listed(&server, 0).await;
    no_unfinished_item_is_kept(&server).await;
}

#[tokio::test]
async fn a_stalled_peer_is_dropped_after_the_idle_timeout() {
    let server = Server::start(&["--idle-timeout", "1"]);
    let addr = server.tcp();
    let stalls: [&[u8]; 4] = [
        b"",                                   // says nothing at all
        &[0x0c, 0x00, 0x00],                   // half a packet header
        &OPENED,                               // an open transfer
        &[0x0c, 0x00, 0x00, 0x10, b'p', b'a'], // half a payload
    ];
    let started = Instant::now();
    let stalled = futures::future::join_all(stalls.iter().map(|bytes| {
        let addr = addr.clone();
        async move {
            let mut conn = Raw::connect(&addr).await;
            conn.send(bytes).await.unwrap();
            let closed = conn.closed_within(Duration::from_secs(5)).await;
            (closed, started.elapsed())
        }
    }))
    .await;
    for ((closed, after), bytes) in stalled.into_iter().zip(stalls) {
        assert!(
            closed,
            "a peer stalled after {bytes:?} was not dropped within 5 s"
        );
        assert!(
            after >= Duration::from_millis(900),
            "dropped after {after:?}, before the 1 s idle timeout"
        );
    }
    // A peer that keeps talking is not idle, however long its session.
    let mut busy = Raw::connect(&addr).await;
    for _ in 0..3 {
        assert_eq!(
            busy.exchange(&json_transfer(r#"{"alive": true}"#)).await,
            "OK"
        );
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert_eq!(
        busy.exchange(&json_transfer(r#"{"alive": true}"#)).await,
        "OK"
    );
    busy.end().await;
    still_serving_and_only_good_items_listed(&server, 4).await;
    no_unfinished_item_is_kept(&server).await;
}

#[tokio::test]
async fn a_peer_that_dribbles_bytes_mid_transfer_is_dropped() {
    let server = Server::start(&["--idle-timeout", "1"]);
    let mut conn = Raw::connect(&server.tcp()).await;
    conn.send(&OPENED).await.unwrap();
    // One byte every 100 ms never trips the idle timeout, but is far too slow.
    let started = Instant::now();
    let mut dropped = false;
    for _ in 0..60 {
        if conn.send(&[0x00]).await.is_err() || conn.closed_within(Duration::from_millis(100)).await
        {
            dropped = true;
            break;
        }
    }
    assert!(
        dropped,
        "a dribbling peer was still connected after {:?}",
        started.elapsed()
    );
    still_serving_and_only_good_items_listed(&server, 0).await;
    no_unfinished_item_is_kept(&server).await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_ends() {
    let server = Server::start(&["--max-connections", "2"]);
    let addr = server.tcp();
    let mut first = Raw::connect(&addr).await;
    let mut second = Raw::connect(&addr).await;
    assert_eq!(
        first.exchange(&json_transfer(r#"{"who": "first"}"#)).await,
        "OK"
    );
    assert_eq!(
        second
            .exchange(&json_transfer(r#"{"who": "second"}"#))
            .await,
        "OK"
    );
    let mut third = Raw::connect(&addr).await;
    third
        .send(&json_transfer(r#"{"who": "third"}"#))
        .await
        .unwrap();
    assert_eq!(
        third.hear(Duration::from_millis(500)).await,
        Heard::Silence,
        "the third connection waits while two are held"
    );
    // The first two keep working meanwhile.
    assert_eq!(
        first
            .exchange(&json_transfer(r#"{"who": "first", "again": 1}"#))
            .await,
        "OK"
    );
    assert_eq!(
        second
            .exchange(&json_transfer(r#"{"who": "second", "again": 1}"#))
            .await,
        "OK"
    );
    assert_eq!(third.hear(Duration::from_millis(200)).await, Heard::Silence);
    first.end().await;
    assert_eq!(
        third.reply().await,
        "OK",
        "the third is served once one of the first two ends"
    );
    assert_eq!(
        second
            .exchange(&json_transfer(r#"{"who": "second", "again": 2}"#))
            .await,
        "OK"
    );
    third.end().await;
    second.end().await;
    still_serving_and_only_good_items_listed(&server, 6).await;
}
