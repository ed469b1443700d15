//! The log's signing key: an Ed25519 key with a name, kept in a key file that
//! only its owner can read.
//!
//! The key file holds one line, the private key text of the Go `note` package:
//! `PRIVATE+KEY+<name>+<key hash as 8 hex digits>+<base64(0x01 || 32-byte seed)>`,
//! so the name travels with the key and a key made here can be used by Go tools
//! and the other way round.

use std::fmt;
use std::io;
use std::path::Path;

use ed25519_dalek::{Signer as _, SigningKey};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::checkpoint::Checkpoint;
use crate::error::NoteError;
use crate::note::{
    ALG_ED25519, Verifier, check_key_name, key_hash, parse_key_parts, signature_line,
};

/// What starts private key text.
const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// An Ed25519 signing key with its name, which signs checkpoints as C2SP
/// signed notes. `Debug` shows the name and key hash, never the key; the key is
/// wiped from memory when dropped. Its key file holds the private key text of
/// [`key_text`](Self::key_text).
#[derive(Clone)]
pub struct Signer {
    name: String,
    hash: u32,
    key: SigningKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .field("key_hash", &format_args!("{:08x}", self.hash))
            .field("key", &"***")
            .finish()
    }
}

impl Signer {
    /// A new random key named `name`.
    ///
    /// # Errors
    /// [`NoteError::InvalidKeyName`] if the name is empty or holds white space
    /// or `+`.
    pub fn generate(name: impl Into<String>) -> Result<Self, NoteError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(&mut *seed);
        Self::new(name, SigningKey::from_bytes(&seed))
    }

    /// The signer for `key` under the name `name`.
    ///
    /// # Errors
    /// [`NoteError::InvalidKeyName`] if the name is empty or holds white space
    /// or `+`.
    pub fn new(name: impl Into<String>, key: SigningKey) -> Result<Self, NoteError> {
        let name = name.into();
        check_key_name(&name)?;
        let hash = key_hash(&name, &key.verifying_key());
        Ok(Self { name, hash, key })
    }

    /// Parses private key text,
    /// `PRIVATE+KEY+<name>+<key hash as 8 hex digits>+<base64(0x01 || 32-byte seed)>`
    /// (the Go `note` package's form); surrounding white space is ignored.
    ///
    /// # Errors
    /// [`NoteError::InvalidKey`] or [`NoteError::InvalidKeyName`] if the text is
    /// not a private key, names another algorithm, or its key hash does not
    /// match its name and key.
    pub fn from_key_text(text: &str) -> Result<Self, NoteError> {
        let rest = text
            .trim()
            .strip_prefix(PRIVATE_KEY_PREFIX)
            .ok_or(NoteError::InvalidKey(
                "private key text starts with PRIVATE+KEY+",
            ))?;
        let (name, hash, seed) = parse_key_parts(rest)?;
        let signer = Self::new(name, SigningKey::from_bytes(&seed))?;
        if signer.hash != hash {
            return Err(NoteError::InvalidKey("the key hash does not match the key"));
        }
        Ok(signer)
    }

    /// The private key text, without a newline. It is the secret: store it
    /// with [`write_key_file`](Self::write_key_file).
    #[must_use]
    pub fn key_text(&self) -> Zeroizing<String> {
        let mut key = Zeroizing::new(Vec::with_capacity(33));
        key.push(ALG_ED25519);
        key.extend_from_slice(self.key.as_bytes());
        let encoded = Zeroizing::new(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            &*key,
        ));
        Zeroizing::new(format!(
            "{PRIVATE_KEY_PREFIX}{}+{:08x}+{}",
            self.name, self.hash, *encoded
        ))
    }

    /// Creates `path` with mode 0600 and writes the private key text and a
    /// newline to it, durably (with [`ferry_crypto::write_key_file`]). An
    /// existing file is never overwritten.
    ///
    /// # Errors
    /// [`NoteError::KeyFile`], e.g. with `AlreadyExists`.
    pub fn write_key_file(&self, path: &Path) -> Result<(), NoteError> {
        let mut contents = self.key_text();
        contents.push('\n');
        ferry_crypto::write_key_file(path, contents.as_bytes()).map_err(|e| key_file_error(path, e))
    }

    /// Reads a key file written by [`write_key_file`](Self::write_key_file).
    ///
    /// # Errors
    /// [`NoteError::KeyFile`] if it cannot be read, is too large or is not
    /// text; the errors of [`from_key_text`](Self::from_key_text) if it does not
    /// hold a private key.
    pub fn load_key_file(path: &Path) -> Result<Self, NoteError> {
        let text = ferry_crypto::read_key_file(path).map_err(|e| key_file_error(path, e))?;
        Self::from_key_text(&text)
    }

    /// Loads the key in `path`, or creates the file with a new key named `name`
    /// if there is none. Returns the signer and whether it was created. The
    /// name is only used for a new key: a loaded key keeps its own.
    ///
    /// # Errors
    /// Those of [`load_key_file`](Self::load_key_file),
    /// [`generate`](Self::generate) and [`write_key_file`](Self::write_key_file).
    pub fn load_or_create_key_file(path: &Path, name: &str) -> Result<(Self, bool), NoteError> {
        match Self::load_key_file(path) {
            Ok(signer) => return Ok((signer, false)),
            Err(NoteError::KeyFile { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let signer = Self::generate(name)?;
        match signer.write_key_file(path) {
            Ok(()) => Ok((signer, true)),
            // Another process created it first: use theirs.
            Err(NoteError::KeyFile { source, .. })
                if source.kind() == io::ErrorKind::AlreadyExists =>
            {
                Ok((Self::load_key_file(path)?, false))
            }
            Err(e) => Err(e),
        }
    }

    /// The key's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key hash (see [`crate::note`]).
    #[must_use]
    pub fn key_hash(&self) -> u32 {
        self.hash
    }

    /// The public half, to publish and to check notes with.
    #[must_use]
    pub fn verifier(&self) -> Verifier {
        // The name was checked when `self` was made.
        Verifier::with_valid_name(self.name.clone(), self.key.verifying_key())
    }

    /// Signs `body` (a note's text, which must end with a newline and hold no
    /// blank line) and returns the signed note: the body, a blank line and one
    /// signature line.
    pub(crate) fn sign_body(&self, body: &str) -> String {
        debug_assert!(body.ends_with('\n') && !body.contains("\n\n"));
        let signature = self.key.sign(body.as_bytes());
        format!(
            "{body}\n{}",
            signature_line(&self.name, self.hash, &signature)
        )
    }

    /// The signed note of a checkpoint.
    #[must_use]
    pub fn sign_checkpoint(&self, checkpoint: &Checkpoint) -> String {
        self.sign_body(&checkpoint.body())
    }
}

/// A key file error of `ferry_crypto` as this crate's.
fn key_file_error(path: &Path, error: ferry_crypto::CryptoError) -> NoteError {
    match error {
        ferry_crypto::CryptoError::KeyFile { path, source } => NoteError::KeyFile { path, source },
        other => NoteError::KeyFile {
            path: path.to_owned(),
            source: io::Error::other(other.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_owner_only(path: &Path) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "mode of {}", path.display());
        }
    }

    #[test]
    fn debug_shows_the_name_and_hash_but_no_secret() {
        let signer = Signer::generate("log").unwrap();
        let debug = format!("{signer:?}");
        assert!(debug.contains("\"log\""), "{debug}");
        assert!(
            debug.contains(&format!("{:08x}", signer.key_hash())),
            "{debug}"
        );
        assert!(debug.contains("***"), "{debug}");
        // (Base64 has '+' in its alphabet: the key is everything after the fourth.)
        let secret_b64 = signer.key_text().splitn(5, '+').nth(4).unwrap().to_owned();
        assert!(!debug.contains(&secret_b64[4..20]), "{debug}");
        assert!(!debug.contains(&hex::encode(signer.key.as_bytes())[..16]));
        assert!(!debug.contains(&format!("{:?}", signer.key.as_bytes())[..20]));
    }

    #[test]
    fn generated_keys_differ_and_verify_their_own_notes() {
        let (a, b) = (
            Signer::generate("log").unwrap(),
            Signer::generate("log").unwrap(),
        );
        assert_ne!(a.verifier(), b.verifier());
        assert_eq!(a.name(), "log");
        let checkpoint = Checkpoint::new("log", 1, [0; 32]).unwrap();
        assert!(
            a.verifier()
                .verify_note(&a.sign_checkpoint(&checkpoint))
                .is_ok()
        );
        assert!(
            b.verifier()
                .verify_note(&a.sign_checkpoint(&checkpoint))
                .is_err()
        );
    }

    #[test]
    fn key_text_round_trips() {
        let signer = Signer::generate("ferry.example/log").unwrap();
        let text = signer.key_text();
        assert!(text.starts_with("PRIVATE+KEY+ferry.example/log+"));
        let loaded = Signer::from_key_text(&format!(" {}\n", *text)).unwrap();
        assert_eq!(loaded.verifier(), signer.verifier());
        assert_eq!(*loaded.key_text(), *text);
    }

    #[test]
    fn bad_key_text_is_refused() {
        let text = Signer::generate("log").unwrap().key_text().to_string();
        let rest = text.strip_prefix(PRIVATE_KEY_PREFIX).unwrap();
        let (hash, key) = rest.strip_prefix("log+").unwrap().split_once('+').unwrap();
        let bad_hash = format!("{:08x}", u32::from_str_radix(hash, 16).unwrap() ^ 1);
        let raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, key).unwrap();
        let other_alg = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            [&[0x02], &raw[1..]].concat(),
        );
        let cases = [
            String::new(),
            rest.to_owned(),
            format!("PRIVATE+KEY+log+{hash}"),
            format!("PRIVATE+KEY+log+{bad_hash}+{key}"),
            format!("PRIVATE+KEY+other+{hash}+{key}"),
            format!("PRIVATE+KEY+lo g+{hash}+{key}"),
            format!("PRIVATE+KEY+log+{hash}+{other_alg}"),
            format!("PRIVATE+KEY+log+{hash}+{}", &key[..40]),
            format!("PRIVATE+KEY+log+{hash}+{key}!"),
            Signer::generate("log").unwrap().verifier().to_string(),
        ];
        for case in cases {
            assert!(
                matches!(
                    Signer::from_key_text(&case),
                    Err(NoteError::InvalidKey(_) | NoteError::InvalidKeyName)
                ),
                "accepted {case:?}"
            );
        }
    }

    #[test]
    fn key_files_are_created_with_mode_0600_and_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.key");
        let signer = Signer::generate("log").unwrap();
        signer.write_key_file(&path).unwrap();
        assert_owner_only(&path);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", *signer.key_text())
        );
        let loaded = Signer::load_key_file(&path).unwrap();
        assert_eq!(loaded.verifier(), signer.verifier());
    }

    #[test]
    fn key_files_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.key");
        let first = Signer::generate("log").unwrap();
        first.write_key_file(&path).unwrap();
        let err = Signer::generate("log")
            .unwrap()
            .write_key_file(&path)
            .unwrap_err();
        assert!(
            matches!(&err, NoteError::KeyFile { source, .. } if source.kind() == io::ErrorKind::AlreadyExists),
            "{err}"
        );
        assert_eq!(
            Signer::load_key_file(&path).unwrap().verifier(),
            first.verifier()
        );
    }

    #[test]
    fn load_or_create_creates_once_then_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.key");
        let (created, was_created) = Signer::load_or_create_key_file(&path, "log").unwrap();
        assert!(was_created);
        assert_owner_only(&path);
        let (loaded, was_created) = Signer::load_or_create_key_file(&path, "other").unwrap();
        assert!(!was_created);
        assert_eq!(loaded.name(), "log");
        assert_eq!(loaded.verifier(), created.verifier());
        assert!(Signer::load_or_create_key_file(&dir.path().join("new"), "a b").is_err());
    }

    #[test]
    fn bad_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(matches!(
            Signer::load_key_file(&missing),
            Err(NoteError::KeyFile { source, .. }) if source.kind() == io::ErrorKind::NotFound
        ));
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'A'; 10_000]).unwrap();
        assert!(matches!(
            Signer::load_key_file(&big),
            Err(NoteError::KeyFile { .. })
        ));
        let binary = dir.path().join("binary");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(
            Signer::load_key_file(&binary),
            Err(NoteError::KeyFile { .. })
        ));
        let garbage = dir.path().join("garbage");
        std::fs::write(&garbage, "not a key\n").unwrap();
        assert!(matches!(
            Signer::load_key_file(&garbage),
            Err(NoteError::InvalidKey(_))
        ));
        // A bad file is not replaced by load_or_create.
        assert!(Signer::load_or_create_key_file(&garbage, "log").is_err());
        assert_eq!(std::fs::read_to_string(&garbage).unwrap(), "not a key\n");
    }
}
