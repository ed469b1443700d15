//! An in-process server for the tests: [`ferry_server::serve`] on a listener bound
//! to port 0, over a fresh store in a temporary directory, and a raw client that
//! writes bytes and reads replies the way the legacy client does (one read, up to
//! 4,096 bytes). Every wait has a deadline; nothing sleeps.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use ferry_crypto::{FernetKey, Keyring, StorageKey};
use ferry_protocol::{Meta, PIECE_SIZE, encode};
use ferry_server::{ServerConfig, Shared};
use ferry_store::{ItemMeta, ListQuery, LocalOptions, LocalStore, Store};
pub use ferry_test_support::{Heard, RawClient as Client};
use futures::TryStreamExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Longest wait for anything the server should do promptly.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A server running in this process until [`TestServer::stop`] or drop.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Arc<LocalStore>,
    /// The Fernet key the server accepts, if any.
    pub fernet: Option<Arc<FernetKey>>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with `config` and a fresh Fernet key.
    pub async fn start(config: ServerConfig) -> TestServer {
        TestServer::start_with_key(config, Some(FernetKey::generate())).await
    }

    /// A server with `config` and the Fernet key `fernet` (none: no decryption).
    pub async fn start_with_key(config: ServerConfig, fernet: Option<FernetKey>) -> TestServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let keyring = Keyring::new(StorageKey::generate(), Vec::new());
        let store = LocalStore::open(&dir.path().join("store"), keyring, LocalOptions::default())
            .await
            .expect("a fresh store opens");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("the bound address");
        let fernet = fernet.map(Arc::new);
        let shared = Arc::new(Shared::new(
            config,
            fernet.clone(),
            store.clone(),
            None,
            None,
        ));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(ferry_server::serve(listener, shared, shutdown.clone()));
        TestServer {
            addr,
            store,
            fernet,
            shutdown,
            task,
            dir,
        }
    }

    /// A new raw connection.
    pub async fn connect(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Every listed item, oldest first.
    pub async fn items(&self) -> Vec<ItemMeta> {
        let page = self
            .store
            .list(&ListQuery::default())
            .await
            .expect("the store lists");
        assert!(page.next.is_none(), "the tests store less than a page");
        page.items.into_iter().rev().collect()
    }

    /// The plaintext of a stored item.
    pub async fn content(&self, item: &ItemMeta) -> Vec<u8> {
        let (_, stream) = self
            .store
            .open(item.id, None)
            .await
            .expect("the store opens the item")
            .expect("the item exists");
        let chunks: Vec<bytes::Bytes> = stream.try_collect().await.expect("the content reads");
        chunks.concat()
    }

    /// Waits until the store holds an unfinished item on disk: a text transfer has
    /// begun and received more than the store keeps in memory (256 KiB).
    pub async fn wait_for_unfinished_item(&self) {
        let tmp = self.dir.path().join("store/tmp");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while std::fs::read_dir(&tmp)
            .expect("the store's tmp/")
            .next()
            .is_none()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no unfinished item appeared in {}",
                tmp.display()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Asks the server to stop (as Ctrl-C does) without waiting for it.
    pub fn shut_down(&self) {
        self.shutdown.cancel();
    }

    /// Waits until [`serve`](ferry_server::serve) has returned, at most
    /// [`PATIENCE`] (the tests' grace periods are shorter).
    pub async fn stopped(&mut self) {
        tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .expect("the server stops")
            .expect("the server task does not panic");
    }

    /// The key's tokens of `data` cut into legacy pieces, as one transfer.
    pub fn encrypted(&self, meta: Meta, data: &[u8]) -> Vec<u8> {
        let key = self.fernet.as_ref().expect("this server has a Fernet key");
        let tokens: Vec<Vec<u8>> = pieces(data).map(|piece| key.encrypt(piece)).collect();
        transfer_of(meta, tokens.iter().map(Vec::as_slice))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// `data` cut into the legacy client's 48,000-byte pieces (one empty piece for no data).
fn pieces(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let empty: &[u8] = &[];
    let cut = data.chunks(PIECE_SIZE);
    let none = data.is_empty().then_some(empty);
    cut.chain(none)
}

/// One transfer whose packets carry `payloads` as they are.
pub fn transfer_of<'a>(meta: Meta, payloads: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let payloads: Vec<&[u8]> = payloads.collect();
    let mut out = BytesMut::new();
    for (index, payload) in payloads.iter().enumerate() {
        let meta = (index == 0).then_some(meta);
        encode::packet(&mut out, meta, index + 1 == payloads.len(), payload);
    }
    out.to_vec()
}

/// One plain transfer of `data`, cut as the legacy client cuts it.
pub fn transfer(meta: Meta, data: &[u8]) -> Vec<u8> {
    transfer_of(meta, pieces(data))
}
