use std::os::unix::fs::PermissionsExt;

use ferry_protocol::{DataType, Serialization};
use time::{Duration, OffsetDateTime};

use super::*;

/// An id made at millisecond `ms`, with random part `n`.
fn id_at(ms: u64, n: u64) -> ItemId {
    ItemId::from_bytes(((u128::from(ms) << 80) | u128::from(n)).to_be_bytes())
}

/// Metadata of item `id`, received at the millisecond its id carries.
pub(crate) fn meta(id: ItemId) -> ItemMeta {
    let at = i128::from(id.timestamp_ms()) * 1_000_000;
    ItemMeta {
        id,
        data_type: DataType::Text,
        serialization: Serialization::Txt,
        encrypted_in_transit: true,
        peer: "10.0.0.1:4000".into(),
        name: Some("notes.txt".into()),
        received_at: OffsetDateTime::from_unix_timestamp_nanos(at).unwrap(),
        size: 42,
        sha256: "ab".repeat(32),
        key_id: "k-1".into(),
        held: false,
        log_index: Some(7),
    }
}

fn entry(meta: ItemMeta) -> CatalogEntry {
    let location = format!("items/{}.rec", meta.id).into_bytes();
    CatalogEntry { meta, location }
}

fn put(meta: ItemMeta) -> Change {
    Change::Put(entry(meta))
}

fn open() -> (tempfile::TempDir, Catalog) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(&dir.path().join("catalog")).unwrap();
    (dir, catalog)
}

#[test]
fn entries_are_put_replaced_got_and_removed() {
    let (_dir, catalog) = open();
    assert_eq!(catalog.len().unwrap(), 0);
    let a = entry(meta(id_at(1_000, 1)));
    let b = entry(meta(id_at(2_000, 1)));
    catalog
        .apply(vec![Change::Put(a.clone()), Change::Put(b.clone())], 1)
        .unwrap();
    assert_eq!(catalog.get(a.meta.id).unwrap(), Some(a.clone()));
    assert_eq!(catalog.get(b.meta.id).unwrap(), Some(b.clone()));
    assert_eq!(catalog.len().unwrap(), 2);

    let mut moved = b.clone();
    moved.location = b"elsewhere".to_vec();
    moved.meta.name = None;
    moved.meta.log_index = None;
    catalog
        .apply(
            vec![Change::Put(moved.clone()), Change::Remove(a.meta.id)],
            2,
        )
        .unwrap();
    assert_eq!(catalog.get(a.meta.id).unwrap(), None);
    assert_eq!(catalog.get(b.meta.id).unwrap(), Some(moved));
    assert_eq!(catalog.len().unwrap(), 1);
    // Removing what is not listed is no error.
    catalog.apply(vec![Change::Remove(a.meta.id)], 3).unwrap();
    assert_eq!(catalog.len().unwrap(), 1);
}

/// Items of every kind, from several peers, received over a few seconds, some
/// with ids far from their `received_at` (either way).
fn varied() -> Vec<ItemMeta> {
    let base = 1_700_000_000_000u64;
    let kinds = [
        (DataType::Text, Serialization::Txt),
        (DataType::Dictionary, Serialization::Json),
        (DataType::Dictionary, Serialization::Xml),
        (DataType::Dictionary, Serialization::Binary),
    ];
    let peers = ["10.0.0.1:4000", "10.0.0.10:5000", "[::1]:6000", "gateway"];
    (0..200u64)
        .map(|i| {
            let mut m = meta(id_at(base + i * 37, i));
            (m.data_type, m.serialization) = kinds[(i % 4) as usize];
            m.peer = peers[(i % 7 % 4) as usize].into();
            m.name = (i % 3 != 0).then(|| format!("item-{i}"));
            // Every tenth id was made an hour before or after its item arrived.
            let gap = match i % 10 {
                0 => Duration::hours(1),
                5 => Duration::hours(-1),
                _ => Duration::milliseconds((i % 3) as i64),
            };
            m.received_at += gap;
            m
        })
        .collect()
}

/// What [`Catalog::list`] must answer, the plain way.
fn expected(all: &[ItemMeta], q: &ListQuery) -> Page {
    let mut matching: Vec<ItemMeta> = all
        .iter()
        .filter(|m| q.before.is_none_or(|b| m.id < b))
        .filter(|m| q.data_type.is_none_or(|t| m.data_type == t))
        .filter(|m| q.serialization.is_none_or(|s| m.serialization == s))
        .filter(|m| q.since.is_none_or(|t| m.received_at >= t))
        .filter(|m| q.until.is_none_or(|t| m.received_at < t))
        .filter(|m| q.source.as_deref().is_none_or(|s| m.is_from(s)))
        .cloned()
        .collect();
    matching.sort_by_key(|m| std::cmp::Reverse(m.id));
    let limit = if q.limit == 0 { usize::MAX } else { q.limit };
    let more = matching.len() > limit;
    matching.truncate(limit);
    Page {
        next: more.then(|| matching.last().unwrap().id),
        items: matching,
    }
}

#[test]
fn listings_are_newest_first_and_honour_every_filter() {
    let (_dir, catalog) = open();
    let all = varied();
    // Out of order, in several batches.
    let mut shuffled = all.clone();
    shuffled.reverse();
    shuffled.rotate_left(77);
    for (n, batch) in shuffled.chunks(60).enumerate() {
        let changes = batch.iter().cloned().map(put).collect();
        catalog.apply(changes, n as u64).unwrap();
    }
    let t = |i: usize| all[i].received_at;
    let queries = [
        ListQuery::default(),
        ListQuery {
            data_type: Some(DataType::Text),
            ..ListQuery::default()
        },
        ListQuery {
            serialization: Some(Serialization::Xml),
            ..ListQuery::default()
        },
        ListQuery {
            source: Some("10.0.0.1".into()),
            ..ListQuery::default()
        },
        ListQuery {
            source: Some("10.0.0.1:".into()),
            ..ListQuery::default()
        },
        ListQuery {
            source: Some("::1".into()),
            ..ListQuery::default()
        },
        ListQuery {
            since: Some(t(120)),
            ..ListQuery::default()
        },
        ListQuery {
            until: Some(t(40)),
            ..ListQuery::default()
        },
        ListQuery {
            since: Some(t(51)),
            until: Some(t(52)),
            ..ListQuery::default()
        },
        ListQuery {
            since: Some(t(30)),
            until: Some(t(150)),
            limit: 9,
            ..ListQuery::default()
        },
        ListQuery {
            before: Some(all[100].id),
            limit: 5,
            ..ListQuery::default()
        },
        ListQuery {
            data_type: Some(DataType::Dictionary),
            serialization: Some(Serialization::Json),
            source: Some("10.0.0.10".into()),
            since: Some(t(21)),
            until: Some(t(189)),
            before: Some(all[170].id),
            limit: 3,
            name: None,
        },
        ListQuery {
            until: Some(OffsetDateTime::UNIX_EPOCH),
            ..ListQuery::default()
        },
    ];
    for q in &queries {
        let want = expected(&all, q);
        assert!(
            !want.items.is_empty() || q.until == Some(OffsetDateTime::UNIX_EPOCH),
            "{q:?} finds nothing"
        );
        assert_eq!(catalog.list(q).unwrap(), want, "{q:?}");
    }
    // The items whose ids are an hour off are found by time all the same.
    for i in [0, 5, 100, 105] {
        let q = ListQuery {
            since: Some(t(i)),
            until: Some(t(i) + Duration::nanoseconds(1)),
            ..ListQuery::default()
        };
        let page = catalog.list(&q).unwrap();
        assert_eq!(page.items, vec![all[i].clone()], "item {i}");
    }
    let newest = catalog.list(&ListQuery::default()).unwrap();
    assert_eq!(newest.items.len(), 200);
    assert!(newest.items.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(newest.next, None);
}

#[test]
fn pages_follow_one_another_with_next() {
    let (_dir, catalog) = open();
    let all = varied();
    catalog
        .apply(all.iter().cloned().map(put).collect(), 1)
        .unwrap();
    for filter in [
        ListQuery::default(),
        ListQuery {
            data_type: Some(DataType::Dictionary),
            ..ListQuery::default()
        },
    ] {
        let mut query = ListQuery {
            limit: 7,
            ..filter.clone()
        };
        let mut walked = Vec::new();
        loop {
            let page = catalog.list(&query).unwrap();
            assert!(page.items.len() <= 7);
            walked.extend(page.items);
            match page.next {
                Some(next) => query.before = Some(next),
                None => break,
            }
        }
        assert_eq!(walked, expected(&all, &filter).items);
    }
    // A page that ends exactly at the last item has no next.
    let q = ListQuery {
        limit: 200,
        ..ListQuery::default()
    };
    assert_eq!(catalog.list(&q).unwrap().next, None);
    let q = ListQuery {
        limit: 199,
        ..ListQuery::default()
    };
    assert_eq!(catalog.list(&q).unwrap().next, Some(all[1].id));
}

#[test]
fn holds_are_kept_apart_from_entries() {
    let (_dir, catalog) = open();
    let a = meta(id_at(1_000, 1));
    let b = meta(id_at(2_000, 1));
    // A hold may come before its item.
    catalog.apply(vec![Change::Hold(a.id, true)], 1).unwrap();
    assert!(catalog.is_held(a.id).unwrap());
    assert_eq!(catalog.get(a.id).unwrap(), None);
    catalog
        .apply(vec![put(a.clone()), put(b.clone())], 2)
        .unwrap();
    assert!(catalog.get(a.id).unwrap().unwrap().meta.held);
    assert!(!catalog.get(b.id).unwrap().unwrap().meta.held);
    let held: Vec<bool> = catalog
        .list(&ListQuery::default())
        .unwrap()
        .items
        .iter()
        .map(|m| m.held)
        .collect();
    assert_eq!(held, [false, true]);
    // A put does not change a hold, whatever its `held` says.
    let mut again = b.clone();
    again.held = true;
    catalog
        .apply(vec![put(again), Change::Hold(a.id, false)], 3)
        .unwrap();
    assert!(!catalog.is_held(a.id).unwrap());
    assert!(!catalog.is_held(b.id).unwrap());
    // A hold outlives its item's removal.
    catalog
        .apply(vec![Change::Hold(b.id, true), Change::Remove(b.id)], 4)
        .unwrap();
    assert!(catalog.is_held(b.id).unwrap());
    assert_eq!(catalog.len().unwrap(), 1);
}

#[test]
fn a_reopened_catalog_has_its_entries_holds_and_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/catalog");
    let a = entry(meta(id_at(1_000, 1)));
    {
        let catalog = Catalog::open(&path).unwrap();
        assert_eq!(catalog.cursor().unwrap(), None);
        catalog
            .apply(
                vec![Change::Put(a.clone()), Change::Hold(a.meta.id, true)],
                41,
            )
            .unwrap();
        catalog.apply(Vec::new(), 42).unwrap();
        assert_eq!(catalog.cursor().unwrap(), Some(42));
        assert!(matches!(Catalog::open(&path), Err(StoreError::Locked(_))));
    }
    let catalog = Catalog::open(&path).unwrap();
    assert_eq!(catalog.cursor().unwrap(), Some(42));
    let mut held = a.clone();
    held.meta.held = true;
    assert_eq!(catalog.get(a.meta.id).unwrap(), Some(held));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o700);
    assert_eq!(mode(&path.join(FILE_NAME)), 0o600);
}

/// A cleared catalog has nothing of what it had (entries, holds, notes,
/// numbers, values, cursor), says so after a reopen, and takes changes again.
#[test]
fn a_cleared_catalog_is_empty_and_usable_even_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog");
    let a = entry(meta(id_at(1_000, 1)));
    let b = entry(meta(id_at(2_000, 1)));
    {
        let catalog = Catalog::open(&path).unwrap();
        let changes = vec![
            Change::Put(a.clone()),
            Change::Hold(b.meta.id, true),
            Change::Unreadable("k-9".into()),
            Change::SetNumber("answer", 42),
            Change::Set("note", b"kept".to_vec()),
        ];
        catalog.apply(changes, 7).unwrap();
        catalog.clear().unwrap();
        assert_eq!(catalog.len().unwrap(), 0);
    }
    let catalog = Catalog::open(&path).unwrap();
    assert_eq!(catalog.cursor().unwrap(), None);
    assert_eq!(catalog.len().unwrap(), 0);
    assert_eq!(catalog.get(a.meta.id).unwrap(), None);
    assert!(!catalog.is_held(b.meta.id).unwrap());
    assert!(catalog.unreadable().unwrap().is_empty());
    assert_eq!(catalog.number("answer").unwrap(), None);
    assert_eq!(catalog.value("note").unwrap(), None);
    assert!(
        catalog
            .list(&ListQuery::default())
            .unwrap()
            .items
            .is_empty()
    );
    catalog.apply(vec![Change::Put(b.clone())], 1).unwrap();
    assert_eq!(catalog.get(b.meta.id).unwrap(), Some(b));
    assert_eq!(catalog.cursor().unwrap(), Some(1));
}

const CRASH_DIR: &str = "FERRY_CATALOG_TEST_CRASH_DIR";

/// A process that dies after one flushed and several unflushed applies leaves a
/// catalog whose entries are those of the cursor it reads back.
#[test]
fn a_crash_leaves_an_earlier_state_with_its_own_cursor() {
    let batch =
        |n: u64| -> Vec<ItemMeta> { (0..50).map(|i| meta(id_at(n * 1_000 + i, i))).collect() };
    if let Some(dir) = std::env::var_os(CRASH_DIR) {
        let catalog = Catalog::open(Path::new(&dir)).unwrap();
        catalog
            .apply(batch(1).into_iter().map(put).collect(), 1)
            .unwrap();
        catalog.flush().unwrap();
        for n in 2..=4 {
            catalog
                .apply(batch(n).into_iter().map(put).collect(), n)
                .unwrap();
        }
        std::process::abort();
    }
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "catalog::tests::a_crash_leaves_an_earlier_state_with_its_own_cursor",
        ])
        .env(CRASH_DIR, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child was to die");
    let catalog = Catalog::open(dir.path()).unwrap();
    let cursor = catalog.cursor().unwrap().expect("the flushed apply");
    assert!((1..=4).contains(&cursor), "{cursor}");
    let mut want: Vec<ItemMeta> = (1..=cursor).flat_map(batch).collect();
    want.reverse();
    assert_eq!(catalog.list(&ListQuery::default()).unwrap().items, want);
    assert_eq!(catalog.len().unwrap(), 50 * cursor);
}
