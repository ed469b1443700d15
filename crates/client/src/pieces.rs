//! Cutting a byte stream into 48,000-byte pieces, knowing which piece is the last.

use ferry_protocol::PIECE_SIZE;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Reads a stream in pieces of exactly [`PIECE_SIZE`] bytes (the last one shorter),
/// looking one piece ahead so the caller knows which piece is final. An empty stream
/// yields one empty piece, since an empty transfer is one packet.
#[derive(Debug)]
pub struct Pieces<R> {
    reader: R,
    next: Option<Vec<u8>>,
    started: bool,
}

impl<R: AsyncRead + Unpin> Pieces<R> {
    pub fn new(reader: R) -> Self {
        Pieces {
            reader,
            next: None,
            started: false,
        }
    }

    /// The next piece and whether it is the last one; `None` once all were given.
    pub async fn next_piece(&mut self) -> std::io::Result<Option<(Vec<u8>, bool)>> {
        if !self.started {
            self.started = true;
            let first = self.fill().await?;
            self.next = Some(first);
        }
        let Some(current) = self.next.take() else {
            return Ok(None);
        };
        if current.len() < PIECE_SIZE {
            return Ok(Some((current, true)));
        }
        let following = self.fill().await?;
        if following.is_empty() {
            return Ok(Some((current, true)));
        }
        self.next = Some(following);
        Ok(Some((current, false)))
    }

    async fn fill(&mut self) -> std::io::Result<Vec<u8>> {
        let mut piece = vec![0; PIECE_SIZE];
        let mut filled = 0;
        while filled < PIECE_SIZE {
            let read = self.reader.read(&mut piece[filled..]).await?;
            if read == 0 {
                break;
            }
            filled += read;
        }
        piece.truncate(filled);
        Ok(piece)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sizes(len: usize) -> Vec<(usize, bool)> {
        let data = vec![1u8; len];
        let mut pieces = Pieces::new(&data[..]);
        let mut out = Vec::new();
        while let Some((piece, last)) = pieces.next_piece().await.unwrap() {
            out.push((piece.len(), last));
        }
        out
    }

    #[tokio::test]
    async fn pieces_are_48000_bytes_and_the_last_is_marked() {
        assert_eq!(sizes(0).await, vec![(0, true)]);
        assert_eq!(sizes(5).await, vec![(5, true)]);
        assert_eq!(sizes(PIECE_SIZE).await, vec![(PIECE_SIZE, true)]);
        assert_eq!(
            sizes(PIECE_SIZE + 1).await,
            vec![(PIECE_SIZE, false), (1, true)]
        );
        assert_eq!(
            sizes(2 * PIECE_SIZE).await,
            vec![(PIECE_SIZE, false), (PIECE_SIZE, true)]
        );
    }
}
