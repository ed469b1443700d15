//! The catalog's applier (see [`listing`](super::super::listing)): what a
//! commit finds before its entry is applied, and a catalog that cannot be
//! written.

use super::{Fixture, content, put, read};
use crate::{ListQuery, Store};

/// An item is found by its id as soon as its commit returns, and listed by
/// the next listing, whether or not the applier has run.
#[tokio::test]
async fn a_committed_item_is_found_and_listed_at_once() {
    let fx = Fixture::new();
    let store = fx.open().await;
    for seed in 0..50 {
        let meta = put(&store, &content(200, seed)).await.unwrap();
        assert_eq!(store.get(meta.id).await.unwrap(), Some(meta.clone()));
        let page = store.list(&ListQuery::default()).await.unwrap();
        assert_eq!(page.items.first(), Some(&meta), "item {seed}");
    }
    assert_eq!(store.count().await, 50);
}

/// A catalog that fails to apply (a full disk, an I/O error): the items
/// committed stay in the log, listings and commits are refused with what to
/// do, and a reopen lists every item committed, intact.
#[tokio::test]
async fn a_catalog_that_cannot_be_written_refuses_until_a_reopen_lists_everything() {
    let fx = Fixture::new();
    let store = fx.open().await;
    let before = put(&store, &content(300, 1)).await.unwrap();
    // Applied (a listing applies what is queued) before the catalog fails.
    store.list(&ListQuery::default()).await.unwrap();
    store.shared.listing.fail_applies();
    let queued = put(&store, &content(300, 2)).await.unwrap();
    let refused = store.list(&ListQuery::default()).await.unwrap_err();
    assert!(refused.to_string().contains("restart"), "{refused}");
    assert!(put(&store, &content(300, 3)).await.is_err());
    assert_eq!(store.get(queued.id).await.unwrap(), Some(queued.clone()));
    drop(store);

    let store = fx.reopen().await;
    let listed = store.list(&ListQuery::default()).await.unwrap();
    let ids: Vec<_> = listed.items.iter().map(|meta| meta.id).collect();
    assert!(
        ids.contains(&before.id) && ids.contains(&queued.id),
        "{ids:?}"
    );
    assert_eq!(
        read(&store, before.id).await.unwrap(),
        Some(content(300, 1))
    );
    assert_eq!(
        read(&store, queued.id).await.unwrap(),
        Some(content(300, 2))
    );
    put(&store, &content(300, 4)).await.unwrap();
}
