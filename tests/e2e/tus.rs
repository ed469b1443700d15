//! tus 1.0.0 on the real `ferry-gateway` in front of the real `ferry-server`, over
//! raw HTTP: each case of the protocol and its extensions (creation,
//! creation-with-upload, creation-defer-length, termination, checksum,
//! expiration), racing requests, a request cut mid-way, a restarted gateway,
//! encryption on the TCP hop, CORS and the token. Every stored item is read back
//! from the admin API and compared byte for byte.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use ferry_crypto::FernetKey;
use reqwest::{Method, Response};
use sha2::{Digest, Sha256};

use crate::harness::gateway::{Gateway, Proxy, TOKEN, wire_transfers};
use crate::harness::wait_until;
use crate::harness::{Running, Server, bin};

const OFFSET_STREAM: &str = "application/offset+octet-stream";

/// Distinct bytes for a test: no two offsets of a short run look alike.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7 + i / 251) as u8).wrapping_add(seed))
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

fn offset_of(response: &Response) -> u64 {
    header(response, "upload-offset")
        .unwrap_or_else(|| panic!("no Upload-Offset in {response:?}"))
        .parse()
        .unwrap()
}

/// A raw tus client of one gateway.
#[derive(Debug, Clone)]
struct Tus {
    url: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Tus {
    fn of(gateway: &Gateway) -> Tus {
        Tus {
            url: gateway.url.clone(),
            http: gateway.http.clone(),
            token: Some(TOKEN.into()),
        }
    }

    /// A request with `Tus-Resumable: 1.0.0` and the token.
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("Tus-Resumable", "1.0.0");
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Creates an upload of `length` bytes; its location (`/uploads/ID`).
    async fn create(&self, length: u64, metadata: &str) -> String {
        let response = self
            .request(Method::POST, "/uploads")
            .header("Upload-Length", length)
            .header("Upload-Metadata", metadata)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        let location = header(&response, "location").expect("a Location");
        assert!(location.starts_with("/uploads/"), "{location}");
        location
    }

    async fn patch(&self, location: &str, offset: u64, body: impl Into<reqwest::Body>) -> Response {
        self.request(Method::PATCH, location)
            .header("Upload-Offset", offset)
            .header("Content-Type", OFFSET_STREAM)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn head(&self, location: &str) -> Response {
        self.request(Method::HEAD, location).send().await.unwrap()
    }

    /// The committed offset, as HEAD reports it.
    async fn offset(&self, location: &str) -> u64 {
        let response = self.head(location).await;
        assert_eq!(response.status(), 200, "HEAD {location}");
        offset_of(&response)
    }
}

/// `filename` (and `encrypt`) as `Upload-Metadata`.
fn metadata(name: &str, encrypt: bool) -> String {
    let mut pairs = format!("filename {}", BASE64.encode(name));
    if encrypt {
        pairs.push_str(&format!(",encrypt {}", BASE64.encode("true")));
    }
    pairs
}

/// Checks the completion headers against the stored item, and that the item
/// reads back as `expected`; returns its id.
async fn assert_stored(server: &Server, response: &Response, expected: &[u8]) -> String {
    let id = header(response, "ferry-item-id")
        .unwrap_or_else(|| panic!("no Ferry-Item-Id in {response:?}"));
    assert_eq!(
        header(response, "ferry-item-location"),
        Some(format!("{}/api/items/{id}", server.admin_url()))
    );
    assert_eq!(
        header(response, "ferry-item-sha256"),
        Some(sha256_hex(expected))
    );
    let admin = server.admin();
    let item = admin.get_json(&format!("/api/items/{id}")).await;
    assert_eq!(item["size"], expected.len(), "{item}");
    assert_eq!(item["sha256"], sha256_hex(expected).as_str(), "{item}");
    assert!(
        admin.content(&id).await == expected,
        "the item's content differs"
    );
    id
}

/// The admin API's unfinished uploads.
async fn unfinished_uploads(server: &Server) -> Vec<serde_json::Value> {
    let listed = server.admin().get_json("/api/uploads").await;
    listed["uploads"].as_array().cloned().unwrap_or_default()
}

/// A body that sends what it is given, and fails (the request cut) when told.
fn controlled_body() -> (
    futures::channel::mpsc::UnboundedSender<std::io::Result<Bytes>>,
    reqwest::Body,
) {
    let (sender, receiver) = futures::channel::mpsc::unbounded::<std::io::Result<Bytes>>();
    (sender, reqwest::Body::wrap_stream(receiver))
}

#[tokio::test]
async fn options_lists_exactly_what_is_implemented() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &["--max-file-bytes", "5000000"]);
    // No token, no Tus-Resumable: OPTIONS only says what the server supports.
    for path in ["/uploads", "/uploads/01JQ3V7ZK9T6N2XQ8W4R5B1C0D"] {
        let response = gateway
            .http
            .request(Method::OPTIONS, format!("{}{path}", gateway.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "{path}");
        assert_eq!(header(&response, "tus-version").as_deref(), Some("1.0.0"));
        assert_eq!(header(&response, "tus-resumable").as_deref(), Some("1.0.0"));
        assert_eq!(
            header(&response, "tus-extension").as_deref(),
            Some(
                "creation,creation-with-upload,creation-defer-length,termination,checksum,expiration"
            )
        );
        assert_eq!(
            header(&response, "tus-max-size").as_deref(),
            Some("5000000")
        );
        assert_eq!(
            header(&response, "tus-checksum-algorithm").as_deref(),
            Some("sha1,sha256")
        );
    }
}

#[tokio::test]
async fn creation_answers_201_with_a_location_that_head_reports_at_offset_0() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let tus = Tus::of(&gateway);
    let location = tus.create(1000, &metadata("notes é.txt", false)).await;
    let head = tus.head(&location).await;
    assert_eq!(head.status(), 200);
    assert_eq!(offset_of(&head), 0);
    assert_eq!(header(&head, "upload-length").as_deref(), Some("1000"));
    assert_eq!(header(&head, "cache-control").as_deref(), Some("no-store"));
    assert_eq!(header(&head, "tus-resumable").as_deref(), Some("1.0.0"));
    assert_eq!(
        header(&head, "upload-metadata"),
        Some(format!("filename {}", BASE64.encode("notes é.txt")))
    );
    // The upload is the server's: the admin API lists it, named.
    let id = location.trim_start_matches("/uploads/");
    let uploads = unfinished_uploads(&server).await;
    let listed = uploads
        .iter()
        .find(|u| u["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {uploads:?}"));
    assert_eq!(listed["name"], "notes é.txt");

    // A creation needs a length (or Upload-Defer-Length: 1), within Tus-Max-Size.
    let bad = [
        vec![],
        vec![("Upload-Length", "-5")],
        vec![("Upload-Length", "5"), ("Upload-Defer-Length", "1")],
        vec![("Upload-Defer-Length", "yes")],
        vec![("Upload-Length", "5"), ("Upload-Metadata", "filename %%%")],
    ];
    for headers in bad {
        let mut request = tus.request(Method::POST, "/uploads");
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{headers:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["status"], 400, "{body}");
    }
}

#[tokio::test]
async fn an_upload_larger_than_tus_max_size_is_refused_with_413() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &["--max-file-bytes", "1000"]);
    let tus = Tus::of(&gateway);
    let response = tus
        .request(Method::POST, "/uploads")
        .header("Upload-Length", "1001")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    // Past the upload's own length: 413, nothing appended.
    let location = tus.create(10, "").await;
    let response = tus.patch(&location, 0, vec![1u8; 11]).await;
    assert_eq!(response.status(), 413);
    assert_eq!(tus.offset(&location).await, 0);
}

#[tokio::test]
async fn creation_with_upload_commits_the_body_and_a_whole_one_is_stored() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let tus = Tus::of(&gateway);
    let file = data(300_000, 1);

    // Part of the file on the POST, the rest with a PATCH.
    let response = tus
        .request(Method::POST, "/uploads")
        .header("Upload-Length", file.len())
        .header("Content-Type", OFFSET_STREAM)
        .body(file[..100_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(offset_of(&response), 100_000);
    assert_eq!(header(&response, "ferry-item-id"), None);
    let location = header(&response, "location").unwrap();
    assert_eq!(tus.offset(&location).await, 100_000);
    let response = tus
        .patch(&location, 100_000, file[100_000..].to_vec())
        .await;
    assert_eq!(response.status(), 204);
    assert_stored(&server, &response, &file).await;

    // The whole file on the POST: stored at once.
    let response = tus
        .request(Method::POST, "/uploads")
        .header("Upload-Length", file.len())
        .header("Upload-Metadata", metadata("whole.bin", false))
        .header("Content-Type", OFFSET_STREAM)
        .body(file.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(offset_of(&response), file.len() as u64);
    let id = assert_stored(&server, &response, &file).await;
    let item = server.admin().get_json(&format!("/api/items/{id}")).await;
    assert_eq!(item["name"], "whole.bin", "{item}");

    // A body that is not upload bytes is refused.
    let response = tus
        .request(Method::POST, "/uploads")
        .header("Upload-Length", 3)
        .header("Content-Type", "text/plain")
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
}

#[tokio::test]
async fn a_deferred_length_is_set_by_a_later_patch() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let tus = Tus::of(&gateway);
    let file = data(70_000, 2);
    let response = tus
        .request(Method::POST, "/uploads")
        .header("Upload-Defer-Length", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = header(&response, "location").unwrap();
    let head = tus.head(&location).await;
    assert_eq!(header(&head, "upload-defer-length").as_deref(), Some("1"));
    assert_eq!(header(&head, "upload-length"), None);

    // Bytes before the length is known, then the length with the rest.
    let response = tus.patch(&location, 0, file[..30_000].to_vec()).await;
    assert_eq!(response.status(), 204);
    assert_eq!(offset_of(&response), 30_000);
    assert_eq!(header(&response, "ferry-item-id"), None);
    let response = tus
        .request(Method::PATCH, &location)
        .header("Upload-Offset", 30_000)
        .header("Upload-Length", file.len())
        .header("Content-Type", OFFSET_STREAM)
        .body(file[30_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_stored(&server, &response, &file).await;
}

#[tokio::test]
async fn head_reports_each_committed_offset_and_a_wrong_offset_is_409() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let tus = Tus::of(&gateway);
    let file = data(250_000, 3);
    let location = tus.create(file.len() as u64, "").await;
    let mut offset = 0usize;
    for end in [1, 50_000, 200_000] {
        let response = tus
            .patch(&location, offset as u64, file[offset..end].to_vec())
            .await;
        assert_eq!(response.status(), 204);
        assert_eq!(offset_of(&response), end as u64);
        assert_eq!(tus.offset(&location).await, end as u64);
        offset = end;
    }
    // Behind and ahead of the committed offset: 409 naming it, nothing appended.
    for wrong in [0u64, 150_000, 200_001] {
        let response = tus.patch(&location, wrong, file[..10].to_vec()).await;
        assert_eq!(response.status(), 409, "offset {wrong}");
        assert_eq!(offset_of(&response), 200_000);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "offset_mismatch", "{body}");
    }
    assert_eq!(tus.offset(&location).await, 200_000);
    // A PATCH without Upload-Offset is malformed.
    let response = tus
        .request(Method::PATCH, &location)
        .header("Content-Type", OFFSET_STREAM)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = tus
        .patch(&location, 200_000, file[200_000..].to_vec())
        .await;
    assert_eq!(response.status(), 204);
    assert_stored(&server, &response, &file).await;
}

#[tokio::test]
async fn a_patch_that_is_not_offset_octet_stream_is_415() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let tus = Tus::of(&gateway);
    let location = tus.create(10, "").await;
    for content_type in [Some("application/octet-stream"), Some("text/plain"), None] {
        let mut request = tus
            .request(Method::PATCH, &location)
            .header("Upload-Offset", 0)
            .body("abc");
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 415, "{content_type:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["status"], 415, "{body}");
    }
    assert_eq!(tus.offset(&location).await, 0);
}

#[tokio::test]
async fn another_tus_version_is_412_with_tus_version() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let tus = Tus::of(&gateway);
    let location = tus.create(10, "").await;
    for version in [Some("0.2.2"), Some("2.0.0"), None] {
        for method in [Method::POST, Method::HEAD, Method::PATCH, Method::DELETE] {
            let path = if method == Method::POST {
                "/uploads"
            } else {
                location.as_str()
            };
            let mut request = gateway
                .http
                .request(method.clone(), format!("{}{path}", gateway.url))
                .bearer_auth(TOKEN)
                .header("Upload-Length", 5)
                .header("Upload-Offset", 0)
                .header("Content-Type", OFFSET_STREAM);
            if let Some(version) = version {
                request = request.header("Tus-Resumable", version);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 412, "{method} with {version:?}");
            assert_eq!(header(&response, "tus-version").as_deref(), Some("1.0.0"));
            assert_eq!(header(&response, "tus-resumable").as_deref(), Some("1.0.0"));
        }
    }
    // Nothing was changed or created.
    assert_eq!(tus.offset(&location).await, 0);
    assert_eq!(unfinished_uploads(&server).await.len(), 1);
}

#[tokio::test]
async fn checksums_keep_a_matching_chunk_and_discard_a_mismatched_one() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let tus = Tus::of(&gateway);
    // Pieces of more than one 48,000-byte packet, and of less.
    let file = data(400_000, 4);
    let location = tus.create(file.len() as u64, "").await;
    let plan = [
        (0, 150_000, "sha1"),
        (150_000, 150_100, "sha256"),
        (150_100, 400_000, "sha1"),
    ];
    for (start, end, algorithm) in plan {
        let chunk = &file[start..end];
        let checksum = |bytes: &[u8]| {
            let digest = match algorithm {
                "sha1" => sha1_digest(bytes),
                _ => Sha256::digest(bytes).to_vec(),
            };
            format!("{algorithm} {}", BASE64.encode(digest))
        };
        // The digest of other bytes (the chunk with one byte changed): 460,
        // nothing kept, the offset unchanged.
        let mut changed = chunk.to_vec();
        changed[chunk.len() / 2] ^= 0xff;
        let response = tus
            .request(Method::PATCH, &location)
            .header("Upload-Offset", start)
            .header("Content-Type", OFFSET_STREAM)
            .header("Upload-Checksum", checksum(chunk))
            .body(changed)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 460, "{start}..{end}");
        assert_eq!(offset_of(&response), start as u64);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "checksum_mismatch", "{body}");
        assert_eq!(tus.offset(&location).await, start as u64);
        // The right bytes: kept.
        let response = tus
            .request(Method::PATCH, &location)
            .header("Upload-Offset", start)
            .header("Content-Type", OFFSET_STREAM)
            .header("Upload-Checksum", checksum(chunk))
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "{start}..{end}");
        assert_eq!(offset_of(&response), end as u64);
        if end == file.len() {
            assert_stored(&server, &response, &file).await;
        }
    }

    // An algorithm other than sha1 and sha256, or a malformed digest: 400.
    let other = tus.create(3, "").await;
    for checksum in ["md5 rL0Y20zC+Fzt72VPzMSk2A==", "sha256 AAAA", "sha1"] {
        let response = tus
            .request(Method::PATCH, &other)
            .header("Upload-Offset", 0)
            .header("Content-Type", OFFSET_STREAM)
            .header("Upload-Checksum", checksum)
            .body("abc")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{checksum}");
    }
    assert_eq!(tus.offset(&other).await, 0);
    // An empty body has a digest too.
    for (digest_of, status) in [(&b"x"[..], 460), (&b""[..], 204)] {
        let response = tus
            .request(Method::PATCH, &other)
            .header("Upload-Offset", 0)
            .header("Content-Type", OFFSET_STREAM)
            .header(
                "Upload-Checksum",
                format!("sha1 {}", BASE64.encode(sha1_digest(digest_of))),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(offset_of(&response), 0);
    }
}

fn sha1_digest(bytes: &[u8]) -> Vec<u8> {
    use sha1::Digest as _;
    sha1::Sha1::digest(bytes).to_vec()
}

/// An RFC 7231 date as seconds since the epoch.
fn parse_http_date(text: &str) -> i64 {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text, &format)
        .unwrap_or_else(|err| panic!("{text:?} is not an HTTP date: {err}"))
        .assume_utc()
        .unix_timestamp()
}

#[tokio::test]
async fn upload_expires_is_an_http_date_one_ttl_after_the_last_activity() {
    let server = Server::start(&["--upload-ttl", "7200"]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let tus = Tus::of(&gateway);
    let now = || time::OffsetDateTime::now_utc().unix_timestamp();
    let before = now();
    let response = tus
        .request(Method::POST, "/uploads")
        .header("Upload-Length", 10)
        .send()
        .await
        .unwrap();
    let after = now();
    let expires = parse_http_date(&header(&response, "upload-expires").expect("Upload-Expires"));
    assert!(
        (before + 7200 - 1..=after + 7200 + 1).contains(&expires),
        "{expires} not about {before} + 7200"
    );
    let location = header(&response, "location").unwrap();
    let before = now();
    let response = tus.patch(&location, 0, "abcde").await;
    let after = now();
    let expires = parse_http_date(&header(&response, "upload-expires").expect("Upload-Expires"));
    assert!((before + 7200 - 1..=after + 7200 + 1).contains(&expires));
}

#[tokio::test]
async fn termination_cancels_the_upload_and_it_is_then_404() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let tus = Tus::of(&gateway);
    let location = tus.create(100, "").await;
    assert_eq!(tus.patch(&location, 0, vec![7u8; 40]).await.status(), 204);
    let response = tus.request(Method::DELETE, &location).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(header(&response, "tus-resumable").as_deref(), Some("1.0.0"));
    assert_eq!(tus.head(&location).await.status(), 404);
    assert_eq!(tus.patch(&location, 40, vec![7u8; 60]).await.status(), 404);
    assert_eq!(
        tus.request(Method::DELETE, &location)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert!(unfinished_uploads(&server).await.is_empty());
    assert!(server.admin().all_items().await.is_empty());
    // An id the server never gave is 404 too.
    for path in ["/uploads/01JQ3V7ZK9T6N2XQ8W4R5B1C0D", "/uploads/not-an-id"] {
        assert_eq!(tus.head(path).await.status(), 404, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_patches_never_interleave_one_wins_the_other_is_409_or_423() {
    let server = Server::start(&[]);
    // The first gateway talks through a recording proxy: the test sees when
    // its append is on the wire.
    let proxy = Proxy::start(&server.tcp()).await;
    let first_gateway = Gateway::start(&server, &proxy.addr, &[]);
    let second_gateway = Gateway::start(&server, &server.tcp(), &[]);
    let file = data(1_000_000, 5);

    // Through one gateway and through two (then the server's own exclusive
    // appends decide): the first PATCH holds its append open (half its body
    // sent) while the second tries the same offset.
    for (label, second) in [
        ("one gateway", &first_gateway),
        ("two gateways", &second_gateway),
    ] {
        let tus = Tus::of(&first_gateway);
        let other = Tus::of(second);
        let location = tus.create(file.len() as u64, "").await;
        let wired = proxy.recorded().iter().map(Vec::len).sum::<usize>();
        let (sender, body) = controlled_body();
        sender
            .unbounded_send(Ok(Bytes::copy_from_slice(&file[..500_000])))
            .unwrap();
        let first = tokio::spawn({
            let (tus, location) = (tus.clone(), location.clone());
            async move { tus.patch(&location, 0, body).await }
        });
        // Nine whole packets of the first PATCH's append reached the server
        // (the tenth waits to know whether it is the last).
        wait_until(Duration::from_secs(10), async || {
            let sent = proxy.recorded().iter().map(Vec::len).sum::<usize>() - wired;
            match sent >= 9 * 48_000 {
                true => Ok(()),
                false => Err(format!("{sent} bytes on the wire")),
            }
        })
        .await;
        let response = other.patch(&location, 0, file.clone()).await;
        let status = response.status().as_u16();
        assert!(
            status == 423 || status == 409,
            "{label}: the second PATCH got {status}"
        );
        sender
            .unbounded_send(Ok(Bytes::copy_from_slice(&file[500_000..])))
            .unwrap();
        drop(sender);
        let response = first.await.unwrap();
        assert_eq!(response.status(), 204, "{label}");
        assert_stored(&server, &response, &file).await;
    }

    // Both at once on one gateway, whole bodies: one wins, the item is the file.
    let tus = Tus::of(&first_gateway);
    let location = tus.create(file.len() as u64, "").await;
    let other = tus.clone();
    let (a, b) = tokio::join!(
        tus.patch(&location, 0, file.clone()),
        other.patch(&location, 0, file.clone())
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert!(
        statuses == [204, 409] || statuses == [204, 423],
        "racing PATCHes got {statuses:?}"
    );
    let winner = if a.status() == 204 { a } else { b };
    assert_stored(&server, &winner, &file).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_cut_mid_way_keeps_every_append_already_committed() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &["--tus-chunk-bytes", "65536"]);
    let tus = Tus::of(&gateway);
    let file = data(500_000, 6);
    let location = tus.create(file.len() as u64, "").await;

    let (sender, body) = controlled_body();
    sender
        .unbounded_send(Ok(Bytes::copy_from_slice(&file[..200_000])))
        .unwrap();
    let cut = tokio::spawn({
        let (tus, location) = (tus.clone(), location.clone());
        async move {
            tus.request(Method::PATCH, &location)
                .header("Upload-Offset", 0)
                .header("Content-Type", OFFSET_STREAM)
                .body(body)
                .send()
                .await
        }
    });
    // Three whole appends of 65,536 bytes are committed; the fourth is open.
    wait_until(Duration::from_secs(20), async || {
        match tus.offset(&location).await {
            196_608 => Ok(()),
            other => Err(format!("offset {other}")),
        }
    })
    .await;
    sender
        .unbounded_send(Err(std::io::Error::other("the link went down")))
        .unwrap();
    assert!(cut.await.unwrap().is_err(), "the cut request got an answer");

    // The committed appends stay; the one in flight is gone.
    let offset = wait_until(Duration::from_secs(10), async || {
        let response = tus.head(&location).await;
        match response.status().as_u16() {
            200 => Ok(offset_of(&response)),
            other => Err(format!("HEAD {other}")),
        }
    })
    .await;
    assert_eq!(offset, 196_608);
    let response = tus
        .patch(&location, offset, file[offset as usize..].to_vec())
        .await;
    assert_eq!(response.status(), 204);
    assert_stored(&server, &response, &file).await;
}

#[tokio::test]
async fn completion_names_the_item_and_a_later_head_still_does() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &["--tus-chunk-bytes", "100000"]);
    let tus = Tus::of(&gateway);
    let file = data(3_000_000, 7);
    let location = tus
        .create(file.len() as u64, &metadata("big.bin", false))
        .await;
    let mut offset = 0;
    let mut last = None;
    for end in [1_000_000, 2_500_000, 3_000_000] {
        let response = tus
            .patch(&location, offset as u64, file[offset..end].to_vec())
            .await;
        assert_eq!(response.status(), 204);
        assert_eq!(offset_of(&response), end as u64);
        if end < file.len() {
            assert_eq!(header(&response, "ferry-item-id"), None);
        }
        offset = end;
        last = Some(response);
    }
    let done = last.unwrap();
    let id = assert_stored(&server, &done, &file).await;
    // Streamed from the admin API: byte-identical, and its SHA-256 the file's.
    let (size, digest) = server.admin().content_digest(&id).await;
    assert_eq!((size, digest), (file.len() as u64, sha256_hex(&file)));

    let head = tus.head(&location).await;
    assert_eq!(head.status(), 200);
    assert_eq!(offset_of(&head), file.len() as u64);
    assert_eq!(header(&head, "upload-length"), Some(file.len().to_string()));
    assert_eq!(header(&head, "ferry-item-id"), Some(id.clone()));
    assert_eq!(
        header(&head, "ferry-item-location"),
        Some(format!("{}/api/items/{id}", server.admin_url()))
    );
    // A PATCH on it: the upload is gone, being an item now.
    let response = tus.patch(&location, file.len() as u64, Vec::new()).await;
    assert_eq!(response.status(), 410);
    assert_eq!(server.admin().all_items().await.len(), 1);
    assert!(unfinished_uploads(&server).await.is_empty());

    // The gateway counted it.
    let metrics = gateway
        .http
        .get(format!("{}/metrics", gateway.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "ferry_gateway_tus_uploads_finished_total 1".to_owned(),
        format!("ferry_gateway_tus_committed_bytes_total {}", file.len()),
        r#"ferry_gateway_tus_requests_total{method="PATCH",status="204"} 3"#.to_owned(),
        r#"ferry_gateway_tus_requests_total{method="PATCH",status="410"} 1"#.to_owned(),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn a_zero_byte_upload_is_stored_at_creation() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let response = Tus::of(&gateway)
        .request(Method::POST, "/uploads")
        .header("Upload-Length", 0)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_stored(&server, &response, b"").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypt_metadata_sends_fernet_tokens_and_needs_a_key() {
    let server = Server::start(&[]);
    let proxy = Proxy::start(&server.tcp()).await;
    let gateway = Gateway::start(&server, &proxy.addr, &[]);
    let tus = Tus::of(&gateway);
    let key = FernetKey::load(&server.fernet_key_file()).unwrap();
    let file = data(120_000, 8);
    let location = tus
        .create(file.len() as u64, &metadata("secret.txt", true))
        .await;
    let head = tus.head(&location).await;
    assert!(
        header(&head, "upload-metadata")
            .unwrap()
            .contains(&format!("encrypt {}", BASE64.encode("true"))),
        "{head:?}"
    );
    let response = tus.patch(&location, 0, file.clone()).await;
    assert_eq!(response.status(), 204);
    let id = assert_stored(&server, &response, &file).await;
    let item = server.admin().get_json(&format!("/api/items/{id}")).await;
    assert_eq!(item["encrypted_in_transit"], true, "{item}");
    // On the wire, every packet of the append was a token of the server's key.
    let transfers: Vec<_> = proxy
        .recorded()
        .iter()
        .flat_map(|c| wire_transfers(c))
        .collect();
    assert!(!transfers.is_empty());
    let mut carried = Vec::new();
    for transfer in &transfers {
        assert!(transfer.meta.encrypted());
        carried.extend(transfer.plaintext(&key));
    }
    assert!(carried == file, "the wire carried other bytes");

    // Without a Fernet key the gateway refuses encrypt, as POST /file does.
    let keyless = Running::start(
        &bin("ferry-gateway"),
        &["--listen", "127.0.0.1:0", "--server", &server.tcp()],
        &[],
        &["gateway"],
    );
    let tus = Tus {
        url: format!("http://{}", keyless.addr("gateway")),
        http: gateway.http.clone(),
        token: None,
    };
    let response = tus
        .request(Method::POST, "/uploads")
        .header("Upload-Length", 10)
        .header("Upload-Metadata", metadata("secret.txt", true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "encryption_unavailable", "{body}");
}

#[tokio::test]
async fn a_restarted_gateway_continues_an_upload() {
    let server = Server::start(&[]);
    let file = data(200_000, 9);
    let mut first = Gateway::start(&server, &server.tcp(), &[]);
    let tus = Tus::of(&first);
    let location = tus
        .create(file.len() as u64, &metadata("resumed.bin", false))
        .await;
    assert_eq!(
        tus.patch(&location, 0, file[..80_000].to_vec())
            .await
            .status(),
        204
    );
    first.running.kill();

    let second = Gateway::start(&server, &server.tcp(), &[]);
    let tus = Tus::of(&second);
    assert_eq!(tus.offset(&location).await, 80_000);
    let response = tus.patch(&location, 80_000, file[80_000..].to_vec()).await;
    assert_eq!(response.status(), 204);
    let id = assert_stored(&server, &response, &file).await;
    let item = server.admin().get_json(&format!("/api/items/{id}")).await;
    assert_eq!(item["name"], "resumed.bin");
}

#[tokio::test]
async fn cors_headers_only_for_a_configured_origin() {
    let server = Server::start(&[]);
    let with = Gateway::start(
        &server,
        &server.tcp(),
        &[
            "--cors-origin",
            "http://app.test",
            "--cors-origin",
            "http://other.test",
        ],
    );
    let without = Gateway::start(&server, &server.tcp(), &[]);
    let preflight = |gateway: &Gateway, origin: &str| {
        gateway
            .http
            .request(
                Method::OPTIONS,
                format!("{}/uploads/01JQ3V7ZK9T6N2XQ8W4R5B1C0D", gateway.url),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "PATCH")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type,tus-resumable,upload-offset,upload-checksum",
            )
            .send()
    };

    let response = preflight(&with, "http://app.test").await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some("http://app.test")
    );
    let methods = header(&response, "access-control-allow-methods")
        .unwrap()
        .to_lowercase();
    assert!(
        methods.contains("patch") && methods.contains("head") && methods.contains("delete"),
        "{methods}"
    );
    let allowed = header(&response, "access-control-allow-headers")
        .unwrap()
        .to_lowercase();
    for name in [
        "authorization",
        "tus-resumable",
        "upload-offset",
        "upload-length",
        "upload-metadata",
        "upload-checksum",
        "upload-defer-length",
    ] {
        assert!(allowed.contains(name), "{name} not in {allowed}");
    }

    // An actual request from the origin exposes the tus headers to the page.
    let response = Tus::of(&with)
        .request(Method::POST, "/uploads")
        .header("Origin", "http://other.test")
        .header("Upload-Length", 3)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some("http://other.test")
    );
    let exposed = header(&response, "access-control-expose-headers")
        .unwrap()
        .to_lowercase();
    for name in [
        "location",
        "upload-offset",
        "upload-length",
        "tus-resumable",
        "tus-version",
        "upload-expires",
        "ferry-item-id",
        "ferry-item-location",
    ] {
        assert!(exposed.contains(name), "{name} not in {exposed}");
    }

    // An origin not listed, and a gateway with none: no CORS headers.
    for (gateway, origin) in [(&with, "http://evil.test"), (&without, "http://app.test")] {
        let response = preflight(gateway, origin).await.unwrap();
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            None,
            "{origin}"
        );
        let response = Tus::of(gateway)
            .request(Method::POST, "/uploads")
            .header("Origin", origin)
            .header("Upload-Length", 3)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            None,
            "{origin}"
        );
    }
    // Without origins the gateway has no CORS layer at all.
    let response = Tus::of(&without)
        .request(Method::HEAD, "/uploads/01JQ3V7ZK9T6N2XQ8W4R5B1C0D")
        .header("Origin", "http://app.test")
        .send()
        .await
        .unwrap();
    let cors: Vec<_> = response
        .headers()
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "{cors:?}");
}

#[tokio::test]
async fn the_gateway_token_is_required_for_every_upload_request() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let tus = Tus::of(&gateway);
    let location = tus.create(10, "").await;
    for token in [None, Some("wrong-token")] {
        let anonymous = Tus {
            token: token.map(str::to_owned),
            ..tus.clone()
        };
        let requests = [
            anonymous
                .request(Method::POST, "/uploads")
                .header("Upload-Length", 5),
            anonymous.request(Method::HEAD, &location),
            anonymous
                .request(Method::PATCH, &location)
                .header("Upload-Offset", 0)
                .header("Content-Type", OFFSET_STREAM)
                .body("abc"),
            anonymous.request(Method::DELETE, &location),
        ];
        for request in requests {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{token:?}: {response:?}");
            assert!(header(&response, "www-authenticate").is_some());
        }
    }
    // Nothing changed: one upload, at offset 0.
    assert_eq!(tus.offset(&location).await, 0);
    assert_eq!(unfinished_uploads(&server).await.len(), 1);
}

#[tokio::test]
async fn x_http_method_override_turns_a_post_into_the_method_it_names() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let tus = Tus::of(&gateway);
    let location = tus.create(5, "").await;
    let response = tus
        .request(Method::POST, &location)
        .header("X-HTTP-Method-Override", "PATCH")
        .header("Upload-Offset", 0)
        .header("Content-Type", OFFSET_STREAM)
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(offset_of(&response), 3);
    let response = tus
        .request(Method::POST, &location)
        .header("X-HTTP-Method-Override", "DELETE")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(tus.head(&location).await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_patch_streams_through_with_the_gateways_memory_flat() {
    const MIB: usize = 1024 * 1024;
    const HALF: usize = 128;
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let tus = Tus::of(&gateway);
    let chunk = Bytes::from(data(MIB, 10));
    let location = tus.create((2 * HALF * MIB) as u64, "").await;
    let half = || {
        let chunk = chunk.clone();
        reqwest::Body::wrap_stream(futures::stream::iter(
            (0..HALF).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
        ))
    };
    let mut digest = Sha256::new();
    (0..HALF).for_each(|_| digest.update(&chunk));

    // In appends of 8 MiB, then as one append checked against its SHA-256.
    let response = tus.patch(&location, 0, half()).await;
    assert_eq!(response.status(), 204);
    assert_eq!(offset_of(&response), (HALF * MIB) as u64);
    let response = tus
        .request(Method::PATCH, &location)
        .header("Upload-Offset", HALF * MIB)
        .header("Content-Type", OFFSET_STREAM)
        .header(
            "Upload-Checksum",
            format!("sha256 {}", BASE64.encode(digest.clone().finalize())),
        )
        .body(half())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let id = header(&response, "ferry-item-id").expect("the item");
    (0..HALF).for_each(|_| digest.update(&chunk));
    let (size, sha256) = server.admin().content_digest(&id).await;
    assert_eq!(
        (size, sha256),
        ((2 * HALF * MIB) as u64, hex::encode(digest.finalize()))
    );

    // 256 MiB went through; the gateway never held a body (nor one append) whole.
    let peak = gateway.running.peak_rss_kib() / 1024;
    eprintln!("the gateway's peak RSS: {peak} MiB");
    assert!(peak < 64, "the gateway's peak RSS was {peak} MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_survives_a_restart_of_the_server() {
    let server = Server::start(&[]);
    let proxy = Proxy::start(&server.tcp()).await;
    let gateway = Gateway::start(&server, &proxy.addr, &[]);
    let tus = Tus::of(&gateway);
    let file = data(300_000, 11);
    let location = tus
        .create(file.len() as u64, &metadata("restart.bin", false))
        .await;
    assert_eq!(
        tus.patch(&location, 0, file[..120_000].to_vec())
            .await
            .status(),
        204
    );

    // SIGKILL, and a new server on the same data (on a new port, behind the proxy).
    let server = server.crash_and_restart(&[]);
    proxy.set_upstream(&server.tcp());
    proxy.drop_all().await;

    // The gateway's pooled sessions died with the old server: it connects anew.
    assert_eq!(tus.offset(&location).await, 120_000);
    let response = tus
        .patch(&location, 120_000, file[120_000..].to_vec())
        .await;
    assert_eq!(response.status(), 204);
    let id = header(&response, "ferry-item-id").expect("the item");
    let admin = server.admin();
    assert!(
        admin.content(&id).await == file,
        "the item's content differs"
    );
    let item = admin.get_json(&format!("/api/items/{id}")).await;
    assert_eq!(item["name"], "restart.bin");
}

#[tokio::test]
async fn head_stores_a_complete_upload_whose_finish_was_lost() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let file = data(100_000, 12);
    // Every byte committed by a native client, which never asks finish.
    let mut session =
        ferry_client::Session::connect(&server.tcp(), ferry_client::Options::default())
            .await
            .unwrap();
    let upload = session
        .upload_open(
            ferry_protocol::Meta::text(false),
            Some(file.len() as u64),
            Some("lost.bin"),
        )
        .await
        .unwrap();
    let state = session
        .upload_append(&upload.id, 0, &file[..], file.len() as u64, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(state.offset, file.len() as u64);
    assert!(server.admin().all_items().await.is_empty());

    let head = Tus::of(&gateway)
        .head(&format!("/uploads/{}", upload.id))
        .await;
    assert_eq!(head.status(), 200);
    assert_eq!(offset_of(&head), file.len() as u64);
    assert_stored(&server, &head, &file).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_body_that_stops_arriving_is_408_and_keeps_its_committed_appends() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(
        &server,
        &server.tcp(),
        &["--request-timeout", "1", "--tus-chunk-bytes", "65536"],
    );
    let tus = Tus::of(&gateway);
    let file = data(100_000, 13);
    let location = tus.create(file.len() as u64, "").await;
    let (sender, body) = controlled_body();
    sender
        .unbounded_send(Ok(Bytes::copy_from_slice(&file[..80_000])))
        .unwrap();
    // The body stalls (the sender is kept, never used again).
    let response = tus.patch(&location, 0, body).await;
    assert_eq!(response.status(), 408);
    drop(sender);
    let offset = wait_until(Duration::from_secs(10), async || {
        // The 408 closed its connection: a HEAD sent on it as the client's
        // pool reuses it meets a broken pipe, and is sent again.
        let response = tus
            .request(Method::HEAD, &location)
            .send()
            .await
            .map_err(|err| format!("HEAD: {err}"))?;
        match response.status().as_u16() {
            200 => Ok(offset_of(&response)),
            other => Err(format!("HEAD {other}")),
        }
    })
    .await;
    assert_eq!(offset, 65_536);
    let response = tus.patch(&location, offset, file[65_536..].to_vec()).await;
    assert_eq!(response.status(), 204);
    assert_stored(&server, &response, &file).await;
}
