//! What can go wrong on the client side of a session.

use ferry_protocol::upload::UploadErrorCode;

/// A client failure. [`ClientError::Refused`] is the server's own `ERROR: …` answer;
/// the session stays usable after it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the server refused the transfer: {0}")]
    Refused(String),
    #[error("cannot reach the server at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connection to the server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("the server closed the connection before answering")]
    Closed,
    #[error("unreadable reply from the server: {0}")]
    BadReply(String),
    #[error("encryption was requested but no Fernet key is configured")]
    NoKey,
    #[error(transparent)]
    Codec(#[from] ferry_codec::CodecError),
    /// The server answered an upload command with an error (its `code`, and
    /// with [`UploadErrorCode::Offset`] the upload's committed offset).
    #[error("the server refused the upload command ({code}): {message}")]
    Upload {
        code: UploadErrorCode,
        message: String,
        offset: Option<u64>,
    },
    /// The server does not take resumable uploads: it did not answer the
    /// session's first upload command (a legacy server ignores them), or the
    /// session has extensions off. Send the item as one transfer, on a new session.
    #[error("the server does not take resumable uploads: {0}")]
    NoUploads(String),
}

impl ClientError {
    /// Whether the session can no longer be used after this error.
    pub fn breaks_session(&self) -> bool {
        !matches!(
            self,
            ClientError::Refused(_)
                | ClientError::NoKey
                | ClientError::Codec(_)
                | ClientError::Upload { .. }
        )
    }
}
