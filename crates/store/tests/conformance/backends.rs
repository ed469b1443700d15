//! The stores the suite runs on, each opened (and opened again) the same way.

use std::sync::Arc;

use ferry_crypto::{Keyring, StorageKey};
use ferry_store::{LocalOptions, LocalStore, S3Location, S3Options, S3Store, Store, StoreError};
use ferry_test_support::moto::Moto;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;

/// A store under test: opened fresh, then opened again on the same data (by
/// another process, as after a crash or a restart, or by another server).
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// Opens the store on this backend's data. On the local store the
    /// previous one must be dropped first (it holds the directory's lock).
    async fn open(&self) -> Arc<dyn Store>;

    /// The objects of an S3 store, for tests that look at the bucket.
    fn objects(&self) -> Option<Arc<dyn ObjectStore>> {
        None
    }
}

fn keyring(key: &StorageKey) -> Keyring {
    Keyring::new(key.clone(), vec![])
}

/// The local store in a temporary directory.
pub struct Local {
    dir: tempfile::TempDir,
    key: StorageKey,
}

impl Local {
    pub fn new() -> Local {
        Local {
            dir: tempfile::tempdir().unwrap(),
            key: StorageKey::generate(),
        }
    }
}

#[async_trait::async_trait]
impl Backend for Local {
    async fn open(&self) -> Arc<dyn Store> {
        LocalStore::open(self.dir.path(), keyring(&self.key), LocalOptions::default())
            .await
            .unwrap()
    }
}

/// The S3 store in a fresh bucket of a moto server of this test's own.
pub struct S3 {
    moto: Moto,
    location: S3Location,
    key: StorageKey,
}

impl S3 {
    pub fn new() -> S3 {
        let moto = Moto::start();
        moto.create_bucket("ferry-conformance");
        S3 {
            moto,
            location: "s3://ferry-conformance/store".parse().unwrap(),
            key: StorageKey::generate(),
        }
    }

    pub fn bucket(&self) -> Arc<dyn ObjectStore> {
        let s3 = AmazonS3Builder::new()
            .with_endpoint(self.moto.endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("ferry-test")
            .with_secret_access_key("ferry-test")
            .with_bucket_name(&self.location.bucket)
            .build()
            .unwrap();
        Arc::new(s3)
    }

    pub async fn open_s3(&self, options: S3Options) -> Arc<S3Store> {
        self.open_keyed(keyring(&self.key), options).await.unwrap()
    }

    /// Opens a store with `keyring`. A view directory that a store just dropped
    /// still holds (its tasks end a moment later) is waited for.
    pub async fn open_keyed(
        &self,
        keyring: Keyring,
        options: S3Options,
    ) -> Result<Arc<S3Store>, StoreError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let opened = S3Store::open_on(
                self.bucket(),
                &self.location,
                keyring.clone(),
                options.clone(),
            )
            .await;
            match opened {
                Err(StoreError::Locked(_)) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                opened => return opened,
            }
        }
    }

    /// The store's storage key.
    pub fn key(&self) -> &StorageKey {
        &self.key
    }
}

#[async_trait::async_trait]
impl Backend for S3 {
    async fn open(&self) -> Arc<dyn Store> {
        self.open_s3(S3Options::default()).await
    }

    fn objects(&self) -> Option<Arc<dyn ObjectStore>> {
        Some(self.bucket())
    }
}
