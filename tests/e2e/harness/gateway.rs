//! Helpers of the gateway suites (gateway_e2e, gateway_generated_client,
//! schemathesis_gateway): the real `ferry-gateway` in front of a server, a small
//! HTTP client for it, and a TCP proxy between the two that records what the
//! gateway sends, can drop every connection (as a server restart would), can
//! be pointed at a new upstream (a restarted server) and can slow its clients'
//! bytes down (a slow link).

use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use ferry_crypto::FernetKey;
use ferry_protocol::{Decoder, Frame, Meta};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

use crate::harness::{Running, Server, bin};

/// The bearer token every test gateway requires.
pub const TOKEN: &str = "e2e-gateway-token";

/// A running `ferry-gateway` that requires [`TOKEN`].
#[derive(Debug)]
pub struct Gateway {
    pub running: Running,
    /// `http://ADDR`, no trailing slash.
    pub url: String,
    pub http: reqwest::Client,
}

/// What the gateway answered.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub body: Value,
}

impl Reply {
    /// The stored item's id from a 201 (panics, with the body, on anything else).
    pub fn id(&self) -> String {
        assert_eq!(self.status, 201, "{}", self.body);
        self.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {}", self.body))
            .to_owned()
    }

    /// The `code` of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error body: {}", self.body))
    }
}

impl Gateway {
    /// A gateway forwarding to `tcp` (the server itself, or a proxy in front of it)
    /// with the server's Fernet key and admin URL.
    pub fn start(server: &Server, tcp: &str, extra: &[&str]) -> Gateway {
        Gateway::start_keyed(&server.fernet_key_file(), &server.admin_url(), tcp, extra)
    }

    /// A gateway forwarding to `tcp` with the Fernet key file `key` and the
    /// admin API at `admin` (servers that share a key file, say).
    pub fn start_keyed(key: &Path, admin: &str, tcp: &str, extra: &[&str]) -> Gateway {
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--server",
            tcp,
            "--fernet-key",
            key.to_str().unwrap(),
            "--admin-url",
            admin,
            "--token",
            TOKEN,
        ];
        args.extend_from_slice(extra);
        let running = Running::start(&bin("ferry-gateway"), &args, &[], &["gateway"]);
        let url = format!("http://{}", running.addr("gateway"));
        Gateway {
            running,
            url,
            http: crate::harness::http(),
        }
    }

    /// `POST /dict?format=FORMAT&encrypt=ENCRYPT` with `dict` as the JSON body.
    pub async fn post_dict(&self, format: &str, encrypt: bool, dict: &Value) -> Reply {
        let request = self
            .http
            .post(format!(
                "{}/dict?format={format}&encrypt={encrypt}",
                self.url
            ))
            .bearer_auth(TOKEN)
            .json(dict);
        reply(request.send().await.expect("POST /dict")).await
    }

    /// `POST /file?QUERY` with `body` as the raw body.
    pub async fn post_file(&self, query: &str, body: impl Into<reqwest::Body>) -> Reply {
        let request = self
            .http
            .post(format!("{}/file?{query}", self.url))
            .bearer_auth(TOKEN)
            .body(body);
        reply(request.send().await.expect("POST /file")).await
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.expect("response body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{status}: body is not JSON ({err}): {text}"));
    Reply {
        status,
        location,
        body,
    }
}

/// The client-to-server bytes of one proxied connection.
type Recording = Arc<Mutex<Vec<u8>>>;

/// A TCP proxy in front of `upstream` that records every byte its clients send.
#[derive(Debug)]
pub struct Proxy {
    pub addr: String,
    /// Client-to-server bytes, one buffer per accepted connection.
    recorded: Arc<Mutex<Vec<Recording>>>,
    /// Bumped to close every connection open at that moment.
    generation: watch::Sender<u64>,
    /// The connections open now.
    open: Arc<tokio::sync::watch::Sender<usize>>,
    /// Where new connections go.
    upstream: Arc<Mutex<String>>,
    /// A cut armed to happen in the middle of a client's bytes.
    tripwire: Arc<Tripwire>,
    accept: tokio::task::JoinHandle<()>,
}

/// A cut of every connection, armed to happen when the clients have sent a
/// number of bytes more: in the middle of what they send, never between two
/// requests.
#[derive(Debug, Default)]
struct Tripwire {
    /// The bytes left before the cut, and who waits for it.
    armed: Mutex<Option<(u64, oneshot::Sender<()>)>>,
}

impl Tripwire {
    /// Whether `n` more client bytes trip the wire; the waiter is then told and
    /// the wire disarmed.
    fn trips(&self, n: usize) -> bool {
        let mut armed = self.armed.lock().unwrap();
        match armed.as_mut() {
            Some((left, _)) if *left > n as u64 => {
                *left -= n as u64;
                false
            }
            Some(_) => {
                let (_, waiter) = armed.take().unwrap();
                let _ = waiter.send(());
                true
            }
            None => false,
        }
    }
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        Proxy::start_with(upstream, None).await
    }

    /// A proxy that forwards at most `bytes_per_second` of each client's bytes.
    pub async fn throttled(upstream: &str, bytes_per_second: u64) -> Proxy {
        Proxy::start_with(upstream, Some(bytes_per_second)).await
    }

    async fn start_with(upstream: &str, rate: Option<u64>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().unwrap().to_string();
        let recorded: Arc<Mutex<Vec<Recording>>> = Arc::default();
        let (generation, _) = watch::channel(0u64);
        let open = Arc::new(watch::channel(0usize).0);
        let upstream = Arc::new(Mutex::new(upstream.to_owned()));
        let tripwire = Arc::new(Tripwire::default());
        let (all, generations, counted) = (recorded.clone(), generation.clone(), open.clone());
        let (target, wire) = (upstream.clone(), tripwire.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let record = Arc::new(Mutex::new(Vec::new()));
                all.lock().unwrap().push(record.clone());
                let mut dropped = generations.subscribe();
                let upstream = target.lock().unwrap().clone();
                let counted = counted.clone();
                counted.send_modify(|n| *n += 1);
                let cut = Cut {
                    wire: wire.clone(),
                    all: generations.clone(),
                };
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        tokio::select! {
                            () = relay(client, server, record, rate, cut) => {}
                            _ = dropped.changed() => {}
                        }
                    }
                    // Both sockets are closed by now.
                    counted.send_modify(|n| *n -= 1);
                });
            }
        });
        Proxy {
            addr,
            recorded,
            generation,
            open,
            upstream,
            tripwire,
            accept,
        }
    }

    /// Sends the connections accepted from now on to `upstream`.
    pub fn set_upstream(&self, upstream: &str) {
        *self.upstream.lock().unwrap() = upstream.to_owned();
    }

    /// Closes every connection open now (later ones are served as usual), and
    /// returns once they are closed.
    pub async fn drop_all(&self) {
        self.close_all();
        self.all_closed().await;
    }

    /// Closes every connection open when the clients have sent `bytes` more
    /// (the byte that crosses the mark is not forwarded), and returns once they
    /// are closed. Unlike [`Proxy::drop_all`], it cannot miss a request in
    /// flight by landing between two.
    pub async fn cut_after(&self, bytes: u64) {
        let (waiter, tripped) = oneshot::channel();
        *self.tripwire.armed.lock().unwrap() = Some((bytes, waiter));
        tripped.await.expect("the proxy is up");
        self.all_closed().await;
    }

    /// Returns once no connection is open.
    async fn all_closed(&self) {
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|n| *n == 0).await;
    }

    fn close_all(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// How many connections the proxy has accepted.
    pub fn connections(&self) -> usize {
        self.recorded.lock().unwrap().len()
    }

    /// What the clients sent so far, one buffer per connection.
    pub fn recorded(&self) -> Vec<Vec<u8>> {
        self.recorded
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.lock().unwrap().clone())
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.close_all();
    }
}

/// How a connection's relay cuts them all when the tripwire trips.
struct Cut {
    wire: Arc<Tripwire>,
    /// Bumped to close every connection.
    all: watch::Sender<u64>,
}

/// Copies both ways; client bytes are recorded before they are forwarded, so a
/// transfer the server answered is wholly recorded. With a `rate`, client bytes
/// are forwarded at most that many a second. Client bytes that trip the wire
/// are not forwarded: every connection is closed instead.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    record: Recording,
    rate: Option<u64>,
    cut: Cut,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if cut.wire.trips(n) {
                        cut.all.send_modify(|g| *g += 1);
                        break;
                    }
                    record.lock().unwrap().extend_from_slice(&buf[..n]);
                    if let Some(rate) = rate {
                        let pause = std::time::Duration::from_secs_f64(n as f64 / rate as f64);
                        tokio::time::sleep(pause).await;
                    }
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = server_write.shutdown().await;
    };
    let down = async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}

/// One transfer as recorded on the wire.
#[derive(Debug, Clone)]
pub struct WireTransfer {
    pub meta: Meta,
    /// Each packet's payload, as sent.
    pub payloads: Vec<Vec<u8>>,
}

impl WireTransfer {
    /// The plaintext: each payload decrypted on its own (panics if one is not a
    /// token of `key`) when the transfer is encrypted, joined.
    pub fn plaintext(&self, key: &FernetKey) -> Vec<u8> {
        let mut out = Vec::new();
        for (index, payload) in self.payloads.iter().enumerate() {
            if self.meta.encrypted() {
                let piece = key.decrypt(payload).unwrap_or_else(|err| {
                    panic!("packet {index} is not a Fernet token of the server's key: {err}")
                });
                out.extend_from_slice(&piece);
            } else {
                out.extend_from_slice(payload);
            }
        }
        out
    }
}

/// Decodes one connection's client-to-server bytes into its transfers (extension
/// bytes and END are skipped). Every byte must decode, with no transfer left open.
pub fn wire_transfers(bytes: &[u8]) -> Vec<WireTransfer> {
    let mut buf = BytesMut::from(bytes);
    let mut transfers = Vec::new();
    let mut open: Option<WireTransfer> = None;
    while let Some(frame) = Decoder
        .decode(&mut buf)
        .expect("the gateway sends well-formed frames")
    {
        let Frame::Packet(packet) = frame else {
            continue;
        };
        if let Some(meta) = packet.meta {
            assert!(open.is_none(), "INITIAL packet inside an open transfer");
            open = Some(WireTransfer {
                meta,
                payloads: Vec::new(),
            });
        }
        let transfer = open
            .as_mut()
            .expect("a non-initial packet with no transfer open");
        transfer.payloads.push(packet.payload.to_vec());
        if packet.final_ {
            transfers.push(open.take().unwrap());
        }
    }
    assert!(
        buf.is_empty(),
        "{} bytes of a cut frame left over",
        buf.len()
    );
    assert!(open.is_none(), "a transfer was left open");
    transfers
}
