//! Listing, reading the metadata of, and deleting items.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ferry_store::{ItemId, ListQuery};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use ferry_http::extract::Query;
use ferry_http::{ApiDataType, ApiError, ApiSerialization, ErrorBody};

use crate::Shared;
use crate::error::{no_such_item, store_error};
use crate::extract::ItemPath;
use crate::log::{Caller, read_item, record_reads};
use crate::model::{Item, ItemIdSchema};

/// Items per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 1000;

/// Filters and pagination of `GET /api/items`. Every filter given must match.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only items of this data type.
    data_type: Option<ApiDataType>,
    /// Only items with this serialization.
    serialization: Option<ApiSerialization>,
    /// Only items from this source: the peer's IP (`10.0.0.1`, `::1`), or a prefix of
    /// `ip:port` that covers the whole IP.
    source: Option<String>,
    /// Only items received at or after this instant (RFC 3339).
    #[serde(default, deserialize_with = "instant")]
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<OffsetDateTime>,
    /// Only items received strictly before this instant (RFC 3339).
    #[serde(default, deserialize_with = "instant")]
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<OffsetDateTime>,
    /// Only items whose file name contains this text, ignoring case.
    name: Option<String>,
    /// The `next` cursor of the previous page.
    #[param(value_type = Option<ItemIdSchema>)]
    cursor: Option<String>,
    /// Items per page (1 to 1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// An RFC 3339 instant. A space stands for `+`, as an unencoded `+00:00` in a
/// query string arrives as ` 00:00`.
fn instant<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<OffsetDateTime>, D::Error> {
    let text = String::deserialize(deserializer)?;
    let text = text.trim_start().replace(' ', "+");
    OffsetDateTime::parse(&text, &Rfc3339)
        .map(Some)
        .map_err(|err| {
            serde::de::Error::custom(format!("{text:?} is not an RFC 3339 instant: {err}"))
        })
}

/// One page of items, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemPage {
    /// The items of this page, newest first.
    pub items: Vec<Item>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next: Option<String>,
}

impl ListParams {
    /// The store query these parameters ask for; a bad cursor or limit is a 400.
    fn to_query(&self) -> Result<ListQuery, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        let before = self
            .cursor
            .as_deref()
            .map(ItemId::parse)
            .transpose()
            .map_err(|_| ApiError::bad_request("invalid cursor"))?;
        Ok(ListQuery {
            data_type: self.data_type.map(Into::into),
            serialization: self.serialization.map(Into::into),
            source: self.source.clone().filter(|s| !s.is_empty()),
            since: self.since,
            until: self.until,
            name: self.name.clone().filter(|n| !n.is_empty()),
            before,
            limit,
        })
    }
}

/// Lists items, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/items",
    tag = "items",
    params(ListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of items, newest first", body = ItemPage),
        (status = 400, description = "A malformed filter, cursor or limit", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
    )
)]
pub(crate) async fn list_items(
    State(shared): State<Shared>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> Result<Json<ItemPage>, ApiError> {
    let page = shared
        .store
        .list(&params.to_query()?)
        .await
        .map_err(store_error)?;
    let ids: Vec<ItemId> = page.items.iter().map(|meta| meta.id).collect();
    record_reads(&shared, &caller, "metadata", ids).await?;
    Ok(Json(ItemPage {
        items: page
            .items
            .into_iter()
            .map(|meta| Item::new(meta, &shared.retention))
            .collect(),
        next: page.next.map(|id| id.to_string()),
    }))
}

/// One item's metadata.
#[utoipa::path(
    get,
    path = "/api/items/{id}",
    tag = "items",
    params(("id" = ItemIdSchema, Path, description = "The item's id (a ULID)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The item's metadata", body = Item),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody),
    )
)]
pub(crate) async fn get_item(
    State(shared): State<Shared>,
    caller: Caller,
    ItemPath(id): ItemPath,
) -> Result<Json<Item>, ApiError> {
    let meta = read_item(&shared, &caller, id, "metadata").await?;
    Ok(Json(Item::new(meta, &shared.retention)))
}

/// Deletes an item durably. An item on legal hold is refused (409) until its
/// hold is lifted.
#[utoipa::path(
    delete,
    path = "/api/items/{id}",
    tag = "items",
    params(("id" = ItemIdSchema, Path, description = "The item's id (a ULID)")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody),
        (status = 409, description = "The item is on legal hold (`legal_hold`): release it first with `DELETE /api/items/{id}/hold`", body = ErrorBody),
    )
)]
pub(crate) async fn delete_item(
    State(shared): State<Shared>,
    Caller(by): Caller,
    ItemPath(id): ItemPath,
) -> Result<StatusCode, ApiError> {
    let cause = ferry_store::Cause::By(by);
    if shared
        .store
        .delete_as(id, &cause)
        .await
        .map_err(store_error)?
    {
        tracing::info!(item = %id, "item deleted through the admin API");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_such_item(id))
    }
}
