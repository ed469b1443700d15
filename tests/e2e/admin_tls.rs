//! The admin API over HTTPS: `ferry-server --admin-tls-cert --admin-tls-key`
//! announces an `https://` admin URL and serves the API, token and all, only over
//! TLS with the given certificate.

use std::time::Duration;

use crate::harness::Server;

#[tokio::test]
async fn the_admin_api_is_served_over_https_with_the_given_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let server = Server::start(&[
        "--admin-tls-cert",
        cert_file.to_str().unwrap(),
        "--admin-tls-key",
        key_file.to_str().unwrap(),
    ]);
    let addr: std::net::SocketAddr = server.running.addr("admin").parse().unwrap();

    let https = crate::harness::http_builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = format!("https://localhost:{}", addr.port());
    let items = https
        .get(format!("{base}/api/items"))
        .bearer_auth(server.token())
        .send()
        .await
        .unwrap();
    assert_eq!(items.status(), 200);
    let page: serde_json::Value = items.json().await.unwrap();
    assert!(page["items"].as_array().unwrap().is_empty(), "{page}");
    let refused = https.get(format!("{base}/api/items")).send().await.unwrap();
    assert_eq!(refused.status(), 401);

    // Plain HTTP gets no answer from the TLS listener.
    let plain = crate::harness::http_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let attempt = plain.get(format!("http://{addr}/healthz")).send().await;
    assert!(attempt.is_err(), "{attempt:?}");
}

#[test]
fn a_certificate_without_its_key_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(crate::harness::bin("ferry-server"))
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("FERRY_ADMIN_TLS_CERT", dir.path().join("cert.pem"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("admin-tls-key"), "{stderr}");
}
