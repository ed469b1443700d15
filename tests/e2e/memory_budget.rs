//! Memory bounded whoever connects: many connections each sending a large,
//! unfinished dictionary hold no more than the in-flight budget
//! (`--max-inflight-bytes`), the server's resident memory stays under that budget
//! plus a fixed overhead, other clients' small transfers keep being served, a
//! legacy client whose large dictionary cannot get memory in time hears `ERROR:`
//! (not a hang), and the memory comes back when the transfers end.

use crate::harness::raw::{self, Raw};
use crate::harness::{Admin, Server, python_client, wait_until};
use serde_json::json;
use std::time::Duration;

const MIB: u64 = 1024 * 1024;
/// The budget given to the server.
const BUDGET: u64 = 32 * MIB;
/// What the server's memory grows by under the hostile load besides the
/// dictionaries in flight (buffers of the connections and of the store's
/// catalog, glibc's arenas of the threads that run them): the peak, measured
/// on 3 December 2026, was 48–50 MiB over the idle server's 36 MiB, for the
/// budget's 32.
const SLACK: u64 = 24 * MIB;
/// Each hostile connection's unfinished dictionary.
const HOSTILE_BYTES: usize = 8 * 1024 * 1024;

/// The legacy framing of a json dictionary's first `len` bytes, FINAL never sent.
fn unfinished_json(len: usize) -> Vec<u8> {
    let mut data = b"{\"k\": \"".to_vec();
    data.resize(len, b'a');
    let mut out = Vec::new();
    for (index, piece) in data.chunks(48_000).enumerate() {
        if index == 0 {
            out.extend_from_slice(&[0x08, raw::dict_meta(2, false)]);
        } else {
            out.push(0x00);
        }
        out.extend_from_slice(&(piece.len() as u16).to_be_bytes());
        out.extend_from_slice(piece);
    }
    out
}

/// The FINAL packet that ends an open transfer (empty).
const FINAL: [u8; 3] = [0x04, 0, 0];

/// The budget held now, from `/metrics`.
async fn inflight(admin: &Admin) -> u64 {
    admin
        .metrics()
        .await
        .lines()
        .find_map(|line| line.strip_prefix("ferry_inflight_dict_bytes "))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

async fn wait_for_inflight(admin: &Admin, at_least: u64) {
    wait_until(Duration::from_secs(60), async || {
        match inflight(admin).await {
            held if held >= at_least => Ok(()),
            held => Err(format!("the budget holds {held} bytes, not {at_least}")),
        }
    })
    .await;
}

#[tokio::test]
async fn hostile_unfinished_dictionaries_hold_at_most_the_budget_and_small_transfers_go_on() {
    let server = Server::start(&[
        "--max-inflight-bytes",
        &BUDGET.to_string(),
        "--inflight-wait",
        "2",
        "--idle-timeout",
        "300",
    ]);
    let admin = server.admin();
    let addr = server.tcp();
    let baseline = server.running.rss_bytes();
    let hostile = unfinished_json(HOSTILE_BYTES);

    // Two holders take most of the budget and keep it.
    let mut holders = Vec::new();
    for count in 1..=2u64 {
        let mut conn = Raw::connect(&addr).await;
        conn.send(&hostile).await.unwrap();
        wait_for_inflight(&admin, count * HOSTILE_BYTES as u64).await;
        holders.push(conn);
    }

    // Many more: they cannot all get memory, and are refused after the wait.
    let mut flood = Vec::new();
    for _ in 0..14 {
        let addr = addr.clone();
        let hostile = hostile.clone();
        flood.push(tokio::spawn(async move {
            let mut conn = Raw::connect(&addr).await;
            conn.send(&hostile).await.unwrap();
            conn
        }));
    }

    // Meanwhile, other clients' small transfers are served.
    for n in 0..20 {
        let mut conn = Raw::connect(&addr).await;
        let small = format!(r#"{{"n": {n}}}"#);
        let reply = conn
            .exchange(&raw::transfer(raw::dict_meta(2, false), small.as_bytes()))
            .await;
        assert_eq!(reply, "OK", "small transfer {n} under the hostile load");
        conn.end().await;
    }
    let mut flood_conns = Vec::new();
    for task in flood {
        flood_conns.push(task.await.unwrap());
    }

    // A legacy client's large dictionary cannot get memory in time: an error, not a hang.
    let big = json!({"data": "b".repeat(10 * 1024 * 1024)});
    let replies = python_client(
        &addr,
        None,
        "one",
        &json!([{"kind": "dict", "format": "json", "content": big}]),
    );
    assert!(
        replies[0].starts_with("ERROR: the server is busy"),
        "the legacy client hears why: {replies:?}"
    );

    let peak = server.running.peak_rss_kib() * 1024;
    eprintln!(
        "server RSS: baseline {} MiB, peak {} MiB under 18 hostile dictionaries of {} MiB",
        baseline / MIB,
        peak / MIB,
        HOSTILE_BYTES as u64 / MIB
    );
    assert!(
        peak < baseline + BUDGET + SLACK,
        "peak RSS {} MiB stays under the idle server's {} MiB plus the budget {} MiB plus {} MiB",
        peak / MIB,
        baseline / MIB,
        BUDGET / MIB,
        SLACK / MIB
    );
    assert!(inflight(&admin).await <= BUDGET);

    // Every transfer is answered when it ends; then the memory comes back.
    for mut conn in holders.into_iter().chain(flood_conns) {
        let reply = conn.exchange(&FINAL).await;
        assert!(reply.starts_with("ERROR: "), "{reply}");
        conn.end().await;
    }
    // The budget is handed back in full. Resident memory is only reported: glibc's
    // malloc keeps freed heap pages for reuse, so RSS after a burst stays above the
    // baseline (seen here: 29 MiB after, 10 MiB before) though nothing is held.
    wait_until(Duration::from_secs(60), async || {
        match inflight(&admin).await {
            0 => Ok(()),
            held => Err(format!("the budget was not handed back: {held} bytes held")),
        }
    })
    .await;
    eprintln!(
        "server RSS after the transfers ended: {} MiB (baseline {} MiB)",
        server.running.rss_bytes() / MIB,
        baseline / MIB
    );
}
