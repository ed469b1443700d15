//! Group commit: changes queued while one log object is being written go
//! together into the next, one PUT for many acknowledgements (as one fsync
//! covers a group on the local store).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use ferry_tlog::Entry;

use super::batch::Change;
use super::journal::Journal;
use crate::StoreError;

/// Changes waiting for the committer; a sender beyond it waits.
const QUEUE: usize = 1024;

/// What a commit answers: the sequence number of its log object, and the
/// index of its first leaf in the server's signed log.
type Committed = (u64, u64);

/// Changes, and the leaves that record them, waiting for their log object.
struct Pending {
    changes: Vec<Change>,
    leaves: Vec<Entry>,
    done: oneshot::Sender<Result<Committed, String>>,
}

impl Pending {
    fn bytes(&self) -> usize {
        let changes: usize = self.changes.iter().map(Change::encoded_len).sum();
        changes
            + self
                .leaves
                .iter()
                .map(|l| l.as_bytes().len())
                .sum::<usize>()
    }
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
        Ok(self.commit_logged(vec![change], Vec::new()).await?.0)
    }

    /// Writes `changes` and `leaves` (leaves of this server's signed log)
    /// together, in one log object with the next group; returns its sequence
    /// number and the index of the first leaf, once the object storage has it.
    pub(crate) async fn commit_logged(
        &self,
        changes: Vec<Change>,
        leaves: Vec<Entry>,
    ) -> Result<Committed, StoreError> {
        let closed = || StoreError::Unavailable("the store is closing".into());
        let (done, answer) = oneshot::channel();
        let pending = Pending {
            changes,
            leaves,
            done,
        };
        self.queue.send(pending).await.map_err(|_| closed())?;
        answer
            .await
            .map_err(|_| closed())?
            .map_err(StoreError::Unavailable)
    }
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
        let mut bytes = first.bytes();
        let mut group = vec![first];
        while bytes < max_bytes {
            let Ok(next) = waiting.try_recv() else { break };
            bytes += next.bytes();
            group.push(next);
        }
        let (mut changes, mut leaves, mut dones) = (Vec::new(), Vec::new(), Vec::new());
        for pending in group {
            changes.extend(pending.changes);
            dones.push((pending.done, pending.leaves.len() as u64));
            leaves.extend(pending.leaves);
        }
        metrics::histogram!("ferry_s3_group_changes").record(changes.len() as f64);
        let count = changes.len();
        let mut result = journal.commit(changes, leaves).await.map_err(|err| {
            tracing::error!(%err, changes = count, "a group commit to the object storage failed");
            match err {
                StoreError::Unavailable(why) => why,
                _ => "the object storage did not take the write (the server's log says why)"
                    .to_owned(),
            }
        });
        for (done, leaves) in dones {
            let _ = done.send(result.clone());
            if let Ok((_, first)) = &mut result {
                *first += leaves;
            }
        }
    }
}
