//! A raw TCP conversation with the server, for bytes no well-behaved client sends:
//! hand-built packets, cut packets, garbage. Replies are read like the legacy
//! client reads them: once, up to 4096 bytes, with a deadline.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Meta byte of a text transfer.
pub fn text_meta(encrypted: bool) -> u8 {
    if encrypted { 0x02 } else { 0x00 }
}

/// Meta byte of a dictionary: serialization 1 = pickle, 2 = json, 3 = xml.
pub fn dict_meta(serialization: u8, encrypted: bool) -> u8 {
    (1 << 5) | (serialization << 2) | text_meta(encrypted)
}

/// The legacy framing of one transfer whose packets carry `payloads` as they are.
pub fn packets(meta: u8, payloads: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let count = payloads.len().max(1);
    for index in 0..count {
        let payload: &[u8] = payloads.get(index).copied().unwrap_or_default();
        let mut op = 0u8;
        if index == 0 {
            op |= 0x08;
        }
        if index == count - 1 {
            op |= 0x04;
        }
        out.push(op);
        if index == 0 {
            out.push(meta);
        }
        let len = u16::try_from(payload.len()).expect("a payload fits the 2-byte length");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(payload);
    }
    out
}

/// One transfer of `data` cut into legacy 48,000-byte pieces (one empty packet for no data).
pub fn transfer(meta: u8, data: &[u8]) -> Vec<u8> {
    let pieces: Vec<&[u8]> = data.chunks(48_000).collect();
    packets(meta, &pieces)
}

/// Like [`transfer`], with each piece Fernet-encrypted by `key` (set the meta's encrypted bit).
pub fn encrypted_transfer(meta: u8, data: &[u8], key: &ferry_crypto::FernetKey) -> Vec<u8> {
    let tokens: Vec<Vec<u8>> = if data.is_empty() {
        vec![key.encrypt(b"")]
    } else {
        data.chunks(48_000)
            .map(|piece| key.encrypt(piece))
            .collect()
    };
    let pieces: Vec<&[u8]> = tokens.iter().map(Vec::as_slice).collect();
    packets(meta, &pieces)
}

/// What came back when waiting for the server.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard {
    Reply(String),
    /// The server closed the connection (read returned 0, or it was reset).
    Closed,
    /// Nothing within the deadline.
    Silence,
}

/// One raw connection.
#[derive(Debug)]
pub struct Raw {
    pub stream: TcpStream,
}

impl Raw {
    pub async fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).unwrap();
        Raw { stream }
    }

    /// Sends bytes; a server that already closed the connection is not an error here.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads once, up to 4096 bytes, waiting at most `wait`.
    pub async fn hear(&mut self, wait: Duration) -> Heard {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(wait, self.stream.read(&mut buf)).await {
            Err(_) => Heard::Silence,
            Ok(Ok(0)) | Ok(Err(_)) => Heard::Closed,
            Ok(Ok(n)) => Heard::Reply(String::from_utf8_lossy(&buf[..n]).into_owned()),
        }
    }

    /// The reply to a transfer just sent; panics on silence or a closed connection.
    pub async fn reply(&mut self) -> String {
        match self.hear(Duration::from_secs(30)).await {
            Heard::Reply(reply) => reply,
            other => panic!("expected a reply, heard {other:?}"),
        }
    }

    /// Sends a transfer and returns its reply.
    pub async fn exchange(&mut self, bytes: &[u8]) -> String {
        self.send(bytes).await.expect("send");
        self.reply().await
    }

    /// Waits for the server to close the connection (reading and discarding anything
    /// it still says); true if it did within `wait`.
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

    /// Sends END and shuts down the sending side, as a legacy client does.
    pub async fn end(mut self) {
        let _ = self.stream.write_all(&[0x10]).await;
        let _ = self.stream.shutdown().await;
    }
}
