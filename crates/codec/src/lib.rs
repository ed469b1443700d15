//! Dictionary codecs: json, Python pickle ("binary") and the legacy xml form.
//!
//! Every dictionary that arrives is decoded *and validated* here: the top level must
//! be a dictionary, nesting and size are bounded by [`Limits`], and nothing in the
//! input is ever executed (pickles are read as data only; xml refuses DOCTYPE and
//! entities). Decoding gives a [`Dict`] whose key order is the order sent.
//! Encoding writes what the legacy Python programs wrote, so payloads interoperate:
//! `json.dumps(d)`, a pickle Python loads back to the same dict, and
//! `ElementTree.tostring` of `<root><KEY>str(value)</KEY>...</root>`.

mod error;
mod json;
mod pickle;
mod python;
mod xml;

pub use error::CodecError;
pub use python::python_str;
pub use xml::check_xml_keys;

use ferry_protocol::Serialization;

/// A decoded dictionary; keys keep the order in which they were sent.
pub type Dict = serde_json::Map<String, serde_json::Value>;

/// Bounds applied to every received dictionary.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest serialized dictionary accepted, in bytes. A pickle may also not
    /// expand (through shared references) to more than twice this much data.
    pub max_bytes: usize,
    /// The deepest nesting accepted; the top-level dictionary is level 1.
    pub max_depth: usize,
}

impl Default for Limits {
    /// 64 MiB, 64 levels.
    fn default() -> Self {
        Limits {
            max_bytes: 64 * 1024 * 1024,
            max_depth: 64,
        }
    }
}

/// Decodes and validates a received dictionary.
///
/// `Serialization::Txt` is refused: text transfers carry no dictionary.
pub fn decode(
    serialization: Serialization,
    bytes: &[u8],
    limits: &Limits,
) -> Result<Dict, CodecError> {
    if bytes.len() > limits.max_bytes {
        return Err(CodecError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    match serialization {
        Serialization::Txt => Err(CodecError::NotADictionarySerialization),
        Serialization::Json => json::decode(bytes, limits),
        Serialization::Binary => pickle::decode(bytes, limits),
        Serialization::Xml => xml::decode(bytes),
    }
}

/// Encodes a dictionary the way the legacy Python programs did (see the crate docs).
pub fn encode(serialization: Serialization, dict: &Dict) -> Result<Vec<u8>, CodecError> {
    match serialization {
        Serialization::Txt => Err(CodecError::NotADictionarySerialization),
        Serialization::Json => Ok(json::encode(dict)),
        Serialization::Binary => Ok(pickle::encode(dict)),
        Serialization::Xml => xml::encode(dict),
    }
}

/// The depth of a value: 0 for a scalar, 1 + the deepest child for a container.
fn nesting_depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => 1 + items.iter().map(nesting_depth).max().unwrap_or(0),
        serde_json::Value::Object(map) => 1 + map.values().map(nesting_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// How a value's kind reads in an error message ("a list", "a string", ...).
fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "None",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a dictionary",
    }
}

/// The dictionary inside `value`, or the error saying what the top level is instead.
fn top_level_dict(value: serde_json::Value) -> Result<Dict, CodecError> {
    match value {
        serde_json::Value::Object(map) => Ok(map),
        other => Err(CodecError::NotADictionary(kind_of(&other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The dictionary inside a `json!` object (empty for anything else).
    pub(crate) fn dict(v: serde_json::Value) -> Dict {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn txt_carries_no_dictionary() {
        let err = decode(Serialization::Txt, b"{}", &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("plain text"), "{err}");
        assert!(encode(Serialization::Txt, &Dict::new()).is_err());
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let limits = Limits {
            max_bytes: 4,
            max_depth: 64,
        };
        let err = decode(Serialization::Json, b"{\"a\": 1}", &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dictionary of 8 bytes exceeds the limit of 4 bytes"
        );
    }

    #[test]
    fn every_format_round_trips() {
        let dict = json!({"b": 1, "a": "x", "c": null})
            .as_object()
            .unwrap()
            .clone();
        for s in [Serialization::Json, Serialization::Binary] {
            let bytes = encode(s, &dict).unwrap();
            assert_eq!(decode(s, &bytes, &Limits::default()).unwrap(), dict);
        }
        let xml = encode(Serialization::Xml, &dict).unwrap();
        let back = decode(Serialization::Xml, &xml, &Limits::default()).unwrap();
        assert_eq!(
            back,
            *json!({"b": "1", "a": "x", "c": "None"})
                .as_object()
                .unwrap()
        );
    }

    #[test]
    fn depth_counts_the_top_level_as_one() {
        assert_eq!(nesting_depth(&json!({})), 1);
        assert_eq!(nesting_depth(&json!({"a": [1, {"b": 2}]})), 3);
        assert_eq!(nesting_depth(&json!(3)), 0);
    }
}
