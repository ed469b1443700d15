//! The README's curl examples work: every `curl` line (and the `ADMIN=`, `GATEWAY=`,
//! `TOKEN=` and `ID=` lines they use) of the sh blocks under "The admin API and the
//! browser page" and "The HTTP gateway" runs with bash against a live `ferry up`,
//! with only `ADMIN=` and `GATEWAY=` pointed at that instance. The working
//! directory holds the instance's `ferry-data` (so the README's `TOKEN=` line runs
//! as written) and a `notes.txt`.

use std::process::Command;

use crate::harness::{Running, bin};

/// The sh blocks' lines under the `## <heading>` section of `markdown`.
fn sh_lines(markdown: &str, heading: &str) -> Vec<String> {
    let section = markdown
        .split("\n## ")
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("README has no section {heading:?}"));
    let mut lines = Vec::new();
    let mut in_sh = false;
    for line in section.lines() {
        match line.trim() {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            text if in_sh => lines.push(text.to_owned()),
            _ => {}
        }
    }
    lines
}

/// The lines to run: curl commands and the variables they use.
fn runnable(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .filter(|line| {
            ["curl ", "ADMIN=", "GATEWAY=", "TOKEN=", "ID="]
                .iter()
                .any(|p| line.starts_with(p))
        })
        .collect()
}

#[tokio::test]
async fn the_readme_curl_lines_work_against_a_live_instance() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let admin_lines = runnable(sh_lines(&readme, "The admin API and the browser page"));
    let gateway_lines = runnable(sh_lines(&readme, "The HTTP gateway"));
    let curls = |lines: &[String]| lines.iter().filter(|l| l.starts_with("curl ")).count();
    assert!(
        curls(&admin_lines) >= 5,
        "the admin section shows the API with curl: {admin_lines:#?}"
    );
    assert!(
        curls(&gateway_lines) >= 2,
        "the gateway section shows it with curl: {gateway_lines:#?}"
    );
    assert!(
        admin_lines.iter().any(|l| l.starts_with("TOKEN="))
            && admin_lines.iter().any(|l| l.starts_with("ADMIN="))
    );
    assert!(
        readme.contains("ferry-data/admin.token"),
        "the README says where the token is"
    );

    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join("notes.txt"),
        "Notes from the README test.\nSecond line.\n",
    )
    .unwrap();
    let data = work.path().join("ferry-data");
    let up = Running::start(
        &bin("ferry"),
        &[
            "up",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--gateway-listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
        &["tcp", "admin", "gateway"],
    );
    let point = |line: String| match line.split_once('=') {
        Some(("ADMIN", _)) => format!("ADMIN=http://{}", up.addr("admin")),
        Some(("GATEWAY", _)) => format!("GATEWAY=http://{}", up.addr("gateway")),
        _ => line,
    };

    // The gateway's lines first: they store the items the admin lines then read.
    let mut script = String::from("set -euo pipefail\nexec 2>&1\n");
    for line in gateway_lines.into_iter().chain(admin_lines).map(point) {
        let shown = line.replace('\'', "'\\''");
        script.push_str(&format!("printf '%s\\n' '$ {shown}'\n{line}\necho\n"));
    }
    script.push_str("test -n \"$ID\" && test -s item.bin\n");
    let dir = work.path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(&dir)
            .output()
    })
    .await
    .unwrap()
    .expect("bash");
    let log = String::from_utf8_lossy(&output.stdout);
    println!("{log}");
    assert!(
        output.status.success(),
        "a README line failed (exit {:?}):\n{log}",
        output.status.code()
    );
    drop(up);
}
