//! Ferry's leaves: what one entry of its log says happened to an item.
//!
//! A leaf is UTF-8 text, one `key value` pair a line, each line ending in `\n`
//! (0x0A), the keys in the order given below, no other lines:
//!
//! ```text
//! ferry-leaf/v1
//! event <stored | deleted | expired | aborted | kept | read | hold | release>
//! id <the item's id: 26 characters of Crockford base32 (a ULID)>
//! <the event's fields, see below>
//! time <when it happened: RFC 3339, UTC, e.g. 2026-12-02T09:49:24.123456789Z>
//! ```
//!
//! | event | fields between `id` and `time`, in this order |
//! | --- | --- |
//! | `stored` | `sha256 <64 lowercase hex>`, `size <decimal bytes>`, `kind <dictionary or text>`, `format <serialization>` (`time` is when the item began to arrive) |
//! | `deleted` | `credential <who>`, `address <from where>` |
//! | `expired` | `rule <the retention rule that expired it>` |
//! | `aborted` | none: the item of an earlier `stored` leaf was never committed (its commit failed, or a crash came between the leaf and the item) |
//! | `kept` | none: the delete of an earlier `deleted` or `expired` leaf did not happen; the item is still stored |
//! | `read` | `what <content or metadata>`, `credential <who>`, `address <from where>` |
//! | `hold`, `release` | `credential <who>`, `address <from where>` |
//!
//! A value is non-empty and holds no control character; a credential is never
//! a secret (Ferry writes `token:` and the first 8 hex digits of the SHA-256 of
//! the admin token). No leaf holds an item's name or content: a deleted item's
//! leaves say that it existed and its hash, never what it was.

use std::fmt::{self, Write as _};

/// The first line of every leaf of this version.
pub const LEAF_HEADER: &str = "ferry-leaf/v1";

/// What a leaf records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// An item was stored (and acknowledged, unless an `aborted` leaf follows).
    Stored,
    /// An item was deleted through the admin API.
    Deleted,
    /// An item was deleted by the retention rules.
    Expired,
    /// A `stored` leaf's item was never committed.
    Aborted,
    /// A `deleted` or `expired` leaf's delete did not happen.
    Kept,
    /// An item's content or metadata was read through the admin API.
    Read,
    /// An item was put on legal hold.
    Hold,
    /// An item's legal hold was lifted.
    Release,
}

impl Event {
    /// The event's word in a leaf.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Stored => "stored",
            Event::Deleted => "deleted",
            Event::Expired => "expired",
            Event::Aborted => "aborted",
            Event::Kept => "kept",
            Event::Read => "read",
            Event::Hold => "hold",
            Event::Release => "release",
        }
    }

    /// The keys of the event's own fields, in order.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Event::Stored => &["sha256", "size", "kind", "format"],
            Event::Deleted | Event::Hold | Event::Release => &["credential", "address"],
            Event::Expired => &["rule"],
            Event::Aborted | Event::Kept => &[],
            Event::Read => &["what", "credential", "address"],
        }
    }

    fn parse(word: &str) -> Option<Event> {
        [
            Event::Stored,
            Event::Deleted,
            Event::Expired,
            Event::Aborted,
            Event::Kept,
            Event::Read,
            Event::Hold,
            Event::Release,
        ]
        .into_iter()
        .find(|event| event.as_str() == word)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who did something through the admin API, as a leaf records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Which credential: never a secret.
    pub credential: String,
    /// The client's address.
    pub address: String,
}

/// A leaf that does not follow the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed log leaf: {0}")]
pub struct EntryError(pub &'static str);

/// One leaf: its text, always well formed (built by the constructors or
/// [`Entry::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    event: Event,
    text: String,
}

impl Entry {
    /// An item stored: `kind` and `format` as the admin API names them
    /// (`dictionary`, `json`), `time` in RFC 3339.
    #[must_use]
    pub fn stored(id: &str, sha256: &str, size: u64, kind: &str, format: &str, time: &str) -> Self {
        let size = size.to_string();
        Self::build(Event::Stored, id, &[sha256, &size, kind, format], time)
    }

    /// An item deleted by `by`.
    #[must_use]
    pub fn deleted(id: &str, by: &Actor, time: &str) -> Self {
        Self::build(Event::Deleted, id, &[&by.credential, &by.address], time)
    }

    /// An item deleted because `rule` expired it.
    #[must_use]
    pub fn expired(id: &str, rule: &str, time: &str) -> Self {
        Self::build(Event::Expired, id, &[rule], time)
    }

    /// A `stored` leaf whose item was never committed.
    #[must_use]
    pub fn aborted(id: &str, time: &str) -> Self {
        Self::build(Event::Aborted, id, &[], time)
    }

    /// A `deleted` or `expired` leaf whose delete did not happen.
    #[must_use]
    pub fn kept(id: &str, time: &str) -> Self {
        Self::build(Event::Kept, id, &[], time)
    }

    /// An item's `what` (`content` or `metadata`) read by `by`.
    #[must_use]
    pub fn read(id: &str, what: &str, by: &Actor, time: &str) -> Self {
        Self::build(Event::Read, id, &[what, &by.credential, &by.address], time)
    }

    /// An item put on hold (`held`) or released by `by`.
    #[must_use]
    pub fn hold(id: &str, held: bool, by: &Actor, time: &str) -> Self {
        let event = if held { Event::Hold } else { Event::Release };
        Self::build(event, id, &[&by.credential, &by.address], time)
    }

    /// Values that would break the format (empty, or with a control character)
    /// are written as `-`, or with each such character as `?`: a leaf is
    /// always well formed.
    fn build(event: Event, id: &str, values: &[&str], time: &str) -> Self {
        // One allocation: every item's `stored` leaf is built here.
        let mut text = String::with_capacity(256);
        let _ = write!(text, "{LEAF_HEADER}\nevent {event}\n");
        let keys = event.fields();
        debug_assert_eq!(keys.len(), values.len());
        let pairs = [("id", id)]
            .into_iter()
            .chain(keys.iter().copied().zip(values.iter().copied()))
            .chain([("time", time)]);
        for (key, value) in pairs {
            text.push_str(key);
            text.push(' ');
            push_clean(&mut text, value);
            text.push('\n');
        }
        Self { event, text }
    }

    /// Parses a leaf's bytes.
    ///
    /// # Errors
    /// [`EntryError`] unless the bytes are a leaf of this version exactly as
    /// the [module docs](self) lay it out.
    pub fn parse(bytes: &[u8]) -> Result<Self, EntryError> {
        let text = std::str::from_utf8(bytes).map_err(|_| EntryError("not UTF-8"))?;
        let body = text
            .strip_suffix('\n')
            .ok_or(EntryError("a leaf ends with a newline"))?;
        let mut lines = body.split('\n');
        if lines.next() != Some(LEAF_HEADER) {
            return Err(EntryError("the first line is not ferry-leaf/v1"));
        }
        let event = lines
            .next()
            .and_then(|line| line.strip_prefix("event "))
            .and_then(Event::parse)
            .ok_or(EntryError("the second line is not a known event"))?;
        let keys = ["id"]
            .into_iter()
            .chain(event.fields().iter().copied())
            .chain(["time"]);
        for key in keys {
            let line = lines.next().ok_or(EntryError("a field is missing"))?;
            let value = line
                .strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(' '))
                .ok_or(EntryError("a field is missing or out of order"))?;
            if value.is_empty() || value.chars().any(char::is_control) {
                return Err(EntryError("a value is empty or holds a control character"));
            }
        }
        if lines.next().is_some() {
            return Err(EntryError("a leaf has no lines past its time"));
        }
        Ok(Self {
            event,
            text: text.to_owned(),
        })
    }

    /// What happened.
    #[must_use]
    pub fn event(&self) -> Event {
        self.event
    }

    /// The value of field `key` (`id`, `sha256`, `time`, ...), if the event has it.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.text
            .lines()
            .skip(1)
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
    }

    /// The item's id.
    #[must_use]
    pub fn id(&self) -> &str {
        self.get("id").expect("every leaf has an id")
    }

    /// The leaf's text.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The leaf's bytes: what its leaf hash is of.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// The RFC 9162 leaf hash of the leaf.
    #[must_use]
    pub fn leaf_hash(&self) -> crate::Hash {
        crate::leaf_hash(self.as_bytes())
    }
}

/// `value`, well formed: non-empty, control characters as `?`.
fn push_clean(text: &mut String, value: &str) {
    if value.is_empty() {
        text.push('-');
    } else if value.chars().any(char::is_control) {
        text.extend(value.chars().map(|c| if c.is_control() { '?' } else { c }));
    } else {
        text.push_str(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "01JQ3V7ZK9T6N2XQ8W4R5B1C0D";
    const TIME: &str = "2026-12-02T09:49:24.5Z";

    fn actor() -> Actor {
        Actor {
            credential: "token:0a1b2c3d".into(),
            address: "127.0.0.1".into(),
        }
    }

    #[test]
    fn a_stored_leaf_is_laid_out_as_documented() {
        let entry = Entry::stored(ID, &"ab".repeat(32), 42, "dictionary", "json", TIME);
        assert_eq!(
            entry.text(),
            format!(
                "ferry-leaf/v1\nevent stored\nid {ID}\nsha256 {}\nsize 42\nkind dictionary\nformat json\ntime {TIME}\n",
                "ab".repeat(32)
            )
        );
        assert_eq!(Entry::parse(entry.as_bytes()).unwrap(), entry);
        assert_eq!(entry.get("size"), Some("42"));
        assert_eq!(entry.id(), ID);
        assert_eq!(entry.event(), Event::Stored);
    }

    #[test]
    fn every_event_parses_back() {
        for entry in [
            Entry::deleted(ID, &actor(), TIME),
            Entry::expired(ID, "dict=30d", TIME),
            Entry::aborted(ID, TIME),
            Entry::kept(ID, TIME),
            Entry::read(ID, "content", &actor(), TIME),
            Entry::hold(ID, true, &actor(), TIME),
            Entry::hold(ID, false, &actor(), TIME),
        ] {
            assert_eq!(Entry::parse(entry.as_bytes()).unwrap(), entry);
        }
        let read = Entry::read(ID, "metadata", &actor(), TIME);
        assert_eq!(read.get("credential"), Some("token:0a1b2c3d"));
        assert_eq!(read.get("address"), Some("127.0.0.1"));
        assert_eq!(read.event(), Event::Read);
    }

    #[test]
    fn values_that_would_break_the_format_are_cleaned() {
        let odd = Actor {
            credential: String::new(),
            address: "a\nb".into(),
        };
        let entry = Entry::deleted(ID, &odd, TIME);
        assert_eq!(entry.get("credential"), Some("-"));
        assert_eq!(entry.get("address"), Some("a?b"));
        assert_eq!(Entry::parse(entry.as_bytes()).unwrap(), entry);
    }

    #[test]
    fn anything_else_is_refused() {
        let good = Entry::aborted(ID, TIME).text().to_owned();
        let bad = [
            good.replace("v1", "v2"),
            good.replace("aborted", "vanished"),
            good.trim_end().to_owned(),
            good.replace(&format!("id {ID}\n"), ""),
            format!("{good}extra line\n"),
            good.replace("time ", "time  \u{7}"),
            good.replace(
                &format!("id {ID}\ntime {TIME}\n"),
                &format!("time {TIME}\nid {ID}\n"),
            ),
        ];
        for text in bad {
            assert!(Entry::parse(text.as_bytes()).is_err(), "{text:?}");
        }
        assert!(Entry::parse(&[0xff, 0xfe]).is_err());
    }
}
