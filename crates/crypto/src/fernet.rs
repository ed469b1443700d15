//! Fernet, the wire encryption of the legacy protocol, compatible with Python's
//! `cryptography.fernet`.
//!
//! Tokens are checked (HMAC-SHA256, then AES-128-CBC) but, like the legacy server,
//! no time-to-live is enforced: a token stamped in the future (a client whose
//! clock runs fast) is accepted, as Python accepts it.
//!
//! A token is made and opened here from the RustCrypto ciphers the `fernet` crate
//! itself uses (`aes`, `cbc`, `hmac`, `sha2`), with two differences that matter
//! for speed (issue #14): base64 is `base64-simd`'s (18% of an encrypted
//! transfer's CPU went to the `fernet` crate's scalar base64), and the
//! plaintext is encrypted and decrypted in place in the token's own buffer. The
//! `fernet` crate stays as the reference the tests check every token against,
//! both ways, and Python's `cryptography` is checked too.
//!
//! The layout (the Fernet spec): version byte `0x80`, the big-endian u64
//! timestamp, the 16-byte IV, the AES-128-CBC ciphertext (PKCS#7), and the
//! HMAC-SHA256 of all of that with the key's first 16 bytes; the whole in
//! URL-safe base64 with padding.

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::keyfile::{self, KeyBytes};

type CbcEncryptor = cbc::Encryptor<aes::Aes128>;
type CbcDecryptor = cbc::Decryptor<aes::Aes128>;

/// The token's first byte.
const VERSION: u8 = 0x80;
/// Version, timestamp and IV: the bytes before the ciphertext.
const HEADER: usize = 1 + 8 + IV;
const IV: usize = 16;
const BLOCK: usize = 16;
/// The HMAC-SHA256 tag after the ciphertext.
const TAG: usize = 32;

/// A Fernet key: 32 random bytes (16 signing, 16 encryption).
///
/// Its `Debug` shows no key material, it cannot be serialized, and it is wiped
/// from memory when dropped.
#[derive(Clone)]
pub struct FernetKey {
    bytes: KeyBytes,
}

impl FernetKey {
    /// A fresh random key.
    pub fn generate() -> FernetKey {
        FernetKey::from_bytes(keyfile::random_key())
    }

    /// Parses the usual Fernet key text: 32 bytes in URL-safe base64 (44
    /// characters with padding). Surrounding whitespace, such as the newline at
    /// the end of a key file, is ignored.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] when the text is not 32 bytes of URL-safe base64.
    pub fn from_base64(text: &str) -> Result<FernetKey, CryptoError> {
        keyfile::parse_key_text(text).map(FernetKey::from_bytes)
    }

    /// The key text: URL-safe base64 with padding, 44 characters, no newline.
    pub fn to_base64(&self) -> Zeroizing<String> {
        keyfile::key_text(&self.bytes)
    }

    /// Reads a key file (key text, optionally followed by a newline).
    ///
    /// # Errors
    /// [`CryptoError::KeyFile`] if it cannot be read, [`CryptoError::InvalidKey`]
    /// if it does not hold a key.
    pub fn load(path: &Path) -> Result<FernetKey, CryptoError> {
        keyfile::load_key(path).map(FernetKey::from_bytes)
    }

    /// Reads the key file at `path`, or creates it (mode 0600, key text and a
    /// newline, fsynced) with a fresh key if it does not exist. The boolean is
    /// `true` when the file was created.
    ///
    /// # Errors
    /// As [`FernetKey::load`] and [`crate::write_key_file`].
    pub fn load_or_create(path: &Path) -> Result<(FernetKey, bool), CryptoError> {
        let (bytes, created) = keyfile::load_or_create_key(path)?;
        Ok((FernetKey::from_bytes(bytes), created))
    }

    /// Encrypts `plaintext` into a token, returned as its ASCII bytes (URL-safe
    /// base64). 48,000 bytes of plaintext give a 64,100-byte token.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut iv = [0u8; IV];
        rand::rng().fill_bytes(&mut iv);
        self.encrypt_at(plaintext, unix_now(), iv)
    }

    /// The token of `plaintext` stamped `timestamp` (seconds since the Unix
    /// epoch) with `iv`.
    fn encrypt_at(&self, plaintext: &[u8], timestamp: u64, iv: [u8; IV]) -> Vec<u8> {
        let padded = (plaintext.len() / BLOCK + 1) * BLOCK;
        let mut raw = Vec::with_capacity(HEADER + padded + TAG);
        raw.push(VERSION);
        raw.extend_from_slice(&timestamp.to_be_bytes());
        raw.extend_from_slice(&iv);
        raw.extend_from_slice(plaintext);
        raw.resize(HEADER + padded, 0);
        CbcEncryptor::new(self.encryption_key().into(), &iv.into())
            .encrypt_padded_mut::<Pkcs7>(&mut raw[HEADER..], plaintext.len())
            .expect("the buffer has room for the padding");
        let tag = self.signer().chain_update(&raw).finalize().into_bytes();
        raw.extend_from_slice(&tag);
        base64_simd::URL_SAFE.encode_type(&raw)
    }

    /// Verifies and decrypts a token. No time-to-live is enforced, and tokens
    /// stamped in the future are accepted. Surrounding ASCII whitespace is
    /// ignored.
    ///
    /// # Errors
    /// [`CryptoError::InvalidToken`] when the token is malformed, was tampered
    /// with, or was made with another key.
    pub fn decrypt(&self, token: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (mut raw, plaintext) = self.open(token)?;
        raw.copy_within(plaintext.clone(), 0);
        raw.truncate(plaintext.len());
        Ok(raw)
    }

    /// As [`FernetKey::decrypt`], the plaintext left where it was decrypted,
    /// in the token's buffer: no copy.
    ///
    /// # Errors
    /// As [`FernetKey::decrypt`].
    pub fn decrypt_to_bytes(&self, token: &[u8]) -> Result<Bytes, CryptoError> {
        let (raw, plaintext) = self.open(token)?;
        Ok(Bytes::from(raw).slice(plaintext))
    }

    /// The token's bytes, decrypted in place, and where the plaintext is in them.
    fn open(&self, token: &[u8]) -> Result<(Vec<u8>, Range<usize>), CryptoError> {
        let mut raw = base64_simd::URL_SAFE
            .decode_to_vec(token.trim_ascii())
            .map_err(|_| CryptoError::InvalidToken)?;
        let ciphertext = raw.len().saturating_sub(HEADER + TAG);
        if raw.first() != Some(&VERSION) || ciphertext == 0 || ciphertext % BLOCK != 0 {
            return Err(CryptoError::InvalidToken);
        }
        let (signed, tag) = raw.split_at(HEADER + ciphertext);
        self.signer()
            .chain_update(signed)
            .verify_slice(tag)
            .map_err(|_| CryptoError::InvalidToken)?;
        let iv: [u8; IV] = raw[HEADER - IV..HEADER].try_into().expect("16 bytes");
        let plaintext = CbcDecryptor::new(self.encryption_key().into(), &iv.into())
            .decrypt_padded_mut::<Pkcs7>(&mut raw[HEADER..HEADER + ciphertext])
            .map_err(|_| CryptoError::InvalidToken)?
            .len();
        Ok((raw, HEADER..HEADER + plaintext))
    }

    fn from_bytes(bytes: KeyBytes) -> FernetKey {
        FernetKey { bytes }
    }

    /// The HMAC-SHA256 keyed with the key's first half.
    fn signer(&self) -> Hmac<Sha256> {
        Hmac::new_from_slice(&self.bytes[..16]).expect("HMAC takes a key of any length")
    }

    /// The AES-128 key: the key's second half.
    fn encryption_key(&self) -> &[u8; 16] {
        self.bytes[16..].try_into().expect("32-byte keys")
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl fmt::Debug for FernetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FernetKey(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    const EXAMPLE_KEY: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/legacy-session/example.key"
    );
    const SESSION: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/legacy-session/client-to-server.bin"
    );

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// Runs Python code with `cryptography` installed; stdin in, stdout out.
    fn python(code: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(code)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    const PY_DECRYPT: &str = "import sys; from cryptography.fernet import Fernet; \
        sys.stdout.buffer.write(Fernet(sys.argv[1].encode()).decrypt(sys.stdin.buffer.read()))";
    const PY_ENCRYPT_AT: &str = "import sys, time; from cryptography.fernet import Fernet; \
        sys.stdout.buffer.write(Fernet(sys.argv[1].encode()).encrypt_at_time(\
        sys.stdin.buffer.read(), int(time.time()) + int(sys.argv[2])))";

    #[test]
    fn round_trips_and_has_the_legacy_token_sizes() {
        let key = FernetKey::generate();
        for (len, token_len) in [(0, 100), (1, 100), (48_000, 64_100)] {
            let plain = pattern(len);
            let token = key.encrypt(&plain);
            assert_eq!(token.len(), token_len, "token for {len} bytes");
            assert_eq!(key.decrypt(&token).unwrap(), plain);
        }
    }

    #[test]
    fn python_decrypts_our_tokens() {
        let key = FernetKey::generate();
        for len in [0, 1, 48_000] {
            let plain = pattern(len);
            let token = key.encrypt(&plain);
            assert_eq!(python(PY_DECRYPT, &[&key.to_base64()], &token), plain);
        }
    }

    #[test]
    fn we_decrypt_python_tokens_even_stamped_in_the_future() {
        let key = FernetKey::generate();
        for len in [0, 1, 48_000] {
            let plain = pattern(len);
            for skew in ["0", "3600", "-86400"] {
                let token = python(PY_ENCRYPT_AT, &[&key.to_base64(), skew], &plain);
                assert_eq!(
                    key.decrypt(&token).unwrap(),
                    plain,
                    "{len} bytes, skew {skew}"
                );
            }
        }
    }

    /// The `fernet` crate, the reference implementation, with the same key.
    fn reference(key: &FernetKey) -> fernet::Fernet {
        fernet::Fernet::new(&key.to_base64()).unwrap()
    }

    #[test]
    fn tokens_stamped_in_the_future_are_accepted() {
        let key = FernetKey::generate();
        let future = reference(&key).encrypt_at_time(b"fast clock", unix_now() + 10 * 365 * 86_400);
        // The crate's own check would refuse it ...
        assert!(reference(&key).decrypt(&future).is_err());
        // ... but the legacy server accepted it.
        assert_eq!(key.decrypt(future.as_bytes()).unwrap(), b"fast clock");
    }

    /// Every length around the block size and the protocol's piece, both ways:
    /// the reference opens our tokens, we open its tokens, and ours made with
    /// the timestamp and IV of one of its tokens is that token, byte for byte.
    #[test]
    fn tokens_match_the_reference_implementation_both_ways() {
        let key = FernetKey::generate();
        let reference = reference(&key);
        let lengths = (0..=66).chain([1_000, 47_999, 48_000, 48_001, 1 << 20]);
        for len in lengths {
            let plain = pattern(len);
            let ours = key.encrypt(&plain);
            let ours_text = std::str::from_utf8(&ours).unwrap();
            assert_eq!(reference.decrypt(ours_text).unwrap(), plain, "{len} bytes");
            let theirs = reference.encrypt(&plain);
            assert_eq!(
                key.decrypt(theirs.as_bytes()).unwrap(),
                plain,
                "{len} bytes"
            );
            let raw = base64_simd::URL_SAFE.decode_to_vec(&theirs).unwrap();
            let timestamp = u64::from_be_bytes(raw[1..9].try_into().unwrap());
            let iv = raw[9..HEADER].try_into().unwrap();
            let again = key.encrypt_at(&plain, timestamp, iv);
            assert_eq!(again, theirs.into_bytes(), "{len} bytes");
        }
    }

    /// A token whose bytes decode but do not make a Fernet token: each layout
    /// error is refused, signed correctly or not.
    #[test]
    fn rejects_tokens_of_the_wrong_shape_even_when_signed() {
        let key = FernetKey::generate();
        let signed = |raw: &[u8]| {
            let mut raw = raw.to_vec();
            let tag = key.signer().chain_update(&raw).finalize().into_bytes();
            raw.extend_from_slice(&tag);
            base64_simd::URL_SAFE.encode_type::<Vec<u8>>(&raw)
        };
        let good = base64_simd::URL_SAFE
            .decode_to_vec(key.encrypt(b"sixteen bytes!!!"))
            .unwrap();
        let body = &good[..good.len() - TAG];
        assert_eq!(key.decrypt(&signed(body)).unwrap(), b"sixteen bytes!!!");
        let mut version = body.to_vec();
        version[0] = 0x81;
        let no_ciphertext = &body[..HEADER];
        let ragged = &body[..body.len() - 1];
        // A bit of the first ciphertext block flipped: the last block (all
        // padding) decrypts to a last byte of 0x50, which is no padding.
        let mut padding = body.to_vec();
        padding[HEADER + BLOCK - 1] ^= 0x40;
        for bad in [&version[..], no_ciphertext, ragged, &padding[..]] {
            assert!(matches!(
                key.decrypt(&signed(bad)),
                Err(CryptoError::InvalidToken)
            ));
        }
    }

    #[test]
    fn decrypts_the_recorded_legacy_session_with_the_example_key() {
        let key = FernetKey::load(Path::new(EXAMPLE_KEY)).unwrap();
        let session = std::fs::read(SESSION).unwrap();
        let tokens: Vec<&[u8]> = session
            .split(|b| !(b.is_ascii_alphanumeric() || b"-_=".contains(b)))
            .filter_map(|run| {
                run.windows(6)
                    .position(|w| w == b"gAAAAA")
                    .map(|at| &run[at..])
            })
            .collect();
        assert_eq!(tokens.len(), 3);
        let plain: Vec<Vec<u8>> = tokens.iter().map(|t| key.decrypt(t).unwrap()).collect();
        assert!(plain[0].starts_with(b"\x80\x04"), "a pickle");
        assert_eq!(plain[1], b"Encrypted");
        assert_eq!(plain[2], b"__pycache__/\n*.py[cod]");
    }

    #[test]
    fn rejects_tampered_foreign_and_malformed_tokens() {
        let key = FernetKey::generate();
        let mut token = key.encrypt(b"hello");
        assert!(FernetKey::generate().decrypt(&token).is_err());
        let i = token.len() / 2;
        token[i] = if token[i] == b'A' { b'B' } else { b'A' };
        assert!(matches!(
            key.decrypt(&token),
            Err(CryptoError::InvalidToken)
        ));
        for bad in [&b""[..], b"gAAAAA", b"\xff\xfe", b"not a token at all"] {
            assert!(key.decrypt(bad).is_err());
        }
    }

    #[test]
    fn key_text_round_trips_and_tolerates_whitespace() {
        let key = FernetKey::generate();
        let text = key.to_base64();
        assert_eq!(text.len(), 44);
        let again = FernetKey::from_base64(&format!(
            "  {}
",
            *text
        ))
        .unwrap();
        assert_eq!(*again.to_base64(), *text);
        assert!(FernetKey::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = FernetKey::generate();
        assert_eq!(format!("{key:?}"), "FernetKey(***)");
        assert_eq!(format!("{key:#?}"), "FernetKey(***)");
    }

    #[test]
    fn load_or_create_creates_once_then_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fernet.key");
        let (created, was_created) = FernetKey::load_or_create(&path).unwrap();
        assert!(was_created);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", *created.to_base64()));
        let (loaded, was_created) = FernetKey::load_or_create(&path).unwrap();
        assert!(!was_created);
        assert_eq!(*loaded.to_base64(), *created.to_base64());
        keyfile::assert_owner_only(&path);
    }

    #[test]
    fn load_reports_missing_and_invalid_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.key");
        assert!(matches!(
            FernetKey::load(&missing),
            Err(CryptoError::KeyFile { .. })
        ));
        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "not a key\n").unwrap();
        assert!(matches!(
            FernetKey::load(&bad),
            Err(CryptoError::InvalidKey(_))
        ));
        assert!(
            FernetKey::load_or_create(&bad).is_err(),
            "an invalid file is not replaced"
        );
    }
}
