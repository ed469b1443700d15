//! How store errors become the one JSON error shape of `ferry_http`.
//!
//! A missing item is a 404, a bad id a 400, a range past the end a 416, a delete
//! of an item on legal hold a 409 `legal_hold`; a record that fails
//! authentication is a 500 `integrity_failure` whose detail goes only to the log,
//! like every other store failure (500 `internal_error`).

use axum::http::StatusCode;
use ferry_http::ApiError;
use ferry_store::{ItemId, StoreError};

/// The answer to a failed store call.
pub(crate) fn store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound => ApiError::NotFound("no such item".into()),
        StoreError::InvalidId(_) => ApiError::bad_request(err.to_string()),
        StoreError::InvalidRange { size, .. } => ApiError::RangeNotSatisfiable { size },
        StoreError::Integrity { id, reason } => integrity_failure(id, &reason),
        StoreError::Held(id) => ApiError::Conflict {
            code: "legal_hold",
            message: format!(
                "item {id} is on legal hold and cannot be deleted; release it first with DELETE /api/items/{id}/hold"
            ),
        },
        StoreError::InvalidLogRequest(message) => ApiError::Conflict {
            code: "log_request",
            message,
        },
        StoreError::NoLog => {
            ApiError::NotFound("this server keeps no log (it was started with --tlog false)".into())
        }
        StoreError::Unsupported(message) => ApiError::Failure {
            status: StatusCode::NOT_IMPLEMENTED,
            code: "not_implemented",
            message,
            cause: message.to_owned(),
        },
        other => ApiError::internal(other),
    }
}

/// A stored record failed authentication: it is never served.
pub(crate) fn integrity_failure(id: ItemId, reason: &str) -> ApiError {
    ApiError::Failure {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "integrity_failure",
        message: "the stored item failed its integrity check; see the server log",
        cause: format!("refusing to serve item {id}, which failed integrity checks: {reason}"),
    }
}

/// A 404 for an item id that is not stored.
pub(crate) fn no_such_item(id: ItemId) -> ApiError {
    ApiError::NotFound(format!("no item {id}"))
}
