//! A pass over a pickle's opcodes before anything evaluates it.
//!
//! Guarantees, for a pickle it accepts: every opcode is a known protocol 0-5 data
//! opcode with complete arguments and the pickle ends at STOP; the only globals named
//! are `set` and `frozenset`, used by protocols 0-3 to rebuild sets; no object is
//! built (INST, OBJ, NEWOBJ, NEWOBJ_EX, BUILD), no persistent id, extension code or
//! out-of-band buffer is used; no bytes, bytearray or Python 2 byte string appears;
//! nesting, as far as it can be tracked through the memo, stays within the limit; and
//! the copies serde-pickle makes while building stay proportional to the input.
//! Integers that do not fit an i64 (which serde-pickle cannot hand to a visitor) are
//! rewritten as byte strings marked with [`BIG_INT_MARK`] holding their decimal
//! digits, so they reach the visitor exact.

use crate::{CodecError, Limits};
use num_bigint::BigInt;
use std::borrow::Cow;
use std::collections::HashMap;

/// Prefix of the byte strings that carry rewritten big integers (never valid UTF-8,
/// and real byte strings are refused before evaluation anyway).
pub(super) const BIG_INT_MARK: &[u8] = b"\xffint:";

/// A global the decoder resolves itself, without running anything.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Builtin {
    Set,
    FrozenSet,
}

/// What the scan knows about one stack item or memo entry.
#[derive(Clone, Debug, Default)]
struct Item {
    /// Nesting depth of the value (0 for a scalar).
    depth: u32,
    /// Values serde-pickle holds for it (a memo reference counts one).
    size: u64,
    /// The memo entry this item refers to, if it is a memo reference.
    memo: Option<u32>,
    /// Text of a short string, to name globals built with STACK_GLOBAL.
    text: Option<Box<str>>,
    builtin: Option<Builtin>,
}

impl Item {
    fn scalar() -> Item {
        Item {
            size: 1,
            ..Item::default()
        }
    }
    fn container(children: &[Item], memo: &HashMap<u32, Item>) -> Item {
        let mut item = Item {
            depth: 1,
            size: 1,
            ..Item::default()
        };
        for child in children {
            item.depth = item.depth.max(deep(child, memo).saturating_add(1));
            item.size = item.size.saturating_add(child.size);
        }
        item
    }
}

/// The depth of an item, looking through memo references.
fn deep(item: &Item, memo: &HashMap<u32, Item>) -> u32 {
    match item.memo.and_then(|id| memo.get(&id)) {
        Some(entry) => entry.depth.max(item.depth),
        None => item.depth,
    }
}

fn malformed(what: impl Into<String>) -> CodecError {
    CodecError::Pickle(format!("malformed ({})", what.into()))
}

fn forbidden(what: &str) -> CodecError {
    CodecError::Pickle(format!("it {what}; only plain data is accepted"))
}

struct Scanner<'a> {
    input: &'a [u8],
    pos: usize,
    stack: Vec<Item>,
    marks: Vec<Vec<Item>>,
    memo: HashMap<u32, Item>,
    max_depth: u32,
    /// Values serde-pickle may still copy while building.
    copy_budget: u64,
    /// The rewritten pickle, when a big integer had to be rewritten.
    out: Option<Vec<u8>>,
    copied_to: usize,
}

/// Checks a pickle and returns it, rewritten if it holds integers beyond i64.
pub(super) fn scan<'a>(input: &'a [u8], limits: &Limits) -> Result<Cow<'a, [u8]>, CodecError> {
    let max_depth = u32::try_from(limits.max_depth).unwrap_or(u32::MAX);
    let mut scanner = Scanner {
        input,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        // Nesting seen here can exceed the dictionary's by the argument tuple of a
        // set() call; the visitor enforces the exact limit.
        max_depth: max_depth.saturating_add(2),
        copy_budget: (input.len() as u64).saturating_mul(2).saturating_add(1024),
        out: None,
        copied_to: 0,
    };
    scanner.run()?;
    let (limit, max) = (limits.max_depth, scanner.max_depth);
    if scanner
        .stack
        .iter()
        .any(|item| deep(item, &scanner.memo) > max)
    {
        return Err(CodecError::TooDeep(limit));
    }
    Ok(match scanner.out {
        Some(mut out) => {
            out.extend_from_slice(&input[scanner.copied_to..]);
            Cow::Owned(out)
        }
        None => Cow::Borrowed(input),
    })
}

impl Scanner<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.input.len())
            .ok_or_else(|| malformed("truncated"))?;
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }
    fn byte(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }
    fn u32_le(&mut self) -> Result<u32, CodecError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64_le(&mut self) -> Result<u64, CodecError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }
    fn len_u64(&mut self) -> Result<usize, CodecError> {
        usize::try_from(self.u64_le()?).map_err(|_| malformed("length too large"))
    }
    /// A newline-terminated argument, without the newline.
    fn line(&mut self) -> Result<&[u8], CodecError> {
        let rest = &self.input[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| malformed("truncated"))?;
        self.pos += n + 1;
        Ok(&rest[..n])
    }
    fn line_text(&mut self) -> Result<String, CodecError> {
        let line = self.line()?;
        Ok(String::from_utf8_lossy(line).into_owned())
    }

    fn push(&mut self, item: Item) -> Result<(), CodecError> {
        if deep(&item, &self.memo) > self.max_depth {
            return Err(CodecError::TooDeep(
                self.max_depth.saturating_sub(2) as usize
            ));
        }
        self.stack.push(item);
        Ok(())
    }
    fn pop(&mut self) -> Result<Item, CodecError> {
        self.stack.pop().ok_or_else(|| malformed("stack underflow"))
    }
    fn pop_mark(&mut self) -> Result<Vec<Item>, CodecError> {
        let below = self.marks.pop().ok_or_else(|| malformed("no MARK"))?;
        Ok(std::mem::replace(&mut self.stack, below))
    }
    /// Accounts for serde-pickle copying a value out of the memo.
    fn copy(&mut self, item: &Item) -> Result<(), CodecError> {
        let size = match item.memo.and_then(|id| self.memo.get(&id)) {
            Some(entry) => entry.size,
            None => item.size,
        };
        self.copy_budget = self
            .copy_budget
            .checked_sub(size)
            .ok_or_else(|| forbidden("copies shared values excessively"))?;
        Ok(())
    }
    /// Adds children to the container on top of the stack (APPEND, SETITEM, ...).
    fn add_to_top(&mut self, children: &[Item]) -> Result<(), CodecError> {
        let grown = Item::container(children, &self.memo);
        let top = self
            .stack
            .last_mut()
            .ok_or_else(|| malformed("stack underflow"))?;
        let target = match top.memo {
            Some(id) => self
                .memo
                .get_mut(&id)
                .ok_or_else(|| malformed("missing memo"))?,
            None => top,
        };
        target.depth = target.depth.max(grown.depth);
        target.size = target.size.saturating_add(grown.size - 1);
        if target.depth > self.max_depth {
            return Err(CodecError::TooDeep(
                self.max_depth.saturating_sub(2) as usize
            ));
        }
        Ok(())
    }
    fn memoize(&mut self, id: u32) -> Result<(), CodecError> {
        let item = self.pop()?;
        let entry = match item.memo {
            Some(from) => {
                self.copy(&item)?;
                self.memo
                    .get(&from)
                    .cloned()
                    .ok_or_else(|| malformed("missing memo"))?
            }
            None => item,
        };
        let text = entry.text.clone();
        let builtin = entry.builtin;
        self.memo.insert(id, entry);
        self.stack.push(Item {
            size: 1,
            memo: Some(id),
            text,
            builtin,
            depth: 0,
        });
        Ok(())
    }
    fn get(&mut self, id: u32) -> Result<(), CodecError> {
        let entry = self
            .memo
            .get(&id)
            .ok_or_else(|| malformed("missing memo"))?;
        let item = Item {
            size: 1,
            memo: Some(id),
            text: entry.text.clone(),
            builtin: entry.builtin,
            depth: 0,
        };
        self.push(item)
    }
    fn string(&mut self, text: Option<&str>) -> Result<(), CodecError> {
        let text = text.filter(|t| t.len() <= 256).map(Box::from);
        self.push(Item {
            text,
            ..Item::scalar()
        })
    }
    fn utf8(&mut self, n: usize) -> Result<(), CodecError> {
        let bytes = self.take(n)?;
        let text = std::str::from_utf8(bytes).map_err(|_| malformed("string is not UTF-8"))?;
        let text = (text.len() <= 256).then(|| text.to_owned());
        self.string(text.as_deref())
    }
    fn global(&mut self, module: &str, name: &str) -> Result<(), CodecError> {
        let builtin = match (module, name) {
            ("builtins" | "__builtin__", "set") => Builtin::Set,
            ("builtins" | "__builtin__", "frozenset") => Builtin::FrozenSet,
            ("builtins" | "__builtin__", "bytes" | "bytearray") | ("_codecs", "encode") => {
                return Err(CodecError::PickleBytes);
            }
            _ => return Err(CodecError::PickleGlobal(format!("{module}.{name}"))),
        };
        self.push(Item {
            builtin: Some(builtin),
            ..Item::scalar()
        })
    }
    /// An integer that may not fit an i64: kept, or rewritten for the visitor.
    fn integer(&mut self, start: usize, value: BigInt) -> Result<(), CodecError> {
        if i64::try_from(&value).is_err() {
            let mut digits = BIG_INT_MARK.to_vec();
            digits.extend_from_slice(value.to_string().as_bytes());
            let out = self.out.get_or_insert_with(Vec::new);
            out.extend_from_slice(&self.input[self.copied_to..start]);
            match u8::try_from(digits.len()) {
                Ok(len) => out.extend_from_slice(&[b'C', len]),
                Err(_) => {
                    out.push(b'B');
                    out.extend_from_slice(&(digits.len() as u32).to_le_bytes());
                }
            }
            out.extend_from_slice(&digits);
            self.copied_to = self.pos;
        }
        self.push(Item::scalar())
    }
    fn text_int(line: &[u8]) -> Result<BigInt, CodecError> {
        let line = line.strip_suffix(b"L").unwrap_or(line);
        let digits = line.strip_prefix(b"-").unwrap_or(line);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(malformed("bad integer"));
        }
        BigInt::parse_bytes(line, 10).ok_or_else(|| malformed("bad integer"))
    }

    fn run(&mut self) -> Result<(), CodecError> {
        loop {
            let start = self.pos;
            let op = self.byte().map_err(|_| malformed("no STOP opcode"))?;
            match op {
                b'.' => {
                    // STOP
                    if self.stack.is_empty() {
                        return Err(malformed("empty stack at STOP"));
                    }
                    let trailing = self.input.len() - self.pos;
                    if trailing > 0 {
                        return Err(malformed(format!("{trailing} bytes after the end")));
                    }
                    return Ok(());
                }
                0x80 => {
                    let proto = self.byte()?;
                    if proto > 5 {
                        return Err(CodecError::Pickle(format!(
                            "protocol {proto} is not supported (0 to 5 are)"
                        )));
                    }
                }
                0x95 => {
                    self.u64_le()?; // FRAME: framing is ignored.
                }
                b'(' => {
                    let stack = std::mem::take(&mut self.stack);
                    self.marks.push(stack);
                }
                b'0' => {
                    if self.stack.is_empty() {
                        self.pop_mark()?;
                    } else {
                        self.pop()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = self
                        .stack
                        .last()
                        .cloned()
                        .ok_or_else(|| malformed("stack underflow"))?;
                    self.copy(&Item {
                        memo: None,
                        ..top.clone()
                    })?;
                    self.push(top)?;
                }
                // Memo
                b'p' => {
                    let id = self
                        .line_text()?
                        .parse()
                        .map_err(|_| malformed("bad memo id"))?;
                    self.memoize(id)?;
                }
                b'q' => {
                    let id = self.byte()?.into();
                    self.memoize(id)?;
                }
                b'r' => {
                    let id = self.u32_le()?;
                    self.memoize(id)?;
                }
                0x94 => {
                    let id =
                        u32::try_from(self.memo.len()).map_err(|_| malformed("memo too large"))?;
                    self.memoize(id)?;
                }
                b'g' => {
                    let id = self
                        .line_text()?
                        .parse()
                        .map_err(|_| malformed("bad memo id"))?;
                    self.get(id)?;
                }
                b'h' => {
                    let id = self.byte()?.into();
                    self.get(id)?;
                }
                b'j' => {
                    let id = self.u32_le()?;
                    self.get(id)?;
                }
                // Scalars
                b'N' | 0x88 | 0x89 => self.push(Item::scalar())?,
                b'K' => {
                    self.take(1)?;
                    self.push(Item::scalar())?;
                }
                b'M' => {
                    self.take(2)?;
                    self.push(Item::scalar())?;
                }
                b'J' => {
                    self.take(4)?;
                    self.push(Item::scalar())?;
                }
                b'G' => {
                    self.take(8)?;
                    self.push(Item::scalar())?;
                }
                b'F' => {
                    let line = self.line_text()?;
                    line.trim()
                        .parse::<f64>()
                        .map_err(|_| malformed("bad float"))?;
                    self.push(Item::scalar())?;
                }
                b'I' => {
                    let line = self.line()?.to_vec();
                    if line == b"00" || line == b"01" {
                        self.push(Item::scalar())?;
                    } else {
                        let value = Self::text_int(&line)?;
                        self.integer(start, value)?;
                    }
                }
                b'L' => {
                    let line = self.line()?.to_vec();
                    let value = Self::text_int(&line)?;
                    self.integer(start, value)?;
                }
                0x8a => {
                    let n = self.byte()?.into();
                    let value = BigInt::from_signed_bytes_le(self.take(n)?);
                    self.integer(start, value)?;
                }
                0x8b => {
                    let n = self.u32_le()?;
                    let n = usize::try_from(n)
                        .ok()
                        .filter(|&n| n <= i32::MAX as usize)
                        .ok_or_else(|| malformed("bad length"))?;
                    let value = BigInt::from_signed_bytes_le(self.take(n)?);
                    self.integer(start, value)?;
                }
                // Strings
                b'V' => {
                    let line = self.line()?;
                    let text = std::str::from_utf8(line)
                        .ok()
                        .filter(|t| !t.contains('\\'))
                        .map(str::to_owned);
                    self.string(text.as_deref())?;
                }
                b'X' => {
                    let n = self.u32_le()? as usize;
                    self.utf8(n)?;
                }
                0x8c => {
                    let n = self.byte()?.into();
                    self.utf8(n)?;
                }
                0x8d => {
                    let n = self.len_u64()?;
                    self.utf8(n)?;
                }
                // Refused data types
                b'B' | b'C' | 0x8e | 0x96 => return Err(CodecError::PickleBytes),
                b'S' | b'T' | b'U' => {
                    return Err(CodecError::Pickle(
                        "it holds a Python 2 byte string; only Python 3 pickles are accepted"
                            .to_owned(),
                    ));
                }
                // Containers
                b']' | b'}' | b')' | 0x8f => self.push(Item::container(&[], &self.memo))?,
                b'l' | b't' | b'd' | 0x91 => {
                    let items = self.pop_mark()?;
                    let item = Item::container(&items, &self.memo);
                    self.push(item)?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let at = self
                        .stack
                        .len()
                        .checked_sub(n)
                        .ok_or_else(|| malformed("stack underflow"))?;
                    let items = self.stack.split_off(at);
                    let item = Item::container(&items, &self.memo);
                    self.push(item)?;
                }
                b'a' => {
                    let child = self.pop()?;
                    self.add_to_top(&[child])?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.add_to_top(&[key, value])?;
                }
                b'e' | b'u' | 0x90 => {
                    let items = self.pop_mark()?;
                    self.add_to_top(&items)?;
                }
                // Globals: only set() and frozenset() for protocols 0-3.
                b'c' => {
                    let module = self.line_text()?;
                    let name = self.line_text()?;
                    self.global(&module, &name)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module.text, name.text) {
                        (Some(module), Some(name)) => self.global(&module, &name)?,
                        _ => {
                            return Err(CodecError::PickleGlobal(
                                "a name built on the stack".to_owned(),
                            ));
                        }
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let callee = self.pop()?;
                    if callee.builtin.is_none() {
                        return Err(forbidden("calls something that is not a global"));
                    }
                    self.copy(&args)?;
                    // The set holds the items of the list inside the argument tuple.
                    let depth = deep(&args, &self.memo).saturating_sub(1);
                    let size = match args.memo.and_then(|id| self.memo.get(&id)) {
                        Some(entry) => entry.size,
                        None => args.size,
                    };
                    self.push(Item {
                        depth,
                        size,
                        ..Item::default()
                    })?;
                }
                b'i' => {
                    let module = self.line_text()?;
                    let name = self.line_text()?;
                    return Err(CodecError::PickleGlobal(format!("{module}.{name}")));
                }
                b'o' | 0x81 | 0x92 | b'b' => return Err(forbidden("builds an object")),
                b'P' | b'Q' => return Err(forbidden("uses a persistent id")),
                0x82..=0x84 => {
                    return Err(CodecError::PickleGlobal(
                        "an extension code of copyreg".to_owned(),
                    ));
                }
                0x97 | 0x98 => return Err(forbidden("uses an out-of-band buffer")),
                other => return Err(malformed(format!("unknown opcode 0x{other:02x}"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_default(bytes: &[u8]) -> Result<Cow<'_, [u8]>, CodecError> {
        scan(bytes, &Limits::default())
    }

    #[test]
    fn small_pickles_pass_unchanged() {
        // pickle.dumps({'a': 1}, 2)
        let p = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s.";
        assert!(matches!(scan_default(p).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn big_integers_are_rewritten_with_their_digits() {
        // pickle.dumps({'b': 2**70}, 2)
        let p = b"\x80\x02}q\x00X\x01\x00\x00\x00bq\x01\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00@s.";
        let out = scan_default(p).unwrap();
        let needle = b"C\x1b\xffint:1180591620717411303424";
        assert!(out.windows(needle.len()).any(|w| w == needle), "{out:?}");
        // pickle.dumps({'b': -2**70}, 0)
        let p0 = b"(dp0\nVb\np1\nL-1180591620717411303424L\ns.";
        let out = scan_default(p0).unwrap();
        let needle = b"\xffint:-1180591620717411303424";
        assert!(out.windows(needle.len()).any(|w| w == needle), "{out:?}");
    }

    #[test]
    fn refuses_with_clear_reasons() {
        let cases: [(&[u8], &str); 6] = [
            (
                b"cposix\nsystem\n(Vls\ntR.",
                "pickle refused: it names a global (posix.system); only plain data is accepted",
            ),
            (
                b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x94.",
                "pickle refused: it names a global (os.system); only plain data is accepted",
            ),
            (
                b"\x80\x03C\x01x.",
                "pickle refused: bytes values are not supported; send text (str) instead",
            ),
            (
                b"\x80\x02c_codecs\nencode\nq\x00.",
                "pickle refused: bytes values are not supported; send text (str) instead",
            ),
            (
                b"\x80\x02}q\x00",
                "pickle refused: malformed (no STOP opcode)",
            ),
            (
                b"\x80\x02}.junk",
                "pickle refused: malformed (4 bytes after the end)",
            ),
        ];
        for (pickle, message) in cases {
            assert_eq!(scan_default(pickle).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn deep_nesting_is_refused_before_evaluation() {
        let mut p = b"\x80\x02".to_vec();
        p.extend(std::iter::repeat_n(b']', 1_000_000));
        p.extend(std::iter::repeat_n(b'a', 999_999));
        p.push(b'.');
        assert!(matches!(scan_default(&p), Err(CodecError::TooDeep(64))));
    }

    #[test]
    fn repeated_copies_of_a_big_value_are_refused() {
        // A 100,000-item list, then DUP/POP many times: quadratic copying.
        let mut p = b"\x80\x02](".to_vec();
        p.extend(std::iter::repeat_n(b'N', 100_000));
        p.push(b'e');
        for _ in 0..100_000 {
            p.extend_from_slice(b"20");
        }
        p.push(b'.');
        assert!(
            scan_default(&p)
                .unwrap_err()
                .to_string()
                .contains("copies shared values")
        );
    }
}
