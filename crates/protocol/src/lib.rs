//! The Ferry wire protocol, with no I/O and no cryptography.
//!
//! A session is a byte stream of packets (see `docs/protocol.md` and
//! `docs/protocol-extensions.md`). This crate turns bytes into
//! [`Frame`]s with [`Decoder`], checks that packets form well-ordered transfers with
//! [`TransferTracker`], and writes packets with the functions in [`encode`].
//! Needing more bytes is a normal state (`Ok(None)`), never an error, and the decoder
//! never holds more than one packet. Resumable uploads (extension 3) are
//! commands and replies of their own, in [`upload`].

mod decode;
pub mod encode;
mod meta;
mod reply;
mod tracker;
pub mod upload;

pub use decode::{Decoder, Frame, Packet};
pub use meta::{DataType, Meta, Serialization};
pub use reply::{ExtendedReply, Reply, ReplyParse, parse_reply};
pub use tracker::{TransferEvent, TransferTracker, UploadCommands};

/// The TCP port the legacy server listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 6868;
/// Plaintext bytes per packet written by the legacy client (and by Ferry's client).
pub const PIECE_SIZE: usize = 48_000;
/// The largest payload a packet can carry: its length is a 2-byte big-endian integer.
pub const MAX_PAYLOAD: usize = u16::MAX as usize;
/// The single byte that ends a session.
pub const END: u8 = 0x10;
/// Flag bit of the operation byte: first packet of a transfer.
pub const FLAG_INITIAL: u8 = 0x08;
/// Flag bit of the operation byte: last packet of a transfer.
pub const FLAG_FINAL: u8 = 0x04;
/// Ferry extension (operation 2): "reply to my transfers with an [`ExtendedReply`]".
/// The legacy server ignores this byte.
pub const EXT_HELLO: u8 = 0x20;
/// Ferry extension (operation 3): one nibble (low 4 bits) of the next transfer's
/// file name, high nibble first. The legacy server ignores each such byte.
pub const EXT_NAME_NIBBLE: u8 = 0x30;
/// The longest file name the name extension carries, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// Ferry extension (operation 4): one nibble (low 4 bits) of a resumable-upload
/// command line, high nibble first. The legacy server ignores each such byte.
pub const EXT_UPLOAD_NIBBLE: u8 = 0x40;
/// Ferry extension (operation 5): run the upload command collected so far. The
/// legacy server ignores this byte (and never answers it).
pub const EXT_UPLOAD_RUN: u8 = 0x50;
/// The longest upload command line, in bytes.
pub const MAX_UPLOAD_COMMAND: usize = 512;

/// A violation of the wire format. Every variant means the framing can no longer be
/// trusted: the peer is told and the connection closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("malformed operation byte 0x{0:02x}")]
    BadOperation(u8),
    #[error("unknown meta value 0x{0:02x}")]
    BadMeta(u8),
    #[error("INITIAL packet while a transfer is open")]
    InitialInsideTransfer,
    #[error("packet with no transfer open")]
    NoTransferOpen,
    #[error("END while a transfer is open")]
    EndInsideTransfer,
    #[error("file name longer than {MAX_NAME_LEN} bytes")]
    NameTooLong,
    #[error("upload command longer than {MAX_UPLOAD_COMMAND} bytes")]
    CommandTooLong,
    #[error("upload command while a transfer is open")]
    CommandInsideTransfer,
}
