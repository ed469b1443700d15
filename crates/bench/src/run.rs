//! One benchmark run: the limits first, then each phase on a fresh server (and
//! gateway) whose data is deleted as soon as the phase ends, so a 4 GiB item and
//! several 1 GiB ones never sit on the disk together.

use crate::machine::Machine;
use crate::procs::{Gateway, Server};
use crate::rate::Costed;
use crate::report::{Report, Target, number};
use crate::s3::S3Endpoint;
use crate::{Rate, compare, http, limits, tcp, tus};

/// The row after each dictionary rate: its server's CPU time per dictionary.
const CPU_PER_DICT: &str = "(its server's CPU time per dictionary, /proc)";
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod s3_figures;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// How much each figure moves.
#[derive(Debug, Clone)]
pub struct Sizes {
    pub name: &'static str,
    /// `dd` size, in MiB.
    pub dd_mib: u64,
    pub loopback_bytes: u64,
    pub cipher_bytes: u64,
    /// The text transfers over TCP and `POST /file`.
    pub transfer_bytes: u64,
    /// The transfer during which the server's peak RSS is measured.
    pub rss_transfer_bytes: u64,
    pub dict_single: Duration,
    /// Small dictionaries sent by the legacy-style Python client over one connection.
    pub python_dicts: u64,
    /// Synced small writes of each kind, for the disk's sync rates.
    pub sync_writes: u64,
    pub dict_multi: Duration,
    pub http_dict: Duration,
    /// Concurrent sessions (TCP) or HTTP workers for the many-connection figures.
    pub connections: usize,
    /// Each tus `PATCH` of the tus uploads (of `transfer_bytes`).
    pub tus_chunk: u64,
    /// How long the S3 server's sequential small PUTs are measured.
    pub s3_puts: Duration,
    /// Small items sent to one server, each timed until another lists it.
    pub visibility_items: u64,
}

impl Sizes {
    /// The real benchmark: 1 GiB transfers, a 4 GiB one, seconds of dictionaries.
    pub fn full() -> Sizes {
        Sizes {
            name: "full",
            dd_mib: 1024,
            loopback_bytes: 2 * GIB,
            cipher_bytes: 512 * MIB,
            transfer_bytes: GIB,
            rss_transfer_bytes: 4 * GIB,
            dict_single: Duration::from_secs(3),
            python_dicts: 20_000,
            sync_writes: 10_000,
            dict_multi: Duration::from_secs(5),
            http_dict: Duration::from_secs(5),
            connections: 64,
            tus_chunk: 8 * MIB,
            s3_puts: Duration::from_secs(5),
            visibility_items: 200,
        }
    }

    /// A smoke run of the real binaries in well under a minute.
    pub fn quick() -> Sizes {
        Sizes {
            name: "quick",
            dd_mib: 128,
            loopback_bytes: 256 * MIB,
            cipher_bytes: 64 * MIB,
            transfer_bytes: 64 * MIB,
            rss_transfer_bytes: 256 * MIB,
            dict_single: Duration::from_secs(1),
            python_dicts: 3_000,
            sync_writes: 2_000,
            dict_multi: Duration::from_secs(2),
            http_dict: Duration::from_secs(2),
            connections: 64,
            tus_chunk: 8 * MIB,
            s3_puts: Duration::from_secs(2),
            visibility_items: 50,
        }
    }

    /// Just enough to exercise every code path (the test suite's smoke test).
    pub fn tiny() -> Sizes {
        Sizes {
            name: "tiny",
            dd_mib: 1,
            loopback_bytes: MIB,
            cipher_bytes: MIB,
            transfer_bytes: MIB + 7,
            rss_transfer_bytes: 2 * MIB,
            dict_single: Duration::from_millis(200),
            python_dicts: 50,
            sync_writes: 50,
            dict_multi: Duration::from_millis(300),
            http_dict: Duration::from_millis(300),
            connections: 8,
            tus_chunk: 256 * 1024,
            s3_puts: Duration::from_millis(300),
            visibility_items: 5,
        }
    }
}

/// Which figures to measure (the limits are always measured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    All,
    /// The TCP server's figures.
    Tcp,
    /// The gateway's figures, with the direct TCP figures they are compared to.
    Gateway,
    /// The gateway's tus uploads, with the `POST /file` they are compared to.
    Tus,
    /// The S3 store, with the S3 server's own rates they are compared to.
    S3,
}

/// Where the binaries are, where to work, and how much to move.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Directory holding `ferry-server` and `ferry-gateway`.
    pub bin_dir: PathBuf,
    /// Scratch space on the disk being measured; a fresh directory inside it is
    /// used and removed, and the directory itself too if it is then empty.
    pub work_dir: PathBuf,
    pub sizes: Sizes,
    pub only: Only,
    /// The S3 server and bucket of the S3 figures; `None`: moto's server,
    /// started for the run and stopped after.
    pub s3: Option<S3Endpoint>,
}

const LIMITS: &str = "Limits";
const TCP: &str = "TCP server";
const GATEWAY: &str = "Gateway";
const TUS: &str = "Gateway, tus";
const RUN: &str = "Whole run";

/// A gateway rate limit (per client address) far above what the benchmark sends:
/// every request goes through the limiter, none is refused.
const UNREACHED_RATE_LIMIT: &[&str] =
    &["--rate-limit", "10000000", "--rate-limit-burst", "10000000"];

/// Runs the benchmark; progress goes to stderr.
pub async fn run(plan: &Plan) -> Result<Report> {
    std::fs::create_dir_all(&plan.work_dir)
        .with_context(|| format!("creating {}", plan.work_dir.display()))?;
    let scratch = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&plan.work_dir)
        .context("creating the run directory")?;
    let mut bench = Bench {
        plan,
        dir: scratch.path().to_owned(),
        started: 0,
        server_peak: (0, String::new()),
        gateway_peak: 0,
        phase: "",
    };
    let outcome = bench.all().await;
    drop(scratch);
    let _ = std::fs::remove_dir(&plan.work_dir);
    outcome
}

struct Bench<'a> {
    plan: &'a Plan,
    dir: PathBuf,
    started: usize,
    /// The highest peak RSS of any server, and the phase it served.
    server_peak: (u64, String),
    gateway_peak: u64,
    /// What the server being started is for, named in the whole-run peak.
    phase: &'static str,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

fn size(bytes: u64) -> String {
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else {
        format!("{:.0} MiB", mib(bytes))
    }
}

impl Bench<'_> {
    async fn all(&mut self) -> Result<Report> {
        let sizes = self.plan.sizes.clone();
        let only = self.plan.only;
        let tcp_on = matches!(only, Only::All | Only::Tcp);
        let gateway_on = matches!(only, Only::All | Only::Gateway);
        let tus_on = matches!(only, Only::All | Only::Tus);
        let s3_on = matches!(only, Only::All | Only::S3);
        let mut report = Report {
            machine: Machine::detect(),
            mode: sizes.name.to_owned(),
            load_after: String::new(),
            figures: Vec::new(),
            notes: Vec::new(),
        };

        progress(format!("disk: dd {} MiB with fdatasync", sizes.dd_mib));
        let disk = limits::disk_fsync(&self.dir, sizes.dd_mib).await?;
        progress(format!("loopback TCP: {}", size(sizes.loopback_bytes)));
        let loopback = limits::loopback(sizes.loopback_bytes).await?;
        progress(format!("Fernet: {}", size(sizes.cipher_bytes)));
        let cipher_bytes = sizes.cipher_bytes;
        let cipher = tokio::task::spawn_blocking(move || limits::cipher(cipher_bytes)).await??;
        progress(format!(
            "at rest (SHA-256, AES-256-GCM): {}",
            size(cipher_bytes)
        ));
        let at_rest = tokio::task::spawn_blocking(move || limits::at_rest(cipher_bytes)).await??;
        progress(format!(
            "disk: {} synced {}-byte appends, then overwrites",
            sizes.sync_writes,
            limits::SMALL_WRITE
        ));
        let (dir, count) = (self.dir.clone(), sizes.sync_writes);
        let sync = tokio::task::spawn_blocking(move || limits::sync_writes(&dir, count)).await??;
        progress(format!(
            "disk: {} into the page cache, no sync",
            size(sizes.transfer_bytes)
        ));
        let (dir, bytes) = (self.dir.clone(), sizes.transfer_bytes);
        let page_cache =
            tokio::task::spawn_blocking(move || limits::page_cache_write(&dir, bytes)).await??;
        report.push(
            LIMITS,
            format!("disk write with fsync (dd {} MiB)", sizes.dd_mib),
            disk.mb_per_sec(),
            "MB/s",
            Target::None,
        );
        report.push(
            LIMITS,
            format!(
                "disk: {}-byte append + fdatasync, one at a time",
                limits::SMALL_WRITE
            ),
            sync.append.per_sec(),
            "writes/s",
            Target::None,
        );
        report.push(
            LIMITS,
            format!(
                "disk: {}-byte overwrite of prepared space + fdatasync, one at a time",
                limits::SMALL_WRITE
            ),
            sync.overwrite.per_sec(),
            "writes/s",
            Target::None,
        );
        report.push(
            LIMITS,
            format!(
                "disk: {}-byte overwrite of prepared space + fdatasync (a small dictionary's log frame)",
                limits::FRAME_WRITE
            ),
            sync.overwrite_frame.per_sec(),
            "writes/s",
            Target::None,
        );
        report.push(
            LIMITS,
            format!("loopback TCP, 1 stream ({})", size(sizes.loopback_bytes)),
            loopback.mb_per_sec(),
            "MB/s",
            Target::None,
        );
        report.push(
            LIMITS,
            "Fernet encrypt, 48,000-byte pieces, 1 core",
            cipher.encrypt.mb_per_sec(),
            "MB/s",
            Target::None,
        );
        report.push(
            LIMITS,
            "Fernet decrypt, 48,000-byte pieces, 1 core",
            cipher.decrypt.mb_per_sec(),
            "MB/s",
            Target::None,
        );
        report.push(
            LIMITS,
            "Fernet encrypt+decrypt, 1 core",
            cipher.round_trip.mb_per_sec(),
            "MB/s",
            Target::None,
        );
        report.push(
            LIMITS,
            "SHA-256 of the plaintext (item metadata), 1 MiB batches, 1 core",
            at_rest.sha256.mb_per_sec(),
            "MB/s",
            Target::None,
        );
        report.push(
            LIMITS,
            "AES-256-GCM record sealing (at rest), 1 MiB batches, 1 core",
            at_rest.seal.mb_per_sec(),
            "MB/s",
            Target::None,
        );
        report.push(
            LIMITS,
            "AES-256-GCM record opening and reading (at rest), 1 core",
            at_rest.open.mb_per_sec(),
            "MB/s",
            Target::None,
        );

        let cores = report.machine.cores;
        let ceiling = limits::encrypted_ceiling(&cipher, &at_rest, cores);
        report.push(
            LIMITS,
            format!(
                "Fernet transfer ceiling: encrypt, decrypt, SHA-256 and sealing spread over {cores} cores"
            ),
            ceiling,
            "MB/s",
            Target::None,
        );
        let one = size(sizes.transfer_bytes);
        report.push(
            LIMITS,
            format!("page-cache write: {one} into the kernel's cache, no sync, 1 core"),
            page_cache.mb_per_sec(),
            "MB/s",
            Target::None,
        );
        report.push(
            LIMITS,
            "Fernet transfer ceiling with the server's page-cache copy counted too",
            limits::with_page_cache(ceiling, &page_cache, cores),
            "MB/s",
            Target::None,
        );
        let n = sizes.connections;
        let mut direct_dicts = None;
        if tcp_on {
            // The same plain transfer with nothing to wait for on the disk: what the
            // client, the kernel's TCP and the server's hashing and sealing cost.
            if let Some(tmpfs) = tmpfs_dir() {
                progress(format!(
                    "TCP: {one} plain transfer to a tmpfs data directory"
                ));
                let ceiling = self
                    .tcp_transfer_in(&tmpfs, false, sizes.transfer_bytes)
                    .await;
                let _ = std::fs::remove_dir_all(&tmpfs);
                let ceiling = ceiling?;
                report.push(
                    LIMITS,
                    format!("{one} text, plain, data on tmpfs (no disk: the CPU ceiling)"),
                    ceiling.mb_per_sec(),
                    "MB/s",
                    Target::None,
                );
            }
            if let Some(tmpfs) = tmpfs_dir() {
                progress(format!(
                    "TCP: {one} Fernet transfer to a tmpfs data directory"
                ));
                let fernet = self
                    .tcp_transfer_in(&tmpfs, true, sizes.transfer_bytes)
                    .await;
                let _ = std::fs::remove_dir_all(&tmpfs);
                report.push(
                    LIMITS,
                    format!("{one} text, Fernet, data on tmpfs"),
                    fernet?.mb_per_sec(),
                    "MB/s",
                    Target::None,
                );
            }
            progress(format!("scp: {one} over loopback, each cipher"));
            let scp = compare::scp(&self.dir, sizes.transfer_bytes).await?;
            match &scp {
                Ok(scp) => report.push(
                    LIMITS,
                    format!("scp {one} over loopback, fastest cipher ({})", scp.cipher),
                    scp.rate.mb_per_sec(),
                    "MB/s",
                    Target::None,
                ),
                Err(reason) => report.notes.push(format!("no scp figure: {reason}")),
            }
            progress(format!("TCP: {one} plain transfer"));
            let plain = self.tcp_transfer(false, sizes.transfer_bytes).await?;
            progress(format!("TCP: {one} Fernet transfer"));
            let fernet = self.tcp_transfer(true, sizes.transfer_bytes).await?;
            progress(format!("TCP: dictionaries, 1 connection then {n}"));
            let (single, multi) = self.tcp_dicts(&sizes, true).await?;
            let disk_share = 0.8 * disk.mb_per_sec();
            let sha256 = at_rest.sha256.mb_per_sec();
            if disk_share > sha256 {
                report.notes.push(format!(
                    "the plain target ({} MB/s, 80% of the disk figure) is above what one core \
                     hashes with SHA-256 ({} MB/s). Every stored byte goes through the item's \
                     SHA-256 in order, so no transfer can reach that target on this machine; \
                     the disk figure is above what Ferry's CPU work allows (see the tmpfs line).",
                    number(disk_share),
                    number(sha256)
                ));
            }
            report.push(
                TCP,
                format!("{one} text, plain, first byte to OK"),
                plain.mb_per_sec(),
                "MB/s",
                Target::AtLeast {
                    value: disk_share,
                    why: "80% of fsync disk".into(),
                },
            );
            let (value, why) = match &scp {
                Ok(scp) => (
                    (0.8 * ceiling).max(1.3 * scp.rate.mb_per_sec()),
                    format!(
                        "0.8 of the ceiling {} and 1.3 × scp {}",
                        number(ceiling),
                        number(scp.rate.mb_per_sec())
                    ),
                ),
                Err(_) => (
                    0.8 * ceiling,
                    format!("0.8 of the ceiling {}", number(ceiling)),
                ),
            };
            report.push(
                TCP,
                format!("{one} text, Fernet, first byte to OK"),
                fernet.mb_per_sec(),
                "MB/s",
                Target::AtLeast { value, why },
            );
            if let Some(single) = single {
                report.push(
                    TCP,
                    "small JSON dicts, 1 connection, sequential",
                    single.per_sec(),
                    "dicts/s",
                    Target::None,
                );
            }
            progress(format!(
                "TCP: {} dictionaries from the legacy-style Python client, 1 connection",
                sizes.python_dicts
            ));
            let Costed {
                rate: python,
                cpu_per_item: python_cpu,
            } = self.python_dicts(sizes.python_dicts).await?;
            let stub = compare::AnsweringStub::start().await?;
            let python_alone = compare::python_dicts(&stub.addr, sizes.python_dicts).await?;
            drop(stub);
            report.push(
                LIMITS,
                "legacy-style Python client alone, 1 connection, against a server that answers OK at once",
                python_alone.per_sec(),
                "dicts/s",
                Target::None,
            );
            report.push(
                LIMITS,
                format!(
                    "1 connection's best: the Python client alone plus one synced {}-byte overwrite per dictionary",
                    limits::FRAME_WRITE
                ),
                1.0 / (1.0 / python_alone.per_sec() + 1.0 / sync.overwrite_frame.per_sec()),
                "dicts/s",
                Target::None,
            );
            report.push(
                TCP,
                "small JSON dicts, 1 connection, legacy-style Python client",
                python.per_sec(),
                "dicts/s",
                Target::AtLeast {
                    value: 0.75 * sync.overwrite.per_sec(),
                    why: format!(
                        "75% of the disk's {} synced overwrites/s",
                        number(sync.overwrite.per_sec())
                    ),
                },
            );
            report.push(TCP, CPU_PER_DICT, python_cpu, "µs", Target::None);
            report.push(
                TCP,
                format!("small JSON dicts, {n} connections"),
                multi.rate.per_sec(),
                "dicts/s",
                Target::AtLeast {
                    value: 20_000.0,
                    why: "fixed".into(),
                },
            );
            report.push(TCP, CPU_PER_DICT, multi.cpu_per_item, "µs", Target::None);
            direct_dicts = Some(multi.rate);
            progress(format!(
                "TCP: dictionaries, {n} connections, with the signed log off"
            ));
            let unlogged = self.tcp_dicts_unlogged(&sizes).await?;
            report.push(
                TCP,
                format!("small JSON dicts, {n} connections, signed log off (--tlog false)"),
                unlogged.rate.per_sec(),
                "dicts/s",
                Target::None,
            );
            report.push(TCP, CPU_PER_DICT, unlogged.cpu_per_item, "µs", Target::None);
            progress(format!(
                "TCP: {} plain transfer on a fresh server, for its peak RSS",
                size(sizes.rss_transfer_bytes)
            ));
            let (big, peak) = self.rss_transfer(sizes.rss_transfer_bytes).await?;
            report.push(
                TCP,
                format!(
                    "server peak RSS during {} plain transfer",
                    size(sizes.rss_transfer_bytes)
                ),
                mib(peak),
                "MiB",
                Target::Below {
                    value: 64.0,
                    why: "fixed".into(),
                },
            );
            report.push(
                TCP,
                format!("(that {} transfer's rate)", size(sizes.rss_transfer_bytes)),
                big.mb_per_sec(),
                "MB/s",
                Target::None,
            );
        }

        if gateway_on {
            let multi = match direct_dicts {
                Some(multi) => multi,
                None => {
                    progress(format!(
                        "TCP: dictionaries over {n} connections, for comparison"
                    ));
                    self.tcp_dicts(&sizes, false).await?.1.rate
                }
            };
            progress(format!("gateway: POST /dict, {n} keep-alive workers"));
            let http_dicts = self.http_dicts(&sizes, &[]).await?;
            progress(format!(
                "gateway: POST /dict, {n} keep-alive workers, a rate limit set that they never reach"
            ));
            let limited = self.http_dicts(&sizes, UNREACHED_RATE_LIMIT).await?;
            report.push(
                GATEWAY,
                format!("POST /dict small JSON, {n} keep-alive clients"),
                http_dicts.per_sec(),
                "req/s",
                Target::AtLeast {
                    value: 10_000.0,
                    why: "fixed".into(),
                },
            );
            report.push(
                GATEWAY,
                format!("POST /dict small JSON, {n} keep-alive clients, with a rate limit set"),
                limited.per_sec(),
                "req/s",
                Target::AtLeast {
                    value: 0.95 * http_dicts.per_sec(),
                    why: "the rate limit costs under 5%".into(),
                },
            );
            report.push(
                GATEWAY,
                format!("vs. the same dicts direct over TCP, {n} connections"),
                multi.per_sec(),
                "dicts/s",
                Target::None,
            );
            for encrypt in [false, true] {
                let kind = if encrypt { "encrypted" } else { "plain" };
                // Measured right before the upload, so both see the disk in the same state.
                progress(format!("TCP: {one} {kind} transfer, for comparison"));
                let direct = self.tcp_transfer(encrypt, sizes.transfer_bytes).await?;
                progress(format!("gateway: POST /file {one} {kind}"));
                let (upload, gateway_peak, server_peak) =
                    self.http_file(sizes.transfer_bytes, encrypt).await?;
                let why = format!("70% of direct {:.0}", direct.mb_per_sec());
                report.push(
                    GATEWAY,
                    format!("POST /file {one} streamed, {kind}"),
                    upload.mb_per_sec(),
                    "MB/s",
                    Target::AtLeast {
                        value: 0.7 * direct.mb_per_sec(),
                        why,
                    },
                );
                report.push(
                    GATEWAY,
                    format!("vs. direct TCP {one} text, {kind}, just before"),
                    direct.mb_per_sec(),
                    "MB/s",
                    Target::None,
                );
                report.push(
                    GATEWAY,
                    "gateway peak RSS during that upload",
                    mib(gateway_peak),
                    "MiB",
                    Target::None,
                );
                report.push(
                    GATEWAY,
                    "server peak RSS during that upload",
                    mib(server_peak),
                    "MiB",
                    Target::None,
                );
            }
        }

        if tus_on {
            self.tus_figures(&sizes, &mut report).await?;
        }

        if s3_on {
            self.s3_figures(&sizes, &mut report).await?;
        }

        let (peak, phase) = &self.server_peak;
        report.push(
            RUN,
            format!("server peak RSS, highest of every server started ({phase})"),
            mib(*peak),
            "MiB",
            Target::None,
        );
        if gateway_on || tus_on {
            report.push(
                RUN,
                "gateway peak RSS, highest of every gateway started",
                mib(self.gateway_peak),
                "MiB",
                Target::None,
            );
        }
        report.load_after = crate::machine::load_average();
        Ok(report)
    }

    /// A fresh server in its own directory.
    async fn server(&mut self) -> Result<Server> {
        self.started += 1;
        Server::start(
            &self.plan.bin_dir,
            self.dir.join(format!("server-{}", self.started)),
        )
        .await
    }

    /// Stops a server, deletes its data, and remembers its peak RSS.
    async fn retire(&mut self, server: Server) -> Result<u64> {
        let peak = server.stop().await?;
        if peak > self.server_peak.0 {
            self.server_peak = (peak, self.phase.to_owned());
        }
        Ok(peak)
    }

    async fn tcp_transfer(&mut self, encrypt: bool, len: u64) -> Result<Rate> {
        let dir = self.dir.clone();
        self.tcp_transfer_in(&dir, encrypt, len).await
    }

    /// One transfer to a fresh server whose directory is under `base`.
    async fn tcp_transfer_in(&mut self, base: &Path, encrypt: bool, len: u64) -> Result<Rate> {
        self.phase = if encrypt {
            "TCP Fernet transfer"
        } else {
            "TCP plain transfer"
        };
        self.started += 1;
        let server = Server::start(
            &self.plan.bin_dir,
            base.join(format!("server-{}", self.started)),
        )
        .await?;
        let key = if encrypt {
            Some(Arc::new(server.fernet_key()?))
        } else {
            None
        };
        let rate = tcp::transfer(server.tcp(), key, len).await;
        self.retire(server).await?;
        rate
    }

    /// The sequential figure (only when the TCP figures are wanted) and the many-connection one.
    async fn tcp_dicts(&mut self, sizes: &Sizes, single: bool) -> Result<(Option<Rate>, Costed)> {
        self.phase = "TCP dictionaries";
        let server = self.server().await?;
        let rates = async {
            let one = match single {
                true => Some(tcp::dict_rate(server.tcp(), 1, sizes.dict_single).await?),
                false => None,
            };
            let many = tcp::dict_rate(server.tcp(), sizes.connections, sizes.dict_multi);
            anyhow::Ok((one, Costed::measure(&server, many).await?))
        }
        .await;
        self.retire(server).await?;
        rates
    }

    /// The many-connection figure on a server without the signed log, to
    /// compare with the one with it (the default).
    async fn tcp_dicts_unlogged(&mut self, sizes: &Sizes) -> Result<Costed> {
        self.phase = "TCP dictionaries, log off";
        self.started += 1;
        let dir = self.dir.join(format!("server-{}", self.started));
        let server = Server::start_with(&self.plan.bin_dir, dir, &["--tlog", "false"]).await?;
        let many = tcp::dict_rate(server.tcp(), sizes.connections, sizes.dict_multi);
        let rate = Costed::measure(&server, many).await;
        self.retire(server).await?;
        rate
    }

    async fn python_dicts(&mut self, count: u64) -> Result<Costed> {
        self.phase = "Python dictionaries";
        let server = self.server().await?;
        let rate = Costed::measure(&server, compare::python_dicts(server.tcp(), count)).await;
        self.retire(server).await?;
        rate
    }

    async fn rss_transfer(&mut self, len: u64) -> Result<(Rate, u64)> {
        self.phase = "TCP big plain transfer";
        let server = self.server().await?;
        let rate = tcp::transfer(server.tcp(), None, len).await;
        let peak = self.retire(server).await?;
        Ok((rate?, peak))
    }

    async fn http_dicts(&mut self, sizes: &Sizes, gateway_flags: &[&str]) -> Result<Rate> {
        self.phase = "POST /dict";
        let server = self.server().await?;
        let gateway = Gateway::start_with(&self.plan.bin_dir, &server, gateway_flags).await?;
        let rate = http::dict_rate(&gateway.url(), sizes.connections, sizes.http_dict).await;
        self.gateway_peak = self.gateway_peak.max(gateway.process.stop().await?);
        self.retire(server).await?;
        rate
    }

    /// One upload on a fresh server and gateway: the rate and both peak RSS.
    async fn http_file(&mut self, len: u64, encrypt: bool) -> Result<(Rate, u64, u64)> {
        self.phase = "POST /file";
        let server = self.server().await?;
        let gateway = Gateway::start(&self.plan.bin_dir, &server).await?;
        let rate = http::file(&gateway.url(), len, encrypt).await;
        let gateway_peak = gateway.process.stop().await?;
        self.gateway_peak = self.gateway_peak.max(gateway_peak);
        let server_peak = self.retire(server).await?;
        Ok((rate?, gateway_peak, server_peak))
    }
}

impl Bench<'_> {
    /// A tus upload against `POST /file` of the same text, both on fresh
    /// processes, one after the other; then the cost of one cut connection.
    async fn tus_figures(&mut self, sizes: &Sizes, report: &mut Report) -> Result<()> {
        let (len, chunk) = (sizes.transfer_bytes, sizes.tus_chunk);
        let one = size(len);
        let chunks = match chunk.is_multiple_of(MIB) {
            true => format!("{} MiB chunks", chunk / MIB),
            false => format!("{} KiB chunks", chunk / 1024),
        };
        progress(format!("gateway: POST /file {one} plain, for comparison"));
        let (file, _, _) = self.http_file(len, false).await?;
        progress(format!("gateway: tus upload {one} plain, {chunks}"));
        let whole = self.tus_upload(len, chunk, false).await?;
        progress(format!(
            "gateway: tus upload {one} plain, {chunks}, cut once halfway"
        ));
        let cut = self.tus_upload(len, chunk, true).await?;
        report.push(
            TUS,
            format!("tus upload {one}, plain, {chunks} (POST, then PATCH after PATCH)"),
            whole.rate.mb_per_sec(),
            "MB/s",
            Target::AtLeast {
                value: 0.8 * file.mb_per_sec(),
                why: format!("0.8 of POST /file {}", number(file.mb_per_sec())),
            },
        );
        report.push(
            TUS,
            format!("vs. POST /file {one} streamed, plain, just before"),
            file.mb_per_sec(),
            "MB/s",
            Target::None,
        );
        report.push(
            TUS,
            format!(
                "(of which the last PATCH, {} KiB, answered once the item is stored)",
                (len - 1) % chunk / 1024 + 1
            ),
            whole.last_patch.as_secs_f64(),
            "s",
            Target::None,
        );
        report.push(
            TUS,
            "tus rate / POST /file rate",
            whole.rate.mb_per_sec() / file.mb_per_sec(),
            "×",
            Target::AtLeast {
                value: 0.8,
                why: "fixed".into(),
            },
        );
        report.push(
            TUS,
            format!("bytes re-sent after a PATCH cut halfway through its chunk ({chunks})"),
            cut.resent as f64 / 1024.0,
            "KiB",
            Target::Below {
                value: chunk as f64 / 1024.0,
                why: "the unacknowledged chunk".into(),
            },
        );
        report.push(
            TUS,
            "(that upload's rate, cut, HEAD and resume included)",
            cut.rate.mb_per_sec(),
            "MB/s",
            Target::None,
        );
        Ok(())
    }

    /// One tus upload on a fresh server and gateway.
    async fn tus_upload(&mut self, len: u64, chunk: u64, cut: bool) -> Result<tus::Upload> {
        self.phase = "tus upload";
        let server = self.server().await?;
        let gateway = Gateway::start(&self.plan.bin_dir, &server).await?;
        let upload = tus::upload(&gateway.url(), len, chunk, cut).await;
        self.gateway_peak = self.gateway_peak.max(gateway.process.stop().await?);
        self.retire(server).await?;
        upload
    }
}

/// A fresh directory on tmpfs (`/dev/shm`), when the machine has one.
fn tmpfs_dir() -> Option<PathBuf> {
    let dir = Path::new("/dev/shm").join(format!("ferry-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok().map(|()| dir)
}

fn progress(step: String) {
    eprintln!("== {step}");
}
