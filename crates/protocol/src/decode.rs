//! The sans-I/O decoder: bytes in, [`Frame`]s out.

use crate::{FLAG_FINAL, FLAG_INITIAL, Meta, ProtocolError};
use bytes::{Buf, Bytes, BytesMut};

/// One packet of a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub initial: bool,
    pub final_: bool,
    /// Present exactly when `initial` is set.
    pub meta: Option<Meta>,
    pub payload: Bytes,
}

/// One unit of the byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Packet(Packet),
    /// The END byte: the client has finished its session.
    End,
    /// An operation byte with an unassigned operation (2-15). The legacy server
    /// ignores it; Ferry uses some of them for extensions.
    Unassigned(u8),
}

/// Decodes frames from a buffer. Holds no state of its own: the buffer is the state,
/// and it never needs more than one packet (4 + 65,535 bytes) in it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Decoder;

impl Decoder {
    /// The most bytes one frame occupies on the wire.
    pub const MAX_FRAME_LEN: usize = 1 + 1 + 2 + crate::MAX_PAYLOAD;

    /// Takes one whole frame off the front of `buf`, or returns `Ok(None)` (leaving
    /// `buf` untouched) when more bytes are needed.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        let Some(&op) = buf.first() else {
            return Ok(None);
        };
        match op >> 4 {
            0 => {}
            1 => {
                buf.advance(1);
                return Ok(Some(Frame::End));
            }
            _ => {
                buf.advance(1);
                return Ok(Some(Frame::Unassigned(op)));
            }
        }
        if op & 0x03 != 0 {
            return Err(ProtocolError::BadOperation(op));
        }
        let initial = op & FLAG_INITIAL != 0;
        let final_ = op & FLAG_FINAL != 0;
        let header = if initial { 4 } else { 3 };
        if buf.len() < header {
            // The meta byte can be judged as soon as it arrives.
            if initial && buf.len() >= 2 {
                Meta::from_byte(buf[1])?;
            }
            return Ok(None);
        }
        let meta = if initial {
            Some(Meta::from_byte(buf[1])?)
        } else {
            None
        };
        let len = u16::from_be_bytes([buf[header - 2], buf[header - 1]]) as usize;
        if buf.len() < header + len {
            buf.reserve(header + len - buf.len());
            return Ok(None);
        }
        buf.advance(header);
        let payload = buf.split_to(len).freeze();
        Ok(Some(Frame::Packet(Packet {
            initial,
            final_,
            meta,
            payload,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DataType, Serialization};

    fn decode_all(bytes: &[u8]) -> Result<Vec<Frame>, ProtocolError> {
        let mut buf = BytesMut::from(bytes);
        let mut frames = Vec::new();
        while let Some(frame) = Decoder.decode(&mut buf)? {
            frames.push(frame);
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        Ok(frames)
    }

    #[test]
    fn a_single_packet_transfer_then_end() {
        let frames = decode_all(&[0x0c, 0x00, 0x00, 0x02, b'h', b'i', 0x10]).unwrap();
        let Frame::Packet(packet) = &frames[0] else {
            panic!("{frames:?}")
        };
        assert!(packet.initial && packet.final_);
        assert_eq!(packet.meta.unwrap().data_type(), DataType::Text);
        assert_eq!(&packet.payload[..], b"hi");
        assert_eq!(frames[1], Frame::End);
    }

    #[test]
    fn partial_input_needs_more_and_consumes_nothing() {
        let whole = [0x08, 0x28, 0x00, 0x03, b'a', b'b', b'c'];
        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert_eq!(Decoder.decode(&mut buf), Ok(None), "cut at {cut}");
            assert_eq!(buf.len(), cut);
        }
        let mut buf = BytesMut::from(&whole[..]);
        let Some(Frame::Packet(packet)) = Decoder.decode(&mut buf).unwrap() else {
            panic!()
        };
        assert_eq!(packet.meta.unwrap().serialization(), Serialization::Json);
        assert!(!packet.final_);
    }

    #[test]
    fn unassigned_operations_are_single_bytes() {
        assert_eq!(
            decode_all(&[0x20, 0x3f, 0xf0]).unwrap(),
            vec![
                Frame::Unassigned(0x20),
                Frame::Unassigned(0x3f),
                Frame::Unassigned(0xf0)
            ]
        );
    }

    #[test]
    fn a_bad_meta_byte_is_refused_before_the_payload_arrives() {
        let mut buf = BytesMut::from(&[0x0c, 0xff][..]);
        assert_eq!(Decoder.decode(&mut buf), Err(ProtocolError::BadMeta(0xff)));
    }

    #[test]
    fn reserved_operation_bits_are_refused() {
        let mut buf = BytesMut::from(&[0x0d][..]);
        assert_eq!(
            Decoder.decode(&mut buf),
            Err(ProtocolError::BadOperation(0x0d))
        );
    }

    #[test]
    fn the_largest_payload_fits() {
        let mut bytes = vec![0x04, 0xff, 0xff];
        bytes.extend(std::iter::repeat_n(7u8, crate::MAX_PAYLOAD));
        let frames = decode_all(&bytes).unwrap();
        let Frame::Packet(packet) = &frames[0] else {
            panic!()
        };
        assert_eq!(packet.payload.len(), crate::MAX_PAYLOAD);
    }
}
