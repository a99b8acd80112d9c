//! Connections opened and dropped in a loop while a stop runs: first during
//! the readiness delay (accepted, then dropped by the client), then in the
//! drain (refused). The busy request must be answered, the stop must end
//! with a graceful report, and the server must exit.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::bench::process::{Server, Side};
use crate::http1::{read_response, Response};

/// What a churn run saw.
pub struct Churn {
    pub accepted: usize,
    pub refused: usize,
    pub busy_answered: bool,
    pub report: String,
    pub exited: bool,
}

impl Churn {
    pub fn ok(&self) -> bool {
        self.busy_answered && self.exited && self.report.contains(r#""graceful":true"#)
    }
}

/// `n` connects and drops (bounded to 20 s) during one stop.
pub async fn run(bin: &Path, runtime: &str, n: usize) -> Churn {
    eprintln!("[stress] {runtime}: {n} connections opened and dropped during a stop");
    let mut server =
        Server::start_with(bin, Side::Stoppable, runtime, &["--drain-delay-ms", "500"]);
    let addr = server.addr;
    let busy = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = b"GET /sleep/1500 HTTP/1.1\r\nhost: stress\r\n\r\n";
        stream.write_all(request).await.ok()?;
        let mut buf = vec![0u8; 4096];
        Some(matches!(
            read_response(&mut stream, &mut buf).await,
            Response::Answered { .. }
        ))
    });
    // Let the busy request reach its handler before the stop.
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.terminate();
    let ended = tokio::task::spawn_blocking(move || {
        let (report, _) = server.report_line();
        (report, server.wait(Duration::from_secs(20)))
    });
    let (mut accepted, mut refused) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    for _ in 0..n {
        if Instant::now() > deadline {
            break;
        }
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                accepted += 1;
                drop(stream);
            }
            Err(_) => refused += 1,
        }
    }
    let busy_answered = busy.await.ok().flatten().unwrap_or(false);
    let (report, exited) = ended.await.unwrap_or_default();
    Churn {
        accepted,
        refused,
        busy_answered,
        report,
        exited,
    }
}
