//! The chaos server as a child process: started with a scenario's options,
//! stopped the way the scenario says, its reports read from its stdout.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::scenario::Scenario;

pub struct ChaosServer {
    child: Child,
    stdin: ChildStdin,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
    pub http: std::net::SocketAddr,
    pub lines: std::net::SocketAddr,
}

/// The two reports of one stop, as the server printed them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Report {
    pub graceful: bool,
    pub closed_idle: u64,
    pub closed_after_work: u64,
    pub force_closed: u64,
    pub requests_completed: u64,
    pub elapsed_ms: u64,
}

impl ChaosServer {
    pub async fn start(
        bin: &Path,
        scenario: &Scenario,
        tls: Option<(&Path, &Path)>,
    ) -> ChaosServer {
        let mut command = Command::new(bin);
        command.args(scenario.server_args());
        if let Some((cert, key)) = tls {
            command
                .arg("--tls-cert")
                .arg(cert)
                .arg("--tls-key")
                .arg(key);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the chaos server starts");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let addr = |prefix: &str, line: Option<String>| {
            let line = line.unwrap_or_default();
            line.split_once(prefix)
                .and_then(|(_, a)| a.trim().parse().ok())
                .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        };
        let http = addr("://", stdout.next_line().await.ok().flatten());
        let lines = addr("lines on ", stdout.next_line().await.ok().flatten());
        ChaosServer {
            child,
            stdin,
            stdout,
            http,
            lines,
        }
    }

    /// Sends SIGTERM; when it was sent.
    pub fn terminate(&self) -> Instant {
        if let Some(pid) = self.child.id() {
            crate::signal::send(pid, libc::SIGTERM);
        }
        Instant::now()
    }

    /// A command on the server's stdin (`stop`, `stop-within MS`, `drop`);
    /// when it was sent.
    pub async fn command(&mut self, command: &str) -> Instant {
        let _ = self
            .stdin
            .write_all(format!("{command}\n").as_bytes())
            .await;
        let _ = self.stdin.flush().await;
        Instant::now()
    }

    /// The reports line, within `timeout`; with when it came.
    pub async fn reports(&mut self, timeout: Duration) -> Option<((Report, Report), Instant)> {
        let line = tokio::time::timeout(timeout, self.stdout.next_line()).await;
        let line = line.ok()?.ok()??;
        let (http, lines) = line.split_once(r#","lines":"#)?;
        Some(((parse(http)?, parse(lines)?), Instant::now()))
    }

    /// Waits for the exit; true when it exited by itself with status 0.
    pub async fn exited(mut self, timeout: Duration) -> bool {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => false,
        }
    }
}

fn parse(json: &str) -> Option<Report> {
    let field = |name: &str| -> Option<&str> {
        let rest = json.split(&format!("\"{name}\":")).nth(1)?;
        rest.split([',', '}']).next().map(str::trim)
    };
    let number = |name: &str| field(name)?.parse().ok();
    Some(Report {
        graceful: field("graceful")? == "true",
        closed_idle: number("closed_idle")?,
        closed_after_work: number("closed_after_work")?,
        force_closed: number("force_closed")?,
        requests_completed: number("requests_completed")?,
        elapsed_ms: number("elapsed_ms")?,
    })
}
