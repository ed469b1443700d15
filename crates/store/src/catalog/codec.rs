//! The bytes of one catalog entry: a small binary form of [`ItemMeta`] (without its
//! id, which is the key, and without `held`, kept apart) and the entry's location.
//!
//! ```text
//! version 1 | flags | seconds (zigzag varint) | nanoseconds (varint) | UTC offset s (zigzag varint)
//! | size (varint) | sha256: 32 bytes if flags.DIGEST, else a string | peer | [name] | key id
//! | [log index (varint)] | location (the rest)
//! ```
//!
//! A string is its length (varint) then its UTF-8 bytes. Every entry comes back
//! exactly as it was put. [`Fields`] reads an entry without copying its strings,
//! so that a listing can test its filters before it builds an [`ItemMeta`].

use ferry_protocol::{DataType, Serialization};
use time::{OffsetDateTime, UtcOffset};

use super::CatalogEntry;
use crate::meta::digest_bytes;
use crate::{ItemId, ItemMeta};

const VERSION: u8 = 1;

const DICTIONARY: u8 = 1 << 0;
/// Two bits of serialization.
const SERIALIZATION_SHIFT: u8 = 1;
const ENCRYPTED: u8 = 1 << 3;
const NAME: u8 = 1 << 4;
const LOG_INDEX: u8 = 1 << 5;
/// The digest is 64 lowercase hex digits, kept as its 32 bytes.
const DIGEST: u8 = 1 << 6;

/// The bytes of `entry`.
pub(super) fn encode(entry: &CatalogEntry) -> Vec<u8> {
    let meta = &entry.meta;
    let digest = digest_bytes(&meta.sha256);
    let mut flags = (serialization_code(meta.serialization) << SERIALIZATION_SHIFT)
        | u8::from(meta.data_type == DataType::Dictionary);
    if meta.encrypted_in_transit {
        flags |= ENCRYPTED;
    }
    if meta.name.is_some() {
        flags |= NAME;
    }
    if meta.log_index.is_some() {
        flags |= LOG_INDEX;
    }
    if digest.is_some() {
        flags |= DIGEST;
    }
    let mut out = Vec::with_capacity(96 + meta.peer.len() + entry.location.len());
    out.extend_from_slice(&[VERSION, flags]);
    let at = meta.received_at;
    put_varint(&mut out, zigzag(at.unix_timestamp()));
    put_varint(&mut out, u64::from(at.nanosecond()));
    put_varint(&mut out, zigzag(i64::from(at.offset().whole_seconds())));
    put_varint(&mut out, meta.size);
    match digest {
        Some(bytes) => out.extend_from_slice(&bytes),
        None => put_str(&mut out, &meta.sha256),
    }
    put_str(&mut out, &meta.peer);
    if let Some(name) = &meta.name {
        put_str(&mut out, name);
    }
    put_str(&mut out, &meta.key_id);
    if let Some(index) = meta.log_index {
        put_varint(&mut out, index);
    }
    out.extend_from_slice(&entry.location);
    out
}

/// An entry read in place.
#[derive(Debug)]
pub(super) struct Fields<'a> {
    pub data_type: DataType,
    pub serialization: Serialization,
    pub encrypted_in_transit: bool,
    pub received_at: OffsetDateTime,
    pub size: u64,
    sha256: Digest<'a>,
    pub peer: &'a str,
    pub name: Option<&'a str>,
    key_id: &'a str,
    log_index: Option<u64>,
    location: &'a [u8],
}

#[derive(Debug)]
enum Digest<'a> {
    Bytes(&'a [u8]),
    Text(&'a str),
}

impl<'a> Fields<'a> {
    /// Reads `bytes`; `None` if they are not an entry of this version.
    pub(super) fn read(bytes: &'a [u8]) -> Option<Fields<'a>> {
        let mut r = Reader(bytes);
        let [VERSION, flags] = [r.byte()?, r.byte()?] else {
            return None;
        };
        let seconds = unzigzag(r.varint()?);
        let nanos = u32::try_from(r.varint()?).ok()?;
        let offset = i32::try_from(unzigzag(r.varint()?)).ok()?;
        let received_at = OffsetDateTime::from_unix_timestamp(seconds)
            .ok()?
            .replace_nanosecond(nanos)
            .ok()?
            .checked_to_offset(UtcOffset::from_whole_seconds(offset).ok()?)?;
        let size = r.varint()?;
        let sha256 = if flags & DIGEST != 0 {
            Digest::Bytes(r.take(32)?)
        } else {
            Digest::Text(r.str()?)
        };
        let peer = r.str()?;
        let name = if flags & NAME != 0 {
            Some(r.str()?)
        } else {
            None
        };
        let key_id = r.str()?;
        let log_index = if flags & LOG_INDEX != 0 {
            Some(r.varint()?)
        } else {
            None
        };
        Some(Fields {
            data_type: if flags & DICTIONARY != 0 {
                DataType::Dictionary
            } else {
                DataType::Text
            },
            serialization: serialization_of((flags >> SERIALIZATION_SHIFT) & 0b11),
            encrypted_in_transit: flags & ENCRYPTED != 0,
            received_at,
            size,
            sha256,
            peer,
            name,
            key_id,
            log_index,
            location: r.0,
        })
    }

    /// The entry's location.
    pub(super) fn location(&self) -> &'a [u8] {
        self.location
    }

    /// The whole entry of item `id`, on hold if `held`.
    pub(super) fn to_entry(&self, id: ItemId, held: bool) -> CatalogEntry {
        CatalogEntry {
            meta: self.to_meta(id, held),
            location: self.location.to_vec(),
        }
    }

    /// The metadata of item `id`, on hold if `held`.
    pub(super) fn to_meta(&self, id: ItemId, held: bool) -> ItemMeta {
        ItemMeta {
            id,
            data_type: self.data_type,
            serialization: self.serialization,
            encrypted_in_transit: self.encrypted_in_transit,
            peer: self.peer.to_owned(),
            name: self.name.map(str::to_owned),
            received_at: self.received_at,
            size: self.size,
            sha256: match self.sha256 {
                Digest::Bytes(bytes) => hex::encode(bytes),
                Digest::Text(text) => text.to_owned(),
            },
            key_id: self.key_id.to_owned(),
            held,
            log_index: self.log_index,
        }
    }
}

fn serialization_code(s: Serialization) -> u8 {
    match s {
        Serialization::Txt => 0,
        Serialization::Binary => 1,
        Serialization::Json => 2,
        Serialization::Xml => 3,
    }
}

fn serialization_of(code: u8) -> Serialization {
    match code {
        0 => Serialization::Txt,
        1 => Serialization::Binary,
        2 => Serialization::Json,
        _ => Serialization::Xml,
    }
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// The unread rest of an entry.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn str(&mut self) -> Option<&'a str> {
        let len = usize::try_from(self.varint()?).ok()?;
        std::str::from_utf8(self.take(len)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn entry(sha256: &str, name: Option<&str>, log_index: Option<u64>) -> CatalogEntry {
        CatalogEntry {
            meta: ItemMeta {
                id: ItemId::new(),
                data_type: DataType::Dictionary,
                serialization: Serialization::Xml,
                encrypted_in_transit: true,
                peer: "[::1]:4242".into(),
                name: name.map(Into::into),
                received_at: datetime!(1969-12-31 23:59:59.123456789 +02:30),
                size: 1 << 40,
                sha256: sha256.into(),
                key_id: "storage-7".into(),
                held: false,
                log_index,
            },
            location: b"bucket/items/01J.rec".to_vec(),
        }
    }

    #[test]
    fn entries_come_back_exactly() {
        for case in [
            entry(&"ab".repeat(32), Some("a.xml"), Some(u64::MAX)),
            entry(&"AB".repeat(32), None, None),
            entry("not a digest", Some(""), Some(0)),
        ] {
            let bytes = encode(&case);
            let fields = Fields::read(&bytes).expect("reads back");
            let back = fields.to_entry(case.meta.id, false);
            assert_eq!(back.meta, case.meta);
            assert_eq!(back.location, case.location);
            assert_eq!(
                back.meta.received_at.offset(),
                case.meta.received_at.offset()
            );
        }
    }

    #[test]
    fn a_packed_digest_takes_its_32_bytes() {
        let packed = encode(&entry(&"ab".repeat(32), None, None)).len();
        let text = encode(&entry(&"AB".repeat(32), None, None)).len();
        assert_eq!(text - packed, 33);
    }

    #[test]
    fn truncated_or_unknown_bytes_are_refused() {
        let bytes = encode(&entry(&"ab".repeat(32), Some("n"), Some(3)));
        let location_at = bytes.len() - b"bucket/items/01J.rec".len();
        for cut in 0..location_at {
            assert!(Fields::read(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut other = bytes.clone();
        other[0] = 2;
        assert!(Fields::read(&other).is_none());
    }

    #[test]
    fn varints_round_trip_at_their_edges() {
        for n in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, n);
            assert_eq!(Reader(&out).varint(), Some(n));
        }
        for n in [0, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(n)), n);
        }
    }
}
