//! The memory budget of the dictionaries in flight.
//!
//! A dictionary is collected whole before it is decoded, so many connections each
//! sending a large unfinished one could take all the memory there is. Every
//! dictionary buffer beyond its first [`FREE_BYTES`] is charged to one budget
//! shared by all connections: a buffer that must grow waits for room at most
//! [`MemoryBudget::wait`], and past that its transfer is refused (the client hears
//! `ERROR: …` when its transfer ends, never a hang). What a transfer charged is
//! given back when its buffer is dropped, whatever way the transfer ends.
//!
//! The first [`FREE_BYTES`] of each dictionary are not charged, so small
//! dictionaries keep being served while large ones hold the whole budget; their
//! memory is bounded by the connection limit, like the connections' read buffers.

use crate::TransferError;
use ferry_http::{BudgetError, ByteBudget, Reservation};
use std::time::Duration;

/// Bytes of each dictionary that are not charged to the budget.
pub const FREE_BYTES: usize = 64 * 1024;

/// The shared budget: a [`ByteBudget`] and how long growth waits for room.
#[derive(Debug, Clone)]
pub(crate) struct MemoryBudget {
    bytes: ByteBudget,
    wait: Duration,
}

/// What one dictionary holds of the budget; given back on drop.
#[derive(Debug, Default)]
pub(crate) struct Charge {
    held: Option<Reservation>,
}

impl Charge {
    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.held.as_ref().map_or(0, Reservation::len)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        metrics::gauge!("ferry_inflight_dict_bytes").decrement(self.bytes() as f64);
    }
}

impl MemoryBudget {
    /// A budget of `total` bytes; growth waits at most `wait` for room.
    pub(crate) fn new(total: usize, wait: Duration) -> MemoryBudget {
        MemoryBudget {
            bytes: ByteBudget::new(total),
            wait,
        }
    }

    /// Adds `bytes` to `charge`, waiting at most the budget's wait for them.
    pub(crate) async fn grow(
        &self,
        charge: &mut Charge,
        bytes: usize,
    ) -> Result<(), TransferError> {
        if bytes == 0 {
            return Ok(());
        }
        let held = charge.bytes();
        let reservation = charge.held.get_or_insert_with(|| self.bytes.reserve());
        if let Err(err) = reservation.grow_to(held + bytes, self.wait).await {
            if let BudgetError::Exhausted(_) = err {
                tracing::warn!(
                    bytes,
                    held,
                    "no room in the memory budget in time; refusing the dictionary"
                );
            }
            return Err(TransferError::Refused(
                "the server is busy: the dictionaries in flight use all of its memory; try again later"
                    .into(),
            ));
        }
        metrics::gauge!("ferry_inflight_dict_bytes").increment(bytes as f64);
        Ok(())
    }
}

/// A dictionary being collected: its bytes, and what they hold of the budget.
#[derive(Debug, Default)]
pub(crate) struct DictBuffer {
    bytes: Vec<u8>,
    charge: Charge,
}

impl DictBuffer {
    /// Appends `data`, first charging any growth of the buffer past [`FREE_BYTES`].
    /// The buffer grows by doubling up to `limit`, and the whole capacity is charged.
    pub(crate) async fn push(
        &mut self,
        budget: &MemoryBudget,
        data: &[u8],
        limit: usize,
    ) -> Result<(), TransferError> {
        let needed = self.bytes.len() + data.len();
        let capacity = self.bytes.capacity();
        if needed > capacity {
            let target = needed.max(capacity * 2).min(limit.max(needed));
            let charged = capacity.saturating_sub(FREE_BYTES);
            budget
                .grow(
                    &mut self.charge,
                    target.saturating_sub(FREE_BYTES) - charged,
                )
                .await?;
            self.bytes.reserve_exact(target - self.bytes.len());
        }
        self.bytes.extend_from_slice(data);
        Ok(())
    }

    /// Charges `bytes` more (memory the transfer needs beside its buffer).
    pub(crate) async fn charge(
        &mut self,
        budget: &MemoryBudget,
        bytes: usize,
    ) -> Result<(), TransferError> {
        budget.grow(&mut self.charge, bytes).await
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn growth_past_the_budget_is_refused_after_the_wait_and_room_comes_back_on_drop() {
        let budget = MemoryBudget::new(4 * FREE_BYTES, Duration::from_millis(50));
        let piece = vec![7u8; FREE_BYTES];
        let mut first = DictBuffer::default();
        for _ in 0..4 {
            first.push(&budget, &piece, usize::MAX).await.unwrap();
        }
        assert_eq!(first.bytes().len(), 4 * FREE_BYTES);
        assert_eq!(
            first.charge.bytes(),
            3 * FREE_BYTES,
            "the first FREE_BYTES are free"
        );

        // 64 KiB of the budget are left: the second buffer's growth to 128 KiB
        // fits, its growth to 256 KiB does not.
        let mut second = DictBuffer::default();
        second.push(&budget, &piece, usize::MAX).await.unwrap();
        second.push(&budget, &piece, usize::MAX).await.unwrap();
        let err = second.push(&budget, &piece, usize::MAX).await.unwrap_err();
        assert_eq!(err.outcome(), "refused");
        assert!(err.reply().contains("busy"), "{}", err.reply());

        drop(first);
        second.push(&budget, &piece, usize::MAX).await.unwrap();
        assert_eq!(second.bytes().len(), 3 * FREE_BYTES);
    }

    #[tokio::test]
    async fn a_waiting_buffer_gets_the_room_another_gives_back() {
        let budget = MemoryBudget::new(2 * FREE_BYTES, Duration::from_secs(60));
        let piece = vec![1u8; FREE_BYTES];
        let mut holder = DictBuffer::default();
        holder.charge(&budget, 2 * FREE_BYTES).await.unwrap();
        let waiter = {
            let budget = budget.clone();
            let piece = piece.clone();
            tokio::spawn(async move {
                let mut buffer = DictBuffer::default();
                buffer.push(&budget, &piece, usize::MAX).await.unwrap();
                buffer
                    .push(&budget, &piece, usize::MAX)
                    .await
                    .map(|()| buffer.bytes().len())
            })
        };
        tokio::task::yield_now().await;
        drop(holder);
        assert_eq!(waiter.await.unwrap().unwrap(), 2 * FREE_BYTES);
    }

    #[tokio::test]
    async fn more_than_the_whole_budget_is_refused_at_once() {
        let budget = MemoryBudget::new(FREE_BYTES, Duration::from_secs(3600));
        let mut buffer = DictBuffer::default();
        let err = buffer.charge(&budget, 2 * FREE_BYTES).await.unwrap_err();
        assert_eq!(err.outcome(), "refused");
    }
}
