//! Real tus clients against the gateway's `/uploads`: tuspy (PyPI, pinned in
//! `tests/python/requirements.txt`, driven by `tests/python/tus_upload.py`) and
//! tus-js-client on Node (npm, pinned in `tests/tus-node/package-lock.json`,
//! driven by `tests/tus-node/upload.mjs`) upload a file of random bytes in
//! chunks through a proxy that cuts every connection several times, and across
//! a kill and restart of the gateway and of the server mid-upload. Each stored
//! item is the file, byte for byte (SHA-256 of the admin download), plain and
//! with the `encrypt` metadata.
//!
//! The path: client → proxy → gateway → proxy → server. The proxies stay up
//! while what is behind them restarts (on a new port), so the clients keep one
//! address and the gateway one server address.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::harness::gateway::{Gateway, Proxy, TOKEN};
use crate::harness::{Server, wait_until};
use rand::{RngCore, SeedableRng};
use serde_json::Value;
use sha2::{Digest, Sha256};

const MIB: u64 = 1 << 20;
/// The file each client uploads.
const SIZE: u64 = 200 * MIB;
/// Each PATCH: what a cut costs at most.
const CHUNK: u64 = 4 * MIB;
/// The longest a whole upload (cuts and restarts included) may take.
const PATIENCE: Duration = Duration::from_secs(300);

/// What happens to the path when the server's offset first reaches a fraction
/// of the file.
#[derive(Debug, Clone, Copy)]
enum Trouble {
    /// Every connection between the client and the gateway is cut, in the
    /// middle of a PATCH's body.
    Cut,
    /// The gateway is killed and another started (on a new port, behind the same proxy).
    RestartGateway,
    /// The server is killed and restarted on its data (on a new port).
    RestartServer,
}

const TROUBLES: [(f64, Trouble); 6] = [
    (0.10, Trouble::Cut),
    (0.20, Trouble::Cut),
    (0.35, Trouble::RestartGateway),
    (0.50, Trouble::Cut),
    (0.65, Trouble::RestartServer),
    (0.80, Trouble::Cut),
];

/// Which client uploads.
#[derive(Debug, Clone, Copy)]
enum Client {
    Tuspy,
    TusJs,
}

#[tokio::test]
async fn tuspy_uploads_through_cuts_and_restarts() {
    upload_through_trouble(Client::Tuspy, false).await;
}

#[tokio::test]
async fn tuspy_uploads_encrypted_through_cuts_and_restarts() {
    upload_through_trouble(Client::Tuspy, true).await;
}

#[tokio::test]
async fn tus_js_client_uploads_through_cuts_and_restarts() {
    upload_through_trouble(Client::TusJs, false).await;
}

#[tokio::test]
async fn tus_js_client_uploads_encrypted_through_cuts_and_restarts() {
    upload_through_trouble(Client::TusJs, true).await;
}

/// The server, the gateway, and the proxies in front of each.
struct Chain {
    server: Option<Server>,
    to_server: Proxy,
    gateway: Gateway,
    to_gateway: Proxy,
}

impl Chain {
    async fn start() -> Chain {
        let server = Server::start(&[]);
        let to_server = Proxy::start(&server.tcp()).await;
        let gateway = Gateway::start(&server, &to_server.addr, &[]);
        let to_gateway = Proxy::start(&gateway.running.addr("gateway")).await;
        Chain {
            server: Some(server),
            to_server,
            gateway,
            to_gateway,
        }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    fn endpoint(&self) -> String {
        format!("http://{}/uploads", self.to_gateway.addr)
    }

    async fn suffer(&mut self, trouble: Trouble) {
        match trouble {
            Trouble::Cut => {
                // A PATCH's body is CHUNK bytes: a cut after a quarter of one
                // more lands inside a body (its headers are a few hundred).
                let cut = self.to_gateway.cut_after(CHUNK / 4);
                tokio::time::timeout(PATIENCE, cut)
                    .await
                    .expect("the client sent nothing more to cut");
            }
            Trouble::RestartGateway => {
                self.gateway.running.kill();
                self.to_gateway.drop_all().await;
                self.gateway = Gateway::start(self.server(), &self.to_server.addr, &[]);
                self.to_gateway
                    .set_upstream(&self.gateway.running.addr("gateway"));
            }
            Trouble::RestartServer => {
                let server = self.server.take().unwrap().crash_and_restart(&[]);
                self.to_server.set_upstream(&server.tcp());
                self.to_server.drop_all().await;
                self.server = Some(server);
            }
        }
    }

    /// The committed offset of the one unfinished upload (admin API), if any.
    async fn offset(&self) -> Option<u64> {
        let admin = self.server().admin();
        let listed: Value = admin
            .http
            .get(format!("{}/api/uploads", admin.base))
            .bearer_auth(&admin.token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        listed["uploads"].as_array()?.first()?["size"].as_u64()
    }
}

async fn upload_through_trouble(client: Client, encrypt: bool) {
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("upload.bin");
    let digest = random_file(&file, SIZE, if encrypt { 2 } else { 1 });
    let mut path = Chain::start().await;
    let mut uploader = Uploader::spawn(client, &path.endpoint(), &file, encrypt);
    let started = std::time::Instant::now();

    for (fraction, trouble) in TROUBLES {
        let mark = (SIZE as f64 * fraction) as u64;
        wait_until(PATIENCE, async || {
            uploader.still_running()?;
            match path.offset().await {
                Some(offset) if offset >= mark => Ok(()),
                seen => Err(format!(
                    "offset {seen:?}, waiting for {mark} to {trouble:?}"
                )),
            }
        })
        .await;
        eprintln!(
            "{client:?}: {trouble:?} at {fraction} ({:?})",
            started.elapsed()
        );
        path.suffer(trouble).await;
    }

    let result = uploader.finish(PATIENCE).await;
    eprintln!("{client:?}: done in {:?}: {result}", started.elapsed());
    let id = result["item_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no item id: {result}"));
    let location = result["item_location"].as_str().unwrap_or_default();
    assert!(
        location.ends_with(&format!("/api/items/{id}")),
        "Ferry-Item-Location {location:?} does not name {id}"
    );
    let cuts = TROUBLES
        .iter()
        .filter(|(_, trouble)| matches!(trouble, Trouble::Cut))
        .count() as u64;
    assert!(
        result["retries"].as_u64().unwrap() >= cuts,
        "the client retried fewer times than it was cut mid-PATCH ({cuts}): {result}"
    );
    let admin = path.server().admin();
    assert_eq!(
        admin.content_digest(id).await,
        (SIZE, digest),
        "the stored item differs from the file"
    );
    let item: Value = admin
        .http
        .get(format!("{}/api/items/{id}", admin.base))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(item["encrypted_in_transit"], encrypt, "{item}");
    assert!(
        path.offset().await.is_none(),
        "an upload is still listed as unfinished"
    );
}

/// Writes `size` random bytes (from `seed`) to `path`; their SHA-256, hex.
fn random_file(path: &Path, size: u64, seed: u64) -> String {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; MIB as usize];
    let mut left = size;
    while left > 0 {
        let n = left.min(MIB) as usize;
        rng.fill_bytes(&mut block[..n]);
        hasher.update(&block[..n]);
        out.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    out.flush().unwrap();
    hex::encode(hasher.finalize())
}

/// A client process uploading one file; its stdout lines come through a channel.
struct Uploader {
    child: Child,
    lines: mpsc::Receiver<String>,
    client: Client,
}

impl Uploader {
    fn spawn(client: Client, endpoint: &str, file: &Path, encrypt: bool) -> Uploader {
        let chunk = CHUNK.to_string();
        let mut args = vec![
            "--endpoint".to_owned(),
            endpoint.to_owned(),
            "--file".to_owned(),
            file.to_str().unwrap().to_owned(),
            "--name".to_owned(),
            "upload.bin".to_owned(),
            "--chunk-size".to_owned(),
            chunk,
            "--token".to_owned(),
            TOKEN.to_owned(),
        ];
        if encrypt {
            args.push("--encrypt".to_owned());
        }
        let mut command = match client {
            Client::Tuspy => {
                let mut command = Command::new("python3");
                command.arg(crate::harness::python_script("tus_upload.py"));
                command.arg("--checksum");
                command
            }
            Client::TusJs => {
                let dir = tus_node_dir();
                let mut command = Command::new("node");
                command.current_dir(&dir).arg(dir.join("upload.mjs"));
                command
            }
        };
        let mut child = command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| panic!("starting {client:?}: {err}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Uploader {
            child,
            lines,
            client,
        }
    }

    /// `Err` (for [`wait_until`]) never: panics if the client has exited.
    fn still_running(&mut self) -> Result<(), String> {
        if let Some(status) = self.child.try_wait().unwrap() {
            let printed: Vec<String> = self.lines.try_iter().collect();
            panic!(
                "{:?} exited early ({status}) having printed {printed:?}",
                self.client
            );
        }
        Ok(())
    }

    /// Waits for the client's exit (a success) and returns its JSON line. Async:
    /// the proxies run on this test's runtime and must go on meanwhile.
    async fn finish(mut self, within: Duration) -> Value {
        let mut printed = Vec::new();
        let status = wait_until(within, async || {
            printed.extend(self.lines.try_iter());
            match self.child.try_wait().unwrap() {
                Some(status) => Ok(status),
                None => Err(format!(
                    "{:?} is still running; it printed {printed:?}",
                    self.client
                )),
            }
        })
        .await;
        // Its stdout is closed now: every line is in the channel.
        let reader_done = async || match self.lines.try_recv() {
            Ok(line) => {
                printed.push(line);
                Err("more lines".to_owned())
            }
            Err(mpsc::TryRecvError::Disconnected) => Ok(()),
            Err(mpsc::TryRecvError::Empty) => Err("its output is still being read".to_owned()),
        };
        wait_until(Duration::from_secs(10), reader_done).await;
        assert!(
            status.success(),
            "{:?} failed ({status}); it printed {printed:?}",
            self.client
        );
        assert!(
            printed
                .iter()
                .any(|line| line.starts_with("upload-url http://")),
            "{printed:?}"
        );
        let last = printed.last().expect("a result line");
        serde_json::from_str(last).unwrap_or_else(|err| panic!("{err}: {last}"))
    }
}

impl Drop for Uploader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tests/tus-node`, with its packages installed.
fn tus_node_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tus-node");
    assert!(
        dir.join("node_modules/tus-js-client").exists(),
        "{} is missing: run `npm ci` in tests/tus-node (scripts/test.sh does)",
        dir.join("node_modules/tus-js-client").display()
    );
    dir
}
