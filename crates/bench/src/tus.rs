//! The gateway's tus endpoint (`/uploads`), measured with a small tus 1.0.0
//! client of its own (reqwest): a `POST` that creates the upload, then one
//! `PATCH` per chunk, each waiting for the previous one's `204` (as tus
//! clients do), the body being the same text [`crate::http::file`] sends.
//!
//! Two figures: the rate of a whole upload (creation to the last `204`, which
//! names the stored item), and what one cut connection costs: a `PATCH`
//! broken off halfway through its chunk, a `HEAD` for the offset the server
//! kept (and empty `PATCH`es until the server lets go of the cut request),
//! and the upload resumed from there. The bytes re-sent are those sent
//! beyond the file's length; a tus server may keep part of a broken chunk or
//! none of it, so the cost is at most that chunk.

use crate::Rate;
use crate::generate::text_stream_at;
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures::StreamExt;
use reqwest::{Body, Client, StatusCode, header};
use std::time::{Duration, Instant};

const TUS_RESUMABLE: &str = "Tus-Resumable";
const VERSION: &str = "1.0.0";

/// What one upload measured.
#[derive(Debug, Clone, Copy)]
pub struct Upload {
    pub rate: Rate,
    /// Bytes sent beyond the file's length (0 without a cut).
    pub resent: u64,
    /// The last `PATCH`, whose answer waits for the item to be stored.
    pub last_patch: Duration,
}

/// Uploads `len` bytes of text in `chunk`-byte `PATCH`es; with `cut`, the
/// `PATCH` holding the file's middle breaks off halfway and the upload resumes
/// from the offset a `HEAD` gives.
pub async fn upload(base: &str, len: u64, chunk: u64, cut: bool) -> Result<Upload> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::builder().build()?;
    let started = Instant::now();
    let url = create(&client, base, len).await?;
    let mut offset = 0;
    let mut sent = 0u64;
    let mut item = None;
    let mut last_patch = Duration::ZERO;
    let mut cut_at = cut.then_some(len / 2);
    while offset < len {
        let size = chunk.min(len - offset);
        if let Some(middle) = cut_at.filter(|middle| (offset..offset + size).contains(middle)) {
            cut_at = None;
            let half = size / 2;
            sent += half;
            broken_patch(&client, &url, offset, size, half).await;
            offset = released(&client, &url).await?;
            if offset > middle {
                bail!(
                    "after the cut the server kept offset {offset}, beyond the {middle} bytes sent"
                );
            }
            continue;
        }
        let patch_started = Instant::now();
        let response = client
            .patch(&url)
            .header(TUS_RESUMABLE, VERSION)
            .header("Upload-Offset", offset)
            .header(header::CONTENT_TYPE, "application/offset+octet-stream")
            .header(header::CONTENT_LENGTH, size)
            .body(Body::wrap_stream(text_stream_at(offset, size)))
            .send()
            .await
            .with_context(|| format!("PATCH at offset {offset}"))?;
        sent += size;
        let status = response.status();
        if status != StatusCode::NO_CONTENT {
            let text = response.text().await.unwrap_or_default();
            bail!("PATCH at offset {offset} answered {status}: {text}");
        }
        let next = header_u64(response.headers(), "Upload-Offset")?;
        if next != offset + size {
            bail!("PATCH of {size} bytes at {offset} answered Upload-Offset {next}");
        }
        offset = next;
        last_patch = patch_started.elapsed();
        if let Some(id) = response.headers().get("Ferry-Item-Id") {
            item = Some(id.clone());
        }
    }
    let elapsed = started.elapsed();
    if item.is_none() {
        bail!("the last PATCH named no stored item (no Ferry-Item-Id)");
    }
    Ok(Upload {
        rate: Rate::new(len, elapsed),
        resent: sent - len,
        last_patch,
    })
}

/// `POST /uploads` for `len` bytes named `bench.txt`: the upload's URL.
async fn create(client: &Client, base: &str, len: u64) -> Result<String> {
    let response = client
        .post(format!("{base}/uploads"))
        .header(TUS_RESUMABLE, VERSION)
        .header("Upload-Length", len)
        .header(
            "Upload-Metadata",
            format!("filename {}", STANDARD.encode("bench.txt")),
        )
        .send()
        .await
        .context("POST /uploads")?;
    let status = response.status();
    if status != StatusCode::CREATED {
        let text = response.text().await.unwrap_or_default();
        bail!("POST /uploads answered {status}: {text}");
    }
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .context("POST /uploads answered no Location")?;
    Ok(match location.starts_with("http") {
        true => location.to_owned(),
        false => format!("{base}{location}"),
    })
}

/// A `PATCH` announcing a chunk of `size` bytes but sending `half` of them,
/// after which its body fails: the client drops the connection mid-body, as a
/// cut link would.
async fn broken_patch(client: &Client, url: &str, offset: u64, size: u64, half: u64) {
    let body = text_stream_at(offset, half).chain(futures::stream::once(async {
        Err::<Bytes, _>(std::io::Error::other("the link is cut"))
    }));
    let outcome = client
        .patch(url)
        .header(TUS_RESUMABLE, VERSION)
        .header("Upload-Offset", offset)
        .header(header::CONTENT_TYPE, "application/offset+octet-stream")
        .header(header::CONTENT_LENGTH, size)
        .body(Body::wrap_stream(body))
        .send()
        .await;
    // The request fails on the client's side; an answer (to part of a body) is
    // possible too if the server answers before reading the rest: either way,
    // the HEAD that follows says what was kept.
    drop(outcome);
}

/// The committed offset once the server has let go of the cut request: until
/// it notices the cut, the upload is still being appended to, and a `PATCH`
/// is `423 Locked`. An empty `PATCH` asks, so that no byte of the chunk is
/// sent to be refused (a client that sent the chunk at once would send it
/// again after each 423).
async fn released(client: &Client, url: &str) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let offset = head(client, url).await?;
        let response = client
            .patch(url)
            .header(TUS_RESUMABLE, VERSION)
            .header("Upload-Offset", offset)
            .header(header::CONTENT_TYPE, "application/offset+octet-stream")
            .header(header::CONTENT_LENGTH, 0)
            .send()
            .await
            .context("an empty PATCH")?;
        match response.status() {
            StatusCode::NO_CONTENT => return header_u64(response.headers(), "Upload-Offset"),
            // Still appending, or it committed more since the HEAD.
            StatusCode::LOCKED | StatusCode::CONFLICT if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            status => {
                let text = response.text().await.unwrap_or_default();
                bail!("an empty PATCH after the cut answered {status}: {text}");
            }
        }
    }
}

/// `HEAD` of the upload: the committed offset.
async fn head(client: &Client, url: &str) -> Result<u64> {
    let response = client
        .head(url)
        .header(TUS_RESUMABLE, VERSION)
        .send()
        .await
        .context("HEAD of the upload")?;
    if response.status() != StatusCode::OK {
        bail!("HEAD of the upload answered {}", response.status());
    }
    header_u64(response.headers(), "Upload-Offset")
}

fn header_u64(headers: &header::HeaderMap, name: &str) -> Result<u64> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .with_context(|| format!("no valid {name} header"))
}
