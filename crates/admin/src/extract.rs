//! The `{id}` of an item route, parsed before use: anything but a ULID is a 400
//! in the one JSON error shape.

use axum::extract::FromRequestParts;
use ferry_http::ApiError;
use ferry_http::extract::Path;
use ferry_store::ItemId;

/// An item id taken from the path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ItemPath(pub ItemId);

impl<S: Send + Sync> FromRequestParts<S> for ItemPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<ItemPath, ApiError> {
        let Path(text) = Path::<String>::from_request_parts(parts, state).await?;
        ItemId::parse(&text)
            .map(ItemPath)
            .map_err(crate::error::store_error)
    }
}
