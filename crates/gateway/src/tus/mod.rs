//! tus 1.0.0 resumable uploads at `/uploads` (<https://tus.io/protocols/resumable-upload>):
//! core, creation, creation-with-upload, creation-defer-length, termination,
//! checksum (`sha1`, `sha256`) and expiration.
//!
//! Each request is forwarded to the TCP server's resumable uploads (extension 3
//! of `docs/protocol-extensions.md`) on a pooled native session; the upload's id
//! is the server's, and its state (offset, length, expiry) lives on the server
//! only, so a restarted gateway, or another one, continues any upload. An
//! offset the gateway reports is one the server has made durable. When the
//! last byte is committed the gateway stores the item (`finish`) and names it
//! in `Ferry-Item-Id` and `Ferry-Item-Location`, on that response and on a
//! later `HEAD` (the server answers a repeated `finish` with the same item).
//!
//! Two requests appending to one upload at once never corrupt it: on one
//! gateway the second is answered 423 at once ([`Appending`]); across
//! gateways each native append is exclusive on the server (`busy`, 423 once
//! [`upstream`]'s short wait is over) and must start at the committed offset
//! (409). (Across gateways, a request that names the offset committed between
//! two appends of a long PATCH may append there; the long PATCH then ends 409.
//! Every byte still lands at the offset its request named.)

mod error;
mod handlers;
mod headers;
mod upstream;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ferry_http::TokenGuard;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
pub use error::TusError;
use headers::{METHOD_OVERRIDE, TUS_RESUMABLE, TUS_VERSION};

/// The tus version spoken (the only one).
pub const VERSION: &str = "1.0.0";
/// The extensions implemented, as `Tus-Extension` lists them.
pub const EXTENSIONS: &str =
    "creation,creation-with-upload,creation-defer-length,termination,checksum,expiration";
/// The checksum algorithms, as `Tus-Checksum-Algorithm` lists them.
pub const CHECKSUM_ALGORITHMS: &str = "sha1,sha256";

/// The upload routes; with a token, every method but `OPTIONS` requires it.
/// Every response carries `Tus-Resumable: 1.0.0`.
pub fn routes(token: Option<ferry_http::BearerToken>) -> OpenApiRouter<AppState> {
    let mut uploads = OpenApiRouter::new()
        .routes(routes!(handlers::options_uploads, handlers::post_upload))
        .routes(routes!(
            handlers::options_upload,
            handlers::head_upload,
            handlers::patch_upload,
            handlers::delete_upload
        ));
    if let Some(token) = token {
        uploads = uploads.route_layer(axum::middleware::from_fn_with_state(
            TokenGuard::new(token, crate::REALM),
            token_unless_options,
        ));
    }
    uploads
        .layer(axum::middleware::from_fn(check_version))
        .layer(axum::middleware::from_fn(count))
        .layer(SetResponseHeaderLayer::overriding(
            TUS_RESUMABLE,
            HeaderValue::from_static(VERSION),
        ))
}

/// Counts each tus request by method and status
/// (`ferry_gateway_tus_requests_total`).
async fn count(request: Request, next: Next) -> Response {
    let method = match *request.method() {
        Method::OPTIONS => "OPTIONS",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "other",
    };
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("ferry_gateway_tus_requests_total", "method" => method, "status" => status)
        .increment(1);
    response
}

/// The token check for every method but `OPTIONS`, which only tells what the
/// gateway supports.
async fn token_unless_options(guard: State<TokenGuard>, request: Request, next: Next) -> Response {
    if request.method() == Method::OPTIONS {
        return next.run(request).await;
    }
    ferry_http::require_token(guard, request, next)
        .await
        .into_response()
}

/// 412 with `Tus-Version` for a request (other than `OPTIONS`) whose
/// `Tus-Resumable` is missing or another version.
async fn check_version(request: Request, next: Next) -> Response {
    let given = request.headers().get(TUS_RESUMABLE);
    if request.method() == Method::OPTIONS || given.is_some_and(|v| v == VERSION) {
        return next.run(request).await;
    }
    let message = match given {
        None => "Tus-Resumable is required: this server speaks tus 1.0.0".to_owned(),
        Some(v) => format!(
            "Tus-Resumable {:?} is not supported: this server speaks tus 1.0.0",
            String::from_utf8_lossy(v.as_bytes())
        ),
    };
    let error = TusError::new(
        axum::http::StatusCode::PRECONDITION_FAILED,
        "unsupported_version",
        message,
    );
    let mut response = match request.method() == Method::HEAD {
        true => error.into_bodiless(),
        false => error.into_response(),
    };
    response
        .headers_mut()
        .insert(TUS_VERSION, HeaderValue::from_static(VERSION));
    response
}

/// `X-HTTP-Method-Override` (tus core): a `POST` under `/uploads` carrying it
/// is taken as the method it names, for clients that can send only `GET` and
/// `POST`. Runs before routing.
pub fn method_override(mut request: Request) -> Request {
    if request.method() != Method::POST || !request.uri().path().starts_with("/uploads") {
        return request;
    }
    let wanted = request
        .headers()
        .get(METHOD_OVERRIDE)
        .and_then(|v| Method::from_bytes(v.as_bytes()).ok());
    if let Some(method) =
        wanted.filter(|m| [Method::PATCH, Method::DELETE, Method::HEAD].contains(m))
    {
        *request.method_mut() = method;
    }
    request
}

/// The uploads that a request on this gateway is appending to: a second
/// request for one of them is answered 423 at once.
#[derive(Debug, Clone, Default)]
pub struct Appending {
    ids: Arc<Mutex<HashSet<String>>>,
}

/// An upload marked as being appended to, until dropped.
#[derive(Debug)]
pub struct AppendingGuard {
    ids: Arc<Mutex<HashSet<String>>>,
    id: String,
}

impl Appending {
    /// Marks `id`, or `None` when a request is appending to it already.
    pub fn start(&self, id: &str) -> Option<AppendingGuard> {
        let fresh = self
            .ids
            .lock()
            .expect("never poisoned")
            .insert(id.to_owned());
        fresh.then(|| AppendingGuard {
            ids: self.ids.clone(),
            id: id.to_owned(),
        })
    }
}

impl Drop for AppendingGuard {
    fn drop(&mut self) {
        self.ids.lock().expect("never poisoned").remove(&self.id);
    }
}

/// The CORS layer for `origins` (none: no CORS headers at all): the tus
/// request headers allowed, its response headers exposed.
pub fn cors(origins: &[HeaderValue]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
    use headers::*;
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow_origin = match origins.iter().any(|o| o == "*") {
        true => AllowOrigin::any(),
        false => AllowOrigin::list(origins.iter().cloned()),
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::HEAD,
                Method::PATCH,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers([
                AUTHORIZATION,
                CONTENT_TYPE,
                TUS_RESUMABLE,
                UPLOAD_LENGTH,
                UPLOAD_DEFER_LENGTH,
                UPLOAD_METADATA,
                UPLOAD_OFFSET,
                UPLOAD_CHECKSUM,
                METHOD_OVERRIDE,
                axum::http::HeaderName::from_static("x-requested-with"),
            ])
            .expose_headers([
                LOCATION,
                TUS_RESUMABLE,
                TUS_VERSION,
                TUS_EXTENSION,
                TUS_MAX_SIZE,
                TUS_CHECKSUM_ALGORITHM,
                UPLOAD_OFFSET,
                UPLOAD_LENGTH,
                UPLOAD_DEFER_LENGTH,
                UPLOAD_METADATA,
                UPLOAD_EXPIRES,
                ITEM_ID,
                ITEM_LOCATION,
                ITEM_SHA256,
            ])
            .max_age(std::time::Duration::from_secs(24 * 3600)),
    )
}
