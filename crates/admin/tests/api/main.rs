//! Tests of the admin API through `app(state).oneshot(request)`, against a real
//! `LocalStore` in a temporary directory with a fresh storage key.

mod auth;
mod content;
mod errors;
mod events;
mod helpers;
mod holds;
mod integrity;
mod items;
mod openapi;
mod ops;
mod uploads;
