//! `ferry send` and `ferry keygen`: the native client from the command line.

use crate::resume::{Link, Plan};
use anyhow::Context;
use ferry_client::{Options, Receipt, Session};
use ferry_crypto::FernetKey;
use ferry_protocol::{Meta, Serialization};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The exit code of a `ferry send --receipts` whose items were all stored but
/// not all came with a signed receipt.
pub const EXIT_NO_RECEIPT: u8 = 3;

/// Where and how to connect.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The Ferry (or legacy) server.
    #[arg(
        long,
        env = "FERRY_SERVER",
        default_value_t = ferry_server::DEFAULT_LISTEN.to_string(),
        global = true
    )]
    pub server: String,
    /// Fernet key file, needed with --encrypt.
    #[arg(long, env = "FERRY_FERNET_KEY", global = true)]
    pub fernet_key: Option<PathBuf>,
    /// Send exactly the legacy client's bytes (no Ferry extensions: no item ids, no file names).
    #[arg(long, env = "FERRY_LEGACY", global = true)]
    pub legacy: bool,
}

/// What to keep of the server's answers.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Keep {
    /// Save each stored item's signed receipt as DIR/ITEM_ID.receipt.json
    /// (the directory is created if missing). Exits 3 if the server sent no
    /// receipt for some item (it keeps no log, or is the legacy server).
    #[arg(long, value_name = "DIR", global = true)]
    pub receipts: Option<PathBuf>,
}

/// What to send.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SendCommand {
    /// Send dictionaries: JSON object files (or `-` for stdin), serialized as --format.
    Dict {
        #[arg(long, default_value = "json", value_parser = parse_format)]
        format: Serialization,
        /// Fernet-encrypt each packet.
        #[arg(long)]
        encrypt: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Send text files, streamed 48,000 bytes a packet. To Ferry's server each
    /// file is a resumable upload: a lost connection is reconnected and the file
    /// continues where the server has it (a legacy server gets one transfer).
    File {
        /// Fernet-encrypt each packet.
        #[arg(long)]
        encrypt: bool,
        /// Bytes per append of a resumable upload: each is one transfer, and
        /// what a lost connection costs at most (suffixes K, M, G: powers of 1024).
        #[arg(long, default_value = "8M", value_parser = crate::resume::parse_size)]
        chunk_size: u64,
        /// Continue the resumable upload ID that an earlier `ferry send file`
        /// printed (one file: the same file).
        #[arg(long, value_name = "ID")]
        resume: Option<String>,
        /// Give up on a file after failing for this long without progress
        /// (reconnecting with backoff meanwhile).
        #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
        retry_for: Duration,
        /// How long to wait for the server's answer to the first upload command
        /// before sending files as plain transfers (a legacy server never answers).
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        probe_timeout: Duration,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

fn parse_format(text: &str) -> Result<Serialization, String> {
    match text {
        "json" => Ok(Serialization::Json),
        "pickle" | "binary" => Ok(Serialization::Binary),
        "xml" => Ok(Serialization::Xml),
        other => Err(format!(
            "expected json, pickle (binary) or xml, not {other:?}"
        )),
    }
}

/// Sends every item over one session, printing a line per item, and saves the
/// receipts if asked. Exits 0, or [`EXIT_NO_RECEIPT`] when receipts were asked
/// for and some item came without one.
pub async fn send(
    connection: &Connection,
    keep: &Keep,
    command: &SendCommand,
) -> anyhow::Result<ExitCode> {
    if let SendCommand::File { resume, paths, .. } = command {
        anyhow::ensure!(
            resume.is_none() || paths.len() == 1,
            "--resume continues one upload: give exactly one file"
        );
        anyhow::ensure!(
            resume.is_none() || !connection.legacy,
            "--resume needs Ferry's extensions: it cannot be used with --legacy"
        );
    }
    let fernet = crate::settings::load_fernet(connection.fernet_key.as_deref())?;
    let options = Options {
        fernet,
        extensions: !connection.legacy,
        ..Options::default()
    };
    let probe_timeout = match command {
        SendCommand::File { probe_timeout, .. } => *probe_timeout,
        SendCommand::Dict { .. } => ferry_client::DEFAULT_UPLOAD_PROBE_TIMEOUT,
    };
    let mut receipts = keep.receipts.as_deref().map(Receipts::new);
    let mut link = Link::new(&connection.server, options, probe_timeout);
    link.session().await?;
    match command {
        SendCommand::Dict {
            format,
            encrypt,
            files,
        } => {
            for file in files {
                let dict = read_dict(file).await?;
                let receipt = link
                    .session()
                    .await?
                    .send_dict(&dict, *format, *encrypt)
                    .await
                    .with_context(|| format!("sending {}", file.display()))?;
                report(file, &receipt);
                if let Some(receipts) = &mut receipts {
                    receipts.keep(file, &receipt)?;
                }
            }
        }
        SendCommand::File {
            encrypt,
            paths,
            chunk_size,
            resume,
            retry_for,
            probe_timeout: _,
        } => {
            let plan = Plan {
                chunk_size: *chunk_size,
                retry_for: *retry_for,
                resume: resume.clone(),
            };
            // Resumable uploads until the server shows it takes none.
            let mut resumable = !connection.legacy;
            for path in paths {
                let mut receipt = None;
                if resumable {
                    receipt = crate::resume::send_file(&mut link, path, *encrypt, &plan)
                        .await
                        .with_context(|| format!("sending {}", path.display()))?;
                    resumable = receipt.is_some();
                }
                let receipt = match receipt {
                    Some(receipt) => receipt,
                    None => send_file(link.session().await?, path, *encrypt)
                        .await
                        .with_context(|| format!("sending {}", path.display()))?,
                };
                report(path, &receipt);
                if let Some(receipts) = &mut receipts {
                    receipts.keep(path, &receipt)?;
                }
            }
        }
    }
    // Every item is stored and its reply read: a connection lost now (the END
    // byte unsent) changes nothing.
    if let Err(err) = link.end().await {
        tracing::debug!(error = %err, "the session did not end cleanly");
    }
    Ok(receipts.map_or(ExitCode::SUCCESS, |receipts| receipts.finish()))
}

/// The receipts of one `ferry send --receipts DIR`.
#[derive(Debug)]
struct Receipts<'a> {
    dir: &'a Path,
    saved: usize,
    missing: usize,
}

impl<'a> Receipts<'a> {
    fn new(dir: &'a Path) -> Self {
        Self {
            dir,
            saved: 0,
            missing: 0,
        }
    }

    /// Saves `receipt`'s signed receipt as the server sent it, or counts it
    /// missing (and says so the first time).
    fn keep(&mut self, sent: &Path, receipt: &Receipt) -> anyhow::Result<()> {
        let (Some(id), Some(signed)) = (&receipt.id, &receipt.signed) else {
            if self.missing == 0 {
                eprintln!(
                    "warning: the server sent no receipt for {}: it keeps no log, or it is \
                     the legacy server (or --legacy was given)",
                    sent.display()
                );
            }
            self.missing += 1;
            return Ok(());
        };
        // The id names a file: only an id that cannot leave the directory is used.
        anyhow::ensure!(
            !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "the server named the item {id:?}, which is not an item id: no receipt saved"
        );
        let path = self.dir.join(format!("{id}.receipt.json"));
        let mut json = serde_json::to_vec_pretty(signed)?;
        json.push(b'\n');
        crate::files::write_atomically(&path, &json)?;
        println!("{}: receipt saved to {}", sent.display(), path.display());
        self.saved += 1;
        Ok(())
    }

    /// The exit code: success only if every item's receipt was saved.
    fn finish(self) -> ExitCode {
        if self.missing == 0 {
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "error: {} of {} items were stored but came without a signed receipt, so \
             their receipts are not in {}; send to a Ferry server that keeps a log",
            self.missing,
            self.missing + self.saved,
            self.dir.display()
        );
        ExitCode::from(EXIT_NO_RECEIPT)
    }
}

async fn read_dict(file: &Path) -> anyhow::Result<ferry_codec::Dict> {
    let mut text = Vec::new();
    if file == Path::new("-") {
        tokio::io::stdin().read_to_end(&mut text).await?;
    } else {
        text = tokio::fs::read(file)
            .await
            .with_context(|| format!("cannot read {}", file.display()))?;
    }
    serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a JSON object", file.display()))
}

async fn send_file(session: &mut Session, path: &Path, encrypt: bool) -> anyhow::Result<Receipt> {
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let len = file.metadata().await?.len();
    let bar = progress_bar(path, len)?;
    let name = file_name(path);
    let receipt = session
        .send_reader(
            Meta::text(encrypt),
            tokio::io::BufReader::with_capacity(256 * 1024, file),
            name.as_deref(),
            &mut |sent| bar.set_position(sent),
        )
        .await;
    bar.finish_and_clear();
    Ok(receipt?)
}

/// The progress bar of sending `path`, `len` bytes.
pub(crate) fn progress_bar(path: &Path, len: u64) -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new(len).with_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )?
        .progress_chars("=> "),
    );
    bar.set_message(path.display().to_string());
    Ok(bar)
}

/// The name a file is sent under: its last component.
pub(crate) fn file_name(path: &Path) -> Option<String> {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
}

fn report(path: &Path, receipt: &Receipt) {
    match &receipt.id {
        Some(id) => println!(
            "{}: stored as {id} ({} bytes, sha256 {})",
            path.display(),
            receipt.size,
            receipt.sha256.as_deref().unwrap_or("?")
        ),
        None => println!("{}: OK ({} bytes)", path.display(), receipt.size),
    }
}

/// Writes a new Fernet key file (mode 0600), compatible with Python's `Fernet.generate_key()`.
pub fn keygen(path: &Path) -> anyhow::Result<()> {
    ferry_crypto::write_key_file(
        path,
        format!("{}\n", FernetKey::generate().to_base64().as_str()).as_bytes(),
    )
    .with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote a new Fernet key to {}", path.display());
    Ok(())
}
