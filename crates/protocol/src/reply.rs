//! The server's answer to a transfer: the legacy `OK` / `ERROR: reason`, or, for a
//! client that sent [`crate::EXT_HELLO`], one JSON line naming the stored item.

use serde::{Deserialize, Serialize};

/// The legacy reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok,
    Error(String),
}

impl Reply {
    /// The bytes the legacy server sends: `OK` or `ERROR: reason`, no terminator.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Reply::Ok => b"OK".to_vec(),
            Reply::Error(reason) => format!("ERROR: {reason}").into_bytes(),
        }
    }
}

/// The extended reply: one line of JSON ending in `\n`. Its first byte, `{`, tells it
/// apart from a legacy reply.
///
/// `R` is the receipt's type: a reader keeps it as JSON; the server writes its
/// receipt type directly, without building a JSON tree first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendedReply<R = serde_json::Value> {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The stored item's signed receipt (`ferry_tlog::Receipt` as JSON), when the
    /// server keeps a log. Kept as JSON here, so that a receipt a reader cannot
    /// parse never makes the reply unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<R>,
}

// Not derived: a derived `Default` would ask the receipt's type for one too.
impl<R> Default for ExtendedReply<R> {
    fn default() -> Self {
        ExtendedReply {
            ok: false,
            id: None,
            size: None,
            sha256: None,
            error: None,
            receipt: None,
        }
    }
}

impl<R: Serialize> ExtendedReply<R> {
    /// The bytes on the wire: compact JSON and a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("a reply always serializes");
        line.push(b'\n');
        line
    }
}

/// The result of looking at the bytes received so far after a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyParse {
    /// More bytes are needed.
    Incomplete,
    /// A legacy reply; it takes every byte received.
    Legacy(Reply),
    /// An extended reply, and how many bytes it took.
    Extended(ExtendedReply, usize),
}

/// Reads a reply from the bytes received so far.
pub fn parse_reply(buf: &[u8]) -> Result<ReplyParse, String> {
    if buf.is_empty() || buf == b"O" {
        return Ok(ReplyParse::Incomplete);
    }
    if buf[0] == b'{' {
        let Some(end) = buf.iter().position(|&b| b == b'\n') else {
            return Ok(ReplyParse::Incomplete);
        };
        let reply = serde_json::from_slice(&buf[..end])
            .map_err(|err| format!("unreadable extended reply: {err}"))?;
        return Ok(ReplyParse::Extended(reply, end + 1));
    }
    let text = String::from_utf8_lossy(buf);
    Ok(ReplyParse::Legacy(match text.strip_prefix("ERROR: ") {
        _ if text == "OK" => Reply::Ok,
        Some(reason) => Reply::Error(reason.to_owned()),
        None => Reply::Error(text.into_owned()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_replies_parse() {
        assert_eq!(parse_reply(b"OK"), Ok(ReplyParse::Legacy(Reply::Ok)));
        assert_eq!(parse_reply(b"O"), Ok(ReplyParse::Incomplete));
        assert_eq!(
            parse_reply(b"ERROR: nope"),
            Ok(ReplyParse::Legacy(Reply::Error("nope".into())))
        );
        assert_eq!(Reply::Error("x".into()).to_bytes(), b"ERROR: x");
    }

    #[test]
    fn extended_replies_wait_for_their_newline() {
        let reply = ExtendedReply {
            ok: true,
            id: Some("01J".into()),
            size: Some(3),
            ..ExtendedReply::default()
        };
        let bytes = reply.to_bytes();
        assert_eq!(
            parse_reply(&bytes[..bytes.len() - 1]),
            Ok(ReplyParse::Incomplete)
        );
        assert_eq!(
            parse_reply(&bytes),
            Ok(ReplyParse::Extended(reply, bytes.len()))
        );
    }
}
