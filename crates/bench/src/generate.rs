//! Text generated on the fly: the transfers never read a file, so the disk is
//! busy only with what the server writes.

use bytes::Bytes;
use futures::Stream;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// One 1 MiB block of numbered text lines, repeated to make any length.
static BLOCK: LazyLock<Bytes> = LazyLock::new(|| {
    const LEN: usize = 1 << 20;
    let mut text = Vec::with_capacity(LEN + 128);
    let mut line = 0u64;
    while text.len() < LEN {
        let row = format!(
            "{line:08} the quick brown fox jumps over the lazy dog; sensor s-{:02} ok\n",
            line % 97
        );
        text.extend_from_slice(row.as_bytes());
        line += 1;
    }
    text.truncate(LEN);
    Bytes::from(text)
});

/// An `AsyncRead` of exactly `len` bytes of text, always ready.
#[derive(Debug)]
pub struct TextReader {
    remaining: u64,
    pos: usize,
}

impl TextReader {
    pub fn new(len: u64) -> TextReader {
        TextReader {
            remaining: len,
            pos: 0,
        }
    }
}

impl AsyncRead for TextReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let block = &*BLOCK;
        let n = buf
            .remaining()
            .min(block.len() - self.pos)
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        buf.put_slice(&block[self.pos..self.pos + n]);
        self.pos = (self.pos + n) % block.len();
        self.remaining -= n as u64;
        Poll::Ready(Ok(()))
    }
}

/// A stream of exactly `len` bytes of text in chunks of at most 1 MiB (shared,
/// not copied), as an HTTP body.
pub fn text_stream(len: u64) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    text_stream_at(0, len)
}

/// The `len` bytes of [`text_stream`]'s text that start at `offset`: a part
/// of the same file, for a client that sends it in pieces.
pub fn text_stream_at(
    offset: u64,
    len: u64,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures::stream::unfold((offset, len), |(at, remaining)| async move {
        if remaining == 0 {
            return None;
        }
        let block = BLOCK.clone();
        let start = (at % block.len() as u64) as usize;
        let n = (block.len() - start).min(usize::try_from(remaining).unwrap_or(usize::MAX));
        Some((
            Ok(block.slice(start..start + n)),
            (at + n as u64, remaining - n as u64),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn reader_and_stream_give_exactly_the_length_asked() {
        for len in [0u64, 1, 1 << 20, (1 << 20) + 7, 3 * (1 << 20) + 1] {
            let mut read = Vec::new();
            TextReader::new(len).read_to_end(&mut read).await.unwrap();
            assert_eq!(read.len() as u64, len);
            let streamed: Vec<Bytes> = text_stream(len).try_collect().await.unwrap();
            assert_eq!(streamed.concat(), read);
            // Any cut into pieces gives the same text back.
            for cut in [0, 1, len / 3, len].into_iter().filter(|cut| *cut <= len) {
                let mut pieces: Vec<Bytes> = text_stream_at(0, cut).try_collect().await.unwrap();
                pieces.extend(
                    text_stream_at(cut, len - cut)
                        .try_collect::<Vec<Bytes>>()
                        .await
                        .unwrap(),
                );
                assert_eq!(pieces.concat(), read, "cut at {cut} of {len}");
            }
        }
    }
}
