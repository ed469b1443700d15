//! A [`Hook`] for tests: fails a step, stops the store there as a crash would,
//! or holds it there until released; records every step; and models what a power
//! loss keeps of the data files it saw.
//!
//! The power-loss model, per file: the length of its content known durable (up to
//! its last byte that is not zero) and the file size known durable, both set by a
//! sync that succeeded; and, after a sync that failed, where the bytes that the
//! kernel may have marked clean without writing begin: those are lost at a power
//! loss even if a later sync succeeds, unless the file was cut below them first.
//! A power loss turns what follows the durable content into zeros, up to the
//! durable size (a log segment's prepared space, see [`log`](super::log)), and
//! cuts the file there. Directory entries (creations, renames, unlinks) are taken
//! as durable. A key file (see [`keys`](super::keys)) is written whole and
//! renamed into place, or changed in place by a delete's destroy: from that
//! write until its sync succeeds, a power loss brings back the bytes the file
//! held before it.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::seam::{Hook, Step};

/// What a rule does at its step.
#[derive(Clone, Debug)]
pub(crate) enum Action {
    /// That operation fails with EIO; the store goes on.
    Error,
    /// That operation and every later one fail: the process stopped there.
    Crash,
    /// The operation waits until the [`Pause`] is released, then goes ahead.
    Pause(Pause),
    /// Every step of the rule's kind fails with EIO, from its `nth` on.
    ErrorEvery,
}

/// A place where a step waits for the test.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pause(Arc<(Mutex<u8>, Condvar)>);

impl Pause {
    fn hold(&self) {
        let (state, changed) = &*self.0;
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        *state = 1;
        changed.notify_all();
        while *state != 2 {
            state = changed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Whether a step is waiting here (or has been).
    pub(crate) fn reached(&self) -> bool {
        *self.0.0.lock().unwrap_or_else(PoisonError::into_inner) >= 1
    }

    /// Lets the step go ahead.
    pub(crate) fn release(&self) {
        let (state, changed) = &*self.0;
        *state.lock().unwrap_or_else(PoisonError::into_inner) = 2;
        changed.notify_all();
    }
}

#[derive(Debug)]
struct Rule {
    /// Only steps of this kind count (any if `None`).
    step: Option<Step>,
    /// The 0-based count, among the steps that count, of the one to act on.
    nth: usize,
    action: Action,
    seen: usize,
}

#[derive(Clone, Copy, Debug)]
struct Durable {
    /// The content: up to the last byte that is not zero.
    len: u64,
    /// The file's size.
    size: u64,
    lost_from: Option<u64>,
}

/// A file's size and the length of its content (up to its last byte that is not
/// zero), if it exists.
#[derive(Clone, Copy, Debug)]
struct Extent {
    size: u64,
    content: u64,
}

fn extent_of(path: &Path) -> Option<Extent> {
    let bytes = std::fs::read(path).ok()?;
    let content = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    Some(Extent {
        size: bytes.len() as u64,
        content: content as u64,
    })
}

#[derive(Debug, Default)]
struct State {
    steps: Vec<(Step, PathBuf)>,
    rules: Vec<Rule>,
    crashed: bool,
    files: HashMap<PathBuf, Durable>,
    /// Key files changed in place since their last sync: their durable bytes.
    key_files: HashMap<PathBuf, Vec<u8>>,
}

impl State {
    /// After `step` on `path` succeeded: a key file's bytes are durable once
    /// its sync succeeds, or once a whole new file (synced) is renamed over it.
    fn key_file_durable(&mut self, step: Step, path: &Path) {
        if matches!(step, Step::KeyDestroySync | Step::KeyFileRename) {
            self.key_files.remove(path);
        }
    }
}

/// The test hook.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    state: Mutex<State>,
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(5)
}

/// Steps that make a data file's bytes durable.
fn is_file_sync(step: Step) -> bool {
    matches!(
        step,
        Step::SyncLastSegment
            | Step::SyncCutTail
            | Step::AppendSync
            | Step::PrepareSync
            | Step::PartSync
            | Step::PartEarlySync
    )
}

/// Steps whose path is a data file whose durability is modelled.
fn is_data_file(step: Step) -> bool {
    is_file_sync(step)
        || matches!(
            step,
            Step::AppendWrite
                | Step::AppendCutBack
                | Step::PrepareWrite
                | Step::PrepareCutBack
                | Step::PartWrite
                | Step::ReadSegment
                | Step::CutTail
        )
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Acts at the `nth` (0-based) step of kind `step` (of any kind if `None`)
    /// from now on.
    pub(crate) fn at(&self, step: Option<Step>, nth: usize, action: Action) {
        self.lock().rules.push(Rule {
            step,
            nth,
            action,
            seen: 0,
        });
    }

    /// Clears the rules and the crash: the next store opened runs normally.
    pub(crate) fn restart(&self) {
        let mut state = self.lock();
        state.rules.clear();
        state.crashed = false;
    }

    /// Whether every rule has acted.
    pub(crate) fn all_fired(&self) -> bool {
        self.lock().rules.iter().all(|r| r.seen > r.nth)
    }

    /// The steps seen so far.
    pub(crate) fn steps(&self) -> Vec<(Step, PathBuf)> {
        self.lock().steps.clone()
    }

    /// A power loss: every data file seen loses what was not durable.
    pub(crate) fn power_loss(&self) {
        let mut state = self.lock();
        for (path, durable) in state.key_files.drain() {
            if path.exists() {
                std::fs::write(&path, durable).unwrap();
            }
        }
        for (path, durable) in &state.files {
            let keep = durable
                .lost_from
                .map_or(durable.len, |lost| lost.min(durable.len));
            let Some(now) = extent_of(path) else { continue };
            if now.content > keep || now.size > durable.size {
                let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
                file.set_len(keep).unwrap();
                file.set_len(keep.max(durable.size.min(now.size))).unwrap();
            }
        }
    }
}

impl Hook for Faults {
    fn before(&self, step: Step, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.steps.push((step, path.to_owned()));
        if state.crashed {
            return Err(eio());
        }
        let mut action = None;
        for rule in &mut state.rules {
            if rule.step.is_none_or(|s| s == step) {
                let every = matches!(rule.action, Action::ErrorEvery) && rule.seen >= rule.nth;
                if rule.seen == rule.nth || every {
                    action = Some(rule.action.clone());
                }
                rule.seen += 1;
            }
        }
        if step == Step::KeyDestroy && !state.key_files.contains_key(path) {
            let durable = std::fs::read(path).unwrap_or_default();
            state.key_files.insert(path.to_owned(), durable);
        }
        let now = is_data_file(step).then(|| extent_of(path)).flatten();
        if let Some(now) = now {
            // A file first seen: what it holds now is taken as durable.
            let file = state.files.entry(path.to_owned()).or_insert(Durable {
                len: now.content,
                size: now.size,
                lost_from: None,
            });
            // Cut below what was lost or durable: those bytes are gone for good.
            if file.lost_from.is_some_and(|lost| now.content <= lost) {
                file.lost_from = None;
            }
            file.len = file.len.min(now.content);
            file.size = file.size.min(now.size);
        }
        match action {
            None => {
                if is_file_sync(step)
                    && let (Some(file), Some(now)) = (state.files.get_mut(path), now)
                {
                    (file.len, file.size) = (now.content, now.size);
                }
                state.key_file_durable(step, path);
                Ok(())
            }
            Some(Action::Pause(pause)) => {
                drop(state);
                pause.hold();
                let mut state = self.lock();
                state.key_file_durable(step, path);
                if is_file_sync(step)
                    && let (Some(file), Some(now)) = (state.files.get_mut(path), extent_of(path))
                {
                    (file.len, file.size) = (now.content, now.size);
                }
                Ok(())
            }
            Some(Action::Error | Action::ErrorEvery) => {
                if is_file_sync(step)
                    && let Some(file) = state.files.get_mut(path)
                {
                    file.lost_from.get_or_insert(file.len);
                }
                Err(eio())
            }
            Some(Action::Crash) => {
                state.crashed = true;
                Err(eio())
            }
        }
    }
}
