//! The gateway's upload page (`/`) in a real headless Chromium (the admin
//! page's driver, `browser`): it asks for the gateway's token, uploads a file
//! chosen in its file input through tus-js-client in small chunks over a slow
//! link (a throttling proxy in front of the gateway), pauses (the server's
//! offset then stays put), resumes with its button, pauses again, and after a
//! reload of the page continues the same upload when the file is chosen
//! again. The stored item is the file, byte for byte, and the page shows its id
//! and its link. Everything the page loaded came from the gateway itself.
//! Screenshot: `target/artifacts/upload-page.png`.

use std::time::Duration;

use crate::browser::{PATIENCE, in_browser, screenshot, wait_for};
use crate::harness::gateway::{Gateway, Proxy, TOKEN};
use crate::harness::{Server, wait_until};
use fantoccini::Client;
use fantoccini::elements::Element;
use rand::{RngCore, SeedableRng};

/// The file, and each PATCH the page sends (`?chunk=`): 16 chunks.
const SIZE: usize = 4 << 20;
const CHUNK: usize = 256 << 10;
/// The link's speed, client to gateway: the upload takes seconds, so a pause lands mid-way.
const LINK: u64 = 1 << 20;
/// How long a paused upload is watched for bytes it should not send (at
/// [`LINK`], several chunks' worth).
const STILL: Duration = Duration::from_millis(1500);

#[tokio::test]
async fn the_upload_page_uploads_pauses_resumes_and_continues_after_a_reload() {
    let server = Server::start(&[]);
    let gateway = Gateway::start(&server, &server.tcp(), &[]);
    let link = Proxy::throttled(&gateway.running.addr("gateway"), LINK).await;
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("page-upload.bin");
    let mut bytes = vec![0u8; SIZE];
    rand::rngs::StdRng::seed_from_u64(11).fill_bytes(&mut bytes);
    std::fs::write(&file, &bytes).unwrap();
    let page = format!("http://{}/?chunk={CHUNK}", link.addr);

    in_browser("upload-page-failure.png", async |browser, _| {
        browser.goto(&page).await.unwrap();
        assert_eq!(browser.title().await.unwrap(), "Ferry upload");
        let row = choose(browser, &file).await;

        // Paused once part of the file is on the server, the offset stays put.
        let url = wait_for_offset(&gateway, &row, SIZE as u64 / 4).await;
        click(&row, "pause").await;
        let paused = settled_offset(&gateway, &url).await;
        assert!(paused < SIZE as u64, "the upload finished before its pause");
        assert_eq!(attr(&row, "data-state").await, "paused");
        let shown = attr(&row, "data-sent").await;
        tokio::time::sleep(STILL).await;
        assert_eq!(
            offset(&gateway, &url).await,
            paused,
            "bytes went on while paused"
        );
        let still_shown = attr(&row, "data-sent").await;
        assert_eq!(shown, still_shown, "the progress bar moved while paused");
        screenshot(browser, "upload-page-paused.png").await;

        // Resumed with its button, it goes on from there; paused again further on.
        click(&row, "resume").await;
        wait_for_offset(&gateway, &row, paused + 2 * CHUNK as u64).await;
        click(&row, "pause").await;
        let second = settled_offset(&gateway, &url).await;
        assert!(
            second > paused && second < SIZE as u64,
            "{paused} then {second}"
        );

        // After a reload, the same file chosen again continues the same upload.
        browser.refresh().await.unwrap();
        wait_for(browser, "#token").await;
        let row = choose(browser, &file).await;
        assert_eq!(attr(&row, "data-resumed").await, "true");
        let done = browser
            .wait()
            .at_most(PATIENCE * 3)
            .for_element(fantoccini::Locator::Css(
                "[data-testid=upload][data-state=done] [data-testid=result]",
            ))
            .await
            .expect("the upload finishes");
        assert!(done.is_displayed().await.unwrap());
        assert_eq!(
            attr(&row, "data-url").await,
            url,
            "a second upload was created"
        );
        let id = row
            .find(fantoccini::Locator::Css("[data-testid=item-id]"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let href = row
            .find(fantoccini::Locator::Css("[data-testid=item-link]"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .unwrap_or_default();
        assert_eq!(href, format!("{}/api/items/{id}", server.admin_url()));
        assert_eq!(attr(&row, "data-item-id").await, id);
        screenshot(browser, "upload-page.png").await;
        assert!(
            server.admin().content(&id).await == bytes,
            "the stored item differs from the file"
        );

        // Offline: every script and every resource came from the gateway itself.
        let loaded = browser
            .execute(
                "return [location.origin, \
                  Array.from(document.scripts, s => s.src), \
                  performance.getEntriesByType('resource').map(e => e.name)];",
                vec![],
            )
            .await
            .unwrap();
        let origin = loaded[0].as_str().unwrap();
        let urls: Vec<&str> = loaded[1]
            .as_array()
            .unwrap()
            .iter()
            .chain(loaded[2].as_array().unwrap())
            .map(|url| url.as_str().unwrap())
            .collect();
        assert!(urls.len() >= 2, "{urls:?}");
        for url in urls {
            assert!(
                url.starts_with(&format!("{origin}/")),
                "{url} is not from {origin}"
            );
        }
    })
    .await;
}

/// Types the token (the gateway requires one), chooses `file` in the file
/// input, and returns the upload's row once it is uploading.
async fn choose(browser: &Client, file: &std::path::Path) -> Element {
    let token = wait_for(browser, "#token").await;
    assert!(token.is_displayed().await.unwrap(), "no token field");
    token.clear().await.unwrap();
    token.send_keys(TOKEN).await.unwrap();
    wait_for(browser, "#files")
        .await
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    let row = wait_for(browser, "[data-testid=upload]").await;
    let name = row
        .find(fantoccini::Locator::Css("[data-testid=name]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(name, "page-upload.bin");
    row
}

async fn click(row: &Element, button: &str) {
    row.find(fantoccini::Locator::Css(&format!("[data-testid={button}]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn attr(row: &Element, name: &str) -> String {
    row.attr(name).await.unwrap().unwrap_or_default()
}

/// Waits until the server holds at least `mark` bytes of the row's upload;
/// the upload's URL.
async fn wait_for_offset(gateway: &Gateway, row: &Element, mark: u64) -> String {
    wait_until(PATIENCE, async || {
        let url = attr(row, "data-url").await;
        if url.is_empty() {
            return Err(format!(
                "no upload URL yet ({})",
                attr(row, "data-state").await
            ));
        }
        match offset(gateway, &url).await {
            offset if offset >= mark => Ok(url),
            offset => Err(format!("offset {offset}, waiting for {mark}")),
        }
    })
    .await
}

/// The offset once two reads a moment apart agree (the chunk cut by the pause
/// has been dealt with).
async fn settled_offset(gateway: &Gateway, url: &str) -> u64 {
    let mut last = offset(gateway, url).await;
    wait_until(PATIENCE, async || {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = offset(gateway, url).await;
        let settled = now == last;
        last = now;
        match settled {
            true => Ok(now),
            false => Err(format!("the offset still moves ({now})")),
        }
    })
    .await
}

/// `HEAD` of the upload at the gateway itself (not through the slow link).
async fn offset(gateway: &Gateway, url: &str) -> u64 {
    let path = &url[url.find("/uploads/").expect("an upload URL")..];
    let response = gateway
        .http
        .head(format!("{}{path}", gateway.url))
        .header("Tus-Resumable", "1.0.0")
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "HEAD {path}");
    let value: &reqwest::header::HeaderValue = &response.headers()["upload-offset"];
    value.to_str().unwrap().parse().unwrap()
}
