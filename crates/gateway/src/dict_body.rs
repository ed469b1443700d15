//! Reading a `/dict` body into memory within the gateway's memory budget.
//!
//! Every byte a body's buffer holds (its capacity, not only what arrived) is
//! reserved first from a [`ByteBudget`], so the buffers of all requests together
//! never exceed [`GatewayConfig::dict_budget`](crate::GatewayConfig::dict_budget).
//! A body that declares its length reserves it whole before reading; one that
//! does not reserves as its buffer doubles. A body that finds no room within
//! [`BUDGET_WAIT`](crate::BUDGET_WAIT) is a 503 `busy` with `Retry-After`; the
//! reservation is given back when the request ends.
//!
//! An eighth of the budget is a lane of its own for small bodies (up to
//! [`SMALL_BODY`]), so that large bodies held open by slow or hostile clients
//! cannot keep everyone's small dictionaries out.

use std::time::Duration;

use axum::body::Body;
use ferry_http::{ApiError, BudgetError, ByteBudget, Reservation};
use http_body_util::BodyExt;

/// Bodies up to this size draw on the small lane.
pub const SMALL_BODY: usize = 64 * 1024;

/// The two lanes of the budget.
#[derive(Debug, Clone)]
pub struct DictBudget {
    small: ByteBudget,
    large: ByteBudget,
}

impl DictBudget {
    /// Splits `total` bytes: an eighth (at least [`SMALL_BODY`]) for small bodies,
    /// the rest for large ones.
    pub fn new(total: usize) -> DictBudget {
        let small = (total / 8).max(SMALL_BODY);
        DictBudget {
            small: ByteBudget::new(small),
            large: ByteBudget::new(total.saturating_sub(small)),
        }
    }

    /// The lane for a buffer of `capacity` bytes.
    fn lane(&self, capacity: usize) -> &ByteBudget {
        if capacity <= SMALL_BODY {
            &self.small
        } else {
            &self.large
        }
    }
}

/// A body read whole, and the budget it holds until dropped.
#[derive(Debug)]
pub struct DictBody {
    /// The body's bytes.
    pub bytes: Vec<u8>,
    /// At least `bytes.capacity()` of the budget.
    pub reservation: Reservation,
}

/// What reading a body needs to know.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// The largest body accepted (413 beyond).
    pub max_bytes: usize,
    /// How long to wait for room in the budget.
    pub budget_wait: Duration,
}

/// Reads `body` (of `declared` length, if the client said) within the budget.
pub async fn read(
    budget: &DictBudget,
    body: Body,
    declared: Option<u64>,
    limits: ReadLimits,
) -> Result<DictBody, ApiError> {
    let max = limits.max_bytes;
    if declared.is_some_and(|len| len > max as u64) {
        return Err(ApiError::too_large(max as u64));
    }
    let mut reservation = budget.small.reserve();
    let mut bytes = Vec::new();
    if let Some(len) = declared {
        // Checked against `max` above, so it fits in a usize.
        grow(budget, &mut reservation, &mut bytes, len as usize, limits).await?;
    }
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| ApiError::BadRequest {
            code: "body_unreadable",
            message: format!("the body could not be read: {err}"),
        })?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        let needed = bytes.len() + chunk.len();
        if needed > max {
            return Err(ApiError::too_large(max as u64));
        }
        if needed > bytes.capacity() {
            let doubled = (bytes.capacity() * 2).min(max);
            grow(
                budget,
                &mut reservation,
                &mut bytes,
                needed.max(doubled),
                limits,
            )
            .await?;
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(DictBody { bytes, reservation })
}

/// Reserves `capacity` bytes, then gives `bytes` that capacity. A buffer growing
/// out of the small lane reserves its whole size in the large one, then lets the
/// small reservation go.
async fn grow(
    budget: &DictBudget,
    reservation: &mut Reservation,
    bytes: &mut Vec<u8>,
    capacity: usize,
    limits: ReadLimits,
) -> Result<(), ApiError> {
    let lane = budget.lane(capacity);
    let result = if capacity > SMALL_BODY && reservation.len() <= SMALL_BODY {
        let mut large = lane.reserve();
        let result = large.grow_to(capacity, limits.budget_wait).await;
        *reservation = large;
        result
    } else {
        reservation.grow_to(capacity, limits.budget_wait).await
    };
    result.map_err(|err| refusal(err, limits.budget_wait))?;
    bytes.reserve_exact(capacity - bytes.len());
    Ok(())
}

fn refusal(err: BudgetError, wait: Duration) -> ApiError {
    match err {
        BudgetError::TooLarge { total, .. } => ApiError::too_large(total as u64),
        BudgetError::Exhausted(_) => ApiError::Busy {
            code: "busy",
            message: "the gateway's memory for dictionaries is full: try again shortly".into(),
            retry_after: wait,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ReadLimits = ReadLimits {
        max_bytes: 1 << 20,
        budget_wait: Duration::from_millis(50),
    };

    fn chunked(parts: &[&'static [u8]]) -> Body {
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = parts
            .iter()
            .map(|p| Ok(bytes::Bytes::from_static(p)))
            .collect();
        Body::from_stream(futures::stream::iter(chunks))
    }

    #[tokio::test]
    async fn a_declared_body_reserves_its_length_until_dropped() {
        let budget = DictBudget::new(1 << 20);
        let body = read(
            &budget,
            Body::from(vec![b'x'; 100_000]),
            Some(100_000),
            LIMITS,
        )
        .await
        .unwrap();
        assert_eq!(body.bytes.len(), 100_000);
        assert_eq!(budget.large.available(), budget.large.total() - 100_000);
        assert_eq!(budget.small.available(), budget.small.total());
        drop(body);
        assert_eq!(budget.large.available(), budget.large.total());
    }

    #[tokio::test]
    async fn a_chunked_body_reserves_what_its_buffer_holds() {
        let budget = DictBudget::new(1 << 20);
        let body = read(&budget, chunked(&[b"{\"a\":", b" 1}"]), None, LIMITS)
            .await
            .unwrap();
        assert_eq!(body.bytes, b"{\"a\": 1}");
        let held = budget.small.total() - budget.small.available();
        assert!(
            held >= body.bytes.len() && held == body.bytes.capacity(),
            "{held}"
        );
    }

    #[tokio::test]
    async fn a_full_budget_is_a_503_and_small_bodies_keep_their_lane() {
        let budget = DictBudget::new(1 << 20);
        let large = budget.large.total();
        let holder = read(
            &budget,
            Body::from(vec![b'x'; large]),
            Some(large as u64),
            LIMITS,
        )
        .await
        .unwrap();
        let refused = read(
            &budget,
            Body::from(vec![b'x'; 70_000]),
            Some(70_000),
            LIMITS,
        )
        .await
        .unwrap_err();
        assert_eq!(refused.status_and_code().1, "busy");
        let small = read(&budget, Body::from("{}"), Some(2), LIMITS)
            .await
            .unwrap();
        assert_eq!(small.bytes, b"{}");
        drop(holder);
        read(
            &budget,
            Body::from(vec![b'x'; 70_000]),
            Some(70_000),
            LIMITS,
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_a_413_declared_or_not() {
        let budget = DictBudget::new(1 << 20);
        let limits = ReadLimits {
            max_bytes: 4,
            ..LIMITS
        };
        let declared = read(&budget, Body::from("12345"), Some(5), limits).await;
        assert_eq!(
            declared.unwrap_err().status_and_code().1,
            "payload_too_large"
        );
        let streamed = read(&budget, chunked(&[b"123", b"45"]), None, limits).await;
        assert_eq!(
            streamed.unwrap_err().status_and_code().1,
            "payload_too_large"
        );
        assert_eq!(budget.small.available(), budget.small.total());
    }
}
