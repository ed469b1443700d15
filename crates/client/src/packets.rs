//! A transfer's packets, in the order sent: its pieces read ahead and, when the
//! transfer is encrypted, Fernet-encrypted on the blocking pool a few at a time,
//! so that every core encrypts while the socket sends.
//!
//! Pieces are independent Fernet tokens, so nothing but their order ties them
//! together: [`StreamExt::buffered`] keeps up to [`encrypt_ahead`] of them in
//! flight and yields them in the order they were read, whichever finishes
//! first. Memory stays at a few pieces per core whatever the transfer's size,
//! and the blocking pool runs at most two encryptions per core whatever the
//! number of transfers ([`encrypting`]).

use crate::Pieces;
use bytes::{Buf, Bytes, BytesMut};
use ferry_crypto::FernetKey;
use ferry_protocol::{Meta, encode};
use futures::{Stream, StreamExt};
use std::io;
use std::sync::{Arc, LazyLock};
use tokio::io::AsyncRead;
use tokio::sync::Semaphore;

/// One packet ready for the socket: its head, then its payload (kept apart, so
/// that a piece or its token is written as it is, not copied behind the head).
#[derive(Debug)]
pub(crate) struct Packet {
    pub(crate) head: BytesMut,
    pub(crate) payload: Vec<u8>,
    /// The plaintext bytes it carries.
    pub(crate) plaintext: usize,
}

impl Packet {
    /// The packet's bytes, head then payload, for one vectored write.
    pub(crate) fn into_buf(self) -> impl Buf {
        self.head.chain(Bytes::from(self.payload))
    }
}

/// How a piece's payload is made from its plaintext.
pub(crate) type Encrypt = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// Fernet with `key`, as the legacy client encrypts each piece.
pub(crate) fn fernet(key: Arc<FernetKey>) -> Encrypt {
    Arc::new(move |piece| key.encrypt(piece))
}

/// Pieces read ahead per transfer: two per core (at most 16), so that a core
/// never waits for the next piece to be read while the socket is busy.
fn encrypt_ahead() -> usize {
    (cores() * 2).min(16)
}

/// The cores this process may use, asked once: the standard library reads the
/// cgroup's quota from `/proc` and `/sys` on every call, which cost a small
/// dictionary's sender a third of its CPU when asked per transfer.
fn cores() -> usize {
    static CORES: LazyLock<usize> = LazyLock::new(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    *CORES
}

/// Pieces being encrypted at once in this process, whatever the number of
/// transfers (a gateway runs many): two per core. A piece waiting for its turn
/// holds only its plaintext.
fn encrypting() -> Arc<Semaphore> {
    static TURNS: LazyLock<Arc<Semaphore>> =
        LazyLock::new(|| Arc::new(Semaphore::new(cores() * 2)));
    TURNS.clone()
}

/// The packets of one transfer of `reader` described by `meta`, each piece's
/// payload made by `encrypt` (none: plaintext). A transfer of one piece (every
/// small dictionary) is encrypted in place: a hand-off would only add latency.
pub(crate) fn packets<R: AsyncRead + Unpin>(
    reader: R,
    meta: Meta,
    encrypt: Option<Encrypt>,
) -> impl Stream<Item = io::Result<Packet>> {
    let pieces = futures::stream::unfold(
        (Pieces::new(reader), true),
        |(mut pieces, first)| async move {
            let next = pieces.next_piece().await.transpose()?;
            Some((
                next.map(|(piece, last)| (first, piece, last)),
                (pieces, false),
            ))
        },
    );
    pieces
        .map(move |piece| {
            let encrypt = encrypt.clone();
            async move {
                let (first, piece, last) = piece?;
                let meta = first.then_some(meta);
                let plaintext = piece.len();
                let payload = match encrypt {
                    None => piece,
                    Some(encrypt) if first && last => encrypt(&piece),
                    Some(encrypt) => {
                        let turn = encrypting()
                            .acquire_owned()
                            .await
                            .map_err(io::Error::other)?;
                        tokio::task::spawn_blocking(move || {
                            let _turn = turn;
                            encrypt(&piece)
                        })
                        .await
                        .map_err(io::Error::other)?
                    }
                };
                let mut head = BytesMut::with_capacity(4);
                encode::packet_head(&mut head, meta, last, payload.len());
                Ok(Packet {
                    head,
                    payload,
                    plaintext,
                })
            }
        })
        .buffered(encrypt_ahead())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::PIECE_SIZE;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A payload that names its piece: the piece's first byte, and its length.
    fn tag(piece: &[u8]) -> Vec<u8> {
        format!("{}:{}", piece[0], piece.len()).into_bytes()
    }

    async fn collect(data: &[u8], encrypt: Option<Encrypt>) -> Vec<Packet> {
        let stream = packets(data, Meta::text(encrypt.is_some()), encrypt);
        stream.map(Result::unwrap).collect().await
    }

    /// Piece `i` of `count`, each `PIECE_SIZE` bytes of the value `i`.
    fn numbered(count: usize) -> Vec<u8> {
        (0..count).flat_map(|i| vec![i as u8; PIECE_SIZE]).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pieces_that_finish_out_of_order_are_sent_in_order_and_few_at_a_time() {
        let count = 24;
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (r, m) = (running.clone(), most.clone());
        // Early pieces are the slowest, every third one much slower still.
        let slow: Encrypt = Arc::new(move |piece| {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            let i = u64::from(piece[0]);
            let extra = if i % 3 == 0 { 20 } else { 0 };
            std::thread::sleep(Duration::from_millis(30 - i + extra));
            r.fetch_sub(1, Ordering::SeqCst);
            tag(piece)
        });
        let sent = collect(&numbered(count), Some(slow)).await;
        let payloads: Vec<String> = sent
            .iter()
            .enumerate()
            .map(|(i, p)| String::from_utf8(payload(i, p).to_vec()).unwrap())
            .collect();
        let expected: Vec<String> = (0..count).map(|i| format!("{i}:{PIECE_SIZE}")).collect();
        assert_eq!(payloads, expected);
        assert!(sent.iter().all(|p| p.plaintext == PIECE_SIZE));
        let most = most.load(Ordering::SeqCst);
        assert!(most >= 2, "pieces were encrypted one at a time");
        assert!(
            most <= encrypt_ahead(),
            "{most} pieces were encrypted at once"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_transfers_together_encrypt_at_most_two_pieces_per_core() {
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (r, m) = (running.clone(), most.clone());
        let slow: Encrypt = Arc::new(move |piece| {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            r.fetch_sub(1, Ordering::SeqCst);
            tag(piece)
        });
        let data = numbered(12);
        let transfers = (0..6).map(|_| collect(&data, Some(slow.clone())));
        for sent in futures::future::join_all(transfers).await {
            assert_eq!(sent.len(), 12);
        }
        let most = most.load(Ordering::SeqCst);
        assert!(most <= cores() * 2, "{most} pieces were encrypted at once");
    }

    /// The payload of the `i`th packet of a transfer, checked against its
    /// head: the operation byte, the meta byte (first packet only) and the
    /// big-endian length.
    fn payload(i: usize, packet: &Packet) -> &[u8] {
        let head = &packet.head[..];
        assert_eq!(head.len(), if i == 0 { 4 } else { 3 });
        let len = u16::from_be_bytes([head[head.len() - 2], head[head.len() - 1]]);
        assert_eq!(packet.payload.len(), usize::from(len));
        &packet.payload
    }

    #[tokio::test]
    async fn a_packet_is_its_head_then_its_payload_as_the_protocol_encodes_it() {
        let data: Vec<u8> = (0..PIECE_SIZE + 5).map(|i| i as u8).collect();
        let sent = collect(&data, None).await;
        let mut expected = BytesMut::new();
        encode::packet(
            &mut expected,
            Some(Meta::text(false)),
            false,
            &data[..PIECE_SIZE],
        );
        encode::packet(&mut expected, None, true, &data[PIECE_SIZE..]);
        let mut bytes = Vec::new();
        for packet in sent {
            let mut buf = packet.into_buf();
            while buf.has_remaining() {
                let chunk = buf.chunk().len();
                bytes.extend_from_slice(buf.chunk());
                buf.advance(chunk);
            }
        }
        assert_eq!(bytes, expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fernet_pieces_decrypt_to_the_data_in_order() {
        let key = Arc::new(FernetKey::generate());
        let data: Vec<u8> = (0..5 * PIECE_SIZE + 123).map(|i| (i / 7) as u8).collect();
        let sent = collect(&data, Some(fernet(key.clone()))).await;
        assert_eq!(sent.len(), 6);
        let mut received = Vec::new();
        for (i, packet) in sent.iter().enumerate() {
            received.extend(key.decrypt(payload(i, packet)).unwrap());
        }
        assert_eq!(received, data);
        assert_eq!(sent.iter().map(|p| p.plaintext).sum::<usize>(), data.len());
    }

    #[tokio::test]
    async fn plain_pieces_are_the_data_and_an_empty_transfer_is_one_packet() {
        let data: Vec<u8> = (0..2 * PIECE_SIZE + 5).map(|i| i as u8).collect();
        let sent = collect(&data, None).await;
        let received: Vec<u8> = sent
            .iter()
            .enumerate()
            .flat_map(|(i, p)| payload(i, p).to_vec())
            .collect();
        assert_eq!(received, data);
        let empty = collect(&[], None).await;
        assert_eq!(empty.len(), 1);
        assert_eq!(payload(0, &empty[0]), b"");
    }
}
