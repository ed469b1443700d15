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
    futures::stream::unfold(len, |remaining| async move {
        if remaining == 0 {
            return None;
        }
        let block = BLOCK.clone();
        let n = block
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        Some((Ok(block.slice(..n)), remaining - n as u64))
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
        }
    }
}
