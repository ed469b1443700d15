//! Measures the on-disk catalog (`ferry_store::catalog`) against its targets: with
//! 5 million small items, inserts from batches of 1..200 items at 20,000 items/s or
//! more, a reopen ready in under 2 s, resident memory under 128 MiB, and the newest
//! 100 items listed in under 50 ms at the 99th percentile.
//!
//! `cargo run --release -p ferry-store --example catalog_bench -- [--items N] [--dir DIR]`
//!
//! Fills a catalog (in a temporary directory unless `--dir`) with N items (default
//! 5,000,000) and reports the insert rate; then, in a fresh process (so that
//! nothing of the filling is counted), reopens it and reports the time to open and
//! list once, the resident memory, and the latencies of listings. `--reopen` with
//! `--dir` measures an existing catalog only.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_protocol::{DataType, Serialization};
use ferry_store::catalog::{Catalog, CatalogEntry, Change};
use ferry_store::{ItemId, ItemMeta, ListQuery};
use time::OffsetDateTime;

fn main() {
    let mut items = 5_000_000u64;
    let mut dir = None;
    let mut reopen = false;
    let mut probes = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--items" => items = args.next().and_then(|n| n.parse().ok()).expect("--items N"),
            "--dir" => dir = args.next().map(PathBuf::from),
            "--reopen" => reopen = true,
            // Ids to list before, passed from the filling process.
            "--probe" => probes.push(ItemId::parse(&args.next().expect("--probe ID")).unwrap()),
            _ => panic!("usage: catalog_bench [--items N] [--dir DIR] [--reopen]"),
        }
    }
    if reopen {
        measure(&dir.expect("--reopen needs --dir"), &probes);
        return;
    }
    let temp = tempfile::tempdir().expect("temporary directory");
    let dir = dir.unwrap_or_else(|| temp.path().join("catalog"));
    let probes = fill(&dir, items);
    let mut child = Command::new(std::env::current_exe().expect("this program"));
    child.arg("--reopen").arg("--dir").arg(&dir);
    for id in probes {
        child.arg("--probe").arg(id.to_string());
    }
    let status = child.status().expect("the measuring process");
    assert!(status.success(), "the measuring process failed");
}

/// Fills the catalog at `dir` with `items` items, in batches of 1..=200, and
/// returns ids at 10%, 50% and 90% of them.
fn fill(dir: &Path, items: u64) -> Vec<ItemId> {
    let catalog = Catalog::open(dir).expect("open");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut probes = Vec::new();
    let (mut done, mut commits) = (0u64, 0u64);
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    while done < items {
        let batch = (1 + rng.below(200)).min(items - done);
        let changes: Vec<Change> = (0..batch)
            .map(|_| Change::Put(item(&mut rng, done)))
            .collect();
        for (n, change) in changes.iter().enumerate() {
            let at = done + n as u64;
            if [items / 10, items / 2, items * 9 / 10].contains(&at) {
                let Change::Put(entry) = change else {
                    unreachable!()
                };
                probes.push(entry.meta.id);
            }
        }
        let t = Instant::now();
        catalog.apply(changes, done + batch).expect("apply");
        slowest = slowest.max(t.elapsed());
        done += batch;
        commits += 1;
        if done % 1_000_000 < batch {
            println!(
                "  {done} items: {:.0} items/s so far",
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    catalog.flush().expect("flush");
    let took = started.elapsed();
    println!(
        "fill: {items} items in {commits} commits (batches of 1..=200), {:.1} s with the final sync: {:.0} items/s, {:.0} commits/s; slowest commit {:.1} ms",
        took.as_secs_f64(),
        items as f64 / took.as_secs_f64(),
        commits as f64 / took.as_secs_f64(),
        slowest.as_secs_f64() * 1e3
    );
    println!("fill: {}", memory());
    drop(catalog);
    println!("file: {} MiB", disk_bytes(dir) >> 20);
    probes
}

/// Reopens the catalog at `dir` and measures it.
fn measure(dir: &Path, probes: &[ItemId]) {
    println!("reopen (a fresh process): {}", memory());
    let started = Instant::now();
    let catalog = Catalog::open(dir).expect("open");
    let opened = started.elapsed();
    let newest = ListQuery {
        limit: 100,
        ..ListQuery::default()
    };
    let first = catalog.list(&newest).expect("list");
    let ready = started.elapsed();
    assert_eq!(first.items.len(), 100);
    println!(
        "reopen: open {:.1} ms, open + first list of 100 {:.1} ms; {} items, cursor {:?}",
        opened.as_secs_f64() * 1e3,
        ready.as_secs_f64() * 1e3,
        catalog.len().expect("len"),
        catalog.cursor().expect("cursor")
    );
    println!("after reopen: {}", memory());
    latencies(&catalog, "newest 100", &newest, 1_000);
    println!("after 1,000 listings of the newest 100: {}", memory());
    let text = ListQuery {
        data_type: Some(DataType::Text),
        ..newest.clone()
    };
    latencies(&catalog, "newest 100 with data_type=text", &text, 1_000);
    let source = ListQuery {
        source: Some("10.0.3.7".into()),
        ..newest.clone()
    };
    latencies(
        &catalog,
        "newest 100 from one source of 1,024",
        &source,
        100,
    );
    for (n, id) in probes.iter().enumerate() {
        let deep = ListQuery {
            before: Some(*id),
            ..newest.clone()
        };
        let place = ["10%", "50%", "90%"].get(n).unwrap_or(&"?");
        latencies(
            &catalog,
            &format!("100 before the item at {place}"),
            &deep,
            1_000,
        );
        let at = catalog
            .get(*id)
            .expect("get")
            .expect("listed")
            .meta
            .received_at;
        let window = ListQuery {
            since: Some(at),
            until: Some(at + Duration::from_millis(100)),
            limit: 0,
            ..ListQuery::default()
        };
        let found = catalog.list(&window).expect("list").items.len();
        let window = ListQuery {
            limit: 100,
            ..window
        };
        latencies(
            &catalog,
            &format!("newest 100 of the {found} in a 100 ms window at {place}"),
            &window,
            200,
        );
    }
    println!("at the end: {}", memory());
}

/// Lists `query` `runs` times and prints the latencies.
fn latencies(catalog: &Catalog, what: &str, query: &ListQuery, runs: usize) {
    let mut took: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(catalog.list(query).expect("list"));
            t.elapsed()
        })
        .collect();
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "list {what}: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({runs} runs)",
        ms(took[runs / 2]),
        ms(took[runs * 99 / 100]),
        ms(took[runs - 1])
    );
}

/// A small item as a store would list it: a text or a dictionary from one of
/// 1,024 peers, mostly named, with a location of a few dozen bytes.
fn item(rng: &mut Rng, n: u64) -> CatalogEntry {
    let id = ItemId::new();
    let (data_type, serialization) = match rng.below(4) {
        0 | 1 => (DataType::Text, Serialization::Txt),
        2 => (DataType::Dictionary, Serialization::Json),
        _ => (DataType::Dictionary, Serialization::Binary),
    };
    let peer = format!(
        "10.0.{}.{}:{}",
        rng.below(4),
        rng.below(256),
        1024 + rng.below(60_000)
    );
    let sha256: String = (0..4).map(|_| format!("{:016x}", rng.next())).collect();
    let meta = ItemMeta {
        id,
        data_type,
        serialization,
        encrypted_in_transit: rng.below(2) == 0,
        name: (rng.below(4) != 0).then(|| format!("report-{}.txt", rng.below(100_000))),
        peer,
        received_at: OffsetDateTime::now_utc(),
        size: 100 + rng.below(100_000),
        sha256,
        key_id: "sk-2026-01".into(),
        held: false,
        log_index: Some(n),
    };
    let location = format!("ferry/items/{id}.rec#{}", rng.below(1 << 20)).into_bytes();
    CatalogEntry { meta, location }
}

/// The process's resident memory now and at its peak.
fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| "?".into())
    };
    format!("VmRSS {}, VmHWM {}", field("VmRSS:"), field("VmHWM:"))
}

fn disk_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// xorshift64*: reproducible items without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
