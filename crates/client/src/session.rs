//! A client session: connect, send transfers, read each reply, end.

use crate::ClientError;
use crate::packets::{self, Encrypt};
use ferry_codec::Dict;
use ferry_crypto::FernetKey;
use ferry_protocol::{END, EXT_HELLO, Meta, Reply, ReplyParse, Serialization, encode, parse_reply};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How a session behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// The shared Fernet key; needed only for encrypted transfers.
    pub fernet: Option<Arc<FernetKey>>,
    pub connect_timeout: Duration,
    /// How long to wait for the server's answer after the last packet of a transfer.
    pub reply_timeout: Duration,
    /// Ask for extended replies and send file names (Ferry extensions, ignored by
    /// the legacy server). Off, the session's bytes are exactly the legacy client's.
    pub extensions: bool,
}

/// How long a session waits for the answer to its first upload command before
/// concluding that the server takes no resumable uploads (a legacy server never
/// answers one), unless told otherwise ([`Session::set_upload_probe_timeout`]).
pub const DEFAULT_UPLOAD_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for Options {
    fn default() -> Self {
        Options {
            fernet: None,
            connect_timeout: Duration::from_secs(10),
            reply_timeout: Duration::from_secs(120),
            extensions: true,
        }
    }
}

/// What the server said about a transfer it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The stored item's id; `None` from a server without the extension (the legacy one).
    pub id: Option<String>,
    /// Plaintext bytes sent.
    pub size: u64,
    /// The SHA-256 of the plaintext as the server computed it, when it says.
    pub sha256: Option<String>,
    /// The item's signed receipt (a `ferry_tlog::Receipt` as JSON), exactly as the
    /// server sent it; `None` from a server that keeps no log (or the legacy one).
    pub signed: Option<serde_json::Value>,
}

/// One TCP connection to a Ferry (or legacy) server.
#[derive(Debug)]
pub struct Session {
    pub(crate) stream: TcpStream,
    pub(crate) options: Options,
    pub(crate) replies: Vec<u8>,
    /// Whether every packet of the last transfer was written (its reply may
    /// still be missing): the server may have stored it.
    pub(crate) sent_whole: bool,
    /// Whether the server has answered an upload command on this session.
    pub(crate) uploads_answered: bool,
    pub(crate) upload_probe_timeout: Duration,
}

impl Session {
    /// Connects to `addr` (`host:port`).
    pub async fn connect(addr: &str, options: Options) -> Result<Session, ClientError> {
        let connect = TcpStream::connect(addr);
        let stream = tokio::time::timeout(options.connect_timeout, connect)
            .await
            .map_err(|_| ClientError::Timeout(options.connect_timeout))?
            .map_err(|source| ClientError::Connect {
                addr: addr.to_owned(),
                source,
            })?;
        stream.set_nodelay(true)?;
        let mut session = Session {
            stream,
            options,
            replies: Vec::new(),
            sent_whole: false,
            uploads_answered: false,
            upload_probe_timeout: DEFAULT_UPLOAD_PROBE_TIMEOUT,
        };
        if session.options.extensions {
            session.stream.write_all(&[EXT_HELLO]).await?;
        }
        Ok(session)
    }

    /// Whether the last transfer was written whole (then, if its reply never
    /// came, the server may have stored it, and sending it again may store it
    /// twice); `false` when a write failed before its last packet was sent.
    pub fn sent_whole(&self) -> bool {
        self.sent_whole
    }

    /// Whether the server has closed the connection (or sent bytes nobody
    /// asked for), as far as can be seen without waiting: a session kept idle
    /// that says so must not be used.
    pub fn peer_closed(&self) -> bool {
        let mut byte = [0; 1];
        !matches!(self.stream.try_read(&mut byte), Err(err) if err.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// How long to wait for the answer to this session's first upload command
    /// (see [`DEFAULT_UPLOAD_PROBE_TIMEOUT`]).
    pub fn set_upload_probe_timeout(&mut self, timeout: Duration) {
        self.upload_probe_timeout = timeout;
    }

    /// The options this session was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Serializes `dict` and sends it as one dictionary transfer.
    pub async fn send_dict(
        &mut self,
        dict: &Dict,
        serialization: Serialization,
        encrypt: bool,
    ) -> Result<Receipt, ClientError> {
        let bytes = ferry_codec::encode(serialization, dict)?;
        let meta = Meta::dictionary(serialization, encrypt)
            .ok_or_else(|| ClientError::Refused("text is not a dictionary serialization".into()))?;
        self.send_bytes(meta, &bytes, None).await
    }

    /// Sends bytes already in memory as one transfer.
    pub async fn send_bytes(
        &mut self,
        meta: Meta,
        data: &[u8],
        name: Option<&str>,
    ) -> Result<Receipt, ClientError> {
        self.send_reader(meta, data, name, &mut |_| {}).await
    }

    /// Streams `reader` as one transfer, 48,000 bytes a packet, calling `progress`
    /// with the plaintext bytes sent so far.
    pub async fn send_reader<R: AsyncRead + Unpin>(
        &mut self,
        meta: Meta,
        reader: R,
        name: Option<&str>,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<Receipt, ClientError> {
        self.encryption_for(meta)?;
        self.sent_whole = false;
        if let (true, Some(name)) = (self.options.extensions, name) {
            self.stream.write_all(&encode::name_nibbles(name)).await?;
        }
        let sent = self.write_transfer(meta, reader, progress).await?;
        self.sent_whole = true;
        self.read_reply(sent).await
    }

    /// How a transfer of `meta` is encrypted, if it is.
    fn encryption_for(&self, meta: Meta) -> Result<Option<Encrypt>, ClientError> {
        match (meta.encrypted(), &self.options.fernet) {
            (true, None) => Err(ClientError::NoKey),
            (true, Some(key)) => Ok(Some(packets::fernet(key.clone()))),
            (false, _) => Ok(None),
        }
    }

    /// Writes `reader` as one transfer, 48,000 plaintext bytes a packet
    /// (Fernet-encrypted when `meta` says so, on every core: see [`packets`]),
    /// calling `progress` with the plaintext bytes sent so far; returns how many
    /// were sent.
    pub(crate) async fn write_transfer<R: AsyncRead + Unpin>(
        &mut self,
        meta: Meta,
        reader: R,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<u64, ClientError> {
        let encrypt = self.encryption_for(meta)?;
        let packets = packets::packets(reader, meta, encrypt);
        let mut packets = std::pin::pin!(packets);
        let mut sent = 0u64;
        while let Some(packet) = packets.next().await {
            let packet = packet?;
            let plaintext = packet.plaintext;
            self.stream.write_all_buf(&mut packet.into_buf()).await?;
            sent += plaintext as u64;
            progress(sent);
        }
        Ok(sent)
    }

    /// Ends the session: the END byte, then the sending side is shut down.
    pub async fn end(mut self) -> Result<(), ClientError> {
        self.stream.write_all(&[END]).await?;
        self.stream.shutdown().await?;
        Ok(())
    }

    async fn read_reply(&mut self, size: u64) -> Result<Receipt, ClientError> {
        let timeout = self.options.reply_timeout;
        tokio::time::timeout(timeout, self.read_reply_inner(size))
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }

    async fn read_reply_inner(&mut self, size: u64) -> Result<Receipt, ClientError> {
        let mut chunk = [0u8; 4096];
        loop {
            match parse_reply(&self.replies).map_err(ClientError::BadReply)? {
                ReplyParse::Incomplete => {}
                ReplyParse::Legacy(reply) => {
                    self.replies.clear();
                    return match reply {
                        Reply::Ok => Ok(Receipt {
                            id: None,
                            size,
                            sha256: None,
                            signed: None,
                        }),
                        Reply::Error(reason) => Err(ClientError::Refused(reason)),
                    };
                }
                ReplyParse::Extended(reply, used) => {
                    self.replies.drain(..used);
                    return match reply.ok {
                        true => Ok(Receipt {
                            id: reply.id,
                            size: reply.size.unwrap_or(size),
                            sha256: reply.sha256,
                            signed: reply.receipt,
                        }),
                        false => Err(ClientError::Refused(
                            reply.error.unwrap_or_else(|| "refused".into()),
                        )),
                    };
                }
            }
            let read = self.stream.read(&mut chunk).await?;
            if read == 0 {
                return Err(ClientError::Closed);
            }
            self.replies.extend_from_slice(&chunk[..read]);
        }
    }
}
