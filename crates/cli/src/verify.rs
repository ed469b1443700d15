//! `ferry verify`: checks a stored item's receipt, offline against the log's
//! key (its checkpoint's signature, then the leaf's inclusion in that
//! checkpoint; and the item's file), and online against the log itself through
//! the admin API: the log's latest checkpoint extends the receipt's, and the
//! log still holds a checkpoint saved earlier as its prefix (so a log rewritten
//! after the fact is caught). Every check prints one line; the exit code is 0
//! only when every check asked for holds, 1 when one fails, 2 when the command
//! cannot run.

use crate::log_api::LogApi;
use anyhow::Context;
use ferry_tlog::{Checkpoint, Receipt, Verifier};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio::io::AsyncReadExt;

/// The exit code when a check fails.
pub const EXIT_FAILED: u8 = 1;
/// The exit code when the command cannot run (a file it cannot read, bad key text).
pub const EXIT_USAGE: u8 = 2;

/// What to verify, and against what.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// The receipt: a file written by `ferry send --receipts`, or the answer to
    /// GET /api/items/{id}/receipt.
    pub receipt: PathBuf,
    /// The log's verifier key, `<name>+<8 hex digits>+<base64>` (GET /api/log/key).
    #[arg(long, value_name = "KEYTEXT", conflicts_with = "key_file")]
    pub key: Option<String>,
    /// A file holding the log's verifier key.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// The item's content: its size and SHA-256 must be the receipt's.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// The admin API (e.g. http://127.0.0.1:6869): check that the log's latest
    /// checkpoint extends the receipt's (and fetch the key if none is given).
    #[arg(long, value_name = "URL")]
    pub admin: Option<String>,
    /// A signed checkpoint saved earlier (by --save-checkpoint, or GET
    /// /api/log/checkpoint): the log must still hold it as its prefix.
    #[arg(long, value_name = "SAVED", requires = "admin")]
    pub checkpoint: Option<PathBuf>,
    /// Save the newest verified checkpoint here (when every check holds), for
    /// --checkpoint next time.
    #[arg(long, value_name = "PATH", requires = "admin")]
    pub save_checkpoint: Option<PathBuf>,
    /// A PEM CA certificate to trust for an HTTPS admin API (e.g. its self-signed
    /// certificate).
    #[arg(long, value_name = "PATH", requires = "admin")]
    pub ca_cert: Option<PathBuf>,
}

/// Runs every check asked for, printing a line each and a summary.
pub async fn verify(args: &VerifyArgs) -> ExitCode {
    let inputs = match Inputs::load(args) {
        Ok(inputs) => inputs,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut report = Report::default();
    match inputs.check(args, &mut report).await {
        Ok(()) => report.finish(),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// What the checks need, read before any check runs (a missing input is a
/// usage error, not a failed check).
#[derive(Debug)]
struct Inputs {
    receipt: Vec<u8>,
    key: Option<Verifier>,
    saved: Option<String>,
    api: Option<LogApi>,
}

impl Inputs {
    fn load(args: &VerifyArgs) -> anyhow::Result<Self> {
        let receipt = std::fs::read(&args.receipt)
            .with_context(|| format!("cannot read the receipt {}", args.receipt.display()))?;
        let key_text = match (&args.key, &args.key_file) {
            (Some(text), _) => Some(text.clone()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the key file {}", path.display()))?,
            ),
            (None, None) => None,
        };
        let key = key_text
            .map(|text| {
                Verifier::from_text(text.trim()).context(
                    "the key is not a log verifier key (<name>+<8 hex digits>+<base64>, \
                     as GET /api/log/key answers)",
                )
            })
            .transpose()?;
        anyhow::ensure!(
            key.is_some() || args.admin.is_some(),
            "no key to verify with: give the log's verifier key with --key or --key-file \
             (or --admin URL to fetch it from the server)"
        );
        let saved = args
            .checkpoint
            .as_ref()
            .map(|path| {
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the checkpoint {}", path.display()))
            })
            .transpose()?;
        if let Some(path) = &args.file {
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        }
        let api = args
            .admin
            .as_deref()
            .map(|url| LogApi::new(url, args.ca_cert.as_deref()))
            .transpose()?;
        Ok(Self {
            receipt,
            key,
            saved,
            api,
        })
    }

    async fn check(self, args: &VerifyArgs, report: &mut Report) -> anyhow::Result<()> {
        let receipt = match serde_json::from_slice::<Receipt>(&self.receipt) {
            Ok(receipt) => receipt,
            Err(error) => {
                let reason = format!("{} is not a Ferry receipt: {error}", args.receipt.display());
                report.fail("receipt", reason);
                return Ok(());
            }
        };
        let verifier = match self.key {
            Some(key) => key,
            None => {
                let api = self.api.as_ref().expect("checked: a key or the admin API");
                match fetch_key(api).await {
                    Ok(key) => {
                        eprintln!(
                            "warning: the log's key was taken from the server itself (trust on \
                             first use): a server that rewrote its log could sign with another \
                             key. Pin it: save GET {}/api/log/key once and pass --key-file \
                             from then on",
                            args.admin
                                .as_deref()
                                .unwrap_or_default()
                                .trim_end_matches('/')
                        );
                        key
                    }
                    Err(error) => {
                        report.fail("key", format!("{error:#}"));
                        return Ok(());
                    }
                }
            }
        };
        let included = if report.record("signature", signature(&receipt, &verifier)) {
            report.take("inclusion", inclusion(&receipt, &verifier))
        } else {
            None
        };
        if let Some(path) = &args.file {
            let (size, sha256) = hash_file(path).await?;
            report.record("file", same_content(path, size, &sha256, &receipt));
        }
        let Some(api) = &self.api else {
            return Ok(());
        };
        let online = Online {
            api,
            verifier: &verifier,
            receipt: &receipt,
        };
        let latest = match &included {
            Some(receipts) => report.take(
                "log",
                online.consistency("the receipt's", receipts, None).await,
            ),
            None => {
                report.skip("log", "the receipt does not verify");
                None
            }
        };
        let mut newest = latest.clone();
        if let (Some(saved), Some(path)) = (&self.saved, &args.checkpoint) {
            let trusted = report.take(
                "checkpoint",
                online.saved(saved).map_err(|error| {
                    format!(
                        "the saved checkpoint {} does not verify: {error}",
                        path.display()
                    )
                }),
            );
            if let Some(old) = trusted {
                let against = latest.as_ref().map(|(checkpoint, _)| checkpoint);
                let newer = report.take(
                    "consistency",
                    online.consistency("the saved", &old.0, against).await,
                );
                newest = [newest, Some(old), newer]
                    .into_iter()
                    .flatten()
                    .max_by_key(|(checkpoint, _)| checkpoint.size());
            }
        }
        if let Some(path) = &args.save_checkpoint {
            save(report, path, newest);
        }
        Ok(())
    }
}

/// The receipt's checkpoint is signed by the log's key.
fn signature(receipt: &Receipt, verifier: &Verifier) -> Result<String, String> {
    let checkpoint = verifier
        .verify_note(&receipt.checkpoint)
        .map_err(|error| format!("the receipt's checkpoint does not verify: {error}"))?;
    Ok(format!(
        "the receipt's checkpoint of {} leaves is signed by the key of {}",
        checkpoint.size(),
        verifier.name()
    ))
}

/// Everything else the receipt claims ([`Receipt::verify`]): it is of the
/// key's log, its members are its leaf's, and the leaf is at its index in the
/// checkpoint's tree. Hands back the checkpoint.
fn inclusion(receipt: &Receipt, verifier: &Verifier) -> Result<(String, Checkpoint), String> {
    let (_, checkpoint) = receipt
        .verify(verifier)
        .map_err(|error| format!("the receipt does not verify: {error}"))?;
    let line = format!(
        "item {} is leaf {} of log {}, in the receipt's checkpoint of {} leaves",
        receipt.id,
        receipt.index,
        receipt.log,
        checkpoint.size()
    );
    Ok((line, checkpoint))
}

/// `GET /api/log/key`, parsed.
async fn fetch_key(api: &LogApi) -> anyhow::Result<Verifier> {
    let text = api.key().await.context("cannot fetch the log's key")?;
    Verifier::from_text(&text).context("the server's key is not a log verifier key")
}

/// The size and SHA-256 (hex) of the file at `path`, read in pieces.
async fn hash_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let read = file
            .read(&mut buf)
            .await
            .with_context(|| format!("cannot read {}", path.display()))?;
        if read == 0 {
            break;
        }
        hasher.update(&buf[..read]);
        size += read as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Whether a file of `size` bytes and hash `sha256` is the receipt's item.
fn same_content(path: &Path, size: u64, sha256: &str, receipt: &Receipt) -> Result<String, String> {
    if sha256 != receipt.sha256 {
        return Err(format!(
            "{} is not the item of the receipt: its sha256 is {sha256}, the receipt's {}",
            path.display(),
            receipt.sha256
        ));
    }
    if size != receipt.size {
        return Err(format!(
            "{} is {size} bytes, the receipt says {}",
            path.display(),
            receipt.size
        ));
    }
    Ok(format!(
        "{}: {size} bytes, sha256 {sha256}, as the receipt says",
        path.display()
    ))
}

/// A signed checkpoint and its note.
type Signed = (Checkpoint, String);

/// The checks against the log itself.
struct Online<'a> {
    api: &'a LogApi,
    verifier: &'a Verifier,
    receipt: &'a Receipt,
}

impl Online<'_> {
    /// A saved checkpoint is signed by the log's key.
    fn saved(&self, note: &str) -> Result<(String, Signed), String> {
        let checkpoint = self
            .verifier
            .verify_note(note)
            .map_err(|error| error.to_string())?;
        self.same_log(&checkpoint)?;
        let line = format!(
            "the saved checkpoint of {} leaves is signed by the log's key",
            checkpoint.size()
        );
        Ok((line, (checkpoint, note.to_owned())))
    }

    /// The log still holds `old` (`what` checkpoint: the receipt's or the
    /// saved one) as the prefix of `newer` (the latest checkpoint, as the log
    /// showed it), or of its latest checkpoint when there is none. When `old`
    /// is the larger, `newer` must be its prefix instead.
    async fn consistency(
        &self,
        what: &str,
        old: &Checkpoint,
        newer: Option<&Checkpoint>,
    ) -> Result<(String, Signed), String> {
        let reversed = newer.is_some_and(|newer| newer.size() < old.size());
        let (from, to) = match newer {
            Some(newer) if reversed => (newer, old),
            _ => (old, newer.unwrap_or(old)),
        };
        let asked_to = newer.map(|_| to.size());
        let proof = self
            .api
            .consistency(from.size(), asked_to)
            .await
            .map_err(|error| format!("cannot get the consistency proof: {error:#}"))?;
        let reached = proof.verify(self.verifier, from).map_err(|error| {
            format!(
                "the log's checkpoint of {} leaves does not extend the one of {} leaves: \
                 the log was rewritten ({error})",
                proof.to,
                from.size()
            )
        })?;
        if newer.is_some() && reached != *to {
            return Err(format!(
                "the log shows two different trees of {} leaves: it was rewritten",
                to.size()
            ));
        }
        let line = if reversed {
            format!(
                "the log's checkpoint of {} leaves is a prefix of {what} checkpoint of {} leaves",
                from.size(),
                reached.size()
            )
        } else {
            format!(
                "{what} checkpoint of {} leaves is a prefix of the log's checkpoint of {} leaves",
                from.size(),
                reached.size()
            )
        };
        Ok((line, (reached, proof.checkpoint)))
    }

    fn same_log(&self, checkpoint: &Checkpoint) -> Result<(), String> {
        if checkpoint.origin() != self.receipt.log {
            return Err(format!(
                "the checkpoint is of log {:?}, the receipt of {:?}",
                checkpoint.origin(),
                self.receipt.log
            ));
        }
        Ok(())
    }
}

/// Saves the newest verified checkpoint note to `path` if every check held.
fn save(report: &mut Report, path: &Path, newest: Option<Signed>) {
    if report.failed > 0 {
        report.skip(
            "save",
            &format!("a check failed: {} is left as it was", path.display()),
        );
        return;
    }
    let Some((checkpoint, note)) = newest else {
        report.fail(
            "save",
            "no checkpoint was verified, so none is saved".into(),
        );
        return;
    };
    report.record(
        "save",
        crate::files::write_atomically(path, note.as_bytes())
            .map(|()| {
                format!(
                    "the checkpoint of {} leaves is saved to {}",
                    checkpoint.size(),
                    path.display()
                )
            })
            .map_err(|error| format!("{error:#}")),
    );
}

/// The checks' lines, and how many failed.
#[derive(Debug, Default)]
struct Report {
    checks: usize,
    failed: usize,
}

impl Report {
    /// Prints the check's line; whether it held.
    fn record(&mut self, name: &str, result: Result<String, String>) -> bool {
        self.checks += 1;
        match result {
            Ok(line) => {
                println!("ok   {name:<12} {line}");
                true
            }
            Err(reason) => {
                self.failed += 1;
                println!("FAIL {name:<12} {reason}");
                false
            }
        }
    }

    fn fail(&mut self, name: &str, reason: String) {
        self.record(name, Err(reason));
    }

    /// A check asked for that cannot run: not counted, as what it rests on
    /// failed already.
    fn skip(&self, name: &str, reason: &str) {
        println!("skip {name:<12} {reason}");
    }

    /// Records `result`'s line and hands back its value.
    fn take<T>(&mut self, name: &str, result: Result<(String, T), String>) -> Option<T> {
        match result {
            Ok((line, value)) => {
                self.record(name, Ok(line));
                Some(value)
            }
            Err(reason) => {
                self.fail(name, reason);
                None
            }
        }
    }

    fn finish(self) -> ExitCode {
        if self.failed == 0 {
            println!("verified: all {} checks hold", self.checks);
            ExitCode::SUCCESS
        } else {
            println!(
                "NOT VERIFIED: {} of {} checks failed",
                self.failed, self.checks
            );
            ExitCode::from(EXIT_FAILED)
        }
    }
}
