//! The grace bound under stuck work (B9): handlers that outlast the grace
//! and clients that never read while the server writes (full send buffers
//! on both sides). The stop must still end by the grace + 50 ms.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::bench::process::{Server, Side};

/// The grace the server gets.
pub const GRACE_MS: u64 = 300;
/// Handlers sleeping far past the grace, and clients that never read.
pub const HANGING: usize = 4;
pub const NOT_READING: usize = 4;
/// The echo each non-reading client asks for: far more than the socket
/// buffers of both sides hold, so the server's writes block.
const ECHO_BYTES: usize = 32 << 20;

/// What one run saw.
pub struct GraceRun {
    /// The report's own `elapsed_ms` (from the stop to its end).
    pub elapsed_ms: Option<u64>,
    /// From our SIGTERM to the report line on stdout.
    pub observed: Duration,
    pub force_closed: Option<u64>,
    pub exited: bool,
}

impl GraceRun {
    pub fn within_bound(&self) -> bool {
        self.exited && self.observed <= Duration::from_millis(GRACE_MS + 50)
    }
}

pub async fn run(bin: &Path, runtime: &str) -> GraceRun {
    eprintln!("[stress] {runtime}: stop with a {GRACE_MS} ms grace and stuck work");
    let grace = GRACE_MS.to_string();
    let mut server = Server::start_with(bin, Side::Stoppable, runtime, &["--grace-ms", &grace]);
    let addr = server.addr;
    let mut held = Vec::new();
    for _ in 0..HANGING {
        held.push(tokio::spawn(hang(addr)));
    }
    let (sent_body, mut bodies) = tokio::sync::mpsc::channel(NOT_READING);
    for _ in 0..NOT_READING {
        held.push(tokio::spawn(never_read(addr, sent_body.clone())));
    }
    // The echoes are stuck once their bodies are sent (the server has read
    // them all and is writing); the hanging handlers are requests in flight.
    let deadline = Instant::now() + Duration::from_secs(20);
    for _ in 0..NOT_READING {
        let _ = tokio::time::timeout_at(deadline.into(), bodies.recv()).await;
    }
    while in_flight(addr).await < HANGING as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = server.terminate();
    let (line, exited, at) = tokio::task::spawn_blocking(move || {
        let (line, at) = server.report_line();
        (line, server.wait(Duration::from_secs(10)), at)
    })
    .await
    .expect("the report reader");
    for task in held {
        task.abort();
    }
    GraceRun {
        elapsed_ms: field(&line, "elapsed_ms"),
        observed: at.saturating_duration_since(sent),
        force_closed: field(&line, "force_closed"),
        exited,
    }
}

/// A request whose handler sleeps a minute; the connection is kept open.
async fn hang(addr: SocketAddr) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    let _ = stream
        .write_all(b"GET /sleep/60000 HTTP/1.1\r\nhost: stress\r\n\r\n")
        .await;
    let mut buf = [0u8; 1024];
    while let Ok(1..) = stream.read(&mut buf).await {}
}

/// Sends a large body to `/echo`, says so, and never reads the echo.
async fn never_read(addr: SocketAddr, sent: tokio::sync::mpsc::Sender<()>) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    let head =
        format!("POST /echo HTTP/1.1\r\nhost: stress\r\ncontent-length: {ECHO_BYTES}\r\n\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let chunk = vec![b'x'; 1 << 16];
    for _ in 0..ECHO_BYTES / chunk.len() {
        if stream.write_all(&chunk).await.is_err() {
            return;
        }
    }
    let _ = sent.send(()).await;
    // Hold the connection, reading nothing, until aborted.
    std::future::pending::<()>().await;
}

/// The server's requests in flight, from `/stats` (0 if unreachable).
async fn in_flight(addr: SocketAddr) -> u64 {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return 0;
    };
    let request = b"GET /stats HTTP/1.1\r\nhost: stress\r\nconnection: close\r\n\r\n";
    if stream.write_all(request).await.is_err() {
        return 0;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    // The /stats request itself is in flight while it answers.
    field(&response, "requests_in_flight").map_or(0, |n| n.saturating_sub(1))
}

/// A number field of a one-line JSON object.
fn field(json: &str, name: &str) -> Option<u64> {
    let key = format!("\"{name}\":");
    let rest = &json[json.find(&key)? + key.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}
