//! Ferry end to end: every suite starts the real binaries (`ferry-server`,
//! `ferry-gateway`, `ferry`, built by `cargo build --bins` first) on port 0 with
//! fresh temporary directories and talks to them over real sockets, as a user,
//! a legacy Python client or an operator would. One test binary, one module per
//! suite; [`harness`] holds what they share.

mod harness;

mod admin_api;
mod admin_tls;
mod bad_input;
mod browser;
mod cli;
mod compose;
mod crash;
mod defaults;
mod disk_full;
mod gateway_e2e;
mod gateway_generated_client;
mod gateway_memory;
mod http_stalls;
mod legacy;
mod legacy_config;
mod legacy_outputs;
mod lifecycle;
mod memory_budget;
mod python_compat;
mod rate_limits;
mod readme;
mod receipts;
mod resume;
mod retention;
mod s3_cluster;
mod schemathesis_admin;
mod schemathesis_gateway;
mod storage_keys;
mod tus;
mod tus_clients;
mod typescript_client;
mod upload_page;
