//! Checks that packets form well-ordered transfers and collects extension bytes:
//! names for the [`TransferTracker`], upload command lines for [`UploadCommands`].

use crate::{
    EXT_HELLO, EXT_NAME_NIBBLE, EXT_UPLOAD_NIBBLE, EXT_UPLOAD_RUN, Frame, MAX_NAME_LEN,
    MAX_UPLOAD_COMMAND, Meta, ProtocolError,
};
use bytes::Bytes;

/// What a frame means for the session, once its order has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEvent {
    /// A transfer starts; `name` is the file name announced by the name extension.
    Begin { meta: Meta, name: Option<String> },
    /// A payload of the open transfer (possibly empty).
    Data(Bytes),
    /// The open transfer's last packet has been seen (after its `Data`).
    Finish,
    /// The client ended the session.
    End,
    /// The client asked for extended replies ([`crate::ExtendedReply`]).
    Hello,
    /// A byte that means nothing here and is ignored, as the legacy server does.
    Ignored,
}

/// Session state: whether a transfer is open, and the pending extension name.
/// Upload command bytes are [`TransferEvent::Ignored`] here, as by the legacy
/// server: a receiver that runs them also gives every frame to [`UploadCommands`].
#[derive(Debug)]
pub struct TransferTracker {
    open: Option<Meta>,
    name: Nibbles,
}

impl Default for TransferTracker {
    fn default() -> Self {
        TransferTracker {
            open: None,
            name: Nibbles::new(MAX_NAME_LEN, ProtocolError::NameTooLong),
        }
    }
}

impl TransferTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// The meta of the open transfer, if any.
    pub fn open(&self) -> Option<Meta> {
        self.open
    }

    /// Turns a frame into up to three events (`Begin`, `Data`, `Finish` for a
    /// one-packet transfer), in order.
    pub fn accept(&mut self, frame: Frame) -> Result<Vec<TransferEvent>, ProtocolError> {
        match frame {
            Frame::End if self.open.is_some() => Err(ProtocolError::EndInsideTransfer),
            Frame::End => Ok(vec![TransferEvent::End]),
            Frame::Unassigned(EXT_HELLO) => Ok(vec![TransferEvent::Hello]),
            Frame::Unassigned(byte) if byte & 0xf0 == EXT_NAME_NIBBLE => {
                self.name.push(byte & 0x0f)?;
                Ok(vec![TransferEvent::Ignored])
            }
            Frame::Unassigned(_) => Ok(vec![TransferEvent::Ignored]),
            Frame::Packet(packet) => {
                let mut events = Vec::with_capacity(3);
                match (packet.initial, self.open) {
                    (true, Some(_)) => return Err(ProtocolError::InitialInsideTransfer),
                    (false, None) => return Err(ProtocolError::NoTransferOpen),
                    (true, None) => {
                        let meta = packet.meta.expect("an INITIAL packet always carries meta");
                        self.open = Some(meta);
                        let name = self.name.take();
                        events.push(TransferEvent::Begin {
                            meta,
                            name: (!name.is_empty())
                                .then(|| String::from_utf8_lossy(&name).into_owned()),
                        });
                    }
                    (false, Some(_)) => {}
                }
                events.push(TransferEvent::Data(packet.payload));
                if packet.final_ {
                    self.open = None;
                    events.push(TransferEvent::Finish);
                }
                Ok(events)
            }
        }
    }
}

/// Collects resumable-upload command lines (extension 3, see [`crate::upload`])
/// from the frames of a session, beside its [`TransferTracker`].
#[derive(Debug)]
pub struct UploadCommands {
    line: Nibbles,
}

impl Default for UploadCommands {
    fn default() -> Self {
        UploadCommands {
            line: Nibbles::new(MAX_UPLOAD_COMMAND, ProtocolError::CommandTooLong),
        }
    }
}

impl UploadCommands {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a frame (before the tracker does; `transfer_open` is the
    /// tracker's [`TransferTracker::open`]): the command line to run when it is
    /// the run byte, collected so far and then started over. Bytes that are not
    /// UTF-8 are replaced. A run byte inside a transfer is a protocol error:
    /// commands run between transfers.
    pub fn accept(
        &mut self,
        frame: &Frame,
        transfer_open: bool,
    ) -> Result<Option<String>, ProtocolError> {
        match *frame {
            Frame::Unassigned(byte) if byte & 0xf0 == EXT_UPLOAD_NIBBLE => {
                self.line.push(byte & 0x0f)?;
                Ok(None)
            }
            Frame::Unassigned(EXT_UPLOAD_RUN) if transfer_open => {
                Err(ProtocolError::CommandInsideTransfer)
            }
            Frame::Unassigned(EXT_UPLOAD_RUN) => {
                let line = self.line.take();
                Ok(Some(String::from_utf8_lossy(&line).into_owned()))
            }
            _ => Ok(None),
        }
    }
}

/// Bytes sent as nibble pairs (high nibble first), up to a limit.
#[derive(Debug)]
struct Nibbles {
    bytes: Vec<u8>,
    half: Option<u8>,
    max: usize,
    too_long: ProtocolError,
}

impl Nibbles {
    fn new(max: usize, too_long: ProtocolError) -> Self {
        Nibbles {
            bytes: Vec::new(),
            half: None,
            max,
            too_long,
        }
    }

    fn push(&mut self, nibble: u8) -> Result<(), ProtocolError> {
        match self.half.take() {
            None => self.half = Some(nibble),
            Some(high) => {
                if self.bytes.len() == self.max {
                    self.bytes.clear();
                    return Err(self.too_long.clone());
                }
                self.bytes.push(high << 4 | nibble);
            }
        }
        Ok(())
    }

    /// The bytes collected (a stray odd nibble is dropped); starts over.
    fn take(&mut self) -> Vec<u8> {
        self.half = None;
        std::mem::take(&mut self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decoder, Packet, encode};
    use bytes::BytesMut;

    fn packet(initial: bool, final_: bool) -> Frame {
        Frame::Packet(Packet {
            initial,
            final_,
            meta: initial.then(|| Meta::text(false)),
            payload: Bytes::from_static(b"x"),
        })
    }

    #[test]
    fn a_transfer_opens_and_closes() {
        let mut tracker = TransferTracker::new();
        let events = tracker.accept(packet(true, false)).unwrap();
        assert!(matches!(events[0], TransferEvent::Begin { name: None, .. }));
        assert_eq!(
            tracker.accept(packet(false, true)).unwrap().last(),
            Some(&TransferEvent::Finish)
        );
        assert_eq!(tracker.open(), None);
    }

    #[test]
    fn out_of_order_packets_are_protocol_errors() {
        let mut tracker = TransferTracker::new();
        assert_eq!(
            tracker.accept(packet(false, true)),
            Err(ProtocolError::NoTransferOpen)
        );
        tracker.accept(packet(true, false)).unwrap();
        assert_eq!(
            tracker.accept(packet(true, false)),
            Err(ProtocolError::InitialInsideTransfer)
        );
        assert_eq!(
            tracker.accept(Frame::End),
            Err(ProtocolError::EndInsideTransfer)
        );
    }

    #[test]
    fn name_nibbles_name_the_next_transfer_only() {
        let mut tracker = TransferTracker::new();
        for byte in encode::name_nibbles("notes.txt") {
            assert_eq!(
                tracker.accept(Frame::Unassigned(byte)).unwrap(),
                vec![TransferEvent::Ignored]
            );
        }
        let events = tracker.accept(packet(true, true)).unwrap();
        assert_eq!(
            events[0],
            TransferEvent::Begin {
                meta: Meta::text(false),
                name: Some("notes.txt".into())
            }
        );
        let events = tracker.accept(packet(true, true)).unwrap();
        assert_eq!(
            events[0],
            TransferEvent::Begin {
                meta: Meta::text(false),
                name: None
            }
        );
    }

    /// What a receiver sees of a byte stream.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Seen {
        Event(TransferEvent),
        Command(String),
    }

    /// Every event and command of a byte stream, through the decoder, the
    /// command collector and the tracker (ignored bytes left out).
    fn seen_of(bytes: &[u8]) -> Result<Vec<Seen>, ProtocolError> {
        let mut buf = BytesMut::from(bytes);
        let mut tracker = TransferTracker::new();
        let mut commands = UploadCommands::new();
        let mut seen = Vec::new();
        while let Some(frame) = Decoder.decode(&mut buf)? {
            let command = commands.accept(&frame, tracker.open().is_some())?;
            seen.extend(
                tracker
                    .accept(frame)?
                    .into_iter()
                    .filter(|e| *e != TransferEvent::Ignored)
                    .map(Seen::Event),
            );
            seen.extend(command.map(Seen::Command));
        }
        assert!(buf.is_empty());
        Ok(seen)
    }

    #[test]
    fn an_upload_command_runs_on_its_run_byte_and_starts_over() {
        let mut bytes = encode::upload_command("state 01JQ3V7ZK9T6N2XQ8W4R5B1C0D");
        bytes.extend(encode::upload_command("cancel X"));
        assert_eq!(
            seen_of(&bytes).unwrap(),
            vec![
                Seen::Command("state 01JQ3V7ZK9T6N2XQ8W4R5B1C0D".into()),
                Seen::Command("cancel X".into()),
            ]
        );
        assert_eq!(
            seen_of(&[EXT_UPLOAD_RUN]).unwrap(),
            vec![Seen::Command(String::new())]
        );
        // The tracker alone ignores them, as the legacy server does.
        let mut tracker = TransferTracker::new();
        for byte in bytes {
            assert_eq!(
                tracker.accept(Frame::Unassigned(byte)).unwrap(),
                vec![TransferEvent::Ignored]
            );
        }
    }

    #[test]
    fn upload_bytes_interleaved_with_packets_never_shift_the_framing() {
        // Every byte 0x40-0x5f between (not inside) the packets of a transfer:
        // the packets decode exactly as without them, and commands and names
        // are collected apart.
        let mut plain = BytesMut::new();
        encode::packet(&mut plain, Some(Meta::text(false)), false, &[0x45; 300]);
        encode::packet(&mut plain, None, false, &[0x50, 0x4f, 0x0c]);
        encode::packet(&mut plain, None, true, b"end");
        let expected = seen_of(&plain).unwrap();
        assert_eq!(expected.len(), 1 + 3 + 1, "Begin, 3 Data, Finish");

        let mut mixed = encode::name_nibbles("n");
        mixed.extend(encode::upload_command("open 00 3"));
        let mut packets = plain.clone();
        let first = packets.split_to(4 + 300);
        let second = packets.split_to(3 + 3);
        mixed.extend_from_slice(&first);
        mixed.extend((0x40..0x50).rev());
        mixed.extend_from_slice(&second);
        mixed.extend(0x40..0x50);
        mixed.extend_from_slice(&packets);
        mixed.extend(encode::upload_command("state Y"));
        let events = seen_of(&mixed).unwrap();
        assert_eq!(events[0], Seen::Command("open 00 3".into()));
        let Seen::Event(TransferEvent::Begin { name, .. }) = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!(name.as_deref(), Some("n"));
        assert_eq!(events[2..events.len() - 1], expected[1..]);
        // The nibbles sent during the transfer were collected too, in front
        // of the last command's own.
        let Some(Seen::Command(last)) = events.last() else {
            panic!("{events:?}")
        };
        let mut collected: Vec<u8> = vec![0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10];
        collected.extend([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        collected.extend_from_slice(b"state Y");
        assert_eq!(*last, String::from_utf8_lossy(&collected));
        assert_eq!(events.len(), expected.len() + 2);
    }

    #[test]
    fn a_run_byte_inside_a_transfer_is_a_protocol_error() {
        let mut bytes = BytesMut::new();
        encode::packet(&mut bytes, Some(Meta::text(false)), false, b"a");
        bytes.extend_from_slice(&[EXT_UPLOAD_RUN]);
        assert_eq!(seen_of(&bytes), Err(ProtocolError::CommandInsideTransfer));
    }

    #[test]
    fn a_command_longer_than_the_limit_is_a_protocol_error() {
        let line = "a".repeat(MAX_UPLOAD_COMMAND);
        let bytes = encode::upload_command(&line);
        assert_eq!(seen_of(&bytes).unwrap(), vec![Seen::Command(line)]);
        let mut longer = encode::upload_command(&"a".repeat(MAX_UPLOAD_COMMAND));
        longer.pop();
        longer.extend([EXT_UPLOAD_NIBBLE | 6, EXT_UPLOAD_NIBBLE | 1]);
        assert_eq!(seen_of(&longer), Err(ProtocolError::CommandTooLong));
    }
}
