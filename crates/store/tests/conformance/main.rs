//! One suite for every store: the same tests run on the local store (a
//! temporary directory) and on the S3 store (a bucket of a moto server started
//! for the test), the way `object_store` runs one integration suite on each of
//! its backends. `s3` adds what only a store shared by several servers has.

mod backends;
mod compact;
#[path = "../local/helpers.rs"]
#[allow(dead_code)]
mod helpers;
mod s3;
mod suite;
mod view;

/// Runs each test of the suite on each backend: `local::NAME` and `s3::NAME`.
macro_rules! on_every_store {
    ($($test:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    crate::suite::$test(&crate::backends::Local::new()).await;
                }
            )*
        }
        mod on_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    crate::suite::$test(&crate::backends::S3::new()).await;
                }
            )*
        }
    };
}

on_every_store!(
    small_items_read_back_whole_and_in_ranges,
    large_items_stream_back_whole_and_in_ranges,
    empty_items_read_back,
    a_range_past_the_end_is_refused,
    listing_is_newest_first_filtered_and_paged,
    deleted_items_are_gone_and_stay_gone,
    held_items_are_not_deleted_until_released,
    committed_items_survive_a_reopen_and_abandoned_ones_never_appear,
    concurrent_writers_all_commit,
    committed_items_are_announced,
);
