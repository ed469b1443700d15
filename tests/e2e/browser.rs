//! The admin page in a real headless Chromium (driven through ChromeDriver with
//! fantoccini): it loads, takes the token, lists items a test just sent (and one
//! that arrives while it is open), shows a dictionary as a tree with its keys and
//! a text item as text, shows an item put on legal hold (before it opened, and with
//! its hold button) as held, and downloads an original. Screenshots are kept in
//! `target/artifacts/` (`admin-page.png`, `admin-dictionary.png`).

use std::net::TcpListener;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::admin::{id_of, sample_text, seed_every_kind, send_text, session};
use crate::harness::{Server, wait_until};
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the page may take for anything it has to show.
const PATIENCE: Duration = Duration::from_secs(20);

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

/// `target/artifacts/`, created.
fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    let path = artifacts().join(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// Waits for the first element matching `css`.
async fn wait_for(browser: &Client, css: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|err| panic!("{css} did not appear: {err}"))
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
    let driver = Driver::start().await;
    let scratch = tempfile::tempdir().unwrap();
    let (profile, downloads) = (
        scratch.path().join("profile"),
        scratch.path().join("downloads"),
    );
    std::fs::create_dir_all(&downloads).unwrap();
    let browser = driver.browser(&profile, &downloads).await;

    let outcome = AssertUnwindSafe(use_the_page(&browser, &server, &seeded, &downloads))
        .catch_unwind()
        .await;
    if outcome.is_err() {
        // Keep what the page looked like when it went wrong.
        let _ = browser
            .screenshot()
            .await
            .map(|png| std::fs::write(artifacts().join("admin-page-failure.png"), png));
    }
    let _ = browser.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn use_the_page(
    browser: &Client,
    server: &Server,
    seeded: &crate::harness::admin::Seeded,
    downloads: &Path,
) {
    browser
        .goto(&format!("{}/", server.admin_url()))
        .await
        .unwrap();
    assert_eq!(browser.title().await.unwrap(), "Ferry admin");

    // Sign in with the token.
    wait_for(browser, "#token")
        .await
        .send_keys(&server.token())
        .await
        .unwrap();
    wait_for(browser, "#connect").await.click().await.unwrap();

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
