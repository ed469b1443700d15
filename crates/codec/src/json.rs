//! The json serialization.
//!
//! Decoding accepts UTF-8 JSON whose top level is an object, nested at most
//! [`crate::Limits::max_depth`] deep; numbers stay exact (the workspace's serde_json
//! keeps number literals) and key order is kept. Encoding is byte-for-byte Python's
//! `json.dumps(d)`: separators `", "` and `": "`, non-ASCII escaped as `\uXXXX`
//! (surrogate pairs beyond the BMP), floats as Python's repr.

use crate::{CodecError, Dict, Limits, nesting_depth, python, top_level_dict};
use serde_json::Value;

/// Decodes a json dictionary.
pub(crate) fn decode(bytes: &[u8], limits: &Limits) -> Result<Dict, CodecError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|err| {
        // serde_json stops at 128 levels on its own; that is our depth error too.
        if err.to_string().starts_with("recursion limit exceeded") {
            CodecError::TooDeep(limits.max_depth)
        } else {
            CodecError::Json(err.to_string())
        }
    })?;
    if nesting_depth(&value) > limits.max_depth {
        return Err(CodecError::TooDeep(limits.max_depth));
    }
    top_level_dict(value)
}

/// Encodes like Python's `json.dumps(d)`.
pub(crate) fn encode(dict: &Dict) -> Vec<u8> {
    let mut out = String::new();
    write_object(&mut out, dict);
    out.into_bytes()
}

fn write_object(out: &mut String, dict: &Dict) {
    out.push('{');
    for (i, (key, value)) in dict.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_string(out, key);
        out.push_str(": ");
        write_value(out, value);
    }
    out.push('}');
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(&python::number_text(n)),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

/// A JSON string with `ensure_ascii=True` escaping, as Python's json module writes it.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::dict;
    use serde_json::json;

    #[test]
    fn encodes_like_json_dumps() {
        let d = dict(
            json!({"a": {"b": [1, 2.5, null, true]}, "t": "h\u{e9}llo \u{2603} \u{1f600}\n\"\u{7f}"}),
        );
        assert_eq!(
            String::from_utf8(encode(&d)).unwrap(),
            r#"{"a": {"b": [1, 2.5, null, true]}, "t": "h\u00e9llo \u2603 \ud83d\ude00\n\"\u007f"}"#
        );
        assert_eq!(encode(&Dict::new()), b"{}");
    }

    #[test]
    fn keeps_key_order_and_big_numbers() {
        let text = br#"{"z": 1, "a": 1180591620717411303424, "m": 1e+400}"#;
        let d = decode(text, &Limits::default()).unwrap();
        assert_eq!(d.keys().collect::<Vec<_>>(), ["z", "a", "m"]);
        assert_eq!(encode(&d), text);
    }

    #[test]
    fn refuses_non_objects_and_deep_nesting() {
        let limits = Limits::default();
        assert_eq!(
            decode(b"[1]", &limits).unwrap_err().to_string(),
            "not a dictionary: the top level is a list"
        );
        let deep = format!("{}1{}", "{\"a\": ".repeat(65), "}".repeat(65));
        assert_eq!(
            decode(deep.as_bytes(), &limits).unwrap_err().to_string(),
            "dictionary nests deeper than 64 levels"
        );
        let ok = format!("{}1{}", "{\"a\": ".repeat(64), "}".repeat(64));
        assert!(decode(ok.as_bytes(), &limits).is_ok());
        let very_deep = "[".repeat(100_000);
        assert!(matches!(
            decode(very_deep.as_bytes(), &limits),
            Err(CodecError::TooDeep(64))
        ));
        assert!(matches!(
            decode(b"{\"a\": NaN}", &limits),
            Err(CodecError::Json(_))
        ));
    }
}
