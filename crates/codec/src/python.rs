//! Python's `str()` and `repr()` of decoded values, and Python's float repr.
//!
//! The legacy xml form carries `str(value)`, so a nested dictionary travels as the
//! text of its Python repr; json re-encoding formats floats as Python does. The
//! output matches CPython for every value a [`crate::Dict`] can hold, except that
//! "printable" (which decides whether a non-ASCII character is escaped in a repr)
//! is approximated from the Unicode categories Cc, Cf, Zs, Zl, Zp, Co and the
//! noncharacters, without the tables of unassigned code points.

use serde_json::{Number, Value};

/// Python's `str()` of a value: a string is itself, anything else is its repr
/// (`True`, `None`, `{'a': [1, 'b']}`, `3.0`, `1e+16`).
pub fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => {
            let mut out = String::new();
            write_repr(&mut out, other);
            out
        }
    }
}

/// Appends Python's `repr()` of `value` to `out`.
fn write_repr(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&number_text(n)),
        Value::String(s) => write_str_repr(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str_repr(out, key);
                out.push_str(": ");
                write_repr(out, item);
            }
            out.push('}');
        }
    }
}

/// A number as Python prints it: integers exactly (any size), floats via
/// [`float_repr`]. A float literal too large for f64 keeps its literal text.
pub(crate) fn number_text(n: &Number) -> String {
    let text = n.to_string();
    if is_integer_literal(&text) {
        return if text == "-0" { "0".to_owned() } else { text };
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => float_repr(f),
        _ => text,
    }
}

/// True for an optionally negative run of digits (a JSON integer literal).
pub(crate) fn is_integer_literal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Python's `repr(float)`: shortest round-trip digits, fixed notation when the
/// decimal exponent is in -4..16, else `1e+16` / `1.5e-05`.
pub(crate) fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits ("1.2345e-5"); when two
    // digit strings of that length both round-trip, it may pick the other one than
    // Python, which takes the nearest to the exact value, ties to even. Rust's
    // fixed-precision formatting rounds the exact value that way.
    let shortest = format!("{:e}", f.abs());
    let len = shortest
        .split('e')
        .next()
        .map_or(1, |m| m.bytes().filter(u8::is_ascii_digit).count());
    let nearest = format!("{:.*e}", len.saturating_sub(1), f.abs());
    let sci = if nearest.parse::<f64>() == Ok(f.abs()) {
        nearest
    } else {
        shortest
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    let decpt = exp + 1; // value = 0.DIGITS × 10^decpt
    let n = digits.len() as i64;
    let body = if decpt <= -4 || decpt > 16 {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{first}{frac}e{esign}{:02}", exp.abs())
    } else if decpt <= 0 {
        format!("0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= n {
        format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
    } else {
        let (int, frac) = digits.split_at(decpt as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

/// Appends Python's `repr(str)`: single quotes unless the text holds `'` and no `"`.
fn write_str_repr(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii() && (c < ' ' || c == '\x7f') => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_ascii() || is_printable(c) => out.push(c),
            c => {
                let code = c as u32;
                if code <= 0xff {
                    out.push_str(&format!("\\x{code:02x}"));
                } else if code <= 0xffff {
                    out.push_str(&format!("\\u{code:04x}"));
                } else {
                    out.push_str(&format!("\\U{code:08x}"));
                }
            }
        }
    }
    out.push(quote);
}

/// Python's `str.isprintable()` for one non-ASCII character (approximated, see the module docs).
fn is_printable(c: char) -> bool {
    let code = c as u32;
    let not_printable = matches!(code,
        0x80..=0xa0 | 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x1680 | 0x180e
        | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x2064 | 0x2066..=0x206f | 0x3000
        | 0xe000..=0xf8ff | 0xfdd0..=0xfdef | 0xfeff | 0xfff9..=0xfffb
        | 0x110bd | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f
        | 0xf0000..=0x10ffff)
        || code & 0xfffe == 0xfffe;
    !not_printable
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_print_like_python() {
        assert_eq!(python_str(&json!(null)), "None");
        assert_eq!(python_str(&json!(true)), "True");
        assert_eq!(python_str(&json!(false)), "False");
        assert_eq!(python_str(&json!("plain")), "plain");
        assert_eq!(python_str(&json!(42)), "42");
        let big: Value = serde_json::from_str("1180591620717411303424").unwrap();
        assert_eq!(python_str(&big), "1180591620717411303424");
    }

    #[test]
    fn floats_print_like_python_repr() {
        for (f, text) in [
            (3.25, "3.25"),
            (1.0, "1.0"),
            (-2.0, "-2.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-300, "1.5e-300"),
            // Two shortest candidates (…9062 and …9063) round-trip: Python takes
            // the nearest to the exact value (…90625), ties to even.
            (918_062_173_497.0 + 0.906_25, "918062173497.9062"),
            (-0.0, "-0.0"),
            (f64::INFINITY, "inf"),
            (f64::NAN, "nan"),
        ] {
            assert_eq!(float_repr(f), text, "{f}");
        }
        let from_json: Value = serde_json::from_str("1e5").unwrap();
        assert_eq!(python_str(&from_json), "100000.0");
    }

    #[test]
    fn containers_print_with_reprs_inside() {
        let v =
            json!({"a": [1, "two", null, true], "it's": {"q": "say \"hi\"\n"}, "é": "\u{a0}\u{1}"});
        assert_eq!(
            python_str(&v),
            r#"{'a': [1, 'two', None, True], "it's": {'q': 'say "hi"\n'}, 'é': '\xa0\x01'}"#
        );
        assert_eq!(python_str(&json!([])), "[]");
        assert_eq!(python_str(&json!({})), "{}");
        assert_eq!(
            python_str(&json!(["both ' and \""])),
            r#"['both \' and "']"#
        );
    }
}
