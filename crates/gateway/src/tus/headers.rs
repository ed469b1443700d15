//! The tus headers: reading a request's (lengths, offsets, metadata, checksums)
//! and writing a response's (offsets, expiry dates, the stored item).

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use ferry_client::Receipt;
use ferry_protocol::upload::UploadState;
use sha1::Digest;

use super::error::TusError;

pub const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
pub const TUS_VERSION: HeaderName = HeaderName::from_static("tus-version");
pub const TUS_EXTENSION: HeaderName = HeaderName::from_static("tus-extension");
pub const TUS_MAX_SIZE: HeaderName = HeaderName::from_static("tus-max-size");
pub const TUS_CHECKSUM_ALGORITHM: HeaderName = HeaderName::from_static("tus-checksum-algorithm");
pub const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
pub const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
pub const UPLOAD_DEFER_LENGTH: HeaderName = HeaderName::from_static("upload-defer-length");
pub const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
pub const UPLOAD_CHECKSUM: HeaderName = HeaderName::from_static("upload-checksum");
pub const UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
pub const METHOD_OVERRIDE: HeaderName = HeaderName::from_static("x-http-method-override");
/// The stored item's id, once the last byte is committed and the item stored.
pub const ITEM_ID: HeaderName = HeaderName::from_static("ferry-item-id");
/// The stored item in the admin API: `{admin_url}/api/items/{id}`.
pub const ITEM_LOCATION: HeaderName = HeaderName::from_static("ferry-item-location");
/// The stored item's SHA-256 (hex), as the server computed it.
pub const ITEM_SHA256: HeaderName = HeaderName::from_static("ferry-item-sha256");

/// The media type of a body that is upload bytes.
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// Base64 that takes padded and unpadded text alike (clients differ).
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A header's value as text, if it is there.
fn text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, TusError> {
    headers
        .get(name)
        .map(|value| {
            value
                .to_str()
                .map(str::trim)
                .map_err(|_| TusError::bad_header(format!("{name} is not ASCII text")))
        })
        .transpose()
}

/// A header holding a non-negative decimal number.
pub fn number(headers: &HeaderMap, name: &HeaderName) -> Result<Option<u64>, TusError> {
    let Some(value) = text(headers, name)? else {
        return Ok(None);
    };
    match value.bytes().all(|b| b.is_ascii_digit()) {
        true => value.parse().map(Some).ok(),
        false => None,
    }
    .ok_or_else(|| {
        TusError::bad_header(format!(
            "{name} must be a non-negative decimal number, not {value:?}"
        ))
    })
}

/// The length a creation asks for: `Upload-Length`, or `None` with
/// `Upload-Defer-Length: 1`.
pub fn creation_length(headers: &HeaderMap) -> Result<Option<u64>, TusError> {
    let length = number(headers, &UPLOAD_LENGTH)?;
    let deferred = match text(headers, &UPLOAD_DEFER_LENGTH)? {
        None => false,
        Some("1") => true,
        Some(other) => {
            return Err(TusError::bad_header(format!(
                "Upload-Defer-Length must be 1, not {other:?}"
            )));
        }
    };
    match (length, deferred) {
        (Some(length), false) => Ok(Some(length)),
        (None, true) => Ok(None),
        (Some(_), true) => Err(TusError::bad_header(
            "give either Upload-Length or Upload-Defer-Length, not both",
        )),
        (None, false) => Err(TusError::bad_header(
            "Upload-Length (or Upload-Defer-Length: 1) is required",
        )),
    }
}

/// What `Upload-Metadata` tells the gateway: the item's name (`filename`, or
/// `name` as Uppy sends it) and whether to Fernet-encrypt it on the wire
/// (`encrypt`: `true` or `false`). Other keys are allowed and ignored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    pub name: Option<String>,
    pub encrypt: bool,
}

impl Metadata {
    pub fn parse(headers: &HeaderMap) -> Result<Metadata, TusError> {
        let mut metadata = Metadata::default();
        let mut name = None;
        let Some(value) = text(headers, &UPLOAD_METADATA)? else {
            return Ok(metadata);
        };
        for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, encoded) = pair.split_once(' ').unwrap_or((pair, ""));
            let bytes = LENIENT_BASE64.decode(encoded.trim()).map_err(|_| {
                TusError::bad_header(format!(
                    "Upload-Metadata: the value of {key:?} is not base64"
                ))
            })?;
            let value = String::from_utf8(bytes).map_err(|_| {
                TusError::bad_header(format!(
                    "Upload-Metadata: the value of {key:?} is not UTF-8"
                ))
            })?;
            match key {
                "filename" => metadata.name = Some(value),
                "name" => name = Some(value),
                "encrypt" => {
                    metadata.encrypt = match value.to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" | "" => false,
                        _ => {
                            return Err(TusError::bad_header(format!(
                                "Upload-Metadata: encrypt must be true or false, not {value:?}"
                            )));
                        }
                    }
                }
                _ => {}
            }
        }
        metadata.name = metadata.name.or(name).filter(|name| !name.is_empty());
        Ok(metadata)
    }

    /// `Upload-Metadata` for an upload's state, as `HEAD` reports it.
    pub fn of(upload: &UploadState) -> Option<HeaderValue> {
        let mut pairs = Vec::new();
        if let Some(name) = &upload.name {
            pairs.push(format!(
                "filename {}",
                general_purpose::STANDARD.encode(name)
            ));
        }
        if upload.encrypted_in_transit {
            pairs.push(format!(
                "encrypt {}",
                general_purpose::STANDARD.encode("true")
            ));
        }
        (!pairs.is_empty())
            .then(|| HeaderValue::try_from(pairs.join(",")).ok())
            .flatten()
    }
}

/// Whether the request's `Content-Type` is `application/offset+octet-stream`
/// (parameters aside).
pub fn is_upload_bytes(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM))
}

/// Whether the request may carry a body (a `Content-Length` above zero, or
/// one sent chunked).
pub fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(axum::http::header::TRANSFER_ENCODING)
        || ferry_http::extract::content_length(headers).is_some_and(|len| len > 0)
}

/// The checksum algorithms `Upload-Checksum` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
}

/// An `Upload-Checksum`: the algorithm and the digest the body must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: Algorithm,
    pub digest: Vec<u8>,
}

impl Checksum {
    /// The request's `Upload-Checksum`, if it has one: 400 for an algorithm
    /// other than `sha1` and `sha256`, or a digest that is not base64 of the
    /// algorithm's length.
    pub fn parse(headers: &HeaderMap) -> Result<Option<Checksum>, TusError> {
        let Some(value) = text(headers, &UPLOAD_CHECKSUM)? else {
            return Ok(None);
        };
        let (name, encoded) = value.split_once(' ').unwrap_or((value, ""));
        let (algorithm, len) = match name.to_ascii_lowercase().as_str() {
            "sha1" => (Algorithm::Sha1, 20),
            "sha256" => (Algorithm::Sha256, 32),
            _ => {
                return Err(TusError::bad_header(format!(
                    "Upload-Checksum: the algorithm {name:?} is not supported (sha1, sha256 are)"
                )));
            }
        };
        let digest = LENIENT_BASE64
            .decode(encoded.trim())
            .ok()
            .filter(|digest| digest.len() == len)
            .ok_or_else(|| {
                TusError::bad_header(format!(
                    "Upload-Checksum: the digest must be the base64 of {len} bytes"
                ))
            })?;
        Ok(Some(Checksum { algorithm, digest }))
    }

    /// A hasher for the algorithm.
    pub fn hasher(&self) -> Hasher {
        match self.algorithm {
            Algorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }
}

/// A digest being computed.
#[derive(Debug, Clone)]
pub enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha1(hasher) => hasher.update(bytes),
            Hasher::Sha256(hasher) => hasher.update(bytes),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha1(hasher) => hasher.finalize().to_vec(),
            Hasher::Sha256(hasher) => hasher.finalize().to_vec(),
        }
    }
}

/// An RFC 3339 time as an HTTP date (RFC 7231: `Wed, 02 Dec 2026 10:00:05 GMT`).
pub fn http_date(rfc3339: &str) -> Option<HeaderValue> {
    use time::format_description::well_known::Rfc3339;
    let at = time::OffsetDateTime::parse(rfc3339, &Rfc3339)
        .ok()?
        .to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    HeaderValue::try_from(at.format(&format).ok()?).ok()
}

/// `Upload-Offset` and `Upload-Expires` of an upload's state.
pub fn progress(headers: &mut HeaderMap, upload: &UploadState) {
    headers.insert(UPLOAD_OFFSET, HeaderValue::from(upload.offset));
    if let Some(expires) = http_date(&upload.expires_at) {
        headers.insert(UPLOAD_EXPIRES, expires);
    }
}

/// The headers naming the item a finished upload became.
pub fn stored_item(headers: &mut HeaderMap, admin_url: &str, receipt: &Receipt) {
    let Some(id) = receipt.id.as_deref() else {
        return;
    };
    let location = crate::created::item_location(admin_url, id);
    if let (Ok(id), Some(location)) = (HeaderValue::try_from(id), location) {
        headers.insert(ITEM_ID, id);
        headers.insert(ITEM_LOCATION, location);
    }
    if let Some(sha256) = receipt
        .sha256
        .as_deref()
        .and_then(|s| HeaderValue::try_from(s).ok())
    {
        headers.insert(ITEM_SHA256, sha256);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn metadata_takes_filename_and_encrypt_and_ignores_other_keys() {
        let parsed = Metadata::parse(&headers(&[(
            "upload-metadata",
            "filetype dGV4dC9wbGFpbg==,filename bm90ZXMgw6kudHh0,encrypt dHJ1ZQ,empty",
        )]))
        .unwrap();
        assert_eq!(
            parsed,
            Metadata {
                name: Some("notes é.txt".into()),
                encrypt: true
            }
        );
        let uppy = Metadata::parse(&headers(&[("upload-metadata", "name YS50eHQ=")])).unwrap();
        assert_eq!(uppy.name.as_deref(), Some("a.txt"));
        for bad in ["filename !!!", "encrypt bWF5YmU="] {
            let err = Metadata::parse(&headers(&[("upload-metadata", bad)])).unwrap_err();
            assert_eq!(err.status(), 400, "{bad}");
        }
    }

    #[test]
    fn a_creation_has_exactly_one_of_the_two_lengths() {
        assert_eq!(
            creation_length(&headers(&[("upload-length", "12")])).unwrap(),
            Some(12)
        );
        assert_eq!(
            creation_length(&headers(&[("upload-defer-length", "1")])).unwrap(),
            None
        );
        for bad in [
            &[][..],
            &[("upload-length", "-1")],
            &[("upload-length", "1e3")],
            &[("upload-defer-length", "2")],
            &[("upload-length", "5"), ("upload-defer-length", "1")],
        ] {
            assert_eq!(
                creation_length(&headers(bad)).unwrap_err().status(),
                400,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn checksums_name_a_known_algorithm_and_a_digest_of_its_length() {
        let sha1 = Checksum::parse(&headers(&[(
            "upload-checksum",
            "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(sha1.algorithm, Algorithm::Sha1);
        let mut hasher = sha1.hasher();
        hasher.update(b"hello world");
        assert_eq!(hasher.finish(), sha1.digest);
        for bad in [
            "md5 AAAA",
            "sha256 Kq5sNclPz7QV2+lfQIuc6R7oRu0=",
            "sha1",
            "sha1 ***",
        ] {
            let err = Checksum::parse(&headers(&[("upload-checksum", bad)])).unwrap_err();
            assert_eq!(err.status(), 400, "{bad}");
        }
    }

    #[test]
    fn expiry_dates_are_http_dates() {
        assert_eq!(
            http_date("2026-12-02T10:00:05.123+01:00").unwrap(),
            "Wed, 02 Dec 2026 09:00:05 GMT"
        );
        assert_eq!(http_date("yesterday"), None);
    }

    #[test]
    fn the_content_type_of_upload_bytes_is_matched_without_its_parameters() {
        assert!(is_upload_bytes(&headers(&[(
            "content-type",
            "Application/Offset+Octet-Stream; charset=x"
        )])));
        assert!(!is_upload_bytes(&headers(&[(
            "content-type",
            "application/octet-stream"
        )])));
        assert!(!is_upload_bytes(&headers(&[])));
    }
}
