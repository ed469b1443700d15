//! Extractors whose rejections answer with [`ApiError`], so that a bad query string
//! or path gets the same JSON error shape as everything else.

use axum::extract::FromRequestParts;
use ferry_store::ItemId;

use crate::ApiError;

/// `axum::extract::Query`, rejecting with [`ApiError::BadRequest`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct Query<T>(pub T);

/// `axum::extract::Path`, rejecting with [`ApiError`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct Path<T>(pub T);

/// The `{id}` of an item route, parsed before use: anything but a ULID is a 400.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ItemPath(pub ItemId);

impl<S: Send + Sync> FromRequestParts<S> for ItemPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<ItemPath, ApiError> {
        let Path(text) = Path::<String>::from_request_parts(parts, state).await?;
        Ok(ItemPath(ItemId::parse(&text)?))
    }
}
