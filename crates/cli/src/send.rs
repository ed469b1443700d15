//! `ferry send` and `ferry keygen`: the native client from the command line.

use anyhow::Context;
use ferry_client::{Options, Receipt, Session};
use ferry_crypto::FernetKey;
use ferry_protocol::{Meta, Serialization};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt;

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
    /// Send text files, streamed 48,000 bytes a packet.
    File {
        /// Fernet-encrypt each packet.
        #[arg(long)]
        encrypt: bool,
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

/// Sends every item over one session, printing a line per item.
pub async fn send(connection: &Connection, command: &SendCommand) -> anyhow::Result<()> {
    let fernet = crate::settings::load_fernet(connection.fernet_key.as_deref())?;
    let options = Options {
        fernet,
        extensions: !connection.legacy,
        ..Options::default()
    };
    let mut session = Session::connect(&connection.server, options).await?;
    match command {
        SendCommand::Dict {
            format,
            encrypt,
            files,
        } => {
            for file in files {
                let dict = read_dict(file).await?;
                let receipt = session
                    .send_dict(&dict, *format, *encrypt)
                    .await
                    .with_context(|| format!("sending {}", file.display()))?;
                report(file, &receipt);
            }
        }
        SendCommand::File { encrypt, paths } => {
            for path in paths {
                let receipt = send_file(&mut session, path, *encrypt)
                    .await
                    .with_context(|| format!("sending {}", path.display()))?;
                report(path, &receipt);
            }
        }
    }
    session.end().await?;
    Ok(())
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
    let bar = ProgressBar::new(len).with_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )?
        .progress_chars("=> "),
    );
    bar.set_message(path.display().to_string());
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned());
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
