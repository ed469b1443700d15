//! Storage keys (AES-256-GCM, for data at rest) and the keyring used for rotation.

use std::fmt;
use std::path::Path;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Nonce, Payload};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::keyfile::{self, KeyBytes};

/// Domain separation for key ids, so an id reveals nothing usable about the key.
const KEY_ID_CONTEXT: &[u8] = b"ferry-storage-key-id";

/// Bytes of a key wrapped by [`StorageKey::wrap`]: a 12-byte nonce, the 32-byte
/// key encrypted with AES-256-GCM, and its 16-byte tag.
pub const WRAPPED_KEY_LEN: usize = 12 + 32 + 16;

/// Finds the key a sealed record names in its header.
///
/// A [`Keyring`] finds storage keys by their id; a store that seals each item
/// with its own data key looks that key up in its key store.
pub trait KeyLookup {
    /// The key with this id.
    ///
    /// # Errors
    /// [`CryptoError::UnknownKey`] when there is no such key,
    /// [`CryptoError::KeyDestroyed`] when it existed and was destroyed, or any
    /// error met while looking.
    fn lookup(&self, key_id: &str) -> Result<StorageKey, CryptoError>;
}

/// An AES-256-GCM key for sealing records, with its public id.
///
/// The id (16 hex characters, the start of SHA-256("ferry-storage-key-id" ||
/// key)) is not secret: it is written in each record's header so that the
/// right key can be found after a rotation. The key itself never appears in
/// `Debug`, cannot be serialized, and is wiped from memory when dropped.
#[derive(Clone)]
pub struct StorageKey {
    bytes: KeyBytes,
    id: String,
}

impl StorageKey {
    /// A fresh random key.
    pub fn generate() -> StorageKey {
        StorageKey::from_bytes(keyfile::random_key())
    }

    /// A fresh random key known by `id` rather than by an id derived from it:
    /// a data key, which a store names after the place it keeps it.
    pub fn generate_named(id: String) -> StorageKey {
        StorageKey {
            bytes: keyfile::random_key(),
            id,
        }
    }

    /// The key's id: 16 lowercase hex characters derived from the key, or the
    /// name given to a data key.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Encrypts `key` with this key (AES-256-GCM, a fresh random nonce,
    /// `context` as associated data): envelope encryption of a data key.
    pub fn wrap(&self, key: &StorageKey, context: &[u8]) -> [u8; WRAPPED_KEY_LEN] {
        let mut nonce_bytes = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce_bytes);
        let nonce: Nonce<Aes256Gcm> = nonce_bytes.into();
        let sealed = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: key.bytes.as_slice(),
                    aad: context,
                },
            )
            .expect("a 32-byte message always encrypts");
        let mut wrapped = [0u8; WRAPPED_KEY_LEN];
        wrapped[..12].copy_from_slice(&nonce);
        wrapped[12..].copy_from_slice(&sealed);
        wrapped
    }

    /// Decrypts a key made by [`StorageKey::wrap`] with the same `context`, and
    /// names it `id`.
    ///
    /// # Errors
    /// [`CryptoError::Authentication`] when `wrapped` was not made by this key
    /// with this context, or was changed.
    pub fn unwrap(
        &self,
        wrapped: &[u8; WRAPPED_KEY_LEN],
        context: &[u8],
        id: String,
    ) -> Result<StorageKey, CryptoError> {
        let failed = || CryptoError::Authentication(format!("the wrapped data key {id}"));
        let plain = Zeroizing::new(
            self.cipher()
                .decrypt(
                    &Nonce::<Aes256Gcm>::from(
                        <[u8; 12]>::try_from(&wrapped[..12]).expect("12 bytes"),
                    ),
                    Payload {
                        msg: &wrapped[12..],
                        aad: context,
                    },
                )
                .map_err(|_| failed())?,
        );
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(&plain);
        Ok(StorageKey { bytes, id })
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(self.bytes.as_slice()).expect("storage keys are 32 bytes")
    }

    /// Parses key text: the 32 bytes in URL-safe base64 (44 characters with
    /// padding). Surrounding whitespace is ignored.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] when the text is not 32 bytes of URL-safe base64.
    pub fn from_base64(text: &str) -> Result<StorageKey, CryptoError> {
        keyfile::parse_key_text(text).map(StorageKey::from_bytes)
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
    pub fn load(path: &Path) -> Result<StorageKey, CryptoError> {
        keyfile::load_key(path).map(StorageKey::from_bytes)
    }

    /// Reads the key file at `path`, or creates it (mode 0600, key text and a
    /// newline, fsynced) with a fresh key if it does not exist. The boolean is
    /// `true` when the file was created.
    ///
    /// # Errors
    /// As [`StorageKey::load`] and [`crate::write_key_file`].
    pub fn load_or_create(path: &Path) -> Result<(StorageKey, bool), CryptoError> {
        let (bytes, created) = keyfile::load_or_create_key(path)?;
        Ok((StorageKey::from_bytes(bytes), created))
    }

    /// Writes this key to a new key file at `path` (mode 0600, key text and a
    /// newline, the file and its directory fsynced).
    ///
    /// # Errors
    /// As [`crate::write_key_file`]; in particular if `path` already exists.
    pub fn create_file(&self, path: &Path) -> Result<(), CryptoError> {
        let mut contents = self.to_base64();
        contents.push('\n');
        keyfile::write_key_file(path, contents.as_bytes())
    }

    /// The raw key, for the AEAD only.
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    fn from_bytes(bytes: KeyBytes) -> StorageKey {
        let mut hasher = Sha256::new();
        hasher.update(KEY_ID_CONTEXT);
        hasher.update(*bytes);
        let id = hex::encode(&hasher.finalize()[..8]);
        StorageKey { bytes, id }
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorageKey({}, ***)", self.id)
    }
}

/// The storage keys a process knows: the current one, used to seal new
/// records, and older ones, kept only to open records sealed before a rotation.
#[derive(Clone, Debug)]
pub struct Keyring {
    // keys[0] is the current key.
    keys: Vec<StorageKey>,
}

impl Keyring {
    /// A keyring that seals with `current` and also opens records sealed with
    /// any of `older`.
    pub fn new(current: StorageKey, older: Vec<StorageKey>) -> Keyring {
        let mut keys = Vec::with_capacity(1 + older.len());
        keys.push(current);
        keys.extend(older);
        Keyring { keys }
    }

    /// The key to seal new records with.
    pub fn current(&self) -> &StorageKey {
        &self.keys[0]
    }

    /// The key with this id, current or older.
    pub fn find(&self, id: &str) -> Option<&StorageKey> {
        self.keys.iter().find(|k| k.id == id)
    }
}

impl KeyLookup for Keyring {
    fn lookup(&self, key_id: &str) -> Result<StorageKey, CryptoError> {
        self.find(key_id)
            .cloned()
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_sixteen_hex_chars_derived_from_the_key() {
        let key = StorageKey::generate();
        assert_eq!(key.id().len(), 16);
        assert!(
            key.id()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let again = StorageKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(again.id(), key.id());
        assert_ne!(StorageKey::generate().id(), key.id());

        let zero = StorageKey::from_bytes(Zeroizing::new([0; 32]));
        let mut hasher = Sha256::new();
        hasher.update(b"ferry-storage-key-id");
        hasher.update([0u8; 32]);
        assert_eq!(zero.id(), &hex::encode(hasher.finalize())[..16]);
    }

    #[test]
    fn debug_shows_the_id_but_no_key_material() {
        let key = StorageKey::generate();
        let text = key.to_base64();
        let debug = format!("{key:?} {:?}", Keyring::new(key.clone(), vec![]));
        assert!(debug.contains(key.id()));
        assert!(debug.contains("***"));
        assert!(!debug.contains(text.trim_end_matches('=')));
        assert!(!debug.contains(&hex::encode(key.bytes())));
        assert!(!debug.contains(&format!("{:?}", key.bytes())));
    }

    #[test]
    fn keyring_finds_current_and_older_keys() {
        let old = StorageKey::generate();
        let new = StorageKey::generate();
        let ring = Keyring::new(new.clone(), vec![old.clone()]);
        assert_eq!(ring.current().id(), new.id());
        assert_eq!(ring.find(old.id()).unwrap().id(), old.id());
        assert_eq!(ring.find(new.id()).unwrap().id(), new.id());
        assert!(ring.find("0000000000000000").is_none());
    }

    #[test]
    fn load_or_create_creates_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("storage.key");
        let (created, was_created) = StorageKey::load_or_create(&path).unwrap();
        assert!(was_created);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", *created.to_base64())
        );
        let (loaded, was_created) = StorageKey::load_or_create(&path).unwrap();
        assert!(!was_created);
        assert_eq!(loaded.id(), created.id());
        keyfile::assert_owner_only(&path);
    }

    #[test]
    fn create_file_writes_a_new_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("storage.key");
        let key = StorageKey::generate();
        key.create_file(&path).unwrap();
        keyfile::assert_owner_only(&path);
        assert_eq!(StorageKey::load(&path).unwrap().id(), key.id());
        assert!(StorageKey::generate().create_file(&path).is_err());
        assert_eq!(StorageKey::load(&path).unwrap().id(), key.id());
    }

    #[test]
    fn a_wrapped_key_unwraps_only_with_its_key_and_context() {
        let kek = StorageKey::generate();
        let data = StorageKey::generate_named("dk-1".into());
        let wrapped = kek.wrap(&data, b"slot 1");
        assert_ne!(
            kek.wrap(&data, b"slot 1"),
            wrapped,
            "a fresh nonce each time"
        );
        let back = kek.unwrap(&wrapped, b"slot 1", "dk-1".into()).unwrap();
        assert_eq!(*back.bytes(), *data.bytes());
        assert_eq!(back.id(), "dk-1");
        assert!(kek.unwrap(&wrapped, b"slot 2", "dk-1".into()).is_err());
        assert!(
            StorageKey::generate()
                .unwrap(&wrapped, b"slot 1", "dk-1".into())
                .is_err()
        );
        let mut changed = wrapped;
        changed[20] ^= 1;
        assert!(kek.unwrap(&changed, b"slot 1", "dk-1".into()).is_err());
    }

    #[test]
    fn rejects_bad_key_text() {
        assert!(StorageKey::from_base64("c2hvcnQ=").is_err());
    }
}
