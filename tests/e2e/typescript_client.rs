//! A strictly typed TypeScript client, as a TypeScript user would write one, sends
//! dictionaries and files through the live gateway and lists them through the live
//! admin API: types generated from `openapi/gateway.json` and `openapi/admin.json`
//! by openapi-typescript 7, requests made with openapi-fetch, compiled with
//! `tsc --strict`, run with Node. The client (`tests/typescript/src/client.ts`)
//! has no type assertions: if the documents typed a dictionary body as an object
//! with no members, or the kinds and formats as free strings, it would not compile.
//!
//! The npm packages come from `tests/typescript/package-lock.json` (`npm ci` in
//! that folder; `scripts/test.sh` runs it). The project is copied to a temporary
//! directory, so generated files never land in the repository.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::Server;
use crate::harness::gateway::{Gateway, TOKEN};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/typescript")
}

/// Runs `node` with `args` in `dir`; panics with its output unless it succeeds.
fn node(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("node")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|err| panic!("node {args:?}: {err}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "node {args:?} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout.into_owned()
}

/// The client's source, with line comments and string literals blanked, has no
/// `as` cast, no `any` and no `@ts-` directive.
fn assert_no_casts(source: &str) {
    for (n, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let code: String = code
            .split(['"', '`'])
            .step_by(2)
            .collect::<Vec<_>>()
            .join(" ");
        let words: Vec<&str> = code
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '@' || c == '-'))
            .collect();
        let import_alias = code.trim_start().starts_with("import ");
        assert!(
            (import_alias || !words.contains(&"as")) && !words.contains(&"any"),
            "line {}: a cast or `any`: {line}",
            n + 1
        );
        assert!(!line.contains("@ts-"), "line {}: {line}", n + 1);
    }
}

#[tokio::test]
async fn a_strict_typescript_client_sends_dictionaries_and_files_and_lists_items() {
    let source = std::fs::read_to_string(project().join("src/client.ts")).unwrap();
    assert_no_casts(&source);
    let modules = project().join("node_modules");
    assert!(
        modules.join("openapi-fetch").exists() && modules.join("typescript").exists(),
        "{} is missing: run `npm ci` in tests/typescript (scripts/test.sh does)",
        modules.display()
    );

    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    std::fs::create_dir(work.join("src")).unwrap();
    for file in ["package.json", "tsconfig.json", "src/client.ts"] {
        std::fs::copy(project().join(file), work.join(file)).unwrap();
    }
    std::os::unix::fs::symlink(&modules, work.join("node_modules")).unwrap();
    let openapi = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi");
    for api in ["gateway", "admin"] {
        let document = openapi.join(format!("{api}.json"));
        let output = format!("src/{api}.ts");
        node(
            work,
            &[
                "node_modules/openapi-typescript/bin/cli.js",
                document.to_str().unwrap(),
                "-o",
                &output,
            ],
        );
    }
    node(
        work,
        &["node_modules/typescript/bin/tsc", "-p", ".", "--strict"],
    );

    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let notes = "Ferry notes\nsent by a typed client ü\n";
    let file = work.join("notes.txt");
    std::fs::write(&file, notes).unwrap();
    let stdout = node(
        work,
        &[
            "dist/client.js",
            &gateway.url,
            TOKEN,
            &server.admin_url(),
            &server.token(),
            file.to_str().unwrap(),
        ],
    );
    eprintln!("{stdout}");

    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let (listing, sent) = lines.split_last().expect("the client printed its requests");
    let admin = server.admin();
    let notes_sha = hex::encode(Sha256::digest(notes.as_bytes()));
    for line in sent {
        assert_eq!(line["status"], 201, "{line}");
        let created = &line["created"];
        let id = created["id"].as_str().unwrap();
        match line["request"].as_str().unwrap() {
            "dict json" => {
                assert_eq!(
                    admin.content_as_json(id).await,
                    json!({"sensor": "s-17", "reading": {"value": 21.5, "ok": true, "tags": ["roof", "north"]}, "note": null})
                );
                assert_eq!(line["described"], "a dictionary in json");
            }
            "dict xml" => {
                assert_eq!(
                    admin.content_as_json(id).await,
                    json!({"name": "Ada", "age": "36"})
                );
                assert_eq!(created["format"], "xml");
            }
            "file raw" | "file form" => {
                assert_eq!(admin.content(id).await, notes.as_bytes(), "{line}");
                assert_eq!(created["sha256"], notes_sha.as_str(), "{line}");
                assert_eq!(line["described"], "a text file");
            }
            other => panic!("unexpected request {other}"),
        }
    }
    assert_eq!(sent.len(), 4, "{stdout}");

    assert_eq!(listing["request"], "list");
    let mut listed: Vec<&str> = listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect();
    let mut created: Vec<&str> = sent
        .iter()
        .map(|line| line["created"]["id"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    created.sort_unstable();
    assert_eq!(listed, created);
}
