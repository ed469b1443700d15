//! The legacy xml serialization: `<root><KEY>VALUE</KEY>...</root>`.
//!
//! Decoding reads what the legacy server read with `{child.tag: child.text}`: every
//! value is a string, an empty element is null, a repeated key keeps its first
//! position and its last value. Only that flat shape is accepted: one root element
//! (any name, as the legacy reader did) whose children hold text only. Refused:
//! DOCTYPE, entities other than the five predefined ones and character references
//! (so no entity expansion attack can work), processing instructions, attributes
//! (a namespace declaration is one), nested elements and non-blank text outside the
//! children. An XML declaration and comments are accepted and ignored. Input must
//! be UTF-8 (ASCII in practice: the legacy writer escapes all else).
//!
//! Encoding is byte-identical to the legacy `ElementTree.tostring(root)`: text is
//! `str(value)` with `&`, `<` and `>` escaped, non-ASCII as decimal character
//! references and an empty text as `<KEY />`. Two deliberate differences keep data
//! intact where ElementTree would corrupt it: a carriage return is written as
//! `&#13;` (a parser would otherwise read it as a newline), and characters XML 1.0
//! cannot carry at all are refused rather than written.

use crate::{CodecError, Dict, python_str};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde_json::Value;

/// Checks that every key can be an XML element name (and read back by the legacy
/// server); the error names the first key that cannot.
pub fn check_xml_keys(dict: &Dict) -> Result<(), CodecError> {
    match dict.keys().find(|key| !is_element_name(key)) {
        Some(key) => Err(CodecError::XmlKey(key.clone())),
        None => Ok(()),
    }
}

/// True when `name` is an XML 1.0 `Name` without a colon (a colon would be a
/// namespace prefix, which the legacy reader cannot resolve).
fn is_element_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) if is_name_start(first) => chars.all(|c| is_name_start(c) || is_name_char(c)),
        _ => false,
    }
}

fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Characters allowed in XML 1.0 documents.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Encodes like the legacy `ElementTree.tostring(root)` (see the module docs).
pub(crate) fn encode(dict: &Dict) -> Result<Vec<u8>, CodecError> {
    check_xml_keys(dict)?;
    let mut out = String::from("<root>");
    for (key, value) in dict {
        let text = python_str(value);
        if text.is_empty() {
            out.push_str(&format!("<{key} />"));
            continue;
        }
        out.push_str(&format!("<{key}>"));
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '\r' => out.push_str("&#13;"),
                c if !is_xml_char(c) => {
                    return Err(CodecError::XmlChar {
                        key: key.clone(),
                        code: c as u32,
                    });
                }
                c if c.is_ascii() => out.push(c),
                c => out.push_str(&format!("&#{};", c as u32)),
            }
        }
        out.push_str(&format!("</{key}>"));
    }
    out.push_str("</root>");
    Ok(out.into_bytes())
}

/// Where the reader is in the flat shape.
enum State {
    BeforeRoot,
    InRoot,
    /// Inside a child element: its name and the text gathered so far.
    InChild(String, String),
    AfterRoot,
}

fn refuse(reason: impl Into<String>) -> CodecError {
    CodecError::Xml(reason.into())
}

/// Decodes the legacy xml form (see the module docs).
pub(crate) fn decode(bytes: &[u8]) -> Result<Dict, CodecError> {
    let text = std::str::from_utf8(bytes).map_err(|_| refuse("the document is not UTF-8"))?;
    let mut reader = Reader::from_str(text);
    let mut dict = Dict::new();
    let mut state = State::BeforeRoot;
    loop {
        let event = reader
            .read_event()
            .map_err(|err| refuse(format!("malformed ({err})")))?;
        state = match (state, event) {
            (_, Event::DocType(_)) => return Err(CodecError::XmlEntities),
            (_, Event::PI(_)) => return Err(refuse("processing instructions are not accepted")),
            (state, Event::Comment(_)) => state,
            (State::BeforeRoot, Event::Decl(_)) => State::BeforeRoot,
            (_, Event::Decl(_)) => return Err(refuse("misplaced XML declaration")),
            (State::InChild(name, mut value), Event::Text(t)) => {
                value.push_str(&t.xml10_content());
                State::InChild(name, value)
            }
            (State::InChild(name, mut value), Event::CData(t)) => {
                value.push_str(&t.xml10_content());
                State::InChild(name, value)
            }
            (State::InChild(name, mut value), Event::GeneralRef(r)) => {
                value.push(resolve_reference(&r)?);
                State::InChild(name, value)
            }
            (State::InChild(name, value), Event::End(_)) => {
                let value = if value.is_empty() {
                    Value::Null
                } else {
                    Value::String(value)
                };
                dict.insert(name, value);
                State::InRoot
            }
            (State::InChild(name, _), Event::Start(e) | Event::Empty(e)) => {
                return Err(refuse(format!(
                    "element <{}> is nested inside <{name}>; only a flat dictionary is accepted",
                    lossy_name(&e)
                )));
            }
            (state, Event::Text(t)) if t.xml10_content().trim().is_empty() => state,
            (_, Event::Text(_) | Event::CData(_) | Event::GeneralRef(_)) => {
                return Err(refuse("text outside the elements of the dictionary"));
            }
            (State::BeforeRoot, Event::Start(e)) => {
                element_name(&e)?;
                State::InRoot
            }
            (State::BeforeRoot, Event::Empty(e)) => {
                element_name(&e)?;
                State::AfterRoot
            }
            (State::InRoot, Event::Start(e)) => State::InChild(element_name(&e)?, String::new()),
            (State::InRoot, Event::Empty(e)) => {
                dict.insert(element_name(&e)?, Value::Null);
                State::InRoot
            }
            (State::InRoot, Event::End(_)) => State::AfterRoot,
            (State::AfterRoot, Event::Start(_) | Event::Empty(_)) => {
                return Err(refuse("more than one root element"));
            }
            (State::AfterRoot, Event::Eof) => return Ok(dict),
            (_, Event::Eof) => {
                return Err(refuse(
                    "the document ends inside an element or has no root element",
                ));
            }
            (_, Event::End(_)) => return Err(refuse("unexpected end tag")),
        };
    }
}

/// The name of an element, refused when it has attributes or is not a plain name.
fn element_name(e: &BytesStart<'_>) -> Result<String, CodecError> {
    let name = lossy_name(e);
    if e.attributes().next().is_some() {
        return Err(refuse(format!(
            "element <{name}> has attributes; only text is accepted"
        )));
    }
    if !is_element_name(&name) {
        return Err(refuse(format!("element name {name:?} is not accepted")));
    }
    Ok(name)
}

fn lossy_name(e: &BytesStart<'_>) -> String {
    let name = e.name();
    let text: &str = name.as_ref();
    text.to_owned()
}

/// The character a reference stands for: a character reference or one of the five
/// predefined entities. Anything else would need a DOCTYPE.
fn resolve_reference(r: &quick_xml::events::BytesRef<'_>) -> Result<char, CodecError> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) if is_xml_char(c) => Ok(c),
            _ => Err(refuse(format!("invalid character reference &{};", &**r))),
        };
    }
    match &**r {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        _ => Err(CodecError::XmlEntities),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::dict;
    use serde_json::json;

    #[test]
    fn encodes_like_element_tree() {
        let d = dict(json!({"a": "x<&>\"'\u{e9}", "b": "", "c": {"n": [1, null]}, "d": 2.0}));
        assert_eq!(
            String::from_utf8(encode(&d).unwrap()).unwrap(),
            r#"<root><a>x&lt;&amp;&gt;"'&#233;</a><b /><c>{'n': [1, None]}</c><d>2.0</d></root>"#
        );
    }

    #[test]
    fn decodes_the_flat_shape() {
        let xml = "<?xml version='1.0'?><root>\n <a>1 &lt; 2 &amp;&#233;&#x41;</a><b/><c></c><!-- hi --><d><![CDATA[<x>]]></d><a>again</a></root>\n";
        let d = decode(xml.as_bytes()).unwrap();
        assert_eq!(
            Value::Object(d.clone()),
            json!({"a": "again", "b": null, "c": null, "d": "<x>"})
        );
        assert_eq!(d.keys().collect::<Vec<_>>(), ["a", "b", "c", "d"]);
        assert_eq!(decode(b"<root/>").unwrap(), Dict::new());
        assert_eq!(
            decode(b"<root><a>1\r\n2&#13;</a></root>").unwrap()["a"],
            json!("1\n2\r")
        );
    }

    #[test]
    fn round_trips_text_values() {
        let d = dict(json!({"k": "tab\tline\nret\r<&>\u{2603}\u{1f600}", "e": "", "n": "None"}));
        let back = decode(&encode(&d).unwrap()).unwrap();
        assert_eq!(
            Value::Object(back),
            json!({"k": "tab\tline\nret\r<&>\u{2603}\u{1f600}", "e": null, "n": "None"})
        );
    }

    #[test]
    fn refuses_bad_keys_and_characters() {
        for key in ["1a", "", "a b", "x:y", "-a", "a<"] {
            let d = dict(json!({"ok": 1, key: 2}));
            let err = encode(&d).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("xml cannot carry the key {key:?} as an element name")
            );
        }
        assert_eq!(
            check_xml_keys(&dict(json!({"1a": 1})))
                .unwrap_err()
                .to_string(),
            "xml cannot carry the key \"1a\" as an element name"
        );
        assert!(check_xml_keys(&dict(json!({"_a.b-c\u{e9}": 1, "xmlish": 2}))).is_ok());
        assert!(matches!(
            encode(&dict(json!({"a": "\u{1}"}))),
            Err(CodecError::XmlChar { code: 1, .. })
        ));
    }

    #[test]
    fn refuses_entities_and_other_shapes() {
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><root><a>&lol2;</a></root>"#;
        assert_eq!(
            decode(laughs.as_bytes()).unwrap_err().to_string(),
            "xml refused: DOCTYPE and entities are not accepted"
        );
        assert!(matches!(
            decode(b"<root><a>&lol;</a></root>"),
            Err(CodecError::XmlEntities)
        ));
        for bad in [
            &b"<root><a><b>1</b></a></root>"[..],
            b"<root><a x='1'>1</a></root>",
            b"<root xmlns:p='u'><p:a>1</p:a></root>",
            b"<root>loose<a>1</a></root>",
            b"<root><a>1</a></root><root/>",
            b"<root><a>1</a>",
            b"<root><a>1</b></root>",
            b"<?pi x?><root/>",
            b"",
            b"plain",
            b"<root><a>&#0;</a></root>",
            b"<root><a>\xff</a></root>",
        ] {
            assert!(decode(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
