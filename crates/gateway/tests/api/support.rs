//! A fake Ferry server (decodes packets with `ferry_protocol`, records them, answers
//! as told) and helpers to drive the gateway's router without a socket.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use bytes::{Bytes, BytesMut};
use ferry_crypto::FernetKey;
use ferry_gateway::{GatewayConfig, app};
use ferry_protocol::{Decoder, ExtendedReply, Meta, Reply, TransferEvent, TransferTracker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// How the fake server answers each transfer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `OK`, as the legacy server does (even to a client that sent the hello byte).
    Legacy,
    /// The extended JSON reply to a client that sent the hello byte, else `OK`.
    Extended,
    /// `ERROR: <reason>`.
    Refuse(String),
    /// Reads every transfer but never answers.
    Stall,
    /// Accepts the connection and never reads from it.
    Deaf,
}

/// One transfer as the fake server received it.
#[derive(Debug, Clone)]
pub struct Transfer {
    pub meta: Meta,
    pub name: Option<String>,
    pub hello: bool,
    pub payloads: Vec<Bytes>,
}

impl Transfer {
    /// The payloads joined (encrypted ones are decrypted with `key` first).
    pub fn plaintext(&self, key: Option<&FernetKey>) -> Vec<u8> {
        self.payloads
            .iter()
            .flat_map(|p| match key {
                Some(key) => key.decrypt(p).expect("each payload is a Fernet token"),
                None => p.to_vec(),
            })
            .collect()
    }
}

#[derive(Debug, Default)]
struct Log {
    connections: usize,
    received: usize,
    transfers: Vec<Transfer>,
}

/// A fake server on 127.0.0.1:0.
#[derive(Debug, Clone)]
pub struct FakeServer {
    pub addr: SocketAddr,
    log: Arc<Mutex<Log>>,
}

/// The id the fake server gives every stored item.
pub const FAKE_ID: &str = "01JQ3V7ZK9T6N2XQ8W4R5B1C0D";

impl FakeServer {
    /// Starts a server that answers every transfer with `answer`, and closes the
    /// connection after each answer when `close_after_answer` (like a restart).
    pub async fn start(answer: Answer, close_after_answer: bool) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = FakeServer {
            addr: listener.local_addr().unwrap(),
            log: Arc::default(),
        };
        let log = server.log.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                log.lock().unwrap().connections += 1;
                tokio::spawn(serve_connection(
                    stream,
                    answer.clone(),
                    close_after_answer,
                    log.clone(),
                ));
            }
        });
        server
    }

    pub fn connections(&self) -> usize {
        self.log.lock().unwrap().connections
    }

    /// Payload bytes received so far, finished transfers or not.
    pub fn received(&self) -> usize {
        self.log.lock().unwrap().received
    }

    pub fn transfers(&self) -> Vec<Transfer> {
        self.log.lock().unwrap().transfers.clone()
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    answer: Answer,
    close_after_answer: bool,
    log: Arc<Mutex<Log>>,
) {
    if let Answer::Deaf = answer {
        std::future::pending::<()>().await;
    }
    let mut buf = BytesMut::new();
    let mut tracker = TransferTracker::new();
    let mut hello = false;
    let mut current: Option<Transfer> = None;
    loop {
        while let Some(frame) = Decoder
            .decode(&mut buf)
            .expect("the gateway writes valid frames")
        {
            for event in tracker
                .accept(frame)
                .expect("the gateway orders its packets")
            {
                match event {
                    TransferEvent::Hello => hello = true,
                    TransferEvent::Begin { meta, name } => {
                        current = Some(Transfer {
                            meta,
                            name,
                            hello,
                            payloads: Vec::new(),
                        })
                    }
                    TransferEvent::Data(payload) => {
                        log.lock().unwrap().received += payload.len();
                        current.as_mut().unwrap().payloads.push(payload)
                    }
                    TransferEvent::Finish => {
                        let transfer = current.take().unwrap();
                        let size = transfer.payloads.iter().map(|p| p.len() as u64).sum();
                        log.lock().unwrap().transfers.push(transfer);
                        let reply = match &answer {
                            Answer::Stall | Answer::Deaf => continue,
                            Answer::Extended if hello => ExtendedReply::<serde_json::Value> {
                                ok: true,
                                id: Some(FAKE_ID.into()),
                                size: Some(size),
                                sha256: Some("ab".repeat(32)),
                                ..ExtendedReply::default()
                            }
                            .to_bytes(),
                            Answer::Legacy | Answer::Extended => Reply::Ok.to_bytes(),
                            Answer::Refuse(reason) => Reply::Error(reason.clone()).to_bytes(),
                        };
                        stream.write_all(&reply).await.unwrap();
                        if close_after_answer {
                            return;
                        }
                    }
                    TransferEvent::End => return,
                    TransferEvent::Ignored => {}
                }
            }
        }
        if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
            return;
        }
    }
}

/// An address where nothing listens.
pub async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().to_string()
}

/// A configuration pointing at `server`, with short timeouts for tests.
pub fn config(server: &FakeServer) -> GatewayConfig {
    GatewayConfig {
        server: server.addr.to_string(),
        admin_url: "http://admin.test:6869".into(),
        request_timeout: Duration::from_secs(5),
        upstream_timeout: Duration::from_secs(5),
        ..GatewayConfig::default()
    }
}

/// A gateway router for `server` with its default test configuration.
pub fn gateway(server: &FakeServer) -> Router {
    app(config(server))
}

/// Sends one request through the router.
pub async fn call(app: &Router, request: Request<Body>) -> Response<Body> {
    app.clone().oneshot(request).await.unwrap()
}

/// A POST with a body and a content type.
pub fn post(uri: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header("content-type", content_type)
        .body(body.into())
        .unwrap()
}

/// The response body as JSON.
pub async fn json(response: Response<Body>) -> serde_json::Value {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
}

/// Asserts the error shape, the status and the code.
pub async fn assert_error(response: Response<Body>, status: u16, code: &str) -> String {
    assert_eq!(response.status().as_u16(), status);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{:?}",
        response.headers()
    );
    let body = json(response).await;
    assert_eq!(body["error"]["status"], status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}
