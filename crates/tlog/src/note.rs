//! Signed notes (C2SP `signed-note`, as in `golang.org/x/mod/sumdb/note`) with
//! Ed25519 keys, and the [`Verifier`] that checks them.
//!
//! ```text
//! <body, ending in a newline>
//! \n
//! — <key name> <base64(key hash (4 bytes, big-endian) || Ed25519 signature (64 bytes))>\n
//! [more signature lines]
//! ```
//!
//! The signature covers the body's bytes, its final newline included. The key
//! hash is the first 4 bytes of `SHA-256(key name || 0x0A || 0x01 || public
//! key)`, where 0x01 names the Ed25519 algorithm. A verifier key is written
//! `<name>+<key hash as 8 hex digits>+<base64(0x01 || public key)>`.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::checkpoint::Checkpoint;
use crate::error::NoteError;

/// The algorithm byte of Ed25519 keys in key hashes and key text.
pub(crate) const ALG_ED25519: u8 = 0x01;

/// What starts a signature line: an em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Notes with more signature lines than this are refused unread, as by the Go
/// `note` package, so a huge note cannot keep a verifier busy.
const MAX_SIGNATURES: usize = 100;

/// A key name is non-empty and holds neither white space nor `+`.
pub(crate) fn check_key_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(NoteError::InvalidKeyName);
    }
    Ok(())
}

/// The key hash of an Ed25519 key: the first 4 bytes, big-endian, of
/// `SHA-256(name || 0x0A || 0x01 || public key)`.
pub(crate) fn key_hash(name: &str, key: &VerifyingKey) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', ALG_ED25519])
        .chain_update(key.as_bytes())
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The signature line for `signature` by key `name` with hash `hash`.
pub(crate) fn signature_line(name: &str, hash: u32, signature: &Signature) -> String {
    let mut bytes = Vec::with_capacity(4 + Signature::BYTE_SIZE);
    bytes.extend_from_slice(&hash.to_be_bytes());
    bytes.extend_from_slice(&signature.to_bytes());
    format!("{SIG_PREFIX}{name} {}\n", STANDARD.encode(bytes))
}

/// A public key that checks signed notes: the key's name and its Ed25519
/// public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    hash: u32,
    key: VerifyingKey,
}

impl Verifier {
    /// The verifier for `key` under the name `name`.
    ///
    /// # Errors
    /// [`NoteError::InvalidKeyName`] if the name is empty or holds white space
    /// or `+`.
    pub fn new(name: impl Into<String>, key: VerifyingKey) -> Result<Self, NoteError> {
        let name = name.into();
        check_key_name(&name)?;
        Ok(Self::with_valid_name(name, key))
    }

    /// [`new`](Self::new) for a name already checked.
    pub(crate) fn with_valid_name(name: String, key: VerifyingKey) -> Self {
        let hash = key_hash(&name, &key);
        Self { name, hash, key }
    }

    /// Parses a verifier key, `<name>+<8 hex digits>+<base64(0x01 || key)>`.
    ///
    /// # Errors
    /// [`NoteError::InvalidKeyName`] or [`NoteError::InvalidKey`] if the text is
    /// not a verifier key, names another algorithm, or its key hash does not
    /// match its name and key.
    pub fn from_text(text: &str) -> Result<Self, NoteError> {
        let (name, hash, key) = parse_key_parts(text.trim_end_matches('\n'))?;
        let key = VerifyingKey::from_bytes(&key)
            .map_err(|_| NoteError::InvalidKey("not an Ed25519 public key"))?;
        let verifier = Self::new(name, key)?;
        if verifier.hash != hash {
            return Err(NoteError::InvalidKey("the key hash does not match the key"));
        }
        Ok(verifier)
    }

    /// The key's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key hash (see the [module docs](self)).
    #[must_use]
    pub fn key_hash(&self) -> u32 {
        self.hash
    }

    /// The Ed25519 public key.
    #[must_use]
    pub fn public_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Checks that `note` is a well-formed signed note with a valid signature by
    /// this key, and returns its body. Signatures by other keys are ignored.
    ///
    /// # Errors
    /// [`NoteError::Malformed`] if the note is not a signed note (no blank line
    /// before the signatures, no final newline, a bad signature line, bad
    /// base64, a control character, more than 100 signatures);
    /// [`NoteError::UnknownSigner`] if no signature line is by this key;
    /// [`NoteError::WrongKeyHash`] if one has this key's name but another key
    /// hash; [`NoteError::BadSignature`] if this key's signature does not
    /// verify.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(NoteError::Malformed("a note holds no control characters"));
        }
        let Some(split) = note.rfind("\n\n") else {
            return Err(NoteError::Malformed("no blank line before the signatures"));
        };
        let (body, signatures) = (&note[..=split], &note[split + 2..]);
        let Some(signatures) = signatures.strip_suffix('\n') else {
            return Err(NoteError::Malformed("a note must end with a newline"));
        };
        let mut verified = false;
        let mut wrong_hash = false;
        for (count, line) in signatures.split('\n').enumerate() {
            if count == MAX_SIGNATURES {
                return Err(NoteError::Malformed("too many signatures"));
            }
            let (name, hash, signature) = parse_signature_line(line)?;
            if name != self.name {
                continue;
            }
            if hash != self.hash {
                wrong_hash = true;
                continue;
            }
            let signature = Signature::from_slice(&signature)
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            self.key
                .verify_strict(body.as_bytes(), &signature)
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            verified = true;
        }
        match (verified, wrong_hash) {
            (true, _) => Ok(body),
            (false, true) => Err(NoteError::WrongKeyHash(self.name.clone())),
            (false, false) => Err(NoteError::UnknownSigner(self.name.clone())),
        }
    }

    /// Checks a signed checkpoint as [`open`](Self::open) does, and parses its
    /// body.
    ///
    /// # Errors
    /// Those of [`open`](Self::open), and [`NoteError::Malformed`] if the
    /// signed body is not a checkpoint.
    pub fn verify_note(&self, note: &str) -> Result<Checkpoint, NoteError> {
        Checkpoint::parse(self.open(note)?)
    }
}

impl fmt::Display for Verifier {
    /// The verifier key text, `<name>+<8 hex digits>+<base64(0x01 || key)>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.hash,
            STANDARD.encode(key)
        )
    }
}

impl FromStr for Verifier {
    type Err = NoteError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::from_text(text)
    }
}

/// `<name>+<8 hex digits>+<base64(0x01 || 32 bytes)>`, the form of verifier
/// keys and (after `PRIVATE+KEY+`) private keys: the name, key hash and key.
pub(crate) fn parse_key_parts(
    text: &str,
) -> Result<(&str, u32, zeroize::Zeroizing<[u8; 32]>), NoteError> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::InvalidKey("key text is <name>+<hash>+<key>"));
    };
    check_key_name(name)?;
    Ok((name, parse_key_hash(hash)?, decode_alg_key(key)?))
}

/// Eight hex digits.
fn parse_key_hash(text: &str) -> Result<u32, NoteError> {
    const BAD: NoteError = NoteError::InvalidKey("a key hash is 8 hex digits");
    let bytes: [u8; 4] = hex::decode(text)
        .map_err(|_| BAD)?
        .try_into()
        .map_err(|_| BAD)?;
    Ok(u32::from_be_bytes(bytes))
}

/// `base64(0x01 || 32 bytes)`: the 32 bytes.
fn decode_alg_key(text: &str) -> Result<zeroize::Zeroizing<[u8; 32]>, NoteError> {
    let bytes = zeroize::Zeroizing::new(
        STANDARD
            .decode(text)
            .map_err(|_| NoteError::InvalidKey("the key is not standard base64"))?,
    );
    match bytes.split_first() {
        Some((&ALG_ED25519, key)) => {
            let key: [u8; 32] = key
                .try_into()
                .map_err(|_| NoteError::InvalidKey("an Ed25519 key is 32 bytes"))?;
            Ok(zeroize::Zeroizing::new(key))
        }
        _ => Err(NoteError::InvalidKey(
            "not an Ed25519 key (algorithm byte 0x01)",
        )),
    }
}

/// `— <name> <base64(hash || signature)>`: the name, the key hash and the
/// signature bytes.
fn parse_signature_line(line: &str) -> Result<(&str, u32, Vec<u8>), NoteError> {
    const BAD: NoteError = NoteError::Malformed("a signature line is '\u{2014} <name> <base64>'");
    let rest = line.strip_prefix(SIG_PREFIX).ok_or(BAD)?;
    let (name, b64) = rest.split_once(' ').ok_or(BAD)?;
    if check_key_name(name).is_err() || b64.is_empty() {
        return Err(BAD);
    }
    let bytes = STANDARD
        .decode(b64)
        .map_err(|_| NoteError::Malformed("a signature is not standard base64"))?;
    if bytes.len() < 5 {
        return Err(NoteError::Malformed("a signature is at least 5 bytes"));
    }
    let hash = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    Ok((name, hash, bytes[4..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Signer;

    /// The example key and note of the Go `note` package's documentation.
    const GO_PRIVATE_KEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VERIFIER_KEY: &str =
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\n\
        then you don't know what your problem is.\n\
        \n\
        \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn signer() -> Signer {
        Signer::generate("ferry.example/log").unwrap()
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint::new("ferry.example/log", 7, [9; 32]).unwrap()
    }

    #[test]
    fn the_go_note_packages_example_verifies_and_is_reproduced() {
        let verifier = Verifier::from_text(GO_VERIFIER_KEY).unwrap();
        assert_eq!(verifier.to_string(), GO_VERIFIER_KEY);
        assert_eq!(
            verifier.open(GO_NOTE).unwrap(),
            "If you think cryptography is the answer to your problem,\n\
             then you don't know what your problem is.\n"
        );
        let signer = Signer::from_key_text(GO_PRIVATE_KEY).unwrap();
        assert_eq!(signer.verifier(), verifier);
        // Ed25519 is deterministic: the same key signs the same body alike.
        let body = verifier.open(GO_NOTE).unwrap();
        assert_eq!(signer.sign_body(body), GO_NOTE);
    }

    #[test]
    fn a_signed_checkpoint_round_trips() {
        let signer = signer();
        let note = signer.sign_checkpoint(&checkpoint());
        assert_eq!(signer.verifier().verify_note(&note).unwrap(), checkpoint());
        let (body, signature) = note.split_once("\n\n").unwrap();
        assert_eq!(format!("{body}\n"), checkpoint().body());
        let b64 = signature
            .strip_prefix("\u{2014} ferry.example/log ")
            .and_then(|s| s.strip_suffix('\n'))
            .unwrap();
        let bytes = STANDARD.decode(b64).unwrap();
        assert_eq!(bytes.len(), 68);
        assert_eq!(bytes[..4], signer.key_hash().to_be_bytes());
    }

    #[test]
    fn the_key_hash_is_the_first_four_bytes_of_sha256_of_name_newline_alg_key() {
        let verifier = signer().verifier();
        let mut input = b"ferry.example/log\n\x01".to_vec();
        input.extend_from_slice(verifier.public_key().as_bytes());
        let digest = Sha256::digest(&input);
        assert_eq!(verifier.key_hash().to_be_bytes(), digest[..4]);
    }

    #[test]
    fn verifier_text_round_trips() {
        let verifier = signer().verifier();
        let text = verifier.to_string();
        let (name, rest) = text.split_once('+').unwrap();
        let (hash, key) = rest.split_once('+').unwrap();
        assert_eq!(name, "ferry.example/log");
        assert_eq!(hash, format!("{:08x}", verifier.key_hash()));
        assert_eq!(STANDARD.decode(key).unwrap()[0], 0x01);
        assert_eq!(text.parse::<Verifier>().unwrap(), verifier);
        assert_eq!(Verifier::from_text(&format!("{text}\n")).unwrap(), verifier);
    }

    #[test]
    fn bad_verifier_keys_are_refused() {
        let text = signer().verifier().to_string();
        let (name, rest) = text.split_once('+').unwrap();
        let (hash, key) = rest.split_once('+').unwrap();
        let raw = STANDARD.decode(key).unwrap();
        let other_alg = STANDARD.encode([&[0x02], &raw[1..]].concat());
        let short = STANDARD.encode(&raw[..32]);
        let bad_hash = format!("{:08x}", u32::from_str_radix(hash, 16).unwrap() ^ 1);
        let cases = [
            String::new(),
            name.to_owned(),
            format!("{name}+{hash}"),
            format!("{name}+{hash}+"),
            format!("+{hash}+{key}"),
            format!("a b+{hash}+{key}"),
            format!("{name}+{bad_hash}+{key}"),
            format!("{name}+{}+{key}", &hash[1..]),
            format!("{name}+0x{}+{key}", &hash[2..]),
            format!("{name}+zzzzzzzz+{key}"),
            format!("{name}+{hash}+{key}="),
            format!("{name}+{hash}+{}", &key[..43]),
            format!("{name}+{hash}+!{key}"),
            format!("{name}+{hash}+{other_alg}"),
            format!("{name}+{hash}+{short}"),
            format!("other+{hash}+{key}"),
        ];
        for case in cases {
            assert!(
                matches!(
                    Verifier::from_text(&case),
                    Err(NoteError::InvalidKey(_) | NoteError::InvalidKeyName)
                ),
                "accepted {case:?}"
            );
        }
    }

    #[test]
    fn key_names_must_be_non_empty_without_spaces_or_plus() {
        for bad in ["", "a b", "a+b", "tab\t", "nbsp\u{a0}x", "a\nb"] {
            assert!(
                matches!(check_key_name(bad), Err(NoteError::InvalidKeyName)),
                "{bad:?}"
            );
            assert!(Signer::generate(bad).is_err());
        }
        for good in ["a", "ferry.example.com/log", "\u{2014}dash"] {
            assert!(check_key_name(good).is_ok());
        }
    }

    #[test]
    fn signatures_by_other_keys_are_ignored_but_not_enough() {
        let (ours, theirs) = (signer(), Signer::generate("someone.else").unwrap());
        let note = ours.sign_checkpoint(&checkpoint());
        let their_line = theirs
            .sign_checkpoint(&checkpoint())
            .split_once("\n\n")
            .unwrap()
            .1
            .to_owned();
        // Ours plus theirs, in either order: fine.
        let both = format!("{note}{their_line}");
        assert_eq!(ours.verifier().verify_note(&both).unwrap(), checkpoint());
        let (body, our_line) = note.split_once("\n\n").unwrap();
        let reversed = format!("{body}\n\n{their_line}{our_line}");
        assert_eq!(
            ours.verifier().verify_note(&reversed).unwrap(),
            checkpoint()
        );
        // Only theirs: refused.
        let only_theirs = theirs.sign_checkpoint(&checkpoint());
        assert!(matches!(
            ours.verifier().verify_note(&only_theirs),
            Err(NoteError::UnknownSigner(name)) if name == "ferry.example/log"
        ));
    }

    #[test]
    fn a_signature_with_our_name_but_another_key_hash_is_refused() {
        let ours = signer();
        // Another key under the same name.
        let impostor = Signer::generate("ferry.example/log").unwrap();
        let note = impostor.sign_checkpoint(&checkpoint());
        assert!(matches!(
            ours.verifier().verify_note(&note),
            Err(NoteError::WrongKeyHash(_))
        ));
        // Our own signature with its key hash changed.
        let note = ours.sign_checkpoint(&checkpoint());
        let tampered = edit_signature(&note, |bytes| bytes[0] ^= 1);
        assert!(matches!(
            ours.verifier().verify_note(&tampered),
            Err(NoteError::WrongKeyHash(_))
        ));
    }

    /// `note` with its (single) signature's bytes changed by `edit`.
    fn edit_signature(note: &str, edit: impl FnOnce(&mut Vec<u8>)) -> String {
        let (body, line) = note.split_once("\n\n").unwrap();
        let (name, b64) = line.trim_end().rsplit_once(' ').unwrap();
        let mut bytes = STANDARD.decode(b64).unwrap();
        edit(&mut bytes);
        format!("{body}\n\n{name} {}\n", STANDARD.encode(bytes))
    }

    #[test]
    fn a_changed_signature_is_refused() {
        let signer = signer();
        let verifier = signer.verifier();
        let note = signer.sign_checkpoint(&checkpoint());
        for i in [4, 20, 35, 67] {
            let tampered = edit_signature(&note, |bytes| bytes[i] ^= 0x10);
            assert!(
                matches!(
                    verifier.verify_note(&tampered),
                    Err(NoteError::BadSignature(_))
                ),
                "byte {i}"
            );
        }
        for edit in [
            (|b: &mut Vec<u8>| {
                b.pop();
            }) as fn(&mut Vec<u8>),
            |b| b.push(0),
        ] {
            let tampered = edit_signature(&note, edit);
            assert!(matches!(
                verifier.verify_note(&tampered),
                Err(NoteError::BadSignature(_))
            ));
        }
    }

    #[test]
    fn a_changed_body_is_refused() {
        let signer = signer();
        let verifier = signer.verifier();
        let note = signer.sign_checkpoint(&checkpoint());
        let cases = [
            note.replacen("\n7\n", "\n8\n", 1),
            note.replacen("ferry.example/log\n", "ferry.example/lag\n", 1),
            note.replacen("CQkJ", "CQkK", 1),
            note.replacen("\n\n", "\nextension\n\n", 1),
            format!("x{note}"),
        ];
        for tampered in cases {
            assert_ne!(tampered, note);
            assert!(
                matches!(
                    verifier.verify_note(&tampered),
                    Err(NoteError::BadSignature(_))
                ),
                "accepted {tampered:?}"
            );
        }
    }

    #[test]
    fn malformed_notes_are_refused() {
        let signer = signer();
        let verifier = signer.verifier();
        let note = signer.sign_checkpoint(&checkpoint());
        let (body, line) = note.split_once("\n\n").unwrap();
        let b64 = line.trim_end().rsplit_once(' ').unwrap().1;
        let many = format!("{body}\n\n{}", line.repeat(101));
        let cases = [
            String::new(),
            note.trim_end().to_owned(),
            body.to_owned() + "\n",
            note.replacen("\n\n", "\n", 1),
            note.replace('\u{2014}', "-"),
            note.replace("\u{2014} ", "\u{2014}"),
            format!("{body}\n\n\u{2014} ferry.example/log\n"),
            format!("{body}\n\n\u{2014} ferry.example/log \n"),
            format!("{body}\n\n\u{2014}  {b64}\n"),
            format!("{body}\n\n\u{2014} ferry.example/log {b64}!\n"),
            format!(
                "{body}\n\n\u{2014} ferry.example/log {}\n",
                b64.trim_end_matches('=')
            ),
            format!("{body}\n\n\u{2014} ferry.example/log  {b64}\n"),
            format!("{body}\n\n\u{2014} ferry.example/log AAAAAA==\n"),
            format!("{note}\n"),
            note.replacen("\n7\n", "\n7\r\n", 1),
            note.replacen("ferry", "fe\0rry", 1),
            many,
        ];
        for bad in cases {
            assert!(
                matches!(verifier.verify_note(&bad), Err(NoteError::Malformed(_))),
                "accepted {bad:?}: {:?}",
                verifier.verify_note(&bad)
            );
        }
        // A correctly signed body that is not a checkpoint.
        let not_a_checkpoint = signer.sign_body("hello\n");
        assert!(matches!(
            verifier.verify_note(&not_a_checkpoint),
            Err(NoteError::Malformed(_))
        ));
        assert_eq!(verifier.open(&not_a_checkpoint).unwrap(), "hello\n");
    }

    #[test]
    fn every_truncation_and_one_character_change_is_refused_without_panicking() {
        let signer = signer();
        let verifier = signer.verifier();
        let note = signer.sign_checkpoint(&checkpoint());
        let boundaries: Vec<usize> = note.char_indices().map(|(i, _)| i).collect();
        for &end in &boundaries {
            assert!(verifier.verify_note(&note[..end]).is_err(), "cut at {end}");
        }
        // One change per position, the kind cycling (each Ed25519 check is slow
        // in unoptimised test builds).
        let replacements = ["", "A", "0", " ", "\n", "+", "=", "\u{2014}", "\u{e9}"];
        for (n, &at) in boundaries.iter().enumerate() {
            let next = boundaries.get(n + 1).copied().unwrap_or(note.len());
            let replacement = replacements[n % replacements.len()];
            let changed = format!("{}{replacement}{}", &note[..at], &note[next..]);
            if changed != note {
                assert!(verifier.verify_note(&changed).is_err(), "{changed:?}");
            }
        }
    }
}
