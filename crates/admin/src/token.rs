//! Where the admin bearer token lives when none is configured:
//! [`load_or_generate_token`] keeps one in `<data_dir>/admin.token`, created once
//! with mode 0600 (through `ferry_crypto::write_key_file`, which creates the file
//! exclusively and fsyncs it). The token itself is a [`BearerToken`].

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use ferry_crypto::CryptoError;
use ferry_http::BearerToken;
use zeroize::Zeroizing;

/// The file, in the data directory, that holds a generated token.
pub const TOKEN_FILE_NAME: &str = "admin.token";

/// Why a token could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token is empty, too long, or has characters an HTTP header cannot carry.
    #[error("invalid admin token: {0}")]
    Invalid(#[from] ferry_http::TokenError),
    /// The token file is not UTF-8 text.
    #[error("the admin token file {} is not UTF-8 text", path.display())]
    NotText {
        /// The token file.
        path: PathBuf,
    },
    /// The token file could not be read.
    #[error("reading admin token file {}: {source}", path.display())]
    Read {
        /// The token file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The token file could not be created.
    #[error(transparent)]
    Write(#[from] CryptoError),
}

/// The token in `<data_dir>/admin.token`, generating and saving one (mode 0600) if
/// there is none yet. Returns the token, the file, and whether it was generated
/// now. The caller should log where the file is, never the token.
pub fn load_or_generate_token(data_dir: &Path) -> Result<(BearerToken, PathBuf, bool), TokenError> {
    let path = data_dir.join(TOKEN_FILE_NAME);
    if let Some(token) = load(&path)? {
        return Ok((token, path, false));
    }
    let token = BearerToken::generate();
    let mut contents = Zeroizing::new(token.expose().as_bytes().to_vec());
    contents.push(b'\n');
    match ferry_crypto::write_key_file(&path, &contents) {
        Ok(()) => Ok((token, path, true)),
        // Another process created it first: use theirs.
        Err(CryptoError::KeyFile { source, .. }) if source.kind() == ErrorKind::AlreadyExists => {
            let token = load(&path)?.ok_or_else(|| TokenError::Read {
                path: path.clone(),
                source: ErrorKind::NotFound.into(),
            })?;
            Ok((token, path, false))
        }
        Err(err) => Err(err.into()),
    }
}

/// The token in `path`, `None` if there is no such file.
fn load(path: &Path) -> Result<Option<BearerToken>, TokenError> {
    let text = match std::fs::read(path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(TokenError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    warn_if_readable_by_others(path);
    let text = std::str::from_utf8(&text).map_err(|_| TokenError::NotText {
        path: path.to_owned(),
    })?;
    Ok(Some(BearerToken::parse(text)?))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(file = %path.display(), "the admin token file is readable by other users; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_saved_once_with_mode_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let (first, path, generated) = load_or_generate_token(dir.path()).unwrap();
        assert!(generated);
        assert_eq!(path, dir.path().join("admin.token"));
        assert_eq!(first.expose().len(), 43);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let (second, _, generated) = load_or_generate_token(dir.path()).unwrap();
        assert!(!generated);
        assert!(second.matches(first.expose()));
    }

    #[test]
    fn a_token_file_that_is_not_a_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TOKEN_FILE_NAME), "two words\n").unwrap();
        assert!(matches!(
            load_or_generate_token(dir.path()),
            Err(TokenError::Invalid(_))
        ));
    }
}
