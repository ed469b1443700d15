//! Unfinished resumable uploads: `GET /api/uploads` lists them, `DELETE
//! /api/uploads/{id}` cancels one (its staged data is removed).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ferry_http::extract::Path;
use ferry_http::{ApiDataType, ApiError, ApiSerialization, ErrorBody};
use ferry_store::{StoreError, UploadId, UploadInfo};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::Shared;
use crate::error::store_error;
use crate::model::ItemIdSchema;

/// An unfinished upload.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Upload {
    /// The upload's id (a ULID).
    #[schema(example = "01JQ3V7ZK9T6N2XQ8W4R5B1C0D")]
    id: String,
    /// The file name, if any.
    name: Option<String>,
    /// Text or dictionary.
    data_type: ApiDataType,
    /// How the content is serialized.
    serialization: ApiSerialization,
    /// Bytes received and durable so far.
    size: u64,
    /// The whole size, once the client has said it.
    expected_size: Option<u64>,
    /// The peer that opened it.
    peer: String,
    /// When it was opened (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    /// When bytes last arrived (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    last_activity: OffsetDateTime,
    /// When it expires unless more bytes come (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    expires_at: OffsetDateTime,
}

impl From<UploadInfo> for Upload {
    fn from(info: UploadInfo) -> Upload {
        Upload {
            id: info.id.to_string(),
            name: info.name,
            data_type: info.data_type.into(),
            serialization: info.serialization.into(),
            size: info.offset,
            expected_size: info.length,
            peer: info.peer,
            created_at: info.created_at,
            last_activity: info.updated_at,
            expires_at: info.expires_at,
        }
    }
}

/// The unfinished uploads.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Uploads {
    /// Oldest first.
    uploads: Vec<Upload>,
}

/// Lists the unfinished resumable uploads, oldest first.
#[utoipa::path(
    get,
    path = "/api/uploads",
    tag = "uploads",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The unfinished uploads", body = Uploads),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
    )
)]
pub(crate) async fn list_uploads(State(shared): State<Shared>) -> Result<Json<Uploads>, ApiError> {
    let uploads = shared.store.uploads().await.map_err(store_error)?;
    Ok(Json(Uploads {
        uploads: uploads.into_iter().map(Upload::from).collect(),
    }))
}

/// Cancels an unfinished upload: its staged data is removed (and its keys
/// destroyed). An upload receiving bytes at this moment is `409 upload_busy`.
#[utoipa::path(
    delete,
    path = "/api/uploads/{id}",
    tag = "uploads",
    params(("id" = ItemIdSchema, Path, description = "The upload's id (a ULID)")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Cancelled"),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such upload", body = ErrorBody),
        (status = 409, description = "The upload is receiving bytes (`upload_busy`): try again", body = ErrorBody),
    )
)]
pub(crate) async fn cancel_upload(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = UploadId::parse(&id)
        .map_err(|_| ApiError::bad_request(format!("invalid upload id {id:?}: not a ULID")))?;
    match shared.store.upload_cancel(id).await {
        Ok(true) => {
            tracing::info!(upload = %id, "upload cancelled through the admin API");
            Ok(StatusCode::NO_CONTENT)
        }
        Ok(false) => Err(ApiError::NotFound(format!("no upload {id}"))),
        Err(StoreError::UploadBusy) => Err(ApiError::Conflict {
            code: "upload_busy",
            message: format!("upload {id} is receiving bytes; try again when it pauses"),
        }),
        Err(err) => Err(store_error(err)),
    }
}
