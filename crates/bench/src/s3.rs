//! The S3 side of the benchmark: the S3-compatible server (moto's, started for
//! the run, or one the user names), measured directly with `object_store` for
//! the figures Ferry's S3 store is compared to, and the time one server takes to
//! list what another stored.

use crate::Rate;
use crate::generate::text_stream;
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use ferry_client::Session;
use ferry_protocol::Serialization;
use ferry_test_support::moto::Moto;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use std::time::{Duration, Instant};

/// The size of each object of the sequential-PUT baseline, about a small
/// dictionary's sealed record.
pub const SMALL_OBJECT: usize = 200;

/// The bucket the bench creates on the moto server it starts.
const MOTO_BUCKET: &str = "ferry-bench";

/// How long one server may take to list what another stored before the bench
/// gives up (far above the figure measured; only a broken setup reaches it).
const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the other server's listing is read while waiting for an item.
const VISIBILITY_POLL: Duration = Duration::from_millis(2);

/// An S3-compatible server and a bucket on it: the `AWS_*` variables that
/// point a client at it (given to every `ferry-server` of the S3 figures) and
/// the bucket's name.
#[derive(Debug, Clone)]
pub struct S3Endpoint {
    pub bucket: String,
    /// `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ... as `(name, value)`.
    pub env: Vec<(String, String)>,
    /// The key prefix under which the bench writes (each phase in a fresh
    /// folder of it, removed when the phase ends).
    pub prefix: String,
}

impl S3Endpoint {
    /// An `object_store` client of the bucket, configured from [`S3Endpoint::env`]
    /// as `AmazonS3Builder::from_env` would be from the process's environment.
    pub fn client(&self) -> Result<AmazonS3> {
        let mut builder = AmazonS3Builder::new().with_bucket_name(&self.bucket);
        for (name, value) in &self.env {
            if let Ok(key) = name.to_ascii_lowercase().parse() {
                builder = builder.with_config(key, value);
            }
        }
        builder.build().context("configuring the S3 client")
    }
}

/// The S3 server of a run: moto's, started here and stopped (its objects gone
/// with it, as moto keeps them in memory) when this drops; or the user's.
#[derive(Debug)]
pub struct S3Server {
    pub endpoint: S3Endpoint,
    /// Moto's server, stopped on drop; `None` for the user's server.
    moto: Option<Moto>,
}

impl S3Server {
    /// Starts moto's server (`tests/python/moto_server.py`) on a free port, with one bucket.
    pub async fn moto() -> Result<S3Server> {
        tokio::task::spawn_blocking(|| {
            let started = std::panic::catch_unwind(|| {
                let moto = Moto::start();
                moto.create_bucket(MOTO_BUCKET);
                moto
            });
            let moto = match started {
                Ok(moto) => moto,
                Err(_) => bail!(
                    "moto's S3 server did not start (python3 with moto[server]; scripts/test.sh installs it)"
                ),
            };
            let env = moto
                .env()
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect();
            Ok(S3Server {
                endpoint: S3Endpoint {
                    bucket: MOTO_BUCKET.to_owned(),
                    env,
                    prefix: "bench".to_owned(),
                },
                moto: Some(moto),
            })
        })
        .await?
    }

    /// A server the user runs; the bench only writes under `endpoint.prefix`.
    pub fn external(endpoint: S3Endpoint) -> S3Server {
        S3Server {
            endpoint,
            moto: None,
        }
    }

    /// Whether this is moto's server, started by the bench.
    pub fn is_moto(&self) -> bool {
        self.moto.is_some()
    }
}

/// Sequential PUTs of [`SMALL_OBJECT`]-byte objects under `folder`, each
/// waiting for the previous one's answer, for `duration`: the server's own
/// rate of single small writes.
pub async fn put_rate(
    objects: &dyn ObjectStore,
    folder: &Path,
    duration: Duration,
) -> Result<Rate> {
    let body = Bytes::from(vec![b'x'; SMALL_OBJECT]);
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < duration {
        objects
            .put(
                &folder.clone().join(format!("{done:08}").as_str()),
                PutPayload::from(body.clone()),
            )
            .await
            .context("a small PUT")?;
        done += 1;
    }
    Ok(Rate::new(done, started.elapsed()))
}

/// One multipart upload of the bench's `len` bytes of text to `path`, in
/// `part_size`-byte parts with at most `concurrency` in flight, timed from the
/// upload's creation to its completion.
pub async fn multipart(
    objects: &dyn ObjectStore,
    path: &Path,
    len: u64,
    part_size: usize,
    concurrency: usize,
) -> Result<Rate> {
    let started = Instant::now();
    let upload = objects
        .put_multipart(path)
        .await
        .context("starting a multipart upload")?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size);
    let mut text = std::pin::pin!(text_stream(len));
    while let Some(piece) = text.try_next().await? {
        writer.put(piece);
        writer
            .wait_for_capacity(concurrency)
            .await
            .context("uploading a part")?;
    }
    writer.finish().await.context("completing the upload")?;
    Ok(Rate::new(len, started.elapsed()))
}

/// Deletes every object under `folder`.
pub async fn clear(objects: &dyn ObjectStore, folder: &Path) -> Result<()> {
    let listed = objects.list(Some(folder)).map_ok(|meta| meta.location);
    objects
        .delete_stream(listed.boxed())
        .try_collect::<Vec<_>>()
        .await
        .with_context(|| format!("deleting what the bench wrote under {folder}"))?;
    Ok(())
}

/// `count` small dictionaries sent one after another to the server at
/// `tcp_addr`; for each, the time from its `OK` until the other server's admin
/// API (`admin_url`, `token`) lists it, read every `VISIBILITY_POLL`. The
/// next one is sent once the previous one is listed, after a pause spread
/// evenly over `0..spread` (the other server's poll interval): sent at once,
/// every item would leave just after one of its polls and wait nearly a whole
/// interval for the next, which independent clients do not.
///
/// The listing (`GET /api/items`) is polled, not `GET /api/items/{id}`: a
/// server asked for an item it does not list reads the commit log at once,
/// which would measure that read instead of how soon it follows the log by
/// itself.
pub async fn visibility(
    tcp_addr: &str,
    admin_url: &str,
    token: &str,
    count: u64,
    spread: Duration,
) -> Result<Vec<Duration>> {
    let http = crate::http::builder().build()?;
    let list = format!("{admin_url}/api/items?limit=20");
    let mut session = Session::connect(tcp_addr, crate::tcp::options(None))
        .await
        .context("connecting")?;
    let mut lags = Vec::with_capacity(count as usize);
    for seq in 0..count {
        // The golden ratio's multiples modulo 1 cover 0..1 evenly, in any prefix.
        let phase = (seq as f64 * 0.618_033_988_749_895).fract();
        tokio::time::sleep(spread.mul_f64(phase)).await;
        let receipt = session
            .send_dict(&crate::tcp::small_dict(seq), Serialization::Json, false)
            .await
            .context("dictionary transfer")?;
        let acknowledged = Instant::now();
        let id = receipt.id.context("the server's OK carried no item id")?;
        loop {
            let page: serde_json::Value = http
                .get(&list)
                .bearer_auth(token)
                .send()
                .await
                .context("GET /api/items")?
                .error_for_status()
                .context("GET /api/items")?
                .json()
                .await?;
            let listed = page["items"]
                .as_array()
                .context("a page without items")?
                .iter()
                .any(|item| item["id"].as_str() == Some(id.as_str()));
            if listed {
                lags.push(acknowledged.elapsed());
                break;
            }
            if acknowledged.elapsed() > VISIBILITY_TIMEOUT {
                bail!("item {id} not listed by the other server within {VISIBILITY_TIMEOUT:?}");
            }
            tokio::time::sleep(VISIBILITY_POLL).await;
        }
    }
    session.end().await?;
    Ok(lags)
}

/// The `percent`th percentile of `values` (nearest rank); zero if empty.
pub fn percentile(values: &[Duration], percent: u32) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = (sorted.len() * percent as usize).div_ceil(100);
    sorted
        .get(rank.saturating_sub(1))
        .copied()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let ms: Vec<Duration> = (1..=200).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 50), Duration::from_millis(100));
        assert_eq!(percentile(&ms, 99), Duration::from_millis(198));
        assert_eq!(percentile(&ms, 100), Duration::from_millis(200));
        assert_eq!(percentile(&[], 99), Duration::ZERO);
        assert_eq!(
            percentile(&[Duration::from_millis(7)], 99),
            Duration::from_millis(7)
        );
    }
}
