//! The command-line front of Ferry: settings (flags, `FERRY_…` environment
//! variables, an optional TOML file, embedded defaults, in that order of
//! precedence), logging, signals, and the three programs `ferry-server`,
//! `ferry-gateway` and `ferry` (send, keygen, up). The binaries are thin wrappers.

pub mod gateway;
pub mod help;
mod legacy_config;
pub mod logging;
pub mod send;
pub mod server;
mod settings;
pub mod shutdown;
pub mod up;

pub use settings::Secret;
