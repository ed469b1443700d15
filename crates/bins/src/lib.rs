//! Where the workspace's binaries are. Cargo puts `ferry`, `ferry-server`,
//! `ferry-gateway` and `ferry-bench` together in `target/<profile>/`, and test
//! binaries one level below, in `target/<profile>/deps/`. A program that starts
//! the real binaries (the benchmark, the end-to-end tests) finds them from its
//! own path, so both always look in the same place and run the binaries of the
//! profile they were built with.
//!
//! [`Allocator`] is the allocator the binaries run with.

mod allocator;

pub use allocator::{Allocator, LARGE};

use std::path::PathBuf;

/// Why a binary cannot be found.
#[derive(Debug, thiserror::Error)]
pub enum BinsError {
    /// The running program's own path is unknown.
    #[error("locating the running executable: {0}")]
    CurrentExe(#[source] std::io::Error),
    /// The running program's path has no directory.
    #[error("{0} has no directory")]
    NoDirectory(PathBuf),
    /// The binary has not been built for this profile.
    #[error("{0} is not built: run `cargo build --bins` first")]
    NotBuilt(PathBuf),
}

/// The directory holding the workspace's binaries: the running program's own
/// directory, or its parent when the program is a test binary in `deps/`.
pub fn dir() -> Result<PathBuf, BinsError> {
    let exe = std::env::current_exe().map_err(BinsError::CurrentExe)?;
    let own = exe
        .parent()
        .ok_or_else(|| BinsError::NoDirectory(exe.clone()))?;
    Ok(match own.file_name() {
        Some(name) if name == "deps" => own.parent().unwrap_or(own),
        _ => own,
    }
    .to_path_buf())
}

/// The path of the built binary `name` (such as `ferry-server`) in [`dir`].
pub fn path(name: &str) -> Result<PathBuf, BinsError> {
    let path = dir()?.join(name);
    match path.exists() {
        true => Ok(path),
        false => Err(BinsError::NotBuilt(path)),
    }
}
