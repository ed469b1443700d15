//! The `ferry` binary against logs built in process: `ferry verify` offline and
//! against a small admin API serving the log's public endpoints (port 0), and
//! `ferry send --receipts` against a small native server that answers with
//! receipts. The real server's side is tested end to end in `tests/e2e`.

mod harness;

mod send_receipts;
mod verify;
