//! Stores written before frames were bound to their place still open: a small
//! store written by that version (`tests/fixtures/v1-store`: small items over
//! several segments, one compacted away, deletes, a large item) reads back whole,
//! and takes new items.

use std::path::Path;

use ferry_crypto::StorageKey;
use ferry_store::{ItemId, LocalOptions, LocalStore, Store};

use crate::helpers::*;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[tokio::test]
async fn a_store_in_the_first_frame_format_opens_and_reads_back_whole() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture.join("store"), dir.path());
    for sub in ["items", "tmp"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let key = StorageKey::load(&fixture.join("storage.key")).unwrap();
    let manifest = std::fs::read_to_string(fixture.join("MANIFEST")).unwrap();
    let options = LocalOptions {
        inline_max: 1024,
        segment_size: 4096,
        ..LocalOptions::default()
    };
    let mut expected: Vec<(ItemId, Option<(usize, u8)>)> = manifest
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            let id = ItemId::parse(words[1]).unwrap();
            let listed = (words[0] == "listed")
                .then(|| (words[2].parse().unwrap(), words[3].parse().unwrap()));
            (id, listed)
        })
        .collect();
    let mut added = Vec::new();
    for round in 0..3 {
        let store = LocalStore::open(dir.path(), keyring(&key), options.clone())
            .await
            .unwrap();
        for (id, listed) in &mut expected {
            let got = store.get(*id).await.unwrap();
            let Some((len, seed)) = *listed else {
                assert!(got.is_none(), "{id} came back (round {round})");
                continue;
            };
            let meta = got.unwrap_or_else(|| panic!("{id} is missing (round {round})"));
            assert_eq!(
                read(&*store, &meta, None).await.unwrap(),
                content(len, seed)
            );
            // Deleting old items makes compaction copy the others.
            if round == 1 && seed % 3 == 0 {
                assert!(store.delete(*id).await.unwrap());
                *listed = None;
            }
        }
        for (meta, seed) in &added {
            assert_eq!(
                read(&*store, meta, None).await.unwrap(),
                content(500, *seed)
            );
        }
        if round == 0 {
            for seed in 0..12u8 {
                added.push((
                    put(&*store, dict("10.0.0.9:9"), &content(500, seed)).await,
                    seed,
                ));
            }
        }
    }
}
