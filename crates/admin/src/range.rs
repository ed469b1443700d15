//! The `Range` request header (RFC 9110 §14): one byte range, in any of its three
//! forms (`bytes=a-b`, `bytes=a-`, `bytes=-n`).
//!
//! As the RFC allows, a header this server does not understand (another unit,
//! bad syntax, several ranges) is ignored and the whole content is served; a
//! well-formed range that does not overlap the content is unsatisfiable (416).

use std::ops::Range;

/// What a `Range` header asks of content of a given size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RangeRequest {
    /// No usable range: serve everything (200).
    Full,
    /// These bytes (206); never empty, always inside the content.
    Partial(Range<u64>),
    /// A range that does not overlap the content (416).
    Unsatisfiable,
}

/// Reads a `Range` header against content of `size` bytes.
pub(crate) fn parse_range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| strip_prefix_ignore_case(h.trim(), "bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    match (number(first), number(last)) {
        // bytes=-n: the last n bytes.
        (None, Some(n)) if first.is_empty() => {
            if n == 0 || size == 0 {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial(size.saturating_sub(n)..size)
            }
        }
        // bytes=a-: from a to the end.
        (Some(a), None) if last.is_empty() => satisfiable(a, size, size),
        // bytes=a-b: inclusive.
        (Some(a), Some(b)) if a <= b => satisfiable(a, b.saturating_add(1), size),
        _ => RangeRequest::Full,
    }
}

fn satisfiable(start: u64, end: u64, size: u64) -> RangeRequest {
    if start >= size {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Partial(start..end.min(size))
    }
}

/// A non-empty run of ASCII digits as a number (saturating on overflow).
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::{Full, Partial, Unsatisfiable};
    use super::*;

    #[test]
    fn the_three_forms_select_the_right_bytes() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Partial(0..10));
        assert_eq!(parse_range(Some("bytes=90-200"), 100), Partial(90..100));
        assert_eq!(parse_range(Some("bytes=10-"), 100), Partial(10..100));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Partial(90..100));
        assert_eq!(parse_range(Some("bytes=-1000"), 100), Partial(0..100));
        assert_eq!(parse_range(Some("Bytes=5-5"), 100), Partial(5..6));
    }

    #[test]
    fn ranges_outside_the_content_are_unsatisfiable() {
        assert_eq!(parse_range(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=100-200"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-5"), 0), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
    }

    #[test]
    fn headers_not_understood_are_ignored() {
        for header in [
            None,
            Some("items=0-1"),
            Some("bytes=5-1"),
            Some("bytes=a-b"),
            Some("bytes=0-1,5-6"),
            Some("bytes=-"),
            Some("bytes=1"),
        ] {
            assert_eq!(parse_range(header, 100), Full, "{header:?}");
        }
    }
}
