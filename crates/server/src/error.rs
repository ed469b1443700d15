//! The one error type of this crate: why a transfer was not acknowledged.
//!
//! A client hears the reason of a refusal or a rejection (it is about its own
//! transfer: a format, a limit, a policy). A failure of the server itself is
//! answered with a generic reason that names no path, file or OS error; its
//! detail goes to the log only.

use ferry_codec::CodecError;
use ferry_store::{ItemId, StoreError};

/// A boxed error: the detail of a server failure, for the log.
pub type Detail = Box<dyn std::error::Error + Send + Sync>;

/// Why a transfer did not end with `OK`.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// This server's policy refuses it: encryption, pickle, size or memory limits.
    #[error("{0}")]
    Refused(String),
    /// The input is wrong: a token that fails to verify, a dictionary that does
    /// not decode, broken framing.
    #[error("{0}")]
    Rejected(String),
    /// The server failed to store it (disk full, I/O error, a failed task).
    #[error("the server failed to store the item: {0}")]
    Failed(Detail),
    /// The item is stored and durable, but its legacy output (`--print`,
    /// `--export-dir`) could not be written.
    #[error("item {id} is stored, but its legacy output failed: {detail}")]
    OutputFailed {
        /// The stored item.
        id: ItemId,
        /// What failed.
        detail: Detail,
    },
}

/// The reply to a server failure: it says what happened, never where or how.
pub const FAILED_REPLY: &str = "the server could not store the item; try again later";

/// The reply when the item is stored but its output could not be written.
pub const OUTPUT_FAILED_REPLY: &str =
    "the item was stored, but the server could not write its output";

impl TransferError {
    /// The reason the client hears after `ERROR: `.
    pub fn reply(&self) -> &str {
        match self {
            TransferError::Refused(reason) | TransferError::Rejected(reason) => reason,
            TransferError::Failed(_) => FAILED_REPLY,
            TransferError::OutputFailed { .. } => OUTPUT_FAILED_REPLY,
        }
    }

    /// The `outcome` label of the transfer metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            TransferError::Refused(_) => "refused",
            TransferError::Rejected(_) => "rejected",
            TransferError::Failed(_) | TransferError::OutputFailed { .. } => "failed",
        }
    }

    /// A server failure with this detail.
    pub fn failed(detail: impl Into<Detail>) -> TransferError {
        TransferError::Failed(detail.into())
    }
}

impl From<StoreError> for TransferError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::TooLarge { .. } => TransferError::Refused(err.to_string()),
            other => TransferError::failed(other),
        }
    }
}

impl From<CodecError> for TransferError {
    fn from(err: CodecError) -> Self {
        match err {
            CodecError::TooLarge { .. }
            | CodecError::ExpandsTooFar { .. }
            | CodecError::TooDeep(_) => TransferError::Refused(err.to_string()),
            other => TransferError::Rejected(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn a_store_failure_replies_without_its_path_or_os_error() {
        let err = TransferError::from(StoreError::Io {
            context: "writing",
            path: PathBuf::from("/srv/ferry-data/store/tmp/01J.part"),
            source: std::io::Error::from_raw_os_error(28),
        });
        assert_eq!(err.reply(), FAILED_REPLY);
        assert_eq!(err.outcome(), "failed");
        assert!(
            err.to_string().contains("/srv/ferry-data"),
            "the log keeps the detail"
        );
    }

    #[test]
    fn limits_are_refusals_and_bad_input_is_rejected() {
        let too_large = TransferError::from(StoreError::TooLarge { limit: 10 });
        assert_eq!(too_large.outcome(), "refused");
        assert_eq!(
            too_large.reply(),
            "item is larger than the limit of 10 bytes"
        );
        let bad_json = TransferError::from(CodecError::Json("expected value".into()));
        assert_eq!(bad_json.outcome(), "rejected");
        assert_eq!(bad_json.reply(), "json refused: expected value");
        assert_eq!(
            TransferError::from(CodecError::TooDeep(3)).outcome(),
            "refused"
        );
    }
}
