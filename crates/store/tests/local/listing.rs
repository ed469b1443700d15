//! Listing: pagination, order and filters.

use std::collections::HashSet;
use std::sync::Arc;

use ferry_crypto::StorageKey;
use ferry_protocol::{DataType, Serialization};
use ferry_store::{ItemId, ItemMeta, ListQuery, Store};

use crate::helpers::*;

/// Writes 1,000 items from 50 concurrent writers: every third is text, peers
/// cycle over three IPs.
async fn thousand(store: &Arc<ferry_store::LocalStore>) -> Vec<ItemMeta> {
    let tasks: Vec<_> = (0..50)
        .map(|t| {
            let store: Arc<dyn Store> = store.clone();
            tokio::spawn(async move {
                let mut metas = Vec::new();
                for j in 0..20 {
                    let n = t * 20 + j;
                    let peer = format!("10.0.0.{}:{}", n % 3 + 1, 1000 + n);
                    let item = if n % 3 == 0 {
                        text(&peer, "t.txt")
                    } else {
                        dict(&peer)
                    };
                    metas.push(put(&*store, item, format!("{{\"n\":{n}}}").as_bytes()).await);
                }
                metas
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_by_key(|m| std::cmp::Reverse(m.id));
    all
}

/// Follows the cursor to the end, checking each page.
async fn all_pages(store: &dyn Store, mut query: ListQuery) -> Vec<ItemMeta> {
    let mut seen = Vec::new();
    loop {
        let page = store.list(&query).await.unwrap();
        assert!(page.items.len() <= query.limit);
        match page.next {
            Some(next) => {
                assert_eq!(page.items.len(), query.limit, "only the last page is short");
                assert_eq!(Some(next), page.items.last().map(|m| m.id));
                seen.extend(page.items);
                query.before = Some(next);
            }
            None => {
                seen.extend(page.items);
                return seen;
            }
        }
    }
}

#[tokio::test]
async fn a_thousand_items_page_newest_first_each_exactly_once_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open(dir.path(), &key).await;
    let all = thousand(&store).await;
    assert_eq!(store.count().await, 1000);

    let listed = all_pages(
        &*store,
        ListQuery {
            limit: 37,
            ..ListQuery::default()
        },
    )
    .await;
    assert_eq!(listed, all);
    let unique: HashSet<ItemId> = listed.iter().map(|m| m.id).collect();
    assert_eq!(unique.len(), 1000);
    let everything = store.list(&ListQuery::default()).await.unwrap();
    assert_eq!((everything.items.len(), everything.next), (1000, None));

    let check = |query: ListQuery, keep: &dyn Fn(&ItemMeta) -> bool| {
        let store = store.clone();
        let expected: Vec<ItemMeta> = all.iter().filter(|m| keep(m)).cloned().collect();
        async move {
            assert!(!expected.is_empty());
            assert_eq!(all_pages(&*store, query).await, expected);
        }
    };
    let q = ListQuery {
        limit: 50,
        ..ListQuery::default()
    };
    check(
        ListQuery {
            data_type: Some(DataType::Text),
            ..q.clone()
        },
        &|m| m.data_type == DataType::Text,
    )
    .await;
    check(
        ListQuery {
            serialization: Some(Serialization::Json),
            ..q.clone()
        },
        &|m| m.serialization == Serialization::Json,
    )
    .await;
    check(
        ListQuery {
            source: Some("10.0.0.2".into()),
            ..q.clone()
        },
        &|m| m.peer.starts_with("10.0.0.2:"),
    )
    .await;
    let one = &all[400];
    check(
        ListQuery {
            source: Some(one.peer.clone()),
            ..q.clone()
        },
        &|m| m.peer == one.peer,
    )
    .await;
    let middle = all[500].received_at;
    check(
        ListQuery {
            since: Some(middle),
            ..q.clone()
        },
        &|m| m.received_at >= middle,
    )
    .await;
    check(
        ListQuery {
            until: Some(middle),
            ..q.clone()
        },
        &|m| m.received_at < middle,
    )
    .await;
    check(
        ListQuery {
            before: Some(all[10].id),
            ..q.clone()
        },
        &|m| m.id < all[10].id,
    )
    .await;
    let combined = ListQuery {
        data_type: Some(DataType::Dictionary),
        source: Some("10.0.0.3".into()),
        until: Some(middle),
        ..q.clone()
    };
    check(combined, &|m| {
        m.data_type == DataType::Dictionary
            && m.peer.starts_with("10.0.0.3:")
            && m.received_at < middle
    })
    .await;

    let none = store
        .list(&ListQuery {
            source: Some("192.168.1.1".into()),
            limit: 10,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!((none.items.len(), none.next), (0, None));

    drop(store);
    let store = open(dir.path(), &key).await;
    assert_eq!(
        all_pages(
            &*store,
            ListQuery {
                limit: 100,
                ..ListQuery::default()
            }
        )
        .await,
        all
    );
}
