//! The command-line front of Ferry: settings (flags, `FERRY_…` environment
//! variables, an optional TOML file, embedded defaults, in that order of
//! precedence), logging, signals, and the three programs `ferry-server`,
//! `ferry-gateway` and `ferry` (send, verify, keygen, up). The binaries are thin wrappers.

mod files;
pub mod gateway;
pub mod help;
mod legacy_config;
mod log_api;
pub mod logging;
mod resume;
pub mod send;
pub mod server;
mod settings;
pub mod shutdown;
pub mod up;
pub mod verify;

pub use settings::Secret;
