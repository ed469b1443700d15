//! The admin bearer token: a secret that never appears in `Debug`, logs or
//! serialized output, and is wiped from memory when dropped.
//!
//! [`AdminToken::load_or_generate`] keeps one in `<data_dir>/admin.token`,
//! created once with mode 0600 (through `ferry_crypto::write_key_file`, which
//! creates the file exclusively and fsyncs it).

use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferry_crypto::CryptoError;
use rand::RngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The file, in the data directory, that holds a generated token.
pub const TOKEN_FILE_NAME: &str = "admin.token";

/// Longest token accepted, in bytes: a bigger token file is the wrong file.
const MAX_TOKEN_LEN: usize = 1024;

/// Why a token could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token is empty, too long, or has characters an HTTP header cannot carry.
    #[error("invalid admin token: {0}")]
    Invalid(&'static str),
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

/// The bearer token every `/api/` request must carry.
#[derive(Clone)]
pub struct AdminToken(Zeroizing<String>);

impl AdminToken {
    /// A token from configured text: non-empty, at most 1024 visible ASCII
    /// characters (what a `Bearer` header can carry).
    pub fn new(text: String) -> Result<AdminToken, TokenError> {
        let text = Zeroizing::new(text);
        if text.is_empty() {
            return Err(TokenError::Invalid("it is empty"));
        }
        if text.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid("it is longer than 1024 bytes"));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::Invalid(
                "only visible ASCII characters are allowed",
            ));
        }
        Ok(AdminToken(text))
    }

    /// A fresh token: 32 random bytes as URL-safe base64 (43 characters).
    pub fn generate() -> AdminToken {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(&mut *bytes);
        AdminToken(Zeroizing::new(URL_SAFE_NO_PAD.encode(*bytes)))
    }

    /// The token in `<data_dir>/admin.token`, generating and saving one (mode
    /// 0600) if there is none yet. Returns the token, the file, and whether it was
    /// generated now. The caller should log where the file is, never the token.
    pub fn load_or_generate(data_dir: &Path) -> Result<(AdminToken, PathBuf, bool), TokenError> {
        let path = data_dir.join(TOKEN_FILE_NAME);
        if let Some(token) = AdminToken::load(&path)? {
            return Ok((token, path, false));
        }
        let token = AdminToken::generate();
        let mut contents = Zeroizing::new(token.expose().as_bytes().to_vec());
        contents.push(b'\n');
        match ferry_crypto::write_key_file(&path, &contents) {
            Ok(()) => Ok((token, path, true)),
            // Another process created it first: use theirs.
            Err(CryptoError::KeyFile { source, .. })
                if source.kind() == ErrorKind::AlreadyExists =>
            {
                let token = AdminToken::load(&path)?
                    .ok_or(TokenError::Invalid("the token file vanished"))?;
                Ok((token, path, false))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// The token in `path`, `None` if there is no such file.
    fn load(path: &Path) -> Result<Option<AdminToken>, TokenError> {
        let read_error = |source| TokenError::Read {
            path: path.to_owned(),
            source,
        };
        let text = match std::fs::read(path) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(read_error(err)),
        };
        warn_if_readable_by_others(path);
        let text = std::str::from_utf8(&text)
            .map_err(|_| TokenError::Invalid("the token file is not UTF-8"))?;
        AdminToken::new(text.trim().to_owned()).map(Some)
    }

    /// The token's text, to hand to a client that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this token, in time that does not depend on where
    /// they differ.
    pub fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(***)")
    }
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
    fn debug_never_shows_the_token() {
        let token = AdminToken::new("s3cret".into()).unwrap();
        assert_eq!(format!("{token:?}"), "AdminToken(***)");
    }

    #[test]
    fn empty_or_unprintable_tokens_are_refused() {
        assert!(AdminToken::new(String::new()).is_err());
        assert!(AdminToken::new("a b".into()).is_err());
        assert!(AdminToken::new("a\nb".into()).is_err());
        assert!(AdminToken::new("x".repeat(1025)).is_err());
    }

    #[test]
    fn only_the_same_token_matches() {
        let token = AdminToken::new("abc".into()).unwrap();
        assert!(token.matches("abc"));
        assert!(!token.matches("abd"));
        assert!(!token.matches("ab"));
        assert!(!token.matches(""));
    }

    #[test]
    fn a_generated_token_is_saved_once_with_mode_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let (first, path, generated) = AdminToken::load_or_generate(dir.path()).unwrap();
        assert!(generated);
        assert_eq!(path, dir.path().join("admin.token"));
        assert_eq!(first.expose().len(), 43);
        assert!(URL_SAFE_NO_PAD.decode(first.expose()).unwrap().len() == 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let (second, _, generated) = AdminToken::load_or_generate(dir.path()).unwrap();
        assert!(!generated);
        assert!(second.matches(first.expose()));
    }
}
