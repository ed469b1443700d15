//! Checkpoints in the C2SP `tlog-checkpoint` format: the body of a signed note
//! that commits to a log's size and root.
//!
//! ```text
//! <origin>\n
//! <tree size in decimal>\n
//! <root hash in standard base64, padded>\n
//! [<extension line>\n ...]
//! ```
//!
//! Ferry writes no extension lines. When parsing, well-formed extension lines
//! (non-empty, no control characters) are accepted and ignored, as C2SP asks of
//! clients that do not know them; anything else that departs from the format is
//! rejected.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::NoteError;
use crate::hash::Hash;

/// A log's origin, size and root: what a signed note commits to. Built only
/// through [`Checkpoint::new`] or [`Checkpoint::parse`], so its text form is
/// always well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
}

impl Checkpoint {
    /// A checkpoint of the log named `origin` (e.g. `ferry.example.com/log`)
    /// with `size` leaves and root `root`.
    ///
    /// # Errors
    /// [`NoteError::Malformed`] if `origin` is empty or holds a control
    /// character (a newline among them).
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Result<Self, NoteError> {
        let origin = origin.into();
        check_line(&origin, "the origin line must be non-empty text")?;
        Ok(Self { origin, size, root })
    }

    /// Parses a checkpoint body (the text a note's signature covers).
    ///
    /// # Errors
    /// [`NoteError::Malformed`] when the body does not follow the format: fewer
    /// than three lines, no final newline, a size that is not canonical
    /// decimal, a root that is not 32 bytes in padded standard base64, an empty
    /// line or a control character.
    pub fn parse(body: &str) -> Result<Self, NoteError> {
        let Some(body) = body.strip_suffix('\n') else {
            return Err(NoteError::Malformed("a checkpoint must end with a newline"));
        };
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(NoteError::Malformed(
                "a checkpoint has at least three lines",
            ));
        };
        for extension in lines {
            check_line(extension, "an extension line must be non-empty text")?;
        }
        Self::new(origin, parse_size(size)?, parse_root(root)?)
    }

    /// The log's origin line.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of leaves.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root hash of the tree of [`size`](Self::size) leaves.
    #[must_use]
    pub fn root(&self) -> &Hash {
        &self.root
    }

    /// The checkpoint body: three lines, each ending in a newline.
    #[must_use]
    pub fn body(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }
}

/// A line is non-empty and holds no control characters.
fn check_line(line: &str, what: &'static str) -> Result<(), NoteError> {
    if line.is_empty() || line.chars().any(char::is_control) {
        return Err(NoteError::Malformed(what));
    }
    Ok(())
}

/// Canonical decimal: digits only, no sign, no leading zero, fits in a `u64`.
fn parse_size(text: &str) -> Result<u64, NoteError> {
    const BAD: NoteError = NoteError::Malformed("the tree size must be canonical decimal");
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD);
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(BAD);
    }
    text.parse().map_err(|_| BAD)
}

/// 32 bytes in padded standard base64.
fn parse_root(text: &str) -> Result<Hash, NoteError> {
    const BAD: NoteError =
        NoteError::Malformed("the root hash must be 32 bytes in padded standard base64");
    let bytes = STANDARD.decode(text).map_err(|_| BAD)?;
    bytes.try_into().map_err(|_| BAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT_B64: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

    #[test]
    fn body_is_three_lines_and_parses_back() {
        let checkpoint = Checkpoint::new("example.com/log", 42, [1; 32]).unwrap();
        let body = checkpoint.body();
        assert_eq!(body, format!("example.com/log\n42\n{ROOT_B64}\n"));
        assert_eq!(Checkpoint::parse(&body).unwrap(), checkpoint);
        assert_eq!(checkpoint.origin(), "example.com/log");
        assert_eq!(checkpoint.size(), 42);
        assert_eq!(checkpoint.root(), &[1; 32]);
        let empty = Checkpoint::new("o", 0, [0; 32]).unwrap();
        assert_eq!(Checkpoint::parse(&empty.body()).unwrap(), empty);
    }

    #[test]
    fn well_formed_extension_lines_are_ignored() {
        let body = format!("o\n1\n{ROOT_B64}\next one\nanother\n");
        let checkpoint = Checkpoint::parse(&body).unwrap();
        assert_eq!(checkpoint, Checkpoint::new("o", 1, [1; 32]).unwrap());
    }

    #[test]
    fn bad_origins_are_refused() {
        for origin in ["", "a\nb", "tab\there", "nul\0"] {
            assert!(matches!(
                Checkpoint::new(origin, 1, [0; 32]),
                Err(NoteError::Malformed(_))
            ));
        }
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let short_root = STANDARD.encode([1u8; 31]);
        let unpadded = ROOT_B64.trim_end_matches('=');
        let url_safe = "____________________________________________";
        let bodies = [
            String::new(),
            "\n".to_owned(),
            format!("o\n1\n{ROOT_B64}"),
            format!("o\n1\n{ROOT_B64}\r\n"),
            "o\n1\n".to_owned(),
            format!("\n1\n{ROOT_B64}\n"),
            format!("o\n\n{ROOT_B64}\n"),
            format!("o\n01\n{ROOT_B64}\n"),
            format!("o\n+1\n{ROOT_B64}\n"),
            format!("o\n-1\n{ROOT_B64}\n"),
            format!("o\n1.0\n{ROOT_B64}\n"),
            format!("o\n 1\n{ROOT_B64}\n"),
            format!("o\n18446744073709551616\n{ROOT_B64}\n"),
            "o\n1\n\n".to_owned(),
            format!("o\n1\n{short_root}\n"),
            format!("o\n1\n{unpadded}\n"),
            format!("o\n1\n{url_safe}\n"),
            format!("o\n1\n {ROOT_B64}\n"),
            format!("o\n1\n{ROOT_B64}\n\n"),
            format!("o\n1\n{ROOT_B64}\nok\n\next\n"),
            format!("o\n1\n{ROOT_B64}\nbell\x07\n"),
        ];
        for body in bodies {
            assert!(
                matches!(Checkpoint::parse(&body), Err(NoteError::Malformed(_))),
                "accepted {body:?}"
            );
        }
        // The largest size is fine.
        let max = format!("o\n18446744073709551615\n{ROOT_B64}\n");
        assert_eq!(Checkpoint::parse(&max).unwrap().size(), u64::MAX);
    }
}
