//! Writing a dictionary as a pickle (protocol 4, unframed, no memo).
//!
//! Python's `pickle.loads` gives back the same dict: same keys in the same order,
//! str, int (any size, exact), float, bool, None, list and dict values. Numbers that
//! are integer literals become ints, all others floats.

use crate::Dict;
use crate::python::is_integer_literal;
use num_bigint::BigInt;
use serde_json::{Number, Value};

/// Items per APPENDS/SETITEMS batch, as CPython writes them.
const BATCH: usize = 1000;

/// The pickle of `dict`.
pub(super) fn pickle(dict: &Dict) -> Vec<u8> {
    let mut out = vec![0x80, 4];
    write_dict(&mut out, dict);
    out.push(b'.');
    out
}

fn write_dict(out: &mut Vec<u8>, dict: &Dict) {
    out.push(b'}');
    let entries: Vec<_> = dict.iter().collect();
    for chunk in entries.chunks(BATCH) {
        out.push(b'(');
        for (key, value) in chunk {
            write_str(out, key);
            write_value(out, value);
        }
        out.push(b'u');
    }
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(b'N'),
        Value::Bool(true) => out.push(0x88),
        Value::Bool(false) => out.push(0x89),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b']');
            for chunk in items.chunks(BATCH) {
                out.push(b'(');
                for item in chunk {
                    write_value(out, item);
                }
                out.push(b'e');
            }
        }
        Value::Object(map) => write_dict(out, map),
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if let Ok(short) = u8::try_from(len) {
        out.extend_from_slice(&[0x8c, short]);
    } else if let Ok(medium) = u32::try_from(len) {
        out.push(b'X');
        out.extend_from_slice(&medium.to_le_bytes());
    } else {
        out.push(0x8d);
        out.extend_from_slice(&(len as u64).to_le_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

fn write_number(out: &mut Vec<u8>, n: &Number) {
    let text = n.to_string();
    let int = if is_integer_literal(&text) {
        BigInt::parse_bytes(text.as_bytes(), 10)
    } else {
        None
    };
    match int {
        Some(int) => write_int(out, &int),
        None => {
            // A literal beyond f64's range reads as infinity, as Python's json would.
            let f = text.parse::<f64>().unwrap_or(f64::NAN);
            out.push(b'G');
            out.extend_from_slice(&f.to_be_bytes());
        }
    }
}

fn write_int(out: &mut Vec<u8>, int: &BigInt) {
    match i32::try_from(int) {
        Ok(v @ 0..=0xff) => out.extend_from_slice(&[b'K', v as u8]),
        Ok(v @ 0x100..=0xffff) => {
            out.push(b'M');
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
        Ok(v) => {
            out.push(b'J');
            out.extend_from_slice(&v.to_le_bytes());
        }
        Err(_) => {
            let bytes = int.to_signed_bytes_le();
            match u8::try_from(bytes.len()) {
                Ok(len) => out.extend_from_slice(&[0x8a, len]),
                Err(_) => {
                    out.push(0x8b);
                    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                }
            }
            out.extend_from_slice(&bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_the_smallest_integer_opcodes() {
        let d = json!({"a": 1, "b": 300, "c": -1, "d": 70000})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            pickle(&d),
            b"\x80\x04}(\x8c\x01aK\x01\x8c\x01bM\x2c\x01\x8c\x01cJ\xff\xff\xff\xff\x8c\x01dJ\x70\x11\x01\x00u."
        );
    }

    #[test]
    fn writes_big_integers_exactly() {
        let mut out = Vec::new();
        write_int(&mut out, &(BigInt::from(1) << 70));
        assert_eq!(out, b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x40");
    }
}
