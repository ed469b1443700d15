//! schemathesis (PyPI, installed by scripts/test.sh) against the committed
//! `openapi/admin.json` and a live `ferry-server` holding items of every kind:
//! no 5xx, no response that breaks the document, no schema-valid request refused,
//! no broken reference in the document. The run is bounded and reproducible (a
//! fixed seed, one worker, no example database) and its output is printed.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::Server;

/// Fixed, so a failure reproduces with the same seed.
const SEED: &str = "20261127";

/// The run's settings.
/// - Warnings that mean the document itself is wrong fail the run. Left out:
///   `missing_test_data` (random ULIDs are 404s by design) and the heuristic
///   `validation_mismatch`, which the `as=json` case below trips; a schema-valid
///   request refused is caught exactly by `positive_data_acceptance` instead.
/// - `GET /api/items/{id}/content?as=json` on a text item is a 400 by design (a
///   dictionary view of text: whether it applies depends on the stored item's kind,
///   which no schema can express), so a schema-valid request may get a 400 there.
///   416 is the documented answer to a well-formed range past the end.
const CONFIG: &str = r#"
[warnings]
fail-on = ["unresolvable_reference", "missing_deserializer", "unsupported_regex", "base_url_mismatch"]

[[operations]]
include-path = "/api/items/{id}/content"
checks.positive_data_acceptance.expected-statuses = ["2XX", "400", "401", "404", "416"]
"#;

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_response_that_breaks_the_document() {
    let document = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi/admin.json");
    assert!(
        document.exists(),
        "{} is missing (UPDATE_OPENAPI=1 cargo test -p ferry-admin writes it)",
        document.display()
    );

    let server = Server::start(&[]);
    // Two of every kind, so that the stateful phase's deletes leave items to read.
    crate::harness::admin::seed_every_kind(&server).await;
    crate::harness::admin::seed_every_kind(&server).await;

    // Run in a scratch directory: schemathesis writes its cache and reports where it runs.
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("schemathesis.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let report = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/artifacts/schemathesis");
    std::fs::create_dir_all(&report).unwrap();
    let authorization = format!("Authorization: Bearer {}", server.token());

    let mut command = Command::new("schemathesis");
    command
        .current_dir(scratch.path())
        .arg("--config-file")
        .arg(&config)
        .arg("--no-color")
        .arg("run")
        .arg(&document);
    command.args(["--url", &server.admin_url(), "--header", &authorization]);
    command.args(["--checks", "all"]);
    // /api/events is a stream that never ends by design (it is covered in
    // admin_api.rs); every request to it would be a timeout here.
    command.args(["--exclude-path", "/api/events"]);
    command.args([
        "--max-examples",
        "30",
        "--seed",
        SEED,
        "--workers",
        "1",
        "--generation-database",
        "none",
    ]);
    command.args(["--request-timeout", "10", "--max-failures", "50"]);
    command
        .arg("--report")
        .arg("junit")
        .arg("--report-dir")
        .arg(&report);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("schemathesis is installed (scripts/test.sh installs it from PyPI)");

    let text = String::from_utf8_lossy(&output.stdout).replace(&server.token(), "<token>");
    println!("{text}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "schemathesis found problems (exit {:?}); its output is above",
        output.status.code()
    );
}
