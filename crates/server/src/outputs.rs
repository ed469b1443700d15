//! The legacy outputs, off by default: printing each item on stdout, and writing
//! each item's plaintext to an export directory, one file per transfer.
//!
//! They run after the item is durable and before the client hears `OK`, as the
//! legacy server did: when a client's send returns, the export file is complete
//! (fsynced) in the directory and the printed item is flushed to stdout. A
//! dictionary is output from the bytes the transfer collected; a text is read
//! back from the store, streamed, so a large text never sits in memory. An output
//! that fails is removed, the item stays stored, and the client hears `ERROR:`
//! (see [`crate::TransferError::OutputFailed`]).

use crate::ExportConfig;
use crate::error::Detail;
use ferry_protocol::DataType;
use ferry_store::{ItemMeta, Store};
use futures::StreamExt;
use std::path::PathBuf;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;

/// The enabled outputs.
#[derive(Debug)]
pub struct Outputs {
    print: bool,
    export: Option<ExportConfig>,
    /// Held while one item is printed, so concurrent items never interleave.
    stdout: Mutex<()>,
}

/// A stored item's content, as the outputs get it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Content<'a> {
    /// A dictionary: the bytes as they arrived, and its indented JSON when
    /// [`Outputs::wants_json`] asked for it.
    Dictionary {
        original: &'a [u8],
        json: Option<&'a str>,
    },
    /// A text: read back from the store.
    Stored,
}

impl Outputs {
    /// The outputs; `None` when neither is enabled.
    pub fn new(print: bool, export: Option<ExportConfig>) -> Option<Outputs> {
        (print || export.is_some()).then(|| Outputs {
            print,
            export,
            stdout: Mutex::new(()),
        })
    }

    /// Whether dictionaries must be rendered as indented JSON for these outputs.
    pub(crate) fn wants_json(&self) -> bool {
        self.print
            || self
                .export
                .as_ref()
                .is_some_and(|export| !export.original_form)
    }

    /// Writes `item` to every enabled output; returns once all of them are written.
    pub(crate) async fn emit(
        &self,
        store: &dyn Store,
        item: &ItemMeta,
        content: Content<'_>,
    ) -> Result<(), Detail> {
        if let Some(export) = &self.export {
            export_item(store, export, item, content).await?;
        }
        if self.print {
            let _turn = self.stdout.lock().await;
            let mut out = tokio::io::stdout();
            let printed = print_item(store, &mut out, item, content).await;
            out.flush().await?;
            printed?;
        }
        Ok(())
    }
}

/// Prints a header line, the content and a newline.
async fn print_item(
    store: &dyn Store,
    out: &mut (impl AsyncWrite + Unpin),
    item: &ItemMeta,
    content: Content<'_>,
) -> Result<(), Detail> {
    let header = format!(
        "Received {} ({}) from {}, encrypted: {}, id {}:\n",
        item.data_type.as_str(),
        item.serialization.as_str(),
        item.peer,
        item.encrypted_in_transit,
        item.id
    );
    out.write_all(header.as_bytes()).await?;
    match content {
        Content::Dictionary { json, .. } => {
            out.write_all(
                json.expect("printing renders dictionaries as JSON")
                    .as_bytes(),
            )
            .await?;
        }
        Content::Stored => copy_stored(store, item, out).await?,
    }
    out.write_all(b"\n").await?;
    Ok(())
}

/// Writes the export file, fsynced; a file left half-written by a failure is removed.
async fn export_item(
    store: &dyn Store,
    export: &ExportConfig,
    item: &ItemMeta,
    content: Content<'_>,
) -> Result<(), Detail> {
    let format = match (content, export.original_form) {
        (Content::Dictionary { .. }, false) => "json",
        _ => item.serialization.as_str(),
    };
    let (path, mut file) = create_export(export, item, format).await?;
    let written = async {
        match content {
            Content::Dictionary {
                json: Some(json), ..
            } if !export.original_form => {
                file.write_all(json.as_bytes()).await?;
            }
            Content::Dictionary { original, .. } => file.write_all(original).await?,
            Content::Stored => copy_stored(store, item, &mut file).await?,
        }
        file.sync_all().await?;
        Ok::<_, Detail>(())
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&path).await;
    }
    written
}

/// Streams a stored item's plaintext into `out`.
async fn copy_stored(
    store: &dyn Store,
    item: &ItemMeta,
    out: &mut (impl AsyncWrite + Unpin),
) -> Result<(), Detail> {
    debug_assert_eq!(item.data_type, DataType::Text);
    let Some((_, mut content)) = store.open(item.id, None).await? else {
        return Err(format!("item {} vanished before its output", item.id).into());
    };
    while let Some(chunk) = content.next().await {
        out.write_all(&chunk?).await?;
    }
    Ok(())
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

/// Creates the export file, never overwriting: a taken name gets `-1`, `-2`, … before the extension.
async fn create_export(
    export: &ExportConfig,
    item: &ItemMeta,
    format: &str,
) -> std::io::Result<(PathBuf, tokio::fs::File)> {
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
            other => return other.map(|file| (candidate, file)),
        }
    }
    unreachable!("u32 attempts are never exhausted")
}
