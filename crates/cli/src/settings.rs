//! Layered settings: embedded defaults, then a TOML file, then the environment and
//! flags (clap reads both). Secrets never show in `Debug`.

use anyhow::Context;
use ferry_crypto::FernetKey;
use ferry_http::TlsFiles;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::path::Path;
use std::sync::Arc;

/// A secret setting (a token): `Debug` prints asterisks.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// Merges `defaults`, the optional TOML `file`, and the given flags/environment
/// (`overrides`, whose unset fields are skipped when serialized).
pub(crate) fn layered<T, O>(defaults: T, file: Option<&Path>, overrides: &O) -> anyhow::Result<T>
where
    T: Serialize + DeserializeOwned,
    O: Serialize,
{
    let mut figment = Figment::from(Serialized::defaults(defaults));
    if let Some(file) = file {
        anyhow::ensure!(
            file.exists(),
            "config file {} does not exist",
            file.display()
        );
        figment = figment.merge(Toml::file(file));
    }
    figment = figment.merge(Serialized::defaults(overrides));
    figment
        .extract()
        .map_err(|err| anyhow::anyhow!("invalid settings: {err}"))
}

/// The TLS files of a listener: both or neither must be set.
pub(crate) fn tls_files(
    cert: Option<&Path>,
    key: Option<&Path>,
    what: &str,
) -> anyhow::Result<Option<TlsFiles>> {
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => TlsFiles {
            cert: cert.to_owned(),
            key: key.to_owned(),
        },
        (None, None) => return Ok(None),
        _ => anyhow::bail!("{what}: a TLS certificate needs its key, and a key its certificate"),
    };
    tls.load()
        .with_context(|| format!("{what}: cannot use the TLS files"))?;
    Ok(Some(tls))
}

/// Reads the Fernet key file, if one is configured.
pub(crate) fn load_fernet(path: Option<&Path>) -> anyhow::Result<Option<Arc<FernetKey>>> {
    path.map(|path| {
        FernetKey::load(path)
            .with_context(|| format!("cannot read the Fernet key {}", path.display()))
    })
    .transpose()
    .map(|key| key.map(Arc::new))
}

/// The process's Prometheus recorder, installed on first use: under `ferry up`,
/// the server and the gateway share it.
pub(crate) fn prometheus() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .ok()
        })
        .clone()
}
