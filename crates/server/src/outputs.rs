//! The legacy outputs, off by default: printing each item on stdout, and writing
//! each item's plaintext to an export directory, one file per transfer.
//!
//! They run after the item is durable and acknowledged, in arrival order, on a
//! task of their own that reads the item back from the store (streamed, so a large
//! text never sits in memory). A failure here is logged; the item stays stored.

use crate::ExportConfig;
use ferry_codec::Dict;
use ferry_protocol::{DataType, Serialization};
use ferry_store::{ItemMeta, Store};
use futures::StreamExt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

enum Job {
    Item(ItemMeta),
    Flush(oneshot::Sender<()>),
}

/// Handle to the output task.
#[derive(Debug, Clone)]
pub struct Outputs {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Outputs {
    /// Starts the output task; `None` when neither output is enabled.
    pub fn start(
        store: Arc<dyn Store>,
        print: bool,
        export: Option<ExportConfig>,
    ) -> Option<Outputs> {
        if !print && export.is_none() {
            return None;
        }
        let (jobs, mut queue) = mpsc::channel(1024);
        tokio::spawn(async move {
            while let Some(job) = queue.recv().await {
                match job {
                    Job::Item(item) => {
                        if let Err(err) = emit(store.as_ref(), print, export.as_ref(), &item).await
                        {
                            tracing::warn!(id = %item.id, error = %err, "legacy output failed; the item is stored");
                        }
                    }
                    Job::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        Some(Outputs { jobs })
    }

    /// Queues a stored item for output.
    pub async fn submit(&self, item: ItemMeta) {
        let _ = self.jobs.send(Job::Item(item)).await;
    }

    /// Waits until every item queued so far has been output.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.jobs.send(Job::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Fills a file name template: `{source}`, `{timestamp}`, `{format}`, `{id}`,
/// `{name}`. Characters that do not belong in a file name become `_`.
pub fn render_template(template: &str, item: &ItemMeta, format: &str) -> String {
    let timestamp = item
        .received_at
        .format(&time::macros::format_description!(
            "[year][month][day]T[hour][minute][second].[subsecond digits:6]Z"
        ))
        .unwrap_or_default();
    let rendered = template
        .replace("{source}", &item.peer)
        .replace("{timestamp}", &timestamp)
        .replace("{format}", format)
        .replace("{id}", &item.id.to_string())
        .replace("{name}", item.name.as_deref().unwrap_or("item"));
    let safe: String = rendered
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    safe.trim_start_matches('.').to_owned()
}

async fn emit(
    store: &dyn Store,
    print: bool,
    export: Option<&ExportConfig>,
    item: &ItemMeta,
) -> anyhow_like::Result<()> {
    let Some((_, mut content)) = store.open(item.id, None).await? else {
        return Ok(());
    };
    if item.data_type == DataType::Dictionary {
        let mut bytes = Vec::with_capacity(item.size as usize);
        while let Some(chunk) = content.next().await {
            bytes.extend_from_slice(&chunk?);
        }
        let dict: Dict = ferry_codec::decode(
            item.serialization,
            &bytes,
            &ferry_codec::Limits {
                max_bytes: usize::MAX,
                ..Default::default()
            },
        )?;
        let pretty = serde_json::to_string_pretty(&dict)?;
        if print {
            print_item(item, pretty.as_bytes());
        }
        if let Some(export) = export {
            let (format, body) = if export.original_form {
                (item.serialization.as_str(), bytes)
            } else {
                ("json", pretty.into_bytes())
            };
            let mut file = create_export(export, item, format).await?;
            file.write_all(&body).await?;
            file.sync_all().await?;
        }
        return Ok(());
    }
    let mut file = match export {
        Some(export) => Some(create_export(export, item, Serialization::Txt.as_str()).await?),
        None => None,
    };
    if print {
        print_header(item);
    }
    while let Some(chunk) = content.next().await {
        let chunk = chunk?;
        if print {
            std::io::stdout().lock().write_all(&chunk)?;
        }
        if let Some(file) = &mut file {
            file.write_all(&chunk).await?;
        }
    }
    if print {
        println!();
    }
    if let Some(file) = file {
        file.sync_all().await?;
    }
    Ok(())
}

fn print_header(item: &ItemMeta) {
    println!(
        "Received {} ({}) from {}, encrypted: {}, id {}:",
        item.data_type.as_str(),
        item.serialization.as_str(),
        item.peer,
        item.encrypted_in_transit,
        item.id
    );
}

fn print_item(item: &ItemMeta, body: &[u8]) {
    print_header(item);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(body);
    let _ = writeln!(out);
}

/// Creates the export file, never overwriting: a taken name gets `-1`, `-2`, … before the extension.
async fn create_export(
    export: &ExportConfig,
    item: &ItemMeta,
    format: &str,
) -> std::io::Result<tokio::fs::File> {
    tokio::fs::create_dir_all(&export.dir).await?;
    let name = render_template(&export.template, item, format);
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) => (stem.to_owned(), format!(".{ext}")),
        None => (name.clone(), String::new()),
    };
    for attempt in 0u32.. {
        let candidate: PathBuf = export.dir.join(if attempt == 0 {
            name.clone()
        } else {
            format!("{stem}-{attempt}{ext}")
        });
        match tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
            .await
        {
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            other => return other,
        }
    }
    unreachable!("u32 attempts are never exhausted")
}

/// A boxed error for this best-effort output path.
mod anyhow_like {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}
