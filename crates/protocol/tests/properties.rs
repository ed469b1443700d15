//! Properties of the decoder over generated input: the frames of a byte stream do
//! not depend on how the stream is cut into reads, and no input makes it panic or
//! hold more than one frame.

use bytes::{BufMut, BytesMut};
use ferry_protocol::{Decoder, END, Frame, Meta, Packet, Serialization, encode};
use proptest::prelude::*;

fn meta() -> impl Strategy<Value = Meta> {
    prop_oneof![
        any::<bool>().prop_map(Meta::text),
        (
            prop_oneof![
                Just(Serialization::Json),
                Just(Serialization::Binary),
                Just(Serialization::Xml)
            ],
            any::<bool>()
        )
            .prop_map(|(s, e)| Meta::dictionary(s, e).expect("a dictionary serialization")),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        4 => (proptest::option::of(meta()), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..600))
            .prop_map(|(meta, final_, payload)| Frame::Packet(Packet {
                initial: meta.is_some(),
                final_,
                meta,
                payload: payload.into(),
            })),
        1 => Just(Frame::End),
        1 => (0x20u8..=0xff).prop_map(Frame::Unassigned),
    ]
}

fn wire(frames: &[Frame]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for frame in frames {
        match frame {
            Frame::Packet(p) => encode::packet(&mut out, p.meta, p.final_, &p.payload),
            Frame::End => out.put_u8(END),
            Frame::Unassigned(op) => out.put_u8(*op),
        }
    }
    out.to_vec()
}

/// Feeds `bytes` in reads of the given sizes (cycled), decoding after each read.
fn decode_in_reads(
    bytes: &[u8],
    reads: &[usize],
) -> Result<Vec<Frame>, ferry_protocol::ProtocolError> {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut at = 0;
    for &read in reads.iter().cycle() {
        let end = (at + read).min(bytes.len());
        buf.extend_from_slice(&bytes[at..end]);
        at = end;
        while let Some(frame) = Decoder.decode(&mut buf)? {
            frames.push(frame);
        }
        assert!(
            buf.len() < Decoder::MAX_FRAME_LEN,
            "holds more than one frame"
        );
        if at == bytes.len() {
            break;
        }
    }
    Ok(frames)
}

proptest! {
    #[test]
    fn frames_do_not_depend_on_how_the_stream_is_read(
        frames in proptest::collection::vec(frame(), 0..24),
        reads in proptest::collection::vec(1usize..700, 1..8),
    ) {
        let bytes = wire(&frames);
        prop_assert_eq!(decode_in_reads(&bytes, &reads).unwrap(), frames);
    }

    #[test]
    fn arbitrary_bytes_give_frames_or_an_error_never_a_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        reads in proptest::collection::vec(1usize..300, 1..6),
    ) {
        let whole = decode_in_reads(&bytes, &[bytes.len().max(1)]);
        let pieces = decode_in_reads(&bytes, &reads);
        // The same verdict however the bytes arrive.
        prop_assert_eq!(whole, pieces);
    }
}
