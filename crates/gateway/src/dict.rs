//! `POST /dict`: a JSON object, serialized as asked and sent as one dictionary
//! transfer. The whole body is in memory (bounded by `max_dict_bytes`), so a pooled
//! session found dead is retried once on a fresh connection.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use ferry_client::{ClientError, Receipt};
use ferry_codec::Dict;
use ferry_protocol::{Meta, Serialization};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::created::{Created, created};
use crate::error::{ApiError, ErrorBody, TransferErrors};
use crate::pool::is_dead_connection;

/// The serialization asked for; `binary` and `pickle` are the same (Python pickle).
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DictFormat {
    #[default]
    Json,
    Binary,
    Pickle,
    Xml,
}

impl DictFormat {
    fn serialization(self) -> Serialization {
        match self {
            DictFormat::Json => Serialization::Json,
            DictFormat::Binary | DictFormat::Pickle => Serialization::Binary,
            DictFormat::Xml => Serialization::Xml,
        }
    }
}

/// Query parameters of `POST /dict`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DictQuery {
    /// How the dictionary travels to the server (default `json`).
    #[serde(default)]
    #[param(inline)]
    pub format: DictFormat,
    /// Fernet-encrypt the payload on the TCP hop (default `false`).
    #[serde(default)]
    pub encrypt: bool,
}

/// Sends a dictionary to the Ferry server.
#[utoipa::path(
    post,
    path = "/dict",
    tag = "transfers",
    params(DictQuery),
    request_body(
        content = Object,
        content_type = "application/json",
        description = "Any JSON object; it becomes the dictionary.",
        example = json!({"name": "Ada", "age": 36, "tags": ["a", "b"]}),
    ),
    responses(
        (status = 201, description = "Stored", body = Created, headers(
            ("Location" = String, description = "The item in the admin API (absent from a legacy server)"))),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        TransferErrors,
    ),
    security((), ("bearer" = [])),
)]
pub async fn post_dict(
    State(state): State<AppState>,
    query: Result<Query<DictQuery>, QueryRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))?;
    require_json(request.headers())?;
    let timeout = state.config.request_timeout;
    let body = tokio::time::timeout(timeout, read_body(request, state.config.max_dict_bytes))
        .await
        .map_err(|_| ApiError::request_timeout("the body did not arrive in time"))??;
    let dict = parse_object(&body)?;
    let serialization = query.format.serialization();
    if serialization == Serialization::Xml {
        ferry_codec::check_xml_keys(&dict)?;
    }
    if query.encrypt && state.config.fernet.is_none() {
        return Err(ClientError::NoKey.into());
    }
    let bytes = ferry_codec::encode(serialization, &dict)?;
    let meta =
        Meta::dictionary(serialization, query.encrypt).expect("dictionary formats are never txt");
    let receipt = tokio::time::timeout(timeout, forward(&state, meta, &bytes))
        .await
        .map_err(|_| ApiError::upstream_timeout())??;
    Ok(created(&state.config.admin_url, meta, receipt))
}

/// Sends the bytes on a pooled session, once more on a fresh connection if the
/// pooled one turns out dead.
async fn forward(state: &AppState, meta: Meta, bytes: &[u8]) -> Result<Receipt, ApiError> {
    let mut lease = state.pool.acquire().await?;
    let mut result = lease
        .session()
        .send_reader(meta, bytes, None, &mut |_| {})
        .await;
    if let Err(err) = &result
        && lease.reused()
        && is_dead_connection(err)
    {
        tracing::info!(cause = %err, "pooled session was dead: retrying on a new connection");
        lease.reconnect().await?;
        result = lease
            .session()
            .send_reader(meta, bytes, None, &mut |_| {})
            .await;
    }
    lease.settle(&result);
    Ok(result?)
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!(
            "POST /dict takes Content-Type: application/json, not {:?}",
            content_type
        ),
    ))
}

async fn read_body(request: Request, limit: usize) -> Result<bytes::Bytes, ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::too_large(limit as u64));
    }
    axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|err| {
            if std::error::Error::source(&err)
                .is_some_and(|e| e.is::<http_body_util::LengthLimitError>())
            {
                ApiError::too_large(limit as u64)
            } else {
                ApiError::bad_request(
                    "body_unreadable",
                    format!("the body could not be read: {err}"),
                )
            }
        })
}

fn parse_object(body: &[u8]) -> Result<Dict, ApiError> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(dict)) => Ok(dict),
        Ok(other) => Err(ApiError::unprocessable(
            "not_an_object",
            format!("the body must be a JSON object, not {}", kind(&other)),
        )),
        Err(err) => Err(ApiError::bad_request(
            "invalid_json",
            format!("the body is not valid JSON: {err}"),
        )),
    }
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_objects_are_dictionaries() {
        assert!(parse_object(br#"{"a": 1}"#).is_ok());
        let err = parse_object(b"[1, 2]").unwrap_err();
        assert_eq!((err.status.as_u16(), err.code), (422, "not_an_object"));
        assert!(err.message.contains("an array"), "{}", err.message);
        assert_eq!(parse_object(b"{").unwrap_err().code, "invalid_json");
    }

    #[test]
    fn json_content_types_are_recognised() {
        let mut headers = HeaderMap::new();
        assert!(require_json(&headers).is_err());
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(require_json(&headers).is_ok());
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(
            require_json(&headers).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }
}
