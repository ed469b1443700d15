//! Ferry's cryptography: Fernet on the wire, sealed records at rest, and the
//! key types and key files both use.
//!
//! - [`FernetKey`]: the legacy protocol's encryption, token-compatible with
//!   Python's `cryptography.fernet` both ways. No time-to-live, and tokens
//!   stamped in the future are accepted, as by the legacy server.
//! - [`StorageKey`], [`Keyring`], [`Sealer`], [`RecordReader`]: AES-256-GCM in
//!   the STREAM construction, in chunks of [`CHUNK_SIZE`] that can be read in
//!   any order, with an authenticated metadata block. The byte layout is in
//!   the [`record`] module docs and in `FORMAT.md`.
//! - [`write_key_file`]: creates a secret file with mode 0600, durably;
//!   [`read_key_file`] reads one back.
//!
//! Key types print no key material in `Debug`, cannot be serialized, and are
//! wiped from memory when dropped.

mod error;
mod fernet;
mod keyfile;
pub mod record;
mod storage_key;

pub use error::CryptoError;
pub use fernet::FernetKey;
pub use keyfile::{read_key_file, write_key_file};
pub use record::{CHUNK_SIZE, MAX_METADATA_LEN, RangeChunks, RecordReader, Sealer};
pub use storage_key::{KeyLookup, Keyring, StorageKey, WRAPPED_KEY_LEN};
