//! Limits per client address: the gateway's and the admin API's rate limits
//! (`429` with `Retry-After`), and the TCP listener's connections per address,
//! which a legacy client hears as an `ERROR:` reply. A second address
//! (127.0.0.2, which Linux routes to loopback) shows that one client's limit
//! leaves the others alone.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::gateway::{Gateway, TOKEN};
use crate::harness::raw::{Raw, dict_meta, transfer};
use crate::harness::{Server, http_builder, python_client};

/// A second client address on the loopback interface.
const OTHER: &str = "127.0.0.2";

fn client_from(address: &str) -> reqwest::Client {
    http_builder()
        .local_address(address.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

fn dict() -> Value {
    json!({"sensor": "s-1", "value": 1})
}

async fn post_dict(client: &reqwest::Client, gateway: &Gateway) -> reqwest::Response {
    client
        .post(format!("{}/dict?format=json", gateway.url))
        .bearer_auth(TOKEN)
        .json(&dict())
        .send()
        .await
        .expect("POST /dict")
}

/// The checks every `429` passes: the status, `Retry-After` in whole seconds, the
/// limit headers, and the one JSON error shape.
async fn assert_rate_limited(response: reqwest::Response, limit: u32) {
    assert_eq!(response.status(), 429);
    let headers = response.headers();
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(headers["x-ratelimit-limit"], limit.to_string().as_str());
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["status"], 429);
    assert_eq!(body["error"]["code"], "rate_limited");
}

#[tokio::test]
async fn the_gateway_answers_429_past_a_clients_burst_and_serves_other_addresses() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(
        &server,
        &server.tcp(),
        &["--rate-limit", "1", "--rate-limit-burst", "3"],
    );
    let first = client_from("127.0.0.1");
    for _ in 0..3 {
        assert_eq!(post_dict(&first, &gateway).await.status(), 201);
    }
    assert_rate_limited(post_dict(&first, &gateway).await, 1).await;
    // Another address has its own bucket.
    let other = client_from(OTHER);
    assert_eq!(post_dict(&other, &gateway).await.status(), 201);
    // The refusal is counted.
    let metrics = other
        .get(format!("{}/metrics", gateway.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("ferry_http_rate_limited_total{service=\"gateway\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn the_admin_api_answers_429_past_a_clients_burst_and_serves_other_addresses() {
    let server = Server::start(&["--admin-rate-limit", "1", "--admin-rate-limit-burst", "2"]);
    let list = |client: reqwest::Client| {
        let url = format!("{}/api/items", server.admin_url());
        let token = server.token();
        async move { client.get(url).bearer_auth(token).send().await.unwrap() }
    };
    let first = client_from("127.0.0.1");
    for _ in 0..2 {
        assert_eq!(list(first.clone()).await.status(), 200);
    }
    assert_rate_limited(list(first.clone()).await, 1).await;
    assert_eq!(list(client_from(OTHER)).await.status(), 200);
}

/// One small JSON dictionary over the legacy framing, from `address`; the reply.
async fn legacy_dict_from(address: &str, server: &str) -> String {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{address}:0").parse::<SocketAddr>().unwrap())
        .unwrap();
    let stream = socket.connect(server.parse().unwrap()).await.unwrap();
    let payload = serde_json::to_vec(&dict()).unwrap();
    let mut conn = Raw { stream };
    conn.exchange(&transfer(dict_meta(2, false), &payload))
        .await
}

/// `count` small dictionaries sent by the legacy-style Python client, over one
/// session or one each; the replies.
async fn legacy_client(tcp: &str, sessions: &'static str, count: usize) -> Vec<String> {
    let plan = Value::Array(
        (0..count)
            .map(|i| json!({"kind": "dict", "format": "json", "content": {"n": i}}))
            .collect(),
    );
    let tcp = tcp.to_owned();
    tokio::task::spawn_blocking(move || python_client(&tcp, None, sessions, &plan))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_client_over_its_addresss_connections_gets_an_error_not_a_hang() {
    let server = Server::start(&["--max-connections-per-ip", "2"]);
    let tcp = server.tcp();
    // Two connections from 127.0.0.1 held open.
    let held = [
        tokio::net::TcpStream::connect(&tcp).await.unwrap(),
        tokio::net::TcpStream::connect(&tcp).await.unwrap(),
    ];
    let replies = legacy_client(&tcp, "one", 1).await;
    assert_eq!(replies.len(), 1);
    assert!(
        replies[0].starts_with("ERROR: too many connections from your address"),
        "{replies:?}"
    );
    // Another address is served meanwhile.
    assert_eq!(legacy_dict_from(OTHER, &tcp).await, "OK");
    // Once one of the held connections closes, the legacy client is served again.
    drop(held);
    let mut served = Vec::new();
    for _ in 0..50 {
        served = legacy_client(&tcp, "one", 1).await;
        if served == ["OK"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(served, ["OK"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connections_past_an_addresss_rate_get_an_error() {
    let server = Server::start(&["--new-connections-per-ip", "2"]);
    let tcp = server.tcp();
    let replies = legacy_client(&tcp, "each", 6).await;
    assert_eq!(replies.len(), 6);
    assert_eq!(replies[..2], ["OK", "OK"]);
    assert!(
        replies
            .iter()
            .any(|r| r.starts_with("ERROR: too many new connections from your address")),
        "{replies:?}"
    );
    assert_eq!(legacy_dict_from(OTHER, &tcp).await, "OK");
}
