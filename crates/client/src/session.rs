//! A client session: connect, send transfers, read each reply, end.

use crate::{ClientError, Pieces};
use bytes::BytesMut;
use ferry_codec::Dict;
use ferry_crypto::FernetKey;
use ferry_protocol::{END, EXT_HELLO, Meta, Reply, ReplyParse, Serialization, encode, parse_reply};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

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
}

/// One TCP connection to a Ferry (or legacy) server.
#[derive(Debug)]
pub struct Session {
    stream: TcpStream,
    options: Options,
    out: BytesMut,
    replies: Vec<u8>,
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
            out: BytesMut::with_capacity(70_000),
            replies: Vec::new(),
        };
        if session.options.extensions {
            session.stream.write_all(&[EXT_HELLO]).await?;
        }
        Ok(session)
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
        let fernet = match (meta.encrypted(), &self.options.fernet) {
            (true, None) => return Err(ClientError::NoKey),
            (true, Some(key)) => Some(key.clone()),
            (false, _) => None,
        };
        if let (true, Some(name)) = (self.options.extensions, name) {
            self.stream.write_all(&encode::name_nibbles(name)).await?;
        }
        let mut pieces = Pieces::new(reader);
        let mut ahead = Ahead::new(fernet);
        let mut first = true;
        let mut sent = 0u64;
        loop {
            // Keep the encryption workers busy while the socket takes what is ready.
            while ahead.has_room() {
                match pieces.next_piece().await? {
                    Some((piece, last)) => ahead.push(piece, last),
                    None => break,
                }
            }
            let Some((payload, len, last)) = ahead.next().await? else {
                break;
            };
            self.out.clear();
            encode::packet(&mut self.out, first.then_some(meta), last, &payload);
            self.stream.write_all(&self.out).await?;
            first = false;
            sent += len as u64;
            progress(sent);
        }
        self.read_reply(sent).await
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

/// The pieces of one transfer between the reader and the socket, in order. Plain
/// pieces pass through; encrypted ones are Fernet-encrypted on the blocking pool,
/// a few per core ahead of the socket, so that encryption uses every core while
/// memory stays bounded (at most [`Ahead::depth`] pieces and their tokens).
struct Ahead {
    fernet: Option<Arc<FernetKey>>,
    depth: usize,
    queue: VecDeque<(Payload, usize, bool)>,
}

enum Payload {
    Plain(Vec<u8>),
    Encrypting(JoinHandle<Vec<u8>>),
}

impl Ahead {
    fn new(fernet: Option<Arc<FernetKey>>) -> Ahead {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Plain pieces need no look-ahead beyond the one the reader keeps.
        let depth = if fernet.is_some() { 2 * cores } else { 1 };
        Ahead {
            fernet,
            depth,
            queue: VecDeque::with_capacity(depth),
        }
    }

    fn has_room(&self) -> bool {
        self.queue.len() < self.depth && !self.queue.back().is_some_and(|(_, _, last)| *last)
    }

    fn push(&mut self, piece: Vec<u8>, last: bool) {
        let len = piece.len();
        let payload = match &self.fernet {
            Some(key) => {
                let key = key.clone();
                Payload::Encrypting(tokio::task::spawn_blocking(move || key.encrypt(&piece)))
            }
            None => Payload::Plain(piece),
        };
        self.queue.push_back((payload, len, last));
    }

    /// The next packet's payload, the plaintext length it carries, and whether it
    /// is the last; `None` when every piece pushed has been taken.
    async fn next(&mut self) -> Result<Option<(Vec<u8>, usize, bool)>, ClientError> {
        let Some((payload, len, last)) = self.queue.pop_front() else {
            return Ok(None);
        };
        let payload = match payload {
            Payload::Plain(bytes) => bytes,
            Payload::Encrypting(task) => task.await.map_err(|err| {
                ClientError::Io(std::io::Error::other(format!("encrypting a piece: {err}")))
            })?,
        };
        Ok(Some((payload, len, last)))
    }
}

impl Drop for Ahead {
    /// Pieces still being encrypted when a transfer stops are not waited for.
    fn drop(&mut self) {
        for (payload, _, _) in self.queue.drain(..) {
            if let Payload::Encrypting(task) = payload {
                task.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::{Decoder, Frame};
    use tokio::net::TcpListener;

    /// A server that reads one transfer, answers `OK`, and returns its packets.
    async fn one_transfer(listener: TcpListener) -> Vec<ferry_protocol::Packet> {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = BytesMut::new();
        let mut packets = Vec::new();
        loop {
            while let Some(frame) = Decoder.decode(&mut buf).unwrap() {
                let Frame::Packet(packet) = frame else {
                    continue;
                };
                let last = packet.final_;
                packets.push(packet);
                if last {
                    stream.write_all(b"OK").await.unwrap();
                    return packets;
                }
            }
            if stream.read_buf(&mut buf).await.unwrap() == 0 {
                panic!("the client closed before the last packet");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn encrypted_pieces_go_out_in_order_whatever_finishes_first() {
        let key = Arc::new(FernetKey::generate());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(one_transfer(listener));
        // 200 distinct pieces and a short last one.
        let data: Vec<u8> = (0..200 * 48_000 + 123)
            .map(|i: u32| (i / 48_000) as u8 ^ i as u8)
            .collect();
        let options = Options {
            fernet: Some(key.clone()),
            extensions: false,
            ..Options::default()
        };
        let mut session = Session::connect(&addr, options).await.unwrap();
        let mut reported = Vec::new();
        let receipt = session
            .send_reader(Meta::text(true), &data[..], None, &mut |sent| {
                reported.push(sent)
            })
            .await
            .unwrap();
        assert_eq!(receipt.size, data.len() as u64);

        let packets = server.await.unwrap();
        assert_eq!(packets.len(), 201);
        assert!(packets[0].initial && packets[0].meta == Some(Meta::text(true)));
        assert!(packets[..200].iter().all(|p| !p.final_) && packets[200].final_);
        let mut received = Vec::new();
        for packet in &packets {
            received.extend(key.decrypt(&packet.payload).unwrap());
        }
        assert!(
            received == data,
            "the pieces arrived out of order or altered"
        );
        assert_eq!(reported.len(), 201);
        assert_eq!(reported.last(), Some(&(data.len() as u64)));
    }
}
