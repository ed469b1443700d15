//! A raw TCP conversation with the server, for bytes no well-behaved client sends:
//! hand-built packets, cut packets, garbage. Replies are read like the legacy
//! client reads them: once, up to 4096 bytes, with a deadline (the connection is
//! `ferry_test_support`'s, shared with the server's in-process tests).

pub use ferry_test_support::{Heard, RawClient as Raw};

/// Meta byte of a text transfer.
pub fn text_meta(encrypted: bool) -> u8 {
    if encrypted { 0x02 } else { 0x00 }
}

/// Meta byte of a dictionary: serialization 1 = pickle, 2 = json, 3 = xml.
pub fn dict_meta(serialization: u8, encrypted: bool) -> u8 {
    (1 << 5) | (serialization << 2) | text_meta(encrypted)
}

/// The legacy framing of one transfer whose packets carry `payloads` as they are.
pub fn packets(meta: u8, payloads: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let count = payloads.len().max(1);
    for index in 0..count {
        let payload: &[u8] = payloads.get(index).copied().unwrap_or_default();
        let mut op = 0u8;
        if index == 0 {
            op |= 0x08;
        }
        if index == count - 1 {
            op |= 0x04;
        }
        out.push(op);
        if index == 0 {
            out.push(meta);
        }
        let len = u16::try_from(payload.len()).expect("a payload fits the 2-byte length");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(payload);
    }
    out
}

/// One transfer of `data` cut into legacy 48,000-byte pieces (one empty packet for no data).
pub fn transfer(meta: u8, data: &[u8]) -> Vec<u8> {
    let pieces: Vec<&[u8]> = data.chunks(48_000).collect();
    packets(meta, &pieces)
}

/// Like [`transfer`], with each piece Fernet-encrypted by `key` (set the meta's encrypted bit).
pub fn encrypted_transfer(meta: u8, data: &[u8], key: &ferry_crypto::FernetKey) -> Vec<u8> {
    let tokens: Vec<Vec<u8>> = if data.is_empty() {
        vec![key.encrypt(b"")]
    } else {
        data.chunks(48_000)
            .map(|piece| key.encrypt(piece))
            .collect()
    };
    let pieces: Vec<&[u8]> = tokens.iter().map(Vec::as_slice).collect();
    packets(meta, &pieces)
}
