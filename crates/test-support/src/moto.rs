//! moto's S3-compatible server, started on a free port for one test process
//! (`tests/python/moto_server.py`) and gone when the test ends: it exits when
//! its standard input closes, and is killed when the handle drops.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

/// A running moto server.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// Kept open: the server exits when it closes.
    _stdin: ChildStdin,
    port: u16,
}

impl Moto {
    /// Starts a server and waits until it listens.
    ///
    /// # Panics
    /// If Python or moto is missing, or the server does not start.
    pub fn start() -> Moto {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/moto_server.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect(
                "starting moto's server (python3 with moto[server]; scripts/test.sh installs it)",
            );
        let stdin = child.stdin.take().expect("piped");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("reading moto's port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("moto's server did not start (it printed {line:?})"));
        Moto {
            child,
            _stdin: stdin,
            port,
        }
    }

    /// The server's endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's process id (to pause it with SIGSTOP, say).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Creates a bucket.
    ///
    /// # Panics
    /// If the server does not answer 200.
    pub fn create_bucket(&self, name: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connecting to moto");
        write!(
            stream,
            "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .expect("asking moto for a bucket");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .expect("reading moto's answer");
        assert!(
            answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"),
            "moto did not create bucket {name}: {answer}"
        );
    }

    /// The `AWS_*` variables that point an S3 client at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "ferry-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "ferry-test".into()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
