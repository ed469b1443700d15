//! Legal holds: the ids of the items that must not be deleted, in memory and in
//! `DIR/holds` (the held ids, sorted, one a line).
//!
//! The file is replaced whole, never edited: `holds.new` is written and fsynced,
//! renamed over `holds`, and the directory fsynced; a change is made in memory only
//! once that has succeeded, so a failed write leaves the old holds in memory and on
//! disk (after a failed directory fsync the old file is put back). A change of
//! holds and a delete are never in flight together (see [`Holds::unheld`]): a
//! delete that began before a hold finishes first, one that begins after it sees
//! the hold.
//!
//! Holds are read at open and kept as they are; a hold naming an item that is no
//! longer listed is dropped from the file on its next write, unless the store
//! opened without some storage keys (the items those keys seal are not listed,
//! but they are still there, and so are their holds).

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use super::file::joined;
use super::fsutil::{io_err, sync_dir};
use super::seam::{Seam, Step};
use crate::{ItemId, StoreError};

/// The name of the holds file in the store's directory.
pub(crate) const HOLDS_FILE: &str = "holds";

/// The held items of a store (see the [module docs](self)).
#[derive(Debug)]
pub(crate) struct Holds {
    files: Files,
    held: RwLock<BTreeSet<ItemId>>,
    /// Shared by each delete while it runs, exclusive while the holds change.
    gate: tokio::sync::RwLock<()>,
}

/// Where the holds are kept.
#[derive(Clone, Debug)]
struct Files {
    /// `DIR/holds`.
    path: PathBuf,
    /// `DIR/holds.new`, written before it is renamed over `path`.
    new: PathBuf,
    /// `DIR`.
    dir: PathBuf,
}

impl Holds {
    /// Reads the holds of the store in `root` (none if it has no holds file).
    pub(crate) fn load(root: &Path, seam: &Seam) -> Result<Holds, StoreError> {
        let files = Files {
            path: root.join(HOLDS_FILE),
            new: root.join(format!("{HOLDS_FILE}.new")),
            dir: root.to_owned(),
        };
        let path = &files.path;
        let text = match seam.run(Step::ReadHolds, path, || fs::read_to_string(path)) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => String::new(),
            Err(err) => return Err(StoreError::io("reading", path, err)),
        };
        let held = parse(&text).map_err(|line| {
            let reason = format!("line {line} is not an item id: the holds file is damaged");
            StoreError::io(
                "reading",
                path,
                io::Error::new(io::ErrorKind::InvalidData, reason),
            )
        })?;
        Ok(Holds {
            files,
            held: RwLock::new(held),
            gate: tokio::sync::RwLock::new(()),
        })
    }

    fn held(&self) -> RwLockReadGuard<'_, BTreeSet<ItemId>> {
        self.held.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `id` is on hold.
    pub(crate) fn contains(&self, id: ItemId) -> bool {
        self.held().contains(&id)
    }

    /// The number of ids on hold (items not listed included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.held().len()
    }

    /// Waits until no change of holds is in flight, then refuses a held `id`
    /// ([`StoreError::Held`]). Holds cannot change while the guard returned lives:
    /// a delete keeps it until it is done.
    pub(crate) async fn unheld(
        &self,
        id: ItemId,
    ) -> Result<tokio::sync::RwLockReadGuard<'_, ()>, StoreError> {
        let guard = self.gate.read().await;
        match self.contains(id) {
            true => Err(StoreError::Held(id)),
            false => Ok(guard),
        }
    }

    /// Puts `id` on hold (`held`) or lifts its hold, durably (the file is written
    /// even if the hold was already so); `false`, and nothing changes, if
    /// `listed(id)` says there is no such item. The holds of items no
    /// longer listed are dropped, unless `keep_unlisted`.
    pub(crate) async fn set(
        &self,
        id: ItemId,
        held: bool,
        seam: &Seam,
        listed: impl Fn(ItemId) -> bool,
        keep_unlisted: bool,
    ) -> Result<bool, StoreError> {
        let _gate = self.gate.write().await;
        if !listed(id) {
            return Ok(false);
        }
        let old = self.held().clone();
        let mut new = old.clone();
        match held {
            true => new.insert(id),
            false => new.remove(&id),
        };
        if !keep_unlisted {
            new.retain(|id| listed(*id));
        }
        // Written even when nothing changes: after a failed change the file may
        // say what it tried (its rename done, the restore failed), and a call
        // that returns must leave the file saying what memory says.
        let (files, seam) = (self.files.clone(), seam.clone());
        let (text, old_text) = (render(&new), render(&old));
        tokio::task::spawn_blocking(move || files.replace(&text, &old_text, &seam))
            .await
            .map_err(joined)??;
        *self.held.write().unwrap_or_else(PoisonError::into_inner) = new;
        Ok(true)
    }
}

impl Files {
    /// Makes `text` the file's content durably. If only the directory's fsync
    /// fails, `old` is put back (best effort), so that the file says what the
    /// caller, told of the failure, believes.
    fn replace(&self, text: &str, old: &str, seam: &Seam) -> Result<(), StoreError> {
        self.rename_into_place(text, seam)?;
        let synced = sync_dir(seam, Step::SyncHoldsDir, &self.dir);
        if synced.is_err()
            && let Err(err) = self.rename_into_place(old, seam)
        {
            tracing::error!(%err, path = %self.path.display(), "cannot put the holds file back after a failed directory fsync; its content is that of the failed change");
        }
        synced
    }

    /// Writes `text` to `holds.new`, fsyncs it and renames it over `holds`.
    fn rename_into_place(&self, text: &str, seam: &Seam) -> Result<(), StoreError> {
        seam.run(Step::WriteHolds, &self.new, || {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&self.new)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .map_err(io_err("writing", &self.new))?;
        seam.run(Step::RenameHolds, &self.path, || {
            fs::rename(&self.new, &self.path)
        })
        .map_err(io_err("renaming into place", &self.path))
    }
}

/// The ids of a holds file; `Err` with the (1-based) number of a line that is not
/// an id. Blank lines are skipped.
fn parse(text: &str) -> Result<BTreeSet<ItemId>, usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| ItemId::parse(line.trim()).map_err(|_| n + 1))
        .collect()
}

/// The content of a holds file: the ids, sorted, one a line.
fn render(held: &BTreeSet<ItemId>) -> String {
    held.iter().map(|id| format!("{id}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_the_sorted_ids_one_a_line_and_parses_back() {
        let ids: BTreeSet<ItemId> = (0..3).map(|_| ItemId::new()).collect();
        let text = render(&ids);
        assert_eq!(text.lines().count(), 3);
        assert!(text.ends_with('\n'));
        assert_eq!(parse(&text).unwrap(), ids);
        assert_eq!(parse(&format!("\n{text}\n")).unwrap(), ids);
        assert_eq!(parse("").unwrap(), BTreeSet::new());
        assert_eq!(parse(&format!("{text}not an id\n")), Err(4));
    }
}
