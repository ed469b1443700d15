//! Tests of `LocalStore` on temporary directories.

mod helpers;
mod integrity;
mod listing;
mod reclaim;
mod recovery;
mod roundtrip;
