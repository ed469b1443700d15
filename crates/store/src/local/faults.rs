//! A [`Hook`] for tests: fails a step, stops the store there as a crash would,
//! or holds it there until released; records every step; and models what a power
//! loss keeps of the data files it saw.
//!
//! The power-loss model, per file: the length known durable (set by a sync that
//! succeeded), and, after a sync that failed, where the bytes that the kernel may
//! have marked clean without writing begin: those are lost at a power loss even
//! if a later sync succeeds, unless the file was cut below them first. Directory
//! entries (creations, renames, unlinks) are taken as durable.

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
    len: u64,
    lost_from: Option<u64>,
}

#[derive(Debug, Default)]
struct State {
    steps: Vec<(Step, PathBuf)>,
    rules: Vec<Rule>,
    crashed: bool,
    files: HashMap<PathBuf, Durable>,
}

/// The test hook.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    state: Mutex<State>,
}

fn len_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
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
        let state = self.lock();
        for (path, durable) in &state.files {
            let keep = durable
                .lost_from
                .map_or(durable.len, |lost| lost.min(durable.len));
            if len_of(path).is_some_and(|len| len > keep) {
                let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
                file.set_len(keep).unwrap();
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
        let now = len_of(path);
        if is_data_file(step)
            && let Some(now) = now
        {
            // A file first seen: what it holds now is taken as durable.
            let file = state.files.entry(path.to_owned()).or_insert(Durable {
                len: now,
                lost_from: None,
            });
            // Cut below what was lost or durable: those bytes are gone for good.
            if file.lost_from.is_some_and(|lost| now <= lost) {
                file.lost_from = None;
            }
            file.len = file.len.min(now);
        }
        match action {
            None => {
                if is_file_sync(step)
                    && let (Some(file), Some(now)) = (state.files.get_mut(path), now)
                {
                    file.len = now;
                }
                Ok(())
            }
            Some(Action::Pause(pause)) => {
                drop(state);
                pause.hold();
                let mut state = self.lock();
                if is_file_sync(step)
                    && let (Some(file), Some(now)) = (state.files.get_mut(path), len_of(path))
                {
                    file.len = now;
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
