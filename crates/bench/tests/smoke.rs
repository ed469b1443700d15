//! The whole benchmark with tiny sizes against the debug binaries, so the bench
//! code keeps working. Needs `cargo build --bins` first (as scripts/test.sh does),
//! and python3 with moto for the S3 part (moto's server, started and stopped by the run).

use ferry_bench::{Only, Plan, Sizes, run};
use std::path::PathBuf;

/// Where the debug `ferry-server` and `ferry-gateway` are.
fn debug_bin_dir() -> PathBuf {
    for name in ["ferry-server", "ferry-gateway"] {
        ferry_bins::path(name).unwrap_or_else(|err| panic!("{err}"));
    }
    ferry_bins::dir().expect("the binaries' directory")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_run_measures_every_figure_and_cleans_up() {
    let work = tempfile::tempdir().unwrap();
    let work_dir = work.path().join("bench-work");
    let plan = Plan {
        bin_dir: debug_bin_dir(),
        work_dir: work_dir.clone(),
        sizes: Sizes::tiny(),
        only: Only::All,
        s3: None,
    };
    let report = run(&plan).await.expect("the bench runs");

    let markdown = report.markdown();
    assert!(
        !report.machine.load.is_empty() && !report.load_after.is_empty(),
        "load averages missing"
    );
    for expected in [
        "Limits",
        "TCP server",
        "Gateway",
        "POST /dict",
        "POST /file",
        "tus upload",
        "re-sent after a PATCH cut",
        "peak RSS",
        "legacy-style Python client",
        "against a server that answers OK at once",
        "1 connection's best",
        "overwrite of prepared space",
        "ceiling",
        "page-cache write",
        "with the server's page-cache copy counted too",
        "S3 store",
        "plain multipart upload",
        "another on the bucket lists the item",
    ] {
        assert!(
            markdown.contains(expected),
            "{expected:?} missing from\n{markdown}"
        );
    }
    for figure in &report.figures {
        // A cost (a figure to stay below) may be nothing at all.
        let may_be_zero = matches!(figure.target, ferry_bench::Target::Below { .. });
        assert!(
            figure.value.is_finite() && (figure.value > 0.0 || may_be_zero && figure.value == 0.0),
            "{} measured {}",
            figure.name,
            figure.value
        );
    }
    assert!(
        report.figures.iter().any(|f| f.passed().is_some()),
        "no figure has a target"
    );
    let json = report.json();
    assert_eq!(
        json["figures"].as_array().unwrap().len(),
        report.figures.len()
    );
    assert!(!work_dir.exists(), "the work directory is left behind");
}
