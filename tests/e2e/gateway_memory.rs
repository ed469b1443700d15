//! The gateway's memory stays bounded whoever connects: many connections each
//! sending a large `POST /dict` body and never finishing it take the gateway's
//! resident memory no higher than its dictionary budget plus a fixed overhead;
//! the bodies that find no room get a `503` `busy` with `Retry-After`; other
//! clients' small dictionaries are still stored; and the budget comes back when
//! the connections go, so a second wave is admitted and stays as bounded.

use std::time::Duration;

use crate::harness::Server;
use crate::harness::gateway::{Gateway, TOKEN};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MIB: u64 = 1024 * 1024;
/// The gateway's default budget for dictionary bodies.
const BUDGET: u64 = 128 * MIB;
/// What the gateway holds besides the bodies: code, runtime, connection buffers.
const OVERHEAD: u64 = 64 * MIB;
const CONNECTIONS: usize = 60;
const DECLARED: usize = 15 * 1024 * 1024;
const SENT: usize = 14 * 1024 * 1024;

/// How one hostile connection ended up.
#[derive(Debug)]
enum Outcome {
    /// The gateway read the whole unfinished body (it holds it now).
    Held(TcpStream),
    /// The gateway answered with this status line and headers instead.
    Answered(String),
}

/// Connects, declares a `DECLARED`-byte dictionary, sends `SENT` bytes of it and
/// stops, keeping the connection open.
async fn unfinished_dict(addr: &str) -> Outcome {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /dict HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {DECLARED}\r\n\r\n"
    );
    let write = async move {
        writer.write_all(head.as_bytes()).await?;
        let mut body = vec![b' '; SENT];
        body[0] = b'{';
        writer.write_all(&body).await?;
        Ok::<_, std::io::Error>(writer)
    };
    let mut answer = vec![0u8; 4096];
    // A refused body is answered, then the gateway closes while we are still
    // sending: the answer is read first whenever it is there, and a send cut short
    // by the close still reads the answer that came before it.
    tokio::select! {
        biased;
        read = reader.read(&mut answer) => {
            let n = read.unwrap();
            Outcome::Answered(String::from_utf8_lossy(&answer[..n]).into_owned())
        }
        written = write => match written {
            Ok(writer) => Outcome::Held(reader.reunite(writer).unwrap()),
            Err(_) => {
                let n = reader.read(&mut answer).await.unwrap();
                Outcome::Answered(String::from_utf8_lossy(&answer[..n]).into_owned())
            }
        },
    }
}

/// Sends a wave of unfinished dictionaries; returns the connections the gateway
/// holds and the answers of the others, once every connection is one or the other.
async fn wave(addr: &str) -> (Vec<TcpStream>, Vec<String>) {
    let outcomes = futures::future::join_all((0..CONNECTIONS).map(|_| unfinished_dict(addr)));
    let outcomes = tokio::time::timeout(Duration::from_secs(120), outcomes)
        .await
        .expect("every connection is either read in full or answered");
    let mut held = Vec::new();
    let mut answers = Vec::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Held(stream) => held.push(stream),
            Outcome::Answered(answer) => answers.push(answer),
        }
    }
    (held, answers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unfinished_dictionaries_cannot_take_the_gateways_memory() {
    let server = Server::start(&[]);
    // A long request timeout: the held bodies stay held while we measure.
    let gateway = Gateway::start(&server, &server.tcp(), &["--request-timeout", "300"]);
    let addr = gateway.url.trim_start_matches("http://").to_owned();
    let limit = BUDGET + OVERHEAD;

    for round in 1..=2 {
        let (held, answers) = wave(&addr).await;
        let resident = gateway.running.rss_bytes();
        eprintln!(
            "round {round}: {} bodies held, {} answered, gateway RSS {} MiB",
            held.len(),
            answers.len(),
            resident / MIB
        );
        assert!(
            resident < limit,
            "round {round}: RSS {} MiB is over the budget plus overhead ({} MiB)",
            resident / MIB,
            limit / MIB
        );
        assert!(
            !held.is_empty() && held.len() as u64 * DECLARED as u64 <= BUDGET,
            "round {round}: {} bodies held",
            held.len()
        );
        assert_eq!(held.len() + answers.len(), CONNECTIONS);
        for answer in &answers {
            assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
            let answer = answer.to_ascii_lowercase();
            assert!(answer.contains("retry-after:"), "{answer}");
            assert!(answer.contains("\"busy\""), "{answer}");
        }

        let small = gateway
            .post_dict("json", false, &json!({"round": round, "small": true}))
            .await;
        let id = small.id();
        assert_eq!(
            server.admin().content_as_json(&id).await,
            json!({"round": round, "small": true})
        );
        assert!(gateway.running.rss_bytes() < limit);
        // The connections go: the bodies' budget comes back for the next round.
        drop(held);
    }
}
