//! The gateway against a fake TCP server written here, so no real server is needed.

mod support;

mod auth;
mod dict;
mod errors;
mod file;
mod openapi;
mod pool;
mod tls;
mod tus;
