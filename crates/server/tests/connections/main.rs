//! The TCP server's connection handling, in process: [`ferry_server::serve`] runs
//! on a listener bound to port 0 over a fresh store, and each test talks raw bytes
//! to it and checks the replies byte for byte, then what the store lists. The
//! real binaries, their flags and outputs are tested end to end in `tests/e2e`.

mod harness;

mod framing;
mod limits;
mod refusals;
mod transfers;
mod uploads;
mod vectors;
