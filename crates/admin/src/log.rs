//! The store's tamper-evident log through the admin API: receipts, signed
//! checkpoints, inclusion and consistency proofs (open to anyone: they hold
//! hashes and signatures, nothing about what items hold), recent entries and
//! the check of the log (token), and the [`Caller`] whose reads are logged.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::header;
use axum::response::IntoResponse;
use ferry_http::extract::Query;
use ferry_http::{ApiError, ErrorBody};
use ferry_store::{ItemId, LogCheck, Notary, StoreError};
use ferry_tlog::{Actor, ConsistencyProof, Entry, InclusionProof, Receipt};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Shared;
use crate::error::{no_such_item, store_error};
use crate::extract::ItemPath;
use crate::model::ItemIdSchema;

/// How long a proof request waits for a checkpoint that covers its leaf.
const COVER_WAIT: Duration = Duration::from_secs(3);

/// Who is calling: the token's fingerprint (never the token) and the client's
/// address, as the log records reads.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub Actor);

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        shared: &Shared,
    ) -> Result<Caller, ApiError> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(
                || "-".into(),
                |ConnectInfo(peer)| peer.ip().to_canonical().to_string(),
            );
        Ok(Caller(Actor {
            credential: credential_of(&shared.token),
            address,
        }))
    }
}

/// `token:` and the first 8 hex digits of the token's SHA-256: names the
/// credential in the log without revealing it.
fn credential_of(token: &ferry_http::BearerToken) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.expose().as_bytes());
    format!("token:{}", &hex::encode(digest)[..8])
}

/// Records in the log that `caller` read `what` (`content` or `metadata`) of
/// `ids`, durably, before the answer goes out. Without a log, nothing.
pub(crate) async fn record_reads(
    shared: &Shared,
    caller: &Caller,
    what: &str,
    ids: impl IntoIterator<Item = ItemId>,
) -> Result<(), ApiError> {
    let Some(ledger) = shared.store.ledger() else {
        return Ok(());
    };
    let now = ferry_store::now();
    let reads: Vec<Entry> = ids
        .into_iter()
        .map(|id| Entry::read(&id.to_string(), what, &caller.0, &now))
        .collect();
    if !reads.is_empty() {
        ledger.append(reads).await.map_err(store_error)?;
    }
    Ok(())
}

/// A count from a query parameter: not negative.
fn count(value: i64, name: &str) -> Result<u64, ApiError> {
    u64::try_from(value).map_err(|_| ApiError::bad_request(format!("{name} must not be negative")))
}

fn optional(value: Option<i64>, name: &str) -> Result<Option<u64>, ApiError> {
    value.map(|value| count(value, name)).transpose()
}

/// An item's metadata, for `caller`, who is recorded as having read its
/// `what` (`content` or `metadata`); a 404 if there is no such item.
pub(crate) async fn read_item(
    shared: &Shared,
    caller: &Caller,
    id: ItemId,
    what: &str,
) -> Result<ferry_store::ItemMeta, ApiError> {
    let meta = shared
        .store
        .get(id)
        .await
        .map_err(store_error)?
        .ok_or(no_such_item(id))?;
    record_reads(shared, caller, what, [id]).await?;
    Ok(meta)
}

fn notary(shared: &Shared) -> Result<&Notary, ApiError> {
    shared
        .notary
        .as_deref()
        .ok_or_else(|| store_error(StoreError::NoLog))
}

/// The log's public key, as verifier key text (`<name>+<key hash>+<key>`).
#[utoipa::path(
    get,
    path = "/api/log/key",
    tag = "log",
    responses(
        (status = 200, description = "The verifier key of receipts and checkpoints", content_type = "text/plain; charset=utf-8", body = String),
        (status = 404, description = "This server keeps no log", body = ErrorBody),
    )
)]
pub(crate) async fn log_key(State(shared): State<Shared>) -> Result<impl IntoResponse, ApiError> {
    let key = notary(&shared)?.verifier().to_string();
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{key}\n"),
    ))
}

/// The latest signed checkpoint (C2SP `tlog-checkpoint` in a signed note).
#[utoipa::path(
    get,
    path = "/api/log/checkpoint",
    tag = "log",
    responses(
        (status = 200, description = "The latest signed checkpoint", content_type = "text/plain; charset=utf-8", body = String),
        (status = 404, description = "This server keeps no log", body = ErrorBody),
        (status = 503, description = "The log does not verify: no checkpoint is published", body = ErrorBody),
    )
)]
pub(crate) async fn log_checkpoint(
    State(shared): State<Shared>,
) -> Result<impl IntoResponse, ApiError> {
    let latest = notary(&shared)?.latest().ok_or_else(unverified)?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        latest.note,
    ))
}

fn unverified() -> ApiError {
    ApiError::Busy {
        code: "log_unverified",
        message: "no checkpoint is published: the log does not verify (see the server log)".into(),
        retry_after: Duration::from_secs(60),
    }
}

/// Which leaf, against which checkpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct InclusionParams {
    /// The leaf index (a receipt's `index`).
    #[param(minimum = 0)]
    index: i64,
    /// The tree size of a published checkpoint; default the latest.
    #[param(minimum = 0)]
    size: Option<i64>,
}

/// The inclusion proof of a leaf, with the signed checkpoint it leads to. A leaf
/// not in a published checkpoint yet is waited for (a checkpoint interval).
#[utoipa::path(
    get,
    path = "/api/log/inclusion",
    tag = "log",
    params(InclusionParams),
    responses(
        (status = 200, description = "The proof and its checkpoint", body = InclusionProofSchema),
        (status = 400, description = "A malformed index or size", body = ErrorBody),
        (status = 404, description = "This server keeps no log", body = ErrorBody),
        (status = 409, description = "No such leaf, or not in a checkpoint yet (`log_request`)", body = ErrorBody),
    )
)]
pub(crate) async fn log_inclusion(
    State(shared): State<Shared>,
    Query(params): Query<InclusionParams>,
) -> Result<Json<InclusionProof>, ApiError> {
    let (index, size) = (
        count(params.index, "index")?,
        optional(params.size, "size")?,
    );
    let proof = notary(&shared)?
        .inclusion(index, size, COVER_WAIT)
        .await
        .map_err(store_error)?;
    Ok(Json(proof))
}

/// Between which tree sizes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConsistencyParams {
    /// The older tree size (a checkpoint saved earlier).
    #[param(minimum = 0)]
    from: i64,
    /// The newer tree size, of a published checkpoint; default the latest.
    #[param(minimum = 0)]
    to: Option<i64>,
}

/// The consistency proof between two checkpoints: the older tree is a prefix
/// of the newer one, whose signed checkpoint comes with it.
#[utoipa::path(
    get,
    path = "/api/log/consistency",
    tag = "log",
    params(ConsistencyParams),
    responses(
        (status = 200, description = "The proof and the newer checkpoint", body = ConsistencyProofSchema),
        (status = 400, description = "A malformed size", body = ErrorBody),
        (status = 404, description = "This server keeps no log", body = ErrorBody),
        (status = 409, description = "Sizes the log cannot prove (`log_request`)", body = ErrorBody),
    )
)]
pub(crate) async fn log_consistency(
    State(shared): State<Shared>,
    Query(params): Query<ConsistencyParams>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let (from, to) = (count(params.from, "from")?, optional(params.to, "to")?);
    let proof = notary(&shared)?
        .consistency(from, to)
        .await
        .map_err(store_error)?;
    Ok(Json(proof))
}

/// An item's receipt: its `stored` leaf and index, a signed checkpoint that
/// holds the leaf and the leaf's inclusion proof in it. Logged as a read of the
/// item's metadata.
#[utoipa::path(
    get,
    path = "/api/items/{id}/receipt",
    tag = "log",
    params(("id" = ItemIdSchema, Path, description = "The item's id (a ULID)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The item's receipt", body = ReceiptSchema),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such item, or no log", body = ErrorBody),
    )
)]
pub(crate) async fn item_receipt(
    State(shared): State<Shared>,
    caller: Caller,
    ItemPath(id): ItemPath,
) -> Result<Json<Receipt>, ApiError> {
    let notary = notary(&shared)?;
    let meta = read_item(&shared, &caller, id, "metadata").await?;
    let receipt = notary
        .receipt(&meta)
        .await
        .ok_or_else(|| ApiError::NotFound(format!("item {id} has no leaf in the log yet")))?;
    Ok(Json(receipt))
}

/// Which entries.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EntriesParams {
    /// The first leaf index; default: the last `limit` entries.
    #[param(minimum = 0)]
    from: Option<i64>,
    /// At most this many (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// One leaf of the log.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LogEntry {
    /// The leaf index.
    index: u64,
    /// What happened: stored, deleted, expired, aborted, kept, read, hold, release.
    event: String,
    /// The item's id.
    id: String,
    /// When (RFC 3339).
    time: String,
    /// For reads, holds and deletes: which credential.
    credential: Option<String>,
    /// For reads, holds and deletes: from which address.
    address: Option<String>,
    /// For reads: `content` or `metadata`.
    what: Option<String>,
    /// The leaf's text, exactly as hashed.
    leaf: String,
}

/// A page of the log's entries.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LogEntries {
    /// The number of leaves in the log.
    size: u64,
    /// The entries, oldest first.
    entries: Vec<LogEntry>,
}

/// The log's entries: what happened to which item, who read what.
#[utoipa::path(
    get,
    path = "/api/log/entries",
    tag = "log",
    params(EntriesParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Entries, oldest first", body = LogEntries),
        (status = 400, description = "A malformed index or limit", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "This server keeps no log", body = ErrorBody),
    )
)]
pub(crate) async fn log_entries(
    State(shared): State<Shared>,
    Query(params): Query<EntriesParams>,
) -> Result<Json<LogEntries>, ApiError> {
    let ledger = notary(&shared)?.ledger();
    let size = ledger.size();
    let limit = match params.limit {
        None => 50,
        Some(limit @ 1..=500) => limit as usize,
        Some(_) => return Err(ApiError::bad_request("limit must be from 1 to 500")),
    };
    let from = optional(params.from, "from")?.unwrap_or(size.saturating_sub(limit as u64));
    let leaves = ledger.leaves(from, limit).await.map_err(store_error)?;
    let entries = leaves
        .into_iter()
        .map(|(index, entry)| {
            let field = |key| entry.get(key).map(str::to_owned);
            LogEntry {
                index,
                event: entry.event().to_string(),
                id: entry.id().to_owned(),
                time: field("time").unwrap_or_default(),
                credential: field("credential"),
                address: field("address"),
                what: field("what"),
                leaf: entry.text().to_owned(),
            }
        })
        .collect();
    Ok(Json(LogEntries { size, entries }))
}

/// Checks the log now: reads every leaf from disk, rebuilds the tree, and
/// compares it with the last signed checkpoint. A log that does not verify
/// makes `/readyz` fail and stops the publishing of checkpoints.
#[utoipa::path(
    post,
    path = "/api/log/verify",
    tag = "log",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What the check found (`ok` false when the log does not verify)", body = LogCheckSchema),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "This server keeps no log", body = ErrorBody),
    )
)]
pub(crate) async fn log_verify(State(shared): State<Shared>) -> Result<Json<LogCheck>, ApiError> {
    let check = notary(&shared)?.check().await.map_err(store_error)?;
    Ok(Json(check))
}

/// A receipt (see `docs/receipts.md`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ReceiptSchema {
    log: String,
    index: u64,
    id: String,
    sha256: String,
    size: u64,
    received_at: String,
    /// The `stored` leaf's text.
    leaf: String,
    /// The signed checkpoint of a tree of more than `index` leaves.
    checkpoint: String,
    /// The leaf's inclusion proof in that tree: hashes, base64, leaf side first.
    proof: Vec<String>,
}

/// An inclusion proof (see `docs/receipts.md`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct InclusionProofSchema {
    index: u64,
    size: u64,
    /// Hashes, base64, leaf side first.
    proof: Vec<String>,
    /// The signed checkpoint of `size` leaves.
    checkpoint: String,
}

/// A consistency proof (see `docs/receipts.md`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ConsistencyProofSchema {
    from: u64,
    to: u64,
    /// Hashes, base64.
    proof: Vec<String>,
    /// The signed checkpoint of `to` leaves.
    checkpoint: String,
}

/// The result of a check of the log.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct LogCheckSchema {
    ok: bool,
    size: u64,
    checkpoint_size: Option<u64>,
    problems: Vec<String>,
}
