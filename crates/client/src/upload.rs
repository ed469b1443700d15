//! Resumable uploads on a session (extension 3 of
//! `docs/protocol-extensions.md`): each command is a line of nibble bytes and
//! a run byte, answered by one JSON line.
//!
//! The first command of a session doubles as the probe: a legacy server ignores
//! it and never answers, so after the probe timeout
//! ([`Session::set_upload_probe_timeout`]) the session gives
//! [`ClientError::NoUploads`], and the caller sends the item as one transfer on
//! a new session (a late answer on this one would be read as the reply to a
//! transfer).

use crate::{ClientError, Receipt, Session};
use ferry_protocol::upload::{UploadCommand, UploadReply, UploadState, parse_json_line};
use ferry_protocol::{ExtendedReply, Meta, encode};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

impl Session {
    /// Opens a resumable upload of `length` bytes (`None`: set later with
    /// [`Session::upload_set_length`]) whose appends carry `meta`.
    pub async fn upload_open(
        &mut self,
        meta: Meta,
        length: Option<u64>,
        name: Option<&str>,
    ) -> Result<UploadState, ClientError> {
        let command = UploadCommand::Open {
            meta,
            length,
            name: name.map(str::to_owned),
        };
        self.upload_command(&command).await
    }

    /// The upload's state: above all its committed (durable) offset.
    pub async fn upload_state(&mut self, id: &str) -> Result<UploadState, ClientError> {
        self.upload_command(&UploadCommand::State { id: id.to_owned() })
            .await
    }

    /// Sets the length of an upload opened without one.
    pub async fn upload_set_length(
        &mut self,
        id: &str,
        length: u64,
    ) -> Result<UploadState, ClientError> {
        let command = UploadCommand::Length {
            id: id.to_owned(),
            length,
        };
        self.upload_command(&command).await
    }

    /// Appends at most `len_limit` bytes of `reader` at `offset` (the upload's
    /// committed offset) as one transfer, 48,000 bytes a packet, calling
    /// `progress` with the bytes of this append sent so far. Returns the
    /// upload's state once the server has committed them: its offset is durable.
    pub async fn upload_append<R: AsyncRead + Unpin>(
        &mut self,
        id: &str,
        offset: u64,
        reader: R,
        len_limit: u64,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<UploadState, ClientError> {
        let command = UploadCommand::Append {
            id: id.to_owned(),
            offset,
        };
        let armed = self.upload_command(&command).await?;
        let meta = armed.meta().ok_or_else(|| {
            ClientError::BadReply(format!(
                "the upload is {} as {}, which no transfer carries",
                armed.data_type.as_str(),
                armed.serialization.as_str()
            ))
        })?;
        self.sent_whole = false;
        self.write_transfer(meta, reader.take(len_limit), progress)
            .await?;
        self.sent_whole = true;
        let line = self.read_line(self.options.reply_timeout).await?;
        state_of(&line)
    }

    /// Stores the complete upload as an item: the receipt names it as a
    /// transfer's would.
    pub async fn upload_finish(&mut self, id: &str) -> Result<Receipt, ClientError> {
        let line = self
            .run_upload_command(&UploadCommand::Finish { id: id.to_owned() })
            .await?;
        let reply: ExtendedReply = serde_json::from_slice(&line)
            .map_err(|err| ClientError::BadReply(format!("unreadable reply: {err}")))?;
        if !reply.ok {
            return Err(failure(serde_json::from_slice(&line).unwrap_or(
                UploadReply {
                    ok: false,
                    upload: None,
                    error: reply.error,
                    code: None,
                    offset: None,
                },
            )));
        }
        Ok(Receipt {
            id: reply.id,
            size: reply.size.unwrap_or_default(),
            sha256: reply.sha256,
            signed: reply.receipt,
        })
    }

    /// Cancels the upload; its state as it was.
    pub async fn upload_cancel(&mut self, id: &str) -> Result<UploadState, ClientError> {
        self.upload_command(&UploadCommand::Cancel { id: id.to_owned() })
            .await
    }

    /// Runs a command answered by an upload's state.
    async fn upload_command(
        &mut self,
        command: &UploadCommand,
    ) -> Result<UploadState, ClientError> {
        let line = self.run_upload_command(command).await?;
        state_of(&line)
    }

    /// Sends a command and returns its answer, one JSON line (newline cut off).
    async fn run_upload_command(
        &mut self,
        command: &UploadCommand,
    ) -> Result<Vec<u8>, ClientError> {
        if !self.options.extensions {
            return Err(ClientError::NoUploads(
                "the session has Ferry's extensions off".into(),
            ));
        }
        self.stream
            .write_all(&encode::upload_command(&command.to_line()))
            .await?;
        if self.uploads_answered {
            return self.read_line(self.options.reply_timeout).await;
        }
        let probe = self.upload_probe_timeout;
        let line = self.read_line(probe).await.map_err(|err| match err {
            ClientError::Timeout(_) => ClientError::NoUploads(format!(
                "no answer to an upload command within {probe:?} (a legacy server ignores them)"
            )),
            other => other,
        })?;
        self.uploads_answered = true;
        Ok(line)
    }

    /// Reads one JSON line, waiting at most `timeout`.
    async fn read_line(&mut self, timeout: Duration) -> Result<Vec<u8>, ClientError> {
        tokio::time::timeout(timeout, self.read_line_inner())
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }

    async fn read_line_inner(&mut self) -> Result<Vec<u8>, ClientError> {
        let mut chunk = [0u8; 4096];
        loop {
            let parsed = parse_json_line::<serde_json::Value>(&self.replies)
                .map_err(ClientError::BadReply)?;
            if let Some((_, used)) = parsed {
                let mut line: Vec<u8> = self.replies.drain(..used).collect();
                line.pop();
                return Ok(line);
            }
            let read = self.stream.read(&mut chunk).await?;
            if read == 0 {
                return Err(ClientError::Closed);
            }
            self.replies.extend_from_slice(&chunk[..read]);
        }
    }
}

/// The upload's state from a reply line, or the error it reports.
fn state_of(line: &[u8]) -> Result<UploadState, ClientError> {
    let reply: UploadReply = serde_json::from_slice(line)
        .map_err(|err| ClientError::BadReply(format!("unreadable upload reply: {err}")))?;
    match (reply.ok, reply.upload) {
        (true, Some(state)) => Ok(*state),
        (true, None) => Err(ClientError::BadReply(
            "an upload reply without the upload".into(),
        )),
        (false, upload) => Err(failure(UploadReply { upload, ..reply })),
    }
}

/// The error an unsuccessful reply reports: with a code, a typed one; without
/// (a protocol error's answer), a plain refusal.
fn failure(reply: UploadReply) -> ClientError {
    let message = reply
        .error
        .unwrap_or_else(|| "the server gave no reason".into());
    match reply.code {
        Some(code) => ClientError::Upload {
            code,
            message,
            offset: reply.offset,
        },
        None => ClientError::Refused(message),
    }
}
