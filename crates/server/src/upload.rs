//! Resumable uploads in the native protocol (extension 3 of
//! `docs/protocol-extensions.md`): runs a client's upload command against the
//! store and words its one-line answer.
//!
//! An upload is checked like a transfer when it is opened (the same encryption
//! and pickle policy) and carries text only: a dictionary is decoded and
//! validated whole before it is stored, so it travels as one transfer. An
//! `append` that can start arms the connection's next transfer
//! ([`Armed`], see [`crate::append`]); `finish` stores the item exactly as a
//! transfer's commit does (legacy outputs, metrics, the extended reply with its
//! receipt). A `finish` whose answer was lost can be asked again: the server
//! remembers the uploads it finished lately ([`RecentlyFinished`]).

use crate::Shared;
use crate::append::Armed;
use crate::error::FAILED_REPLY;
use crate::transfer::{new_item, output, refusal};
use ferry_protocol::upload::{UploadCommand, UploadErrorCode, UploadReply, UploadState};
use ferry_protocol::{DataType, Meta};
use ferry_store::{ItemMeta, StoreError, UploadId, UploadInfo};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;

/// How many finished uploads the server remembers.
const REMEMBERED: usize = 1024;

/// The items of the uploads this server finished lately, so that a client
/// whose connection was lost before the answer to its `finish` hears the same
/// answer when it asks again (instead of `not_found`).
#[derive(Debug, Default)]
pub(crate) struct RecentlyFinished {
    items: Mutex<VecDeque<(UploadId, ItemMeta)>>,
}

impl RecentlyFinished {
    fn get(&self, id: UploadId) -> Option<ItemMeta> {
        let items = self.items.lock().expect("never poisoned");
        items
            .iter()
            .find(|(finished, _)| *finished == id)
            .map(|(_, item)| item.clone())
    }

    fn remember(&self, id: UploadId, item: &ItemMeta) {
        let mut items = self.items.lock().expect("never poisoned");
        if items.len() == REMEMBERED {
            items.pop_front();
        }
        items.push_back((id, item.clone()));
    }
}

/// What a command gives the connection: the bytes of its answer, and the
/// armed append when it was an `append` that can start.
pub(crate) struct Ran {
    pub(crate) reply: Vec<u8>,
    pub(crate) armed: Option<Armed>,
}

impl From<UploadReply> for Ran {
    fn from(reply: UploadReply) -> Self {
        Ran {
            reply: reply.to_bytes(),
            armed: None,
        }
    }
}

/// Runs one command line from `peer`.
pub(crate) async fn run(shared: &Shared, peer: SocketAddr, line: &str) -> Ran {
    let command = match UploadCommand::parse(line) {
        Ok(command) => command,
        Err(reason) => {
            tracing::warn!(%peer, %reason, "bad upload command");
            return UploadReply::failure(UploadErrorCode::BadCommand, reason).into();
        }
    };
    match execute(shared, peer, command).await {
        Ok(ran) => ran,
        Err(reply) => reply.into(),
    }
}

async fn execute(
    shared: &Shared,
    peer: SocketAddr,
    command: UploadCommand,
) -> Result<Ran, UploadReply> {
    let store = &shared.store;
    let ran = match command {
        UploadCommand::Open { meta, length, name } => {
            if let Some(reason) = open_refusal(shared, meta) {
                return Err(UploadReply::failure(UploadErrorCode::Refused, reason));
            }
            let info = store
                .upload_create(new_item(meta, peer, name), length)
                .await
                .map_err(failure)?;
            tracing::info!(%peer, id = %info.id, ?length, "upload opened");
            success(&info)
        }
        UploadCommand::State { id } => success(&existing(shared, &id).await?),
        UploadCommand::Length { id, length } => {
            let info = store
                .upload_set_length(upload_id(&id)?, length)
                .await
                .map_err(failure)?;
            success(&info)
        }
        UploadCommand::Append { id, offset } => {
            let info = existing(shared, &id).await?;
            let appender = store
                .upload_append(info.id, offset)
                .await
                .map_err(failure)?;
            let meta = meta_of(&info)?;
            Ran {
                reply: UploadReply::success(state(&info)).to_bytes(),
                armed: Some(Armed::new(info.id, meta, offset, appender)),
            }
        }
        UploadCommand::Finish { id } => {
            let upload = upload_id(&id)?;
            match shared.finished.get(upload) {
                Some(item) => {
                    tracing::info!(%peer, %upload, id = %item.id, "finish asked again; answered with its item");
                    stored(shared, &item).await
                }
                None => finish(shared, peer, &existing(shared, &id).await?).await?,
            }
        }
        UploadCommand::Cancel { id } => {
            let info = existing(shared, &id).await?;
            if !store.upload_cancel(info.id).await.map_err(failure)? {
                return Err(not_found());
            }
            tracing::info!(%peer, id = %info.id, "upload cancelled");
            success(&info)
        }
    };
    Ok(ran)
}

/// Why an upload with this meta is refused here: the policy of transfers, and
/// dictionaries (validated whole, so sent as one transfer).
fn open_refusal(shared: &Shared, meta: Meta) -> Option<String> {
    refusal(shared, meta).or_else(|| {
        (meta.data_type() == DataType::Dictionary)
            .then(|| "resumable uploads carry text; send a dictionary as one transfer".to_owned())
    })
}

/// Stores the complete upload `info` as an item, as a transfer's commit does.
async fn finish(shared: &Shared, peer: SocketAddr, info: &UploadInfo) -> Result<Ran, UploadReply> {
    let meta = meta_of(info)?;
    let result = match shared.store.upload_finish(info.id).await {
        Ok(item) => match output(shared, item, crate::outputs::Content::Stored).await {
            Ok(item) => Ok(item),
            Err(err) => {
                tracing::error!(%peer, upload = %info.id, error = %err, "upload finished, output failed");
                Err(UploadReply::failure(
                    UploadErrorCode::Unavailable,
                    err.reply().to_owned(),
                ))
            }
        },
        Err(err) => Err(failure(err)),
    };
    let elapsed: std::time::Duration = (time::OffsetDateTime::now_utc() - info.created_at)
        .try_into()
        .unwrap_or_default();
    // Counted as a transfer once, when it is stored or the server failed to
    // store it; a finish asked too early is no transfer.
    match &result {
        Ok(item) => crate::metrics::transfer(Some(meta), "ok", item.size, elapsed),
        Err(reply) if reply.code == Some(UploadErrorCode::Unavailable) => {
            crate::metrics::transfer(Some(meta), "failed", info.offset, elapsed);
        }
        Err(_) => {}
    }
    let item = result?;
    tracing::info!(%peer, upload = %info.id, id = %item.id, size = item.size, "upload finished; item stored");
    shared.finished.remember(info.id, &item);
    Ok(stored(shared, &item).await)
}

/// The answer naming a stored item, as a transfer's.
async fn stored(shared: &Shared, item: &ItemMeta) -> Ran {
    Ran {
        reply: crate::connection::stored_reply(shared, item)
            .await
            .to_bytes(),
        armed: None,
    }
}

fn success(info: &UploadInfo) -> Ran {
    UploadReply::success(state(info)).into()
}

/// The upload named `id`, or the reply that it does not exist.
async fn existing(shared: &Shared, id: &str) -> Result<UploadInfo, UploadReply> {
    shared
        .store
        .upload_info(upload_id(id)?)
        .await
        .map_err(failure)?
        .ok_or_else(not_found)
}

fn upload_id(text: &str) -> Result<UploadId, UploadReply> {
    UploadId::parse(text).map_err(|_| {
        UploadReply::failure(
            UploadErrorCode::BadCommand,
            format!("{text:?} is not an upload id"),
        )
    })
}

/// The meta byte of the upload's transfers.
fn meta_of(info: &UploadInfo) -> Result<Meta, UploadReply> {
    state(info).meta().ok_or_else(|| {
        tracing::error!(id = %info.id, "an upload with a data type and serialization no meta byte has");
        UploadReply::failure(UploadErrorCode::Unavailable, FAILED_REPLY)
    })
}

fn not_found() -> UploadReply {
    UploadReply::failure(
        UploadErrorCode::NotFound,
        "no such upload: never opened, or finished, cancelled or expired",
    )
}

/// The answer to a store error: its code, and its reason when it is about the
/// client's request; a failure of the server itself is logged, not told.
pub(crate) fn failure(err: StoreError) -> UploadReply {
    let code = match &err {
        StoreError::UploadOffset { expected, .. } => {
            return UploadReply {
                offset: Some(*expected),
                ..UploadReply::failure(UploadErrorCode::Offset, err.to_string())
            };
        }
        StoreError::UploadBusy => UploadErrorCode::Busy,
        StoreError::UploadTooLarge { .. } | StoreError::TooLarge { .. } => {
            UploadErrorCode::TooLarge
        }
        StoreError::UploadLength(_) => UploadErrorCode::Length,
        StoreError::UploadIncomplete { .. } => UploadErrorCode::Incomplete,
        StoreError::NotFound => return not_found(),
        StoreError::Unavailable(_) | StoreError::Unsupported(_) => UploadErrorCode::Unavailable,
        _ => {
            tracing::error!(error = %err, "the store failed an upload command");
            return UploadReply::failure(UploadErrorCode::Unavailable, FAILED_REPLY);
        }
    };
    UploadReply::failure(code, err.to_string())
}

/// An upload's state as the protocol reports it.
pub(crate) fn state(info: &UploadInfo) -> UploadState {
    UploadState {
        id: info.id.to_string(),
        data_type: info.data_type,
        serialization: info.serialization,
        encrypted_in_transit: info.encrypted_in_transit,
        name: info.name.clone(),
        offset: info.offset,
        length: info.length,
        created_at: ferry_store::rfc3339(info.created_at),
        updated_at: ferry_store::rfc3339(info.updated_at),
        expires_at: ferry_store::rfc3339(info.expires_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_answer_with_their_code_and_never_a_path() {
        let offset = failure(StoreError::UploadOffset {
            expected: 96_000,
            given: 0,
        });
        assert_eq!(
            (offset.code, offset.offset),
            (Some(UploadErrorCode::Offset), Some(96_000))
        );
        assert_eq!(
            failure(StoreError::UploadBusy).code,
            Some(UploadErrorCode::Busy)
        );
        assert_eq!(
            failure(StoreError::NotFound).code,
            Some(UploadErrorCode::NotFound)
        );
        let io = failure(StoreError::Io {
            context: "writing",
            path: "/srv/ferry/uploads/x".into(),
            source: std::io::Error::from_raw_os_error(28),
        });
        assert_eq!(io.code, Some(UploadErrorCode::Unavailable));
        assert_eq!(io.error.as_deref(), Some(FAILED_REPLY));
    }
}
