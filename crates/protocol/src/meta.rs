//! The meta byte of an INITIAL packet: data type, serialization, encryption flag.

use crate::ProtocolError;
use serde::{Deserialize, Serialize};

/// What a transfer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    Text,
    Dictionary,
}

/// How a transfer's content is serialized. `Binary` is a Python pickle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Serialization {
    Txt,
    Binary,
    Json,
    Xml,
}

impl DataType {
    /// The lowercase name used in logs, metadata and the legacy output.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Text => "text",
            DataType::Dictionary => "dictionary",
        }
    }
}

impl Serialization {
    /// The lowercase name used in logs, metadata and file extensions (`txt`, `binary`, `json`, `xml`).
    pub fn as_str(self) -> &'static str {
        match self {
            Serialization::Txt => "txt",
            Serialization::Binary => "binary",
            Serialization::Json => "json",
            Serialization::Xml => "xml",
        }
    }

    fn code(self) -> u8 {
        match self {
            Serialization::Txt => 0,
            Serialization::Binary => 1,
            Serialization::Json => 2,
            Serialization::Xml => 3,
        }
    }
}

/// The decoded meta byte. Only valid combinations can be built: text travels as
/// `txt`, dictionaries as `binary`, `json` or `xml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Meta {
    data_type: DataType,
    serialization: Serialization,
    encrypted: bool,
}

impl Meta {
    /// Meta for a text transfer.
    pub fn text(encrypted: bool) -> Meta {
        Meta {
            data_type: DataType::Text,
            serialization: Serialization::Txt,
            encrypted,
        }
    }

    /// Meta for a dictionary transfer; `None` for `Serialization::Txt`.
    pub fn dictionary(serialization: Serialization, encrypted: bool) -> Option<Meta> {
        (serialization != Serialization::Txt).then_some(Meta {
            data_type: DataType::Dictionary,
            serialization,
            encrypted,
        })
    }

    pub fn data_type(&self) -> DataType {
        self.data_type
    }

    pub fn serialization(&self) -> Serialization {
        self.serialization
    }

    pub fn encrypted(&self) -> bool {
        self.encrypted
    }

    /// Parses a meta byte, refusing unassigned values and invalid combinations.
    pub fn from_byte(byte: u8) -> Result<Meta, ProtocolError> {
        let bad = || ProtocolError::BadMeta(byte);
        if byte & 0x01 != 0 {
            return Err(bad());
        }
        let data_type = match byte >> 5 {
            0 => DataType::Text,
            1 => DataType::Dictionary,
            _ => return Err(bad()),
        };
        let serialization = match (byte >> 2) & 0x07 {
            0 => Serialization::Txt,
            1 => Serialization::Binary,
            2 => Serialization::Json,
            3 => Serialization::Xml,
            _ => return Err(bad()),
        };
        let encrypted = byte & 0x02 != 0;
        match data_type {
            DataType::Text if serialization == Serialization::Txt => Ok(Meta::text(encrypted)),
            DataType::Dictionary => Meta::dictionary(serialization, encrypted).ok_or_else(bad),
            DataType::Text => Err(bad()),
        }
    }

    /// The byte on the wire.
    pub fn to_byte(&self) -> u8 {
        let data_type = match self.data_type {
            DataType::Text => 0,
            DataType::Dictionary => 1,
        };
        (data_type << 5) | (self.serialization.code() << 2) | (u8::from(self.encrypted) << 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_valid_byte_round_trips_and_every_other_is_refused() {
        let mut valid = 0;
        for byte in 0..=u8::MAX {
            match Meta::from_byte(byte) {
                Ok(meta) => {
                    assert_eq!(meta.to_byte(), byte);
                    valid += 1;
                }
                Err(err) => assert_eq!(err, ProtocolError::BadMeta(byte)),
            }
        }
        // text/txt and dictionary/{binary,json,xml}, each plain or encrypted.
        assert_eq!(valid, 8);
    }

    #[test]
    fn recorded_meta_bytes_decode_as_expected() {
        let xml = Meta::from_byte(0x2c).unwrap();
        assert_eq!(
            (xml.data_type(), xml.serialization(), xml.encrypted()),
            (DataType::Dictionary, Serialization::Xml, false)
        );
        let text = Meta::from_byte(0x02).unwrap();
        assert_eq!(
            (text.data_type(), text.serialization(), text.encrypted()),
            (DataType::Text, Serialization::Txt, true)
        );
    }
}
