//! Serving a router on an already-bound listener: plain HTTP, or HTTPS with
//! rustls from PEM files; a peer that connects and stalls is dropped; a graceful
//! shutdown either way.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The certificate chain and private key, as PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// Reads and checks both files, so that a bad path or key is reported at start-up.
    pub fn load(&self) -> io::Result<ServerConfig> {
        let certs = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|err| invalid(&self.cert, err))?;
        if certs.is_empty() {
            return Err(invalid(&self.cert, "no certificate in the file"));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|err| invalid(&self.key, err))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|err| invalid(&self.key, err))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

fn invalid(path: &Path, err: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: {err}", path.display()),
    )
}

/// How [`serve`] runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Serve HTTPS with these files; plain HTTP without.
    pub tls: Option<TlsFiles>,
    /// A client must send its first request within this time after connecting
    /// (after the TLS handshake, which has its own 10 s), and each request's
    /// headers within it, or its connection is closed.
    pub header_timeout: Duration,
    /// How long requests in flight may run on after shutdown is asked for;
    /// `None`: until they end.
    pub drain: Option<Duration>,
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets the requests in
/// flight finish (within `options.drain`) and returns.
pub async fn serve(
    listener: std::net::TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // Read the TLS files before serving, so that a bad one is an error at once.
    let tls = options.tls.as_ref().map(TlsFiles::load).transpose()?;
    listener.set_nonblocking(true)?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    let drain = options.drain;
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(drain);
    });
    let mut server = axum_server::from_tcp(listener)?
        .first_request_timeout(options.header_timeout)
        .handle(handle);
    server
        .http_builder()
        .http1()
        .header_read_timeout(options.header_timeout);
    // The peer's address, for rate limits per client.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    match tls {
        None => server.serve(app).await,
        Some(config) => {
            let config = RustlsConfig::from_config(Arc::new(config));
            server
                .acceptor(RustlsAcceptor::new(config))
                .serve(app)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_certificate_files_are_reported_by_path() {
        let files = TlsFiles {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
        };
        let err = files.load().unwrap_err();
        assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    }
}
