//! Legal holds: `PUT /api/items/{id}/hold` puts an item on hold, `DELETE` lifts
//! it. A held item is neither expired by the retention rules nor deletable.

use axum::Json;
use axum::extract::State;
use ferry_http::{ApiError, ErrorBody};
use ferry_store::ItemId;

use crate::Shared;
use crate::error::{no_such_item, store_error};
use crate::extract::ItemPath;
use crate::log::Caller;
use crate::model::{Item, ItemIdSchema};

/// Puts an item on legal hold: it is kept past its expiry and refuses deletes
/// until released. Returns once the hold is durable. Holding a held item changes
/// nothing.
#[utoipa::path(
    put,
    path = "/api/items/{id}/hold",
    tag = "items",
    params(("id" = ItemIdSchema, Path, description = "The item's id (a ULID)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The item, now on hold", body = Item),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody),
    )
)]
pub(crate) async fn hold_item(
    State(shared): State<Shared>,
    caller: Caller,
    ItemPath(id): ItemPath,
) -> Result<Json<Item>, ApiError> {
    set_hold(&shared, &caller, id, true).await
}

/// Releases an item from legal hold: from then on it expires and can be deleted
/// as any other. Returns once the release is durable. Releasing an item that is
/// not held changes nothing.
#[utoipa::path(
    delete,
    path = "/api/items/{id}/hold",
    tag = "items",
    params(("id" = ItemIdSchema, Path, description = "The item's id (a ULID)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The item, no longer on hold", body = Item),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody),
    )
)]
pub(crate) async fn release_item(
    State(shared): State<Shared>,
    caller: Caller,
    ItemPath(id): ItemPath,
) -> Result<Json<Item>, ApiError> {
    set_hold(&shared, &caller, id, false).await
}

async fn set_hold(
    shared: &Shared,
    Caller(by): &Caller,
    id: ItemId,
    held: bool,
) -> Result<Json<Item>, ApiError> {
    let meta = shared
        .store
        .set_hold_as(id, held, by)
        .await
        .map_err(store_error)?
        .ok_or(no_such_item(id))?;
    let what = if held {
        "put on legal hold"
    } else {
        "released from legal hold"
    };
    tracing::info!(item = %id, "item {what} through the admin API");
    Ok(Json(Item::new(meta, &shared.retention)))
}
