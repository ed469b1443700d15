//! How the gateway's failures become the one JSON error shape of `ferry_http`,
//! and the error responses the OpenAPI document lists for the transfers.
//!
//! A refusal by the server keeps its reason (422 `upstream_refused`); a failure
//! to reach or talk to the server is a 502/503/504 whose cause only the log sees.

use axum::http::StatusCode;
use ferry_client::ClientError;
use ferry_codec::CodecError;
use ferry_http::{ApiError, ErrorBody};

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
        description = "The server cannot be reached, every connection to it is busy (`upstream_unavailable`), or the gateway's memory budget for dictionaries stayed full (`busy`, with `Retry-After`)"
    )]
    Unavailable(ErrorBody),
    #[response(status = 504, description = "The server did not answer in time")]
    GatewayTimeout(ErrorBody),
}

/// The answer when the server cannot be reached.
pub fn upstream_unavailable(cause: &dyn std::fmt::Display) -> ApiError {
    ApiError::Failure {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "upstream_unavailable",
        message: "the Ferry server cannot be reached",
        cause: cause.to_string(),
    }
}

/// The answer when the server does not answer in time.
pub fn upstream_timeout() -> ApiError {
    ApiError::Failure {
        status: StatusCode::GATEWAY_TIMEOUT,
        code: "upstream_timeout",
        message: "the Ferry server did not answer in time",
        cause: "no answer within the upstream timeout".into(),
    }
}

/// A dictionary that cannot be encoded as asked: 422 with the reason.
pub fn codec_error(err: CodecError) -> ApiError {
    let code = match err {
        CodecError::XmlKey(_) | CodecError::XmlChar { .. } => "unsupported_by_xml",
        CodecError::NotADictionary(_) => "not_an_object",
        _ => "unencodable_dictionary",
    };
    ApiError::unprocessable(code, err.to_string())
}

/// A transfer the client library could not complete.
pub fn client_error(err: ClientError) -> ApiError {
    match err {
        ClientError::Refused(reason) => ApiError::unprocessable("upstream_refused", reason),
        ClientError::Connect { .. } => upstream_unavailable(&err),
        ClientError::Timeout(_) => upstream_timeout(),
        ClientError::NoKey => ApiError::unprocessable(
            "encryption_unavailable",
            "encrypt=true needs a Fernet key, and this gateway has none: send with encrypt=false",
        ),
        ClientError::Codec(codec) => codec_error(codec),
        other => ApiError::Failure {
            status: StatusCode::BAD_GATEWAY,
            code: "upstream_failed",
            message: "the connection to the Ferry server failed during the transfer",
            cause: other.to_string(),
        },
    }
}
