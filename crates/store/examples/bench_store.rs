//! Measures a `LocalStore`: small-item commits per second with concurrent writers
//! (each item durable before the next one of its writer begins), and large-item
//! write and read throughput.
//!
//! `cargo run --release -p ferry-store --example bench_store -- [DIR] [WRITERS] [SMALL_ITEMS] [LARGE_MIB]`
//! (defaults: a temporary directory under the current one, 64, 100000, 1024).

use std::sync::Arc;
use std::time::Instant;

use ferry_crypto::{Keyring, StorageKey};
use ferry_protocol::{DataType, Serialization};
use ferry_store::{LocalOptions, LocalStore, NewItem, Store};
use futures::StreamExt;

fn item(data_type: DataType, serialization: Serialization) -> NewItem {
    NewItem {
        data_type,
        serialization,
        encrypted_in_transit: false,
        peer: "127.0.0.1:40000".into(),
        name: None,
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let base = args.first().cloned().unwrap_or_else(|| ".".into());
    let writers: usize = args.get(1).map_or(64, |a| a.parse().expect("WRITERS"));
    let small: usize = args
        .get(2)
        .map_or(100_000, |a| a.parse().expect("SMALL_ITEMS"));
    let large_mib: usize = args.get(3).map_or(1024, |a| a.parse().expect("LARGE_MIB"));
    let dir = tempfile::tempdir_in(base).expect("temporary directory");
    let key = StorageKey::generate();
    let keyring = Keyring::new(key.clone(), vec![]);
    let store = LocalStore::open(dir.path(), keyring, LocalOptions::default())
        .await
        .expect("open");

    // Small dictionaries, like the legacy demo's.
    let dict = br#"{"name": "Ferry", "items": [1, 2, 3], "nested": {"ok": true, "ratio": 0.5}, "note": "a small dictionary of about two hundred bytes, sent as JSON"}"#;
    let per_writer = small / writers;
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let store: Arc<dyn Store> = store.clone();
            tokio::spawn(async move {
                for _ in 0..per_writer {
                    let mut writer = store
                        .begin(item(DataType::Dictionary, Serialization::Json))
                        .await
                        .unwrap();
                    writer.write(dict).await.unwrap();
                    writer.commit().await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let committed = per_writer * writers;
    println!(
        "small: {committed} items of {} B, {writers} writers: {:.0} commits/s ({elapsed:.2} s)",
        dict.len(),
        committed as f64 / elapsed
    );

    // One large text item, streamed in 48,000-byte packets.
    let packet: Vec<u8> = (0..48_000u32).map(|i| (i % 251) as u8).collect();
    let total = large_mib * 1024 * 1024;
    let started = Instant::now();
    let mut writer = store
        .begin(item(DataType::Text, Serialization::Txt))
        .await
        .unwrap();
    let mut sent = 0;
    while sent < total {
        let n = packet.len().min(total - sent);
        writer.write(&packet[..n]).await.unwrap();
        sent += n;
    }
    let meta = writer.commit().await.unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "large write: {large_mib} MiB in {elapsed:.2} s: {:.0} MB/s (durable)",
        total as f64 / elapsed / 1e6
    );

    let started = Instant::now();
    let (_, mut stream) = store.open(meta.id, None).await.unwrap().unwrap();
    let mut read = 0;
    while let Some(chunk) = stream.next().await {
        read += chunk.unwrap().len();
    }
    assert_eq!(read, total);
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "large read: {large_mib} MiB in {elapsed:.2} s: {:.0} MB/s",
        total as f64 / elapsed / 1e6
    );
    drop(store);

    let started = Instant::now();
    let reopened = LocalStore::open(
        dir.path(),
        Keyring::new(key, vec![]),
        LocalOptions::default(),
    )
    .await
    .expect("reopen");
    let listed = reopened.count().await;
    assert_eq!(listed, committed + 1);
    println!(
        "reopen: {listed} items indexed in {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
}
