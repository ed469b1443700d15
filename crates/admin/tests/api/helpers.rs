//! A fresh app over a fresh store, and shorthands for requests and responses.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, header};
use ferry_admin::{AdminState, app};
use ferry_crypto::{Keyring, StorageKey};
use ferry_protocol::{DataType, Serialization};
use ferry_store::{ItemMeta, LocalOptions, LocalStore, NewItem, Store};
use metrics_exporter_prometheus::PrometheusHandle;
use tempfile::TempDir;
use tower::ServiceExt;

pub const TOKEN: &str = "test-token-0123456789";

/// How the tests serve the app on a socket: plain HTTP, 30 s header timeout.
pub fn plain_http() -> ferry_http::ServeOptions {
    ferry_http::ServeOptions {
        tls: None,
        header_timeout: std::time::Duration::from_secs(30),
        drain: None,
    }
}

/// An app over its own store.
pub struct TestApp {
    pub store: Arc<LocalStore>,
    pub dir: TempDir,
    pub app: Router,
}

/// How to build a [`TestApp`].
#[derive(Default)]
pub struct Setup {
    pub options: LocalOptions,
    pub metrics: Option<PrometheusHandle>,
    pub metrics_public: bool,
    pub retention: ferry_store::Retention,
}

impl TestApp {
    pub async fn new() -> TestApp {
        TestApp::with(Setup::default()).await
    }

    pub async fn with(setup: Setup) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let keyring = Keyring::new(StorageKey::generate(), Vec::new());
        let store = LocalStore::open(dir.path(), keyring, setup.options)
            .await
            .unwrap();
        let state = AdminState {
            store: store.clone(),
            token: ferry_http::BearerToken::parse(TOKEN).unwrap(),
            metrics: setup.metrics,
            metrics_public: setup.metrics_public,
            rate_limit: Default::default(),
            retention: setup.retention,
            notary: None,
        };
        TestApp {
            store,
            dir,
            app: app(state),
        }
    }

    /// Stores an item the way the server does: begin, write, commit.
    pub async fn put(
        &self,
        data_type: DataType,
        serialization: Serialization,
        peer: &str,
        name: Option<&str>,
        content: &[u8],
    ) -> ItemMeta {
        let item = NewItem {
            data_type,
            serialization,
            encrypted_in_transit: false,
            peer: peer.into(),
            name: name.map(Into::into),
        };
        let mut writer = self.store.begin(item).await.unwrap();
        for piece in content.chunks(48_000) {
            writer.write(piece).await.unwrap();
        }
        writer.commit().await.unwrap()
    }

    pub async fn put_text(&self, content: impl AsRef<str>) -> ItemMeta {
        self.put(
            DataType::Text,
            Serialization::Txt,
            "127.0.0.1:4000",
            Some("notes.txt"),
            content.as_ref().as_bytes(),
        )
        .await
    }

    /// Sends a request as-is.
    pub async fn send(&self, request: Request<Body>) -> Response<Body> {
        self.app.clone().oneshot(request).await.unwrap()
    }

    /// `GET uri` with the token.
    pub async fn get(&self, uri: &str) -> Response<Body> {
        self.send(authorized("GET", uri).body(Body::empty()).unwrap())
            .await
    }

    /// `GET uri` with the token and `Range: range`.
    pub async fn get_range(&self, uri: &str, range: &str) -> Response<Body> {
        self.send(
            authorized("GET", uri)
                .header(header::RANGE, range)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }
}

/// A request builder carrying the token.
pub fn authorized(method: &str, uri: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
}

pub async fn body_bytes(response: Response<Body>) -> Vec<u8> {
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec()
}

pub async fn body_json(response: Response<Body>) -> serde_json::Value {
    let bytes = body_bytes(response).await;
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", String::from_utf8_lossy(&bytes)))
}

pub fn header<'a>(response: &'a Response<Body>, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// Asserts the one error shape, and returns the error's code.
pub async fn assert_error(response: Response<Body>, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(header(&response, "content-type"), "application/json");
    let json = body_json(response).await;
    let error = json["error"]
        .as_object()
        .unwrap_or_else(|| panic!("not the error shape: {json}"));
    assert_eq!(error.len(), 3, "{json}");
    assert_eq!(error["status"], status);
    assert!(!error["message"].as_str().unwrap().is_empty());
    error["code"].as_str().unwrap().to_owned()
}
