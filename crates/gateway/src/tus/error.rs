//! The failures of the tus endpoints: the gateway's usual JSON error body (where
//! a body is allowed; a `HEAD` answer has none), with the status a tus client
//! reads, and the upload's committed offset when the error is about it.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ferry_client::ClientError;
use ferry_http::{ApiError, ErrorBody, ErrorDetail};
use ferry_protocol::upload::UploadErrorCode;

use super::headers::UPLOAD_OFFSET;
use crate::error::client_error;

/// 460, the tus checksum extension's "Checksum Mismatch".
pub const CHECKSUM_MISMATCH: u16 = 460;

/// A failed tus request.
#[derive(Debug)]
pub enum TusError {
    /// One of the gateway's usual errors (400, 401, 413, 422, 5xx, …).
    Api(ApiError),
    /// A status of tus's own (404, 409, 410, 412, 415, 423, 460).
    Tus {
        status: StatusCode,
        code: &'static str,
        message: String,
        /// The upload's committed offset, sent as `Upload-Offset` when known.
        offset: Option<u64>,
    },
}

impl TusError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> TusError {
        TusError::Tus {
            status,
            code,
            message: message.into(),
            offset: None,
        }
    }

    /// A 400 `bad_request` about a tus header.
    pub fn bad_header(message: impl Into<String>) -> TusError {
        TusError::Api(ApiError::BadRequest {
            code: "bad_tus_header",
            message: message.into(),
        })
    }

    /// 404: no such upload (never created, cancelled, expired, or finished and
    /// forgotten).
    pub fn not_found() -> TusError {
        TusError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such upload: never created, or cancelled, expired or finished",
        )
    }

    /// 409: the request's `Upload-Offset` is not the committed offset.
    pub fn offset_mismatch(committed: u64, given: u64) -> TusError {
        TusError::Tus {
            status: StatusCode::CONFLICT,
            code: "offset_mismatch",
            message: format!("the upload is at offset {committed}, not {given}"),
            offset: Some(committed),
        }
    }

    /// 423: another request is appending to the upload.
    pub fn locked() -> TusError {
        TusError::new(
            StatusCode::LOCKED,
            "locked",
            "another request is appending to this upload: ask HEAD for its offset and try again",
        )
    }

    /// 460: the body does not have the digest `Upload-Checksum` gave; nothing
    /// of it was kept.
    pub fn checksum_mismatch(offset: u64) -> TusError {
        TusError::Tus {
            status: StatusCode::from_u16(CHECKSUM_MISMATCH).expect("a valid status"),
            code: "checksum_mismatch",
            message: "Checksum Mismatch: the body does not match Upload-Checksum, and none of it was kept".into(),
            offset: Some(offset),
        }
    }

    /// The status sent.
    pub fn status(&self) -> StatusCode {
        match self {
            TusError::Api(err) => err.status_and_code().0,
            TusError::Tus { status, .. } => *status,
        }
    }

    /// The answer to a `HEAD`: the status and headers, no body.
    pub fn into_bodiless(self) -> Response {
        let (mut parts, _) = self.into_response().into_parts();
        parts.headers.remove(axum::http::header::CONTENT_TYPE);
        parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        Response::from_parts(parts, axum::body::Body::empty())
    }
}

impl From<ApiError> for TusError {
    fn from(err: ApiError) -> TusError {
        TusError::Api(err)
    }
}

impl From<ClientError> for TusError {
    /// The server's answer to an upload command, as tus words it; any other
    /// failure as the gateway's transfers answer it.
    fn from(err: ClientError) -> TusError {
        let ClientError::Upload {
            code,
            message,
            offset,
        } = err
        else {
            return match err {
                ClientError::NoUploads(cause) => TusError::Api(ApiError::Failure {
                    status: StatusCode::NOT_IMPLEMENTED,
                    code: "uploads_unsupported",
                    message: "the server behind this gateway takes no resumable uploads (a legacy server)",
                    cause,
                }),
                other => TusError::Api(client_error(other)),
            };
        };
        match code {
            UploadErrorCode::Offset => TusError::Tus {
                status: StatusCode::CONFLICT,
                code: "offset_mismatch",
                message,
                offset,
            },
            UploadErrorCode::Busy => TusError::locked(),
            UploadErrorCode::TooLarge => TusError::Api(ApiError::PayloadTooLarge(message)),
            UploadErrorCode::Length => TusError::bad_header(message),
            UploadErrorCode::Incomplete => {
                TusError::new(StatusCode::CONFLICT, "incomplete", message)
            }
            UploadErrorCode::NotFound => TusError::not_found(),
            UploadErrorCode::Refused => {
                TusError::Api(ApiError::unprocessable("upstream_refused", message))
            }
            UploadErrorCode::Unavailable => TusError::Api(ApiError::Failure {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "upstream_unavailable",
                message: "the Ferry server cannot store the upload now: try again later",
                cause: message,
            }),
            UploadErrorCode::BadCommand | UploadErrorCode::Other => {
                TusError::Api(ApiError::Failure {
                    status: StatusCode::BAD_GATEWAY,
                    code: "upstream_failed",
                    message: "the Ferry server did not take the gateway's upload command",
                    cause: format!("{code}: {message}"),
                })
            }
        }
    }
}

impl IntoResponse for TusError {
    fn into_response(self) -> Response {
        match self {
            TusError::Api(err) => err.into_response(),
            TusError::Tus {
                status,
                code,
                message,
                offset,
            } => {
                let body = ErrorBody {
                    error: ErrorDetail {
                        status: status.as_u16(),
                        code: code.into(),
                        message,
                    },
                };
                let mut response = (status, axum::Json(body)).into_response();
                if status.as_u16() == CHECKSUM_MISMATCH {
                    response
                        .extensions_mut()
                        .insert(hyper::ext::ReasonPhrase::from_static(b"Checksum Mismatch"));
                }
                if let Some(offset) = offset {
                    response
                        .headers_mut()
                        .insert(UPLOAD_OFFSET, HeaderValue::from(offset));
                }
                response
            }
        }
    }
}
