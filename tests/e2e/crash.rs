//! A crash test: the server is killed with SIGKILL while 64 clients are sending;
//! after a restart every item that was answered OK is listed and intact, and
//! nothing partial is listed.
//!
//! The clients use Ferry's extended replies, so each OK names the stored item (id,
//! size, SHA-256). A transfer whose OK had not arrived when the server died may or
//! may not be listed after the restart; if it is, it must be whole.

use crate::harness::{Server, wait_until};
use ferry_client::{ClientError, Options, Session};
use ferry_protocol::{Meta, Serialization};
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 64;
/// Large items (over 256 KiB) take the store's per-file path; small ones its log.
const LARGE: usize = 256 * 1024;

/// What a client knows about one transfer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Sent {
    size: u64,
    sha256: String,
}

#[derive(Debug, Default, Clone)]
struct Ledger {
    /// id -> what was acknowledged, from every OK received before the kill.
    acked: HashMap<String, Sent>,
    /// The transfer each client had in flight when its session broke.
    in_flight: Vec<Sent>,
    large_acked: usize,
}

/// One transfer's meta and bytes: small dictionaries (JSON and pickle), and text
/// from empty to several hundred KiB, about half of it Fernet-encrypted.
fn next_transfer(rng: &mut rand::rngs::StdRng, client: usize, round: usize) -> (Meta, Vec<u8>) {
    let encrypted = rng.random_bool(0.5);
    let text = |rng: &mut rand::rngs::StdRng, len: usize| -> Vec<u8> {
        (0..len).map(|_| b' ' + rng.random_range(0..95u8)).collect()
    };
    match rng.random_range(0..10) {
        0..=2 => {
            let dict = serde_json::json!({"client": client, "round": round, "values": [rng.random::<u32>(), rng.random::<bool>()], "note": "crash test"});
            (
                Meta::dictionary(Serialization::Json, encrypted).unwrap(),
                serde_json::to_vec(&dict).unwrap(),
            )
        }
        3 => {
            let dict = serde_json::json!({"client": client, "round": round, "pickled": true})
                .as_object()
                .unwrap()
                .clone();
            (
                Meta::dictionary(Serialization::Binary, encrypted).unwrap(),
                ferry_codec::encode(Serialization::Binary, &dict).unwrap(),
            )
        }
        4..=5 => {
            let len = rng.random_range(0..200);
            (Meta::text(encrypted), text(rng, len))
        }
        6..=7 => {
            let len = rng.random_range(10_000..120_000);
            (Meta::text(encrypted), text(rng, len))
        }
        _ => {
            let len = rng.random_range(LARGE + 1..700_000);
            (Meta::text(encrypted), text(rng, len))
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Sends until the session breaks (the server is killed), recording every OK.
async fn client(
    addr: String,
    key: Arc<ferry_crypto::FernetKey>,
    index: usize,
    ledger: Arc<Mutex<Ledger>>,
) {
    let options = Options {
        fernet: Some(key),
        reply_timeout: Duration::from_secs(30),
        extensions: true,
        ..Options::default()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(index as u64);
    let mut session = Session::connect(&addr, options)
        .await
        .expect("connect before the crash");
    for round in 0.. {
        let (meta, bytes) = next_transfer(&mut rng, index, round);
        let sent = Sent {
            size: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
        };
        match session.send_bytes(meta, &bytes, None).await {
            Ok(receipt) => {
                let id = receipt.id.expect("Ferry's OK names the item");
                assert_eq!(
                    (receipt.size, receipt.sha256.as_deref()),
                    (sent.size, Some(sent.sha256.as_str())),
                    "receipt of {id}"
                );
                let mut ledger = ledger.lock().unwrap();
                ledger.large_acked += usize::from(bytes.len() > LARGE);
                assert!(
                    ledger.acked.insert(id.clone(), sent).is_none(),
                    "{id} acknowledged twice"
                );
            }
            Err(ClientError::Refused(reason)) => {
                panic!("transfer refused before the crash: {reason}")
            }
            Err(_) => {
                ledger.lock().unwrap().in_flight.push(sent);
                return;
            }
        }
    }
}

/// Starts the clients, lets them send for a second (and until both paths of the
/// store have acknowledged items), then kills the server with SIGKILL.
async fn send_until_killed(server: &mut Server, ledger: &Arc<Mutex<Ledger>>) {
    let key = Arc::new(ferry_crypto::FernetKey::load(&server.fernet_key_file()).unwrap());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|index| tokio::spawn(client(server.tcp(), key.clone(), index, ledger.clone())))
        .collect();
    let (acked_before, in_flight_before) = {
        let ledger = ledger.lock().unwrap();
        (ledger.acked.len(), ledger.in_flight.len())
    };
    let started = Instant::now();
    wait_until(Duration::from_secs(60), async || {
        let ledger = ledger.lock().unwrap();
        let (acked, large) = (ledger.acked.len() - acked_before, ledger.large_acked);
        match started.elapsed() >= Duration::from_secs(1) && acked >= 2 * CLIENTS && large >= 8 {
            true => Ok(()),
            false => Err(format!(
                "clients too slow: {acked} acknowledged ({large} large)"
            )),
        }
    })
    .await;
    server.running.kill();
    for client in clients {
        client.await.expect("a client panicked");
    }
    assert_eq!(
        ledger.lock().unwrap().in_flight.len() - in_flight_before,
        CLIENTS,
        "every client was cut off mid-session"
    );
}

/// After a restart: no unfinished item is kept, every acknowledged item is listed as
/// acknowledged, anything else listed is a transfer that was in flight, and every
/// listed item's content downloads whole with its checksum.
async fn assert_acknowledged_items_survived(server: &Server, ledger: &Ledger) {
    let tmp = server.data_dir().join("store/tmp");
    let leftovers: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(
        leftovers.is_empty(),
        "unfinished items left in {}: {leftovers:?}",
        tmp.display()
    );

    let admin = server.admin();
    let listed: HashMap<String, serde_json::Value> = admin
        .all_items()
        .await
        .into_iter()
        .map(|item| (item["id"].as_str().unwrap().to_owned(), item))
        .collect();
    eprintln!(
        "{} acknowledged ({} large), {} listed after the restart",
        ledger.acked.len(),
        ledger.large_acked,
        listed.len()
    );

    for (id, sent) in &ledger.acked {
        let item = listed
            .get(id)
            .unwrap_or_else(|| panic!("{id} was answered OK but is not listed after the crash"));
        assert_eq!(
            (
                item["size"].as_u64().unwrap(),
                item["sha256"].as_str().unwrap()
            ),
            (sent.size, sent.sha256.as_str()),
            "metadata of {id}"
        );
    }
    // At most one listed item per session cut off, and only one it was sending.
    let mut unclaimed: Vec<&Sent> = ledger.in_flight.iter().collect();
    for (id, item) in listed
        .iter()
        .filter(|(id, _)| !ledger.acked.contains_key(*id))
    {
        let found = Sent {
            size: item["size"].as_u64().unwrap(),
            sha256: item["sha256"].as_str().unwrap().to_owned(),
        };
        let position = unclaimed
            .iter()
            .position(|sent| **sent == found)
            .unwrap_or_else(|| {
                panic!("{id} is listed but was neither acknowledged nor in flight: {item}")
            });
        unclaimed.swap_remove(position);
    }
    let ids: HashSet<&String> = listed.keys().collect();
    let checks = ids.into_iter().map(|id| {
        let admin = admin.clone();
        let item = &listed[id];
        async move {
            let digest = admin.content_digest(id).await;
            assert_eq!(
                digest,
                (
                    item["size"].as_u64().unwrap(),
                    item["sha256"].as_str().unwrap().to_owned()
                ),
                "content of {id}"
            );
        }
    });
    futures::future::join_all(checks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_item_answered_ok_before_a_sigkill_is_listed_and_intact_after_a_restart() {
    let mut server = Server::start(&[]);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    // Twice: the second crash hits a store that has already recovered from one.
    for _ in 0..2 {
        send_until_killed(&mut server, &ledger).await;
        server = server.crash_and_restart(&[]);
        let snapshot = ledger.lock().unwrap().clone();
        assert_acknowledged_items_survived(&server, &snapshot).await;
    }
    crate::harness::assert_still_serves(&server).await;
}
