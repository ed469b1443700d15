//! The tus endpoints: `OPTIONS`, `POST` (creation, with an upload or a deferred
//! length) on `/uploads`; `HEAD`, `PATCH`, `DELETE` and `OPTIONS` on
//! `/uploads/{id}`.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_client::{ClientError, Receipt};
use ferry_http::extract::content_length;
use ferry_http::{ApiError, ErrorBody};
use ferry_protocol::Meta;
use ferry_protocol::upload::{UploadErrorCode, UploadState};
use std::time::Duration;

use super::error::TusError;
use super::headers::{
    Checksum, Metadata, TUS_CHECKSUM_ALGORITHM, TUS_EXTENSION, TUS_MAX_SIZE, TUS_VERSION,
    UPLOAD_DEFER_LENGTH, UPLOAD_LENGTH, UPLOAD_METADATA, UPLOAD_OFFSET, creation_length, has_body,
    is_upload_bytes, number, progress, stored_item,
};
use super::upstream::{Command, Upstream};
use super::{CHECKSUM_ALGORITHMS, EXTENSIONS, VERSION};
use crate::AppState;
use crate::file::FileBytes;

/// The error responses of the tus requests that may have a body.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(dead_code)] // describes responses; never built
pub enum TusErrors {
    #[response(
        status = 400,
        description = "A tus header is missing or malformed (`Upload-Offset`, `Upload-Length`, `Upload-Metadata`, `Upload-Checksum` with an algorithm other than sha1 and sha256)"
    )]
    BadRequest(ErrorBody),
    #[response(
        status = 401,
        description = "Missing or wrong bearer token (when the gateway has one)"
    )]
    Unauthorized(ErrorBody),
    #[response(
        status = 404,
        description = "No such upload (never created, cancelled, expired, or finished before the server restarted)"
    )]
    NotFound(ErrorBody),
    #[response(
        status = 408,
        description = "The body stopped arriving for longer than the request timeout"
    )]
    RequestTimeout(ErrorBody),
    #[response(
        status = 409,
        description = "`Upload-Offset` is not the upload's committed offset (sent in `Upload-Offset`)"
    )]
    Conflict(ErrorBody),
    #[response(
        status = 410,
        description = "The upload is finished: it is a stored item now"
    )]
    Gone(ErrorBody),
    #[response(
        status = 412,
        description = "`Tus-Resumable` is missing or not 1.0.0 (`Tus-Version` says what is spoken)"
    )]
    PreconditionFailed(ErrorBody),
    #[response(
        status = 413,
        description = "Larger than the upload's length or `Tus-Max-Size`"
    )]
    TooLarge(ErrorBody),
    #[response(
        status = 415,
        description = "The body is not `application/offset+octet-stream`"
    )]
    UnsupportedMediaType(ErrorBody),
    #[response(
        status = 422,
        description = "Refused by the server (`upstream_refused`), or `encrypt` without a Fernet key on the gateway"
    )]
    Unprocessable(ErrorBody),
    #[response(
        status = 423,
        description = "Another request is appending to this upload"
    )]
    Locked(ErrorBody),
    #[response(
        status = 460,
        description = "Checksum Mismatch: the body does not match `Upload-Checksum`; none of it was kept and the offset is unchanged"
    )]
    ChecksumMismatch(ErrorBody),
    #[response(
        status = 501,
        description = "The server behind the gateway takes no resumable uploads (a legacy server)"
    )]
    NotImplemented(ErrorBody),
    #[response(
        status = 502,
        description = "The connection to the server failed during the request"
    )]
    BadGateway(ErrorBody),
    #[response(
        status = 503,
        description = "The server cannot be reached, is busy, or cannot store now"
    )]
    Unavailable(ErrorBody),
    #[response(status = 504, description = "The server did not answer in time")]
    GatewayTimeout(ErrorBody),
}

/// The error responses of `HEAD`, which have no body.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(dead_code)] // describes responses; never built
pub enum HeadErrors {
    #[response(
        status = 401,
        description = "Missing or wrong bearer token (when the gateway has one)"
    )]
    Unauthorized,
    #[response(
        status = 404,
        description = "No such upload (never created, cancelled, expired, or finished before the server restarted)"
    )]
    NotFound,
    #[response(status = 412, description = "`Tus-Resumable` is missing or not 1.0.0")]
    PreconditionFailed,
    #[response(
        status = 501,
        description = "The server behind the gateway takes no resumable uploads"
    )]
    NotImplemented,
    #[response(status = 502, description = "The connection to the server failed")]
    BadGateway,
    #[response(status = 503, description = "The server cannot be reached or is busy")]
    Unavailable,
    #[response(status = 504, description = "The server did not answer in time")]
    GatewayTimeout,
}

/// What the gateway's tus server supports.
#[utoipa::path(
    options,
    path = "/uploads",
    tag = "uploads",
    responses((status = 204, description = "The tus version, extensions, largest upload and checksum algorithms", headers(
        ("Tus-Version" = String, description = "1.0.0"),
        ("Tus-Extension" = String, description = "creation,creation-with-upload,creation-defer-length,termination,checksum,expiration"),
        ("Tus-Max-Size" = u64, description = "The largest upload, in bytes (absent when there is no limit)"),
        ("Tus-Checksum-Algorithm" = String, description = "sha1,sha256"),
    ))),
)]
pub async fn options_uploads(State(state): State<AppState>) -> Response {
    capabilities(&state)
}

/// What the gateway's tus server supports (as `OPTIONS /uploads`).
#[utoipa::path(
    options,
    path = "/uploads/{id}",
    tag = "uploads",
    params(("id" = String, Path, description = "The upload's id")),
    responses((status = 204, description = "As OPTIONS /uploads")),
)]
pub async fn options_upload(State(state): State<AppState>, Path(_id): Path<String>) -> Response {
    capabilities(&state)
}

fn capabilities(state: &AppState) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(TUS_VERSION, HeaderValue::from_static(VERSION));
    headers.insert(TUS_EXTENSION, HeaderValue::from_static(EXTENSIONS));
    headers.insert(
        TUS_CHECKSUM_ALGORITHM,
        HeaderValue::from_static(CHECKSUM_ALGORITHMS),
    );
    if let Some(max) = state.config.max_file_bytes {
        headers.insert(TUS_MAX_SIZE, HeaderValue::from(max));
    }
    response
}

/// Creates an upload (tus creation): of `Upload-Length` bytes, or of a length
/// given later (`Upload-Defer-Length: 1`). `Upload-Metadata` may name the
/// item (`filename`) and ask for Fernet encryption on the TCP hop (`encrypt`
/// `true`). A body (`application/offset+octet-stream`) is the upload's first
/// bytes (creation-with-upload), checked against `Upload-Checksum` if given.
#[utoipa::path(
    post,
    path = "/uploads",
    tag = "uploads",
    params(
        ("Tus-Resumable" = Option<String>, Header, description = "1.0.0: required by tus (missing or another version: 412)"),
        ("Upload-Length" = Option<u64>, Header, description = "The whole size in bytes (or Upload-Defer-Length)"),
        ("Upload-Defer-Length" = Option<String>, Header, description = "1: the length comes with a later PATCH"),
        ("Upload-Metadata" = Option<String>, Header, description = "Comma-separated `key base64(value)` pairs: `filename` (the item's name), `encrypt` (`true`: Fernet on the TCP hop)"),
        ("Upload-Checksum" = Option<String>, Header, description = "`sha1 <base64>` or `sha256 <base64>` of the body"),
    ),
    request_body(
        description = "Optional: the upload's first bytes",
        content((inline(FileBytes) = "application/offset+octet-stream")),
    ),
    responses(
        (status = 201, description = "Created", headers(
            ("Location" = String, description = "The upload: /uploads/{id}"),
            ("Upload-Offset" = u64, description = "Bytes committed (durable) so far"),
            ("Upload-Expires" = String, description = "When the unfinished upload expires (an HTTP date)"),
            ("Ferry-Item-Id" = String, description = "The stored item, when the upload is complete"),
            ("Ferry-Item-Location" = String, description = "The stored item in the admin API, when the upload is complete"),
        )),
        TusErrors,
    ),
    security((), ("bearer" = [])),
)]
pub async fn post_upload(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, TusError> {
    let headers = request.headers();
    let length = creation_length(headers)?;
    if let (Some(length), Some(max)) = (length, state.config.max_file_bytes)
        && length > max
    {
        return Err(over_max(max));
    }
    let metadata = Metadata::parse(headers)?;
    if metadata.encrypt && state.config.fernet.is_none() {
        return Err(ApiError::unprocessable(
            "encryption_unavailable",
            "encrypt in Upload-Metadata needs a Fernet key, and this gateway has none: upload without it",
        )
        .into());
    }
    let with_body = is_upload_bytes(headers);
    if !with_body && has_body(headers) {
        return Err(unsupported_media_type());
    }
    let checksum = Checksum::parse(headers)?;
    let declared = content_length(headers);
    if let (Some(length), Some(declared)) = (length, declared.filter(|_| with_body))
        && declared > length
    {
        return Err(past_length(length));
    }
    let meta = Meta::text(metadata.encrypt);
    let mut upstream = Upstream::acquire(&state).await?;
    let name = metadata.name.as_deref();
    let result = async {
        let mut upload = upstream
            .command(Command::Open { meta, length, name })
            .await?;
        tracing::info!(id = %upload.id, ?length, "tus upload created");
        if with_body {
            let room = room(&upload, state.config.max_file_bytes);
            let body = request.into_body();
            upload = match upstream
                .append_body(&state, upload.clone(), body, room, checksum)
                .await
            {
                Ok(upload) => upload,
                Err(err) => {
                    if err.status().as_u16() == super::error::CHECKSUM_MISMATCH {
                        cancel_later(state.clone(), upload.id.clone());
                    }
                    return Err(err);
                }
            };
        }
        let receipt = complete(&mut upstream, &upload).await?;
        Ok::<_, TusError>((upload, receipt))
    }
    .await;
    upstream.release();
    let (upload, receipt) = result?;
    let mut response = StatusCode::CREATED.into_response();
    let headers = response.headers_mut();
    let location = HeaderValue::try_from(format!("/uploads/{}", upload.id))
        .map_err(|_| ApiError::internal("the server gave an upload id that is no header"))?;
    headers.insert(header::LOCATION, location);
    progress(headers, &upload);
    if let Some(receipt) = &receipt {
        stored_item(headers, &state.config.admin_url, receipt);
    }
    Ok(response)
}

/// The upload's committed offset and length. A complete upload whose item is
/// not stored yet (its finish was lost with a gateway or a connection) is
/// stored now, and named.
#[utoipa::path(
    head,
    path = "/uploads/{id}",
    tag = "uploads",
    params(
        ("id" = String, Path, description = "The upload's id"),
        ("Tus-Resumable" = Option<String>, Header, description = "1.0.0: required by tus (missing or another version: 412)"),
    ),
    responses(
        (status = 200, description = "The upload (a finished one the server still remembers: offset = length, and the item)", headers(
            ("Upload-Offset" = u64, description = "Bytes committed (durable)"),
            ("Upload-Length" = u64, description = "The whole size, once known"),
            ("Upload-Defer-Length" = String, description = "1 while the length is not known"),
            ("Upload-Metadata" = String, description = "filename and encrypt, as given at creation"),
            ("Upload-Expires" = String, description = "When the unfinished upload expires"),
            ("Cache-Control" = String, description = "no-store"),
            ("Ferry-Item-Id" = String, description = "The stored item, once the upload is complete"),
            ("Ferry-Item-Location" = String, description = "The stored item in the admin API"),
        )),
        HeadErrors,
    ),
    security((), ("bearer" = [])),
)]
pub async fn head_upload(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let mut response = match head(&state, &id).await {
        Ok(response) => response,
        Err(err) => err.into_bodiless(),
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn head(state: &AppState, id: &str) -> Result<Response, TusError> {
    check_id(id)?;
    let mut upstream = Upstream::acquire(state).await?;
    let result = async {
        match upstream.state(id).await {
            Ok(upload) => {
                let receipt = complete(&mut upstream, &upload).await?;
                Ok((Some(upload), receipt))
            }
            Err(ClientError::Upload {
                code: UploadErrorCode::NotFound,
                ..
            }) => {
                // Finished (the server answers a repeated finish with its
                // item), or unknown (not_found again).
                let receipt = upstream.finish(id).await?;
                Ok((None, Some(receipt)))
            }
            Err(err) => Err(TusError::from(err)),
        }
    }
    .await;
    upstream.release();
    let (upload, receipt) = result?;
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    match (&upload, &receipt) {
        (Some(upload), _) => {
            progress(headers, upload);
            match upload.length {
                Some(length) => headers.insert(UPLOAD_LENGTH, HeaderValue::from(length)),
                None => headers.insert(UPLOAD_DEFER_LENGTH, HeaderValue::from_static("1")),
            };
            if let Some(metadata) = Metadata::of(upload) {
                headers.insert(UPLOAD_METADATA, metadata);
            }
        }
        (None, Some(receipt)) => {
            headers.insert(UPLOAD_OFFSET, HeaderValue::from(receipt.size));
            headers.insert(UPLOAD_LENGTH, HeaderValue::from(receipt.size));
        }
        (None, None) => return Err(TusError::not_found()),
    }
    if let Some(receipt) = &receipt {
        stored_item(headers, &state.config.admin_url, receipt);
    }
    Ok(response)
}

/// Appends the body at `Upload-Offset`, which must be the upload's committed
/// offset. The body streams to the server in appends each durable once
/// answered: a request cut mid-way keeps every append already answered (ask
/// `HEAD`). With `Upload-Checksum` the body is kept whole or not at all. The
/// first PATCH of an upload created with `Upload-Defer-Length` may set
/// `Upload-Length`.
#[utoipa::path(
    patch,
    path = "/uploads/{id}",
    tag = "uploads",
    params(
        ("id" = String, Path, description = "The upload's id"),
        ("Tus-Resumable" = Option<String>, Header, description = "1.0.0: required by tus (missing or another version: 412)"),
        ("Upload-Offset" = Option<u64>, Header, description = "Required: where the body starts, the upload's committed offset (400 without)"),
        ("Upload-Length" = Option<u64>, Header, description = "The whole size, for an upload created with Upload-Defer-Length"),
        ("Upload-Checksum" = Option<String>, Header, description = "`sha1 <base64>` or `sha256 <base64>` of the body"),
    ),
    request_body(
        description = "The bytes from Upload-Offset on",
        content((inline(FileBytes) = "application/offset+octet-stream")),
    ),
    responses(
        (status = 204, description = "Appended (and, with the last byte, stored as an item)", headers(
            ("Upload-Offset" = u64, description = "Bytes committed (durable)"),
            ("Upload-Expires" = String, description = "When the unfinished upload expires"),
            ("Ferry-Item-Id" = String, description = "The stored item, when this was the last byte"),
            ("Ferry-Item-Location" = String, description = "The stored item in the admin API"),
        )),
        TusErrors,
    ),
    security((), ("bearer" = [])),
)]
pub async fn patch_upload(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, TusError> {
    check_id(&id)?;
    let headers = request.headers();
    if !is_upload_bytes(headers) {
        return Err(unsupported_media_type());
    }
    let offset = number(headers, &UPLOAD_OFFSET)?
        .ok_or_else(|| TusError::bad_header("Upload-Offset is required"))?;
    let new_length = number(headers, &UPLOAD_LENGTH)?;
    let checksum = Checksum::parse(headers)?;
    let max = state.config.max_file_bytes;
    if let (Some(length), Some(max)) = (new_length, max)
        && length > max
    {
        return Err(over_max(max));
    }
    let declared = content_length(headers);
    let _appending = state.appending.start(&id).ok_or_else(TusError::locked)?;
    let mut upstream = Upstream::acquire(&state).await?;
    let result = async {
        let mut upload = match upstream.state(&id).await {
            Ok(upload) => upload,
            Err(ClientError::Upload {
                code: UploadErrorCode::NotFound,
                ..
            }) => return Err(gone_or_not_found(&mut upstream, &id).await),
            Err(err) => return Err(err.into()),
        };
        if offset != upload.offset {
            return Err(TusError::offset_mismatch(upload.offset, offset));
        }
        match (upload.length, new_length) {
            (None, Some(length)) => {
                upload = upstream.command(Command::Length(&id, length)).await?;
            }
            (Some(current), Some(length)) if current != length => {
                return Err(TusError::bad_header(format!(
                    "the upload's length is {current}: Upload-Length cannot change it"
                )));
            }
            _ => {}
        }
        let room = room(&upload, max);
        if let (Some(room), Some(declared)) = (room, declared)
            && declared > room
        {
            return Err(match upload.length {
                Some(length) => past_length(length),
                None => over_max(max.unwrap_or(u64::MAX)),
            });
        }
        let upload = match upstream
            .append_body(&state, upload, request.into_body(), room, checksum)
            .await
        {
            Ok(upload) => upload,
            // Finished or cancelled by another request meanwhile.
            Err(err) if err.status() == StatusCode::NOT_FOUND => {
                return Err(gone_or_not_found(&mut upstream, &id).await);
            }
            Err(err) => return Err(err),
        };
        let receipt = complete(&mut upstream, &upload).await?;
        Ok((upload, receipt))
    }
    .await;
    upstream.release();
    let (upload, receipt) = result?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    progress(headers, &upload);
    if let Some(receipt) = &receipt {
        stored_item(headers, &state.config.admin_url, receipt);
    }
    Ok(response)
}

/// Cancels the upload (tus termination): the server removes what it staged.
#[utoipa::path(
    delete,
    path = "/uploads/{id}",
    tag = "uploads",
    params(
        ("id" = String, Path, description = "The upload's id"),
        ("Tus-Resumable" = Option<String>, Header, description = "1.0.0: required by tus (missing or another version: 412)"),
    ),
    responses((status = 204, description = "Cancelled: its staged data removed"), TusErrors),
    security((), ("bearer" = [])),
)]
pub async fn delete_upload(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, TusError> {
    check_id(&id)?;
    let mut upstream = Upstream::acquire(&state).await?;
    let result = upstream.command(Command::Cancel(&id)).await;
    upstream.release();
    result?;
    tracing::info!(%id, "tus upload terminated");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Stores the upload as an item once every byte is committed.
async fn complete(
    upstream: &mut Upstream,
    upload: &UploadState,
) -> Result<Option<Receipt>, TusError> {
    if upload.length != Some(upload.offset) {
        return Ok(None);
    }
    let receipt = upstream.finish(&upload.id).await?;
    metrics::counter!("ferry_gateway_tus_uploads_finished_total").increment(1);
    tracing::info!(upload = %upload.id, item = ?receipt.id, size = receipt.size, "tus upload finished");
    Ok(Some(receipt))
}

/// 410 for an upload the server finished (and remembers), else 404.
async fn gone_or_not_found(upstream: &mut Upstream, id: &str) -> TusError {
    match upstream.finish(id).await {
        Ok(receipt) => TusError::new(
            StatusCode::GONE,
            "finished",
            format!(
                "the upload is finished: it is item {}",
                receipt.id.as_deref().unwrap_or("(unnamed)")
            ),
        ),
        Err(err) => err.into(),
    }
}

/// The bytes the upload may still take: up to its length, or to the largest
/// upload when its length is not known yet.
fn room(upload: &UploadState, max: Option<u64>) -> Option<u64> {
    match upload.length {
        Some(length) => Some(length.saturating_sub(upload.offset)),
        None => max.map(|max| max.saturating_sub(upload.offset)),
    }
}

/// Upload ids are the server's ULIDs: anything else names no upload (and is
/// never put in a command line).
fn check_id(id: &str) -> Result<(), TusError> {
    match !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        true => Ok(()),
        false => Err(TusError::not_found()),
    }
}

fn unsupported_media_type() -> TusError {
    TusError::Api(ApiError::UnsupportedMediaType(
        "the body must be Content-Type: application/offset+octet-stream".into(),
    ))
}

fn over_max(max: u64) -> TusError {
    TusError::Api(ApiError::PayloadTooLarge(format!(
        "the upload is larger than Tus-Max-Size, {max} bytes"
    )))
}

fn past_length(length: u64) -> TusError {
    TusError::Api(ApiError::PayloadTooLarge(format!(
        "the body goes past the upload's length, {length} bytes"
    )))
}

/// Cancels an upload in the background (one whose first bytes failed their
/// checksum at creation, so its client never heard of it), once the server has
/// let go of the cut append.
fn cancel_later(state: AppState, id: String) {
    tokio::spawn(async move {
        for attempt in 0..20u32 {
            let Ok(mut upstream) = Upstream::acquire(&state).await else {
                return;
            };
            let result = upstream.command(Command::Cancel(&id)).await;
            upstream.release();
            match result {
                Err(ClientError::Upload {
                    code: UploadErrorCode::Busy,
                    ..
                }) => tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt + 1))).await,
                _ => return,
            }
        }
    });
}
