//! Measures what the in-memory index costs per listed item: fills a store with
//! small items, then (in a fresh process, so nothing of the filling is counted)
//! opens it and reports the resident memory that opening added.
//!
//! `cargo run --release -p ferry-store --example index_memory -- fill DIR [ITEMS]`
//! (default 200000), then
//! `cargo run --release -p ferry-store --example index_memory -- open DIR`.
//! Both steps use the storage key `DIR.key` (created by `fill`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_crypto::{Keyring, StorageKey};
use ferry_protocol::{DataType, Serialization};
use ferry_store::{LocalOptions, LocalStore, NewItem, Store};

const WRITERS: usize = 64;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: index_memory fill DIR [ITEMS] | open DIR";
    let (mode, dir) = match (args.first(), args.get(1)) {
        (Some(mode), Some(dir)) => (mode.as_str(), PathBuf::from(dir)),
        _ => panic!("{usage}"),
    };
    let key_path = dir.with_extension("key");
    match mode {
        "fill" => {
            let items: usize = args.get(2).map_or(200_000, |a| a.parse().expect("ITEMS"));
            let (key, _) = StorageKey::load_or_create(&key_path).expect("storage key");
            fill(&dir, key, items).await;
        }
        "open" => {
            let key = StorageKey::load(&key_path).expect("storage key (run fill first)");
            open(&dir, key).await;
        }
        _ => panic!("{usage}"),
    }
}

async fn fill(dir: &Path, key: StorageKey, items: usize) {
    let store = LocalStore::open(dir, Keyring::new(key, vec![]), LocalOptions::default())
        .await
        .expect("open");
    let dict = br#"{"sensor": "s-17", "value": 21.5, "seq": 12345}"#;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store: Arc<dyn Store> = store.clone();
            let mine = items / WRITERS + usize::from(writer < items % WRITERS);
            tokio::spawn(async move {
                for _ in 0..mine {
                    let item = NewItem {
                        data_type: DataType::Dictionary,
                        serialization: Serialization::Json,
                        encrypted_in_transit: false,
                        peer: format!("127.0.0.1:{}", 40_000 + writer),
                        name: None,
                    };
                    let mut w = store.begin(item).await.unwrap();
                    w.write(dict).await.unwrap();
                    w.commit().await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    println!("{} items in {}", store.count().await, dir.display());
}

async fn open(dir: &Path, key: StorageKey) {
    let before = resident_bytes();
    let store = LocalStore::open(dir, Keyring::new(key, vec![]), LocalOptions::default())
        .await
        .expect("open");
    let after = resident_bytes();
    let items = store.count().await;
    let added = after.saturating_sub(before);
    println!(
        "{items} items: opening added {:.1} MiB resident, {:.0} bytes per item",
        added as f64 / (1 << 20) as f64,
        added as f64 / items.max(1) as f64
    );
}

/// `VmRSS` of this process, in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .expect("VmRSS in /proc/self/status")
        * 1024
}
