//! Log space prepared ahead of the commits (see [`log`](super::super::log)).

use std::time::Duration;

use super::super::faults::Action;
use super::super::seam::Step;
use super::{Fixture, content, log_end, options, put, read};

/// Waits until the committer has prepared `segment` up to `size` bytes.
async fn prepared(fixture: &Fixture, segment: u32, size: u64) {
    let path = fixture.segment(segment);
    for _ in 0..500 {
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == size) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} was never prepared to {size} bytes", path.display());
}

#[tokio::test]
async fn commits_go_into_prepared_space_and_read_back_after_restarts() {
    let fixture = Fixture::new();
    let segment_size = options().segment_size;
    let mut written = Vec::new();
    for (round, len) in [1_000, 15_000, 6_000, 15_000].into_iter().enumerate() {
        let store = fixture.reopen().await;
        for i in 0..8 {
            let data = content(len, (round * 10 + i) as u32);
            written.push((put(&store, &data).await.unwrap().id, data));
        }
        drop(store);
    }
    let store = fixture.reopen().await;
    for (i, (id, data)) in written.iter().enumerate() {
        let got = read(&store, *id).await.unwrap();
        assert!(got.as_ref() == Some(data), "item {i}");
    }
    // The current segment is prepared whole (it is smaller than what is kept
    // ahead); a commit lands in it and leaves its size as it is.
    let current = store.shared.log.current_segment();
    prepared(&fixture, current, segment_size).await;
    let end = log_end(&fixture.segment(current));
    put(&store, &content(500, 99)).await.unwrap();
    assert!(log_end(&fixture.segment(current)) > end);
    let size = std::fs::metadata(fixture.segment(current)).unwrap().len();
    assert_eq!(size, segment_size);
}

#[tokio::test]
async fn a_failed_preparation_takes_its_zeros_back_and_the_log_goes_on() {
    for step in [Step::PrepareWrite, Step::PrepareSync] {
        let fixture = Fixture::new();
        fixture.faults.at(Some(step), 0, Action::Error);
        let store = fixture.open().await;
        let mut written = Vec::new();
        for i in 0..5 {
            let data = content(3_000, i);
            written.push((put(&store, &data).await.unwrap().id, data));
        }
        // The committer prepares when no commit waits (at the latest, now); after
        // the failure, no more in that segment: the file is the log.
        let segment = fixture.segment(1);
        let cut = || std::fs::metadata(&segment).unwrap().len() == log_end(&segment);
        for _ in 0..500 {
            if fixture.faults.all_fired() && cut() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(fixture.faults.all_fired(), "{step:?}");
        assert!(cut(), "{step:?}: the zeros are still there");
        drop(store);
        let store = fixture.reopen().await;
        for (id, data) in &written {
            assert!(read(&store, *id).await.unwrap().as_ref() == Some(data));
        }
    }
}
