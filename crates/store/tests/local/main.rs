//! Tests of `LocalStore` on temporary directories.

mod frames;
mod helpers;
mod integrity;
mod keys;
mod legacy;
mod listing;
mod reclaim;
mod recovery;
mod retention;
mod roundtrip;
mod shredding;
