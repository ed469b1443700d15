//! Writing packets, exactly as the legacy client does.

use crate::{
    EXT_NAME_NIBBLE, EXT_UPLOAD_NIBBLE, EXT_UPLOAD_RUN, FLAG_FINAL, FLAG_INITIAL, MAX_NAME_LEN,
    MAX_PAYLOAD, MAX_UPLOAD_COMMAND, Meta,
};
use bytes::{BufMut, BytesMut};

/// The operation byte of a TRANSFER packet.
pub fn op_byte(initial: bool, final_: bool) -> u8 {
    (if initial { FLAG_INITIAL } else { 0 }) | (if final_ { FLAG_FINAL } else { 0 })
}

/// Appends one packet to `out`. `meta` must be given exactly for the INITIAL packet.
///
/// # Panics
/// If the payload is longer than [`MAX_PAYLOAD`]: callers cut their data into pieces.
pub fn packet(out: &mut BytesMut, meta: Option<Meta>, final_: bool, payload: &[u8]) {
    out.reserve(4 + payload.len());
    packet_head(out, meta, final_, payload.len());
    out.put_slice(payload);
}

/// Appends the head of a packet whose payload is `len` bytes (the operation
/// byte, the meta byte of an INITIAL packet and the length): the packet is
/// that head, then the payload.
///
/// # Panics
/// As [`packet`].
pub fn packet_head(out: &mut BytesMut, meta: Option<Meta>, final_: bool, len: usize) {
    assert!(
        len <= MAX_PAYLOAD,
        "payload of {len} bytes does not fit a packet"
    );
    out.put_u8(op_byte(meta.is_some(), final_));
    if let Some(meta) = meta {
        out.put_u8(meta.to_byte());
    }
    out.put_u16(len as u16);
}

/// The bytes that announce a file name for the next transfer (Ferry extension): two
/// unassigned-operation bytes per name byte, which the legacy server ignores. Names
/// longer than [`MAX_NAME_LEN`] bytes are cut at a character boundary.
pub fn name_nibbles(name: &str) -> Vec<u8> {
    let mut end = name.len().min(MAX_NAME_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.as_bytes()[..end]
        .iter()
        .flat_map(|byte| [EXT_NAME_NIBBLE | byte >> 4, EXT_NAME_NIBBLE | byte & 0x0f])
        .collect()
}

/// The bytes that run an upload command line (Ferry extension, see
/// [`crate::upload`]): two unassigned-operation bytes per byte of `line`, high
/// nibble first, then [`EXT_UPLOAD_RUN`]. The legacy server ignores them all.
///
/// # Panics
/// If `line` is longer than [`MAX_UPLOAD_COMMAND`]: commands are built by
/// [`crate::upload::UploadCommand::to_line`], which keeps them short enough.
pub fn upload_command(line: &str) -> Vec<u8> {
    assert!(
        line.len() <= MAX_UPLOAD_COMMAND,
        "an upload command of {} bytes is too long",
        line.len()
    );
    line.bytes()
        .flat_map(|byte| {
            [
                EXT_UPLOAD_NIBBLE | byte >> 4,
                EXT_UPLOAD_NIBBLE | byte & 0x0f,
            ]
        })
        .chain([EXT_UPLOAD_RUN])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decoder, Frame};

    #[test]
    fn an_encoded_packet_decodes_to_itself() {
        let meta = Meta::text(true);
        let mut out = BytesMut::new();
        packet(&mut out, Some(meta), false, b"abc");
        packet(&mut out, None, true, b"");
        assert_eq!(&out[..], &[0x08, 0x02, 0, 3, b'a', b'b', b'c', 0x04, 0, 0]);
        let Some(Frame::Packet(first)) = Decoder.decode(&mut out).unwrap() else {
            panic!()
        };
        assert_eq!(first.meta, Some(meta));
        let Some(Frame::Packet(last)) = Decoder.decode(&mut out).unwrap() else {
            panic!()
        };
        assert!(last.final_ && last.payload.is_empty());
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        let name = "é".repeat(200);
        let nibbles = name_nibbles(&name);
        assert_eq!(nibbles.len(), 2 * 254);
    }

    #[test]
    fn an_upload_command_is_nibbles_then_the_run_byte() {
        assert_eq!(upload_command("st"), [0x47, 0x43, 0x47, 0x44, 0x50]);
        assert_eq!(upload_command(""), [0x50]);
    }
}
