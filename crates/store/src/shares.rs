//! The memory that the large items being written hold together, in equal
//! shares: a large item takes one before it starts, waiting for one to be given
//! back when all are taken, and gives it back when it ends.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::StoreError;

/// `total` bytes of memory in shares of `each` (at least one share).
#[derive(Debug)]
pub(crate) struct MemoryShares {
    shares: Arc<Semaphore>,
    /// The counter of the takes that had to wait.
    waits: &'static str,
}

impl MemoryShares {
    pub(crate) fn new(total: usize, each: usize, waits: &'static str) -> MemoryShares {
        let shares = (total / each.max(1)).max(1);
        MemoryShares {
            shares: Arc::new(Semaphore::new(shares)),
            waits,
        }
    }

    /// A share, once one is free; given back when dropped.
    pub(crate) async fn take(&self) -> Result<OwnedSemaphorePermit, StoreError> {
        if let Ok(share) = self.shares.clone().try_acquire_owned() {
            return Ok(share);
        }
        metrics::counter!(self.waits).increment(1);
        self.shares
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("the store is closing".into()))
    }
}
