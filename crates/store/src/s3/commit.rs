//! Group commit: changes queued while one log object is being written go
//! together into the next, one PUT for many acknowledgements (as one fsync
//! covers a group on the local store).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::batch::Change;
use super::journal::Journal;
use crate::StoreError;

/// Changes waiting for the committer; a sender beyond it waits.
const QUEUE: usize = 1024;

/// One change waiting for its log object.
struct Pending {
    change: Change,
    done: oneshot::Sender<Result<u64, String>>,
}

/// The handle to the committer task, which ends when every handle is gone.
#[derive(Debug, Clone)]
pub(crate) struct Committer {
    queue: mpsc::Sender<Pending>,
}

impl Committer {
    /// Starts the committer: it waits `window` after the first change of a
    /// group for more, and puts at most `max_bytes` in one object (a larger
    /// change goes alone).
    pub(crate) fn start(journal: Arc<Journal>, window: Duration, max_bytes: usize) -> Committer {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(run(journal, waiting, window, max_bytes));
        Committer { queue }
    }

    /// Writes `change` to the log with the next group; returns the sequence
    /// number of its log object once the object storage has it.
    pub(crate) async fn commit(&self, change: Change) -> Result<u64, StoreError> {
        ask(&self.queue, |done| Pending { change, done }).await
    }
}

/// Queues the request `make` builds around the sender of its answer, then
/// waits for the answer (a number, or why it failed). The queue's task is gone
/// only when the store is closing.
pub(crate) async fn ask<T>(
    queue: &mpsc::Sender<T>,
    make: impl FnOnce(oneshot::Sender<Result<u64, String>>) -> T,
) -> Result<u64, StoreError> {
    let closed = || StoreError::Unavailable("the store is closing".into());
    let (done, answer) = oneshot::channel();
    queue.send(make(done)).await.map_err(|_| closed())?;
    answer
        .await
        .map_err(|_| closed())?
        .map_err(StoreError::Unavailable)
}

async fn run(
    journal: Arc<Journal>,
    mut waiting: mpsc::Receiver<Pending>,
    window: Duration,
    max_bytes: usize,
) {
    while let Some(first) = waiting.recv().await {
        if !window.is_zero() {
            tokio::time::sleep(window).await;
        }
        let mut bytes = first.change.encoded_len();
        let mut group = vec![first];
        while bytes < max_bytes {
            let Ok(next) = waiting.try_recv() else { break };
            bytes += next.change.encoded_len();
            group.push(next);
        }
        let (changes, dones): (Vec<Change>, Vec<_>) =
            group.into_iter().map(|p| (p.change, p.done)).unzip();
        metrics::histogram!("ferry_s3_group_changes").record(changes.len() as f64);
        let result = journal.commit(&changes).await.map_err(|err| {
            tracing::error!(%err, changes = changes.len(), "a group commit to the object storage failed");
            "the object storage did not take the write (the server's log says why)".to_owned()
        });
        for done in dones {
            let _ = done.send(result.clone());
        }
    }
}
