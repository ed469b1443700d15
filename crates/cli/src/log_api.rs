//! The admin API's public log endpoints, as `ferry verify` reads them: the
//! log's key and consistency proofs. Nothing here is trusted: the caller
//! verifies every answer.

use anyhow::Context;
use ferry_tlog::ConsistencyProof;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::time::Duration;

/// How often a `409` (a tree larger than the latest published checkpoint) is
/// retried, and the first wait; each wait doubles.
const RETRIES: u32 = 4;
const FIRST_WAIT: Duration = Duration::from_millis(250);

/// A client of one admin API.
#[derive(Debug)]
pub(crate) struct LogApi {
    base: String,
    http: reqwest::Client,
}

impl LogApi {
    /// A client of the admin API at `base` (`http://host:port`), trusting
    /// `ca_cert` (PEM) besides the system's roots for HTTPS.
    ///
    /// # Errors
    /// If the certificate file cannot be read or is not PEM.
    pub(crate) fn new(base: &str, ca_cert: Option<&Path>) -> anyhow::Result<Self> {
        // reqwest is built without a TLS provider of its own: ring is made the
        // process's (as everywhere in the workspace).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60));
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the CA certificate {}", path.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
            builder = builder.add_root_certificate(cert);
        }
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http: builder.build().context("cannot set up the HTTP client")?,
        })
    }

    /// `GET /api/log/key`: the verifier key text.
    pub(crate) async fn key(&self) -> anyhow::Result<String> {
        Ok(self.text("/api/log/key").await?.trim_end().to_owned())
    }

    /// `GET /api/log/consistency?from=M[&to=N]`, retried while the server
    /// answers 409: a receipt's checkpoint is signed before the next one is
    /// published, so for a moment `M` can be larger than the latest.
    pub(crate) async fn consistency(
        &self,
        from: u64,
        to: Option<u64>,
    ) -> anyhow::Result<ConsistencyProof> {
        let mut path = format!("/api/log/consistency?from={from}");
        if let Some(to) = to {
            path.push_str(&format!("&to={to}"));
        }
        let mut wait = FIRST_WAIT;
        for _ in 0..RETRIES {
            match self.get(&path).await {
                Err(Answer::NotYet(_)) => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                answer => return json(answer?, &path).await,
            }
        }
        json(self.get(&path).await?, &path).await
    }

    async fn text(&self, path: &str) -> anyhow::Result<String> {
        let response = self.get(path).await?;
        response
            .text()
            .await
            .with_context(|| format!("reading the answer to GET {path}"))
    }

    /// A successful answer to `GET path`, or what went wrong.
    async fn get(&self, path: &str) -> Result<reqwest::Response, Answer> {
        let url = format!("{}{path}", self.base);
        let response = self.http.get(&url).send().await.map_err(|error| {
            // reqwest's own message leaves out the cause (refused, TLS, DNS).
            let mut message = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            Answer::Failed(anyhow::anyhow!(
                "cannot reach the admin API at {} (is --admin right, and is the server \
                 up?): {message}",
                self.base
            ))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let error = anyhow::anyhow!("GET {path} answered {status}{}", reason(&body));
        Err(match status {
            StatusCode::CONFLICT => Answer::NotYet(error),
            _ => Answer::Failed(error),
        })
    }
}

/// An answer that is not a success.
#[derive(Debug)]
enum Answer {
    /// 409: not yet covered by a published checkpoint; worth asking again.
    NotYet(anyhow::Error),
    Failed(anyhow::Error),
}

impl From<Answer> for anyhow::Error {
    fn from(answer: Answer) -> Self {
        match answer {
            Answer::NotYet(error) | Answer::Failed(error) => error,
        }
    }
}

async fn json<T: DeserializeOwned>(response: reqwest::Response, path: &str) -> anyhow::Result<T> {
    let bytes = response
        .bytes()
        .await
        .with_context(|| format!("reading the answer to GET {path}"))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("the answer to GET {path} is not the expected JSON"))
}

/// `: <message>` from the admin API's JSON error body, if it has one.
fn reason(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Error {
        message: String,
    }
    match serde_json::from_str::<Error>(body) {
        Ok(error) => format!(": {}", error.message),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_gives_its_message() {
        assert_eq!(
            reason(r#"{"error": "not_found", "message": "no such leaf"}"#),
            ": no such leaf"
        );
        assert_eq!(reason("<html>"), "");
    }
}
