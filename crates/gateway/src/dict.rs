//! `POST /dict`: a JSON object, serialized as asked and sent as one dictionary
//! transfer. The whole body is in memory (bounded by `max_dict_bytes`, and all
//! bodies together by the memory budget), so a pooled session found dead is
//! retried once on a fresh connection.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use ferry_client::{ClientError, Receipt};
use ferry_codec::Dict;
use ferry_http::extract::{Query, content_length};
use ferry_http::{ApiError, ErrorBody};
use ferry_protocol::{Meta, Serialization};
use serde::Deserialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::created::{Created, created};
use crate::dict_body::{self, DictBody, ReadLimits};
use crate::error::{TransferErrors, client_error, codec_error, upstream_timeout};

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

/// The schema of `POST /dict`'s body: any JSON object, whose members become the
/// dictionary's (documented with `additionalProperties`, so typed clients accept
/// members).
#[derive(Debug)]
pub struct DictSchema;

impl utoipa::PartialSchema for DictSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(true)))
            .into()
    }
}

impl ToSchema for DictSchema {}

/// Sends a dictionary to the Ferry server.
#[utoipa::path(
    post,
    path = "/dict",
    tag = "transfers",
    params(DictQuery),
    request_body(
        content = inline(DictSchema),
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
    Query(query): Query<DictQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    require_json(request.headers())?;
    let timeout = state.config.request_timeout;
    let declared = content_length(request.headers());
    let limits = ReadLimits {
        max_bytes: state.config.max_dict_bytes,
        budget_wait: crate::BUDGET_WAIT,
    };
    let read = dict_body::read(&state.budget, request.into_body(), declared, limits);
    let DictBody { bytes, reservation } = tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| ApiError::RequestTimeout("the body did not arrive in time".into()))??;
    let dict = parse_object(&bytes)?;
    drop(bytes);
    let serialization = query.format.serialization();
    if serialization == Serialization::Xml {
        ferry_codec::check_xml_keys(&dict).map_err(codec_error)?;
    }
    if query.encrypt && state.config.fernet.is_none() {
        return Err(client_error(ClientError::NoKey));
    }
    let bytes = ferry_codec::encode(serialization, &dict).map_err(codec_error)?;
    drop(dict);
    let meta =
        Meta::dictionary(serialization, query.encrypt).expect("dictionary formats are never txt");
    let receipt = tokio::time::timeout(timeout, forward(&state, meta, &bytes))
        .await
        .map_err(|_| upstream_timeout())??;
    // Held until here: the decoded and encoded forms took the body's place.
    drop(reservation);
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
        && lease.may_retry(err)
    {
        tracing::info!(cause = %err, "pooled session was dead: retrying on a new connection");
        lease.reconnect().await?;
        result = lease
            .session()
            .send_reader(meta, bytes, None, &mut |_| {})
            .await;
    }
    lease.settle(&result);
    result.map_err(client_error)
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
    Err(ApiError::UnsupportedMediaType(format!(
        "POST /dict takes Content-Type: application/json, not {content_type:?}"
    )))
}

fn parse_object(body: &[u8]) -> Result<Dict, ApiError> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(dict)) => Ok(dict),
        Ok(other) => Err(ApiError::unprocessable(
            "not_an_object",
            format!("the body must be a JSON object, not {}", kind(&other)),
        )),
        Err(err) => Err(ApiError::BadRequest {
            code: "invalid_json",
            message: format!("the body is not valid JSON: {err}"),
        }),
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
    use axum::http::StatusCode;

    #[test]
    fn only_objects_are_dictionaries() {
        assert!(parse_object(br#"{"a": 1}"#).is_ok());
        let err = parse_object(b"[1, 2]").unwrap_err();
        assert_eq!(
            err.status_and_code(),
            (StatusCode::UNPROCESSABLE_ENTITY, "not_an_object")
        );
        assert!(err.to_string().contains("an array"), "{err}");
        assert_eq!(
            parse_object(b"{").unwrap_err().status_and_code().1,
            "invalid_json"
        );
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
            require_json(&headers).unwrap_err().status_and_code().0,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }
}
