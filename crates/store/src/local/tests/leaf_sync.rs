//! An item's `stored` leaf, durable at commit when its sender gets a receipt
//! ([`ItemWriter::sync_leaf_at_commit`]), and only written otherwise.

use super::super::log::segment_path;
use super::{Fixture, content, log_end, open_logged, text_item};
use crate::{ItemWriter, Ledger, Store};

/// Commits one small item, its leaf synced at commit if `sync_leaf`; then a
/// power loss. Returns where the ledger's log ended before the commit, after
/// it, and after the power loss.
async fn commit_then_power_loss(sync_leaf: bool) -> (u64, u64, u64) {
    let fixture = Fixture::new();
    let store = open_logged(fixture.dir.path(), &fixture.key, &fixture.faults)
        .await
        .unwrap();
    let ledger = store.shared.ledger.clone().unwrap();
    let segment = segment_path(&fixture.dir.path().join("ledger"), 0);
    let before = log_end(&segment);
    let mut writer: Box<dyn ItemWriter> = store.begin(text_item()).await.unwrap();
    if sync_leaf {
        writer.sync_leaf_at_commit();
    }
    writer.write(&content(500, 1)).await.unwrap();
    let meta = writer.commit().await.unwrap();
    assert_eq!(meta.log_index, Some(ledger.size() - 1));
    let written = log_end(&segment);
    fixture.faults.power_loss();
    let kept = log_end(&segment);
    (before, written, kept)
}

#[tokio::test]
async fn a_leaf_synced_at_commit_survives_a_power_loss_right_after() {
    let (before, written, kept) = commit_then_power_loss(true).await;
    assert!(written > before, "the leaf was written");
    assert_eq!(
        kept, written,
        "the leaf was durable when the commit returned"
    );
}

#[tokio::test]
async fn a_leaf_not_synced_at_commit_is_only_written() {
    // The default (a legacy sender, no receipt): the leaf waits for the next
    // sync of the log, and a power loss right after the commit takes it (the
    // next open writes it again from the item's record).
    let (before, written, kept) = commit_then_power_loss(false).await;
    assert!(written > before, "the leaf was written");
    assert_eq!(kept, before, "the leaf was not synced");
}
