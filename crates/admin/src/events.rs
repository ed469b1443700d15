//! `GET /api/events`: newly committed items as Server-Sent Events.
//!
//! Each event is `event: item`, `id: <item id>`, `data: <Item JSON>`. A client
//! too slow to keep up gets `event: lagged` with the number of items it missed
//! (it should reload the list). Comments keep the connection alive, and the
//! stream ends when the server begins shutting down, so it never holds up a
//! graceful shutdown.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::{broadcast, watch};

use ferry_http::{ApiError, ErrorBody};

use crate::Shared;
use crate::model::Item;

/// How often an idle stream sends a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Fires when the server begins a graceful shutdown (added by [`crate::serve`]).
#[derive(Debug, Clone)]
pub(crate) struct Closing(pub watch::Receiver<bool>);

/// Live updates: every item committed from now on.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "items",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A stream of `item` events whose data is an Item (and `lagged` events with the number of items missed)",
            content_type = "text/event-stream", body = String),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
    )
)]
pub(crate) async fn events(
    State(shared): State<Shared>,
    closing: Option<Extension<Closing>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let receiver = shared.store.subscribe();
    let closing = closing.map(|Extension(c)| c.0);
    let stream = futures::stream::unfold(
        (receiver, closing, shared),
        |(mut receiver, mut closing, shared)| async move {
            let event = tokio::select! {
                received = receiver.recv() => match received {
                    Ok(meta) => item_event(Item::new(meta, &shared.retention)),
                    Err(broadcast::error::RecvError::Lagged(missed)) => Event::default().event("lagged").data(missed.to_string()),
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                () = shutting_down(&mut closing) => return None,
            };
            Some((Ok(event), (receiver, closing, shared)))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

fn item_event(item: Item) -> Event {
    let data = serde_json::to_string(&item).expect("an item always serializes");
    Event::default().event("item").id(item.id).data(data)
}

/// Resolves once shutdown begins; never without a shutdown signal.
async fn shutting_down(closing: &mut Option<watch::Receiver<bool>>) {
    match closing {
        Some(rx) => {
            // An error means the sender is gone: the server is stopping too.
            let _ = rx.wait_for(|closing| *closing).await;
        }
        None => std::future::pending().await,
    }
}
