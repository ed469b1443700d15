//! Resumable uploads in the native protocol (extension 3 of
//! `docs/protocol-extensions.md`): the command lines a client runs with
//! [`crate::encode::upload_command`], and the JSON line that answers each.
//!
//! A command line is ASCII words separated by single spaces:
//!
//! | command | meaning |
//! | --- | --- |
//! | `open <meta> <length or -> [<name>]` | open an upload; `meta` is the INITIAL packet's meta byte as 2 hex digits, `name` the hex of its UTF-8 |
//! | `state <id>` | the upload's state |
//! | `length <id> <length>` | set the length of an upload opened with `-` |
//! | `append <id> <offset>` | the next transfer appends its plaintext at `offset` |
//! | `finish <id>` | store the complete upload as an item |
//! | `cancel <id>` | cancel the upload |
//!
//! Parsing and writing them live here, with no I/O: the server runs them, the
//! client writes them.

use crate::{DataType, MAX_UPLOAD_COMMAND, Meta, Serialization};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The longest upload id a command may name (a ULID has 26 characters).
const MAX_ID_LEN: usize = 64;

/// One upload command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadCommand {
    /// Opens an upload of `length` bytes (`None`: set later with `Length`).
    Open {
        meta: Meta,
        length: Option<u64>,
        name: Option<String>,
    },
    /// Asks for the upload's state.
    State { id: String },
    /// Sets the length of an upload opened without one.
    Length { id: String, length: u64 },
    /// Arms the connection's next transfer as an append at `offset`.
    Append { id: String, offset: u64 },
    /// Stores the complete upload as an item.
    Finish { id: String },
    /// Cancels the upload.
    Cancel { id: String },
}

impl UploadCommand {
    /// Parses a command line; the error says what is wrong with it.
    pub fn parse(line: &str) -> Result<UploadCommand, String> {
        let words: Vec<&str> = line.split(' ').collect();
        let command = match words.as_slice() {
            ["open", meta, length, rest @ ..] if rest.len() <= 1 => UploadCommand::Open {
                meta: parse_meta(meta)?,
                length: match *length {
                    "-" => None,
                    length => Some(parse_number("length", length)?),
                },
                name: rest.first().map(|hex| parse_name(hex)).transpose()?,
            },
            ["state", id] => UploadCommand::State { id: parse_id(id)? },
            ["length", id, length] => UploadCommand::Length {
                id: parse_id(id)?,
                length: parse_number("length", length)?,
            },
            ["append", id, offset] => UploadCommand::Append {
                id: parse_id(id)?,
                offset: parse_number("offset", offset)?,
            },
            ["finish", id] => UploadCommand::Finish { id: parse_id(id)? },
            ["cancel", id] => UploadCommand::Cancel { id: parse_id(id)? },
            [word, ..] if is_command(word) => {
                return Err(format!("wrong arguments to {word:?} in {:?}", shown(line)));
            }
            _ => return Err(format!("unknown upload command {:?}", shown(line))),
        };
        Ok(command)
    }

    /// The command line. An `open`'s name is cut at a character boundary so
    /// that the line fits [`MAX_UPLOAD_COMMAND`] bytes (at least 241 bytes of
    /// name always fit).
    pub fn to_line(&self) -> String {
        match self {
            UploadCommand::Open { meta, length, name } => {
                let length = length.map_or_else(|| "-".to_owned(), |l| l.to_string());
                let mut line = format!("open {:02x} {length}", meta.to_byte());
                if let Some(name) = name {
                    let room = (MAX_UPLOAD_COMMAND - line.len() - 1) / 2;
                    let mut end = name.len().min(room);
                    while !name.is_char_boundary(end) {
                        end -= 1;
                    }
                    if end > 0 {
                        line.push(' ');
                        for byte in &name.as_bytes()[..end] {
                            line.push_str(&format!("{byte:02x}"));
                        }
                    }
                }
                line
            }
            UploadCommand::State { id } => format!("state {id}"),
            UploadCommand::Length { id, length } => format!("length {id} {length}"),
            UploadCommand::Append { id, offset } => format!("append {id} {offset}"),
            UploadCommand::Finish { id } => format!("finish {id}"),
            UploadCommand::Cancel { id } => format!("cancel {id}"),
        }
    }
}

fn is_command(word: &str) -> bool {
    ["open", "state", "length", "append", "finish", "cancel"].contains(&word)
}

/// At most 80 characters of a line, for an error message.
fn shown(line: &str) -> String {
    line.chars().take(80).collect()
}

fn parse_meta(text: &str) -> Result<Meta, String> {
    let byte = (text.len() == 2)
        .then(|| u8::from_str_radix(text, 16).ok())
        .flatten()
        .ok_or_else(|| format!("the meta byte must be 2 hex digits, not {:?}", shown(text)))?;
    Meta::from_byte(byte).map_err(|err| err.to_string())
}

fn parse_number(what: &str, text: &str) -> Result<u64, String> {
    text.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| text.parse().ok())
        .flatten()
        .ok_or_else(|| format!("the {what} must be a decimal number, not {:?}", shown(text)))
}

fn parse_id(text: &str) -> Result<String, String> {
    match !text.is_empty()
        && text.len() <= MAX_ID_LEN
        && text.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        true => Ok(text.to_owned()),
        false => Err(format!("{:?} is not an upload id", shown(text))),
    }
}

fn parse_name(hex: &str) -> Result<String, String> {
    let bad = || "the name must be the hex of its UTF-8 bytes".to_owned();
    if hex.is_empty() || !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("checked hex digits"))
        .collect();
    String::from_utf8(bytes).map_err(|_| "the name is not UTF-8".to_owned())
}

/// An unfinished upload, as the server reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadState {
    /// The upload's id (a ULID).
    pub id: String,
    pub data_type: DataType,
    pub serialization: Serialization,
    /// Whether its transfers are Fernet-encrypted on the wire.
    pub encrypted_in_transit: bool,
    #[serde(default)]
    pub name: Option<String>,
    /// Bytes committed, durable: where the next append starts.
    pub offset: u64,
    /// The whole size, once known.
    #[serde(default)]
    pub length: Option<u64>,
    /// RFC 3339 timestamps.
    pub created_at: String,
    pub updated_at: String,
    pub expires_at: String,
}

impl UploadState {
    /// The meta byte every append's INITIAL packet must carry; `None` for a
    /// combination no meta byte expresses.
    pub fn meta(&self) -> Option<Meta> {
        match self.data_type {
            DataType::Text if self.serialization == Serialization::Txt => {
                Some(Meta::text(self.encrypted_in_transit))
            }
            DataType::Text => None,
            DataType::Dictionary => Meta::dictionary(self.serialization, self.encrypted_in_transit),
        }
    }
}

/// Why an upload command failed (the reply's `code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadErrorCode {
    /// An append that does not start at the committed offset (the reply's
    /// `offset` says where it is).
    Offset,
    /// Another append of the upload is in progress.
    Busy,
    /// More bytes than the upload's length, or the server's item size limit.
    TooLarge,
    /// A length that cannot be set.
    Length,
    /// A finish before the last byte.
    Incomplete,
    /// No such upload (never opened, finished, cancelled or expired).
    NotFound,
    /// The server cannot do it now (its store failed); try again later.
    Unavailable,
    /// A command line that does not parse, or an append transfer that does
    /// not match its upload.
    BadCommand,
    /// The server's policy refuses it (encryption, pickle, a dictionary).
    Refused,
    /// A code this client does not know.
    #[serde(other)]
    Other,
}

impl UploadErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            UploadErrorCode::Offset => "offset",
            UploadErrorCode::Busy => "busy",
            UploadErrorCode::TooLarge => "too_large",
            UploadErrorCode::Length => "length",
            UploadErrorCode::Incomplete => "incomplete",
            UploadErrorCode::NotFound => "not_found",
            UploadErrorCode::Unavailable => "unavailable",
            UploadErrorCode::BadCommand => "bad_command",
            UploadErrorCode::Refused => "refused",
            UploadErrorCode::Other => "other",
        }
    }
}

impl std::fmt::Display for UploadErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer to an upload command (and to an append's transfer): one line of
/// compact JSON ending in `\n`. A `finish` is answered with an
/// [`crate::ExtendedReply`] instead when it succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadReply {
    pub ok: bool,
    /// Boxed: a failure, which has none, stays small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<Box<UploadState>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<UploadErrorCode>,
    /// With [`UploadErrorCode::Offset`]: the committed offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl UploadReply {
    /// A success naming the upload's state.
    pub fn success(upload: UploadState) -> UploadReply {
        UploadReply {
            ok: true,
            upload: Some(Box::new(upload)),
            error: None,
            code: None,
            offset: None,
        }
    }

    /// A failure: its code and a reason for a person.
    pub fn failure(code: UploadErrorCode, error: impl Into<String>) -> UploadReply {
        UploadReply {
            ok: false,
            upload: None,
            error: Some(error.into()),
            code: Some(code),
            offset: None,
        }
    }

    /// The bytes on the wire: compact JSON and a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("a reply always serializes");
        line.push(b'\n');
        line
    }
}

/// Reads one JSON line off the front of the bytes received so far: the value
/// and the bytes it took, or `None` until its newline has arrived.
pub fn parse_json_line<T: DeserializeOwned>(buf: &[u8]) -> Result<Option<(T, usize)>, String> {
    if buf.first().is_some_and(|&b| b != b'{') {
        let shown = String::from_utf8_lossy(&buf[..buf.len().min(80)]).into_owned();
        return Err(format!("expected a JSON line, got {shown:?}"));
    }
    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    let value = serde_json::from_slice(&buf[..end])
        .map_err(|err| format!("unreadable JSON reply: {err}"))?;
    Ok(Some((value, end + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "01JQ3V7ZK9T6N2XQ8W4R5B1C0D";

    #[test]
    fn every_command_round_trips_through_its_line() {
        let commands = [
            UploadCommand::Open {
                meta: Meta::text(true),
                length: Some(20_000_000),
                name: Some("notes é.txt".into()),
            },
            UploadCommand::Open {
                meta: Meta::text(false),
                length: None,
                name: None,
            },
            UploadCommand::State { id: ID.into() },
            UploadCommand::Length {
                id: ID.into(),
                length: 0,
            },
            UploadCommand::Append {
                id: ID.into(),
                offset: u64::MAX,
            },
            UploadCommand::Finish { id: ID.into() },
            UploadCommand::Cancel { id: ID.into() },
        ];
        for command in commands {
            let line = command.to_line();
            assert_eq!(UploadCommand::parse(&line), Ok(command), "{line}");
        }
    }

    #[test]
    fn lines_are_byte_exact() {
        let open = UploadCommand::Open {
            meta: Meta::text(true),
            length: Some(12),
            name: Some("a.txt".into()),
        };
        assert_eq!(open.to_line(), "open 02 12 612e747874");
        let deferred = UploadCommand::Open {
            meta: Meta::dictionary(Serialization::Json, false).unwrap(),
            length: None,
            name: Some(String::new()),
        };
        assert_eq!(deferred.to_line(), "open 28 -");
        assert_eq!(
            UploadCommand::Append {
                id: ID.into(),
                offset: 8
            }
            .to_line(),
            format!("append {ID} 8")
        );
    }

    #[test]
    fn a_long_name_is_cut_to_fit_the_line_on_a_character_boundary() {
        let open = UploadCommand::Open {
            meta: Meta::text(false),
            length: Some(u64::MAX),
            name: Some("é".repeat(300)),
        };
        let line = open.to_line();
        assert!(line.len() <= MAX_UPLOAD_COMMAND, "{}", line.len());
        let Ok(UploadCommand::Open {
            name: Some(name), ..
        }) = UploadCommand::parse(&line)
        else {
            panic!("{line}")
        };
        assert_eq!(name, "é".repeat(120));
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let cases = [
            ("", "unknown upload command"),
            ("delete X", "unknown upload command"),
            ("state", "wrong arguments to \"state\""),
            ("state a b", "wrong arguments"),
            ("state a-b", "is not an upload id"),
            ("append X +5", "offset must be a decimal number"),
            (
                "append X 18446744073709551616",
                "offset must be a decimal number",
            ),
            ("open 0 5", "2 hex digits"),
            ("open ff 5", "unknown meta value 0xff"),
            ("open 00 5 6", "hex of its UTF-8"),
            ("open 00 5 ff", "not UTF-8"),
            ("open 00 5 61 62", "wrong arguments"),
            ("open  00 5", "2 hex digits"),
        ];
        for (line, expected) in cases {
            let err = UploadCommand::parse(line).unwrap_err();
            assert!(err.contains(expected), "{line:?}: {err}");
        }
    }

    #[test]
    fn replies_are_one_line_and_unknown_codes_still_read() {
        let failure = UploadReply {
            offset: Some(96_000),
            ..UploadReply::failure(
                UploadErrorCode::Offset,
                "the upload is at offset 96000, not 0",
            )
        };
        let bytes = failure.to_bytes();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            "{\"ok\":false,\"error\":\"the upload is at offset 96000, not 0\",\"code\":\"offset\",\"offset\":96000}\n"
        );
        assert_eq!(
            parse_json_line::<UploadReply>(&bytes[..bytes.len() - 1]),
            Ok(None)
        );
        let mut two = bytes.clone();
        two.extend_from_slice(b"{\"ok\":false,\"code\":\"new_thing\",\"extra\":1}\n");
        let (first, used) = parse_json_line::<UploadReply>(&two).unwrap().unwrap();
        assert_eq!((first, used), (failure, bytes.len()));
        let (second, _) = parse_json_line::<UploadReply>(&two[used..])
            .unwrap()
            .unwrap();
        assert_eq!(second.code, Some(UploadErrorCode::Other));
        assert!(parse_json_line::<UploadReply>(b"OK").is_err());
    }

    #[test]
    fn a_state_names_its_meta() {
        let state: UploadState = serde_json::from_value(serde_json::json!({
            "id": ID, "data_type": "text", "serialization": "txt",
            "encrypted_in_transit": true, "name": null, "offset": 3, "length": null,
            "created_at": "2026-12-02T10:00:00Z", "updated_at": "2026-12-02T10:00:00Z",
            "expires_at": "2026-12-03T10:00:00Z", "peer": "ignored"
        }))
        .unwrap();
        assert_eq!(state.meta(), Some(Meta::text(true)));
        assert_eq!(
            UploadReply::success(state.clone()).to_bytes()[..26],
            *b"{\"ok\":true,\"upload\":{\"id\":"
        );
    }
}
