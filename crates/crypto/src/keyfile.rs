//! Key files and key text: files created once with mode 0600 and made durable,
//! holding a 32-byte key as URL-safe base64 (44 characters) and a newline.
//!
//! [`write_key_file`] is public so that other crates can store their own secrets
//! (e.g. API tokens) with the same guarantees: the file is created exclusively (an
//! existing file is never overwritten), is readable by its owner only from the
//! first byte on, and both its contents and its directory entry are fsynced
//! before the call returns.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::CryptoError;

/// A 32-byte key, wiped from memory when dropped.
pub(crate) type KeyBytes = Zeroizing<[u8; 32]>;

/// URL-safe base64, written with padding, read with or without it.
const KEY_TEXT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Longest key file this crate reads: keys are a few dozen bytes of text, so a
/// bigger file is the wrong file and is not loaded into memory.
const MAX_KEY_FILE_LEN: u64 = 4096;

/// Creates `path` with mode 0600 and writes `contents` to it durably.
///
/// Fails if the file already exists (`create_new`). The file and its parent
/// directory are fsynced, so once this returns the key survives a crash.
///
/// # Errors
/// [`CryptoError::KeyFile`] with the I/O error, e.g. `AlreadyExists`.
pub fn write_key_file(path: &Path, contents: &[u8]) -> Result<(), CryptoError> {
    write_durably(path, contents).map_err(|source| key_file_error(path, source))
}

fn write_durably(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    sync_parent_dir(path)
}

#[cfg(unix)]
fn sync_parent_dir(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

#[cfg(not(unix))]
fn sync_parent_dir(_path: &Path) -> io::Result<()> {
    Ok(())
}

/// 32 fresh random bytes.
pub(crate) fn random_key() -> KeyBytes {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(&mut *bytes);
    bytes
}

/// Parses key text: 32 bytes in URL-safe base64, padded or not, surrounding
/// whitespace ignored.
pub(crate) fn parse_key_text(text: &str) -> Result<KeyBytes, CryptoError> {
    let decoded = Zeroizing::new(
        KEY_TEXT
            .decode(text.trim())
            .map_err(|_| CryptoError::InvalidKey("a key must be URL-safe base64"))?,
    );
    let bytes: [u8; 32] = decoded
        .as_slice()
        .try_into()
        .map_err(|_| CryptoError::InvalidKey("a key must be 32 bytes"))?;
    Ok(Zeroizing::new(bytes))
}

/// Key text: URL-safe base64 with padding, 44 characters, no newline.
pub(crate) fn key_text(bytes: &[u8; 32]) -> Zeroizing<String> {
    Zeroizing::new(KEY_TEXT.encode(bytes))
}

/// Reads a key file: key text, optionally followed by a newline.
pub(crate) fn load_key(path: &Path) -> Result<KeyBytes, CryptoError> {
    parse_key_text(&read_key_file(path)?)
}

/// Reads a key file's text (at most 4 KiB of UTF-8), wiped from memory when
/// dropped. Public so that other crates read their own key files (written with
/// [`write_key_file`]) with the same limits.
///
/// # Errors
/// [`CryptoError::KeyFile`] with the I/O error: `NotFound`, or `InvalidData` for
/// a file that is too large or not text.
pub fn read_key_file(path: &Path) -> Result<Zeroizing<String>, CryptoError> {
    let read = || -> io::Result<Zeroizing<String>> {
        let file = File::open(path)?;
        let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_LEN as usize + 1));
        file.take(MAX_KEY_FILE_LEN + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_KEY_FILE_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "too large to be a key file",
            ));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "key file is not text"))?;
        Ok(Zeroizing::new(text.to_owned()))
    };
    read().map_err(|source| key_file_error(path, source))
}

/// Loads the key in `path`, or creates the file with a fresh random key if it
/// does not exist. Returns the key and whether it was created.
pub(crate) fn load_or_create_key(path: &Path) -> Result<(KeyBytes, bool), CryptoError> {
    match load_key(path) {
        Ok(key) => return Ok((key, false)),
        Err(CryptoError::KeyFile { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let key = random_key();
    let mut contents = key_text(&key);
    contents.push('\n');
    match write_key_file(path, contents.as_bytes()) {
        Ok(()) => Ok((key, true)),
        // Another process created it first: use theirs.
        Err(CryptoError::KeyFile { source, .. })
            if source.kind() == io::ErrorKind::AlreadyExists =>
        {
            Ok((load_key(path)?, false))
        }
        Err(e) => Err(e),
    }
}

fn key_file_error(path: &Path, source: io::Error) -> CryptoError {
    CryptoError::KeyFile {
        path: path.to_owned(),
        source,
    }
}

/// Asserts that only the owner may read or write `path`.
#[cfg(test)]
pub(crate) fn assert_owner_only(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode of {}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_created_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        write_key_file(&path, b"secret\n").unwrap();
        assert_owner_only(&path);
        assert_eq!(std::fs::read(&path).unwrap(), b"secret\n");
    }

    #[test]
    fn key_text_round_trips_and_tolerates_whitespace_and_missing_padding() {
        let key = random_key();
        let text = key_text(&key);
        assert_eq!(text.len(), 44);
        assert!(text.ends_with('='));
        for variant in [
            format!("  {}\n", *text),
            text.trim_end_matches('=').to_owned(),
        ] {
            assert_eq!(*parse_key_text(&variant).unwrap(), *key);
        }
        for bad in ["", "c2hvcnQ=", &"A".repeat(44), &text.replace('=', "+")] {
            assert!(matches!(
                parse_key_text(bad),
                Err(CryptoError::InvalidKey(_))
            ));
        }
    }

    #[test]
    fn write_key_file_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        write_key_file(&path, b"first").unwrap();
        let err = write_key_file(&path, b"second").unwrap_err();
        assert!(
            matches!(&err, CryptoError::KeyFile { source, .. } if source.kind() == io::ErrorKind::AlreadyExists)
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
    }

    #[test]
    fn oversized_files_are_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'A'; 10_000]).unwrap();
        assert!(read_key_file(&path).is_err());
    }
}
