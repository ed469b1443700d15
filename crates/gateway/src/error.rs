//! The one error shape of every response that is not a success, rejections
//! included: `{"error": {"status": 422, "code": "upstream_refused", "message": "..."}}`.
//!
//! Client errors keep their message; the real cause of a 5xx is logged and the body
//! says only what a caller can act on.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_client::ClientError;
use ferry_codec::CodecError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The HTTP status, repeated.
    #[schema(example = 422)]
    pub status: u16,
    /// A stable, machine-readable code such as `upstream_refused` or `payload_too_large`.
    #[schema(example = "upstream_refused")]
    pub code: String,
    /// A sentence for a person.
    #[schema(example = "UnsupportedTransfer('Pickling disabled.')")]
    pub message: String,
}

/// The error responses `/dict` and `/file` share, for the OpenAPI document.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(dead_code)] // describes responses; never built
pub enum TransferErrors {
    #[response(
        status = 400,
        description = "Malformed JSON, query string, form or body"
    )]
    BadRequest(ErrorBody),
    #[response(
        status = 401,
        description = "Missing or wrong bearer token (when the gateway has one)"
    )]
    Unauthorized(ErrorBody),
    #[response(
        status = 408,
        description = "The body stopped arriving for longer than the request timeout"
    )]
    RequestTimeout(ErrorBody),
    #[response(
        status = 413,
        description = "The body is larger than the gateway's limit"
    )]
    TooLarge(ErrorBody),
    #[response(
        status = 422,
        description = "Refused: by the server (`upstream_refused`, with its reason), or because the data cannot be sent as asked"
    )]
    Unprocessable(ErrorBody),
    #[response(
        status = 502,
        description = "The connection to the server failed during the transfer"
    )]
    BadGateway(ErrorBody),
    #[response(
        status = 503,
        description = "The server cannot be reached, or every connection to it is busy"
    )]
    Unavailable(ErrorBody),
    #[response(status = 504, description = "The server did not answer in time")]
    GatewayTimeout(ErrorBody),
}

/// An error response: a status, a code and a message.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra `WWW-Authenticate` value for 401.
    challenge: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            challenge: None,
        }
    }

    /// 401 with a bearer challenge.
    pub fn unauthorized(message: &str, challenge: &'static str) -> ApiError {
        ApiError {
            challenge: Some(challenge),
            ..ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn too_large(limit: u64) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than the limit of {limit} bytes"),
        )
    }

    pub fn request_timeout(what: &str) -> ApiError {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", what)
    }

    pub fn upstream_unavailable(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::warn!(%cause, "the Ferry server is unreachable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream_unavailable",
            "the Ferry server cannot be reached",
        )
    }

    pub fn upstream_timeout() -> ApiError {
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            "the Ferry server did not answer in time",
        )
    }

    /// A code derived from a status alone, for responses made outside this crate.
    pub fn code_for(status: StatusCode) -> &'static str {
        match status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::REQUEST_TIMEOUT => "request_timeout",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
            StatusCode::SERVICE_UNAVAILABLE => "upstream_unavailable",
            StatusCode::GATEWAY_TIMEOUT => "upstream_timeout",
            s if s.is_server_error() => "internal",
            _ => "error",
        }
    }
}

impl From<CodecError> for ApiError {
    fn from(err: CodecError) -> ApiError {
        let code = match err {
            CodecError::XmlKey(_) | CodecError::XmlChar { .. } => "unsupported_by_xml",
            CodecError::NotADictionary(_) => "not_an_object",
            _ => "unencodable_dictionary",
        };
        ApiError::unprocessable(code, err.to_string())
    }
}

impl From<ClientError> for ApiError {
    fn from(err: ClientError) -> ApiError {
        match err {
            ClientError::Refused(reason) => ApiError::unprocessable("upstream_refused", reason),
            ClientError::Connect { .. } => ApiError::upstream_unavailable(&err),
            ClientError::Timeout(_) => ApiError::upstream_timeout(),
            ClientError::NoKey => ApiError::unprocessable(
                "encryption_unavailable",
                "encrypt=true needs a Fernet key, and this gateway has none: send with encrypt=false",
            ),
            ClientError::Codec(codec) => codec.into(),
            other => {
                tracing::warn!(cause = %other, "transfer to the Ferry server failed");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "upstream_failed",
                    "the connection to the Ferry server failed during the transfer",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                status: self.status.as_u16(),
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
