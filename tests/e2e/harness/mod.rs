//! Shared harness of the end-to-end suites: starts the real binaries on port 0
//! with fresh temporary directories, waits for the lines that announce their
//! listeners (no sleeps), and talks to them over real sockets.

pub mod admin;
pub mod gateway;
pub mod help;
pub mod raw;
mod wait;

pub use wait::wait_until;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A built binary of the workspace (built by `cargo build --bins` before the tests).
pub fn bin(name: &str) -> PathBuf {
    ferry_bins::path(name).unwrap_or_else(|err| panic!("{err}"))
}

/// The protocol's test vectors (`tests/vectors`: the recorded legacy session, CPython's pickles).
pub fn vectors() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    assert!(path.exists(), "missing {}", path.display());
    path
}

pub fn python_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// A running program that announced its listeners on stdout.
#[derive(Debug)]
pub struct Running {
    pub child: Child,
    /// `name -> address` from the announcement lines (`  tcp      127.0.0.1:1234`).
    pub addrs: std::collections::HashMap<String, String>,
    /// Every later stdout line (for `--print`).
    pub stdout: mpsc::Receiver<String>,
}

impl Running {
    /// Starts `program` and waits until it has announced every name in `expect`.
    pub fn start(program: &Path, args: &[&str], envs: &[(&str, &str)], expect: &[&str]) -> Running {
        Running::start_with_stderr(program, args, envs, expect, Stdio::inherit())
    }

    /// Like [`Running::start`], with the program's stderr (its log) going to `stderr`.
    pub fn start_with_stderr(
        program: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        expect: &[&str],
        stderr: Stdio,
    ) -> Running {
        let mut child = Command::new(program)
            .args(args)
            .env("FERRY_LOG", "info")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut addrs = std::collections::HashMap::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !expect.iter().all(|name| addrs.contains_key(*name)) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let status = child.try_wait().ok().flatten();
                    panic!(
                        "{} did not announce {expect:?} (exit status {status:?})",
                        program.display()
                    );
                }
            };
            let mut words = line.split_whitespace();
            if let (Some(name), Some(addr), None) = (words.next(), words.next(), words.next()) {
                addrs.insert(
                    name.to_owned(),
                    addr.trim_start_matches("http://")
                        .trim_start_matches("https://")
                        .trim_end_matches('/')
                        .to_owned(),
                );
            }
        }
        Running {
            child,
            addrs,
            stdout: rx,
        }
    }

    pub fn addr(&self, name: &str) -> String {
        self.addrs[name].clone()
    }

    /// SIGKILL: no chance to clean up, as in a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM without waiting for the exit.
    pub fn send_term(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        assert!(
            status.is_ok_and(|status| status.success()),
            "kill -TERM failed"
        );
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.send_term();
        self.child.wait().expect("wait")
    }

    /// A memory figure of the process from `/proc/PID/status` (`"VmRSS"`,
    /// `"VmHWM"`...), in KiB; 0 once the process is gone.
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Resident memory now (VmRSS), in bytes.
    pub fn rss_bytes(&self) -> u64 {
        self.memory_kib("VmRSS") * 1024
    }

    /// Peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.memory_kib("VmHWM")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP client builder. reqwest is built without a TLS crypto provider of its
/// own (the workspace's rustls uses ring alone): the first call makes ring the
/// process's provider.
pub fn http_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// An HTTP client with reqwest's defaults.
pub fn http() -> reqwest::Client {
    http_builder().build().expect("an HTTP client")
}

/// A `ferry-server` on port 0 with its own data directory.
#[derive(Debug)]
pub struct Server {
    pub running: Running,
    pub dir: tempfile::TempDir,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        Server::start_in(tempfile::tempdir().expect("tempdir"), extra)
    }

    /// Starts (or restarts) a server on an existing data directory.
    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Server {
        Server::launch(dir, extra, Stdio::inherit())
    }

    fn launch(dir: tempfile::TempDir, extra: &[&str], stderr: Stdio) -> Server {
        Server::start_with(dir, extra, &[], stderr)
    }

    /// A server on `dir` (data in `dir/data`) with extra flags, environment
    /// variables, and its log (stderr) going to `stderr`.
    pub fn start_with(
        dir: tempfile::TempDir,
        extra: &[&str],
        envs: &[(&str, &str)],
        stderr: Stdio,
    ) -> Server {
        let data = dir.path().join("data");
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let running = Running::start_with_stderr(
            &bin("ferry-server"),
            &args,
            envs,
            &["tcp", "admin"],
            stderr,
        );
        Server { running, dir }
    }

    /// A server whose log (stderr) goes to [`Server::log_file`] instead of the test's stderr.
    pub fn start_logged(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("server.log");
        Server::launch(dir, extra, Stdio::from(log))
    }

    /// Where [`Server::start_logged`] sends the server's log.
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    pub fn tcp(&self) -> String {
        self.running.addr("tcp")
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.running.addr("admin"))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn fernet_key_file(&self) -> PathBuf {
        self.data_dir().join("fernet.key")
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("admin.token"))
            .expect("admin token")
            .trim()
            .to_owned()
    }

    /// Kills the server (SIGKILL) and starts a new one on the same data directory.
    pub fn crash_and_restart(mut self, extra: &[&str]) -> Server {
        self.running.kill();
        let Server { dir, running } = self;
        drop(running);
        Server::start_in(dir, extra)
    }

    /// An admin API client with the token.
    pub fn admin(&self) -> Admin {
        Admin {
            base: self.admin_url(),
            token: self.token(),
            http: crate::harness::http(),
        }
    }
}

/// A thin admin API client for checking what was stored.
#[derive(Debug, Clone)]
pub struct Admin {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Admin {
    /// Every stored item's metadata, newest first (follows the cursor).
    pub async fn all_items(&self) -> Vec<serde_json::Value> {
        let mut items = Vec::new();
        let mut url = format!("{}/api/items?limit=1000", self.base);
        loop {
            let page: serde_json::Value = self
                .http
                .get(&url)
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap()
                .json()
                .await
                .unwrap();
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next"].as_str() {
                Some(next) => url = format!("{}/api/items?limit=1000&cursor={next}", self.base),
                None => return items,
            }
        }
    }

    /// `DELETE /api/items/{id}` with the token; the status.
    pub async fn delete(&self, id: &str) -> reqwest::StatusCode {
        self.http
            .delete(format!("{}/api/items/{id}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// `GET /metrics` with the token, answered `200`: the Prometheus text.
    pub async fn metrics(&self) -> String {
        let response = self.fetch("/metrics").await;
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// A successful GET of an admin path (`/api/items/…`, `/metrics`) with the token.
    async fn fetch(&self, path: &str) -> reqwest::Response {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response
    }

    pub async fn content(&self, id: &str) -> Vec<u8> {
        self.fetch(&format!("/api/items/{id}/content"))
            .await
            .bytes()
            .await
            .unwrap()
            .to_vec()
    }

    /// The size and SHA-256 of an item's content, streamed: the body is never held whole.
    pub async fn content_digest(&self, id: &str) -> (u64, String) {
        use futures::StreamExt;
        use sha2::Digest;
        let response = self.fetch(&format!("/api/items/{id}/content")).await;
        let mut hasher = sha2::Sha256::new();
        let mut size = 0u64;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.unwrap_or_else(|err| {
                panic!("content of {id} broke off after {size} bytes: {err}")
            });
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        (size, hex::encode(hasher.finalize()))
    }

    /// Every listed item's metadata, oldest first (ids sort in arrival order).
    pub async fn items_oldest_first(&self) -> Vec<serde_json::Value> {
        let mut items = self.all_items().await;
        items.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        items
    }

    /// Waits until `count` items are listed, or panics at the deadline.
    pub async fn wait_for_count(&self, count: usize, within: Duration) -> Vec<serde_json::Value> {
        let items = wait_until(within, async || {
            let items = self.all_items().await;
            match items.len() >= count {
                true => Ok(items),
                false => Err(format!("{} of {count} items listed", items.len())),
            }
        })
        .await;
        assert_eq!(items.len(), count, "items listed");
        items
    }

    pub async fn content_as_json(&self, id: &str) -> serde_json::Value {
        self.fetch(&format!("/api/items/{id}/content?as=json"))
            .await
            .json()
            .await
            .unwrap()
    }
}

/// One transfer as the Python client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub reply: String,
    /// Plaintext bytes sent, and their SHA-256.
    pub size: u64,
    pub sha256: String,
}

impl Sent {
    /// A transfer as the Python legacy-style client reports it, one JSON line.
    pub fn from_line(line: &serde_json::Value) -> Sent {
        Sent {
            reply: line["reply"].as_str().unwrap().to_owned(),
            size: line["size"].as_u64().unwrap(),
            sha256: line["sha256"].as_str().unwrap().to_owned(),
        }
    }
}

/// Runs a Python script (`command`, its arguments given) with `plan` on its stdin;
/// panics unless it succeeds; returns the JSON lines it printed.
pub fn python_lines(mut command: Command, plan: &serde_json::Value) -> Vec<serde_json::Value> {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plan.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {:?}",
        output.status
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Runs the Python legacy-style client with a plan; returns the reply of each transfer.
pub fn python_client(
    server: &str,
    key: Option<&Path>,
    sessions: &str,
    plan: &serde_json::Value,
) -> Vec<String> {
    python_transfers(server, key, sessions, plan)
        .into_iter()
        .map(|sent| sent.reply)
        .collect()
}

/// Runs the Python legacy-style client with a plan; returns what it sent and heard, per transfer.
pub fn python_transfers(
    server: &str,
    key: Option<&Path>,
    sessions: &str,
    plan: &serde_json::Value,
) -> Vec<Sent> {
    let mut command = Command::new("python3");
    command.arg(python_script("legacy_client.py")).args([
        "--server",
        server,
        "--sessions",
        sessions,
    ]);
    if let Some(key) = key {
        command.arg("--key").arg(key);
    }
    python_lines(command, plan)
        .iter()
        .map(Sent::from_line)
        .collect()
}

/// Writes `len` bytes of varied text to a file.
pub fn text_file(dir: &Path, name: &str, len: usize) -> PathBuf {
    use std::io::Write;
    let path = dir.join(name);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let line = b"The quick brown fox jumps over the lazy dog 0123456789.\n";
    let mut left = len;
    let mut n = 0u64;
    while left > 0 {
        let prefix = format!("{n:08} ");
        let chunk: Vec<u8> = prefix
            .bytes()
            .chain(line.iter().copied())
            .take(left)
            .collect();
        file.write_all(&chunk).unwrap();
        left -= chunk.len();
        n += 1;
    }
    file.flush().unwrap();
    path
}

pub fn sha256_file(path: &Path) -> String {
    let output = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// A fresh legacy client's small JSON transfer is answered exactly `OK`.
pub async fn assert_still_serves(server: &Server) {
    let mut conn = raw::Raw::connect(&server.tcp()).await;
    let reply = conn
        .exchange(&raw::transfer(
            raw::dict_meta(2, false),
            br#"{"still": "serving"}"#,
        ))
        .await;
    assert_eq!(reply, "OK", "a fresh client after the hostile input");
    conn.end().await;
}
