//! Tests of `LocalStore` on temporary directories.

mod catalog;
mod frames;
mod helpers;
mod integrity;
mod keys;
mod ledger;
mod legacy;
mod listing;
mod reclaim;
mod recovery;
mod retention;
mod roundtrip;
mod shredding;
mod uploads;
