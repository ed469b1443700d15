//! The codecs against the protocol's test vectors (`tests/vectors`): CPython's pickles (protocols 0-5,
//! Python-only types, hostile pickles) and the dictionaries of the recorded legacy
//! session, plus round trips checked by Python itself.

use ferry_codec::{CodecError, Dict, Limits, decode, encode};
use ferry_protocol::Serialization;
use serde_json::{Value, json};
use std::path::PathBuf;

fn vectors() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors"))
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn expected(path: PathBuf) -> Value {
    serde_json::from_slice(&read(path)).expect("expected.json parses")
}

fn pickle(name: &str) -> Result<Dict, CodecError> {
    decode(
        Serialization::Binary,
        &read(vectors().join("pickle").join(name)),
        &Limits::default(),
    )
}

#[test]
fn every_cpython_pickle_decodes_to_its_expected_dict_in_order() {
    let expected = expected(vectors().join("pickle/expected.json"));
    let mut checked = 0;
    for (name, want) in expected.as_object().expect("an object") {
        for protocol in 0..=5 {
            let dict = pickle(&format!("{name}.p{protocol}.pkl"))
                .unwrap_or_else(|err| panic!("{name} p{protocol}: {err}"));
            assert_eq!(Value::Object(dict.clone()), *want, "{name} p{protocol}");
            checked += 1;
        }
    }
    assert_eq!(checked, 30);
    // Key order is Python's insertion order, not sorted.
    let scalars = pickle("scalars.p4.pkl").unwrap();
    let keys: Vec<_> = scalars.keys().map(String::as_str).collect();
    let python_order = python(&format!(
        "import pickle; print(' '.join(pickle.load(open('{}', 'rb'))))",
        vectors().join("pickle/scalars.p4.pkl").display()
    ));
    if let Some(order) = python_order {
        assert_eq!(keys.join(" "), order.trim());
    }
    assert_eq!(scalars["big"].to_string(), "1180591620717411303424");
}

#[test]
fn python_only_types_are_mapped_or_refused_clearly() {
    // Sets become lists (in the pickle's order); int keys become their str.
    assert_eq!(
        Value::Object(pickle("special_set.p4.pkl").unwrap()),
        json!({"s": [1, 2]})
    );
    assert_eq!(
        Value::Object(pickle("special_int_key.p4.pkl").unwrap()),
        json!({"1": "x"})
    );
    let err = pickle("special_bytes.p4.pkl").unwrap_err();
    assert_eq!(
        err.to_string(),
        "pickle refused: bytes values are not supported; send text (str) instead"
    );
}

#[test]
fn python_only_types_decode_alike_in_every_protocol() {
    let code = "import pickle, sys\n\
        d = {'s': {1, 2}, 'f': frozenset([3]), 1.5: None, True: 2**70, None: (1, 'a')}\n\
        print(' '.join(pickle.dumps(d, p).hex() for p in range(6)))";
    let Some(out) = python(code) else { return };
    let want = json!({"s": [1, 2], "f": [3], "1.5": null, "true": 1, "null": [1, "a"]});
    for (protocol, hex) in out.split_whitespace().enumerate() {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let mut dict = decode(Serialization::Binary, &bytes, &Limits::default())
            .unwrap_or_else(|err| panic!("p{protocol}: {err}"));
        assert_eq!(
            dict.remove("true").map(|v| v.to_string()),
            Some("1180591620717411303424".to_owned()),
            "p{protocol}"
        );
        dict.insert("true".to_owned(), json!(1));
        assert_eq!(Value::Object(dict), want, "p{protocol}");
    }
}

#[test]
fn hostile_pickles_are_refused_and_nothing_runs() {
    for name in ["hostile_global_datetime.p4.pkl", "hostile_reduce.p4.pkl"] {
        let err = pickle(name).unwrap_err();
        assert!(matches!(err, CodecError::PickleGlobal(_)), "{name}: {err}");
        assert!(
            err.to_string()
                .starts_with("pickle refused: it names a global ("),
            "{err}"
        );
    }
    assert!(
        pickle("hostile_reduce.p4.pkl")
            .unwrap_err()
            .to_string()
            .contains("system")
    );
}

/// Transfers of the recorded session: (meta byte, reassembled plaintext payload).
fn legacy_transfers() -> Vec<(u8, Vec<u8>)> {
    let bytes = read(vectors().join("legacy-session/client-to-server.bin"));
    let (mut i, mut transfers, mut open): (usize, Vec<(u8, Vec<u8>)>, bool) =
        (0, Vec::new(), false);
    while i < bytes.len() {
        let op = bytes[i];
        i += 1;
        if op == 0x10 {
            break;
        }
        if op & 0x08 != 0 {
            assert!(!open);
            transfers.push((bytes[i], Vec::new()));
            i += 1;
            open = true;
        }
        let len = usize::from(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
        let payload = &bytes[i + 2..i + 2 + len];
        i += 2 + len;
        transfers
            .last_mut()
            .expect("a transfer is open")
            .1
            .extend_from_slice(payload);
        if op & 0x04 != 0 {
            open = false;
        }
    }
    transfers
}

/// The packets the legacy client writes for one unencrypted transfer.
fn legacy_packets(meta: u8, plaintext: &[u8]) -> Vec<u8> {
    let pieces: Vec<&[u8]> = plaintext.chunks(48_000).collect();
    let mut out = Vec::new();
    for (n, piece) in pieces.iter().enumerate() {
        let mut op = 0u8;
        if n == 0 {
            op |= 0x08;
        }
        if n + 1 == pieces.len() {
            op |= 0x04;
        }
        out.push(op);
        if n == 0 {
            out.push(meta);
        }
        out.extend_from_slice(&(piece.len() as u16).to_be_bytes());
        out.extend_from_slice(piece);
    }
    out
}

#[test]
fn legacy_session_dictionaries_decode_and_the_xml_one_encodes_byte_identically() {
    let transfers = legacy_transfers();
    let expected = expected(vectors().join("legacy-session/expected.json"));
    let content = |n: usize| {
        expected["transfers"][n]["content"]
            .as_object()
            .cloned()
            .expect("a dictionary")
    };
    let (xml_meta, xml) = &transfers[0];
    assert_eq!(*xml_meta, 0x2c);
    let decoded = decode(Serialization::Xml, xml, &Limits::default()).unwrap();
    assert_eq!(decoded, content(0));
    assert_eq!(decoded.keys().next().map(String::as_str), Some("A0"));
    let encoded = encode(Serialization::Xml, &content(0)).unwrap();
    assert_eq!(&encoded, xml);
    let session = read(vectors().join("legacy-session/client-to-server.bin"));
    let packets = legacy_packets(0x2c, &encoded);
    assert_eq!(packets.len(), 4 + 3 * 3 + xml.len());
    assert_eq!(&session[..packets.len()], &packets[..]);

    let (json_meta, json_bytes) = &transfers[1];
    assert_eq!(*json_meta, 0x28);
    assert_eq!(
        decode(Serialization::Json, json_bytes, &Limits::default()).unwrap(),
        content(1)
    );
    assert_eq!(
        &encode(Serialization::Json, &content(1)).unwrap(),
        json_bytes
    );
    // transfers[3] is an encrypted pickle: the crypto crate's tests cover it.
}

/// A dictionary with every kind of value, numbers written as Python writes them.
fn sample() -> Dict {
    let mut dict: Dict = serde_json::from_str(
        r#"{"z": "last letter first", "text": "h\u00e9llo \u2603 \ud83d\ude00 'q' \"d\"", "int": 7, "neg": -3,
            "u64": 18446744073709551615, "big": -1180591620717411303424, "float": 3.25, "tiny": 1e-07,
            "huge": 1e+300, "none": null, "t": true, "f": false, "list": [1, "two", [3.0, {}], null],
            "nested": {"b": {"a": [[], {"x": "y"}]}}, "empty": ""}"#,
    )
    .expect("valid json");
    dict.insert("many".to_owned(), json!((0..2500).collect::<Vec<_>>()));
    dict
}

#[test]
fn json_and_pickle_round_trip() {
    let dict = sample();
    for s in [Serialization::Json, Serialization::Binary] {
        let bytes = encode(s, &dict).unwrap();
        let back = decode(s, &bytes, &Limits::default()).unwrap();
        assert!(back == dict, "{s:?} differs");
        assert_eq!(
            back.keys().collect::<Vec<_>>(),
            dict.keys().collect::<Vec<_>>()
        );
    }
}

#[test]
fn xml_round_trips_as_python_strings() {
    let dict = sample();
    let back = decode(
        Serialization::Xml,
        &encode(Serialization::Xml, &dict).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    for (key, value) in &dict {
        let want = match ferry_codec::python_str(value) {
            text if text.is_empty() => Value::Null,
            text => Value::String(text),
        };
        assert_eq!(back[key], want, "{key}");
    }
}

/// Runs a Python snippet; `None` (and a note) when python3 is not installed.
fn python(code: &str) -> Option<String> {
    match std::process::Command::new("python3")
        .arg("-c")
        .arg(code)
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "python failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8(out.stdout).expect("utf-8"))
        }
        Err(err) => {
            eprintln!("python3 not available ({err}); skipping the Python check");
            None
        }
    }
}

#[test]
fn python_loads_our_pickle_and_json_and_xml_as_the_same_dict() {
    let dict = sample();
    let dir = tempfile::tempdir().unwrap();
    for (s, name) in [
        (Serialization::Binary, "d.pkl"),
        (Serialization::Json, "d.json"),
        (Serialization::Xml, "d.xml"),
    ] {
        std::fs::write(dir.path().join(name), encode(s, &dict).unwrap()).unwrap();
    }
    std::fs::write(
        dir.path().join("want.json"),
        encode(Serialization::Json, &dict).unwrap(),
    )
    .unwrap();
    let script = format!(
        r#"
import json, pickle, xml.etree.ElementTree as ET
d = "{dir}/"
want = json.load(open(d + "want.json"))
got = pickle.load(open(d + "d.pkl", "rb"))
assert got == want and list(got) == list(want), (got, want)
assert json.dumps(got) == open(d + "d.json").read()
root = ET.fromstring(open(d + "d.xml", "rb").read())
xml = {{c.tag: c.text for c in root}}
assert xml == {{k: (str(v) or None) for k, v in want.items()}}, xml
root = ET.Element("root")
for k, v in want.items():
    ET.SubElement(root, k).text = str(v)
assert ET.tostring(root) == open(d + "d.xml", "rb").read()
print("ok")
"#,
        dir = dir.path().display()
    );
    if let Some(out) = python(&script) {
        assert_eq!(out.trim(), "ok");
    }
}

#[test]
fn random_bytes_and_truncations_are_refused_without_panicking() {
    let mut seeds = vec![
        encode(Serialization::Binary, &sample()).unwrap(),
        read(vectors().join("pickle/scalars.p0.pkl")),
        read(vectors().join("pickle/containers.p2.pkl")),
        read(vectors().join("pickle/nested.p5.pkl")),
    ];
    seeds.push(encode(Serialization::Xml, &sample()).unwrap());
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let limits = Limits::default();
    for seed in &seeds {
        for cut in 0..seed.len() {
            for s in [
                Serialization::Binary,
                Serialization::Xml,
                Serialization::Json,
            ] {
                assert!(
                    decode(s, &seed[..cut], &limits).is_err(),
                    "{s:?} cut at {cut}"
                );
            }
        }
        for _ in 0..3000 {
            let mut mutated = seed.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() as usize) % mutated.len();
                mutated[at] = next() as u8;
            }
            for s in [Serialization::Binary, Serialization::Xml] {
                let _ = decode(s, &mutated, &limits);
            }
        }
    }
    for _ in 0..5000 {
        let len = (next() % 200) as usize;
        let noise: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        for s in [
            Serialization::Binary,
            Serialization::Xml,
            Serialization::Json,
        ] {
            let _ = decode(s, &noise, &limits);
        }
        let mut with_header = vec![0x80, 4];
        with_header.extend_from_slice(&noise);
        let _ = decode(Serialization::Binary, &with_header, &limits);
    }
}

#[test]
fn shared_references_cannot_blow_up() {
    // {'a': l20} where l0 = ['x' * 1000] and lN = [l(N-1)] * 10, all memoized:
    // 60 KB of pickle that expands to 10^20 strings.
    let mut p = b"\x80\x04}\x94\x8c\x01a]\x94(X\xe8\x03\x00\x00".to_vec();
    p.extend(std::iter::repeat_n(b'x', 1000));
    p.push(b'e');
    for level in 1..=20u8 {
        p.extend_from_slice(b"0]\x94(");
        for _ in 0..10 {
            p.extend_from_slice(&[b'h', level]);
        }
        p.push(b'e');
    }
    p.extend_from_slice(b"s.");
    let err = decode(Serialization::Binary, &p, &Limits::default()).unwrap_err();
    assert!(err.to_string().starts_with("pickle refused"), "{err}");

    // {'a': [s] * 100} where s = 'x' * 100_000: 100 KB that expands to 10 MB.
    let mut p = b"\x80\x04}\x94\x8c\x01a](X\xa0\x86\x01\x00".to_vec();
    p.extend(std::iter::repeat_n(b'x', 100_000));
    p.push(0x94);
    p.extend(std::iter::repeat_n(*b"h\x01", 99).flatten());
    p.extend_from_slice(b"es.");
    let limits = Limits {
        max_bytes: 1 << 20,
        max_depth: 64,
    };
    let err = decode(Serialization::Binary, &p, &limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dictionary expands to more than 2097152 bytes through shared references"
    );
    assert_eq!(
        decode(Serialization::Binary, &p, &Limits::default()).unwrap()["a"]
            .as_array()
            .map(Vec::len),
        Some(100)
    );
}
