//! `cargo xtask stress --handoff N`: the listening socket handed from
//! process to process N times under load, per runtime (B22), with the
//! restart example (`examples/restart.rs`): SIGHUP, the new process says
//! it serves, the old one drains and reports.
//!
//! The load is the stress run's: HTTP/1.1 clients mixing new connections
//! and keep-alive reuse, HTTP/2 clients, every attempt classified the same
//! way, and every connect given 500 ms (a dropped SYN is retried after 1 s:
//! a connect slower than that had one). Refused connects, connect timeouts,
//! lost requests and handoffs without a graceful report must all be 0.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::process::{build_example, count_and_runtimes, lines, next_line, signal};
use super::{http1, http2, Run, Tally, RUNTIMES};

const USAGE: &str = "usage: cargo xtask stress --handoff N [--runtime tokio|smol|async-std]";

/// Clients loading each run: six in ten HTTP/1.1, the rest HTTP/2.
const CLIENTS: usize = 40;

pub fn run(args: &[String]) -> ExitCode {
    let Some((handoffs, runtimes)) = count_and_runtimes(args, "--handoff", &RUNTIMES) else {
        eprintln!("stress: {USAGE}");
        return ExitCode::from(2);
    };
    let Some(bin) = build_example("restart") else {
        return ExitCode::FAILURE;
    };
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    println!("| runtime | handoffs | answered HTTP/1.1 | answered HTTP/2 | HTTP/1.1 reused keep-alive closed (retryable) | HTTP/2 not processed, GOAWAY (retryable) | refused at connect | connect timeouts (dropped SYN) | lost | handoffs without a graceful report |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut failures = 0;
    for runtime in runtimes {
        let tally = Arc::new(Tally::default());
        let bad = client.block_on(handoffs_under_load(&bin, runtime, handoffs, &tally));
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        println!(
            "| {runtime} | {handoffs} | {} | {} | {} | {} | {} | {} | {} | {bad} |",
            get(&tally.answered),
            get(&tally.answered_h2),
            get(&tally.retryable),
            get(&tally.retryable_h2),
            get(&tally.refused),
            get(&tally.connect_timeouts),
            get(&tally.lost),
        );
        failures += get(&tally.refused) + get(&tally.connect_timeouts) + get(&tally.lost) + bad;
    }
    if failures > 0 {
        eprintln!("stress: {failures} failures (refused, timed out, lost, bad handoffs)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// One chain of processes: started, loaded, handed over `handoffs` times,
/// then stopped. The handoffs without a graceful report (or whose new
/// process never announced itself) are returned.
async fn handoffs_under_load(
    bin: &Path,
    runtime: &str,
    handoffs: usize,
    tally: &Arc<Tally>,
) -> u64 {
    let mut first = Command::new(bin)
        .args(["--runtime", runtime, "127.0.0.1:0"])
        .env_remove("LISTEN_FDS")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the restart example starts");
    let mut lines = lines(first.stdout.take().expect("stdout"));
    let Some((addr, mut pid)) = next_line(&mut lines).await.as_deref().and_then(listening) else {
        let _ = first.kill();
        let _ = first.wait();
        return handoffs as u64 + 1;
    };
    let run = Run {
        until: Instant::now() + Duration::from_secs(600),
        done: Arc::default(),
        connect_timeout: Some(Duration::from_millis(500)),
    };
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (tally, run) = (tally.clone(), run.clone());
            match c % 10 {
                0..=5 => tokio::spawn(http1::client(addr, tally, c, run)),
                _ => tokio::spawn(http2::client(addr, tally, c, run)),
            }
        })
        .collect();
    let mut bad = 0;
    for i in 0..handoffs {
        if i % 20 == 0 {
            eprintln!("[handoff] {runtime}: handoff {i} of {handoffs}");
        }
        // Under load a while, a while that moves across the handoffs.
        tokio::time::sleep(Duration::from_millis(30 + (i as u64 * 37) % 120)).await;
        signal(pid, libc::SIGHUP);
        let announced = next_line(&mut lines).await.as_deref().and_then(listening);
        let report = next_line(&mut lines).await;
        let Some((next_addr, next_pid)) = announced else {
            bad += 1;
            break;
        };
        let graceful = format!(r#"{{"pid":{pid},"graceful":true"#);
        if next_addr != addr || !report.is_some_and(|r| r.starts_with(&graceful)) {
            bad += 1;
        }
        pid = next_pid;
    }
    run.done.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.await;
    }
    signal(pid, libc::SIGTERM);
    let last = next_line(&mut lines).await;
    let graceful = format!(r#"{{"pid":{pid},"graceful":true"#);
    if !last.is_some_and(|r| r.starts_with(&graceful)) {
        bad += 1;
    }
    let _ = first.wait();
    bad
}

/// `listening on http://ADDR (pid N)`: the address and the pid.
fn listening(line: &str) -> Option<(SocketAddr, u32)> {
    let rest = line.strip_prefix("listening on http://")?;
    let (addr, pid) = rest.split_once(" (pid ")?;
    Some((addr.parse().ok()?, pid.trim_end_matches(')').parse().ok()?))
}
