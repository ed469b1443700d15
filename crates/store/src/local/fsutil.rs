//! File-system helpers: private directories and files, directory fsync, and a group
//! fsync that lets concurrent commits share one directory fsync. Each goes through
//! the store's [`Seam`].

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};

use super::seam::{Seam, Step};
use crate::StoreError;

/// Creates `path` (and its missing parents) readable by the owner only, if it is
/// missing; each directory created is made durable in its parent (fsync).
pub(crate) fn create_private_dir(seam: &Seam, path: &Path) -> Result<(), StoreError> {
    let missing: Vec<&Path> = path.ancestors().take_while(|p| !p.exists()).collect();
    for dir in missing.into_iter().rev() {
        let created = seam.run(Step::CreateDir, dir, || {
            DirBuilder::new().mode(0o700).create(dir)
        });
        match created {
            Ok(()) => {}
            // Created meanwhile by someone else: theirs to make durable.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(StoreError::io("creating directory", dir, e)),
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        sync_dir(seam, Step::SyncNewDir, parent)?;
    }
    Ok(())
}

/// Creates a new file, readable and writable by the owner only.
pub(crate) fn create_private_file(
    seam: &Seam,
    step: Step,
    path: &Path,
) -> Result<File, StoreError> {
    seam.run(step, path, || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    })
    .map_err(|e| StoreError::io("creating file", path, e))
}

/// Makes the directory entries of `dir` (creations, renames, unlinks) durable.
pub(crate) fn sync_dir(seam: &Seam, step: Step, dir: &Path) -> Result<(), StoreError> {
    seam.run(step, dir, || File::open(dir).and_then(|d| d.sync_all()))
        .map_err(|e| StoreError::io("syncing directory", dir, e))
}

/// Removes every entry of `dir`, logging what cannot be removed.
pub(crate) fn empty_dir(seam: &Seam, dir: &Path) -> Result<usize, StoreError> {
    let mut removed = 0;
    for entry in fs::read_dir(dir).map_err(|e| StoreError::io("reading directory", dir, e))? {
        let path = entry
            .map_err(|e| StoreError::io("reading directory", dir, e))?
            .path();
        let result = seam.run(Step::EmptyTmp, &path, || {
            if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            }
        });
        match result {
            Ok(()) => removed += 1,
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "cannot remove leftover temporary file")
            }
        }
    }
    Ok(removed)
}

/// Fsyncs one directory on behalf of many threads: a caller returns once a
/// directory fsync that *started after its call* has completed, so concurrent
/// callers share one fsync instead of queueing one each.
///
/// Once an fsync fails, every later call fails too, without trying: a retry
/// could report success once the kernel has consumed the error, for entries
/// that never reached the disk. The store must be reopened.
#[derive(Debug)]
pub(crate) struct GroupSync {
    dir: PathBuf,
    seam: Seam,
    state: Mutex<GroupState>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct GroupState {
    /// Number of fsyncs started so far.
    started: u64,
    /// The number (1-based) of the last fsync that completed successfully.
    completed: u64,
    /// Whether an fsync is running now.
    running: bool,
    /// Why an fsync failed, if one did.
    failed: Option<String>,
}

impl GroupSync {
    pub(crate) fn new(dir: PathBuf, seam: Seam) -> GroupSync {
        GroupSync {
            dir,
            seam,
            state: Mutex::new(GroupState::default()),
            done: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Blocks until the directory's entries as of this call are durable.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        let mut state = self.lock();
        let needed = state.started + 1;
        loop {
            if let Some(reason) = &state.failed {
                return Err(StoreError::Unavailable(format!(
                    "an fsync of {} failed earlier: {reason}",
                    self.dir.display()
                )));
            }
            if state.completed >= needed {
                return Ok(());
            }
            if !state.running {
                state.running = true;
                state.started += 1;
                let mine = state.started;
                drop(state);
                let result = sync_dir(&self.seam, Step::SyncItems, &self.dir);
                let mut state = self.lock();
                state.running = false;
                match &result {
                    Ok(()) => state.completed = mine,
                    Err(err) => state.failed = Some(err.to_string()),
                }
                self.done.notify_all();
                return result;
            }
            state = self
                .done
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Maps an I/O error while handling `path`.
pub(crate) fn io_err<'a>(
    context: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |e| StoreError::io(context, path, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn concurrent_group_syncs_all_return() {
        let dir = tempfile::tempdir().unwrap();
        let group = Arc::new(GroupSync::new(dir.path().to_owned(), Seam::default()));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let group = group.clone();
                std::thread::spawn(move || (0..20).for_each(|_| group.sync().unwrap()))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let state = group.state.lock().unwrap();
        assert!(state.started <= 16 * 20 && state.completed == state.started);
    }
}
