//! What Ferry's protocol tests share: a raw TCP connection to a server, for bytes
//! no well-behaved client sends (hand-built packets, cut packets, garbage).
//! Replies are read the way the legacy client reads them: once, up to 4,096
//! bytes, with a deadline; nothing sleeps.

pub mod moto;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};

/// The longest wait for a reply the server should send.
pub const REPLY_WAIT: Duration = Duration::from_secs(30);

/// The legacy protocol's END packet.
const END: u8 = 0x10;

/// What came back when waiting for the server.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard {
    Reply(String),
    /// The server closed the connection (a read returned 0, or it was reset).
    Closed,
    /// Nothing within the wait.
    Silence,
}

/// One raw connection.
#[derive(Debug)]
pub struct RawClient {
    pub stream: TcpStream,
}

impl RawClient {
    /// Connects, with Nagle's algorithm off (each send goes out at once).
    pub async fn connect(addr: impl ToSocketAddrs) -> RawClient {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        RawClient { stream }
    }

    /// Writes bytes; an error means the server has closed the connection.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads once, up to 4,096 bytes, waiting at most `wait`.
    pub async fn hear(&mut self, wait: Duration) -> Heard {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(wait, self.stream.read(&mut buf)).await {
            Err(_) => Heard::Silence,
            Ok(Ok(0) | Err(_)) => Heard::Closed,
            Ok(Ok(n)) => Heard::Reply(String::from_utf8_lossy(&buf[..n]).into_owned()),
        }
    }

    /// The reply to what was just sent; panics on silence or a closed connection.
    pub async fn reply(&mut self) -> String {
        match self.hear(REPLY_WAIT).await {
            Heard::Reply(reply) => reply,
            other => panic!("expected a reply, heard {other:?}"),
        }
    }

    /// Sends a transfer and returns its reply.
    pub async fn exchange(&mut self, bytes: &[u8]) -> String {
        self.send(bytes).await.expect("send");
        self.reply().await
    }

    /// Waits until the server closes the connection; panics if it says anything
    /// more or keeps it open past `wait`.
    pub async fn assert_closed(&mut self, wait: Duration) {
        match self.hear(wait).await {
            Heard::Closed => {}
            other => panic!("expected the connection closed, heard {other:?}"),
        }
    }

    /// Waits for the server to close the connection (reading and discarding
    /// anything it still says); true if it did within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.hear(left).await {
                Heard::Closed => return true,
                Heard::Silence => return false,
                Heard::Reply(_) => {}
            }
        }
    }

    /// Sends END and shuts down the sending side, as a legacy client does (a
    /// server that already closed the connection is not an error here).
    pub async fn end(mut self) {
        let _ = self.stream.write_all(&[END]).await;
        let _ = self.stream.shutdown().await;
    }
}
