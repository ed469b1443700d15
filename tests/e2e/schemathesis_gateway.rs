//! schemathesis (from PyPI) against `openapi/gateway.json` and the live gateway in
//! front of a live server: bounded (`--max-examples`) and reproducible (`--seed`,
//! one worker, no example database). It must find no 5xx and no response that
//! breaks the document (status, content type, headers, schema), and the token must
//! be enforced.
//!
//! Left out: `positive_data_acceptance` and `negative_data_rejection`, which judge
//! which requests the gateway accepts rather than what it answers (it refuses keys
//! xml cannot carry with a documented 422, and takes a missing `/file` body as an
//! empty file), and the `validation_mismatch` warning: an upload id schemathesis
//! makes up names no upload, so `/uploads/{id}` answers it a documented 404.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::Server;
use crate::harness::gateway::{Gateway, TOKEN};

#[test]
fn schemathesis_finds_no_5xx_and_no_response_that_breaks_the_document() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let document = root.join("openapi/gateway.json");
    // A serializer for tus bodies (application/offset+octet-stream).
    let hooks = root.join("tests/python/schemathesis_hooks.py");
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new("schemathesis")
        .arg("run")
        .arg(&document)
        .args(["--url", &gateway.url])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance,negative_data_rejection",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args([
            "--warnings",
            "missing_auth,missing_test_data,base_url_mismatch,missing_deserializer,\
             unused_openapi_auth,unsupported_regex,method_not_allowed,unresolvable_reference,\
             low_valid_rate,rate_limited,dictionary_mismatch,timeout_units",
        ])
        .args([
            "--seed",
            "20251127",
            "--max-examples",
            "30",
            "--workers",
            "1",
        ])
        .args([
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
            "--no-color",
        ])
        .env("SCHEMATHESIS_HOOKS", &hooks)
        .current_dir(dir.path())
        .output()
        .expect("schemathesis (pip install -r tests/python/requirements.txt)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "schemathesis failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("No issues found"), "{stdout}");

    // Everything it stored is listed (the requests did reach the server).
    let items = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(server.admin().all_items());
    assert!(!items.is_empty(), "schemathesis stored nothing");
}
