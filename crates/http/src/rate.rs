//! Rate limits per client: a token bucket (GCRA, from `governor`) per client
//! address. A request over it gets `429 Too Many Requests` with `Retry-After`
//! (seconds) and the limit headers, in the one JSON error shape.
//!
//! The client address is the connection's peer, unless that peer is a trusted
//! proxy: then it is the rightmost address of `X-Forwarded-For` that is not a
//! trusted proxy itself (the leftmost ones are whatever the client wrote).
//!
//! There is no bucket per credential: each of Ferry's services has one bearer
//! token, shared by all its clients, so a bucket for it would be one limit for
//! everyone.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter as Governor};

use crate::ApiError;

/// Addresses kept before the buckets that are full again are forgotten.
const MAX_KEYS: usize = 100_000;

/// Requests a client may send at once, when a rate limit is set and no burst
/// is given.
pub const DEFAULT_BURST: u32 = 50;

/// The settings of a rate limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second per client address; 0 turns the limit off.
    pub per_second: u32,
    /// Requests a client may send at once before the rate applies (at least 1).
    pub burst: u32,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for RateLimit {
    /// Off, with [`DEFAULT_BURST`] for when a rate is set.
    fn default() -> RateLimit {
        RateLimit {
            per_second: 0,
            burst: DEFAULT_BURST,
            trusted_proxies: Vec::new(),
        }
    }
}

/// A token bucket (GCRA) per client address, forgetting the addresses whose
/// buckets are full again so that its memory stays bounded whoever connects.
#[derive(Debug)]
pub struct AddressBuckets {
    buckets: DefaultKeyedRateLimiter<IpAddr>,
}

impl AddressBuckets {
    /// `per_second` tokens a second per address, `burst` at once.
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> AddressBuckets {
        let quota = Quota::per_second(per_second).allow_burst(burst);
        AddressBuckets {
            buckets: Governor::keyed(quota),
        }
    }

    /// Takes a token from `ip`'s bucket; when it is empty, how long until it
    /// has one again.
    pub fn take(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.buckets.len() > MAX_KEYS {
            self.forget_idle();
        }
        self.buckets
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets the addresses whose buckets are full again; call it now and then.
    pub fn forget_idle(&self) {
        self.buckets.retain_recent();
        self.buckets.shrink_to_fit();
    }
}

/// A rate limit in force: the buckets of every client seen recently.
#[derive(Debug)]
pub struct RateLimiter {
    settings: RateLimit,
    buckets: AddressBuckets,
    /// Names the service in the `ferry_http_rate_limited_total` metric.
    service: &'static str,
}

impl RateLimiter {
    /// The limiter for `settings`, or `None` when they turn it off.
    pub fn new(settings: RateLimit, service: &'static str) -> Option<Arc<RateLimiter>> {
        let rate = NonZeroU32::new(settings.per_second)?;
        let burst = NonZeroU32::new(settings.burst).unwrap_or(NonZeroU32::MIN);
        Some(Arc::new(RateLimiter {
            settings,
            buckets: AddressBuckets::new(rate, burst),
            service,
        }))
    }

    /// Forgets the clients whose buckets are full again; call it now and then.
    pub fn forget_idle(&self) {
        self.buckets.forget_idle();
    }

    /// Takes a token from the client's bucket.
    fn check(&self, peer: IpAddr, headers: &HeaderMap) -> Result<(), ApiError> {
        let client = self.client_address(peer, headers);
        let Err(wait) = self.buckets.take(client) else {
            return Ok(());
        };
        metrics::counter!("ferry_http_rate_limited_total", "service" => self.service).increment(1);
        Err(ApiError::TooManyRequests {
            retry_after: wait,
            limit: self.settings.per_second,
            burst: self.settings.burst.max(1),
        })
    }

    /// The client's address: the peer, or what a trusted proxy says it is.
    fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let trusted = |ip: &IpAddr| self.settings.trusted_proxies.contains(&ip.to_canonical());
        if !trusted(&peer) {
            return peer;
        }
        let forwarded = headers
            .get_all(HeaderName::from_static("x-forwarded-for"))
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        forwarded
            .iter()
            .rev()
            .map(|text| text.parse::<IpAddr>().map(|ip| ip.to_canonical()))
            .find(|ip| !ip.as_ref().is_ok_and(trusted))
            .and_then(Result::ok)
            .unwrap_or(peer)
    }
}

/// Middleware: answers `429` to a request over its client's rate. Needs the
/// connection's address (`ConnectInfo<SocketAddr>`, as [`serve`](crate::serve) gives).
pub async fn limit_rate(
    State(limiter): State<Arc<RateLimiter>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    match limiter.check(peer.ip().to_canonical(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(err) => err.into_response(),
    }
}

/// `router` with `settings` in force (unchanged when they turn the limit off);
/// `service` names it in the `ferry_http_rate_limited_total` metric.
pub fn limited<S>(
    router: axum::Router<S>,
    settings: RateLimit,
    service: &'static str,
) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let Some(limiter) = RateLimiter::new(settings, service) else {
        return router;
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        spawn_forgetting(&limiter);
    }
    router.layer(axum::middleware::from_fn_with_state(limiter, limit_rate))
}

/// Forgets idle clients every minute, as long as `limiter` is in use elsewhere.
pub fn spawn_forgetting(limiter: &Arc<RateLimiter>) {
    let limiter = Arc::downgrade(limiter);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        every.tick().await;
        loop {
            every.tick().await;
            match limiter.upgrade() {
                Some(limiter) => limiter.forget_idle(),
                None => return,
            }
        }
    });
}

/// Adds the `429` of a rate limit to every operation of `doc` (answered only
/// when the service has a limit set).
pub fn document_rate_limits(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::response::ResponseBuilder;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{ContentBuilder, Ref, RefOr};

    let seconds = |description: &str| {
        HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
            .description(Some(description))
            .build()
    };
    let response = ResponseBuilder::new()
        .description(
            "Too many requests from this client address (`rate_limited`), when the \
             service has a rate limit",
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .header(
            "Retry-After",
            seconds("Seconds until a request is taken again"),
        )
        .header("X-RateLimit-Limit", seconds("Requests per second allowed"))
        .header("X-RateLimit-Burst", seconds("Requests allowed at once"))
        .header("X-RateLimit-Remaining", seconds("Requests left now: 0"))
        .header(
            "X-RateLimit-Reset",
            seconds("Seconds until a request is taken again"),
        )
        .build();
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            operation
                .responses
                .responses
                .insert("429".into(), RefOr::T(response.clone()));
        }
    }
}

/// The headers of a `429`: `Retry-After` in whole seconds (at least 1), and the
/// limit in the `X-RateLimit-*` headers common behind API gateways.
pub(crate) fn too_many_headers(
    headers: &mut HeaderMap,
    retry_after: Duration,
    limit: u32,
    burst: u32,
) {
    let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    headers.insert(
        HeaderName::from_static("x-ratelimit-limit"),
        HeaderValue::from(limit),
    );
    headers.insert(
        HeaderName::from_static("x-ratelimit-burst"),
        HeaderValue::from(burst),
    );
    headers.insert(
        HeaderName::from_static("x-ratelimit-remaining"),
        HeaderValue::from(0),
    );
    headers.insert(
        HeaderName::from_static("x-ratelimit-reset"),
        HeaderValue::from(seconds),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::connect_info::MockConnectInfo;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt;

    fn app(settings: RateLimit, peer: &str) -> Router {
        let limiter = RateLimiter::new(settings, "test").unwrap();
        Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(limiter, limit_rate))
            .layer(MockConnectInfo(peer.parse::<SocketAddr>().unwrap()))
    }

    async fn status(app: &Router, headers: &[(&str, &str)]) -> Response {
        let mut request = axum::http::Request::get("/");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        app.clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn limit(burst: u32, trusted: &[&str]) -> RateLimit {
        RateLimit {
            per_second: 1,
            burst,
            trusted_proxies: trusted.iter().map(|ip| ip.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn zero_turns_the_limit_off() {
        assert!(RateLimiter::new(RateLimit::default(), "test").is_none());
    }

    #[tokio::test]
    async fn the_request_past_the_burst_gets_429_with_retry_after() {
        let app = app(limit(3, &[]), "10.0.0.1:5000");
        for _ in 0..3 {
            assert_eq!(status(&app, &[]).await.status(), StatusCode::OK);
        }
        let refused = status(&app, &[]).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let headers = refused.headers();
        assert_eq!(headers[header::RETRY_AFTER], "1");
        assert_eq!(headers["x-ratelimit-limit"], "1");
        assert_eq!(headers["x-ratelimit-remaining"], "0");
        let body = axum::body::to_bytes(refused.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "rate_limited");
        assert_eq!(body["error"]["status"], 429);
    }

    #[tokio::test]
    async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        // Behind the trusted proxy, each forwarded client has its own bucket; a
        // forged leftmost entry changes nothing.
        let app = app(limit(1, &["10.0.0.9"]), "10.0.0.9:5000");
        let one = [("x-forwarded-for", "6.6.6.6, 192.0.2.1")];
        let two = [("x-forwarded-for", "192.0.2.2")];
        assert_eq!(status(&app, &one).await.status(), StatusCode::OK);
        assert_eq!(status(&app, &two).await.status(), StatusCode::OK);
        let forged = [("x-forwarded-for", "7.7.7.7, 192.0.2.1")];
        assert_eq!(
            status(&app, &forged).await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        // From an untrusted peer, the header is ignored: one bucket.
        let app = app_untrusted();
        assert_eq!(status(&app, &one).await.status(), StatusCode::OK);
        assert_eq!(
            status(&app, &two).await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }

    fn app_untrusted() -> Router {
        app(limit(1, &["10.0.0.9"]), "10.0.0.8:5000")
    }
}
