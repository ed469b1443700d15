//! Evaluating a scanned pickle with serde-pickle into a [`serde_json::Value`].
//!
//! serde-pickle hands a visitor plain data only; this visitor keeps dictionary
//! order (serde-pickle's own `Value::Dict` would sort it), refuses nesting beyond
//! the limit and stops once shared references have produced more data than allowed.
//! Integers beyond 64 bits reach it as the marked byte strings written by
//! [`super::scan`] (real bytes never get this far: the scan refuses them).

use super::scan::BIG_INT_MARK;
use crate::python::float_repr;
use crate::{CodecError, Limits};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Shared by all visitors of one pickle.
struct State {
    max_depth: usize,
    /// What may still be produced, counted as one per value plus string lengths.
    budget: usize,
    limit: usize,
    /// The precise reason, when a visitor refused something.
    failure: Option<CodecError>,
}

impl State {
    fn fail<E: de::Error>(&mut self, err: CodecError) -> E {
        let message = err.to_string();
        self.failure = Some(err);
        E::custom(message)
    }

    fn charge<E: de::Error>(&mut self, amount: usize) -> Result<(), E> {
        match self.budget.checked_sub(amount.saturating_add(1)) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(self.fail(CodecError::ExpandsTooFar { limit: self.limit })),
        }
    }
}

/// Evaluates a pickle that [`super::scan::scan`] accepted.
pub(super) fn evaluate(pickle: &[u8], limits: &Limits) -> Result<Value, CodecError> {
    let limit = limits.max_bytes.saturating_mul(2);
    let mut state = State {
        max_depth: limits.max_depth,
        budget: limit,
        limit,
        failure: None,
    };
    let mut de = serde_pickle::Deserializer::new(pickle, serde_pickle::DeOptions::new());
    let result = Node {
        state: &mut state,
        depth: 0,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    match (result, state.failure) {
        (_, Some(failure)) => Err(failure),
        (Ok(value), None) => Ok(value),
        (Err(err), None) => Err(match err {
            serde_pickle::Error::Syntax(serde_pickle::ErrorCode::UnresolvedGlobal) => {
                CodecError::PickleGlobal("unknown".to_owned())
            }
            serde_pickle::Error::Syntax(serde_pickle::ErrorCode::Recursive) => CodecError::Pickle(
                "it holds a value that contains itself or is shared more often than it was stored"
                    .to_owned(),
            ),
            other => CodecError::Pickle(format!("malformed ({other})")),
        }),
    }
}

/// The digits of a big integer marked by the scan, if `bytes` is one.
fn big_int(bytes: &[u8]) -> Option<&str> {
    let digits = std::str::from_utf8(bytes.strip_prefix(BIG_INT_MARK)?).ok()?;
    crate::python::is_integer_literal(digits).then_some(digits)
}

/// Seed for any value at a given nesting level.
struct Node<'a> {
    state: &'a mut State,
    /// Level of the container holding this value (0 for the top).
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Node<'_> {
    fn enter<E: de::Error>(&mut self) -> Result<usize, E> {
        let level = self.depth + 1;
        if level > self.state.max_depth {
            return Err(self.state.fail(CodecError::TooDeep(self.state.max_depth)));
        }
        self.state.charge(1)?;
        Ok(level)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("plain data")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.state.charge(0)?;
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.state.charge(0)?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.state.charge(0)?;
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.state.charge(0)?;
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.state.charge(0)?;
        match float_repr(v).parse::<Number>() {
            Ok(n) if v.is_finite() => Ok(Value::Number(n)),
            _ => Err(self.state.fail(CodecError::Pickle(format!(
                "the float {} has no JSON form",
                float_repr(v)
            )))),
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.visit_string(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.state.charge(v.len())?;
        Ok(Value::String(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        self.state.charge(v.len())?;
        match big_int(v).map(str::parse::<Number>) {
            Some(Ok(n)) => Ok(Value::Number(n)),
            _ => Err(self.state.fail(CodecError::PickleBytes)),
        }
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
        self.visit_bytes(&v)
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        let level = self.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Node {
            state: &mut *self.state,
            depth: level,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        let level = self.enter()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key {
            state: &mut *self.state,
        })? {
            let value = map.next_value_seed(Node {
                state: &mut *self.state,
                depth: level,
            })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Seed for a dictionary key: a string, or a scalar written as `json.dumps` would.
struct Key<'a> {
    state: &'a mut State,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = String;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Key<'_> {
    fn key<E: de::Error>(self, key: String) -> Result<String, E> {
        self.state.charge(key.len())?;
        Ok(key)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a str, int, float, bool or None key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        self.key(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        self.key(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        self.key(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        self.key(v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        self.key(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        self.key("null".to_owned())
    }
    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        self.visit_unit()
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        // json.dumps writes float keys with float.__repr__, and nan/inf as NaN/Infinity.
        let key = match float_repr(v).as_str() {
            "nan" => "NaN".to_owned(),
            "inf" => "Infinity".to_owned(),
            "-inf" => "-Infinity".to_owned(),
            other => other.to_owned(),
        };
        self.key(key)
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<String, E> {
        match big_int(v) {
            Some(digits) => self.key(digits.to_owned()),
            None => Err(self.state.fail(CodecError::PickleBytes)),
        }
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<String, E> {
        self.visit_bytes(&v)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(self.state.fail(CodecError::Pickle(
            "a dictionary key is a tuple or frozenset; only str, int, float, bool and None keys are accepted".to_owned(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marked_big_ints_are_recognised_and_nothing_else() {
        assert_eq!(big_int(b"\xffint:-123"), Some("-123"));
        assert_eq!(big_int(b"\xffint:"), None);
        assert_eq!(big_int(b"\xffint:1.5"), None);
        assert_eq!(big_int(b"123"), None);
    }
}
