//! `ferry send file` resumes by itself (extension 3): through a proxy that cuts
//! every connection again and again, after the first run was killed
//! (`--resume ID`), and across a crash and restart of the server. Each time the
//! stored item is byte-identical: its SHA-256 as the admin API lists it and as
//! its downloaded content hashes.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use crate::harness::gateway::Proxy;
use crate::harness::{Server, bin, sha256_file, text_file, wait_until};
use ferry_client::{Options, Session};

const SIZE: usize = 20_000_000;
const CHUNK: u64 = 1 << 20;

/// A running `ferry send file`.
struct FerrySend {
    child: Child,
    /// Its stderr, line by line.
    stderr: mpsc::Receiver<String>,
    /// Every stderr line seen so far.
    seen: Vec<String>,
    stdout: std::thread::JoinHandle<String>,
}

impl FerrySend {
    fn start(server: &Server, addr: &str, args: &[&str], file: &Path) -> FerrySend {
        let mut child = Command::new(bin("ferry"))
            .args(["send", "--server", addr, "--fernet-key"])
            .arg(server.fernet_key_file())
            .args(["file", "--chunk-size", "1M", "--retry-for", "60s"])
            .args(args)
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ferry");
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            text
        });
        let err = child.stderr.take().unwrap();
        let (tx, stderr) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        FerrySend {
            child,
            stderr,
            seen: Vec::new(),
            stdout,
        }
    }

    /// The upload id the run printed (`upload ID for PATH: resume with --resume ID`).
    /// Waits without blocking the runtime: the proxy runs on it.
    async fn upload_id(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let line = match self.stderr.try_recv() {
                Ok(line) => line,
                Err(mpsc::TryRecvError::Empty) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "no upload id printed; stderr: {:?}",
                        self.seen
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                Err(mpsc::TryRecvError::Disconnected) => {
                    panic!(
                        "ferry send ended printing no upload id; stderr: {:?}",
                        self.seen
                    )
                }
            };
            self.seen.push(line.clone());
            if let Some(rest) = line.strip_prefix("upload ")
                && let Some((id, _)) = rest.split_once(" for ")
            {
                assert!(
                    line.ends_with(&format!(": resume with --resume {id}")),
                    "{line}"
                );
                return id.to_owned();
            }
        }
    }

    /// Waits for the run to succeed; its stdout and stderr.
    async fn succeeds(mut self, within: Duration) -> (String, String) {
        let status = wait_until(within, async || {
            match self.child.try_wait().expect("try_wait") {
                Some(status) => Ok(status),
                None => Err("ferry send is still running".to_owned()),
            }
        })
        .await;
        let stdout = self.stdout.join().unwrap();
        self.seen.extend(self.stderr.try_iter());
        let stderr = self.seen.join("\n");
        assert!(status.success(), "ferry send failed: {status:?}\n{stderr}");
        (stdout, stderr)
    }

    /// SIGKILL, as a crash or an impatient user would.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The id and SHA-256 of `ferry send`'s `PATH: stored as ID (N bytes, sha256 X)`.
fn stored(stdout: &str) -> (String, String) {
    let line = stdout
        .lines()
        .find(|line| line.contains(": stored as "))
        .unwrap_or_else(|| panic!("nothing stored: {stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "as").unwrap();
    let sha = words.iter().position(|w| *w == "sha256").unwrap();
    (
        words[at + 1].to_owned(),
        words[sha + 1].trim_end_matches(')').to_owned(),
    )
}

/// The one listed item is `file`, byte for byte: the SHA-256 the admin API
/// lists and the hash of its downloaded content are the file's.
async fn assert_stored_whole(server: &Server, stdout: &str, file: &Path) {
    let (id, sha256) = stored(stdout);
    let expected = sha256_file(file);
    assert_eq!(sha256, expected, "the SHA-256 ferry send printed");
    let admin = server.admin();
    let items = admin.all_items().await;
    assert_eq!(items.len(), 1, "one item: {items:?}");
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["sha256"], expected.as_str());
    assert_eq!(items[0]["size"], SIZE as u64);
    assert_eq!(
        items[0]["name"],
        file.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(
        admin.content_digest(&id).await,
        (SIZE as u64, expected),
        "the downloaded content"
    );
}

/// The committed offset of upload `id`, asked over the native protocol.
async fn offset(server_tcp: &str, key: &Path, id: &str) -> Result<u64, String> {
    let options = Options {
        fernet: Some(Arc::new(ferry_crypto::FernetKey::load(key).unwrap())),
        ..Options::default()
    };
    let mut session = Session::connect(server_tcp, options)
        .await
        .map_err(|err| err.to_string())?;
    let state = session
        .upload_state(id)
        .await
        .map_err(|err| err.to_string())?;
    let _ = session.end().await;
    Ok(state.offset)
}

/// Waits until upload `id` has some bytes committed, but not all; that offset.
async fn some_offset(server: &Server, id: &str) -> u64 {
    let (tcp, key) = (server.tcp(), server.fernet_key_file());
    wait_until(Duration::from_secs(60), async || {
        match offset(&tcp, &key, id).await? {
            0 => Err("nothing committed yet".to_owned()),
            at if at < SIZE as u64 => Ok(at),
            at => panic!("the upload is complete ({at} bytes) before the test could interrupt it"),
        }
    })
    .await
}

fn big_file(dir: &Path) -> PathBuf {
    text_file(dir, "big.txt", SIZE)
}

#[tokio::test]
async fn ferry_send_file_completes_through_a_proxy_that_keeps_cutting_its_connections() {
    let server = Server::start(&[]);
    // Slow enough that the upload takes a few seconds, so the cuts land in it.
    let proxy = Arc::new(Proxy::throttled(&server.tcp(), 16 << 20).await);
    let dir = tempfile::tempdir().unwrap();
    let file = big_file(dir.path());
    let send = FerrySend::start(&server, &proxy.addr, &[], &file);
    let cutter = {
        let proxy = proxy.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = tokio::time::timeout(Duration::from_secs(5), proxy.drop_all()).await;
            }
        })
    };
    let (stdout, stderr) = send.succeeds(Duration::from_secs(240)).await;
    cutter.abort();
    assert!(
        proxy.connections() >= 3,
        "only {} connections: the cuts did not interrupt the upload\n{stderr}",
        proxy.connections()
    );
    assert!(stderr.contains("trying again"), "{stderr}");
    // Each cut costs at most the append in flight: the file is not sent again.
    let sent: usize = proxy.recorded().iter().map(Vec::len).sum();
    let overhead = proxy.connections() * (CHUNK as usize + 64 * 1024);
    assert!(
        sent < SIZE + overhead,
        "{sent} bytes sent for {SIZE} over {} connections",
        proxy.connections()
    );
    assert_stored_whole(&server, &stdout, &file).await;
}

#[tokio::test]
async fn ferry_send_file_resume_continues_the_upload_of_a_killed_run() {
    let server = Server::start(&[]);
    // A slow link, so that the first run is surely killed mid-way.
    let proxy = Proxy::throttled(&server.tcp(), 4 << 20).await;
    let dir = tempfile::tempdir().unwrap();
    let file = big_file(dir.path());
    let mut first = FerrySend::start(&server, &proxy.addr, &["--encrypt"], &file);
    let id = first.upload_id().await;
    let at = some_offset(&server, &id).await;
    first.kill();
    let left = offset(&server.tcp(), &server.fernet_key_file(), &id)
        .await
        .unwrap();
    assert!(left >= at && left < SIZE as u64, "{at} then {left}");
    assert_eq!(left % CHUNK, 0, "whole appends only: {left}");
    assert!(server.admin().all_items().await.is_empty());

    let second = FerrySend::start(
        &server,
        &server.tcp(),
        &["--encrypt", "--resume", &id],
        &file,
    );
    let (stdout, stderr) = second.succeeds(Duration::from_secs(120)).await;
    // It went on from the committed offset (or later: the killed run's last
    // append may have been committed after `left` was asked), not from 0.
    let from: u64 = stderr
        .lines()
        .find_map(|line| {
            line.split_once(&format!("continuing upload {id} at byte "))?
                .1
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no continuing line: {stderr}"));
    assert!(
        from >= left && from.is_multiple_of(CHUNK),
        "continued at {from}, committed {left}"
    );
    assert_stored_whole(&server, &stdout, &file).await;
    let items = server.admin().all_items().await;
    assert_eq!(items[0]["encrypted_in_transit"], true);
}

#[tokio::test]
async fn ferry_send_file_continues_across_a_crash_and_restart_of_the_server() {
    let server = Server::start(&[]);
    let proxy = Proxy::throttled(&server.tcp(), 4 << 20).await;
    let dir = tempfile::tempdir().unwrap();
    let file = big_file(dir.path());
    let mut send = FerrySend::start(&server, &proxy.addr, &[], &file);
    let id = send.upload_id().await;
    some_offset(&server, &id).await;
    let server = server.crash_and_restart(&[]);
    proxy.set_upstream(&server.tcp());
    let (stdout, stderr) = send.succeeds(Duration::from_secs(180)).await;
    assert!(stderr.contains("trying again"), "{stderr}");
    assert_stored_whole(&server, &stdout, &file).await;
}
