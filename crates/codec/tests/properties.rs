//! Properties over generated dictionaries and bytes: what Ferry encodes decodes back
//! to the same dictionary, and no input (random, or a valid encoding with bytes
//! changed) makes a decoder panic or accept something deeper or larger than the
//! limits.

use ferry_codec::{Dict, Limits, decode, encode};
use ferry_protocol::Serialization;
use proptest::prelude::*;
use serde_json::Value;

const DICTIONARIES: [Serialization; 3] = [
    Serialization::Json,
    Serialization::Binary,
    Serialization::Xml,
];

fn serialization() -> impl Strategy<Value = Serialization> {
    proptest::sample::select(DICTIONARIES.to_vec())
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Beyond 64 bits: exact, as Python keeps them.
        "-?[1-9][0-9]{20,40}".prop_map(|digits| serde_json::from_str(&digits).unwrap()),
        (-1e12f64..1e12).prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

fn dict() -> impl Strategy<Value = Dict> {
    proptest::collection::vec((any::<String>(), value()), 0..8)
        .prop_map(|pairs| pairs.into_iter().collect())
}

/// Keys that are XML element names and non-empty string values: the only
/// dictionaries the legacy xml form carries exactly (it reads every value back
/// as a string, and an empty element as null).
fn xml_dict() -> impl Strategy<Value = Dict> {
    proptest::collection::vec(
        (
            "[A-Za-z_][A-Za-z0-9_.-]{0,12}",
            "[ -~\t\n\r\u{e9}\u{4e2d}\u{1f600}]{1,20}",
        ),
        0..8,
    )
    .prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect()
    })
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A decoded dictionary must respect the depth limit it was decoded under (the
/// dictionary itself is level 1).
fn within(dict: &Dict, limits: &Limits) -> bool {
    let levels = 1 + dict.values().map(depth).max().unwrap_or(0);
    levels <= limits.max_depth
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn json_and_pickle_round_trip(dict in dict()) {
        for serialization in [Serialization::Json, Serialization::Binary] {
            let bytes = encode(serialization, &dict).unwrap();
            let back = decode(serialization, &bytes, &Limits::default()).unwrap();
            prop_assert_eq!(&back, &dict, "{:?}", serialization);
        }
    }

    #[test]
    fn xml_round_trips_string_dictionaries(dict in xml_dict()) {
        let bytes = encode(Serialization::Xml, &dict).unwrap();
        let back = decode(Serialization::Xml, &bytes, &Limits::default()).unwrap();
        prop_assert_eq!(back, dict);
    }

    #[test]
    fn arbitrary_bytes_decode_to_a_dictionary_or_an_error(
        serialization in serialization(),
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let limits = Limits { max_bytes: 4096, max_depth: 8 };
        if let Ok(dict) = decode(serialization, &bytes, &limits) {
            prop_assert!(within(&dict, &limits));
        }
    }

    #[test]
    fn valid_encodings_with_bytes_changed_never_panic(
        serialization in serialization(),
        dict in dict(),
        changes in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let Ok(mut bytes) = encode(serialization, &dict) else { return Ok(()) };
        if bytes.is_empty() {
            return Ok(());
        }
        for (at, byte) in changes {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        let limits = Limits { max_bytes: 1 << 20, max_depth: 4 };
        if let Ok(dict) = decode(serialization, &bytes, &limits) {
            prop_assert!(within(&dict, &limits));
        }
        // Truncated anywhere.
        let cut = cut.index(bytes.len());
        let _ = decode(serialization, &bytes[..cut], &limits);
    }
}

/// Floats of every magnitude (random bit patterns), json-encoded by Ferry, are
/// byte for byte what CPython's `json.dumps` writes for the same values.
#[test]
fn floats_are_written_as_cpython_writes_them() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let floats: Vec<Value> = std::iter::from_fn(|| {
        // xorshift64*: deterministic, no dependency.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        Some(f64::from_bits(state.wrapping_mul(0x2545_f491_4f6c_dd1d)))
    })
    .filter(|f| f.is_finite())
    .take(5000)
    .map(Value::from)
    .collect();
    let dict: Dict = [("floats".to_owned(), Value::Array(floats))]
        .into_iter()
        .collect();
    let ours = encode(Serialization::Json, &dict).unwrap();
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys; sys.stdout.write(json.dumps(json.loads(sys.stdin.read())))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&ours)?;
            child.wait_with_output()
        })
        .expect("python3");
    assert!(output.status.success());
    let theirs = String::from_utf8(output.stdout).unwrap();
    let ours = String::from_utf8(ours).unwrap();
    let differ: Vec<_> = ours
        .split(", ")
        .zip(theirs.split(", "))
        .filter(|(a, b)| a != b)
        .take(5)
        .collect();
    assert!(differ.is_empty(), "Ferry vs CPython: {differ:?}");
    assert_eq!(ours, theirs);
}
