//! The names both services use for an item's kind and serialization, documented
//! as enums in their OpenAPI documents (so typed clients get unions, not strings).
//!
//! They mirror the protocol's enums; the conversions are exhaustive matches, so a
//! new variant there fails to compile here.

use ferry_protocol::{DataType, Serialization};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Text or dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = DataType)]
pub enum ApiDataType {
    /// A text file.
    Text,
    /// A dictionary.
    Dictionary,
}

/// How an item's content is serialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = Serialization)]
pub enum ApiSerialization {
    /// Plain text.
    Txt,
    /// A Python pickle.
    Binary,
    /// JSON.
    Json,
    /// The legacy XML form.
    Xml,
}

impl From<DataType> for ApiDataType {
    fn from(value: DataType) -> ApiDataType {
        match value {
            DataType::Text => ApiDataType::Text,
            DataType::Dictionary => ApiDataType::Dictionary,
        }
    }
}

impl From<ApiDataType> for DataType {
    fn from(value: ApiDataType) -> DataType {
        match value {
            ApiDataType::Text => DataType::Text,
            ApiDataType::Dictionary => DataType::Dictionary,
        }
    }
}

impl From<Serialization> for ApiSerialization {
    fn from(value: Serialization) -> ApiSerialization {
        match value {
            Serialization::Txt => ApiSerialization::Txt,
            Serialization::Binary => ApiSerialization::Binary,
            Serialization::Json => ApiSerialization::Json,
            Serialization::Xml => ApiSerialization::Xml,
        }
    }
}

impl From<ApiSerialization> for Serialization {
    fn from(value: ApiSerialization) -> Serialization {
        match value {
            ApiSerialization::Txt => Serialization::Txt,
            ApiSerialization::Binary => Serialization::Binary,
            ApiSerialization::Json => Serialization::Json,
            ApiSerialization::Xml => Serialization::Xml,
        }
    }
}

impl ApiSerialization {
    /// The media type of content in this serialization.
    pub fn content_type(self) -> &'static str {
        match self {
            ApiSerialization::Txt => "text/plain; charset=utf-8",
            ApiSerialization::Binary => "application/x-python-pickle",
            ApiSerialization::Json => "application/json",
            ApiSerialization::Xml => "application/xml",
        }
    }

    /// The file name extension of content in this serialization.
    pub fn extension(self) -> &'static str {
        match self {
            ApiSerialization::Txt => "txt",
            ApiSerialization::Binary => "pkl",
            ApiSerialization::Json => "json",
            ApiSerialization::Xml => "xml",
        }
    }
}
