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

/// A rate of operations on a server, and the server's CPU time per operation
/// over it (read from `/proc`: steadier on a shared machine than the rate).
#[derive(Debug, Clone, Copy)]
pub struct Costed {
    pub rate: Rate,
    /// Microseconds of the server's CPU time (user and system) per operation.
    pub cpu_per_item: f64,
}

impl Costed {
    /// Runs `work` against `server`, reading its CPU time before and after.
    pub async fn measure(
        server: &crate::procs::Server,
        work: impl Future<Output = anyhow::Result<Rate>>,
    ) -> anyhow::Result<Costed> {
        let before = server.process.cpu_time();
        let rate = work.await?;
        let cpu = server.process.cpu_time().saturating_sub(before);
        Ok(Costed {
            rate,
            cpu_per_item: cpu.as_secs_f64() * 1e6 / rate.amount.max(1) as f64,
        })
    }
}
