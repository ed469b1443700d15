//! The native Ferry client: one [`Session`] is one TCP connection carrying any number
//! of transfers, exactly as the legacy Python client writes them.
//!
//! Against Ferry's server a session asks for extended replies (one byte the legacy
//! server ignores), so each [`Receipt`] names the stored item; against the legacy
//! server the receipt has no id and everything else behaves like the legacy client.
//!
//! Against Ferry's server a session can also send a file as a resumable upload
//! ([`Session::upload_open`] and the methods after it, extension 3): in appends
//! whose committed offsets are durable, continued from any later session.

mod error;
mod packets;
mod pieces;
mod session;
mod upload;

pub use error::ClientError;
pub use ferry_protocol::upload::{UploadErrorCode, UploadState};
pub use pieces::Pieces;
pub use session::{DEFAULT_UPLOAD_PROBE_TIMEOUT, Options, Receipt, Session};
