//! Serving the router: plain HTTP, or HTTPS with rustls from PEM files, with a
//! graceful shutdown either way.

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

/// How long in-flight requests may run on after shutdown is asked for.
const DRAIN: Duration = Duration::from_secs(30);

/// The certificate chain and private key, as PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
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
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
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

/// Serves `app` on an already-bound listener until `shutdown` completes, then lets
/// in-flight requests finish (for up to 30 s). With `tls`, the listener speaks
/// HTTPS. A client must send each request's headers within `header_timeout`.
pub async fn serve(
    listener: std::net::TcpListener,
    app: Router,
    tls: Option<TlsFiles>,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(DRAIN));
    });
    let mut server = axum_server::from_tcp(listener)?
        .first_request_timeout(header_timeout)
        .handle(handle);
    server
        .http_builder()
        .http1()
        .header_read_timeout(header_timeout);
    let app = app.into_make_service();
    match tls {
        None => server.serve(app).await,
        // The TLS handshake has its own timeout (10 s); the first request's
        // clock starts after it.
        Some(tls) => {
            let config = RustlsConfig::from_config(Arc::new(tls.load()?));
            server
                .acceptor(RustlsAcceptor::new(config))
                .serve(app)
                .await
        }
    }
}
