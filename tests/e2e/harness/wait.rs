//! Waiting on a condition instead of sleeping and hoping: the one readiness
//! helper of the suites. A loaded machine only makes a wait longer, never wrong.

use std::time::{Duration, Instant};

/// How often a condition is checked again.
const POLL: Duration = Duration::from_millis(20);

/// Checks `probe` until it gives `Ok(value)` and returns that value. `Err` says
/// what was seen instead; if `within` passes first, the test fails with the last
/// one, so the message shows how far things got.
pub async fn wait_until<T>(
    within: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) => assert!(
                Instant::now() < deadline,
                "still not the case after {within:?}: {seen}"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}
