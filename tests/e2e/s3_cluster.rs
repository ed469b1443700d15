//! Issue #10, item 7: a cluster on one bucket. Three `ferry-server`s share an S3
//! store (moto's server, one bucket, started for each test), the same storage key
//! and the same Fernet key, behind HAProxy in TCP mode (round robin). What any
//! server acknowledged with `OK` is listed, with the same id, size and SHA-256,
//! and reads back identical, on every server; a server killed mid-stream loses
//! nothing it acknowledged; an object storage that stops answering for a while
//! makes a transfer wait or fail with `ERROR`, never acknowledge what is not
//! then listed. Servers compacting the commit log at once, every second, give
//! back the space of deleted items and keep listing the rest identically.

use crate::harness::gateway::Gateway;
use crate::harness::{Admin, Sent, Server, python_script, text_file, wait_until};
use ferry_test_support::moto::Moto;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

const BUCKET: &str = "ferry-cluster";
const STORE: &str = "s3://ferry-cluster/e2e";
/// How long the servers may take to all list what one of them acknowledged
/// (a poll interval of 200 ms plus a listing and a GET, on a loaded machine).
const CONVERGE: Duration = Duration::from_secs(10);

/// HAProxy in TCP mode, round robin over the servers' TCP listeners; killed on drop.
struct HaProxy {
    child: Child,
    addr: String,
}

impl HaProxy {
    /// Writes the config into `dir`, starts `haproxy -db` and waits until it accepts connections.
    fn start(dir: &Path, servers: &[String]) -> HaProxy {
        // A free port: bound by the OS, then released for HAProxy.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let backends: String = servers
            .iter()
            .enumerate()
            .map(|(n, server)| format!("    server s{n} {server} check\n"))
            .collect();
        // A connection refused by a dead server is retried on another one
        // (redispatch); health checks take it out of the rotation soon after.
        let config = format!(
            "global\n    maxconn 512\n\
             defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n    retries 3\n    option redispatch\n\
             frontend ferry\n    bind {addr}\n    default_backend servers\n\
             backend servers\n    balance roundrobin\n    default-server inter 200ms fall 2 rise 1\n{backends}"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new("haproxy")
            .arg("-f")
            .arg(&path)
            .arg("-db")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("haproxy (Debian's haproxy package; scripts/test.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("haproxy exited before listening on {addr}: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "haproxy does not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        HaProxy { child, addr }
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Moto, three servers on one bucket of it, and HAProxy in front of them.
/// Fields drop in order: HAProxy, the servers, moto, the shared keys.
struct Cluster {
    haproxy: HaProxy,
    servers: Vec<Server>,
    moto: Moto,
    /// The shared `storage.key`, `fernet.key` and HAProxy's config.
    shared: tempfile::TempDir,
}

/// A `ferry-server` in a fresh data directory on moto's bucket, with the
/// storage and Fernet keys in `shared`, and `extra` arguments.
fn server_on(moto: &Moto, shared: &Path, extra: &[&str]) -> Server {
    server_in(tempfile::tempdir().unwrap(), moto, shared, extra)
}

/// [`server_on`] in `dir` (a restart, when it holds a server's data already).
fn server_in(dir: tempfile::TempDir, moto: &Moto, shared: &Path, extra: &[&str]) -> Server {
    let storage_key = shared.join("storage.key");
    let fernet_key = shared.join("fernet.key");
    let mut args = vec![
        "--store",
        STORE,
        "--storage-key",
        storage_key.to_str().unwrap(),
        "--fernet-key",
        fernet_key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start_with(dir, &args, &env, Stdio::inherit())
}

impl Cluster {
    fn start() -> Cluster {
        Cluster::start_with(&[])
    }

    /// A cluster whose servers also get `extra` arguments.
    fn start_with(extra: &[&str]) -> Cluster {
        let moto = Moto::start();
        moto.create_bucket(BUCKET);
        let shared = tempfile::tempdir().unwrap();
        // One at a time: the first server creates both keys (before it announces
        // its listeners), the others find them.
        let servers: Vec<Server> = (0..3)
            .map(|_| server_on(&moto, shared.path(), extra))
            .collect();
        assert!(
            shared.path().join("storage.key").exists() && shared.path().join("fernet.key").exists()
        );
        let tcp: Vec<String> = servers.iter().map(Server::tcp).collect();
        let haproxy = HaProxy::start(shared.path(), &tcp);
        Cluster {
            haproxy,
            servers,
            moto,
            shared,
        }
    }

    fn fernet_key(&self) -> PathBuf {
        self.shared.path().join("fernet.key")
    }

    /// One more server on the cluster's bucket and keys (not behind HAProxy).
    fn another_server(&self) -> Server {
        server_on(&self.moto, self.shared.path(), &[])
    }

    /// `ferry-gateway` forwarding to HAProxy, with the shared Fernet key.
    fn gateway(&self) -> Gateway {
        let admin = self.servers[0].admin_url();
        Gateway::start_keyed(&self.fernet_key(), &admin, &self.haproxy.addr, &[])
    }
}

/// One transfer the legacy client made, and when its reply came.
struct Heard {
    sent: Sent,
    at: Instant,
}

/// Runs the legacy Python client with `plan` through `addr` and returns every
/// transfer it reported, as its replies come, whether or not the client ends
/// well: a server killed mid-session breaks its connection.
fn legacy_client(addr: &str, key: &Path, sessions: &str, plan: &Value) -> Vec<Heard> {
    legacy_client_watched(addr, key, sessions, plan, |_| {})
}

/// Like [`legacy_client`], calling `watch` with each transfer as its reply comes.
fn legacy_client_watched(
    addr: &str,
    key: &Path,
    sessions: &str,
    plan: &Value,
    mut watch: impl FnMut(&Heard),
) -> Vec<Heard> {
    use std::io::Write;
    let mut child = Command::new("python3")
        .arg(python_script("legacy_client.py"))
        .args(["--server", addr, "--sessions", sessions, "--key"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(plan.to_string().as_bytes()).unwrap();
    drop(stdin);
    let mut heard = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let at = Instant::now();
        let line: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let transfer = Heard {
            sent: Sent::from_line(&line),
            at,
        };
        watch(&transfer);
        heard.push(transfer);
    }
    child.wait().unwrap();
    heard
}

/// Like [`legacy_client`], for a client that must end well with every reply `OK`.
fn legacy_client_ok(addr: &str, key: &Path, sessions: &str, plan: &Value) -> Vec<Sent> {
    let heard = legacy_client(addr, key, sessions, plan);
    assert_eq!(
        heard.len(),
        plan.as_array().unwrap().len(),
        "every transfer got a reply"
    );
    heard
        .into_iter()
        .map(|heard| {
            assert_eq!(heard.sent.reply, "OK", "{}", plan);
            heard.sent
        })
        .collect()
}

/// A distinct dictionary transfer: `n` makes its content (and SHA-256) unique.
fn dict(n: usize, format: &str, encrypt: bool) -> Value {
    json!({
        "kind": "dict",
        "format": format,
        "encrypt": encrypt,
        "content": {"cluster": "s3", "n": n, "label": "Dachboden ☃", "reading": 21.5},
    })
}

/// Waits until every server in `admins` lists an item of each `(size, sha256)`
/// of `expected`; checks each is listed exactly once, under the same id, size
/// and SHA-256 everywhere, and that its content downloaded from every server
/// has that size and SHA-256. Returns sha256 -> id.
async fn listed_everywhere(
    admins: &[Admin],
    expected: &[(u64, String)],
) -> BTreeMap<String, String> {
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for (n, admin) in admins.iter().enumerate() {
        let listed = wait_until(CONVERGE, async || {
            let items = admin.all_items().await;
            let by_sha: BTreeMap<String, Value> = items
                .iter()
                .map(|item| (item["sha256"].as_str().unwrap().to_owned(), item.clone()))
                .collect();
            let missing = expected
                .iter()
                .filter(|(_, sha)| !by_sha.contains_key(sha))
                .count();
            match missing {
                0 => Ok(items),
                _ => Err(format!(
                    "server {n} ({}) lists {} items, {missing} of the {} acknowledged missing",
                    admin.base,
                    items.len(),
                    expected.len()
                )),
            }
        })
        .await;
        for (size, sha) in expected {
            let matching: Vec<&Value> = listed
                .iter()
                .filter(|item| item["sha256"] == **sha)
                .collect();
            assert_eq!(
                matching.len(),
                1,
                "server {n} lists {sha} once: {matching:?}"
            );
            let item = matching[0];
            assert_eq!(item["size"], *size, "server {n}: {item}");
            let id = item["id"].as_str().unwrap().to_owned();
            let first = ids.entry(sha.clone()).or_insert_with(|| id.clone());
            assert_eq!(*first, id, "server {n} lists {sha} under another id");
            assert_eq!(
                admin.content_digest(&id).await,
                (*size, sha.clone()),
                "content of {id} read from server {n}"
            );
        }
    }
    ids
}

/// `kill -SIGNAL pid`.
fn signal(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// A condition on the progress of the clients (per client: its latest session
/// and the acknowledgements in it) and the acknowledgements since the wait began.
type Until = dyn Fn(&[(usize, usize); 3], usize) -> bool;

/// Moto stopped with SIGSTOP; continued on drop (even if the test fails meanwhile).
struct Stopped(u32);

impl Stopped {
    fn new(pid: u32) -> Stopped {
        signal("STOP", pid);
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(self.0.to_string())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_legacy_clients_and_the_gateway_send_through_haproxy_is_listed_identical_on_every_server()
 {
    let cluster = Cluster::start();
    let key = cluster.fernet_key();
    let proxy = cluster.haproxy.addr.clone();
    let files = tempfile::tempdir().unwrap();
    // Larger than the commit log's inline limit (256 KiB): an object of its own.
    let big = text_file(files.path(), "big.txt", 600_000);
    let small = text_file(files.path(), "small.txt", 3_000);

    let formats = ["json", "pickle", "xml"];
    // A session per transfer: six connections, spread over the servers.
    let each: Vec<Value> = (0..6)
        .map(|n| dict(n, formats[n % 3], n % 2 == 1))
        .collect();
    // Two sessions of several transfers each, with the texts.
    let mut one = vec![
        dict(10, "json", true),
        dict(11, "pickle", false),
        dict(12, "xml", true),
    ];
    one.push(json!({"kind": "text", "path": big, "encrypt": false}));
    let mut two = vec![dict(20, "pickle", true), dict(21, "xml", false)];
    two.push(json!({"kind": "text", "path": small, "encrypt": true}));

    let mut expected: Vec<(u64, String)> = Vec::new();
    let (proxy_, key_) = (proxy.clone(), key.clone());
    let sent = tokio::task::spawn_blocking(move || {
        let mut sent = legacy_client_ok(&proxy_, &key_, "each", &Value::Array(each));
        sent.extend(legacy_client_ok(&proxy_, &key_, "one", &Value::Array(one)));
        sent.extend(legacy_client_ok(&proxy_, &key_, "one", &Value::Array(two)));
        sent
    })
    .await
    .unwrap();
    expected.extend(sent.into_iter().map(|sent| (sent.size, sent.sha256)));

    let gateway = cluster.gateway();
    let mut gateway_ids = Vec::new();
    for (n, encrypt) in [(30, false), (31, true), (32, false)] {
        let reply = gateway
            .post_dict("json", encrypt, &json!({"from": "gateway", "n": n}))
            .await;
        gateway_ids.push((reply.id(), reply.body.clone()));
    }
    let body: Vec<u8> = (0..400_000u32).map(|i| b'a' + (i % 23) as u8).collect();
    let reply = gateway
        .post_file("encrypt=true&name=gateway.txt", body.clone())
        .await;
    gateway_ids.push((reply.id(), reply.body.clone()));
    let body_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
    assert_eq!(reply.body["sha256"], body_sha.as_str(), "{}", reply.body);
    for (_, body) in &gateway_ids {
        // Signed by whichever server took it, from its own log in the bucket.
        assert!(body["receipt"]["index"].is_u64(), "a receipt: {body}");
        expected.push((
            body["size"].as_u64().unwrap(),
            body["sha256"].as_str().unwrap().to_owned(),
        ));
    }

    let admins: Vec<Admin> = cluster.servers.iter().map(Server::admin).collect();
    let ids = listed_everywhere(&admins, &expected).await;
    for (id, body) in &gateway_ids {
        assert_eq!(ids[body["sha256"].as_str().unwrap()], *id, "{body}");
    }
    for (n, admin) in admins.iter().enumerate() {
        assert_eq!(
            admin.all_items().await.len(),
            expected.len(),
            "server {n} lists only what was sent"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_stream_loses_nothing_it_acknowledged() {
    let mut cluster = Cluster::start();
    let key = cluster.fernet_key();
    let proxy = cluster.haproxy.addr.clone();

    // Three clients at once, each sending sessions of dictionaries, one session
    // after another, until told to stop.
    const SESSION: usize = 30;
    let stop = Arc::new(AtomicBool::new(false));
    // (client, its session, what was acknowledged)
    let (ok_tx, ok_rx) = mpsc::channel::<(usize, usize, Sent)>();
    let senders: Vec<_> = (0..3)
        .map(|client| {
            let (proxy, key, stop, ok_tx) =
                (proxy.clone(), key.clone(), stop.clone(), ok_tx.clone());
            std::thread::spawn(move || {
                let (mut session, mut planned, mut replies) = (0, 0, Vec::new());
                while !stop.load(Ordering::SeqCst) {
                    let first = (client * 1000 + session) * SESSION;
                    let plan: Vec<Value> = (first..first + SESSION)
                        .map(|n| dict(n, ["json", "pickle", "xml"][n % 3], n % 2 == 0))
                        .collect();
                    planned += SESSION;
                    let plan = Value::Array(plan);
                    legacy_client_watched(&proxy, &key, "one", &plan, |heard| {
                        replies.push(heard.sent.reply.clone());
                        if heard.sent.reply == "OK" {
                            let _ = ok_tx.send((client, session, heard.sent.clone()));
                        }
                    });
                    session += 1;
                }
                (planned, replies)
            })
        })
        .collect();
    drop(ok_tx);

    let mut acknowledged: Vec<Sent> = Vec::new();
    // Per client: its latest session heard of, and the acknowledgements in it.
    let mut progress = [(0usize, 0usize); 3];
    let mut take = |done: &Until, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        let start = acknowledged.len();
        while !done(&progress, acknowledged.len() - start) {
            let left = deadline.saturating_duration_since(Instant::now());
            let (client, session, sent) = ok_rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "not {what} within 30 s: (session, acknowledged in it) per client {progress:?}"
                )
            });
            progress[client] = match progress[client] {
                (current, count) if current == session => (current, count + 1),
                _ => (session, 1),
            };
            acknowledged.push(sent);
        }
    };
    // A client is in the middle of a session...
    take(
        &|progress, since| {
            since >= 10
                && progress
                    .iter()
                    .any(|&(_, count)| (2..SESSION - 10).contains(&count))
        },
        "10 acknowledged, and a client in the middle of a session",
    );
    // ... and the server killed is one that has a session open.
    let mut open = Vec::new();
    for server in &cluster.servers {
        let metrics = server.admin().metrics().await;
        let gauge = metrics
            .lines()
            .find_map(|line| line.strip_prefix("ferry_open_connections "))
            .map_or(0.0, |value| value.trim().parse::<f64>().unwrap());
        open.push(gauge);
    }
    let victim = (0..3).max_by(|&a, &b| open[a].total_cmp(&open[b])).unwrap();
    cluster.servers[victim].running.kill();
    // The two others take over.
    take(
        &|_, since| since >= 15,
        "15 more acknowledged after the kill",
    );
    stop.store(true, Ordering::SeqCst);
    let (mut planned, mut replies) = (0, Vec::new());
    for sender in senders {
        let (p, r) = sender.join().unwrap();
        planned += p;
        replies.extend(r);
    }
    acknowledged.extend(ok_rx.try_iter().map(|(_, _, sent)| sent));
    for reply in &replies {
        assert!(
            reply == "OK" || reply.is_empty() || reply.starts_with("ERROR"),
            "an unexpected reply: {reply:?}"
        );
    }
    // Transfers not acknowledged: those of the session the kill cut short.
    eprintln!(
        "server {victim} killed with open connections {open:?}: {planned} transfers planned, {} replies heard, {} acknowledged",
        replies.len(),
        acknowledged.len()
    );

    let expected: Vec<(u64, String)> = acknowledged
        .iter()
        .map(|sent| (sent.size, sent.sha256.clone()))
        .collect();
    let survivors: Vec<Admin> = (0..3)
        .filter(|&n| n != victim)
        .map(|n| cluster.servers[n].admin())
        .collect();
    listed_everywhere(&survivors, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_object_storage_delays_or_fails_a_transfer_but_never_acknowledges_what_is_not_listed()
 {
    let cluster = Cluster::start();
    let key = cluster.fernet_key();
    let proxy = cluster.haproxy.addr.clone();
    let admins: Vec<Admin> = cluster.servers.iter().map(Server::admin).collect();

    // Three clients at once, one per server (round robin), while moto is stopped.
    let stopped = Stopped::new(cluster.moto.pid());
    let clients: Vec<_> = (0..3)
        .map(|n| {
            let (proxy, key) = (proxy.clone(), key.clone());
            std::thread::spawn(move || {
                legacy_client(&proxy, &key, "one", &json!([dict(n, "json", n == 1)]))
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let continued = Instant::now();
    drop(stopped);

    let mut acknowledged = Vec::new();
    for client in clients {
        let heard = client.join().unwrap();
        assert_eq!(heard.len(), 1, "the transfer got a reply");
        let Heard { sent, at } = heard.into_iter().next().unwrap();
        if sent.reply == "OK" {
            assert!(
                at >= continued,
                "acknowledged while the object storage was stopped"
            );
            acknowledged.push((sent.size, sent.sha256));
        } else {
            assert!(
                sent.reply.starts_with("ERROR"),
                "neither OK nor ERROR: {:?}",
                sent.reply
            );
            eprintln!("refused while moto was stopped: {}", sent.reply);
        }
    }
    eprintln!(
        "{} of 3 transfers sent while moto was stopped acknowledged",
        acknowledged.len()
    );
    listed_everywhere(&admins, &acknowledged).await;

    // Once moto answers again, a new transfer is acknowledged and listed everywhere.
    let (proxy_, key_) = (proxy.clone(), key.clone());
    let after = tokio::task::spawn_blocking(move || {
        legacy_client_ok(&proxy_, &key_, "one", &json!([dict(10, "pickle", true)]))
    })
    .await
    .unwrap();
    acknowledged.extend(after.into_iter().map(|sent| (sent.size, sent.sha256)));
    listed_everywhere(&admins, &acknowledged).await;
}

/// The commit-log objects all servers removed, from their `/metrics`.
async fn log_objects_removed(admins: &[Admin]) -> u64 {
    let mut removed = 0;
    for admin in admins {
        let metrics = admin.metrics().await;
        removed += metrics
            .lines()
            .filter(|line| line.starts_with("ferry_s3_log_objects_removed_total"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64;
    }
    removed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_compacting_at_once_give_back_deleted_space_and_keep_the_rest() {
    let cluster = Cluster::start_with(&[
        "--s3-compact-interval-secs",
        "1",
        "--s3-compact-grace-secs",
        "1",
    ]);
    let key = cluster.fernet_key();
    // 48 dictionaries of about 30 kB: more than a MiB of commit log, so
    // compaction is worth it once most of them are deleted.
    let plan: Vec<Value> = (0..48)
        .map(|n| {
            let format = ["json", "pickle", "xml"][n % 3];
            json!({
                "kind": "dict",
                "format": format,
                "encrypt": n % 2 == 0,
                "content": {"n": n, "padding": "compaction ".repeat(3000)},
            })
        })
        .collect();
    let sent = legacy_client_ok(&cluster.haproxy.addr, &key, "one", &Value::Array(plan));
    let expected: Vec<(u64, String)> = sent.into_iter().map(|s| (s.size, s.sha256)).collect();
    let admins: Vec<Admin> = cluster.servers.iter().map(Server::admin).collect();
    let ids = listed_everywhere(&admins, &expected).await;

    // Three of every four deleted, through every server in turn.
    let (mut kept, mut deleted) = (Vec::new(), Vec::new());
    for (n, (size, sha)) in expected.iter().enumerate() {
        if n % 4 == 0 {
            kept.push((*size, sha.clone()));
        } else {
            let admin = &admins[n % admins.len()];
            assert_eq!(
                admin.delete(&ids[sha]).await,
                204,
                "delete {sha} on server {n}"
            );
            deleted.push(ids[sha].clone());
        }
    }
    wait_until(
        Duration::from_secs(60),
        async || match log_objects_removed(&admins).await {
            0 => Err("no commit-log object removed yet".to_owned()),
            n => Ok(n),
        },
    )
    .await;

    // Every server, and one started now, lists exactly what was kept.
    let late = cluster.another_server();
    let mut everyone = admins;
    everyone.push(late.admin());
    listed_everywhere(&everyone, &kept).await;
    // A server may still be reading the deletes other servers committed.
    for (n, admin) in everyone.iter().enumerate() {
        wait_until(CONVERGE, async || {
            let listed: Vec<String> = admin
                .all_items()
                .await
                .iter()
                .map(|item| item["id"].as_str().unwrap().to_owned())
                .collect();
            let still = deleted.iter().filter(|id| listed.contains(id)).count();
            match (listed.len() == kept.len(), still) {
                (true, 0) => Ok(()),
                _ => Err(format!(
                    "server {n} lists {} items, {still} of them deleted; {} were kept",
                    listed.len(),
                    kept.len()
                )),
            }
        })
        .await;
    }
}

/// Issue #12 on the S3 store: each server keeps its own log in the bucket,
/// named by its signing key. What a server stores gets a receipt signed by its
/// own key at once, and its admin API serves the same receipt later; each
/// server's leaves start at 0, and a restarted server finds its log again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_server_gives_receipts_from_its_own_log_in_the_bucket() {
    use crate::harness::admin::{id_of, send_dict, session_keyed};
    use ferry_protocol::Serialization;
    use ferry_tlog::{Receipt, Verifier};

    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let shared = tempfile::tempdir().unwrap();
    let fast = ["--checkpoint-interval-ms", "100"];
    // In their first life, the servers never copy their leaves out of the
    // commit log into their logs' own objects: as if each crashed first.
    let never_copies = [&fast[..], &["--s3-log-copy-ms", "3600000"]].concat();
    let mut servers: Vec<Server> = (0..2)
        .map(|_| server_on(&moto, shared.path(), &never_copies))
        .collect();
    let (mut keys, mut first_life) = (Vec::new(), Vec::new());
    for (n, server) in servers.iter().enumerate() {
        let admin = server.admin();
        let key = admin.get("/api/log/key").await.text().await.unwrap();
        let verifier = Verifier::from_text(key.trim()).unwrap();
        let mut s = session_keyed(server, &shared.path().join("fernet.key")).await;
        let mut receipts = Vec::new();
        for k in 0..3 {
            let reply = send_dict(
                &mut s,
                json!({"server": n, "k": k}),
                Serialization::Json,
                false,
            )
            .await;
            let native: Receipt =
                serde_json::from_value(reply.signed.clone().expect("a receipt")).unwrap();
            native.verify(&verifier).unwrap();
            assert_eq!(native.index, k, "server {n}'s own log");
            receipts.push((id_of(&reply), native));
        }
        s.end().await.unwrap();
        for (id, native) in &receipts {
            let served: Receipt =
                serde_json::from_value(admin.get_json(&format!("/api/items/{id}/receipt")).await)
                    .unwrap();
            assert_eq!((&served.id, served.index), (&native.id, native.index));
            served.verify(&verifier).unwrap();
        }
        if n == 0 {
            first_life = receipts;
        }
        keys.push(key);
    }
    assert_ne!(keys[0], keys[1], "each server signs with its own key");

    // Killed before it copied any leaf into its log's own objects, and
    // restarted on the same data directory (the same key): the same log,
    // read back from the commit log, then copied.
    let Server { mut running, dir } = servers.remove(0);
    running.kill();
    drop(running);
    let again = server_in(dir, &moto, shared.path(), &fast);
    let verifier = Verifier::from_text(keys[0].trim()).unwrap();
    for (id, native) in &first_life {
        let served: Receipt = serde_json::from_value(
            again
                .admin()
                .get_json(&format!("/api/items/{id}/receipt"))
                .await,
        )
        .unwrap();
        assert_eq!((&served.id, served.index), (&native.id, native.index));
        served.verify(&verifier).unwrap();
    }
    let mut s = session_keyed(&again, &shared.path().join("fernet.key")).await;
    let reply = send_dict(&mut s, json!({"again": true}), Serialization::Json, false).await;
    s.end().await.unwrap();
    let receipt: Receipt = serde_json::from_value(reply.signed.clone().unwrap()).unwrap();
    assert!(
        receipt.index >= 3,
        "after the first life's leaves: {}",
        receipt.index
    );
    receipt.verify(&verifier).unwrap();

    // A checkpoint published into the bucket, then `verify-log` with the
    // server stopped reads the log back from the bucket and checks it.
    let admin = again.admin();
    crate::harness::wait_until(CONVERGE, async || {
        let response = admin.get("/api/log/checkpoint").await;
        let note = response.text().await.unwrap_or_default();
        match note
            .lines()
            .nth(1)
            .and_then(|size| size.parse::<u64>().ok())
        {
            Some(size) if size > receipt.index => Ok(()),
            _ => Err(format!("no checkpoint of the new leaf yet: {note:?}")),
        }
    })
    .await;
    let Server { mut running, dir } = again;
    running.kill();
    let storage_key = shared.path().join("storage.key");
    let data = dir.path().join("data");
    let verify = Command::new(crate::harness::bin("ferry-server"))
        .args(["--data-dir", data.to_str().unwrap(), "--store", STORE])
        .args(["--storage-key", storage_key.to_str().unwrap(), "verify-log"])
        .envs(moto.env())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(stdout.contains("ok: the leaves match"), "{stdout}");
}
