//! The native Ferry client: one [`Session`] is one TCP connection carrying any number
//! of transfers, exactly as the legacy Python client writes them.
//!
//! Against Ferry's server a session asks for extended replies (one byte the legacy
//! server ignores), so each [`Receipt`] names the stored item; against the legacy
//! server the receipt has no id and everything else behaves like the legacy client.

mod error;
mod pieces;
mod session;

pub use error::ClientError;
pub use pieces::Pieces;
pub use session::{Options, Receipt, Session};
