//! The admin page in a real headless Chromium (driven through ChromeDriver with
//! fantoccini): it loads, takes the token, lists items a test just sent (and one
//! that arrives while it is open), shows a dictionary as a tree with its keys and
//! a text item as text, shows an item put on legal hold (before it opened, and with
//! its hold button) as held, and downloads an original; it checks an item's
//! receipt in the browser (its checkpoint's signature and the leaf's inclusion
//! proof in it) and refuses a changed one, and its Log tab shows who read what. Screenshots are kept in
//! `target/artifacts/` (`admin-page.png`, `admin-dictionary.png`,
//! `admin-receipt.png`, `admin-log.png`).

use std::net::TcpListener;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::admin::{
    id_of, sample_text, seed_every_kind, send_dict, send_text, session, sha256_hex,
};
use crate::harness::{Server, bin, wait_until};
use fantoccini::{Client, ClientBuilder, Locator};
use ferry_protocol::Serialization;
use futures::FutureExt;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the page may take for anything it has to show.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);
/// Checkpoints every 100 ms, so that inclusion proofs come at once.
const FAST: [&str; 2] = ["--checkpoint-interval-ms", "100"];

/// A ChromeDriver on a free local port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// Starts ChromeDriver and waits until `/status` says it is ready.
    async fn start() -> Driver {
        // ChromeDriver needs a port number: take a free one from the OS and release it.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = crate::harness::http();
        let status = format!("{}/status", driver.url);
        wait_until(Duration::from_secs(30), async || {
            let ready = match http.get(&status).send().await {
                Ok(response) => {
                    response
                        .json::<serde_json::Value>()
                        .await
                        .unwrap_or_default()["value"]["ready"]
                        == true
                }
                Err(_) => false,
            };
            match ready {
                true => Ok(()),
                false => Err(format!("chromedriver is not ready on port {port}")),
            }
        })
        .await;
        driver
    }

    /// A headless Chromium session that downloads into `downloads` without asking.
    async fn browser(&self, profile: &Path, downloads: &Path) -> Client {
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--disable-quic", "--window-size=1400,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
                "prefs": {
                    "download.default_directory": downloads,
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                    "safebrowsing.enabled": false,
                },
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        // ChromeDriver listens on loopback: plain HTTP.
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `steps` in a fresh headless Chromium (with a downloads directory); if
/// they panic, keeps a screenshot as `target/artifacts/<failure>` first.
pub(crate) async fn in_browser(failure: &str, steps: impl AsyncFnOnce(&Client, &Path)) {
    let driver = Driver::start().await;
    let scratch = tempfile::tempdir().unwrap();
    let (profile, downloads) = (
        scratch.path().join("profile"),
        scratch.path().join("downloads"),
    );
    std::fs::create_dir_all(&downloads).unwrap();
    let browser = driver.browser(&profile, &downloads).await;
    let outcome = AssertUnwindSafe(steps(&browser, &downloads))
        .catch_unwind()
        .await;
    if outcome.is_err() {
        // Keep what the page looked like when it went wrong.
        let _ = browser
            .screenshot()
            .await
            .map(|png| std::fs::write(artifacts().join(failure), png));
    }
    let _ = browser.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Opens the page and signs in with the server's token.
async fn sign_in(browser: &Client, server: &Server) {
    browser
        .goto(&format!("{}/", server.admin_url()))
        .await
        .unwrap();
    assert_eq!(browser.title().await.unwrap(), "Ferry admin");
    wait_for(browser, "#token")
        .await
        .send_keys(&server.token())
        .await
        .unwrap();
    wait_for(browser, "#connect").await.click().await.unwrap();
}

/// `target/artifacts/`, created.
pub(crate) fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    let path = artifacts().join(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// Waits for the first element matching `css`.
pub(crate) async fn wait_for(browser: &Client, css: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|err| panic!("{css} did not appear: {err}"))
}

/// Waits until the list shows exactly `count` rows.
async fn wait_for_rows(browser: &Client, count: usize) {
    wait_until(PATIENCE, async || {
        let rows = browser.find_all(Locator::Css(".item-row")).await.unwrap();
        match rows.len() {
            n if n == count => Ok(()),
            n => Err(format!("{n} rows listed, not {count}")),
        }
    })
    .await
}

/// Polls `dir` until `name` is there, complete, with `expected` bytes.
async fn wait_for_download(dir: &Path, name: &str, expected: &[u8]) {
    let path = dir.join(name);
    wait_until(PATIENCE, async || {
        let listing: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|entry| entry.file_name())
            .collect();
        let partial = listing
            .iter()
            .any(|name| name.to_string_lossy().ends_with(".crdownload"));
        match !partial && std::fs::read(&path).is_ok_and(|bytes| bytes == expected) {
            true => Ok(()),
            false => Err(format!(
                "{} was not downloaded with the right bytes; the directory holds {listing:?}",
                path.display()
            )),
        }
    })
    .await
}

#[tokio::test]
async fn the_page_lists_new_items_shows_a_dictionary_and_a_text_and_downloads_the_original() {
    let server = Server::start(&["--retention", "dict=30d"]);
    let seeded = seed_every_kind(&server).await;
    // The dictionary is on hold before the page opens.
    let held = server
        .admin()
        .http
        .put(format!(
            "{}/api/items/{}/hold",
            server.admin_url(),
            seeded.dict.0
        ))
        .bearer_auth(server.token())
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), 200);
    in_browser("admin-page-failure.png", async |browser, downloads| {
        use_the_page(browser, &server, &seeded, downloads).await
    })
    .await;
}

async fn use_the_page(
    browser: &Client,
    server: &Server,
    seeded: &crate::harness::admin::Seeded,
    downloads: &Path,
) {
    sign_in(browser, server).await;

    // Every item sent before the page opened is listed.
    for id in &seeded.ids {
        wait_for(browser, &format!(".item-row[data-id=\"{id}\"]")).await;
    }
    // One sent while the page is open arrives live.
    let mut s = session(server).await;
    let live = id_of(
        &send_text(
            &mut s,
            b"arrived while the page was open\n",
            Some("live.txt"),
            false,
        )
        .await,
    );
    s.end().await.unwrap();
    let live_row = wait_for(browser, &format!(".item-row[data-id=\"{live}\"]")).await;
    assert!(live_row.text().await.unwrap().contains("live.txt"));
    let rows = browser.find_all(Locator::Css(".item-row")).await.unwrap();
    assert_eq!(rows.len(), seeded.ids.len() + 1, "each item listed once");
    // The name filter keeps the one file whose name has "LIVE" in it, any case.
    wait_for(browser, "#filter-name")
        .await
        .send_keys("LIVE")
        .await
        .unwrap();
    wait_for(browser, "#apply-filters")
        .await
        .click()
        .await
        .unwrap();
    wait_for_rows(browser, 1).await;
    wait_for(browser, &format!(".item-row[data-id=\"{live}\"]")).await;
    wait_for(browser, "#clear-filters")
        .await
        .click()
        .await
        .unwrap();
    wait_for_rows(browser, seeded.ids.len() + 1).await;
    // The held dictionary shows its badge and its expiry; nothing else is held.
    let (dict_id, _) = &seeded.dict;
    let held_row = wait_for(
        browser,
        &format!(
            ".item-row[data-id=\"{dict_id}\"][data-held=\"true\"] [data-testid=\"held-badge\"]"
        ),
    )
    .await;
    assert_eq!(held_row.text().await.unwrap(), "on hold");
    let row_text = wait_for(browser, &format!(".item-row[data-id=\"{dict_id}\"]"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        row_text.contains("expires"),
        "the expiry is shown: {row_text}"
    );
    let badges = browser
        .find_all(Locator::Css("[data-testid=\"held-badge\"]"))
        .await
        .unwrap();
    assert_eq!(badges.len(), 1, "only the held item has the badge");

    // A dictionary opens as a tree with its keys.
    let (dict_id, dict) = &seeded.dict;
    wait_for(browser, &format!(".item-row[data-id=\"{dict_id}\"]"))
        .await
        .click()
        .await
        .unwrap();
    wait_for(
        browser,
        &format!("#detail-body[data-id=\"{dict_id}\"] #json-tree:not([hidden]) .key"),
    )
    .await;
    let mut keys = Vec::new();
    for key in browser
        .find_all(Locator::Css("#json-tree .key"))
        .await
        .unwrap()
    {
        keys.push(key.text().await.unwrap());
    }
    for key in dict
        .as_object()
        .unwrap()
        .keys()
        .chain(dict["reading"].as_object().unwrap().keys())
    {
        assert!(
            keys.contains(key),
            "key {key:?} is not shown; the tree shows {keys:?}"
        );
    }
    let tree = wait_for(browser, "#json-tree").await.text().await.unwrap();
    assert!(
        tree.contains("\"s-17\"") && tree.contains("21.5") && tree.contains("Dachboden ☃"),
        "values shown: {tree}"
    );
    let detail_badges = wait_for(browser, "#detail-badges")
        .await
        .text()
        .await
        .unwrap();
    assert!(detail_badges.contains("on hold"), "{detail_badges}");
    assert_eq!(
        wait_for(browser, "#hold").await.text().await.unwrap(),
        "Release hold"
    );
    screenshot(browser, "admin-dictionary.png").await;

    // A text item opens as text.
    let (text_id, text) = &seeded.text;
    wait_for(browser, &format!(".item-row[data-id=\"{text_id}\"]"))
        .await
        .click()
        .await
        .unwrap();
    let view = wait_for(
        browser,
        &format!("#detail-body[data-id=\"{text_id}\"] #text-view:not([hidden])"),
    )
    .await;
    assert_eq!(view.text().await.unwrap().trim_end(), text.trim_end());
    assert!(
        browser
            .find(Locator::Css("#json-tree[hidden]"))
            .await
            .is_ok(),
        "the tree is hidden for text"
    );
    // Its hold button puts it on hold: the row shows it, and so does the API.
    wait_for(browser, "#hold").await.click().await.unwrap();
    wait_for(
        browser,
        &format!(
            ".item-row[data-id=\"{text_id}\"][data-held=\"true\"] [data-testid=\"held-badge\"]"
        ),
    )
    .await;
    let item = server
        .admin()
        .get_json(&format!("/api/items/{text_id}"))
        .await;
    assert_eq!(item["held"], true, "{item}");
    assert!(item["expires_at"].is_null(), "no rule for text: {item}");
    wait_for(browser, "#hold").await.click().await.unwrap();
    wait_for(
        browser,
        &format!(".item-row[data-id=\"{text_id}\"][data-held=\"false\"]"),
    )
    .await;
    screenshot(browser, "admin-page.png").await;

    // Download keeps the original bytes and name.
    wait_for(browser, "#download").await.click().await.unwrap();
    wait_for_download(downloads, "notes.txt", sample_text().as_bytes()).await;
}

/// The text of the first element matching `css`, once it is there.
async fn text_of(browser: &Client, css: &str) -> String {
    wait_for(browser, css).await.text().await.unwrap()
}

/// `token:` and the first 8 hex digits of the token's SHA-256, as the log names it.
fn credential(server: &Server) -> String {
    format!("token:{}", &sha256_hex(server.token().as_bytes())[..8])
}

#[tokio::test]
async fn the_page_verifies_an_items_receipt_and_its_log_tab_shows_who_read_what() {
    let server = Server::start(&FAST);
    let mut s = session(&server).await;
    let text = b"a receipt for this, please\n";
    let text_id = id_of(&send_text(&mut s, text, Some("receipted.txt"), false).await);
    let dict_id = id_of(&send_dict(&mut s, json!({ "n": 1 }), Serialization::Json, true).await);
    s.end().await.unwrap();
    in_browser("admin-receipt-failure.png", async |browser, downloads| {
        sign_in(browser, &server).await;
        check_receipt(browser, &server, &text_id, &sha256_hex(text), downloads).await;
        check_log_tab(browser, &server, &text_id, &dict_id).await;
    })
    .await;
}

/// Opens `id` and waits for its receipt to be checked: it must verify, show the
/// item's fields, and download as a receipt that `ferry verify` accepts.
async fn check_receipt(
    browser: &Client,
    server: &Server,
    id: &str,
    sha256: &str,
    downloads: &Path,
) {
    wait_for(browser, &format!(".item-row[data-id=\"{id}\"]"))
        .await
        .click()
        .await
        .unwrap();
    let checked =
        format!("#detail-body[data-id=\"{id}\"] #receipt-status:not([data-state=\"pending\"])");
    let status = wait_for(browser, &checked).await;
    let said = status.text().await.unwrap();
    assert_eq!(
        status.attr("data-state").await.unwrap().as_deref(),
        Some("ok"),
        "the receipt did not verify: {said}"
    );
    let size = said
        .strip_prefix("verified: signature ✓, in checkpoint of ")
        .and_then(|rest| rest.strip_suffix(" leaves ✓"))
        .unwrap_or_else(|| panic!("unexpected status: {said}"));
    assert!(size.parse::<u64>().unwrap() >= 1, "{said}");
    let receipt = server
        .admin()
        .get_json(&format!("/api/items/{id}/receipt"))
        .await;
    let shown = text_of(browser, "#receipt-meta").await;
    for field in [id, sha256, receipt["log"].as_str().unwrap()] {
        assert!(shown.contains(field), "{field} is not shown: {shown}");
    }
    assert!(
        shown.contains(&format!("Leaf index\n{}", receipt["index"])),
        "{shown}"
    );
    screenshot(browser, "admin-receipt.png").await;

    // The receipt downloads as JSON that `ferry verify` checks against the server.
    wait_for(browser, "#receipt-download")
        .await
        .click()
        .await
        .unwrap();
    let saved = downloads.join(format!("{id}.receipt.json"));
    wait_until(PATIENCE, async || {
        match std::fs::read(&saved)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        {
            Some(json) if json == receipt => Ok(()),
            other => Err(format!(
                "{} holds {other:?}, not {receipt}",
                saved.display()
            )),
        }
    })
    .await;
    let verify = Command::new(bin("ferry"))
        .args([
            "verify",
            saved.to_str().unwrap(),
            "--admin",
            &server.admin_url(),
        ])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "ferry verify refused the downloaded receipt:\n{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// The Log tab lists the items stored and the page's own reads (by the token's
/// credential, from 127.0.0.1), newest first, links to listed items, and checks
/// the whole log on demand.
async fn check_log_tab(browser: &Client, server: &Server, text_id: &str, dict_id: &str) {
    wait_for(browser, "#tab-log").await.click().await.unwrap();
    for id in [text_id, dict_id] {
        wait_for(
            browser,
            &format!(".log-row[data-event=\"stored\"][data-id=\"{id}\"]"),
        )
        .await;
    }
    // The page read the text's content and its receipt (its metadata).
    for what in ["content", "metadata"] {
        let reads = browser
            .find_all(Locator::Css(&format!(
                ".log-row[data-event=\"read\"][data-id=\"{text_id}\"]"
            )))
            .await
            .unwrap();
        let mut texts = Vec::new();
        for row in reads {
            texts.push(row.text().await.unwrap());
        }
        let wanted = [what, &credential(server), "127.0.0.1"];
        assert!(
            texts.iter().any(|t| wanted.iter().all(|w| t.contains(w))),
            "no read of the {what} with {wanted:?} in {texts:?}"
        );
    }
    let mut indexes = Vec::new();
    for row in browser.find_all(Locator::Css(".log-row")).await.unwrap() {
        indexes.push(
            row.attr("data-index")
                .await
                .unwrap()
                .unwrap()
                .parse::<u64>()
                .unwrap(),
        );
    }
    assert!(
        indexes.windows(2).all(|w| w[0] > w[1]),
        "not newest first: {indexes:?}"
    );
    assert_eq!(
        indexes.last(),
        Some(&0),
        "the first leaf is among the latest: {indexes:?}"
    );

    wait_for(browser, "#log-verify")
        .await
        .click()
        .await
        .unwrap();
    let status = wait_for(
        browser,
        "#log-verify-status:not([hidden]):not([data-state=\"pending\"])",
    )
    .await;
    let said = status.text().await.unwrap();
    assert_eq!(
        status.attr("data-state").await.unwrap().as_deref(),
        Some("ok"),
        "{said}"
    );
    assert!(said.starts_with("Log verified ✓"), "{said}");
    screenshot(browser, "admin-log.png").await;

    // A stored entry links to its item.
    wait_for(
        browser,
        &format!(".log-row[data-event=\"stored\"][data-id=\"{dict_id}\"] a"),
    )
    .await
    .click()
    .await
    .unwrap();
    wait_for(
        browser,
        &format!("#detail-body[data-id=\"{dict_id}\"] #json-tree:not([hidden]) .key"),
    )
    .await;
    assert!(
        browser
            .find(Locator::Css("#log-view[hidden]"))
            .await
            .is_ok(),
        "back on the item"
    );
}

/// What the page's `ferryVerifyReceipt` answers for `receipt`, `key` and `inclusion`.
async fn page_verdict(browser: &Client, receipt: &Value, key: &str, inclusion: &Value) -> Value {
    browser
        .execute(
            "return window.ferryVerifyReceipt(arguments[0], arguments[1], arguments[2]);",
            vec![receipt.clone(), json!(key), inclusion.clone()],
        )
        .await
        .expect("ferryVerifyReceipt ran")
}

#[tokio::test]
async fn the_page_refuses_a_receipt_or_proof_that_was_changed() {
    let server = Server::start(&FAST);
    let admin = server.admin();
    let mut s = session(&server).await;
    let id = id_of(&send_text(&mut s, b"first\n", None, false).await);
    send_text(&mut s, b"second\n", None, false).await;
    s.end().await.unwrap();
    let receipt = admin.get_json(&format!("/api/items/{id}/receipt")).await;
    let key = admin.get("/api/log/key").await.text().await.unwrap();
    let index = receipt["index"].as_u64().unwrap();
    // The first item's receipt, asked for after the second was stored, carries
    // a checkpoint of both leaves: its proof has a hash.
    assert!(
        receipt["proof"].as_array().is_some_and(|p| !p.is_empty()),
        "{receipt}"
    );
    // An inclusion proof against a later checkpoint, with at least one hash.
    let mut inclusion = Value::Null;
    wait_until(PATIENCE, async || {
        let response = admin
            .get(&format!("/api/log/inclusion?index={index}"))
            .await;
        inclusion = response.json().await.unwrap_or_default();
        match inclusion["proof"].as_array().is_some_and(|p| !p.is_empty()) {
            true => Ok(()),
            false => Err(format!("no proof with hashes yet: {inclusion}")),
        }
    })
    .await;
    let zeros = format!("{}=", "A".repeat(43));

    let checkpoint = receipt["checkpoint"].as_str().unwrap();
    // A character of the signature itself (past the 4-byte key hash).
    let at = checkpoint.rfind(' ').unwrap() + 20;
    let other = if &checkpoint[at..=at] == "A" {
        "B"
    } else {
        "A"
    };
    let bad_signature = format!("{}{other}{}", &checkpoint[..at], &checkpoint[at + 1..]);
    let root = checkpoint.lines().nth(2).unwrap();
    let sha = receipt["sha256"].as_str().unwrap();
    let other_sha = format!(
        "{}{}",
        if sha.starts_with('0') { "1" } else { "0" },
        &sha[1..]
    );
    let leaf = receipt["leaf"].as_str().unwrap();
    let later = inclusion["checkpoint"].as_str().unwrap();
    let later_root = later.lines().nth(2).unwrap();

    let changed = |changes: &[(&str, Value)]| {
        let mut copy = receipt.clone();
        for (member, value) in changes {
            copy[*member] = value.clone();
        }
        copy
    };
    let with_proof = |member: &str, value: Value| {
        let mut copy = inclusion.clone();
        copy[member] = value;
        copy
    };
    let mut receipt_proof = receipt["proof"].clone();
    receipt_proof[0] = json!(zeros);
    let mut later_proof = inclusion["proof"].clone();
    later_proof[0] = json!(zeros);
    let not_in_checkpoint = "the leaf is not in the receipt's checkpoint";
    let cases = [
        (
            "the receipt's sha256",
            changed(&[("sha256", json!(other_sha))]),
            Value::Null,
            "sha256 is not the leaf's",
        ),
        (
            "the leaf, and the sha256 that repeats it",
            changed(&[
                ("leaf", json!(leaf.replace(sha, &other_sha))),
                ("sha256", json!(other_sha)),
            ]),
            Value::Null,
            not_in_checkpoint,
        ),
        (
            "the checkpoint's signature",
            changed(&[("checkpoint", json!(bad_signature))]),
            Value::Null,
            "the receipt's checkpoint: signature does not verify",
        ),
        (
            "the checkpoint's root",
            changed(&[("checkpoint", json!(checkpoint.replace(root, &zeros)))]),
            Value::Null,
            "the receipt's checkpoint: signature does not verify",
        ),
        (
            "a hash of the receipt's proof",
            changed(&[("proof", receipt_proof)]),
            Value::Null,
            not_in_checkpoint,
        ),
        (
            "the receipt's proof, emptied",
            changed(&[("proof", json!([]))]),
            Value::Null,
            not_in_checkpoint,
        ),
        (
            "the index",
            changed(&[("index", json!(index + 1))]),
            Value::Null,
            not_in_checkpoint,
        ),
        (
            "a hash of the later proof",
            receipt.clone(),
            with_proof("proof", later_proof),
            "the leaf is not in the later checkpoint",
        ),
        (
            "the later checkpoint's root",
            receipt.clone(),
            with_proof("checkpoint", json!(later.replace(later_root, &zeros))),
            "the later checkpoint: signature does not verify",
        ),
    ];

    in_browser("admin-verify-failure.png", async |browser, _| {
        browser
            .goto(&format!("{}/", server.admin_url()))
            .await
            .unwrap();
        wait_for(browser, "#token").await;
        // The real receipt verifies, alone and with the later proof: the
        // checks below fail for the change alone.
        let verdict = page_verdict(browser, &receipt, &key, &Value::Null).await;
        assert_eq!(verdict["ok"], true, "{verdict}");
        assert_eq!(verdict["inclusion"], true, "{verdict}");
        assert_eq!(verdict["later"], Value::Null, "{verdict}");
        let size = checkpoint.lines().nth(1).unwrap().parse::<u64>().unwrap();
        assert_eq!(verdict["checkpointSize"], size, "{verdict}");
        let verdict = page_verdict(browser, &receipt, &key, &inclusion).await;
        assert_eq!(verdict["later"], true, "{verdict}");
        assert_eq!(verdict["laterSize"], inclusion["size"], "{verdict}");
        for (what, receipt, inclusion, reason) in &cases {
            let verdict = page_verdict(browser, receipt, &key, inclusion).await;
            assert_eq!(
                verdict["ok"], false,
                "{what}, changed, was accepted: {verdict}"
            );
            let error = verdict["error"].as_str().unwrap_or_default();
            assert!(
                error.contains(reason),
                "{what}, changed: {error:?} does not say {reason:?}"
            );
        }
        // Another key (its hash changed) is not the log's.
        let plus = key.find('+').unwrap() + 1;
        let digit = if &key[plus..=plus] == "0" { "1" } else { "0" };
        let other_key = format!("{}{digit}{}", &key[..plus], &key[plus + 1..]);
        let verdict = page_verdict(browser, &receipt, &other_key, &Value::Null).await;
        assert_eq!(verdict["ok"], false, "{verdict}");
        assert!(
            verdict["error"]
                .as_str()
                .unwrap_or_default()
                .contains("key hash does not match"),
            "{verdict}"
        );
    })
    .await;
}

#[tokio::test]
async fn the_page_says_when_the_server_keeps_no_log() {
    let server = Server::start(&["--tlog", "false"]);
    let mut s = session(&server).await;
    let id = id_of(&send_text(&mut s, b"no receipt\n", None, false).await);
    s.end().await.unwrap();
    in_browser("admin-no-log-failure.png", async |browser, _| {
        sign_in(browser, &server).await;
        wait_for(browser, &format!(".item-row[data-id=\"{id}\"]"))
            .await
            .click()
            .await
            .unwrap();
        let status = text_of(
            browser,
            &format!("#detail-body[data-id=\"{id}\"] #receipt-status[data-state=\"none\"]"),
        )
        .await;
        assert!(status.contains("keeps no log"), "{status}");
        assert!(
            browser
                .find(Locator::Css("#receipt-download[hidden]"))
                .await
                .is_ok()
        );
        wait_for(browser, "#tab-log").await.click().await.unwrap();
        assert!(
            text_of(browser, "#log-error:not([hidden])")
                .await
                .contains("keeps no log")
        );
    })
    .await;
}
