//! The one error shape of every HTTP service, axum's rejections and the 404/405
//! fallbacks included: `{"error": {"status": 400, "code": "bad_request", "message": "..."}}`.
//!
//! Client errors (4xx) keep their message. A server error (5xx) sends only a
//! generic message; its real cause travels in a response extension to
//! [`log_failures`], which logs it with the request's method and path, so no
//! internal detail (paths, keys, reasons) reaches the client.

use std::time::Duration;

use axum::Json;
use axum::extract::Request;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Everything a request can fail with, by status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed (`code` says how, e.g. `bad_request`, `invalid_json`).
    #[error("{message}")]
    BadRequest {
        /// The stable code.
        code: &'static str,
        /// What is wrong with the request.
        message: String,
    },
    /// 401: no valid bearer token; the challenge names `realm`.
    #[error("a valid bearer token is required")]
    Unauthorized {
        /// The realm of the `WWW-Authenticate: Bearer` challenge.
        realm: &'static str,
    },
    /// 404: no such item or route.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the request conflicts with the resource's state (`code` says how,
    /// e.g. `legal_hold`).
    #[error("{message}")]
    Conflict {
        /// The stable code.
        code: &'static str,
        /// What is in the way, and how to clear it.
        message: String,
    },
    /// 408: the request did not arrive in time.
    #[error("{0}")]
    RequestTimeout(String),
    /// 413: the body is larger than the service takes.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: the body's media type is not one the route takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 416: a `Range` that does not overlap the content.
    #[error("range not satisfiable: the content is {size} bytes")]
    RangeNotSatisfiable {
        /// The size of the whole content.
        size: u64,
    },
    /// 422: understood, but it cannot be done as asked (`code` says why).
    #[error("{message}")]
    Unprocessable {
        /// The stable code.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// 429 with `Retry-After` and the limit headers: the client sent more
    /// requests than its rate allows.
    #[error(
        "too many requests: the limit is {limit} per second (bursts of {burst}); retry after the time in Retry-After"
    )]
    TooManyRequests {
        /// When the client's bucket has a token again.
        retry_after: Duration,
        /// Requests per second allowed.
        limit: u32,
        /// Requests allowed at once.
        burst: u32,
    },
    /// 503 with `Retry-After`: the service is at a limit; try again later.
    #[error("{message}")]
    Busy {
        /// The stable code, e.g. `busy`.
        code: &'static str,
        /// What is at its limit.
        message: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// Any 5xx that is the server's own failure: the client gets `message`, the log
    /// gets `cause`.
    #[error("{message}: {cause}")]
    Failure {
        /// A 5xx status.
        status: StatusCode,
        /// The stable code.
        code: &'static str,
        /// The generic message sent.
        message: &'static str,
        /// The real cause, logged and never sent.
        cause: String,
    },
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The detail of an error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The HTTP status code, repeated.
    #[schema(example = 400)]
    pub status: u16,
    /// A stable, machine-readable code, such as `bad_request`, `unauthorized`,
    /// `not_found`, `payload_too_large`, `rate_limited`, `busy` or `internal_error`.
    #[schema(example = "bad_request")]
    pub code: String,
    /// A human-readable message.
    #[schema(example = "invalid item id \"nope\": not a ULID")]
    pub message: String,
}

/// The cause of a 5xx, carried from [`ApiError::into_response`] to [`log_failures`].
#[derive(Debug, Clone)]
struct FailureCause {
    code: &'static str,
    cause: String,
}

impl ApiError {
    /// A 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code: "bad_request",
            message: message.into(),
        }
    }

    /// A 422 with its code.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Unprocessable {
            code,
            message: message.into(),
        }
    }

    /// A 413 for a body over `limit` bytes.
    pub fn too_large(limit: u64) -> ApiError {
        ApiError::PayloadTooLarge(format!(
            "the body is larger than the limit of {limit} bytes"
        ))
    }

    /// A 500 `internal_error`: "internal server error" for the client, `cause` for the log.
    pub fn internal(cause: impl ToString) -> ApiError {
        ApiError::Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal_error",
            message: "internal server error",
            cause: cause.to_string(),
        }
    }

    /// The status and stable code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::RangeNotSatisfiable { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable")
            }
            ApiError::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Busy { code, .. } => (StatusCode::SERVICE_UNAVAILABLE, code),
            ApiError::Failure { status, code, .. } => (*status, code),
        }
    }

    /// The message sent to the client: generic for server failures.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Failure { message, .. } => (*message).to_owned(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = ErrorBody {
            error: ErrorDetail {
                status: status.as_u16(),
                code: code.into(),
                message: self.public_message(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthorized { realm } => {
                let challenge = HeaderValue::try_from(format!("Bearer realm=\"{realm}\""))
                    .expect("a realm is a valid header value");
                headers.insert(header::WWW_AUTHENTICATE, challenge);
            }
            ApiError::RangeNotSatisfiable { size } => {
                let range = HeaderValue::try_from(format!("bytes */{size}"))
                    .expect("digits are a valid header value");
                headers.insert(header::CONTENT_RANGE, range);
            }
            ApiError::TooManyRequests {
                retry_after,
                limit,
                burst,
            } => crate::rate::too_many_headers(headers, retry_after, limit, burst),
            ApiError::Busy { retry_after, .. } => {
                let seconds = retry_after.as_secs().max(1);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            ApiError::Failure { code, cause, .. } => {
                response
                    .extensions_mut()
                    .insert(FailureCause { code, cause });
            }
            _ => {}
        }
        response
    }
}

/// Middleware: logs the cause of every server failure answered below it, with the
/// request's method and path (never its headers).
pub async fn log_failures(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if let Some(failure) = response.extensions().get::<FailureCause>() {
        tracing::error!(%method, %path, status = response.status().as_u16(), code = failure.code, cause = %failure.cause, "request failed");
    }
    response
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::bad_request(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        if rejection.status().is_server_error() {
            ApiError::internal(rejection.body_text())
        } else {
            ApiError::bad_request(rejection.body_text())
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        match rejection.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ApiError::UnsupportedMediaType(rejection.body_text())
            }
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(rejection.body_text()),
            StatusCode::UNPROCESSABLE_ENTITY => {
                ApiError::unprocessable("invalid_body", rejection.body_text())
            }
            _ => ApiError::BadRequest {
                code: "invalid_json",
                message: rejection.body_text(),
            },
        }
    }
}

/// The 404 for every route that does not exist.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// The 405 for a route that exists but not with the method used.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_sends_its_generic_message_and_keeps_the_cause_for_the_log() {
        let response =
            ApiError::internal("writing /data/store/x.part: No space left").into_response();
        assert_eq!(response.status(), 500);
        let cause = response.extensions().get::<FailureCause>().unwrap();
        assert!(cause.cause.contains("/data/store"));
        assert_eq!(
            ApiError::internal("/secret/path").public_message(),
            "internal server error"
        );
    }

    #[test]
    fn busy_says_when_to_retry() {
        let response = ApiError::Busy {
            code: "busy",
            message: "full".into(),
            retry_after: Duration::from_millis(200),
        }
        .into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
