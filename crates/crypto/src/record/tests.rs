//! Round trips, range reads, and every kind of damage.

use std::io::Cursor;

use super::*;
use crate::{CryptoError, Keyring, StorageKey};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn seal(key: &StorageKey, content: &[u8], split: usize, metadata: &[u8]) -> Vec<u8> {
    let mut sealer = Sealer::new(key);
    let mut out = Vec::new();
    for piece in content.chunks(split.max(1)) {
        sealer.push(piece, &mut out);
    }
    assert_eq!(sealer.plaintext_len(), content.len() as u64);
    sealer.finish(metadata, &mut out);
    out
}

/// Header length for the 16-character ids of generated keys.
const HEADER_LEN: usize = HEADER_FIXED_LEN + 16 + NONCE_PREFIX_LEN;
/// A sealed data chunk on disk: ciphertext and tag.
const SEALED_CHUNK: usize = CHUNK_SIZE + TAG_LEN;

/// A keyring and a record of `len` pattern bytes sealed with its current key.
fn sealed(len: usize, metadata: &[u8]) -> (Keyring, Vec<u8>) {
    let ring = Keyring::new(StorageKey::generate(), vec![]);
    let record = seal(ring.current(), &pattern(len), usize::MAX, metadata);
    (ring, record)
}

fn open<'a>(
    ring: &Keyring,
    record: &'a [u8],
) -> Result<RecordReader<Cursor<&'a [u8]>>, CryptoError> {
    RecordReader::open(ring, Cursor::new(record), 0, record.len() as u64)
}

fn read_all(ring: &Keyring, record: &[u8]) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
    let mut reader = open(ring, record)?;
    let mut content = Vec::new();
    for i in 0..reader.chunk_count() {
        content.extend(reader.read_chunk(i)?);
    }
    Ok((content, reader.metadata().to_vec()))
}

const SIZES: [usize; 6] = [
    0,
    1,
    CHUNK_SIZE - 1,
    CHUNK_SIZE,
    CHUNK_SIZE + 1,
    3 * CHUNK_SIZE + 5,
];

#[test]
fn round_trips_every_size_with_every_split() {
    let key = StorageKey::generate();
    let ring = Keyring::new(key.clone(), vec![]);
    for size in SIZES {
        let content = pattern(size);
        let mut first: Option<Vec<u8>> = None;
        for split in [
            1000,
            4096,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 7,
            usize::MAX,
        ] {
            let record = seal(&key, &content, split, b"{\"id\":1}");
            let header_len = HEADER_LEN;
            let chunks = size.div_ceil(CHUNK_SIZE);
            assert_eq!(
                record.len(),
                header_len + size + 16 * chunks + 8 + 16 + FOOTER_LEN,
                "size {size}"
            );
            let (back, metadata) = read_all(&ring, &record).unwrap();
            assert!(back == content, "size {size}, split {split}");
            assert_eq!(metadata, b"{\"id\":1}");
            let reader = open(&ring, &record).unwrap();
            assert_eq!(reader.plaintext_len(), size as u64);
            assert_eq!(reader.chunk_count(), chunks as u64);
            assert_eq!(reader.key_id(), key.id());
            // Same length whatever the split; fresh nonce prefix each time.
            if let Some(first) = &first {
                assert_eq!(first.len(), record.len());
                assert!(size == 0 || first[..] != record[..]);
            }
            first = Some(record);
        }
    }
}

#[test]
fn single_byte_pushes_round_trip() {
    let key = StorageKey::generate();
    let content = pattern(CHUNK_SIZE + 3);
    let record = seal(&key, &content, 1, b"");
    let (back, metadata) = read_all(&Keyring::new(key, vec![]), &record).unwrap();
    assert!(back == content);
    assert!(metadata.is_empty());
}

#[test]
fn empty_pushes_and_no_pushes_are_both_an_empty_record() {
    let key = StorageKey::generate();
    let ring = Keyring::new(key.clone(), vec![]);
    let mut sealer = Sealer::new(&key);
    let mut out = Vec::new();
    sealer.push(b"", &mut out);
    sealer.finish(b"m", &mut out);
    let untouched = seal(&key, b"", 10, b"m");
    assert_eq!(out.len(), untouched.len());
    for record in [out, untouched] {
        let reader = open(&ring, &record).unwrap();
        assert_eq!((reader.chunk_count(), reader.metadata()), (0, &b"m"[..]));
    }
}

#[test]
fn push_emits_whole_chunks_and_buffers_the_rest() {
    let key = StorageKey::generate();
    let mut sealer = Sealer::new(&key);
    let mut out = Vec::new();
    sealer.push(&[1; 10], &mut out);
    let header_len = out.len();
    assert_eq!(header_len, HEADER_LEN);
    sealer.push(&vec![2; CHUNK_SIZE - 11], &mut out);
    assert_eq!(out.len(), header_len);
    sealer.push(&[3; 2], &mut out);
    assert_eq!(out.len(), header_len + CHUNK_SIZE + TAG_LEN);
    sealer.push(&vec![4; 2 * CHUNK_SIZE], &mut out);
    assert_eq!(out.len(), header_len + 3 * (CHUNK_SIZE + TAG_LEN));
}

#[test]
fn range_reads_cross_chunk_boundaries() {
    let key = StorageKey::generate();
    let ring = Keyring::new(key.clone(), vec![]);
    let content = pattern(3 * CHUNK_SIZE + 5);
    let record = seal(&key, &content, usize::MAX, b"meta");
    let mut reader = open(&ring, &record).unwrap();
    let c = CHUNK_SIZE as u64;
    let len = content.len() as u64;
    let ranges = [
        (0, 0),
        (0, 1),
        (0, len),
        (c - 1, c + 1),
        (c, c),
        (c, 2 * c),
        (5, 3 * c + 2),
        (2 * c + 17, len),
        (len - 1, len),
        (len, len),
    ];
    for (start, end) in ranges {
        let want = &content[start as usize..end as usize];
        let mut got = Vec::new();
        let mut pieces = 0;
        reader
            .read_range(start, end, |piece| {
                got.extend_from_slice(piece);
                pieces += 1;
                Ok::<_, CryptoError>(())
            })
            .unwrap();
        assert!(got == want, "range {start}..{end}");
        let expected_pieces = if start == end {
            0
        } else {
            (end - 1) / c - start / c + 1
        };
        assert_eq!(pieces, expected_pieces, "range {start}..{end}");

        let via_iter: Vec<u8> = reader
            .range(start, end)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
            .concat();
        assert!(via_iter == want, "iterator range {start}..{end}");
    }
    for (start, end) in [(1, 0), (0, len + 1), (len + 1, len + 2)] {
        assert!(matches!(
            reader.read_range(start, end, |_| Ok::<_, CryptoError>(())),
            Err(CryptoError::InvalidRange { .. })
        ));
        assert!(reader.range(start, end).is_err());
    }
    assert!(matches!(
        reader.read_chunk(4),
        Err(CryptoError::ChunkOutOfRange { .. })
    ));
}

#[test]
fn read_range_passes_the_callers_error_through() {
    #[derive(Debug)]
    enum MyError {
        Crypto,
        Stop,
    }
    impl From<CryptoError> for MyError {
        fn from(_: CryptoError) -> Self {
            MyError::Crypto
        }
    }
    let key = StorageKey::generate();
    let record = seal(&key, &pattern(2 * CHUNK_SIZE), usize::MAX, b"");
    let mut reader = open(&Keyring::new(key, vec![]), &record).unwrap();
    let mut calls = 0;
    let result = reader.read_range(0, 2 * CHUNK_SIZE as u64, |_| {
        calls += 1;
        Err(MyError::Stop)
    });
    assert!(matches!(result, Err(MyError::Stop)));
    assert_eq!(calls, 1);
    assert!(matches!(
        reader.read_range(1, 0, |_| Ok(())),
        Err(MyError::Crypto)
    ));
}

#[test]
fn reads_a_record_inside_a_larger_source() {
    let key = StorageKey::generate();
    let ring = Keyring::new(key.clone(), vec![]);
    let content = pattern(CHUNK_SIZE + 100);
    let record = seal(&key, &content, usize::MAX, b"windowed");
    let mut segment = vec![0xAA; 1234];
    segment.extend_from_slice(&record);
    segment.extend_from_slice(&[0x55; 999]);
    let mut reader =
        RecordReader::open(&ring, Cursor::new(&segment), 1234, record.len() as u64).unwrap();
    assert_eq!(reader.metadata(), b"windowed");
    let mut got = Vec::new();
    reader
        .read_range(10, content.len() as u64, |p| {
            got.extend_from_slice(p);
            Ok::<_, CryptoError>(())
        })
        .unwrap();
    assert!(got == content[10..]);
}

/// Opens the record and reads every chunk; all errors are collapsed.
fn check(ring: &Keyring, record: &[u8]) -> Result<(), CryptoError> {
    read_all(ring, record).map(|_| ())
}

#[test]
fn tampering_with_any_byte_of_any_region_is_detected() {
    let key = StorageKey::generate();
    let ring = Keyring::new(key.clone(), vec![]);
    let content = pattern(2 * CHUNK_SIZE + 10);
    let record = seal(&key, &content, usize::MAX, b"metadata");
    let header_len = HEADER_LEN;
    let metadata_at = record.len() - FOOTER_LEN - (8 + TAG_LEN);
    let mut positions: Vec<usize> = (0..header_len).collect(); // every header byte
    positions.extend([header_len, header_len + 5000, header_len + CHUNK_SIZE + 15]); // chunk 0 + tag
    positions.extend([header_len + CHUNK_SIZE + 16, metadata_at - 1]); // chunk 1, last chunk's tag
    positions.extend(metadata_at..record.len()); // metadata and footer
    for at in positions {
        for flip in [0x01, 0x80] {
            let mut bad = record.clone();
            bad[at] ^= flip;
            assert!(
                check(&ring, &bad).is_err(),
                "flipping {flip:#x} at byte {at}"
            );
        }
    }
}

#[test]
fn truncation_at_any_point_is_detected() {
    let (ring, record) = sealed(2 * CHUNK_SIZE + 10, b"metadata");
    let mut cuts: Vec<usize> = (0..200).collect();
    cuts.extend((0..record.len()).step_by(997));
    cuts.extend(record.len() - 200..record.len());
    for cut in cuts {
        let truncated = &record[..cut];
        assert!(check(&ring, truncated).is_err(), "cut at {cut}");
        // A source shorter than the length the caller claims.
        let claimed = RecordReader::open(&ring, Cursor::new(truncated), 0, record.len() as u64);
        assert!(claimed.is_err(), "source cut at {cut}");
    }
}

#[test]
fn dropping_a_whole_chunk_and_rewriting_the_footer_is_detected() {
    let (ring, record) = sealed(3 * CHUNK_SIZE, b"metadata");
    let (header_len, chunk) = (HEADER_LEN, SEALED_CHUNK);
    // Drop the last data chunk and claim 2 chunks in the footer.
    let mut bad = record[..header_len + 2 * chunk].to_vec();
    bad.extend_from_slice(&record[header_len + 3 * chunk..]);
    let footer = bad.len() - FOOTER_LEN;
    bad[footer..footer + 8].copy_from_slice(&(2 * CHUNK_SIZE as u64).to_be_bytes());
    assert!(matches!(
        open(&ring, &bad),
        Err(CryptoError::Authentication(_))
    ));
}

#[test]
fn swapped_chunks_are_detected() {
    let (ring, record) = sealed(3 * CHUNK_SIZE, b"metadata");
    let (header_len, chunk) = (HEADER_LEN, SEALED_CHUNK);
    let mut bad = record.clone();
    let (a, b) = (header_len, header_len + chunk);
    bad[a..a + chunk].copy_from_slice(&record[b..b + chunk]);
    bad[b..b + chunk].copy_from_slice(&record[a..a + chunk]);
    let mut reader = open(&ring, &bad).unwrap(); // metadata and footer are intact
    assert!(matches!(
        reader.read_chunk(0),
        Err(CryptoError::Authentication(_))
    ));
    assert!(matches!(
        reader.read_chunk(1),
        Err(CryptoError::Authentication(_))
    ));
    assert!(reader.read_chunk(2).is_ok());
}

#[test]
fn chunks_from_another_record_are_detected() {
    let key = StorageKey::generate();
    let ring = Keyring::new(key.clone(), vec![]);
    let content = pattern(CHUNK_SIZE + 1);
    let one = seal(&key, &content, usize::MAX, b"m");
    let two = seal(&key, &content, usize::MAX, b"m");
    let header_len = HEADER_LEN;
    let mut mixed = one.clone();
    mixed[header_len..header_len + CHUNK_SIZE + TAG_LEN]
        .copy_from_slice(&two[header_len..header_len + CHUNK_SIZE + TAG_LEN]);
    assert!(check(&ring, &mixed).is_err());
}

#[test]
fn wrong_key_and_unknown_key_fail() {
    let key = StorageKey::generate();
    let record = seal(&key, &pattern(100), usize::MAX, b"m");
    let other = StorageKey::generate();
    match open(&Keyring::new(other.clone(), vec![]), &record) {
        Err(CryptoError::UnknownKey(id)) => assert_eq!(id, key.id()),
        other => panic!("expected UnknownKey, got {other:?}"),
    }
    // A different key under the same id (a forged header) fails authentication.
    let mut forged = record.clone();
    let id_at = HEADER_FIXED_LEN;
    forged[id_at..id_at + 16].copy_from_slice(other.id().as_bytes());
    assert!(matches!(
        open(&Keyring::new(other, vec![]), &forged),
        Err(CryptoError::Authentication(_))
    ));
}

#[test]
fn rotated_keys_still_read_old_records() {
    let old = StorageKey::generate();
    let new = StorageKey::generate();
    let old_record = seal(&old, &pattern(CHUNK_SIZE * 2 + 1), usize::MAX, b"old");
    let ring = Keyring::new(new.clone(), vec![old.clone()]);
    let new_record = seal(ring.current(), &pattern(10), usize::MAX, b"new");
    let (content, metadata) = read_all(&ring, &old_record).unwrap();
    assert!(content == pattern(CHUNK_SIZE * 2 + 1));
    assert_eq!(metadata, b"old");
    assert_eq!(open(&ring, &old_record).unwrap().key_id(), old.id());
    assert_eq!(open(&ring, &new_record).unwrap().key_id(), new.id());
    assert!(open(&Keyring::new(new, vec![]), &old_record).is_err());
}

#[test]
fn a_lying_footer_never_panics_or_allocates_much() {
    let (ring, record) = sealed(CHUNK_SIZE + 3, b"metadata");
    let footer = record.len() - FOOTER_LEN;
    let lies: [(u64, u32); 8] = [
        (u64::MAX, 24),
        (u64::MAX - 100, u32::MAX),
        (0, 24),
        (CHUNK_SIZE as u64 + 2, 25),
        (CHUNK_SIZE as u64 + 4, 23),
        (CHUNK_SIZE as u64 + 3, 0),
        (CHUNK_SIZE as u64 + 3, 15),
        ((u32::MAX as u64 + 1) * CHUNK_SIZE as u64, 24),
    ];
    for (plaintext_len, metadata_len) in lies {
        let mut bad = record.clone();
        bad[footer..footer + 8].copy_from_slice(&plaintext_len.to_be_bytes());
        bad[footer + 8..footer + 12].copy_from_slice(&metadata_len.to_be_bytes());
        assert!(
            check(&ring, &bad).is_err(),
            "{plaintext_len} / {metadata_len}"
        );
    }
    // A footer that fits a huge claimed record: rejected before any allocation.
    let huge = RecordReader::open(&ring, Cursor::new(&record), 0, u64::MAX);
    assert!(huge.is_err());
    let beyond = RecordReader::open(&ring, Cursor::new(&record), u64::MAX - 10, 100);
    assert!(beyond.is_err());
}

#[test]
fn garbage_is_rejected_cleanly() {
    let ring = Keyring::new(StorageKey::generate(), vec![]);
    for len in [0, 10, 49, 50, 100, 5000] {
        assert!(check(&ring, &pattern(len)).is_err());
        let mut with_magic = b"FERRYREC\x01\x10".to_vec();
        with_magic.extend(pattern(len));
        assert!(check(&ring, &with_magic).is_err());
    }
    let mut version_2 = seal(ring.current(), b"x", 1, b"");
    version_2[8] = 2;
    assert!(matches!(
        check(&ring, &version_2),
        Err(CryptoError::MalformedRecord(_))
    ));
}

#[test]
#[should_panic(expected = "record metadata is limited")]
fn oversized_metadata_is_refused_when_sealing() {
    let key = StorageKey::generate();
    let sealer = Sealer::new(&key);
    sealer.finish(&vec![0; MAX_METADATA_LEN + 1], &mut Vec::new());
}

#[test]
fn largest_metadata_round_trips() {
    let key = StorageKey::generate();
    let metadata = pattern(MAX_METADATA_LEN);
    let record = seal(&key, b"abc", usize::MAX, &metadata);
    let (content, back) = read_all(&Keyring::new(key, vec![]), &record).unwrap();
    assert_eq!(content, b"abc");
    assert!(back == metadata);
}

#[test]
fn sealer_and_reader_debug_show_no_key_material() {
    let key = StorageKey::generate();
    let text = key.to_base64();
    let sealer = Sealer::new(&key);
    let debug = format!("{sealer:?}");
    assert!(debug.contains(key.id()) && !debug.contains(text.trim_end_matches('=')));
    let record = seal(&key, b"x", 1, b"");
    let reader = open(&Keyring::new(key.clone(), vec![]), &record).unwrap();
    assert!(!format!("{reader:?}").contains(text.trim_end_matches('=')));
}
