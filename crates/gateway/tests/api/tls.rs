//! HTTPS through `serve`, with a self-signed certificate made for the test.

use std::time::Duration;

use ferry_http::{ServeOptions, TlsFiles, serve};

use crate::support::*;

#[tokio::test]
async fn the_gateway_answers_over_https_with_the_given_certificate() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    std::fs::write(&files.cert, cert.cert.pem()).unwrap();
    std::fs::write(&files.key, cert.signing_key.serialize_pem()).unwrap();

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(serve(
        listener,
        gateway(&server),
        ServeOptions {
            tls: Some(files),
            header_timeout: Duration::from_secs(30),
            drain: Some(ferry_gateway::SHUTDOWN_DRAIN),
        },
        async {
            let _ = stopped.await;
        },
    ));

    // reqwest has no crypto provider of its own here: ring is the process's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let response = client
        .post(format!("https://localhost:{port}/dict?format=json"))
        .header("content-type", "application/json")
        .body(r#"{"over": "tls"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(server.transfers()[0].plaintext(None), br#"{"over": "tls"}"#);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
