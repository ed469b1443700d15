//! A client generated from `openapi/gateway.json` by a real OpenAPI generator
//! (openapi-python-client, from PyPI) posts dictionaries and a file to the live
//! gateway; each answer is a 201 naming an item the admin API serves with the
//! content sent. The generated package lives only in a temporary directory; the
//! script that drives it is `tests/python/gateway_generated_client.py`.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::gateway::{Gateway, TOKEN};
use crate::harness::{Server, python_script};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PACKAGE: &str = "ferry_gateway_client";

/// Runs a command; panics with its output unless it succeeds. Returns stdout.
fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("{command:?}: {err}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout.into_owned()
}

#[tokio::test]
async fn a_generated_python_client_posts_a_dictionary_and_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let document = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi/gateway.json");
    // tus bodies (application/offset+octet-stream) are raw bytes, as octet-stream.
    let config =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/openapi_python_client.json");
    run(Command::new("openapi-python-client")
        .args(["generate", "--meta", "none", "--fail-on-warning", "--path"])
        .arg(&document)
        .arg("--config")
        .arg(&config)
        .arg("--output-path")
        .arg(dir.path().join(PACKAGE))
        .current_dir(dir.path()));

    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let notes = "Ferry notes\nsent by a generated client ü\n";
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, notes).unwrap();
    let stdout = run(Command::new("python3")
        .arg(python_script("gateway_generated_client.py"))
        .arg("--package-dir")
        .arg(dir.path())
        .args([
            "--package",
            PACKAGE,
            "--url",
            &gateway.url,
            "--token",
            TOKEN,
            "--file",
        ])
        .arg(&file));
    eprintln!("{stdout}");

    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let admin = server.admin();
    let mut stored = 0;
    for line in &lines {
        let request = line["request"].as_str().unwrap();
        if let Some(why) = line["raw_unsupported"].as_str() {
            eprintln!("NOTE: {request} not sent: {why}");
            continue;
        }
        assert_eq!(line["status"], 201, "{line}");
        let body = &line["body"];
        let id = body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id: {line}"));
        assert_eq!(
            line["location"],
            format!("{}/api/items/{id}", server.admin_url()),
            "{line}"
        );
        let item = admin
            .http
            .get(line["location"].as_str().unwrap())
            .bearer_auth(&admin.token)
            .send()
            .await
            .unwrap();
        assert_eq!(item.status(), 200, "{line}");
        let item: Value = item.json().await.unwrap();
        assert_eq!(item["sha256"], body["sha256"], "{line}");
        match request {
            "dict json" => {
                let expected = json!({"sensor": "s-17", "reading": {"value": 21.5, "ok": true, "tags": ["roof", "north"]}, "note": null});
                assert_eq!(admin.content_as_json(id).await, expected);
                assert_eq!(
                    (body["format"].as_str(), body["encrypted"].as_bool()),
                    (Some("json"), Some(false))
                );
            }
            "dict xml encrypted" => {
                assert_eq!(
                    admin.content_as_json(id).await,
                    json!({"name": "Ada", "age": "36"})
                );
                assert_eq!(
                    (body["format"].as_str(), body["encrypted"].as_bool()),
                    (Some("xml"), Some(true))
                );
            }
            "file multipart encrypted" | "file raw" => {
                assert_eq!(admin.content(id).await, notes.as_bytes(), "{request}");
                assert_eq!(
                    body["sha256"],
                    hex::encode(Sha256::digest(notes.as_bytes())),
                    "{request}"
                );
                assert_eq!(body["data_type"], "text");
                assert_eq!(body["encrypted"], request == "file multipart encrypted");
            }
            other => panic!("unexpected request {other}"),
        }
        stored += 1;
    }
    assert!(
        stored >= 3,
        "two dictionaries and a file at least: {stdout}"
    );
    assert_eq!(admin.all_items().await.len(), stored);
}
