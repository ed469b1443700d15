//! Measures a `LocalStore` with many small items against the catalog's targets:
//! restart to ready, memory, and listing the newest items.
//!
//! ```text
//! cargo run --release -p ferry-store --example local_catalog_bench -- fill DIR ITEMS [--ledger]
//! cargo run --release -p ferry-store --example local_catalog_bench -- measure DIR [--ledger]
//! ```
//!
//! `fill` stores ITEMS small dictionaries (about 150 bytes) in the store at DIR
//! through the `Store` API, from 256 concurrent writers, and closes it (the key is
//! kept in DIR/../bench.key). `measure`, in a fresh process, opens the store and
//! prints: the time from `open` to ready, RSS after the open, p50/p99 of 1000
//! listings of the newest 100 items, and RSS after them. Without `--ledger` the
//! store keeps no log of its items (that log keeps about 8 bytes a leaf in
//! memory, and an open reads every leaf).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_crypto::{Keyring, StorageKey};
use ferry_protocol::{DataType, Serialization};
use ferry_store::{ListQuery, LocalOptions, LocalStore, NewItem, Store};

const WRITERS: usize = 256;

fn options(ledger: bool) -> LocalOptions {
    LocalOptions {
        ledger,
        ..LocalOptions::default()
    }
}

fn key_path(dir: &Path) -> PathBuf {
    dir.with_extension("key")
}

fn keyring(dir: &Path) -> Keyring {
    let (key, _) = StorageKey::load_or_create(&key_path(dir)).expect("the key");
    Keyring::new(key, vec![])
}

/// `VmRSS` of this process, in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}

async fn fill(dir: &Path, items: usize, ledger: bool) {
    let store = LocalStore::open(dir, keyring(dir), options(ledger))
        .await
        .expect("open");
    let dict = br#"{"name": "Ferry", "items": [1, 2, 3], "nested": {"ok": true}, "note": "a small dictionary"}"#;
    let left = Arc::new(AtomicUsize::new(items));
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store: Arc<dyn Store> = store.clone();
            let left = left.clone();
            tokio::spawn(async move {
                while left
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let item = NewItem {
                        data_type: DataType::Dictionary,
                        serialization: Serialization::Json,
                        encrypted_in_transit: false,
                        peer: format!("10.0.{}.{}:40000", w / 256, w % 256),
                        name: None,
                    };
                    let mut writer = store.begin(item).await.unwrap();
                    writer.write(dict).await.unwrap();
                    writer.commit().await.unwrap();
                }
            })
        })
        .collect();
    let mut last = Instant::now();
    for task in tasks {
        while !task.is_finished() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if last.elapsed() > Duration::from_secs(30) {
                let done = items - left.load(Ordering::Acquire);
                let rate = done as f64 / started.elapsed().as_secs_f64();
                eprintln!("{done} items, {rate:.0}/s");
                last = Instant::now();
            }
        }
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "filled {items} items in {:.1} s ({:.0} items/s), {} listed",
        elapsed.as_secs_f64(),
        items as f64 / elapsed.as_secs_f64(),
        store.count().await
    );
}

async fn measure(dir: &Path, ledger: bool) {
    let before = rss_mib();
    let started = Instant::now();
    let store = LocalStore::open(dir, keyring(dir), options(ledger))
        .await
        .expect("open");
    let ready = started.elapsed();
    let after_open = rss_mib();
    let query = ListQuery {
        limit: 100,
        ..ListQuery::default()
    };
    let first = Instant::now();
    let page = store.list(&query).await.expect("list");
    let first = first.elapsed();
    assert_eq!(page.items.len(), 100);
    let mut times = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let at = Instant::now();
        let page = store.list(&query).await.expect("list");
        times.push(at.elapsed());
        assert_eq!(page.items.len(), 100);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "items {}: open to ready {:.0} ms; RSS {before:.0} MiB before, {after_open:.0} MiB after the open, {:.0} MiB after 1001 listings; newest 100: first {:.2} ms, p50 {:.2} ms, p99 {:.2} ms",
        store.count().await,
        ms(ready),
        rss_mib(),
        ms(first),
        ms(times[499]),
        ms(times[989]),
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ledger = args.iter().any(|a| a == "--ledger");
    let args: Vec<&String> = args.iter().filter(|a| *a != "--ledger").collect();
    match args.as_slice() {
        [cmd, dir, items] if *cmd == "fill" => {
            fill(Path::new(dir), items.parse().expect("ITEMS"), ledger).await
        }
        [cmd, dir] if *cmd == "measure" => measure(Path::new(dir), ledger).await,
        _ => {
            panic!("usage: local_catalog_bench fill DIR ITEMS [--ledger] | measure DIR [--ledger]")
        }
    }
}
