//! Bytes or operations over a measured time.

use std::time::Duration;

/// `amount` (bytes or operations) done in `elapsed`.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub amount: u64,
    pub elapsed: Duration,
}

impl Rate {
    pub fn new(amount: u64, elapsed: Duration) -> Rate {
        Rate { amount, elapsed }
    }

    /// Amount per second.
    pub fn per_sec(&self) -> f64 {
        self.amount as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Megabytes (10^6 bytes, as `dd` counts) per second, for a byte amount.
    pub fn mb_per_sec(&self) -> f64 {
        self.per_sec() / 1e6
    }
}
