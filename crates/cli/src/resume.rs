//! `ferry send file` as resumable uploads: each file is opened as an upload and
//! sent in appends whose committed offsets are durable on the server. A lost
//! connection (an I/O error, a closed connection, a timeout) is reconnected with
//! backoff, the server is asked for the upload's offset, and the file continues
//! from there; `--resume ID` continues an upload an earlier run left unfinished.
//! A server that does not answer the first upload command (a legacy server)
//! gets the file as one ordinary transfer instead.

use anyhow::Context;
use ferry_client::{ClientError, Options, Receipt, Session, UploadErrorCode, UploadState};
use ferry_protocol::{DataType, Meta};
use indicatif::ProgressBar;
use std::io::SeekFrom;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// The first wait before a new attempt; each failure doubles it up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// How the files are sent.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Plaintext bytes per append.
    pub(crate) chunk_size: u64,
    /// Give up after failing for this long with no append committed.
    pub(crate) retry_for: Duration,
    /// Continue this upload (one file).
    pub(crate) resume: Option<String>,
}

/// One session to the server, opened again when it is lost.
#[derive(Debug)]
pub(crate) struct Link {
    addr: String,
    options: Options,
    probe_timeout: Duration,
    session: Option<Session>,
}

impl Link {
    /// A link to `addr` whose sessions wait `probe_timeout` for the answer to
    /// their first upload command.
    pub(crate) fn new(addr: &str, options: Options, probe_timeout: Duration) -> Link {
        Link {
            addr: addr.to_owned(),
            options,
            probe_timeout,
            session: None,
        }
    }

    /// The server has answered an upload command: it takes them, so a later
    /// session's first command waits as long as any reply (a slow answer is
    /// no longer a sign of a legacy server).
    fn takes_uploads(&mut self) {
        self.probe_timeout = self.options.reply_timeout;
        if let Some(session) = &mut self.session {
            session.set_upload_probe_timeout(self.probe_timeout);
        }
    }

    /// The session, connected first if there is none.
    pub(crate) async fn session(&mut self) -> Result<&mut Session, ClientError> {
        if self.session.is_none() {
            let mut session = Session::connect(&self.addr, self.options.clone()).await?;
            session.set_upload_probe_timeout(self.probe_timeout);
            self.session = Some(session);
        }
        Ok(self.session.as_mut().expect("connected just above"))
    }

    /// Forgets a session that can no longer be used (its connection closes).
    pub(crate) fn lost(&mut self) {
        self.session = None;
    }

    /// Ends the session, if one is open.
    pub(crate) async fn end(self) -> Result<(), ClientError> {
        match self.session {
            Some(session) => session.end().await,
            None => Ok(()),
        }
    }
}

/// Whether another attempt, on a new connection if this one broke, may succeed.
fn transient(err: &ClientError) -> bool {
    match err {
        ClientError::Io(_)
        | ClientError::Timeout(_)
        | ClientError::Closed
        | ClientError::Connect { .. } => true,
        ClientError::Upload { code, .. } => {
            matches!(code, UploadErrorCode::Busy | UploadErrorCode::Unavailable)
        }
        _ => false,
    }
}

/// Backoff between attempts, and when to give up.
#[derive(Debug)]
struct Retry {
    delay: Duration,
    failing_since: Option<Instant>,
    give_up: Duration,
}

impl Retry {
    fn new(give_up: Duration) -> Retry {
        Retry {
            delay: FIRST_DELAY,
            failing_since: None,
            give_up,
        }
    }

    /// Progress was made: the next failure starts the backoff afresh.
    fn reset(&mut self) {
        self.delay = FIRST_DELAY;
        self.failing_since = None;
    }

    /// After a transient failure: forgets a broken session, says so, and
    /// waits; the error itself once failures have lasted `give_up`.
    async fn wait(
        &mut self,
        link: &mut Link,
        err: ClientError,
        bar: &ProgressBar,
        path: &Path,
    ) -> anyhow::Result<()> {
        if err.breaks_session() {
            link.lost();
        }
        let Some(delay) = self.backoff(Instant::now()) else {
            return Err(anyhow::Error::new(err)
                .context(format!("gave up after {:?} without progress", self.give_up)));
        };
        bar.suspend(|| eprintln!("{}: {err}; trying again in {delay:?}", path.display()));
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// The wait before the next attempt after a failure at `now`; `None` once
    /// failures would have lasted longer than `give_up`.
    fn backoff(&mut self, now: Instant) -> Option<Duration> {
        let since = *self.failing_since.get_or_insert(now);
        if now.duration_since(since) + self.delay > self.give_up {
            return None;
        }
        let delay = self.delay;
        self.delay = (delay * 2).min(MAX_DELAY);
        Some(delay)
    }

    /// Runs `op` on the link's session until it succeeds or fails for good,
    /// reconnecting and backing off after transient failures.
    async fn run<T>(
        &mut self,
        link: &mut Link,
        bar: &ProgressBar,
        path: &Path,
        mut op: impl AsyncFnMut(&mut Session) -> Result<T, ClientError>,
    ) -> anyhow::Result<T> {
        loop {
            let result = match link.session().await {
                Ok(session) => op(session).await,
                Err(err) => Err(err),
            };
            match result {
                Ok(value) => return Ok(value),
                Err(err) if transient(&err) => self.wait(link, err, bar, path).await?,
                Err(err) => return Err(err.into()),
            }
        }
    }
}

/// Sends `path` as a resumable upload; `None` when the server takes none (it
/// did not answer the first upload command: send the file as one transfer, on
/// a new session).
pub(crate) async fn send_file(
    link: &mut Link,
    path: &Path,
    encrypt: bool,
    plan: &Plan,
) -> anyhow::Result<Option<Receipt>> {
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let len = file.metadata().await?.len();
    if encrypt && link.options.fernet.is_none() {
        return Err(ClientError::NoKey.into());
    }
    let mut retry = Retry::new(plan.retry_for);
    // No bar until the upload is open: the first open may find a legacy server.
    let quiet = ProgressBar::hidden();
    let upload = match &plan.resume {
        Some(id) => resumed(link, &mut retry, &quiet, path, id, len).await?,
        None => {
            let name = crate::send::file_name(path);
            let meta = Meta::text(encrypt);
            let opened = retry
                .run(link, &quiet, path, async |session: &mut Session| {
                    session.upload_open(meta, Some(len), name.as_deref()).await
                })
                .await;
            match opened {
                Ok(upload) => upload,
                Err(err) => match err.downcast::<ClientError>() {
                    Ok(ClientError::NoUploads(why)) => {
                        link.lost();
                        eprintln!("{}: {why}; sending it as one transfer", path.display());
                        return Ok(None);
                    }
                    Ok(err) => return Err(err.into()),
                    Err(err) => return Err(err),
                },
            }
        }
    };
    link.takes_uploads();
    let id = upload.id.clone();
    if upload.encrypted_in_transit && link.options.fernet.is_none() {
        return Err(anyhow::Error::new(ClientError::NoKey)
            .context(format!("upload {id} is sent encrypted")));
    }
    eprintln!(
        "upload {id} for {}: resume with --resume {id}",
        path.display()
    );
    if plan.resume.is_some() {
        eprintln!(
            "{}: continuing upload {id} at byte {} of {len}",
            path.display(),
            upload.offset
        );
    }
    let bar = crate::send::progress_bar(path, len)?;
    bar.set_position(upload.offset);
    let mut offset = upload.offset;
    while offset < len {
        file.seek(SeekFrom::Start(offset)).await?;
        let limit = plan.chunk_size.min(len - offset);
        let reader = tokio::io::BufReader::with_capacity(256 * 1024, (&mut file).take(limit));
        let start = offset;
        let appended = match link.session().await {
            Ok(session) => {
                session
                    .upload_append(&id, start, reader, limit, &mut |sent| {
                        bar.set_position(start + sent)
                    })
                    .await
            }
            Err(err) => Err(err),
        };
        match appended {
            Ok(state) => {
                anyhow::ensure!(
                    state.offset > start,
                    "{} ended at {start} bytes, before its {len}: it changed while it was sent",
                    path.display()
                );
                offset = state.offset;
                retry.reset();
            }
            Err(ClientError::Upload {
                code: UploadErrorCode::Offset,
                offset: Some(at),
                ..
            }) => offset = at,
            Err(err) if transient(&err) => {
                retry.wait(link, err, &bar, path).await?;
                let state = retry
                    .run(link, &bar, path, async |session: &mut Session| {
                        session.upload_state(&id).await
                    })
                    .await?;
                offset = state.offset;
            }
            Err(err) => return Err(err.into()),
        }
        bar.set_position(offset);
    }
    let finished = retry
        .run(link, &bar, path, async |session: &mut Session| {
            session.upload_finish(&id).await
        })
        .await;
    bar.finish_and_clear();
    match finished {
        Ok(receipt) => Ok(Some(receipt)),
        Err(err) => Err(match err.downcast_ref::<ClientError>() {
            Some(ClientError::Upload {
                code: UploadErrorCode::NotFound,
                ..
            }) => err.context(format!(
                "upload {id} is gone: if the connection was lost as it was finished, it \
                 is stored; look for {} in the server's items",
                path.display()
            )),
            _ => err,
        }),
    }
}

/// The state of the upload `id` that an earlier run left, checked against the
/// file it continues.
async fn resumed(
    link: &mut Link,
    retry: &mut Retry,
    bar: &ProgressBar,
    path: &Path,
    id: &str,
    len: u64,
) -> anyhow::Result<UploadState> {
    let state = retry
        .run(link, bar, path, async |session: &mut Session| {
            session.upload_state(id).await
        })
        .await
        .with_context(|| format!("cannot resume upload {id}"))?;
    anyhow::ensure!(
        state.data_type == DataType::Text,
        "upload {id} is a {}, not a file",
        state.data_type.as_str()
    );
    match state.length {
        Some(length) if length != len => anyhow::bail!(
            "upload {id} is {length} bytes long, but {} has {len} bytes: is it the same file?",
            path.display()
        ),
        Some(_) => Ok(state),
        None => retry
            .run(link, bar, path, async |session: &mut Session| {
                session.upload_set_length(id, len).await
            })
            .await
            .with_context(|| format!("cannot set the length of upload {id}")),
    }
}

/// Parses a size in bytes: a number, optionally followed by K, M or G (powers
/// of 1024, an optional `iB` or `B` after them).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    let factor: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return Err(format!("unknown unit {unit:?}: use K, M or G")),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (such as 8M or 1048576)"))?;
    match number.checked_mul(factor) {
        Some(0) => Err("the size must be more than 0".into()),
        Some(size) => Ok(size),
        None => Err(format!("{text:?} is too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("8M"), Ok(8 << 20));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("48000"), Ok(48_000));
        assert_eq!(parse_size("2k"), Ok(2048));
        assert!(parse_size("0").is_err());
        assert!(parse_size("8X").unwrap_err().contains("unknown unit"));
        assert!(parse_size("M").is_err());
    }

    #[test]
    fn lost_connections_and_busy_uploads_are_tried_again_refusals_are_not() {
        assert!(transient(&ClientError::Closed));
        assert!(transient(&ClientError::Timeout(Duration::from_secs(1))));
        let code = |code| ClientError::Upload {
            code,
            message: String::new(),
            offset: None,
        };
        assert!(transient(&code(UploadErrorCode::Busy)));
        assert!(!transient(&code(UploadErrorCode::TooLarge)));
        assert!(!transient(&ClientError::NoUploads(String::new())));
        assert!(!transient(&ClientError::Refused(String::new())));
    }

    #[test]
    fn backoff_doubles_to_five_seconds_gives_up_after_the_total_and_starts_over() {
        let mut retry = Retry::new(Duration::from_secs(12));
        let start = Instant::now();
        let mut now = start;
        let mut delays = Vec::new();
        while let Some(delay) = retry.backoff(now) {
            delays.push(delay.as_millis());
            now += delay;
        }
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000]);
        retry.reset();
        assert_eq!(retry.backoff(now), Some(FIRST_DELAY));
    }

    #[tokio::test]
    async fn giving_up_says_so_and_keeps_the_cause() {
        let mut link = Link::new("127.0.0.1:1", Options::default(), Duration::from_secs(1));
        let mut retry = Retry::new(Duration::from_millis(50));
        let err = retry
            .wait(
                &mut link,
                ClientError::Closed,
                &ProgressBar::hidden(),
                Path::new("f"),
            )
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("gave up after 50ms"), "{err:#}");
        assert!(matches!(err.downcast_ref(), Some(ClientError::Closed)));
    }
}
