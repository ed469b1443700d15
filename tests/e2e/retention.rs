//! Retention and legal holds against the real server: with `dict=2s` and a sweep
//! every second, an unheld dictionary is deleted once it expires, while a held one
//! survives its expiry, refuses the admin API's delete with `409` until it is
//! released, keeps its hold across a restart, and is swept once released.

use std::time::Duration;

use ferry_protocol::Serialization;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::harness::admin::{id_of, send_dict, session};
use crate::harness::{Admin, Server, wait_until};

const RETENTION: [&str; 4] = ["--retention", "dict=2s", "--retention-sweep-interval", "1"];
/// Far longer than the expiry and a few sweeps, on a loaded machine too.
const PATIENCE: Duration = Duration::from_secs(60);

/// `method base/api/items/{id}{suffix}` with the token: the status and the JSON.
async fn call(admin: &Admin, method: reqwest::Method, id: &str, suffix: &str) -> (u16, Value) {
    let response = admin
        .http
        .request(method, format!("{}/api/items/{id}{suffix}", admin.base))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn instant(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().unwrap(), &Rfc3339).unwrap()
}

/// Waits until item `id` is gone (a `404`).
async fn wait_until_gone(admin: &Admin, id: &str) {
    wait_until(PATIENCE, async || {
        match call(admin, reqwest::Method::GET, id, "").await {
            (404, _) => Ok(()),
            (status, json) => Err(format!("{id} is still there ({status}): {json}")),
        }
    })
    .await;
}

#[tokio::test]
async fn a_held_item_outlives_its_expiry_and_refuses_deletes_until_released() {
    let server = Server::start_logged(&RETENTION);
    let admin = server.admin();
    let mut s = session(&server).await;
    let held = id_of(&send_dict(&mut s, json!({"keep": "me"}), Serialization::Json, false).await);
    let (status, json) = call(&admin, reqwest::Method::PUT, &held, "/hold").await;
    assert_eq!((status, &json["held"]), (200, &json!(true)), "{json}");
    // Sent after the hold was set: it expires after the held one.
    let unheld = id_of(&send_dict(&mut s, json!({"drop": "me"}), Serialization::Xml, false).await);
    s.end().await.unwrap();

    let (_, item) = call(&admin, reqwest::Method::GET, &held, "").await;
    assert_eq!(
        instant(&item["expires_at"]) - instant(&item["received_at"]),
        time::Duration::seconds(2),
        "{item}"
    );
    assert_eq!(item["held"], true);

    // The unheld dictionary is swept once it expires; by then the held one has
    // expired too, and is still there.
    wait_until_gone(&admin, &unheld).await;
    let (status, item) = call(&admin, reqwest::Method::GET, &held, "").await;
    assert_eq!(status, 200, "the held item was swept: {item}");
    assert!(instant(&item["expires_at"]) < OffsetDateTime::now_utc());
    assert_eq!(item["held"], true);

    // The admin API refuses to delete it, and says how to release it.
    let (status, error) = call(&admin, reqwest::Method::DELETE, &held, "").await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["error"]["code"], "legal_hold");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("legal hold") && message.contains("/hold"),
        "{message}"
    );

    // Counted: one expired, one held past its expiry; the sweep said what it did.
    wait_until(PATIENCE, async || {
        let metrics = admin.metrics().await;
        let expired = metrics
            .lines()
            .any(|l| l.starts_with("ferry_items_expired_total{") && l.ends_with(" 1"));
        let kept = metrics
            .lines()
            .any(|l| l == "ferry_items_held_past_expiry 1");
        match expired && kept {
            true => Ok(()),
            false => Err(format!("not counted yet:\n{metrics}")),
        }
    })
    .await;
    let log = std::fs::read_to_string(server.log_file()).unwrap();
    let summary = log
        .lines()
        .find(|line| line.contains("retention sweep deleted expired items"))
        .unwrap_or_else(|| panic!("no summary line in the log:\n{log}"));
    assert!(
        summary.contains("expired=1") && summary.contains("held=1"),
        "{summary}"
    );

    // The hold survives a restart (and the sweeper stops with the server).
    let Server { mut running, dir } = server;
    assert!(running.terminate().success());
    drop(running);
    let server = Server::start_in(dir, &RETENTION);
    let admin = server.admin();
    let (status, item) = call(&admin, reqwest::Method::GET, &held, "").await;
    assert_eq!((status, &item["held"]), (200, &json!(true)), "{item}");
    let (status, _) = call(&admin, reqwest::Method::DELETE, &held, "").await;
    assert_eq!(status, 409);

    // Released, it expires like any other.
    let (status, item) = call(&admin, reqwest::Method::DELETE, &held, "/hold").await;
    assert_eq!((status, &item["held"]), (200, &json!(false)), "{item}");
    wait_until_gone(&admin, &held).await;
}
