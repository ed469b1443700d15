//! Resumable uploads of the local store (being written).

use std::sync::Arc;

use time::OffsetDateTime;

use super::Shared;
use crate::{ItemMeta, NewItem, StoreError, UploadAppender, UploadId, UploadInfo};

fn pending() -> StoreError {
    StoreError::Unavailable("resumable uploads are not available yet".into())
}

pub(crate) async fn create(
    _shared: &Arc<Shared>,
    _item: NewItem,
    _length: Option<u64>,
) -> Result<UploadInfo, StoreError> {
    Err(pending())
}

pub(crate) async fn info(_shared: &Arc<Shared>, _id: UploadId) -> Result<Option<UploadInfo>, StoreError> {
    Err(pending())
}

pub(crate) async fn set_length(
    _shared: &Arc<Shared>,
    _id: UploadId,
    _length: u64,
) -> Result<UploadInfo, StoreError> {
    Err(pending())
}

pub(crate) async fn append(
    _shared: &Arc<Shared>,
    _id: UploadId,
    _offset: u64,
) -> Result<Box<dyn UploadAppender>, StoreError> {
    Err(pending())
}

pub(crate) async fn finish(_shared: Arc<Shared>, _id: UploadId) -> Result<ItemMeta, StoreError> {
    Err(pending())
}

pub(crate) async fn cancel(_shared: &Arc<Shared>, _id: UploadId) -> Result<bool, StoreError> {
    Err(pending())
}

pub(crate) async fn list(_shared: &Arc<Shared>) -> Result<Vec<UploadInfo>, StoreError> {
    Err(pending())
}

pub(crate) async fn expire(_shared: &Arc<Shared>, _now: OffsetDateTime) -> Result<u64, StoreError> {
    Err(pending())
}
