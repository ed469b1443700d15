//! An upload's body as a stream of chunks that enforces the file limits as it goes:
//! the byte limit, and a timeout on the wait for each chunk (not on the whole
//! upload, so a big file may take as long as it needs while it keeps moving).
//!
//! It also keeps a copy of the first [`REPLAY_LIMIT`] bytes it hands out, so that a
//! transfer that fails on a dead pooled session before reading further can be sent
//! again on a fresh connection ([`Upload::rewind`]); memory stays bounded.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::time::{Instant, Sleep};

use ferry_http::ApiError;

/// The most body bytes kept for a retry on a fresh connection.
pub const REPLAY_LIMIT: usize = 256 * 1024;

/// A stream of body chunks, boxed.
pub type Chunks<'a> = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + 'a>>;

/// Why the body, rather than the server, ended an upload.
#[derive(Debug, Clone)]
pub enum BodyFailure {
    TooLarge(u64),
    Idle(Duration),
    Unreadable(String),
}

impl From<BodyFailure> for ApiError {
    fn from(failure: BodyFailure) -> ApiError {
        match failure {
            BodyFailure::TooLarge(limit) => ApiError::too_large(limit),
            BodyFailure::Idle(wait) => ApiError::RequestTimeout(format!(
                "no body data arrived for {} s",
                wait.as_secs_f64()
            )),
            BodyFailure::Unreadable(message) => ApiError::BadRequest {
                code: "body_unreadable",
                message,
            },
        }
    }
}

/// When an upload last moved, and whether it is waiting on the client (whose pace
/// the idle timeout governs) rather than on the server.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    waiting_on_client: AtomicBool,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            waiting_on_client: AtomicBool::new(false),
        })
    }

    /// Records progress: a chunk arrived or a packet left.
    pub fn touch(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn set_waiting(&self, waiting: bool) {
        self.waiting_on_client.store(waiting, Ordering::Relaxed);
    }

    /// Completes once the upload has been stuck on the server side for `limit`:
    /// no chunk arrived and no packet left, while not waiting on the client.
    pub async fn stalled_for(&self, limit: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let due = last + limit;
            if Instant::now() >= due && !self.waiting_on_client.load(Ordering::Relaxed) {
                return;
            }
            tokio::time::sleep_until(due.max(Instant::now() + limit / 10)).await;
        }
    }
}

/// The guarded body stream.
pub struct Upload<'a> {
    inner: Chunks<'a>,
    limit: Option<u64>,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    waiting: bool,
    activity: Arc<Activity>,
    consumed: u64,
    /// Copies of the chunks handed out, while they total at most [`REPLAY_LIMIT`].
    kept: Option<Vec<Bytes>>,
    failure: Option<BodyFailure>,
}

impl std::fmt::Debug for Upload<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("consumed", &self.consumed)
            .field("failure", &self.failure)
            .finish()
    }
}

impl<'a> Upload<'a> {
    pub fn new(
        inner: Chunks<'a>,
        limit: Option<u64>,
        idle: Duration,
        activity: Arc<Activity>,
    ) -> Upload<'a> {
        Upload {
            inner,
            limit,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            waiting: false,
            activity,
            consumed: 0,
            kept: Some(Vec::new()),
            failure: None,
        }
    }

    /// Why the body failed, if it did.
    pub fn failure(&self) -> Option<&BodyFailure> {
        self.failure.as_ref()
    }

    /// Starts the stream again from its first byte, if every byte handed out so far
    /// was kept. Works once: nothing is kept after a rewind.
    pub fn rewind(&mut self) -> bool {
        let Some(kept) = self.kept.take() else {
            return false;
        };
        let rest = std::mem::replace(&mut self.inner, Box::pin(futures::stream::empty()));
        self.inner = Box::pin(futures::StreamExt::chain(
            futures::stream::iter(kept.into_iter().map(Ok)),
            rest,
        ));
        self.consumed = 0;
        true
    }

    fn fail(&mut self, failure: BodyFailure) -> Poll<Option<io::Result<Bytes>>> {
        let kind = match failure {
            BodyFailure::Idle(_) => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::InvalidData,
        };
        self.failure = Some(failure);
        Poll::Ready(Some(Err(io::Error::new(kind, "the request body failed"))))
    }
}

impl Stream for Upload<'_> {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(failure) = this.failure.clone() {
            return this.fail(failure);
        }
        if !this.waiting {
            // The idle clock runs only while the upload waits on the client.
            this.waiting = true;
            this.activity.set_waiting(true);
            let deadline = Instant::now() + this.idle;
            this.timer.as_mut().reset(deadline);
        }
        let polled = this.inner.as_mut().poll_next(cx);
        if polled.is_ready() {
            this.waiting = false;
            this.activity.set_waiting(false);
            this.activity.touch();
        }
        match polled {
            Poll::Ready(Some(Ok(chunk))) => {
                this.consumed += chunk.len() as u64;
                if let Some(limit) = this.limit.filter(|&limit| this.consumed > limit) {
                    return this.fail(BodyFailure::TooLarge(limit));
                }
                if this.consumed > REPLAY_LIMIT as u64 {
                    this.kept = None;
                } else if let Some(kept) = &mut this.kept {
                    kept.push(chunk.clone());
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(err))) => this.fail(BodyFailure::Unreadable(format!(
                "the body could not be read: {err}"
            ))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    let idle = this.idle;
                    this.fail(BodyFailure::Idle(idle))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn chunks(parts: &[&'static [u8]]) -> Chunks<'static> {
        Box::pin(futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        ))
    }

    #[tokio::test]
    async fn bytes_beyond_the_limit_fail_the_upload() {
        let mut upload = Upload::new(
            chunks(&[b"abc", b"def"]),
            Some(4),
            Duration::from_secs(5),
            Activity::new(),
        );
        assert!(upload.next().await.unwrap().is_ok());
        assert!(upload.next().await.unwrap().is_err());
        assert!(matches!(upload.failure(), Some(BodyFailure::TooLarge(4))));
    }

    #[tokio::test]
    async fn a_rewound_upload_starts_again_from_the_first_byte() {
        let mut upload = Upload::new(
            chunks(&[b"ab", b"cd", b"ef"]),
            None,
            Duration::from_secs(5),
            Activity::new(),
        );
        assert_eq!(&upload.next().await.unwrap().unwrap()[..], b"ab");
        assert_eq!(&upload.next().await.unwrap().unwrap()[..], b"cd");
        assert!(upload.rewind());
        let all: Vec<Bytes> = upload.map(|c| c.unwrap()).collect().await;
        assert_eq!(all.concat(), b"abcdef");
    }

    #[tokio::test]
    async fn a_silent_client_times_out() {
        let mut upload = Upload::new(
            Box::pin(futures::stream::pending()),
            None,
            Duration::from_millis(50),
            Activity::new(),
        );
        assert!(upload.next().await.unwrap().is_err());
        assert!(matches!(upload.failure(), Some(BodyFailure::Idle(_))));
    }
}
