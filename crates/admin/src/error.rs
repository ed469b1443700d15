//! The one error shape of the admin API, rejections included:
//! `{"error": {"status": 400, "code": "bad_request", "message": "..."}}`.
//!
//! Client errors (4xx) keep their message; server errors (5xx) log the real cause
//! with `tracing::error!` and answer with a generic message, so no internal detail
//! (paths, keys, reasons) reaches the client.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_store::{ItemId, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

/// The realm announced in `WWW-Authenticate` on a 401.
pub(crate) const BEARER_CHALLENGE: &str = r#"Bearer realm="ferry-admin""#;

/// Everything an admin request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: a bad id, query string or parameter.
    #[error("{0}")]
    BadRequest(String),
    /// No valid bearer token.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// No such item or route.
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A `Range` that does not overlap the content.
    #[error("range not satisfiable: the content is {size} bytes")]
    RangeNotSatisfiable {
        /// The size of the whole content.
        size: u64,
    },
    /// The stored content cannot be shown the way it was asked for.
    #[error("{0}")]
    Unprocessable(String),
    /// A stored record failed authentication: it is never served.
    #[error("item {id} failed integrity checks: {reason}")]
    Integrity {
        /// The item.
        id: ItemId,
        /// Why (logged, never sent).
        reason: String,
    },
    /// Anything else that went wrong on our side (logged, never sent).
    #[error("internal error: {0}")]
    Internal(String),
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
    /// A stable, machine-readable code: `bad_request`, `unauthorized`, `not_found`,
    /// `method_not_allowed`, `range_not_satisfiable`, `unprocessable`,
    /// `integrity_failure` or `internal_error`.
    #[schema(example = "bad_request")]
    pub code: String,
    /// A human-readable message.
    #[schema(example = "invalid item id \"nope\": not a ULID")]
    pub message: String,
}

impl ApiError {
    /// The status and stable code of this error.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::RangeNotSatisfiable { .. } => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable")
            }
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            ApiError::Integrity { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "integrity_failure"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }

    /// The message sent to the client: generic for server errors.
    fn public_message(&self) -> String {
        match self {
            ApiError::Integrity { .. } => {
                "the stored item failed its integrity check; see the server log".into()
            }
            ApiError::Internal(_) => "internal server error".into(),
            other => other.to_string(),
        }
    }

    /// A 404 for an item id that is not stored.
    pub(crate) fn no_such_item(id: ItemId) -> ApiError {
        ApiError::NotFound(format!("no item {id}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            ApiError::Integrity { id, reason } => {
                tracing::error!(item = %id, %reason, "refusing to serve an item that failed integrity checks")
            }
            ApiError::Internal(cause) => tracing::error!(%cause, "admin request failed"),
            _ => {}
        }
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
            ApiError::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(BEARER_CHALLENGE),
                );
            }
            ApiError::RangeNotSatisfiable { size } => {
                let range = HeaderValue::try_from(format!("bytes */{size}"))
                    .expect("digits are a valid header value");
                headers.insert(header::CONTENT_RANGE, range);
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::NotFound => ApiError::NotFound("no such item".into()),
            StoreError::InvalidId(_) => ApiError::BadRequest(err.to_string()),
            StoreError::InvalidRange { size, .. } => ApiError::RangeNotSatisfiable { size },
            StoreError::Integrity { id, reason } => ApiError::Integrity { id, reason },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        if rejection.status().is_server_error() {
            ApiError::Internal(rejection.body_text())
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    }
}

/// The 404 for every route that does not exist.
pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// The 405 for a route that exists but not with the method used.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
