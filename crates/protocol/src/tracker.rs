//! Checks that packets form well-ordered transfers and collects extension bytes.

use crate::{EXT_HELLO, EXT_NAME_NIBBLE, Frame, MAX_NAME_LEN, Meta, ProtocolError};
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
#[derive(Debug, Default)]
pub struct TransferTracker {
    open: Option<Meta>,
    name: Vec<u8>,
    half_nibble: Option<u8>,
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
                self.push_nibble(byte & 0x0f)?;
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
                        events.push(TransferEvent::Begin {
                            meta,
                            name: self.take_name(),
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

    fn push_nibble(&mut self, nibble: u8) -> Result<(), ProtocolError> {
        match self.half_nibble.take() {
            None => self.half_nibble = Some(nibble),
            Some(high) => {
                if self.name.len() == MAX_NAME_LEN {
                    self.name.clear();
                    return Err(ProtocolError::NameTooLong);
                }
                self.name.push(high << 4 | nibble);
            }
        }
        Ok(())
    }

    fn take_name(&mut self) -> Option<String> {
        self.half_nibble = None;
        let name = std::mem::take(&mut self.name);
        (!name.is_empty()).then(|| String::from_utf8_lossy(&name).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Packet, encode};

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
}
