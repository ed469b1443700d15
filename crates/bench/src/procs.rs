//! The real binaries, started on port 0: each announces its listeners on stdout
//! (`  tcp      127.0.0.1:6868`), which is how we learn the addresses and know it
//! is ready. Logs (stderr) go to a file beside the data, shown if a start fails.

use anyhow::{Context, Result, bail};
use ferry_crypto::FernetKey;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_GRACE: Duration = Duration::from_secs(20);

/// A running binary and the listeners it announced.
#[derive(Debug)]
pub struct Process {
    child: Child,
    addrs: HashMap<String, String>,
}

impl Process {
    /// Starts `program` with `args` and the environment variables `env` added
    /// to the bench's own, logging to `log`, and waits until it has announced
    /// every listener named in `expect`.
    pub async fn start(
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
        log: &Path,
        expect: &[&str],
    ) -> Result<Process> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut addrs = HashMap::new();
        let announced = async {
            while !expect.iter().all(|name| addrs.contains_key(*name)) {
                let Some(line) = lines.next_line().await? else {
                    bail!("exited before announcing {expect:?}");
                };
                let mut words = line.split_whitespace();
                if let (Some(name), Some(addr), None) = (words.next(), words.next(), words.next()) {
                    let addr = addr.trim_start_matches("http://").trim_end_matches('/');
                    addrs.insert(name.to_owned(), addr.to_owned());
                }
            }
            Ok(())
        };
        let outcome = tokio::time::timeout(START_TIMEOUT, announced).await;
        if let Err(err) = outcome
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no announcement within {START_TIMEOUT:?}")))
        {
            let logs = std::fs::read_to_string(log).unwrap_or_default();
            bail!("{}: {err}\n{logs}", program.display());
        }
        // Keep reading stdout so a chatty program never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Process { child, addrs })
    }

    /// The address announced as `name` (`host:port`, without scheme).
    pub fn addr(&self, name: &str) -> &str {
        &self.addrs[name]
    }

    /// Peak resident memory so far (`VmHWM`), in bytes; 0 if unreadable.
    pub fn peak_rss(&self) -> u64 {
        let Some(pid) = self.child.id() else { return 0 };
        peak_rss_of(pid)
    }

    /// CPU time used so far, user and system, by every thread; zero if unreadable.
    pub fn cpu_time(&self) -> Duration {
        self.child.id().map_or(Duration::ZERO, cpu_time_of)
    }

    /// SIGTERM, then SIGKILL if it has not exited within the grace period.
    /// Returns the peak RSS read just before.
    pub async fn stop(mut self) -> Result<u64> {
        let peak = self.peak_rss();
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        if tokio::time::timeout(STOP_GRACE, self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await.context("killing")?;
        }
        Ok(peak)
    }
}

/// A process's peak RSS read every [`RssTrace::EVERY`] while something ran.
#[derive(Debug, Clone, Default)]
pub struct RssTrace {
    /// Time since the start, and the peak RSS (bytes) then.
    pub samples: Vec<(Duration, u64)>,
    pub elapsed: Duration,
}

impl RssTrace {
    pub const EVERY: Duration = Duration::from_millis(50);

    /// Runs `work` while reading `process`'s peak RSS.
    pub async fn during<T>(process: &Process, work: impl Future<Output = T>) -> (T, RssTrace) {
        let started = std::time::Instant::now();
        let mut trace = RssTrace::default();
        let mut ticks = tokio::time::interval(RssTrace::EVERY);
        let mut work = std::pin::pin!(work);
        let output = loop {
            tokio::select! {
                output = &mut work => break output,
                _ = ticks.tick() => trace.samples.push((started.elapsed(), process.peak_rss())),
            }
        };
        trace.elapsed = started.elapsed();
        trace.samples.push((trace.elapsed, process.peak_rss()));
        (output, trace)
    }

    /// The peak RSS once `fraction` of the time had passed (the first sample's
    /// if none was read that early).
    pub fn peak_by(&self, fraction: f64) -> u64 {
        let by = self.elapsed.mul_f64(fraction);
        self.samples
            .iter()
            .take_while(|(at, _)| *at <= by)
            .map(|(_, peak)| *peak)
            .max()
            .or(self.samples.first().map(|(_, peak)| *peak))
            .unwrap_or(0)
    }

    /// The peak RSS at the end.
    pub fn peak(&self) -> u64 {
        self.samples
            .iter()
            .map(|(_, peak)| *peak)
            .max()
            .unwrap_or(0)
    }
}

/// `VmHWM` of a process, in bytes; 0 if unreadable.
pub fn peak_rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// The CPU time process `pid` has used (`utime` + `stime` of `/proc/PID/stat`,
/// in Linux's fixed 100 ticks a second); zero if unreadable.
pub fn cpu_time_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which may hold spaces: the state is
    // the first, `utime` and `stime` the 12th and 13th.
    let ticks: u64 = stat.rsplit_once(')').map_or(0, |(_, fields)| {
        fields
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|f| f.parse::<u64>().ok())
            .sum()
    });
    Duration::from_millis(ticks * 10)
}

/// A `ferry-server` on port 0 with its own data directory, removed when stopped.
#[derive(Debug)]
pub struct Server {
    pub process: Process,
    dir: PathBuf,
}

impl Server {
    /// Starts a server whose data (and log) live in the fresh directory `dir`.
    pub async fn start(bin_dir: &Path, dir: PathBuf) -> Result<Server> {
        Server::start_with(bin_dir, dir, &[]).await
    }

    /// [`Server::start`] with `extra` flags.
    pub async fn start_with(bin_dir: &Path, dir: PathBuf, extra: &[&str]) -> Result<Server> {
        Server::start_env(bin_dir, dir, extra, &[]).await
    }

    /// [`Server::start_with`] with the environment variables `env` added (the
    /// S3 store's `AWS_*` settings).
    pub async fn start_env(
        bin_dir: &Path,
        dir: PathBuf,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Result<Server> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let data = dir.join("data");
        let data = data.to_str().context("non-UTF-8 work dir")?;
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
            data,
        ];
        args.extend_from_slice(extra);
        let process = Process::start(
            &bin_dir.join("ferry-server"),
            &args,
            env,
            &dir.join("server.log"),
            &["tcp", "admin"],
        )
        .await?;
        Ok(Server { process, dir })
    }

    pub fn tcp(&self) -> &str {
        self.process.addr("tcp")
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.process.addr("admin"))
    }

    pub fn fernet_key_file(&self) -> PathBuf {
        self.dir.join("data").join("fernet.key")
    }

    pub fn fernet_key(&self) -> Result<FernetKey> {
        FernetKey::load(&self.fernet_key_file()).context("loading the server's Fernet key")
    }

    /// The admin API's bearer token, which the server generated into its data directory.
    pub fn admin_token(&self) -> Result<String> {
        let path = self.dir.join("data").join("admin.token");
        let token = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(token.trim().to_owned())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server and deletes its data; returns its peak RSS in bytes.
    pub async fn stop(self) -> Result<u64> {
        let peak = self.process.stop().await?;
        std::fs::remove_dir_all(&self.dir)
            .with_context(|| format!("removing {}", self.dir.display()))?;
        Ok(peak)
    }
}

/// A `ferry-gateway` on port 0 forwarding to a [`Server`].
#[derive(Debug)]
pub struct Gateway {
    pub process: Process,
}

impl Gateway {
    pub async fn start(bin_dir: &Path, server: &Server) -> Result<Gateway> {
        Gateway::start_with(bin_dir, server, &[]).await
    }

    /// A gateway with `extra` flags.
    pub async fn start_with(bin_dir: &Path, server: &Server, extra: &[&str]) -> Result<Gateway> {
        let key = server.fernet_key_file();
        let admin = server.admin_url();
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--server",
            server.tcp(),
            "--fernet-key",
            key.to_str().context("non-UTF-8 work dir")?,
            "--admin-url",
            &admin,
        ];
        args.extend_from_slice(extra);
        let log = server.dir().join("gateway.log");
        let process = Process::start(
            &bin_dir.join("ferry-gateway"),
            &args,
            &[],
            &log,
            &["gateway"],
        )
        .await?;
        Ok(Gateway { process })
    }

    /// `http://host:port`
    pub fn url(&self) -> String {
        format!("http://{}", self.process.addr("gateway"))
    }
}
