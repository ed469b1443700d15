//! Helpers of the admin API suites (admin_api, browser, schemathesis_admin): native
//! sessions with the server's Fernet key, raw authenticated requests, a generated
//! stream that hashes what it yields, and a server seeded with items of every kind.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ferry_client::{Options, Receipt, Session};
use ferry_crypto::FernetKey;
use ferry_protocol::{Meta, Serialization};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

use crate::harness::{Admin, Server};

/// A native session to `server` with its Fernet key and Ferry's extensions (so
/// each receipt carries the stored item's id).
pub async fn session(server: &Server) -> Session {
    session_keyed(server, &server.fernet_key_file()).await
}

/// [`session`] with the Fernet key in `key_file` (servers sharing one key).
pub async fn session_keyed(server: &Server, key_file: &std::path::Path) -> Session {
    let key = FernetKey::load(key_file).expect("the server's fernet key");
    let options = Options {
        fernet: Some(Arc::new(key)),
        ..Options::default()
    };
    Session::connect(&server.tcp(), options)
        .await
        .expect("connect")
}

/// Sends a JSON object as a dictionary in `serialization`; returns the receipt.
pub async fn send_dict(
    session: &mut Session,
    value: Value,
    serialization: Serialization,
    encrypt: bool,
) -> Receipt {
    let Value::Object(dict) = value else {
        panic!("a dictionary must be a JSON object")
    };
    session
        .send_dict(&dict, serialization, encrypt)
        .await
        .expect("dictionary accepted")
}

/// Sends bytes as a text item, optionally with a file name.
pub async fn send_text(
    session: &mut Session,
    bytes: &[u8],
    name: Option<&str>,
    encrypt: bool,
) -> Receipt {
    session
        .send_bytes(Meta::text(encrypt), bytes, name)
        .await
        .expect("text accepted")
}

/// The id a Ferry server put in a receipt.
pub fn id_of(receipt: &Receipt) -> String {
    receipt
        .id
        .clone()
        .expect("Ferry's server names the stored item")
}

/// SHA-256, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Admin {
    /// `GET base + path` with the token.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("admin request")
    }

    /// `GET base + path` with the token and extra headers.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("admin request")
    }

    /// `GET base + path` with the token; must be 200 and JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body)
            .unwrap_or_else(|err| panic!("GET {path} is not JSON ({err}): {body}"))
    }
}

/// Deterministic pseudo-random bytes (xorshift64), `len` of them, hashed as they
/// are read: stands in for a huge file that never exists on disk.
#[derive(Debug)]
pub struct Generated {
    left: u64,
    state: u64,
    hasher: Sha256,
}

impl Generated {
    pub fn new(len: u64, seed: u64) -> Generated {
        Generated {
            left: len,
            state: seed | 1,
            hasher: Sha256::new(),
        }
    }

    /// The SHA-256 of everything read so far (all of it once read to the end).
    pub fn sha256(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left) as usize;
        let out = buf.initialize_unfilled_to(n);
        let mut state = self.state;
        for word in out.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        self.state = state;
        self.hasher.update(&out[..]);
        buf.advance(n);
        self.left -= n as u64;
        Poll::Ready(Ok(()))
    }
}

/// What [`seed_every_kind`] stored.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// A nested JSON dictionary (its id, and the dictionary).
    pub dict: (String, Value),
    /// A text item named `notes.txt` (its id, and the text).
    pub text: (String, String),
    /// Every id stored, in the order sent.
    pub ids: Vec<String>,
}

/// A dictionary with nesting, unicode and every JSON type.
pub fn sample_dict() -> Value {
    json!({
        "sensor": "s-17",
        "reading": {"value": 21.5, "unit": "C", "ok": true, "tags": ["roof", "north"]},
        "calibration": {"offset": -0.25, "at": null},
        "label": "Dachboden ☃",
    })
}

/// The text item's content.
pub fn sample_text() -> String {
    "Ferry notes\nline two: the quick brown fox jumps over the lazy dog\nünïcödé line three\n"
        .to_owned()
}

/// Stores one item of every kind over one native session: dictionaries as json,
/// pickle and xml (plain and encrypted), a named text, an unnamed text, an empty
/// text and a text large enough to be stored as its own record file.
pub async fn seed_every_kind(server: &Server) -> Seeded {
    let mut s = session(server).await;
    let mut ids = Vec::new();
    let dict = id_of(&send_dict(&mut s, sample_dict(), Serialization::Json, false).await);
    ids.push(dict.clone());
    ids.push(id_of(
        &send_dict(
            &mut s,
            json!({"kind": "pickle", "n": [1, 2, 3]}),
            Serialization::Binary,
            true,
        )
        .await,
    ));
    ids.push(id_of(
        &send_dict(
            &mut s,
            json!({"kind": "xml", "name": "legacy"}),
            Serialization::Xml,
            false,
        )
        .await,
    ));
    ids.push(id_of(
        &send_dict(
            &mut s,
            json!({"kind": "json", "encrypted": true}),
            Serialization::Json,
            true,
        )
        .await,
    ));
    let text = id_of(&send_text(&mut s, sample_text().as_bytes(), Some("notes.txt"), false).await);
    ids.push(text.clone());
    ids.push(id_of(
        &send_text(&mut s, b"unnamed text\n", None, true).await,
    ));
    ids.push(id_of(
        &send_text(&mut s, b"", Some("empty.txt"), false).await,
    ));
    let big: Vec<u8> = (0..400_000u32)
        .map(|i| b"0123456789abcdef\n"[(i % 17) as usize])
        .collect();
    ids.push(id_of(
        &send_text(&mut s, &big, Some("big.log"), false).await,
    ));
    s.end().await.unwrap();
    Seeded {
        dict: (dict, sample_dict()),
        text: (text, sample_text()),
        ids,
    }
}
