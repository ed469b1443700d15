//! Item metadata: what the listing shows, and what each sealed record carries as its
//! authenticated metadata block (as JSON), so that the index can be rebuilt from
//! the records alone.

use ferry_protocol::{DataType, Serialization};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{ItemId, NewItem};

/// Everything known about a committed item.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ItemMeta {
    /// The item's id.
    pub id: ItemId,
    /// Text or dictionary.
    pub data_type: DataType,
    /// How the content is serialized.
    pub serialization: Serialization,
    /// Whether the transfer's packets were Fernet tokens on the wire.
    pub encrypted_in_transit: bool,
    /// The sending peer, `"ip:port"`.
    pub peer: String,
    /// The file name the client announced, if any.
    pub name: Option<String>,
    /// When the item began to arrive.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// Plaintext size in bytes.
    pub size: u64,
    /// SHA-256 of the plaintext, lowercase hex.
    pub sha256: String,
    /// The id of the storage key the item is sealed with.
    pub key_id: String,
    /// Whether the item is on legal hold (see [`Store::set_hold`](crate::Store::set_hold)).
    /// Not part of the sealed record: the store keeps holds apart and fills this
    /// in when it answers. Left out of the JSON when false, so that the record
    /// bytes of an item are what they were before holds existed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
    /// The index of the item's `stored` leaf in the store's log (see
    /// [`Ledger`](crate::Ledger)), if the store keeps one. Not part of the sealed
    /// record either: the leaf is appended beside the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
}

impl ItemMeta {
    /// The metadata of a finished item.
    pub(crate) fn new(
        id: ItemId,
        item: NewItem,
        received_at: OffsetDateTime,
        size: u64,
        sha256: [u8; 32],
        key_id: String,
    ) -> ItemMeta {
        ItemMeta {
            id,
            data_type: item.data_type,
            serialization: item.serialization,
            encrypted_in_transit: item.encrypted_in_transit,
            peer: item.peer,
            name: item.name,
            received_at,
            size,
            sha256: hex::encode(sha256),
            key_id,
            held: false,
            log_index: None,
        }
    }

    /// The bytes sealed into the record's metadata block.
    pub(crate) fn to_record_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("item metadata always serializes")
    }

    /// Parses a record's metadata block.
    pub(crate) fn from_record_bytes(bytes: &[u8]) -> Result<ItemMeta, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Whether the item came from `source`: the peer's IP, or a prefix of
    /// `"ip:port"` that covers the whole IP.
    #[cfg(test)]
    pub(crate) fn is_from(&self, source: &str) -> bool {
        peer_is_from(&self.peer, source)
    }
}

/// Whether a file name `name` has `wanted` in it, ignoring case (an item
/// without a name has none).
pub(crate) fn name_has(name: Option<&str>, wanted: &str) -> bool {
    name.is_some_and(|name| name.to_lowercase().contains(&wanted.to_lowercase()))
}

/// Whether `peer` (`"ip:port"`) is `source`: its IP, or a prefix of `"ip:port"`
/// that covers the whole IP.
pub(crate) fn peer_is_from(peer: &str, source: &str) -> bool {
    let ip = match peer.rsplit_once(':') {
        Some((ip, _port)) => ip,
        None => peer,
    };
    let bare = |s: &str| s.trim_start_matches('[').trim_end_matches(']').to_owned();
    bare(ip) == bare(source) || (source.len() > ip.len() && peer.starts_with(source))
}

/// The bytes of a SHA-256 written as 64 lowercase hex digits (the only form
/// [`ItemMeta`] holds), so that they encode back to the same text.
pub(crate) fn digest_bytes(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(peer: &str) -> ItemMeta {
        let item = NewItem {
            data_type: DataType::Dictionary,
            serialization: Serialization::Json,
            encrypted_in_transit: true,
            peer: peer.into(),
            name: Some("a.json".into()),
        };
        ItemMeta::new(
            ItemId::new(),
            item,
            OffsetDateTime::now_utc(),
            3,
            [7; 32],
            "k1".into(),
        )
    }

    #[test]
    fn metadata_round_trips_through_record_bytes() {
        let m = meta("127.0.0.1:5000");
        let bytes = m.to_record_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["data_type"], "dictionary");
        assert_eq!(json["serialization"], "json");
        assert_eq!(json["sha256"], "07".repeat(32));
        assert!(json["received_at"].as_str().unwrap().contains('T'));
        assert_eq!(ItemMeta::from_record_bytes(&bytes).unwrap(), m);
    }

    /// The hold state is not sealed: an unheld item's record bytes are those of a
    /// store from before holds, and such bytes read back as unheld.
    #[test]
    fn the_hold_state_is_left_out_of_the_record_bytes_unless_set() {
        let m = meta("127.0.0.1:5000");
        let json: serde_json::Value = serde_json::from_slice(&m.to_record_bytes()).unwrap();
        assert!(json.get("held").is_none(), "{json}");
        let held = ItemMeta { held: true, ..m };
        let json: serde_json::Value = serde_json::from_slice(&held.to_record_bytes()).unwrap();
        assert_eq!(json["held"], true);
        assert_eq!(
            ItemMeta::from_record_bytes(&held.to_record_bytes()).unwrap(),
            held
        );
    }

    #[test]
    fn source_matches_the_ip_or_a_prefix_covering_it() {
        let m = meta("10.0.0.1:4242");
        for yes in ["10.0.0.1", "10.0.0.1:", "10.0.0.1:42", "10.0.0.1:4242"] {
            assert!(m.is_from(yes), "{yes}");
        }
        for no in ["10.0.0.10", "10.0.0", "10.0.0.1:5", "10.0.0.1:42421", ""] {
            assert!(!m.is_from(no), "{no}");
        }
        let v6 = meta("[::1]:80");
        assert!(v6.is_from("::1"));
        assert!(v6.is_from("[::1]"));
        assert!(v6.is_from("[::1]:8"));
        assert!(!v6.is_from("::"));
    }
}
