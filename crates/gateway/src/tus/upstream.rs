//! The native session a tus request runs on, and a PATCH body streamed into an
//! upload as native appends.
//!
//! Without a checksum the body goes in appends of at most
//! [`crate::GatewayConfig::tus_chunk_bytes`]: each is durable on the server
//! once it answers, so a body cut mid-way keeps every append already answered,
//! and memory stays flat (a packet at a time). With `Upload-Checksum` the body
//! is ONE append whose digest is checked as it streams; on a mismatch the
//! session is dropped before the append's final packet, so the server, which
//! commits an append only at its final packet, keeps none of it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use ferry_client::{ClientError, Receipt, Session};
use ferry_protocol::Meta;
use ferry_protocol::upload::{UploadErrorCode, UploadState};
use futures::TryStreamExt;
use tokio::io::{AsyncBufReadExt, AsyncRead, ReadBuf};
use tokio::time::Instant;
use tokio_util::io::StreamReader;

use super::error::TusError;
use super::headers::{Checksum, Hasher};
use crate::AppState;
use crate::pool::Lease;
use crate::upload::{Activity, Chunks, Upload};

/// How long an append answered `busy` is asked again before the request gets
/// 423: the server answers `busy` until it has noticed that a connection that
/// was appending (a cut request, a checksum that did not match) is gone.
const BUSY_WAIT: Duration = Duration::from_secs(2);

/// A pooled session lent to one tus request.
#[derive(Debug)]
pub struct Upstream {
    lease: Lease,
    /// Whether the session failed in a way that leaves it unusable (it is then
    /// dropped, not given back).
    broken: bool,
}

impl Upstream {
    pub async fn acquire(state: &AppState) -> Result<Upstream, TusError> {
        Ok(Upstream {
            lease: state.pool.acquire().await?,
            broken: false,
        })
    }

    /// Runs a command answered by the upload's state; on a pooled session
    /// found dead, once more on a new connection.
    pub async fn command(&mut self, command: Command<'_>) -> Result<UploadState, ClientError> {
        match self.run(command).await? {
            Answer::Upload(upload) => Ok(upload),
            Answer::Item(_) => unreachable!("only finish is answered with an item"),
        }
    }

    pub async fn state(&mut self, id: &str) -> Result<UploadState, ClientError> {
        self.command(Command::State(id)).await
    }

    /// Stores the complete upload; a finished one the server remembers is
    /// answered with its item again.
    pub async fn finish(&mut self, id: &str) -> Result<Receipt, ClientError> {
        match self.run(Command::Finish(id)).await? {
            Answer::Item(receipt) => Ok(receipt),
            Answer::Upload(_) => unreachable!("finish is answered with an item"),
        }
    }

    async fn run(&mut self, command: Command<'_>) -> Result<Answer, ClientError> {
        let result = command.run(self.lease.session()).await;
        let result = match result {
            Err(err) if self.lease.may_rerun_command(&err) => {
                tracing::info!(cause = %err, "pooled session was dead: running the upload command on a new connection");
                match self.lease.reconnect().await {
                    Ok(()) => command.run(self.lease.session()).await,
                    Err(_) => Err(err),
                }
            }
            other => other,
        };
        self.note(&result);
        result
    }

    fn note<T>(&mut self, result: &Result<T, ClientError>) {
        if let Err(err) = result
            && err.breaks_session()
        {
            self.broken = true;
        }
    }

    /// Gives the session back to the pool, unless it broke.
    pub fn release(self) {
        if !self.broken {
            self.lease.settle(&Ok::<(), ClientError>(()));
        }
    }

    /// Streams `body` into `upload` from its committed offset; returns the
    /// upload's state after the last append (its offset durable). At most
    /// `room` bytes are taken (413 beyond).
    pub async fn append_body(
        &mut self,
        state: &AppState,
        upload: UploadState,
        body: Body,
        room: Option<u64>,
        checksum: Option<Checksum>,
    ) -> Result<UploadState, TusError> {
        let config = &state.config;
        let activity = Activity::new();
        let chunks: Chunks<'static> = Box::pin(body.into_data_stream().map_err(io::Error::other));
        let mut reader = StreamReader::new(Upload::new(
            chunks,
            room,
            config.request_timeout,
            activity.clone(),
        ));
        let mut current = upload;
        let body_failure = |reader: &StreamReader<Upload<'_>, bytes::Bytes>| {
            reader
                .get_ref()
                .failure()
                .cloned()
                .map(|failure| TusError::Api(failure.into()))
        };
        loop {
            let more = match reader.fill_buf().await {
                Ok(buffered) => !buffered.is_empty(),
                Err(err) => {
                    return Err(body_failure(&reader).unwrap_or_else(|| {
                        TusError::Api(ferry_http::ApiError::BadRequest {
                            code: "body_unreadable",
                            message: format!("the body could not be read: {err}"),
                        })
                    }));
                }
            };
            if !more {
                // With a checksum the body is one append, so here it was empty.
                if let Some(checksum) = &checksum
                    && checksum.hasher().finish() != checksum.digest
                {
                    return Err(TusError::checksum_mismatch(current.offset));
                }
                return Ok(current);
            }
            let result = match &checksum {
                None => {
                    let limit = config.tus_chunk_bytes.max(1);
                    self.append(
                        &current,
                        &mut reader,
                        limit,
                        &activity,
                        config.upstream_timeout,
                    )
                    .await
                }
                Some(checksum) => {
                    let mut checked = Checked::new(&mut reader, checksum);
                    let result = self
                        .append(
                            &current,
                            &mut checked,
                            u64::MAX,
                            &activity,
                            config.upstream_timeout,
                        )
                        .await;
                    if checked.mismatched {
                        self.broken = true;
                        return Err(TusError::checksum_mismatch(current.offset));
                    }
                    result
                }
            };
            match result {
                Ok(next) => {
                    metrics::counter!("ferry_gateway_tus_committed_bytes_total")
                        .increment(next.offset.saturating_sub(current.offset));
                    current = next;
                }
                Err(err) => return Err(body_failure(&reader).unwrap_or_else(|| err.into())),
            }
            if checksum.is_some() {
                return Ok(current);
            }
        }
    }

    /// One append of at most `limit` bytes of `reader` at the upload's offset,
    /// asked again while the server says `busy` (for at most [`BUSY_WAIT`]).
    /// Besides the reply timeout, a watchdog ends an append that the server
    /// has stopped reading for `upstream_timeout`.
    async fn append<R: AsyncRead + Unpin>(
        &mut self,
        upload: &UploadState,
        reader: &mut R,
        limit: u64,
        activity: &Activity,
        upstream_timeout: Duration,
    ) -> Result<UploadState, ClientError> {
        let deadline = Instant::now() + BUSY_WAIT;
        let mut pause = Duration::from_millis(10);
        loop {
            activity.touch();
            let mut progress = |_| activity.touch();
            let session = self.lease.session();
            let result = tokio::select! {
                result = session.upload_append(&upload.id, upload.offset, &mut *reader, limit, &mut progress) => result,
                () = activity.stalled_for(upstream_timeout) => Err(ClientError::Timeout(upstream_timeout)),
            };
            match result {
                Err(ClientError::Upload {
                    code: UploadErrorCode::Busy,
                    ..
                }) if Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                other => {
                    self.note(&other);
                    return other;
                }
            }
        }
    }
}

/// An upload command other than `append`.
#[derive(Debug, Clone, Copy)]
pub enum Command<'a> {
    Open {
        meta: Meta,
        length: Option<u64>,
        name: Option<&'a str>,
    },
    State(&'a str),
    Length(&'a str, u64),
    Finish(&'a str),
    Cancel(&'a str),
}

enum Answer {
    Upload(UploadState),
    Item(Receipt),
}

impl Command<'_> {
    async fn run(self, session: &mut Session) -> Result<Answer, ClientError> {
        let upload = match self {
            Command::Open { meta, length, name } => session.upload_open(meta, length, name).await,
            Command::State(id) => session.upload_state(id).await,
            Command::Length(id, length) => session.upload_set_length(id, length).await,
            Command::Cancel(id) => session.upload_cancel(id).await,
            Command::Finish(id) => return session.upload_finish(id).await.map(Answer::Item),
        };
        upload.map(Answer::Upload)
    }
}

/// A reader that hashes what passes and, at the end, fails instead of
/// reporting the end when the digest is not the expected one: the transfer
/// reading it is then cut before its final packet.
struct Checked<'a, R> {
    inner: R,
    hasher: Option<Hasher>,
    expected: &'a [u8],
    mismatched: bool,
}

impl<'a, R> Checked<'a, R> {
    fn new(inner: R, checksum: &'a Checksum) -> Self {
        Checked {
            inner,
            hasher: Some(checksum.hasher()),
            expected: &checksum.digest,
            mismatched: false,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Checked<'_, R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.mismatched {
            return Poll::Ready(Err(mismatch()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        match (read.is_empty(), this.hasher.as_mut()) {
            (false, Some(hasher)) => hasher.update(read),
            (true, Some(_)) if buf.remaining() > 0 => {
                let digest = this.hasher.take().expect("checked above").finish();
                if digest != this.expected {
                    this.mismatched = true;
                    return Poll::Ready(Err(mismatch()));
                }
            }
            _ => {}
        }
        Poll::Ready(Ok(()))
    }
}

fn mismatch() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "the body does not match Upload-Checksum",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;
    use tokio::io::AsyncReadExt;

    fn sha256(data: &[u8]) -> Checksum {
        Checksum {
            algorithm: super::super::headers::Algorithm::Sha256,
            digest: sha2::Sha256::digest(data).to_vec(),
        }
    }

    #[tokio::test]
    async fn a_matching_body_reads_to_its_end() {
        let checksum = sha256(b"abcdef");
        let mut checked = Checked::new(&b"abcdef"[..], &checksum);
        let mut out = Vec::new();
        checked.read_to_end(&mut out).await.unwrap();
        assert_eq!(
            (out.as_slice(), checked.mismatched),
            (&b"abcdef"[..], false)
        );
    }

    #[tokio::test]
    async fn a_mismatched_body_fails_at_its_end_and_never_reports_the_end() {
        let checksum = sha256(b"abcdef");
        let mut checked = Checked::new(&b"abcdeX"[..], &checksum);
        let mut buf = [0u8; 6];
        checked.read_exact(&mut buf).await.unwrap();
        assert!(checked.read(&mut buf).await.is_err());
        assert!(checked.mismatched);
        assert!(checked.read(&mut buf).await.is_err());
    }
}
