//! `ferry-server --legacy-config etc/default.ini --legacy-config etc/config.ini`
//! on a legacy checkout's configuration (a temporary folder laid out like the
//! legacy project) listens, decrypts, exports, prints and refuses pickle as that
//! configuration says: one test per INI section. `config.ini` overrides
//! `default.ini`, and Ferry's own flags override both.

use crate::harness::{Admin, Running, bin, python_client};
use serde_json::json;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A legacy checkout: `etc/default.ini`, `etc/config.ini`, and a data dir for Ferry.
struct Checkout {
    root: tempfile::TempDir,
}

impl Checkout {
    fn new(default_ini: &str, config_ini: &str) -> Checkout {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/default.ini"), default_ini).unwrap();
        std::fs::write(root.path().join("etc/config.ini"), config_ini).unwrap();
        Checkout { root }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }

    fn data(&self) -> PathBuf {
        self.path("ferry-data")
    }

    /// `ferry-server` with both files, its log in `server.log`, and `extra` flags.
    fn start(&self, extra: &[&str], envs: &[(&str, &str)]) -> Running {
        let log = std::fs::File::create(self.path("server.log")).unwrap();
        let default_ini = self.path("etc/default.ini");
        let config_ini = self.path("etc/config.ini");
        let data = self.data();
        let mut args = vec![
            "--legacy-config",
            default_ini.to_str().unwrap(),
            "--legacy-config",
            config_ini.to_str().unwrap(),
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        Running::start_with_stderr(
            &bin("ferry-server"),
            &args,
            envs,
            &["tcp", "admin"],
            Stdio::from(log),
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("server.log")).unwrap()
    }

    fn admin(&self, running: &Running) -> Admin {
        Admin {
            base: format!("http://{}", running.addr("admin")),
            token: std::fs::read_to_string(self.data().join("admin.token"))
                .unwrap()
                .trim()
                .to_owned(),
            http: crate::harness::http(),
        }
    }
}

/// The address to connect to for a listener announced as `addr` (`0.0.0.0:N` → loopback).
fn reachable(addr: &str) -> String {
    addr.replace("0.0.0.0", "127.0.0.1")
}

fn dict(format: &str, content: serde_json::Value) -> serde_json::Value {
    json!({"kind": "dict", "format": format, "content": content})
}

#[test]
fn listening_host_and_port_come_from_config_ini_over_default_ini_and_flags_override_both() {
    let checkout = Checkout::new(
        "[listening]\nhost = 127.0.0.1\nport = 6868\n",
        "[listening]\nhost = 0.0.0.0\nport = 0\n",
    );
    let server = checkout.start(&[], &[]);
    let tcp = server.addr("tcp");
    let (host, port) = tcp.rsplit_once(':').unwrap();
    assert_eq!(host, "0.0.0.0", "config.ini's host");
    assert!(
        port != "6868" && port != "0",
        "config.ini's port 0 gives a free port, not default.ini's: {tcp}"
    );
    let replies = python_client(
        &reachable(&tcp),
        None,
        "one",
        &json!([dict("json", json!({"a": 1}))]),
    );
    assert_eq!(replies, ["OK"]);
    drop(server);

    let by_flag = checkout.start(&["--listen", "127.0.0.1:0"], &[]);
    assert!(
        by_flag.addr("tcp").starts_with("127.0.0.1:"),
        "the flag wins"
    );
    drop(by_flag);
    let by_env = checkout.start(&[], &[("FERRY_LISTEN", "127.0.0.1:0")]);
    assert!(
        by_env.addr("tcp").starts_with("127.0.0.1:"),
        "the environment wins"
    );
}

#[tokio::test]
async fn encryption_uses_the_key_file_the_config_names_from_the_project_root() {
    let checkout = Checkout::new(
        "[listening]\nhost = 127.0.0.1\nport = 0\n[encryption]\nenabled = False\nsymmetric_key_file = ./keys/secret.key\n",
        "[encryption]\nenabled = True\n",
    );
    std::fs::create_dir(checkout.path("keys")).unwrap();
    let key = checkout.path("keys/secret.key");
    ferry_crypto::FernetKey::load_or_create(&key).unwrap();
    let server = checkout.start(&[], &[]);
    let content = json!({"sensor": "s-9", "value": 3});
    let plan = json!([{"kind": "dict", "format": "json", "encrypt": true, "content": content}]);
    let replies = python_client(&server.addr("tcp"), Some(&key), "one", &plan);
    assert_eq!(replies, ["OK"], "decrypted with the legacy key");
    assert!(
        !checkout.data().join("fernet.key").exists(),
        "no key of Ferry's own was made"
    );
    let admin = checkout.admin(&server);
    let items = admin.all_items().await;
    assert_eq!(items.len(), 1);
    let id = items[0]["id"].as_str().unwrap();
    assert_eq!(admin.content_as_json(id).await, content);
    drop(server);

    std::fs::write(
        checkout.path("etc/config.ini"),
        "[encryption]\nenabled = no\n",
    )
    .unwrap();
    let disabled = checkout.start(&[], &[]);
    let replies = python_client(&disabled.addr("tcp"), Some(&key), "one", &plan);
    assert_eq!(replies, ["ERROR: encryption is disabled on this server"]);
}

#[test]
fn output_exports_in_the_named_directory_and_form_prints_and_warns_what_has_no_equivalent() {
    let checkout = Checkout::new(
        "[listening]\nhost = 127.0.0.1\nport = 0\n\
         [output]\nstream_output = False\nfile_output_enabled = False\ndictionary_output_format = json\n\
         file_output_directory = ./output\nfile_name_format = {source}_{timestamp}.{format}\nprint_output_enabled = False\n",
        "[output]\nfile_output_enabled = True\ndictionary_output_format = original\n\
         file_name_format = legacy-{format}-{timestamp}.out\nprint_output_enabled = True\nstream_output = True\n\
         colour = blue\n",
    );
    let server = checkout.start(&[], &[]);
    let xml = dict("xml", json!({"sensor": "s-1", "unit": "C"}));
    let sent = crate::harness::python_transfers(&server.addr("tcp"), None, "one", &json!([xml]));
    assert_eq!(sent[0].reply, "OK");

    let output = checkout.path("output");
    let files: Vec<_> = std::fs::read_dir(&output)
        .expect("the export directory is the config's, from the project root")
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with("legacy-xml-") && name.ends_with(".out"),
        "the config's file name format: {name}"
    );
    assert_eq!(
        crate::harness::sha256_file(&files[0]),
        sent[0].sha256,
        "dictionary_output_format = original exports the bytes sent"
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut printed = String::new();
    while !printed.contains("Received dictionary (xml)") {
        let left = deadline.saturating_duration_since(Instant::now());
        match server.stdout.recv_timeout(left) {
            Ok(line) => printed.push_str(&line),
            Err(_) => panic!("print_output_enabled: nothing printed:\n{printed}"),
        }
    }

    let log = checkout.log();
    assert!(
        log.contains("stream_output has no equivalent"),
        "a warning names stream_output:\n{log}"
    );
    assert!(
        log.contains("colour"),
        "a warning names the unknown key:\n{log}"
    );
}

#[test]
fn serialization_pickle_enabled_false_refuses_pickles_only() {
    let checkout = Checkout::new(
        "[listening]\nhost = 127.0.0.1\nport = 0\n[serialization]\npickle_enabled = True\n",
        "[serialization]\npickle_enabled = False\n",
    );
    let server = checkout.start(&[], &[]);
    let content = json!({"a": 1});
    let plan = json!([dict("pickle", content.clone()), dict("json", content)]);
    let replies = python_client(&server.addr("tcp"), None, "one", &plan);
    assert_eq!(replies, ["ERROR: pickle is disabled on this server", "OK"]);
    drop(server);

    let flag = checkout.start(&["--allow-pickle", "true"], &[]);
    let replies = python_client(&flag.addr("tcp"), None, "one", &plan);
    assert_eq!(
        replies,
        ["OK", "OK"],
        "the flag overrides the legacy config"
    );
}

#[test]
fn a_key_file_that_does_not_exist_stops_the_start_with_a_message_naming_it() {
    let checkout = Checkout::new(
        "[encryption]\nenabled = True\nsymmetric_key_file = ./keys/missing.key\n",
        "",
    );
    // `timeout`: a server that started anyway would otherwise run forever.
    let output = std::process::Command::new("timeout")
        .arg("60")
        .arg(bin("ferry-server"))
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--legacy-config")
        .arg(checkout.path("etc/default.ini"))
        .arg("--data-dir")
        .arg(checkout.data())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing.key"), "{stderr}");
}
