//! The JSON the API speaks: an item's metadata as listed, documented for OpenAPI.
//!
//! These mirror `ferry_store::ItemMeta` (the data type and serialization enums,
//! shared with the gateway, are `ferry_http`'s), and add what a client needs to
//! fetch the content (its media type and file name) and when the server's
//! retention rules expire the item.

use ferry_http::{ApiDataType, ApiSerialization};
use ferry_store::{ItemMeta, Retention};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// An item's id as the OpenAPI document describes it (the `id` path parameter and
/// the `cursor`): a ULID, 26 Crockford base-32 characters in any case, the first
/// at most `7`. Anything else is a 400, so the document says so.
#[derive(Debug)]
pub(crate) struct ItemIdSchema;

impl utoipa::PartialSchema for ItemIdSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .description(Some(
                "An item id: a ULID (26 Crockford base-32 characters, any case)",
            ))
            .pattern(Some("^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"))
            .examples(["01J9ZQ3V7X5K0M4N8P2R6T1W3Y"])
            .into()
    }
}

impl ToSchema for ItemIdSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "ItemId".into()
    }
}

/// A stored item's metadata.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Item {
    /// The item's id (a ULID; ids sort in the order items arrived).
    #[schema(value_type = String, example = "01J9ZQ3V7X5K0M4N8P2R6T1W3Y")]
    pub id: String,
    /// Text or dictionary.
    pub data_type: ApiDataType,
    /// How the content is serialized.
    pub serialization: ApiSerialization,
    /// Whether the transfer was Fernet-encrypted on the wire.
    pub encrypted_in_transit: bool,
    /// The sending peer, `ip:port`.
    #[schema(example = "127.0.0.1:50412")]
    pub peer: String,
    /// The file name the client announced, if any.
    pub name: Option<String>,
    /// When the item began to arrive (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: OffsetDateTime,
    /// Content size in bytes.
    pub size: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    /// The key the item is sealed with at rest: its own data key
    /// (`dk-FFFFFFFF-SSSSSSSS`, kept wrapped by the storage key, destroyed when
    /// the item is deleted), or the storage key's id for items stored before
    /// Ferry sealed each item with its own key.
    pub key_id: String,
    /// The media type `GET /api/items/{id}/content` answers with.
    #[schema(example = "application/json")]
    pub content_type: &'static str,
    /// The file name a download of the content is offered under.
    #[schema(example = "01J9ZQ3V7X5K0M4N8P2R6T1W3Y.json")]
    pub file_name: String,
    /// When the server's retention rules expire the item (RFC 3339); `null` if no
    /// rule names its kind and format. A held item is kept past it.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    /// Whether the item is on legal hold: it is neither expired nor deletable
    /// until released (`DELETE /api/items/{id}/hold`).
    pub held: bool,
}

impl Item {
    /// The item as the API shows it, its expiry under `retention`.
    pub fn new(meta: ItemMeta, retention: &Retention) -> Item {
        let serialization = ApiSerialization::from(meta.serialization);
        let file_name = file_name(&meta);
        let expires_at = retention.expires_at(&meta);
        Item {
            id: meta.id.to_string(),
            data_type: meta.data_type.into(),
            serialization,
            encrypted_in_transit: meta.encrypted_in_transit,
            peer: meta.peer,
            name: meta.name,
            received_at: meta.received_at,
            size: meta.size,
            sha256: meta.sha256,
            key_id: meta.key_id,
            content_type: serialization.content_type(),
            file_name,
            expires_at,
            held: meta.held,
        }
    }
}

/// The name a download is offered under: the announced name without any
/// directory part or control characters, else `<id>.<extension>`.
pub fn file_name(meta: &ItemMeta) -> String {
    let announced = meta.name.as_deref().map(|name| {
        let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
        base.chars().filter(|c| !c.is_control()).collect::<String>()
    });
    match announced {
        Some(name) if !name.is_empty() && name != "." && name != ".." => name,
        _ => format!(
            "{}.{}",
            meta.id,
            ApiSerialization::from(meta.serialization).extension()
        ),
    }
}
