//! Limits per client address on the TCP listener: the most connections open at
//! once, and new connections per second (a token bucket, from `governor`). A
//! connection over either is answered `ERROR: <why>` (a legacy client reads it as
//! the reply to its transfer) and closed, rather than left waiting.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ferry_http::AddressBuckets;
use ferry_protocol::Reply;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a refused peer's bytes are read (and dropped) after the answer, so
/// that closing does not reset the connection before the peer has read it.
const DRAIN_FOR: Duration = Duration::from_secs(2);

/// The most bytes read from a refused peer.
const DRAIN_MAX: usize = 1 << 20;

/// The limits per client address, and the connections each address has open.
#[derive(Debug)]
pub(crate) struct PerIp {
    max_open: u32,
    new_per_second: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
    new: Option<AddressBuckets>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    TooMany(u32),
    TooFast(u32),
}

impl Refusal {
    fn reason(self) -> String {
        match self {
            Refusal::TooMany(max) => format!(
                "too many connections from your address (at most {max} at once); close one and try again"
            ),
            Refusal::TooFast(rate) => format!(
                "too many new connections from your address (at most {rate} per second); try again in a second"
            ),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Refusal::TooMany(_) => "open_per_ip",
            Refusal::TooFast(_) => "new_per_ip",
        }
    }
}

/// A connection counted against its address until dropped.
#[derive(Debug)]
pub(crate) struct Admitted {
    per_ip: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if self.per_ip.max_open == 0 {
            return;
        }
        let mut open = self.per_ip.lock();
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl PerIp {
    /// `max_open` connections at once and `new_per_second` new ones per address;
    /// 0 turns either off.
    pub(crate) fn new(max_open: u32, new_per_second: u32) -> Arc<PerIp> {
        let new = NonZeroU32::new(new_per_second).map(|rate| AddressBuckets::new(rate, rate));
        Arc::new(PerIp {
            max_open,
            new_per_second,
            open: Mutex::new(HashMap::new()),
            new,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a new connection from `ip`, or says why it is refused.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refusal> {
        if let Some(new) = &self.new
            && new.take(ip).is_err()
        {
            return Err(Refusal::TooFast(self.new_per_second));
        }
        if self.max_open > 0 {
            let mut open = self.lock();
            let count = open.entry(ip).or_insert(0);
            if *count >= self.max_open {
                return Err(Refusal::TooMany(self.max_open));
            }
            *count += 1;
        }
        Ok(Admitted {
            per_ip: self.clone(),
            ip,
        })
    }

    /// Forgets the addresses whose buckets are full again.
    pub(crate) fn forget_idle(&self) {
        if let Some(new) = &self.new {
            new.forget_idle();
        }
    }
}

/// Answers a refused connection and closes it, after reading what the peer
/// sends for a moment (bounded in time and bytes).
pub(crate) async fn refuse(mut stream: TcpStream, peer: std::net::SocketAddr, why: Refusal) {
    tracing::warn!(%peer, reason = why.label(), "connection refused: over its address's limit");
    metrics::counter!("ferry_connections_refused_total", "reason" => why.label()).increment(1);
    let answer = Reply::Error(why.reason()).to_bytes();
    if stream.write_all(&answer).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let _ = tokio::time::timeout(DRAIN_FOR, async {
        let mut buf = [0u8; 8192];
        let mut read = 0;
        while read < DRAIN_MAX {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_connections_are_counted_per_address_and_given_back() {
        let per_ip = PerIp::new(2, 0);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = per_ip.admit(a).unwrap();
        let _second = per_ip.admit(a).unwrap();
        assert_eq!(per_ip.admit(a).unwrap_err(), Refusal::TooMany(2));
        let _other = per_ip.admit(b).unwrap();
        drop(first);
        let _again = per_ip.admit(a).unwrap();
    }

    #[test]
    fn new_connections_past_the_rate_are_refused() {
        let per_ip = PerIp::new(0, 3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            drop(per_ip.admit(a).unwrap());
        }
        assert_eq!(per_ip.admit(a).unwrap_err(), Refusal::TooFast(3));
        assert!(per_ip.admit("10.0.0.2".parse().unwrap()).is_ok());
    }

    #[test]
    fn no_limits_count_nothing() {
        let per_ip = PerIp::new(0, 0);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..1000).map(|_| per_ip.admit(a).unwrap()).collect();
        assert!(per_ip.lock().is_empty());
        drop(held);
    }
}
