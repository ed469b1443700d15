//! The key store: every item's own data key, wrapped by the storage key, kept
//! apart from the item data (envelope encryption, for crypto-shredding).
//!
//! ```text
//! keys/NNNNNNNN.keys   slot 0: the file's header; slots 1..=capacity: data keys
//! ```
//!
//! Each slot is [`SLOT_LEN`] bytes at `SLOT_LEN × slot` (big-endian integers):
//!
//! | bytes | header (slot 0) | data key (slot i ≥ 1) |
//! | --- | --- | --- |
//! | 0..16 | magic `FERRYKEYS`, zeros | id of the storage key that wraps it (ASCII) |
//! | 16..20 | version 1 | the wrapped key: nonce (12), AES-256-GCM of the |
//! | 20..24 | capacity (u32) | 32-byte data key (32), tag (16), with associated |
//! | 24..28 | file number (u32) | data "ferry-data-key", file number, slot number |
//! | 28..124 | zeros | zeros |
//! | 124..128 | CRC-32 of bytes 0..124 | CRC-32 of bytes 0..124, file number, slot number |
//!
//! A slot of all zeros is a destroyed key. A record sealed with data key
//! `dk-FFFFFFFF-SSSSSSSS` (file and slot in hex, as the record's key id) reads
//! only while that slot holds its key.
//!
//! - A file is written whole, with every slot holding a fresh key, fsynced, and
//!   renamed into place (then `keys/` is fsynced) before any of its keys is
//!   used; writers take the next unused slot ([`KeyStore::allocate`]), so a
//!   commit writes nothing here.
//! - A delete overwrites the slot with zeros and `fdatasync`s the file before it
//!   returns: from then on the record cannot be decrypted, wherever its bytes
//!   are (a segment awaiting compaction, a copy taken before).
//! - At open ([`KeyStore::settle`]), keys that no listed item uses and no
//!   unreadable record names are destroyed (keys of items deleted just before a
//!   crash, of commits that never completed, handed out and never used), and
//!   files whose keys are wrapped by an older storage key are rewritten with the
//!   current one: rotating the storage key rewraps the data keys and leaves the
//!   item data alone.
//! - A record that names a slot past the end of the key files, or a key file that
//!   is not there, means the key store is not the one the data was written with:
//!   the store refuses to open ([`StoreError::KeyStoreIncomplete`]) and changes
//!   nothing.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use ferry_crypto::{CryptoError, KeyLookup, Keyring, StorageKey, WRAPPED_KEY_LEN};

use super::fsutil::{create_private_file, io_err, sync_dir};
use super::seam::{Seam, Step};
use crate::StoreError;

/// Bytes of a slot.
pub(crate) const SLOT_LEN: usize = 128;
const MAGIC: &[u8; 9] = b"FERRYKEYS";
const VERSION: u32 = 1;
const KEK_ID_LEN: usize = 16;
const CRC_AT: usize = SLOT_LEN - 4;
const WRAP_CONTEXT: &[u8] = b"ferry-data-key";
/// The prefix of a data key's id.
const DATA_KEY_PREFIX: &str = "dk-";

/// Where a data key is: its file and slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct KeyRef {
    pub file: u32,
    pub slot: u32,
}

impl KeyRef {
    /// The key id a record sealed with this data key carries.
    pub(crate) fn id(self) -> String {
        format!("{DATA_KEY_PREFIX}{:08x}-{:08x}", self.file, self.slot)
    }

    /// The data key named by a record's key id; `None` for a storage key's id.
    pub(crate) fn parse(key_id: &str) -> Option<KeyRef> {
        let rest = key_id.strip_prefix(DATA_KEY_PREFIX)?;
        let (file, slot) = rest.split_once('-')?;
        let hex = |s: &str| (s.len() == 8).then(|| u32::from_str_radix(s, 16).ok())?;
        Some(KeyRef {
            file: hex(file)?,
            slot: hex(slot)?,
        })
    }

    fn context(self) -> [u8; WRAP_CONTEXT.len() + 8] {
        let mut context = [0u8; WRAP_CONTEXT.len() + 8];
        context[..WRAP_CONTEXT.len()].copy_from_slice(WRAP_CONTEXT);
        context[WRAP_CONTEXT.len()..][..4].copy_from_slice(&self.file.to_be_bytes());
        context[WRAP_CONTEXT.len() + 4..].copy_from_slice(&self.slot.to_be_bytes());
        context
    }
}

/// What a slot holds.
#[derive(Debug, PartialEq, Eq)]
enum Slot {
    /// Destroyed (all zeros).
    Destroyed,
    /// A wrapped key, and the id of the storage key that wraps it.
    Wrapped {
        kek: String,
        wrapped: [u8; WRAPPED_KEY_LEN],
    },
    /// Neither: damaged.
    Damaged,
}

fn slot_crc(bytes: &[u8], at: KeyRef) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes[..CRC_AT]);
    crc.update(&at.file.to_be_bytes());
    crc.update(&at.slot.to_be_bytes());
    crc.finalize()
}

fn parse_slot(bytes: &[u8], at: KeyRef) -> Slot {
    if bytes.iter().all(|&b| b == 0) {
        return Slot::Destroyed;
    }
    let crc = u32::from_be_bytes(bytes[CRC_AT..].try_into().expect("4 bytes"));
    let kek = &bytes[..KEK_ID_LEN];
    if crc != slot_crc(bytes, at) || !kek.iter().all(u8::is_ascii_graphic) {
        return Slot::Damaged;
    }
    Slot::Wrapped {
        kek: String::from_utf8(kek.to_vec()).expect("checked ASCII"),
        wrapped: bytes[KEK_ID_LEN..KEK_ID_LEN + WRAPPED_KEY_LEN]
            .try_into()
            .expect("slice of the wrapped length"),
    }
}

/// A slot holding `key` wrapped by `kek`.
fn wrapped_slot(kek: &StorageKey, key: &StorageKey, at: KeyRef) -> [u8; SLOT_LEN] {
    let mut slot = [0u8; SLOT_LEN];
    let kek_id = kek.id().as_bytes();
    assert_eq!(
        kek_id.len(),
        KEK_ID_LEN,
        "storage key ids are 16 characters"
    );
    slot[..KEK_ID_LEN].copy_from_slice(kek_id);
    slot[KEK_ID_LEN..KEK_ID_LEN + WRAPPED_KEY_LEN].copy_from_slice(&kek.wrap(key, &at.context()));
    let crc = slot_crc(&slot, at);
    slot[CRC_AT..].copy_from_slice(&crc.to_be_bytes());
    slot
}

fn header(file: u32, capacity: u32) -> [u8; SLOT_LEN] {
    let mut header = [0u8; SLOT_LEN];
    header[..MAGIC.len()].copy_from_slice(MAGIC);
    header[16..20].copy_from_slice(&VERSION.to_be_bytes());
    header[20..24].copy_from_slice(&capacity.to_be_bytes());
    header[24..28].copy_from_slice(&file.to_be_bytes());
    let crc = crc32fast::hash(&header[..CRC_AT]);
    header[CRC_AT..].copy_from_slice(&crc.to_be_bytes());
    header
}

/// The capacity a key file's header states, if it is a key file of this version.
fn parse_header(bytes: &[u8], file: u32) -> Option<u32> {
    let field = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let valid = bytes.len() == SLOT_LEN
        && &bytes[..MAGIC.len()] == MAGIC
        && field(16) == VERSION
        && field(24) == file
        && field(CRC_AT) == crc32fast::hash(&bytes[..CRC_AT]);
    valid.then(|| field(20))
}

fn file_name(number: u32) -> String {
    format!("{number:08}.keys")
}

/// One key file.
#[derive(Debug)]
struct KeyFile {
    file: File,
    path: PathBuf,
    capacity: u32,
}

impl KeyFile {
    fn read_slot(&self, at: KeyRef) -> std::io::Result<Slot> {
        let mut bytes = [0u8; SLOT_LEN];
        self.file
            .read_exact_at(&mut bytes, u64::from(at.slot) * SLOT_LEN as u64)?;
        Ok(parse_slot(&bytes, at))
    }
}

/// A key file being written ahead of need: its number and its keys.
type Ahead = tokio::task::JoinHandle<Result<(u32, VecDeque<StorageKey>), StoreError>>;

/// The next key to hand out.
#[derive(Debug)]
struct Cursor {
    file: u32,
    /// The slot of the next key.
    slot: u32,
    /// The keys of `file` from `slot` on, when this process made the file; else
    /// they are read from it.
    fresh: VecDeque<StorageKey>,
    /// The next key file, written once half of this one is handed out.
    ahead: Option<Ahead>,
}

impl Cursor {
    fn at(file: u32, slot: u32) -> Cursor {
        Cursor {
            file,
            slot,
            fresh: VecDeque::new(),
            ahead: None,
        }
    }
}

/// What recovery learnt of the data keys the records name.
#[derive(Debug, Default)]
pub(crate) struct KeyUse {
    /// Keys of listed items, and keys named by records that could not be read:
    /// kept.
    pub kept: HashSet<KeyRef>,
    /// Every key some record names.
    pub named: HashSet<KeyRef>,
    /// A record whose key could not be known (its header is unreadable): no key
    /// is destroyed at open.
    pub blind: bool,
    /// Which keys of the last file were handed out is not known (the records
    /// were not all read): new keys come from a new file.
    pub fresh_unknown: bool,
    /// Every key was found wrapped by the current storage key when the store
    /// opened ([`Wrapping::Current`]): none is to be rewrapped.
    pub all_current: bool,
}

/// Which storage keys wrap the data keys of the key files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wrapping {
    /// Every key, by the current storage key.
    Current,
    /// Every key, by a storage key of the keyring; some by an older one.
    Keyring,
    /// Some key by a storage key not given, or some slot is damaged.
    Other,
}

/// The key store of a [`LocalStore`](super::LocalStore) (see the module docs).
#[derive(Debug)]
pub(crate) struct KeyStore {
    dir: PathBuf,
    keyring: Keyring,
    seam: Seam,
    capacity: u32,
    files: Mutex<BTreeMap<u32, Arc<KeyFile>>>,
    next: tokio::sync::Mutex<Cursor>,
}

impl KeyStore {
    /// Opens the key files in `dir` (which exists), removing leftovers of a file
    /// being written. New files get `capacity` slots.
    pub(crate) fn open(
        dir: &Path,
        keyring: Keyring,
        seam: Seam,
        capacity: u32,
    ) -> Result<KeyStore, StoreError> {
        let mut files = BTreeMap::new();
        let entries = std::fs::read_dir(dir).map_err(io_err("reading directory", dir))?;
        for entry in entries {
            let entry = entry.map_err(io_err("reading directory", dir))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".keys.tmp") {
                seam.run(Step::KeyFileWrite, &path, || std::fs::remove_file(&path))
                    .map_err(io_err("removing", &path))?;
                continue;
            }
            let Some(number) = name
                .strip_suffix(".keys")
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io_err("opening", &path))?;
            let mut head = [0u8; SLOT_LEN];
            let capacity = file
                .read_exact_at(&mut head, 0)
                .ok()
                .and_then(|()| parse_header(&head, number))
                .ok_or_else(|| {
                    StoreError::Unavailable(format!(
                        "{} is not a key file of this version: restore it from a backup",
                        path.display()
                    ))
                })?;
            files.insert(
                number,
                Arc::new(KeyFile {
                    file,
                    path,
                    capacity,
                }),
            );
        }
        let next = match files.last_key_value() {
            Some((&file, _)) => Cursor::at(file, 1),
            None => Cursor::at(1, 1),
        };
        Ok(KeyStore {
            dir: dir.to_owned(),
            keyring,
            seam,
            capacity: capacity.max(1),
            files: Mutex::new(files),
            next: tokio::sync::Mutex::new(next),
        })
    }

    fn file(&self, number: u32) -> Option<Arc<KeyFile>> {
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&number)
            .cloned()
    }

    /// A fresh data key for a new item, named after its slot. Writes nothing:
    /// key files are written ahead, in the background, once half of the last one
    /// is handed out (or here, if that has not finished).
    pub(crate) async fn allocate(self: &Arc<Self>) -> Result<StorageKey, StoreError> {
        let mut next = self.next.lock().await;
        loop {
            let capacity = self.file(next.file).map_or(0, |f| f.capacity);
            if next.slot <= capacity {
                let at = KeyRef {
                    file: next.file,
                    slot: next.slot,
                };
                next.slot += 1;
                if next.ahead.is_none() && capacity - at.slot < capacity / 2 {
                    next.ahead = Some(self.write_ahead(at.file + 1));
                }
                return match next.fresh.pop_front() {
                    Some(key) => Ok(key),
                    None => self.data_key(at).map_err(|err| {
                        StoreError::Unavailable(format!(
                            "a fresh data key ({}) cannot be read: {err}",
                            at.id()
                        ))
                    }),
                };
            }
            let ahead = match next.ahead.take() {
                Some(ahead) => ahead,
                None if capacity == 0 => self.write_ahead(next.file),
                None => self.write_ahead(next.file + 1),
            };
            let (file, fresh) = ahead.await.map_err(super::file::joined)??;
            *next = Cursor {
                file,
                slot: 1,
                fresh,
                ahead: None,
            };
        }
    }

    /// [`KeyStore::create_file`] on a blocking thread.
    fn write_ahead(self: &Arc<Self>, number: u32) -> Ahead {
        let keys = self.clone();
        tokio::task::spawn_blocking(move || keys.create_file(number).map(|fresh| (number, fresh)))
    }

    /// Writes key file `number` whole, with fresh keys, and puts it in place;
    /// returns its keys.
    fn create_file(&self, number: u32) -> Result<VecDeque<StorageKey>, StoreError> {
        let kek = self.keyring.current();
        let mut bytes = Vec::with_capacity(SLOT_LEN * (self.capacity as usize + 1));
        let mut fresh = VecDeque::with_capacity(self.capacity as usize);
        bytes.extend_from_slice(&header(number, self.capacity));
        for slot in 1..=self.capacity {
            let at = KeyRef { file: number, slot };
            let key = StorageKey::generate_named(at.id());
            bytes.extend_from_slice(&wrapped_slot(kek, &key, at));
            fresh.push_back(key);
        }
        self.write_whole(number, self.capacity, &bytes)?;
        Ok(fresh)
    }

    /// Writes `bytes` as key file `number` (a new one, or in place of the old
    /// one): a temporary file, fsynced, renamed, and `keys/` fsynced; then reads
    /// from it.
    fn write_whole(&self, number: u32, capacity: u32, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.dir.join(file_name(number));
        let tmp = path.with_extension("keys.tmp");
        let file = create_private_file(&self.seam, Step::KeyFileWrite, &tmp)?;
        self.seam
            .run(Step::KeyFileWrite, &tmp, || file.write_all_at(bytes, 0))
            .map_err(io_err("writing", &tmp))?;
        self.seam
            .run(Step::KeyFileSync, &tmp, || file.sync_data())
            .map_err(io_err("syncing", &tmp))?;
        self.seam
            .run(Step::KeyFileRename, &path, || std::fs::rename(&tmp, &path))
            .map_err(io_err("renaming into place", &path))?;
        sync_dir(&self.seam, Step::SyncKeys, &self.dir)?;
        let file = Arc::new(KeyFile {
            file,
            path,
            capacity,
        });
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(number, file);
        Ok(())
    }

    /// The data key in slot `at`.
    fn data_key(&self, at: KeyRef) -> Result<StorageKey, CryptoError> {
        let missing = || CryptoError::UnknownKey(at.id());
        let file = self.file(at.file).ok_or_else(missing)?;
        if at.slot == 0 || at.slot > file.capacity {
            return Err(missing());
        }
        match file.read_slot(at)? {
            Slot::Destroyed => Err(CryptoError::KeyDestroyed(at.id())),
            Slot::Damaged => Err(CryptoError::Authentication(format!(
                "the slot of data key {} (damaged)",
                at.id()
            ))),
            Slot::Wrapped { kek, wrapped } => {
                let kek = self.keyring.lookup(&kek)?;
                kek.unwrap(&wrapped, &at.context(), at.id())
            }
        }
    }

    /// Destroys a data key durably. `Err((written, err))`: whether the zeros
    /// were written (the key may be gone) before the error.
    pub(crate) fn destroy(&self, at: KeyRef) -> Result<(), (bool, StoreError)> {
        let Some(file) = self.file(at.file) else {
            return Ok(());
        };
        self.seam
            .run(Step::KeyDestroy, &file.path, || {
                file.file
                    .write_all_at(&[0; SLOT_LEN], u64::from(at.slot) * SLOT_LEN as u64)
            })
            .map_err(|err| {
                (
                    false,
                    StoreError::io("destroying a key in", &file.path, err),
                )
            })?;
        self.seam
            .run(Step::KeyDestroySync, &file.path, || file.file.sync_data())
            .map_err(|err| (true, StoreError::io("syncing", &file.path, err)))
    }

    /// After recovery: destroys the keys nothing needs, and rewraps with the
    /// current storage key the files some of whose keys an older one wraps. The
    /// slots after the last one any record names in the last file stay fresh, to
    /// be handed out.
    pub(crate) async fn settle(self: &Arc<Self>, used: KeyUse) -> Result<(), StoreError> {
        let keys = self.clone();
        let last = tokio::task::spawn_blocking(move || keys.settle_blocking(&used))
            .await
            .map_err(super::file::joined)??;
        if let Some(at) = last {
            *self.next.lock().await = Cursor::at(at.file, at.slot + 1);
        }
        Ok(())
    }

    /// Which storage keys wrap the keys the key files hold. Unless each is a
    /// storage key of the keyring (and no slot is damaged), the store must read
    /// every record at open to know which ones it cannot read.
    pub(crate) fn wrapping(&self) -> Result<Wrapping, StoreError> {
        let files = self.all_files();
        let current = self.keyring.current().id();
        let mut found = Wrapping::Current;
        for (number, file) in files {
            let bytes = self.read_whole(&file)?;
            for slot in 1..=file.capacity {
                let at = KeyRef { file: number, slot };
                let range = slot as usize * SLOT_LEN..(slot as usize + 1) * SLOT_LEN;
                match parse_slot(&bytes[range], at) {
                    Slot::Destroyed => {}
                    Slot::Wrapped { kek, .. } if kek == current => {}
                    Slot::Wrapped { kek, .. } if self.keyring.find(&kek).is_some() => {
                        found = Wrapping::Keyring;
                    }
                    Slot::Wrapped { .. } | Slot::Damaged => return Ok(Wrapping::Other),
                }
            }
        }
        Ok(found)
    }

    /// The key files as they are now.
    fn all_files(&self) -> Vec<(u32, Arc<KeyFile>)> {
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(n, f)| (*n, f.clone()))
            .collect()
    }

    /// Every byte of a key file: its header and all its slots.
    fn read_whole(&self, file: &KeyFile) -> Result<Vec<u8>, StoreError> {
        let mut bytes = vec![0u8; SLOT_LEN * (file.capacity as usize + 1)];
        self.seam
            .run(Step::ReadKeys, &file.path, || {
                file.file.read_exact_at(&mut bytes, 0)
            })
            .map_err(io_err("reading", &file.path))?;
        Ok(bytes)
    }

    fn settle_blocking(&self, used: &KeyUse) -> Result<Option<KeyRef>, StoreError> {
        let files = self.all_files();
        let Some(&(last_file, ref last)) = files.last() else {
            return Ok(None);
        };
        if used.blind && used.fresh_unknown && used.all_current {
            // Nothing may be destroyed, nothing is to be rewrapped (all was
            // read at open), and new keys come from a new file: the files are
            // not read again.
            return Ok(Some(KeyRef {
                file: last_file,
                slot: last.capacity,
            }));
        }
        // The last slot named in the last file: the fresh ones follow it.
        let frontier = used
            .named
            .iter()
            .filter(|at| at.file == last_file)
            .map(|at| at.slot)
            .max()
            .unwrap_or(0);
        let current = self.keyring.current();
        // Fresh keys wrapped by a storage key that was not given cannot be
        // handed out: new keys then come from a new file.
        let mut fresh_usable = true;
        for (number, file) in files {
            let mut bytes = self.read_whole(&file)?;
            let (mut destroyed, mut rewrapped) = (0usize, 0usize);
            for slot in 1..=file.capacity {
                let at = KeyRef { file: number, slot };
                let range = slot as usize * SLOT_LEN..(slot as usize + 1) * SLOT_LEN;
                let Slot::Wrapped { kek, wrapped } = parse_slot(&bytes[range.clone()], at) else {
                    continue;
                };
                let fresh = number == last_file && slot > frontier;
                if !used.blind && !fresh && !used.kept.contains(&at) {
                    bytes[range].fill(0);
                    destroyed += 1;
                } else if kek != current.id() {
                    let Some(old) = self.keyring.find(&kek) else {
                        fresh_usable &= !fresh;
                        continue;
                    };
                    let key = old
                        .unwrap(&wrapped, &at.context(), at.id())
                        .map_err(|err| StoreError::Unavailable(err.to_string()))?;
                    bytes[range].copy_from_slice(&wrapped_slot(current, &key, at));
                    rewrapped += 1;
                }
            }
            if destroyed + rewrapped > 0 {
                self.write_whole(number, file.capacity, &bytes)?;
                tracing::info!(
                    file = %file.path.display(),
                    destroyed,
                    rewrapped,
                    "key file settled: unused data keys destroyed, keys of an older storage key rewrapped with the current one"
                );
            }
        }
        let capacity = self.file(last_file).map_or(0, |f| f.capacity);
        Ok(Some(KeyRef {
            file: last_file,
            slot: if fresh_usable && !used.fresh_unknown {
                frontier
            } else {
                capacity
            },
        }))
    }
}

impl KeyLookup for KeyStore {
    fn lookup(&self, key_id: &str) -> Result<StorageKey, CryptoError> {
        match KeyRef::parse(key_id) {
            Some(at) => self.data_key(at),
            None => self.keyring.lookup(key_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_name_their_slot() {
        let at = KeyRef {
            file: 3,
            slot: 0x1a,
        };
        assert_eq!(at.id(), "dk-00000003-0000001a");
        assert_eq!(KeyRef::parse(&at.id()), Some(at));
        for other in ["0123456789abcdef", "dk-3-1a", "dk-00000003-0000001g", "dk-"] {
            assert_eq!(KeyRef::parse(other), None, "{other}");
        }
    }

    #[test]
    fn a_slot_reads_back_only_in_its_place() {
        let kek = StorageKey::generate();
        let at = KeyRef { file: 1, slot: 2 };
        let key = StorageKey::generate_named(at.id());
        let slot = wrapped_slot(&kek, &key, at);
        let Slot::Wrapped { kek: id, .. } = parse_slot(&slot, at) else {
            panic!("not a wrapped key");
        };
        assert_eq!(id, kek.id());
        assert_eq!(
            parse_slot(&slot, KeyRef { file: 1, slot: 3 }),
            Slot::Damaged
        );
        assert_eq!(parse_slot(&[0; SLOT_LEN], at), Slot::Destroyed);
        let mut flipped = slot;
        flipped[40] ^= 1;
        assert_eq!(parse_slot(&flipped, at), Slot::Damaged);
    }

    #[tokio::test]
    async fn keys_are_handed_out_in_order_and_destroyed_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::new(StorageKey::generate(), vec![]);
        let keys = Arc::new(KeyStore::open(dir.path(), ring, Seam::default(), 2).unwrap());
        let a = keys.allocate().await.unwrap();
        let b = keys.allocate().await.unwrap();
        let c = keys.allocate().await.unwrap();
        assert_eq!(
            [a.id(), b.id(), c.id()],
            [
                "dk-00000001-00000001",
                "dk-00000001-00000002",
                "dk-00000002-00000001"
            ]
        );
        let at = KeyRef::parse(b.id()).unwrap();
        keys.destroy(at).unwrap();
        assert!(matches!(
            keys.lookup(b.id()),
            Err(CryptoError::KeyDestroyed(_))
        ));
        assert!(keys.lookup(a.id()).is_ok());
        assert!(matches!(
            keys.lookup("dk-00000009-00000001"),
            Err(CryptoError::UnknownKey(_))
        ));
    }
}
