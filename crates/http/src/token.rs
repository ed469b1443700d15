//! The bearer token of a service: a secret whose `Debug` prints asterisks, that
//! cannot be serialized, and that is wiped from memory when dropped.
//!
//! [`BearerToken::matches`] compares SHA-256 digests of both sides with
//! `subtle::ConstantTimeEq`: every candidate, whatever its length or content,
//! goes through the same steps on 32 bytes, so a wrong token of another length is
//! refused in the same way (and about the same time) as one of the same length.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Longest token accepted, in bytes: a bigger token is the wrong file or setting.
pub const MAX_TOKEN_LEN: usize = 1024;

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Nothing but whitespace.
    #[error("the token is empty")]
    Empty,
    /// More than [`MAX_TOKEN_LEN`] bytes.
    #[error("the token is longer than 1024 bytes")]
    TooLong,
    /// Whitespace inside, control or non-ASCII characters: not what a header carries.
    #[error("the token may hold only visible ASCII characters")]
    BadCharacter,
}

/// A bearer token: the secret and its SHA-256 digest, both wiped on drop.
#[derive(Clone)]
pub struct BearerToken {
    text: Zeroizing<String>,
    digest: Zeroizing<[u8; 32]>,
}

impl BearerToken {
    /// A token from configured text: surrounding whitespace (a file's final
    /// newline) is trimmed; the rest must be 1 to 1024 visible ASCII characters.
    pub fn parse(text: &str) -> Result<BearerToken, TokenError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(TokenError::Empty);
        }
        if text.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong);
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::BadCharacter);
        }
        Ok(BearerToken::from_valid(Zeroizing::new(text.to_owned())))
    }

    /// A fresh token: 32 random bytes as URL-safe base64 (43 characters).
    pub fn generate() -> BearerToken {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(&mut *bytes);
        BearerToken::from_valid(Zeroizing::new(URL_SAFE_NO_PAD.encode(*bytes)))
    }

    fn from_valid(text: Zeroizing<String>) -> BearerToken {
        let digest = digest(text.as_bytes());
        BearerToken { text, digest }
    }

    /// The token's text, to hand to a client that must send it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// Whether `candidate` is this token, compared as digests in constant time.
    pub fn matches(&self, candidate: &str) -> bool {
        digest(candidate.as_bytes()).ct_eq(&*self.digest).into()
    }
}

/// The SHA-256 of `bytes`, in a buffer wiped on drop.
fn digest(bytes: &[u8]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(Sha256::digest(bytes).into())
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let token = BearerToken::parse("s3cret").unwrap();
        assert_eq!(format!("{token:?}"), "BearerToken(***)");
    }

    #[test]
    fn empty_long_or_unprintable_tokens_are_refused() {
        assert_eq!(BearerToken::parse(" \n").unwrap_err(), TokenError::Empty);
        assert_eq!(
            BearerToken::parse("a b").unwrap_err(),
            TokenError::BadCharacter
        );
        assert_eq!(
            BearerToken::parse("a\u{e9}").unwrap_err(),
            TokenError::BadCharacter
        );
        assert_eq!(
            BearerToken::parse(&"x".repeat(1025)).unwrap_err(),
            TokenError::TooLong
        );
        assert!(BearerToken::parse(&"x".repeat(1024)).is_ok());
    }

    #[test]
    fn a_configured_token_is_trimmed() {
        let token = BearerToken::parse("  s3cret\n").unwrap();
        assert_eq!(token.expose(), "s3cret");
        assert!(token.matches("s3cret"));
    }

    #[test]
    fn a_wrong_token_of_any_length_is_refused() {
        let token = BearerToken::parse("abcdef").unwrap();
        assert!(token.matches("abcdef"));
        for wrong in [
            "", "a", "abcde", "abcdeg", "bbcdef", "abcdefg", "abcdef ", "ABCDEF",
        ] {
            assert!(!token.matches(wrong), "{wrong:?}");
        }
        assert!(!token.matches(&"abcdef".repeat(1000)));
    }

    #[test]
    fn a_generated_token_is_43_url_safe_characters() {
        let token = BearerToken::generate();
        assert_eq!(token.expose().len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(token.expose()).unwrap().len(), 32);
        assert!(
            BearerToken::parse(token.expose())
                .unwrap()
                .matches(token.expose())
        );
        assert_ne!(token.expose(), BearerToken::generate().expose());
    }
}
