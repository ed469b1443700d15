//! The success answer shared by `/dict` and `/file`: `201 Created`, a JSON body
//! naming the stored item, and `Location` pointing at it in the admin API.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_client::Receipt;
use ferry_http::{ApiDataType, ApiSerialization};
use ferry_protocol::Meta;
use serde::Serialize;
use utoipa::ToSchema;

/// What the server stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    /// The stored item's id (a ULID); null when the server is a legacy one, which
    /// names nothing (and then there is no `Location` header either).
    #[schema(example = "01JQ3V7ZK9T6N2XQ8W4R5B1C0D")]
    pub id: Option<String>,
    /// `dictionary` or `text` (a file).
    pub data_type: ApiDataType,
    /// The serialization on the wire: `json`, `binary` (Python pickle), `xml`, or `txt` for a file.
    pub format: ApiSerialization,
    /// Whether the payload was Fernet-encrypted between the gateway and the server.
    pub encrypted: bool,
    /// Plaintext bytes transferred (the serialized dictionary, or the file).
    #[schema(example = 27)]
    pub size: u64,
    /// SHA-256 of the plaintext as the server computed it; null from a legacy server.
    pub sha256: Option<String>,
    /// The stored item's signed receipt (see `docs/receipts.md`: verify it with
    /// `ferry verify`); null from a legacy server or a server without a log.
    #[schema(value_type = Option<Object>)]
    pub receipt: Option<serde_json::Value>,
}

/// Where the admin API serves item `id`: `Location` of a 201, and
/// `Ferry-Item-Location` of a finished tus upload.
pub fn item_location(admin_url: &str, id: &str) -> Option<HeaderValue> {
    HeaderValue::try_from(format!(
        "{}/api/items/{id}",
        admin_url.trim_end_matches('/')
    ))
    .ok()
}

/// The 201 response for a transfer the server accepted.
pub fn created(admin_url: &str, meta: Meta, receipt: Receipt) -> Response {
    let location = receipt
        .id
        .as_deref()
        .and_then(|id| item_location(admin_url, id));
    let body = Created {
        id: receipt.id,
        data_type: meta.data_type().into(),
        format: meta.serialization().into(),
        encrypted: meta.encrypted(),
        size: receipt.size,
        sha256: receipt.sha256,
        receipt: receipt.signed,
    };
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}
