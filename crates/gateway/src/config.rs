//! The gateway's settings, taken as values (only the binary reads the environment),
//! and the bearer token type, which never shows its secret.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use ferry_crypto::FernetKey;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The address the gateway binary listens on unless told otherwise.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
/// Where the admin API is, for `Location` headers, unless told otherwise.
pub const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:6869";
/// How long a pooled session may sit idle before it is dropped: well under the
/// server's own 30 s idle timeout, so a pooled session is rarely found closed.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// Everything [`crate::app`] needs.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The Ferry (or legacy) TCP server, `host:port`.
    pub server: String,
    /// The Fernet key shared with the server; without it `encrypt=true` is refused.
    pub fernet: Option<Arc<FernetKey>>,
    /// When set, `/dict` and `/file` require `Authorization: Bearer <token>`.
    pub token: Option<GatewayToken>,
    /// The admin API's base URL; `Location` is `{admin_url}/api/items/{id}`.
    pub admin_url: String,
    /// The most TCP sessions open to the server at once (busy and idle together).
    pub pool_size: usize,
    /// The largest `/dict` body accepted, in bytes (413 beyond).
    pub max_dict_bytes: usize,
    /// The largest `/file` body accepted, in bytes (413 beyond); `None`: no limit.
    pub max_file_bytes: Option<u64>,
    /// `/dict`: the whole request. `/file`: the longest wait for the next body
    /// chunk, so that a big upload may take as long as it needs while it moves.
    pub request_timeout: Duration,
    /// How long to wait for the server: to connect, and for its answer to a transfer.
    pub upstream_timeout: Duration,
}

impl Default for GatewayConfig {
    /// Server `127.0.0.1:6868`, no key, no token, admin API on port 6869, 64
    /// sessions, 16 MiB dictionaries, 64 GiB files, 60 s request and upstream timeouts.
    fn default() -> Self {
        GatewayConfig {
            server: format!("127.0.0.1:{}", ferry_protocol::DEFAULT_PORT),
            fernet: None,
            token: None,
            admin_url: DEFAULT_ADMIN_URL.into(),
            pool_size: 64,
            max_dict_bytes: 16 * 1024 * 1024,
            max_file_bytes: Some(64 * 1024 * 1024 * 1024),
            request_timeout: Duration::from_secs(60),
            upstream_timeout: Duration::from_secs(60),
        }
    }
}

/// A bearer token. Its `Debug` prints `***`, it cannot be serialized, it is wiped
/// from memory when dropped, and comparing it takes the same time whatever is sent.
#[derive(Clone)]
pub struct GatewayToken(Zeroizing<String>);

/// Why a token was not accepted as a setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is empty")]
    Empty,
    #[error("the token holds whitespace or control characters")]
    BadCharacter,
}

impl GatewayToken {
    /// Accepts a non-empty token of visible ASCII characters (surrounding
    /// whitespace, such as a file's final newline, is trimmed).
    pub fn parse(text: &str) -> Result<GatewayToken, TokenError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(TokenError::Empty);
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::BadCharacter);
        }
        Ok(GatewayToken(Zeroizing::new(text.to_owned())))
    }

    /// Whether `presented` is this token, in constant time (both sides are hashed
    /// first, so not even the length leaks).
    pub fn matches(&self, presented: &[u8]) -> bool {
        let ours = Sha256::digest(self.0.as_bytes());
        let theirs = Sha256::digest(presented);
        ours.ct_eq(&theirs).into()
    }
}

impl fmt::Debug for GatewayToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GatewayToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_itself_only() {
        let token = GatewayToken::parse("s3cret\n").unwrap();
        assert!(token.matches(b"s3cret"));
        assert!(!token.matches(b"s3cre"));
        assert!(!token.matches(b""));
    }

    #[test]
    fn a_token_never_shows_in_debug() {
        let config = GatewayConfig {
            token: Some(GatewayToken::parse("s3cret").unwrap()),
            ..GatewayConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("***"),
            "{shown}"
        );
    }

    #[test]
    fn empty_or_spaced_tokens_are_refused() {
        assert_eq!(GatewayToken::parse(" \n").unwrap_err(), TokenError::Empty);
        assert_eq!(
            GatewayToken::parse("a b").unwrap_err(),
            TokenError::BadCharacter
        );
    }
}
