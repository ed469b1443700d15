//! No Docker engine runs here, so this checks what can be checked without one:
//! `docker-compose.yml` parses and names both services, publishes the ports, mounts
//! the data volume and references only declared secrets; both services run an image
//! built from the `Dockerfile`, whose runtime stage copies the three binaries out of
//! its build stage; and every `FERRY_*` variable set for a service is one its binary
//! accepts (as its `--help` lists it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::harness::help::help_flags;
use serde_json::Value;

const BINARIES: [&str; 3] = ["ferry", "ferry-server", "ferry-gateway"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn compose() -> Value {
    let text =
        std::fs::read_to_string(root().join("docker-compose.yml")).expect("docker-compose.yml");
    serde_norway::from_str(&text).expect("docker-compose.yml is valid YAML")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose["services"]
        .get(name)
        .unwrap_or_else(|| panic!("no service {name:?}"))
}

/// A list of strings, or the `source`/`target` fields of the long syntax.
fn entries(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| item[field].to_string().trim_matches('"').to_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `(published, target)` of each port mapping (`[HOST:]PUBLISHED:TARGET` or long syntax).
fn ports(service: &Value) -> Vec<(String, String)> {
    let Some(items) = service["ports"].as_array() else {
        return Vec::new();
    };
    items
        .iter()
        .map(|item| match item.as_str() {
            Some(short) => {
                let parts: Vec<&str> = short.split('/').next().unwrap().rsplitn(3, ':').collect();
                assert!(parts.len() >= 2, "{short:?} publishes nothing");
                (parts[1].to_owned(), parts[0].to_owned())
            }
            None => (
                item["published"].to_string().trim_matches('"').to_owned(),
                item["target"].to_string(),
            ),
        })
        .collect()
}

/// The environment of a service as `NAME -> value` (map or `NAME=value` list).
fn environment(service: &Value) -> Vec<(String, String)> {
    match &service["environment"] {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect(),
        Value::Array(list) => list
            .iter()
            .map(|item| {
                let (k, v) = item
                    .as_str()
                    .unwrap()
                    .split_once('=')
                    .unwrap_or((item.as_str().unwrap(), ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The program a service runs: its `command`'s first word (or the image's default, `ferry-server`).
fn program(service: &Value) -> String {
    match &service["command"] {
        Value::Array(words) => words[0].as_str().unwrap().to_owned(),
        Value::String(line) => line.split_whitespace().next().unwrap().to_owned(),
        _ => "ferry-server".to_owned(),
    }
}

/// The variables a binary reads, from the `[env: NAME]` notes of its `--help`.
fn accepted_env(binary: &str) -> BTreeSet<String> {
    help_flags(binary, &[])
        .into_iter()
        .filter_map(|flag| flag.env)
        .collect()
}

#[test]
fn compose_names_both_services_their_ports_the_volume_and_the_secrets() {
    let compose = compose();
    let (server, gateway) = (service(&compose, "server"), service(&compose, "gateway"));
    assert_eq!(program(server), "ferry-server");
    assert_eq!(program(gateway), "ferry-gateway");

    let server_ports = ports(server);
    for port in ["6868", "6869"] {
        assert!(
            server_ports.contains(&(port.to_owned(), port.to_owned())),
            "the server publishes {port}: {server_ports:?}"
        );
    }
    assert!(
        ports(gateway).contains(&("8080".to_owned(), "8080".to_owned())),
        "the gateway publishes 8080"
    );

    // The data volume is declared and mounted where the server keeps its data.
    assert!(
        compose["volumes"].get("ferry-data").is_some(),
        "no top-level ferry-data volume"
    );
    let data_dir = environment(server)
        .into_iter()
        .find(|(k, _)| k == "FERRY_DATA_DIR")
        .map(|(_, v)| v)
        .expect("FERRY_DATA_DIR");
    let mounts = entries(&server["volumes"], "source");
    assert!(
        mounts
            .iter()
            .any(|m| *m == format!("ferry-data:{data_dir}")),
        "ferry-data is not mounted at {data_dir}: {mounts:?}"
    );

    // Each secret a service uses is declared with a file, and every path under
    // /run/secrets/ a service is given is one of its own secrets.
    for name in ["server", "gateway"] {
        let service = service(&compose, name);
        let secrets = entries(&service["secrets"], "source");
        for secret in &secrets {
            let declared = compose["secrets"]
                .get(secret)
                .unwrap_or_else(|| panic!("{name} uses undeclared secret {secret:?}"));
            assert!(
                declared["file"].is_string() || declared["environment"].is_string(),
                "secret {secret:?} has no source"
            );
        }
        for (key, value) in environment(service) {
            if let Some(secret) = value.strip_prefix("/run/secrets/") {
                assert!(
                    secrets.iter().any(|s| s == secret),
                    "{name}: {key} points at secret {secret:?}, which it does not mount"
                );
            }
        }
    }
    // The server reads the Fernet key and the admin token from secrets.
    let server_env = environment(server);
    for key in ["FERRY_FERNET_KEY", "FERRY_ADMIN_TOKEN_FILE"] {
        assert!(
            server_env
                .iter()
                .any(|(k, v)| k == key && v.starts_with("/run/secrets/")),
            "the server's {key} is not a secret"
        );
    }
}

#[test]
fn both_services_run_the_image_the_dockerfile_builds() {
    let compose = compose();
    let mut built_images = Vec::new();
    for (name, service) in compose["services"].as_object().unwrap() {
        let build = &service["build"];
        let (context, dockerfile) = match build {
            Value::Null => continue,
            Value::String(context) => (context.clone(), "Dockerfile".to_owned()),
            _ => (
                build["context"].as_str().unwrap_or(".").to_owned(),
                build["dockerfile"]
                    .as_str()
                    .unwrap_or("Dockerfile")
                    .to_owned(),
            ),
        };
        let path = root().join(context).join(dockerfile);
        assert_eq!(
            path.canonicalize().unwrap(),
            root().join("Dockerfile").canonicalize().unwrap(),
            "{name} builds another Dockerfile"
        );
        built_images.push(service["image"].as_str().map(str::to_owned));
    }
    assert!(!built_images.is_empty(), "no service builds the Dockerfile");
    for name in ["server", "gateway"] {
        let service = service(&compose, name);
        let builds = !service["build"].is_null();
        let image = service["image"].as_str().map(str::to_owned);
        assert!(
            builds || (image.is_some() && built_images.contains(&image)),
            "{name} runs {image:?}, which the Dockerfile does not build"
        );
    }
}

/// `(stage name, lines)` of each `FROM … AS name` stage, continuation lines joined.
fn stages(dockerfile: &Path) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(dockerfile).expect("Dockerfile");
    let joined = text.replace("\\\n", " ");
    let mut stages: Vec<(String, Vec<String>)> = Vec::new();
    for line in joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words[0].eq_ignore_ascii_case("FROM") {
            let name = match words.as_slice() {
                [_, _, as_, name] if as_.eq_ignore_ascii_case("AS") => name.to_string(),
                _ => stages.len().to_string(),
            };
            stages.push((name, Vec::new()));
        } else if let Some((_, lines)) = stages.last_mut() {
            lines.push(line.to_owned());
        }
    }
    stages
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_copies_the_three_binaries_into_the_runtime_stage() {
    let stages = stages(&root().join("Dockerfile"));
    assert!(
        stages.len() >= 2,
        "a build stage and a runtime stage: {:?}",
        stages.iter().map(|s| &s.0).collect::<Vec<_>>()
    );
    let (build_name, build) = &stages[0];
    let (_, runtime) = stages.last().unwrap();
    let build_words: Vec<&str> = build.iter().flat_map(|l| l.split_whitespace()).collect();
    assert!(
        build
            .iter()
            .any(|l| l.starts_with("RUN") && l.contains("cargo build") && l.contains("--release")),
        "the build stage does not build"
    );
    assert!(
        !runtime.iter().any(|l| l.contains("cargo")),
        "the runtime stage has a toolchain"
    );

    // COPY --from=build SRC… DEST in the runtime stage.
    let copies: Vec<Vec<&str>> = runtime
        .iter()
        .filter(|l| l.starts_with("COPY") && l.contains(&format!("--from={build_name}")))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter(|w| !w.starts_with("--"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        !copies.is_empty(),
        "the runtime stage copies nothing from {build_name}"
    );
    let sources: Vec<&str> = copies
        .iter()
        .flat_map(|c| c[..c.len() - 1].iter().copied())
        .collect();
    for binary in BINARIES {
        let direct = sources
            .iter()
            .any(|s| s.trim_end_matches('/').rsplit('/').next() == Some(binary));
        // Or the build stage gathers it (`cp target/release/NAME … DIR`) into a copied directory.
        let gathered = build_words.contains(&format!("target/release/{binary}").as_str())
            && sources
                .iter()
                .any(|s| s.ends_with('/') && build_words.contains(s));
        assert!(
            direct || gathered,
            "the runtime stage does not get {binary} from {build_name}"
        );
    }
}

#[test]
fn every_ferry_variable_in_compose_is_one_the_service_binary_accepts() {
    let compose = compose();
    let mut checked = 0;
    for (name, service) in compose["services"].as_object().unwrap() {
        let program = program(service);
        assert!(
            BINARIES.contains(&program.as_str()),
            "{name} runs {program:?}, not one of Ferry's binaries"
        );
        let accepted = accepted_env(&program);
        assert!(!accepted.is_empty(), "{program} --help lists no variables");
        for (key, _) in environment(service)
            .into_iter()
            .filter(|(k, _)| k.starts_with("FERRY_"))
        {
            assert!(
                accepted.contains(&key),
                "{name}: {program} does not accept {key} (it takes {accepted:?})"
            );
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} FERRY_ variables checked");
}

/// `deploy/s3/docker-compose.yml` with its `<<: *server` merges applied.
fn s3_compose() -> Value {
    let path = root().join("deploy/s3/docker-compose.yml");
    let text = std::fs::read_to_string(&path).expect("deploy/s3/docker-compose.yml");
    let mut yaml: serde_norway::Value = serde_norway::from_str(&text).expect("valid YAML");
    yaml.apply_merge().expect("its merge keys apply");
    serde_json::to_value(yaml).expect("plain data")
}

#[test]
fn the_s3_compose_file_runs_three_servers_on_one_bucket_behind_haproxy() {
    let compose = s3_compose();
    let accepted = accepted_env("ferry-server");
    let mut stores = BTreeSet::new();
    for name in ["server1", "server2", "server3"] {
        let server = service(&compose, name);
        assert_eq!(program(server), "ferry-server");
        let env = environment(server);
        for (key, _) in env.iter().filter(|(k, _)| k.starts_with("FERRY_")) {
            assert!(
                accepted.contains(key),
                "{name}: ferry-server does not read {key}"
            );
        }
        let value = |key: &str| {
            env.iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{name} sets no {key}"))
        };
        stores.insert(value("FERRY_STORE"));
        assert!(value("AWS_ENDPOINT_URL").starts_with("http://minio:"));
        // The keys every server must share come from the same secrets.
        for key in ["FERRY_STORAGE_KEY", "FERRY_FERNET_KEY"] {
            let secret = value(key);
            let secret = secret.strip_prefix("/run/secrets/").expect("a secret");
            assert!(
                entries(&server["secrets"], "source")
                    .iter()
                    .any(|s| s == secret)
            );
            assert!(
                compose["secrets"][secret]["file"].is_string(),
                "{secret} has no file"
            );
        }
    }
    assert_eq!(
        stores.len(),
        1,
        "the servers are on different stores: {stores:?}"
    );
    let store = stores.pop_first().unwrap();
    let bucket = store
        .strip_prefix("s3://")
        .and_then(|rest| rest.split('/').next())
        .expect("s3://BUCKET/PREFIX");
    let makes_bucket = compose["services"]["bucket"]["entrypoint"].to_string();
    assert!(makes_bucket.contains(&format!("mc mb --ignore-existing local/{bucket}")));

    let gateway = service(&compose, "gateway");
    assert_eq!(program(gateway), "ferry-gateway");
    assert!(environment(gateway).contains(&("FERRY_SERVER".to_owned(), "haproxy:6868".to_owned())));
    let haproxy = std::fs::read_to_string(root().join("deploy/s3/haproxy.cfg")).unwrap();
    assert!(haproxy.contains("mode tcp"));
    for name in ["server1", "server2", "server3"] {
        assert!(
            haproxy.contains(&format!("server {name} {name}:6868")),
            "haproxy.cfg does not balance over {name}"
        );
    }
}
