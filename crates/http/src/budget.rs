//! A byte budget shared by requests that buffer data in memory: the sum of what
//! all [`Reservation`]s hold never exceeds the budget, and a reservation gives its
//! bytes back when dropped.
//!
//! A reservation grows as its buffer does; growing waits (at most a given time)
//! for others to give bytes back, so a burst is smoothed and a flood is refused
//! instead of taking the process's memory.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes that can be reserved, in total, by everyone.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

/// Why a reservation could not grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// More than the whole budget was asked for: waiting would never help.
    #[error("{wanted} bytes is more than the whole budget of {total} bytes")]
    TooLarge {
        /// What the reservation would have held.
        wanted: usize,
        /// The whole budget.
        total: usize,
    },
    /// The bytes did not become free in time.
    #[error("the memory budget stayed full for {0:?}")]
    Exhausted(Duration),
}

impl ByteBudget {
    /// A budget of `total` bytes (at most [`Semaphore::MAX_PERMITS`]).
    pub fn new(total: usize) -> ByteBudget {
        let total = total.min(Semaphore::MAX_PERMITS);
        ByteBudget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// The whole budget, in bytes.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes not reserved at the moment.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// A reservation of nothing yet, drawing on this budget.
    pub fn reserve(&self) -> Reservation {
        Reservation {
            budget: self.clone(),
            held: None,
        }
    }
}

/// Bytes held from a [`ByteBudget`] until dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: ByteBudget,
    held: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    /// The bytes held.
    pub fn len(&self) -> usize {
        self.held
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Holds at least `bytes`, waiting up to `wait` for them to be free.
    pub async fn grow_to(&mut self, bytes: usize, wait: Duration) -> Result<(), BudgetError> {
        let held = self.len();
        if bytes <= held {
            return Ok(());
        }
        let total = self.budget.total;
        let more = u32::try_from(bytes - held)
            .ok()
            .filter(|_| bytes <= total)
            .ok_or(BudgetError::TooLarge {
                wanted: bytes,
                total,
            })?;
        let acquire = self.budget.bytes.clone().acquire_many_owned(more);
        let permit = tokio::time::timeout(wait, acquire)
            .await
            .map_err(|_| BudgetError::Exhausted(wait))?
            .expect("the budget's semaphore is never closed");
        match &mut self.held {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn reservations_never_hold_more_than_the_budget_together() {
        let budget = ByteBudget::new(100);
        let mut first = budget.reserve();
        first.grow_to(60, WAIT).await.unwrap();
        first.grow_to(30, WAIT).await.unwrap();
        assert_eq!(first.len(), 60);
        let mut second = budget.reserve();
        assert_eq!(
            second.grow_to(41, WAIT).await,
            Err(BudgetError::Exhausted(WAIT))
        );
        assert!(second.is_empty());
        second.grow_to(40, WAIT).await.unwrap();
        assert_eq!(budget.available(), 0);
        drop(first);
        assert_eq!(budget.available(), 60);
        second.grow_to(100, WAIT).await.unwrap();
        drop(second);
        assert_eq!(budget.available(), 100);
    }

    #[tokio::test]
    async fn a_waiting_reservation_gets_bytes_given_back_meanwhile() {
        let budget = ByteBudget::new(10);
        let mut holder = budget.reserve();
        holder.grow_to(10, WAIT).await.unwrap();
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move {
                let mut waiting = budget.reserve();
                waiting
                    .grow_to(5, Duration::from_secs(30))
                    .await
                    .map(|()| waiting.len())
            }
        });
        drop(holder);
        assert_eq!(waiter.await.unwrap(), Ok(5));
    }

    #[tokio::test]
    async fn more_than_the_whole_budget_is_refused_at_once() {
        let budget = ByteBudget::new(10);
        let mut reservation = budget.reserve();
        assert_eq!(
            reservation.grow_to(11, Duration::from_secs(30)).await,
            Err(BudgetError::TooLarge {
                wanted: 11,
                total: 10
            })
        );
    }
}
