//! What users compare Ferry with, measured in the same run: `scp` of the same file
//! over loopback (a throwaway `sshd` on 127.0.0.1, with keys made for the run),
//! and the legacy-style Python client sending small dictionaries one after
//! another over one connection.

use crate::Rate;
use crate::generate::TextReader;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// Where Debian's `openssh-server` puts the daemon (`scripts/bench.sh` installs it).
const SSHD: &str = "/usr/sbin/sshd";

/// The ciphers tried, fastest first on machines with AES instructions.
const CIPHERS: [&str; 4] = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "chacha20-poly1305@openssh.com",
];

/// `scp`'s rate with its fastest cipher, and that cipher.
#[derive(Debug, Clone)]
pub struct Scp {
    pub cipher: String,
    pub rate: Rate,
}

/// Copies a file of `len` bytes of the benchmark's text with `scp` to a
/// throwaway `sshd` on 127.0.0.1, once per cipher in `CIPHERS`; the best.
/// `Ok(Err(reason))` when there is no `sshd`, or every cipher failed.
pub async fn scp(dir: &Path, len: u64) -> Result<std::result::Result<Scp, String>> {
    if !Path::new(SSHD).exists() {
        return Ok(Err(format!(
            "{SSHD} is not installed (scripts/bench.sh installs openssh-server)"
        )));
    }
    let dir = dir.join("scp");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let sshd = Sshd::start(&dir).await?;
    let source = dir.join("source.txt");
    let mut file = tokio::fs::File::create(&source).await?;
    tokio::io::copy(&mut TextReader::new(len), &mut file).await?;
    file.sync_all().await?;
    drop(file);
    let mut best: Option<Scp> = None;
    let mut refused = Vec::new();
    for cipher in CIPHERS {
        let target = dir.join("copy.txt");
        let started = Instant::now();
        let output = sshd
            .scp(cipher, &source, &target)
            .await
            .context("running scp")?;
        let elapsed = started.elapsed();
        let copied = std::fs::metadata(&target).map_or(0, |m| m.len());
        let _ = std::fs::remove_file(&target);
        if !output.status.success() || copied != len {
            refused.push(format!(
                "{cipher}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
            continue;
        }
        let rate = Rate::new(len, elapsed);
        if best
            .as_ref()
            .is_none_or(|b| rate.mb_per_sec() > b.rate.mb_per_sec())
        {
            best = Some(Scp {
                cipher: cipher.to_owned(),
                rate,
            });
        }
    }
    sshd.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(best.ok_or_else(|| format!("scp failed with every cipher: {}", refused.join("; "))))
}

/// An `sshd` listening on 127.0.0.1 only, on a free port, with a host key and a
/// user key made for the run.
struct Sshd {
    child: Child,
    port: u16,
    user_key: PathBuf,
    user: String,
}

impl Sshd {
    async fn start(dir: &Path) -> Result<Sshd> {
        for key in ["host_key", "user_key"] {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(key))
                .stdin(Stdio::null())
                .status()
                .await
                .context("running ssh-keygen")?;
            if !status.success() {
                bail!("ssh-keygen failed for {key}");
            }
        }
        std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys"))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {dir}/host_key\n\
                 AuthorizedKeysFile {dir}/authorized_keys\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nStrictModes no\n\
                 UsePAM no\nPidFile {dir}/sshd.pid\nSubsystem sftp internal-sftp\n",
                dir = dir.display()
            ),
        )?;
        // sshd wants its privilege separation directory (root only).
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log"))?)
            .kill_on_drop(true)
            .spawn()
            .context("starting sshd")?;
        let user = String::from_utf8(
            Command::new("id")
                .arg("-un")
                .output()
                .await
                .context("running id -un")?
                .stdout,
        )?
        .trim()
        .to_owned();
        let sshd = Sshd {
            child,
            port,
            user_key: dir.join("user_key"),
            user,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
                bail!("sshd did not start listening: {log}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(sshd)
    }

    async fn scp(&self, cipher: &str, from: &Path, to: &Path) -> Result<std::process::Output> {
        Ok(Command::new("scp")
            .args(["-q", "-B", "-P", &self.port.to_string(), "-c", cipher])
            .args(["-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null"])
            .args(["-o", "Compression=no"])
            .arg("-i")
            .arg(&self.user_key)
            .arg(from)
            .arg(format!("{}@127.0.0.1:{}", self.user, to.display()))
            .stdin(Stdio::null())
            .output()
            .await?)
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The legacy-style Python client (`tests/python/legacy_client.py`).
fn legacy_client() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/legacy_client.py")
}

/// `count` small JSON dictionaries sent one after another over one connection by
/// the legacy-style Python client; the rate from its first `OK` to its last (so
/// Python's start is left out).
pub async fn python_dicts(addr: &str, count: u64) -> Result<Rate> {
    let plan: Vec<serde_json::Value> = (0..count)
        .map(|seq| {
            serde_json::json!({
                "kind": "dict",
                "format": "json",
                "content": crate::tcp::small_dict(seq),
            })
        })
        .collect();
    let mut child = Command::new("python3")
        .arg(legacy_client())
        .args(["--server", addr, "--sessions", "one"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting python3 tests/python/legacy_client.py")?;
    let mut stdin = child.stdin.take().context("piped stdin")?;
    stdin.write_all(&serde_json::to_vec(&plan)?).await?;
    drop(stdin);
    let mut lines = BufReader::new(child.stdout.take().context("piped stdout")?).lines();
    let (mut first, mut last, mut answered) = (None, None, 0u64);
    while let Some(line) = lines.next_line().await? {
        let now = Instant::now();
        let reply: serde_json::Value = serde_json::from_str(&line)?;
        let text = reply["reply"].as_str().unwrap_or_default();
        if text != "OK" {
            bail!("the server answered {text:?} to a dictionary");
        }
        first.get_or_insert(now);
        last = Some(now);
        answered += 1;
    }
    let output = child.wait_with_output().await?;
    if !output.status.success() || answered != count {
        bail!(
            "the Python client stopped after {answered} of {count}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    match (first, last) {
        (Some(first), Some(last)) if answered > 1 => Ok(Rate::new(answered - 1, last - first)),
        _ => bail!("too few dictionaries to time"),
    }
}

/// A server that answers `OK` to every transfer at once, storing nothing: the
/// Python client's own rate against it is the most any server could give one
/// connection of it. Serves until dropped; every connection on a task of its own.
#[derive(Debug)]
pub struct AnsweringStub {
    pub addr: String,
    task: tokio::task::JoinHandle<()>,
}

impl AnsweringStub {
    pub async fn start() -> Result<AnsweringStub> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer_every_transfer(stream));
            }
        });
        Ok(AnsweringStub { addr, task })
    }
}

impl Drop for AnsweringStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads legacy packets and writes `OK` after each final one, until the END byte,
/// the peer's close, or bytes that are not the protocol.
async fn answer_every_transfer(mut stream: tokio::net::TcpStream) {
    use ferry_protocol::{Decoder, Frame};
    use tokio::io::AsyncReadExt;
    let mut buf = bytes::BytesMut::with_capacity(1 << 16);
    loop {
        match Decoder.decode(&mut buf) {
            Ok(Some(Frame::Packet(packet))) if packet.final_ => {
                if stream.write_all(b"OK").await.is_err() {
                    return;
                }
            }
            Ok(Some(Frame::Packet(_) | Frame::Unassigned(_))) => {}
            Ok(None) => match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            Ok(Some(Frame::End)) | Err(_) => return,
        }
    }
}
