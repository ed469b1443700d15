//! Ferry's benchmark, as a library so a smoke test can run it with tiny sizes.
//!
//! [`run`] starts the real `ferry-server` and `ferry-gateway` binaries on port 0
//! in a fresh directory, measures the machine's limits (fsync'd disk, loopback
//! TCP, the Fernet cipher) and Ferry's figures beside them, the S3 store's
//! beside what the same S3 server does for a plain client (moto's server,
//! started for the run, unless [`Plan::s3`] names another), and returns a
//! [`Report`] whose every figure carries its target and verdict.
//!
//! This crate is a tool, not a library others build on: errors are `anyhow`
//! with context, since every failure ends the run with a message.

pub mod compare;
pub mod generate;
pub mod http;
pub mod limits;
pub mod machine;
pub mod procs;
pub mod rate;
pub mod report;
mod run;
pub mod s3;
pub mod tcp;
pub mod tus;

pub use rate::Rate;
pub use report::{Figure, Report, Target};
pub use run::{Only, Plan, Sizes, run};
pub use s3::S3Endpoint;
