//! Telling a slow peer from a live one.
//!
//! The idle timeout drops a peer that sends nothing; a peer that dribbles a byte
//! now and then would dodge it and hold a connection slot forever. So while a
//! transfer or a packet is open, every idle-timeout window must also bring at
//! least [`MIN_BYTES_PER_WINDOW`] bytes.

use std::time::{Duration, Instant};

/// The least a peer in the middle of a transfer sends per window (1 KiB per 30 s
/// by default: any real client does far more).
pub(crate) const MIN_BYTES_PER_WINDOW: u64 = 1024;

/// Bytes received in the current window.
#[derive(Debug)]
pub(crate) struct Progress {
    window: Duration,
    started: Instant,
    bytes: u64,
}

impl Progress {
    pub(crate) fn new(window: Duration) -> Progress {
        Progress {
            window,
            started: Instant::now(),
            bytes: 0,
        }
    }

    /// Counts `bytes` just read; `false` when a window that ended while the peer
    /// was `busy` (mid-transfer or mid-packet) brought too little.
    pub(crate) fn record(&mut self, bytes: usize, busy: bool) -> bool {
        self.bytes += bytes as u64;
        if self.started.elapsed() < self.window {
            return true;
        }
        let enough = !busy || self.bytes >= MIN_BYTES_PER_WINDOW;
        self.started = Instant::now();
        self.bytes = 0;
        enough
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_that_ends_with_too_little_while_busy_fails() {
        let mut progress = Progress::new(Duration::ZERO);
        assert!(!progress.record(10, true));
        assert!(
            progress.record(10, false),
            "a peer between transfers is judged by the idle timeout alone"
        );
        assert!(progress.record(MIN_BYTES_PER_WINDOW as usize, true));
    }

    #[test]
    fn within_a_window_anything_goes() {
        let mut progress = Progress::new(Duration::from_secs(3600));
        assert!(progress.record(1, true));
        assert!(progress.record(0, true));
    }
}
