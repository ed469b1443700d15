//! An object store for tests that misbehaves when told, as a real bucket
//! does under other servers and a flaky network.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// An in-memory bucket with faults to arm (each fires once).
#[derive(Debug, Default)]
pub(crate) struct Faulty {
    inner: Arc<InMemory>,
    /// The next PUT to the commit log lands but answers with an error, as
    /// when the connection drops after the request.
    lose_a_log_answer: AtomicBool,
    /// The next listing of the whole commit log answers, then the log
    /// objects up to this one are removed before the lister reads them: a
    /// compaction on another server removing what it copied meanwhile.
    remove_after_listing: Mutex<Option<u64>>,
    /// The next listing of the whole commit log answers, then every read of
    /// a log object waits until [`resume`](Self::resume): a rebuild of a
    /// view stopped midway.
    pause_after_listing: AtomicBool,
    paused: tokio::sync::watch::Sender<bool>,
}

impl Faulty {
    /// The bucket itself, without faults.
    pub(crate) fn inner(&self) -> Arc<InMemory> {
        self.inner.clone()
    }

    pub(crate) fn lose_a_log_answer(&self) {
        self.lose_a_log_answer.store(true, Ordering::SeqCst);
    }

    pub(crate) fn remove_after_listing(&self, through: u64) {
        *self.remove_after_listing.lock().unwrap() = Some(through);
    }

    pub(crate) fn pause_after_listing(&self) {
        self.pause_after_listing.store(true, Ordering::SeqCst);
    }

    /// Returns once reads of log objects are paused.
    pub(crate) async fn paused(&self) {
        let mut paused = self.paused.subscribe();
        paused.wait_for(|p| *p).await.expect("the sender is self");
    }

    pub(crate) fn resume(&self) {
        self.paused.send_replace(false);
    }
}

impl std::fmt::Display for Faulty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Faulty")
    }
}

/// The sequence number of a commit-log object of the store at `store/`.
fn log_seq(location: &Path) -> Option<u64> {
    location.as_ref().strip_prefix("store/log/")?.parse().ok()
}

#[async_trait::async_trait]
impl ObjectStore for Faulty {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        let put = self.inner.put_opts(location, payload, opts).await?;
        match log_seq(location).is_some() && self.lose_a_log_answer.swap(false, Ordering::SeqCst) {
            true => Err(object_store::Error::Generic {
                store: "test",
                source: "connection reset".into(),
            }),
            false => Ok(put),
        }
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        if log_seq(location).is_some() {
            let mut paused = self.paused.subscribe();
            paused.wait_for(|p| !*p).await.expect("the sender is self");
        }
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(
        &self,
        prefix: Option<&Path>,
    ) -> BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        let whole_log = prefix.is_some_and(|p| p.as_ref() == "store/log");
        if whole_log && self.pause_after_listing.swap(false, Ordering::SeqCst) {
            self.paused.send_replace(true);
        }
        let Some(through) = whole_log
            .then(|| self.remove_after_listing.lock().unwrap().take())
            .flatten()
        else {
            return self.inner.list(prefix);
        };
        let (inner, prefix) = (self.inner.clone(), prefix.cloned());
        futures::stream::once(async move {
            let listed: Vec<object_store::ObjectMeta> =
                inner.list(prefix.as_ref()).try_collect().await?;
            for meta in &listed {
                if log_seq(&meta.location).is_some_and(|seq| seq <= through) {
                    inner.delete(&meta.location).await?;
                }
            }
            let listed = listed.into_iter().map(Ok::<_, object_store::Error>);
            Ok::<_, object_store::Error>(futures::stream::iter(listed))
        })
        .try_flatten()
        .boxed()
    }
    /// Never armed: the journal lists from an offset only to read on.
    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }
    async fn list_with_delimiter(
        &self,
        prefix: Option<&Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
