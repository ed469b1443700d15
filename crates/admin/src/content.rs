//! `GET /api/items/{id}/content`: an item's decrypted bytes, streamed, with byte
//! ranges; or, with `?as=json`, a dictionary as canonical JSON.
//!
//! Integrity: the store authenticates every chunk before yielding it. The first
//! chunk is read before the response starts, so a record that fails there is a
//! clean 500 with the JSON error; a failure later aborts the body (the client
//! sees a transfer shorter than its `Content-Length`), never wrong bytes. Either
//! way `tracing::error!` names the item and the reason.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use ferry_protocol::DataType;
use ferry_store::{ContentStream, ItemId, ItemMeta, StoreError};
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use ferry_http::extract::Query;
use ferry_http::{ApiError, ApiSerialization, ErrorBody};

use crate::Shared;
use crate::error::{no_such_item, store_error};
use crate::extract::ItemPath;
use crate::log::{Caller, read_item};
use crate::model::{ItemIdSchema, file_name};
use crate::range::{RangeRequest, parse_range};

/// How to show the content.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContentView {
    /// A dictionary as canonical JSON, whatever it arrived as.
    Json,
}

/// Query parameters of `GET /api/items/{id}/content`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContentParams {
    /// `json`: a dictionary as canonical JSON, whatever it arrived as (400 on a
    /// text item). Without it: the original bytes.
    #[serde(rename = "as")]
    #[param(rename = "as")]
    view: Option<ContentView>,
}

/// The content of an item.
#[utoipa::path(
    get,
    path = "/api/items/{id}/content",
    tag = "items",
    params(
        ("id" = ItemIdSchema, Path, description = "The item's id (a ULID)"),
        ContentParams,
        ("Range" = Option<String>, Header, description = "One byte range: `bytes=a-b`, `bytes=a-` or `bytes=-n`"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The original bytes (or, with `as=json`, the dictionary as JSON)",
            headers(
                ("Content-Length" = u64, description = "Size of the body"),
                ("Content-Disposition" = String, description = "`attachment` with the item's file name"),
                ("Accept-Ranges" = String, description = "`bytes`"),
            ),
            content(
                (String = "text/plain; charset=utf-8"),
                (serde_json::Value = "application/json"),
                (String = "application/xml"),
                ("application/x-python-pickle"),
            )),
        (status = 206, description = "The requested byte range",
            headers(("Content-Range" = String, description = "`bytes a-b/size`")),
            content(
                (String = "text/plain; charset=utf-8"),
                (String = "application/json"),
                (String = "application/xml"),
                ("application/x-python-pickle"),
            )),
        (status = 400, description = "A malformed id or parameter, or `as=json` on a text item", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody),
        (status = 416, description = "The range does not overlap the content",
            headers(("Content-Range" = String, description = "`bytes */size`")), body = ErrorBody),
        (status = 422, description = "The stored dictionary cannot be decoded", body = ErrorBody),
        (status = 500, description = "The stored record failed its integrity check", body = ErrorBody),
    )
)]
pub(crate) async fn get_content(
    State(shared): State<Shared>,
    caller: Caller,
    ItemPath(id): ItemPath,
    Query(params): Query<ContentParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let meta = read_item(&shared, &caller, id, "content").await?;
    if let Some(ContentView::Json) = params.view {
        return dictionary_as_json(&shared, meta).await;
    }
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let range = match parse_range(range_header, meta.size) {
        RangeRequest::Full => None,
        RangeRequest::Partial(range) => Some(range),
        RangeRequest::Unsatisfiable => {
            return Err(ApiError::RangeNotSatisfiable { size: meta.size });
        }
    };
    let (meta, stream) = open(&shared, id, range.clone()).await?;
    let body = checked_body(id, stream).await?;

    let serialization = ApiSerialization::from(meta.serialization);
    let (status, length) = match &range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.end - r.start),
        None => (StatusCode::OK, meta.size),
    };
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(serialization.content_type()),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_DISPOSITION,
        content_disposition(&file_name(&meta)),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(etag) = HeaderValue::try_from(format!("\"{}\"", meta.sha256)) {
        h.insert(header::ETAG, etag);
    }
    if let Some(r) = range {
        let value = format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size);
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::try_from(value).expect("digits are a valid header value"),
        );
    }
    Ok(response)
}

/// Opens the item's plaintext (or a range of it); a vanished item is a 404.
async fn open(
    shared: &Shared,
    id: ItemId,
    range: Option<std::ops::Range<u64>>,
) -> Result<(ItemMeta, ContentStream), ApiError> {
    shared
        .store
        .open(id, range)
        .await
        .map_err(store_error)?
        .ok_or(no_such_item(id))
}

/// The body for `stream`, after reading its first chunk so that a record that
/// fails at once is an error response rather than a broken body.
///
/// Each later chunk is read only after the server had a chance to send what
/// it holds (the stream yields to the runtime first): the headers and every
/// verified chunk go out before the next chunk is read, so a chunk that fails
/// cuts the body there (shorter than its `Content-Length`) instead of, when
/// reads happen to complete at once, taking the whole unsent response with it.
async fn checked_body(id: ItemId, mut stream: ContentStream) -> Result<Body, ApiError> {
    let first = match stream.next().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(err)) => return Err(store_error(err)),
        None => return Ok(Body::empty()),
    };
    let rest = futures::stream::unfold(stream, |mut stream| async move {
        tokio::task::yield_now().await;
        stream.next().await.map(|chunk| (chunk, stream))
    })
    .inspect_err(move |err| log_broken_stream(id, err));
    Ok(Body::from_stream(
        futures::stream::once(async { Ok(first) }).chain(rest),
    ))
}

/// Logs why a body was cut short: the client sees a broken transfer.
fn log_broken_stream(id: ItemId, err: &StoreError) {
    match err {
        StoreError::Integrity { reason, .. } => {
            tracing::error!(item = %id, %reason, "item failed integrity checks mid-stream; aborting the response")
        }
        other => {
            tracing::error!(item = %id, error = %other, "reading item failed mid-stream; aborting the response")
        }
    }
}

/// A dictionary's content as canonical JSON; 400 for a text item.
async fn dictionary_as_json(shared: &Shared, meta: ItemMeta) -> Result<Response, ApiError> {
    if meta.data_type != DataType::Dictionary {
        return Err(ApiError::bad_request(
            "as=json is only for dictionaries; this item is text",
        ));
    }
    let limits = ferry_codec::Limits::default();
    if meta.size > limits.max_bytes as u64 {
        return Err(ApiError::unprocessable(
            "unprocessable",
            format!("the dictionary is larger than {} bytes", limits.max_bytes),
        ));
    }
    let (meta, stream) = open(shared, meta.id, None).await?;
    let bytes: Vec<u8> = stream
        .try_fold(
            Vec::with_capacity(meta.size as usize),
            |mut all, chunk: Bytes| async move {
                all.extend_from_slice(&chunk);
                Ok(all)
            },
        )
        .await
        .map_err(store_error)?;
    let dict = ferry_codec::decode(meta.serialization, &bytes, &limits)
        .map_err(|err| ApiError::unprocessable("unprocessable", err.to_string()))?;
    let json = serde_json::to_vec(&dict).map_err(ApiError::internal)?;
    let mut response = ([(header::CONTENT_TYPE, "application/json")], json).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

/// `attachment` with the file name, as ASCII and as UTF-8 (RFC 6266).
fn content_disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    HeaderValue::try_from(format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or(HeaderValue::from_static("attachment"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_given_as_ascii_and_utf8() {
        assert_eq!(
            content_disposition("a.txt"),
            "attachment; filename=\"a.txt\"; filename*=UTF-8''a.txt"
        );
        assert_eq!(
            content_disposition("é \"x\".txt"),
            "attachment; filename=\"_ _x_.txt\"; filename*=UTF-8''%C3%A9%20%22x%22.txt"
        );
    }
}
