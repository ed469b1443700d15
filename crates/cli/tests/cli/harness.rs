//! A log built in process, an admin API serving its public endpoints, and a way
//! to run the real `ferry` binary.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ed25519_dalek::SigningKey;
use ferry_tlog::{Checkpoint, ConsistencyProof, Entry, Receipt, Signer, Tree};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub const ORIGIN: &str = "ferry.test/log";

/// The content of item `n` of a test log.
pub fn content(n: u64) -> Vec<u8> {
    format!("item {n}: some text\n").into_bytes()
}

/// A log of `stored` leaves signed by the key of seed `seed`.
#[derive(Debug)]
pub struct TestLog {
    pub signer: Signer,
    pub tree: Tree,
    pub entries: Vec<Entry>,
}

impl TestLog {
    /// A log whose leaf `n` stores [`content`]`(n + variant)`: logs of two
    /// variants differ in every leaf.
    pub fn new(seed: u8, leaves: u64, variant: u64) -> Self {
        let signer = Signer::new(ORIGIN, SigningKey::from_bytes(&[seed; 32])).unwrap();
        let mut log = Self {
            signer,
            tree: Tree::new(),
            entries: Vec::new(),
        };
        for n in 0..leaves {
            log.push(&content(n + variant));
        }
        log
    }

    /// Appends a `stored` leaf for `data`; returns its index.
    pub fn push(&mut self, data: &[u8]) -> u64 {
        let n = self.entries.len();
        let entry = Entry::stored(
            &format!("01JQ3V7ZK9T6N2XQ8W4R5B1C{n:02}"),
            &hex::encode(Sha256::digest(data)),
            data.len() as u64,
            "text",
            "utf8",
            "2026-12-02T10:00:00Z",
        );
        self.tree.append(entry.as_bytes());
        self.entries.push(entry);
        self.tree.len() - 1
    }

    pub fn key(&self) -> String {
        self.signer.verifier().to_string()
    }

    /// The receipt of leaf `index` with the signed checkpoint of the log as it
    /// is, as the server issues one.
    pub fn receipt(&self, index: u64) -> Receipt {
        self.receipt_in(index, self.tree.len())
    }

    /// The receipt of leaf `index` with the signed checkpoint of the first
    /// `size` leaves and the leaf's inclusion proof in that tree.
    pub fn receipt_in(&self, index: u64, size: u64) -> Receipt {
        let proof = self.tree.inclusion_proof(index, size).unwrap();
        let entry = &self.entries[index as usize];
        Receipt::new(ORIGIN, index, entry, self.note(size), &proof).unwrap()
    }

    pub fn note(&self, size: u64) -> String {
        let checkpoint = Checkpoint::new(ORIGIN, size, self.tree.root_at(size).unwrap()).unwrap();
        self.signer.sign_checkpoint(&checkpoint)
    }

    fn consistency(&self, from: u64, to: u64) -> Option<ConsistencyProof> {
        let proof = self.tree.consistency_proof(from, to).ok()?;
        Some(ConsistencyProof::new(from, to, &proof, self.note(to)))
    }
}

/// What the test admin API serves.
#[derive(Debug)]
struct Served {
    log: TestLog,
    /// How many consistency requests are answered 409 (no checkpoint that
    /// large published yet) before one is answered.
    not_yet: AtomicU32,
}

#[derive(Debug, Deserialize)]
struct Sizes {
    from: Option<u64>,
    to: Option<u64>,
}

/// Serves `log`'s public endpoints on 127.0.0.1 port 0, answering the first
/// `not_yet` consistency requests 409; returns the base URL.
pub async fn serve(log: TestLog, not_yet: u32) -> String {
    let served = Arc::new(Served {
        log,
        not_yet: AtomicU32::new(not_yet),
    });
    let app = Router::new()
        .route(
            "/api/log/key",
            get(|State(s): State<Arc<Served>>| async move { s.log.key() }),
        )
        .route(
            "/api/log/checkpoint",
            get(|State(s): State<Arc<Served>>| async move { s.log.note(s.log.tree.len()) }),
        )
        .route("/api/log/consistency", get(consistency))
        .with_state(served);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn consistency(State(s): State<Arc<Served>>, Query(q): Query<Sizes>) -> Response {
    let not_yet = s.not_yet.load(Ordering::SeqCst);
    if not_yet > 0 {
        s.not_yet.store(not_yet - 1, Ordering::SeqCst);
        return error(StatusCode::CONFLICT, "no checkpoint that large yet");
    }
    let to = q.to.unwrap_or(s.log.tree.len());
    match s.log.consistency(q.from.unwrap_or(u64::MAX), to) {
        Some(proof) => axum::Json(proof).into_response(),
        None => error(StatusCode::BAD_REQUEST, "no such sizes"),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": "test", "message": message });
    (status, axum::Json(body)).into_response()
}

/// Runs `ferry` with `args` in `dir`.
pub async fn ferry(dir: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(dir)
        .env_remove("FERRY_SERVER")
        .output()
        .await
        .unwrap()
}

/// The exit code, with the output in the message when it is not `expected`.
#[track_caller]
pub fn assert_exit(output: &Output, expected: i32) {
    assert_eq!(
        output.status.code(),
        Some(expected),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
