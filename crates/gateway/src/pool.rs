//! A bounded pool of persistent sessions to the TCP server.
//!
//! At most `size` sessions exist at once, busy and idle together; a request waits
//! for one when all are busy. A session goes back to the pool after a transfer that
//! got an answer (accepted or refused) and is discarded after any other failure.
//! Idle sessions older than the idle timeout are ended (with the END byte) rather
//! than reused, since the server drops idle connections by itself. A pooled session
//! may still turn out dead (the server restarted): callers see that as
//! [`Lease::may_retry`] and may [`Lease::reconnect`] once. A transfer written whole
//! is never sent again, even if its reply never came: the server may have stored
//! it, and a second copy would be a duplicate.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_client::{ClientError, Options, Session};
use ferry_http::ApiError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::upstream_unavailable;

/// Sessions to one server.
#[derive(Debug, Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    addr: String,
    options: Options,
    idle: Mutex<Vec<Idle>>,
    permits: Arc<Semaphore>,
    idle_timeout: Duration,
}

#[derive(Debug)]
struct Idle {
    session: Session,
    since: Instant,
}

/// One session, lent out exclusively. Dropping a lease discards its session; use
/// [`Lease::settle`] to give it back.
#[derive(Debug)]
pub struct Lease {
    session: Option<Session>,
    reused: bool,
    pool: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

/// Whether a transfer failed because the connection was dead (as opposed to a
/// refusal, a timeout or a garbled reply).
fn is_dead_connection(err: &ClientError) -> bool {
    matches!(err, ClientError::Io(_) | ClientError::Closed)
}

impl Pool {
    /// A pool of at most `size` (at least 1) sessions to `addr`.
    pub fn new(addr: String, options: Options, size: usize, idle_timeout: Duration) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                addr,
                options,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(size.max(1))),
                idle_timeout,
            }),
        }
    }

    /// Takes the most recently used idle session, or connects a new one. Waits up to
    /// the connect timeout for a free slot when all sessions are busy.
    pub async fn acquire(&self) -> Result<Lease, ApiError> {
        let wait = self.inner.options.connect_timeout;
        let permit = tokio::time::timeout(wait, self.inner.permits.clone().acquire_owned())
            .await
            .map_err(|_| ApiError::Busy {
                code: "pool_exhausted",
                message: "every connection to the Ferry server is busy: try again".into(),
                retry_after: Duration::from_secs(1),
            })?
            .expect("the pool's semaphore is never closed");
        let mut lease = Lease {
            session: None,
            reused: false,
            pool: self.inner.clone(),
            _permit: permit,
        };
        match self.inner.take_idle() {
            Some(session) => {
                lease.session = Some(session);
                lease.reused = true;
            }
            None => lease.session = Some(self.inner.connect().await?),
        }
        // The server closed it while it was idle (it restarted, or dropped it):
        // a new connection now, before anything is sent.
        if lease.reused && lease.session().peer_closed() {
            tracing::info!("pooled session was closed by the server: connecting anew");
            lease.reconnect().await?;
        }
        Ok(lease)
    }
}

impl Inner {
    async fn connect(&self) -> Result<Session, ApiError> {
        Session::connect(&self.addr, self.options.clone())
            .await
            .map_err(|err| upstream_unavailable(&err))
    }

    fn take_idle(&self) -> Option<Session> {
        let (fresh, stale) = {
            let mut idle = self.idle.lock().expect("pool lock");
            let now = Instant::now();
            let (fresh, stale): (Vec<Idle>, Vec<Idle>) = idle
                .drain(..)
                .partition(|entry| now.duration_since(entry.since) < self.idle_timeout);
            *idle = fresh;
            (idle.pop(), stale)
        };
        stale
            .into_iter()
            .for_each(|entry| end_quietly(entry.session));
        fresh.map(|entry| entry.session)
    }

    /// Ends every idle session: after one was found dead, the others most likely are too.
    fn purge(&self) {
        let stale = std::mem::take(&mut *self.idle.lock().expect("pool lock"));
        stale
            .into_iter()
            .for_each(|entry| end_quietly(entry.session));
    }
}

impl Lease {
    /// The session.
    pub fn session(&mut self) -> &mut Session {
        self.session
            .as_mut()
            .expect("a lease holds a session until settled")
    }

    /// Whether the transfer that failed with `err` may be sent again on a new
    /// connection: the session came from the pool (it may have died while
    /// idle), it was dead, and the transfer was not written whole (so the
    /// server cannot have stored it).
    pub fn may_retry(&mut self, err: &ClientError) -> bool {
        self.reused && is_dead_connection(err) && !self.session().sent_whole()
    }

    /// Whether an upload command (never a transfer) that failed with `err` may
    /// be run again on a new connection: the session came from the pool and was
    /// dead. A command answered or not, running it again changes nothing
    /// that matters (an `open` whose answer was lost leaves an empty upload,
    /// which expires).
    pub fn may_rerun_command(&self, err: &ClientError) -> bool {
        self.reused && is_dead_connection(err)
    }

    /// Replaces a session found dead with a fresh connection, keeping the slot, and
    /// drops the other idle sessions, which are as old.
    pub async fn reconnect(&mut self) -> Result<(), ApiError> {
        self.session = None;
        self.pool.purge();
        self.session = Some(self.pool.connect().await?);
        self.reused = false;
        Ok(())
    }

    /// Returns the session to the pool unless `result` says it is broken.
    pub fn settle<T>(mut self, result: &Result<T, ClientError>) {
        let keep = match result {
            Ok(_) => true,
            Err(err) => !err.breaks_session(),
        };
        if let (true, Some(session)) = (keep, self.session.take()) {
            self.pool.idle.lock().expect("pool lock").push(Idle {
                session,
                since: Instant::now(),
            });
        }
    }
}

/// Sends END on a session that is no longer wanted, without waiting for it.
fn end_quietly(session: Session) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), session.end()).await;
        });
    }
}
