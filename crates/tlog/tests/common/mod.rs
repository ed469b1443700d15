//! What the Python verifiers' tests share.

use std::process::{Command, Output};

/// Runs `python3 script args…`; a crash (a traceback, e.g. a missing module) is
/// not a verdict and fails the test.
pub fn python(script: &str, args: &[&std::ffi::OsStr]) -> Output {
    let output = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("Traceback"),
        "the Python verifier crashed:\n{stderr}"
    );
    output
}
