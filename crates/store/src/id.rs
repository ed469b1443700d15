//! Item ids: ULIDs, so that ids sort in the order items began.
//!
//! An [`ItemId`] can only be made by [`ItemId::new`] or by parsing a ULID, so its
//! text (26 Crockford base32 characters) is always safe to use as a file name.

use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::{Generator, Ulid};

use crate::StoreError;

/// The id of a stored item: a ULID, ordered by the time the item began.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemId(Ulid);

/// Ids made in one process are strictly increasing, even within a millisecond.
static GENERATOR: Mutex<Generator> = Mutex::new(Generator::new());

impl ItemId {
    /// A new id, greater than every id made before it by this process (unless the
    /// clock went back).
    #[allow(clippy::new_without_default)]
    pub fn new() -> ItemId {
        let mut generator = GENERATOR.lock().unwrap_or_else(PoisonError::into_inner);
        // The generator fails only when 2^80 ids were made in one millisecond.
        ItemId(generator.generate().unwrap_or_else(|_| Ulid::generate()))
    }

    /// Parses the text of an id; anything that is not a ULID is refused.
    pub fn parse(text: &str) -> Result<ItemId, StoreError> {
        let invalid = || StoreError::InvalidId(text.chars().take(64).collect());
        let ulid = Ulid::from_string(text).map_err(|_| invalid())?;
        // The decoder lets a first character above '7' overflow: refuse anything
        // that is not the canonical text of the value it decodes to.
        if !ulid.to_string().eq_ignore_ascii_case(text) {
            return Err(invalid());
        }
        Ok(ItemId(ulid))
    }

    /// The millisecond Unix timestamp the id carries.
    pub fn timestamp_ms(&self) -> u64 {
        self.0.timestamp_ms()
    }

    /// The 16 bytes of the ULID, big-endian.
    pub(crate) fn to_bytes(self) -> [u8; 16] {
        self.0.to_bytes()
    }

    /// The id whose 16 bytes are `bytes`.
    pub(crate) fn from_bytes(bytes: [u8; 16]) -> ItemId {
        ItemId(Ulid::from_bytes(bytes))
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for ItemId {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<ItemId, StoreError> {
        ItemId::parse(text)
    }
}

impl Serialize for ItemId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ItemId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ItemId, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        ItemId::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_increase_and_round_trip_as_text() {
        let ids: Vec<ItemId> = (0..1000).map(|_| ItemId::new()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        for id in ids {
            let text = id.to_string();
            assert_eq!(text.len(), 26);
            assert_eq!(ItemId::parse(&text).unwrap(), id);
            assert_eq!(text.parse::<ItemId>().unwrap(), id);
            assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{text}\""));
            assert_eq!(
                serde_json::from_str::<ItemId>(&format!("\"{text}\"")).unwrap(),
                id
            );
        }
    }

    #[test]
    fn anything_but_a_ulid_is_refused() {
        for bad in [
            "",
            "../etc/passwd",
            "01ARZ3NDEKTSV4RRFFQ69G5FA",
            "01ARZ3NDEKTSV4RRFFQ69G5FAVV",
            "81ARZ3NDEKTSV4RRFFQ69G5FAV",
            "01ARZ3NDEKTSV4RRFFQ69G5F/V",
            "01ARZ3NDEKTSV4RRFFQ69G5FA.",
        ] {
            assert!(
                matches!(ItemId::parse(bad), Err(StoreError::InvalidId(_))),
                "{bad:?}"
            );
        }
        assert!(serde_json::from_str::<ItemId>("\"nope\"").is_err());
    }
}
