//! `POST /file`: the body (raw, or the first file of a `multipart/form-data` form)
//! streamed to the server as a text transfer, 48,000 bytes a packet, as it arrives:
//! a file is never held whole in memory.

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header;
use axum::response::Response;
use ferry_client::{ClientError, Receipt};
use ferry_http::ApiError;
use ferry_http::extract::{Query, content_length};
use ferry_protocol::Meta;
use futures::TryStreamExt;
use serde::Deserialize;
use tokio_util::io::StreamReader;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::created::{Created, created};
use crate::error::{TransferErrors, client_error};
use crate::pool::Lease;
use crate::upload::{Activity, Chunks, Upload};

/// Query parameters of `POST /file`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileQuery {
    /// Fernet-encrypt the payload on the TCP hop (default `false`).
    #[serde(default)]
    pub encrypt: bool,
    /// The file name sent to the server (name extension). For a multipart upload
    /// it defaults to the file field's filename.
    pub name: Option<String>,
}

/// A multipart upload: the first field with a filename (or named `file`) is the file.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes the form in the OpenAPI document; never built
pub struct FileForm {
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    pub file: Vec<u8>,
}

/// A raw upload: the body is the file, any bytes.
#[derive(Debug)]
pub struct FileBytes;

impl utoipa::PartialSchema for FileBytes {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .content_media_type("application/octet-stream")
            .into()
    }
}

impl ToSchema for FileBytes {}

/// Streams a file to the Ferry server.
#[utoipa::path(
    post,
    path = "/file",
    tag = "transfers",
    params(FileQuery),
    request_body(
        description = "The file: the raw body, or the first file field of a multipart form. An empty body is an empty file (a legal, empty transfer).",
        content(
            (inline(FileBytes) = "application/octet-stream"),
            (inline(FileForm) = "multipart/form-data"),
        ),
    ),
    responses(
        (status = 201, description = "Stored", body = Created, headers(
            ("Location" = String, description = "The item in the admin API (absent from a legacy server)"))),
        TransferErrors,
    ),
    security((), ("bearer" = [])),
)]
pub async fn post_file(
    State(state): State<AppState>,
    Query(query): Query<FileQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    if query.encrypt && state.config.fernet.is_none() {
        return Err(client_error(ClientError::NoKey));
    }
    let meta = Meta::text(query.encrypt);
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    let receipt = if is_form {
        let mut form = Multipart::from_request(request, &state)
            .await
            .map_err(|rejection| invalid_form(rejection.body_text()))?;
        loop {
            let field = form
                .next_field()
                .await
                .map_err(|err| invalid_form(err.body_text()))?
                .ok_or_else(|| ApiError::unprocessable("no_file", "the form has no file field"))?;
            if field.file_name().is_none() && field.name() != Some("file") {
                continue;
            }
            let name = query
                .name
                .clone()
                .or_else(|| field.file_name().map(str::to_owned));
            let chunks: Chunks<'_> = Box::pin(field.map_err(std::io::Error::other));
            break send(&state, meta, chunks, name.as_deref()).await?;
        }
    } else {
        if let Some(limit) = state.config.max_file_bytes
            && content_length(request.headers()).is_some_and(|len| len > limit)
        {
            return Err(ApiError::too_large(limit));
        }
        let chunks: Chunks<'_> = Box::pin(
            request
                .into_body()
                .into_data_stream()
                .map_err(std::io::Error::other),
        );
        send(&state, meta, chunks, query.name.as_deref()).await?
    };
    Ok(created(&state.config.admin_url, meta, receipt))
}

fn invalid_form(message: String) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_form",
        message,
    }
}

/// Streams the chunks on a pooled session. A pooled session found dead is replaced
/// by a fresh connection once, provided every byte read so far was kept for replay.
async fn send(
    state: &AppState,
    meta: Meta,
    chunks: Chunks<'_>,
    name: Option<&str>,
) -> Result<Receipt, ApiError> {
    let config = &state.config;
    let activity = Activity::new();
    let upload = Upload::new(
        chunks,
        config.max_file_bytes,
        config.request_timeout,
        activity.clone(),
    );
    let mut reader = StreamReader::new(upload);
    let mut lease = state.pool.acquire().await?;
    let mut retried = false;
    let result = loop {
        let result = transfer(
            &mut lease,
            &mut reader,
            meta,
            name,
            &activity,
            config.upstream_timeout,
        )
        .await;
        let dead_pooled_session = match &result {
            Err(err) => !retried && reader.get_ref().failure().is_none() && lease.may_retry(err),
            Ok(_) => false,
        };
        if !dead_pooled_session {
            break result;
        }
        retried = true;
        let mut upload = reader.into_inner();
        let rewound = upload.rewind();
        reader = StreamReader::new(upload);
        if !rewound {
            break result;
        }
        if let Err(err) = &result {
            tracing::info!(cause = %err, "pooled session was dead: resending the file on a new connection");
        }
        lease.reconnect().await?;
        activity.touch();
    };
    lease.settle(&result);
    if let Some(failure) = reader.get_ref().failure() {
        return Err(failure.clone().into());
    }
    result.map_err(client_error)
}

/// One attempt. Besides the reply timeout, a watchdog ends a transfer that the
/// server has stopped reading (writes blocked) for `upstream_timeout`.
async fn transfer(
    lease: &mut Lease,
    reader: &mut StreamReader<Upload<'_>, bytes::Bytes>,
    meta: Meta,
    name: Option<&str>,
    activity: &Activity,
    upstream_timeout: std::time::Duration,
) -> Result<Receipt, ClientError> {
    activity.touch();
    let mut progress = |_| activity.touch();
    tokio::select! {
        result = lease.session().send_reader(meta, reader, name, &mut progress) => result,
        () = activity.stalled_for(upstream_timeout) => Err(ClientError::Timeout(upstream_timeout)),
    }
}
