//! The HTTP listeners (the admin API and the gateway) against peers that connect
//! and stall: one that says nothing, one that stops in the middle of its request
//! headers, and one idle between keep-alive requests are all dropped once the
//! timeout passes (the server's `--idle-timeout`, the gateway's
//! `--request-timeout`), while a client that keeps talking is served throughout.

use std::time::{Duration, Instant};

use crate::harness::Server;
use crate::harness::gateway::Gateway;
use crate::harness::raw::{Heard, Raw};

const PARTIAL: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: ferry\r\n";
const WHOLE: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: ferry\r\n\r\n";

/// Opens the three kinds of stalled connections to `addr` and checks that each
/// is closed after `timeout` (not before), within a few seconds.
async fn stalled_peers_are_dropped(addr: &str, timeout: Duration) {
    let started = Instant::now();
    let checks = [b"" as &[u8], PARTIAL, WHOLE].map(|sent| async move {
        let mut conn = Raw::connect(addr).await;
        conn.send(sent).await.unwrap();
        if sent == WHOLE {
            match conn.hear(Duration::from_secs(10)).await {
                Heard::Reply(reply) => assert!(reply.starts_with("HTTP/1.1 200"), "{reply}"),
                other => panic!("no answer to a whole request: {other:?}"),
            }
        }
        let closed = conn.closed_within(timeout + Duration::from_secs(5)).await;
        (sent, closed, started.elapsed())
    });
    for (sent, closed, after) in futures::future::join_all(checks).await {
        let sent = String::from_utf8_lossy(sent);
        assert!(closed, "{addr}: a peer that sent {sent:?} was not dropped");
        assert!(
            after >= timeout - Duration::from_millis(100),
            "{addr}: a peer that sent {sent:?} was dropped after {after:?}, before {timeout:?}"
        );
    }
}

/// A client that sends a request every `gap` (shorter than the timeout) on one
/// keep-alive connection is answered every time.
async fn a_talking_client_is_served(addr: &str, gap: Duration) {
    let mut conn = Raw::connect(addr).await;
    for _ in 0..4 {
        conn.send(WHOLE).await.unwrap();
        match conn.hear(Duration::from_secs(10)).await {
            Heard::Reply(reply) => assert!(reply.starts_with("HTTP/1.1 200"), "{reply}"),
            other => panic!("{addr}: keep-alive request not answered: {other:?}"),
        }
        tokio::time::sleep(gap).await;
    }
}

#[tokio::test]
async fn the_admin_api_drops_stalled_peers_and_keeps_serving() {
    let server = Server::start(&["--idle-timeout", "2"]);
    let admin = server.admin_url();
    let addr = admin.trim_start_matches("http://").trim_end_matches('/');
    let (_, ()) = tokio::join!(
        stalled_peers_are_dropped(addr, Duration::from_secs(2)),
        a_talking_client_is_served(addr, Duration::from_millis(1200)),
    );
    crate::harness::assert_still_serves(&server).await;
}

#[tokio::test]
async fn the_gateway_drops_stalled_peers_and_keeps_serving() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &["--request-timeout", "2"]);
    let addr = gateway.url.trim_start_matches("http://").to_owned();
    let (_, ()) = tokio::join!(
        stalled_peers_are_dropped(&addr, Duration::from_secs(2)),
        a_talking_client_is_served(&addr, Duration::from_millis(1200)),
    );
    let reply = gateway
        .post_dict("json", false, &serde_json::json!({"still": "serving"}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}
