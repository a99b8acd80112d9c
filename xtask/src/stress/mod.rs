//! `cargo xtask stress`: no request lost across many stops under load.
//!
//! Per runtime, the example server is started and stopped (SIGTERM, no
//! grace limit) while 200 clients load it: HTTP/1.1 clients mixing new
//! connections and keep-alive reuse, HTTP/2 clients (many streams per
//! connection), and faulty clients (resets mid-request and mid-response,
//! half-closed). Every attempt is classified from the client's side:
//! - refused at connect: fine, nothing was sent;
//! - answered in full: fine;
//! - not processed, as the server said (a reused HTTP/1.1 keep-alive
//!   connection closed before any byte of the answer, RFC 9112 §9.3.1; an
//!   HTTP/2 stream above the GOAWAY's last stream, RFC 9113 §6.8): the
//!   requests clients retry, counted apart;
//! - anything else (a fresh connection's request, or an answer cut short,
//!   met by a reset or an EOF): lost. Lost must be 0.
//!
//! Each stop must also end with a graceful report and a clean exit. Then,
//! per runtime, connections are opened and dropped in a loop during a
//! stop ([`churn`]), a stop with a grace must end by the grace + 50 ms
//! despite stuck handlers and clients that never read ([`grace`]), and
//! resident memory is measured over many short connections (B19).

mod churn;
mod faults;
mod grace;
mod handoff;
mod http1;
mod http2;
mod process;
mod rollout;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::bench::process::{Server, Side};

const CLIENTS: usize = 200;

#[derive(Default)]
struct Tally {
    refused: AtomicU64,
    answered: AtomicU64,
    answered_h2: AtomicU64,
    /// HTTP/1.1: a reused keep-alive connection closed before the answer.
    retryable: AtomicU64,
    /// HTTP/2: a stream the server did not process (GOAWAY).
    retryable_h2: AtomicU64,
    /// Of those, the first request of a fresh connection.
    fresh_h2_not_processed: AtomicU64,
    faults: AtomicU64,
    /// A connect not completed within `Run::connect_timeout`: its SYN was
    /// dropped (a handoff must have none).
    connect_timeouts: AtomicU64,
    lost: AtomicU64,
    /// Stops without a graceful report and a clean exit.
    bad_stops: AtomicU64,
}

/// How long a stress client goes on, and how long it waits on a connect.
#[derive(Clone)]
struct Run {
    until: std::time::Instant,
    done: Arc<std::sync::atomic::AtomicBool>,
    connect_timeout: Option<Duration>,
}

impl Run {
    /// For at most `limit`.
    fn for_at_most(limit: Duration) -> Run {
        Run {
            until: std::time::Instant::now() + limit,
            done: Arc::default(),
            connect_timeout: None,
        }
    }

    fn going(&self) -> bool {
        std::time::Instant::now() < self.until && !self.done.load(Ordering::Relaxed)
    }

    /// Connects, within the timeout if there is one: `None` if refused or
    /// timed out (each counted).
    async fn connect(
        &self,
        addr: std::net::SocketAddr,
        tally: &Tally,
    ) -> Option<tokio::net::TcpStream> {
        let connecting = tokio::net::TcpStream::connect(addr);
        let connected = match self.connect_timeout {
            Some(limit) => match tokio::time::timeout(limit, connecting).await {
                Ok(connected) => connected,
                Err(_) => {
                    tally.connect_timeouts.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            },
            None => connecting.await,
        };
        match connected {
            Ok(stream) => Some(stream),
            Err(_) => {
                tally.refused.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

pub fn run(args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "--chaos") {
        return crate::chaos::run(args);
    }
    if args.iter().any(|a| a == "--handoff") {
        return handoff::run(args);
    }
    if args.iter().any(|a| a == "--rollout") {
        return rollout::run(args);
    }
    let (mut stops, mut growth, mut churn) = (100, 20_000, 10_000);
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match (arg.as_str(), iter.next().and_then(|n| n.parse().ok())) {
            ("--stops", Some(n)) => stops = n,
            ("--growth", Some(n)) => growth = n,
            ("--churn", Some(n)) => churn = n,
            _ => {
                eprintln!(
                    "stress: usage: cargo xtask stress [--stops N] [--growth CONNECTIONS] [--churn CONNECTIONS]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let Some(server) = process::build_example("server") else {
        return ExitCode::FAILURE;
    };
    let bin = server
        .parent()
        .and_then(|p| p.parent())
        .expect("target/release")
        .to_path_buf();
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    let mut failures = 0;
    println!("| runtime | stops | answered HTTP/1.1 | answered HTTP/2 | refused at connect | HTTP/1.1 reused keep-alive closed (retryable) | HTTP/2 not processed, GOAWAY (retryable; on a fresh connection) | faults injected | stops without a graceful report | lost |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for runtime in RUNTIMES {
        let tally = Arc::new(Tally::default());
        for i in 0..stops {
            if i % 20 == 0 {
                eprintln!("[stress] {runtime}: stop {i} of {stops}");
            }
            client.block_on(one_stop(&bin, runtime, &tally, i));
        }
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        println!(
            "| {runtime} | {stops} | {} | {} | {} | {} | {} ({}) | {} | {} | {} |",
            get(&tally.answered),
            get(&tally.answered_h2),
            get(&tally.refused),
            get(&tally.retryable),
            get(&tally.retryable_h2),
            get(&tally.fresh_h2_not_processed),
            get(&tally.faults),
            get(&tally.bad_stops),
            get(&tally.lost)
        );
        failures += get(&tally.lost) + get(&tally.bad_stops);
    }
    println!("\n| runtime | connections opened and dropped during a stop | accepted | refused | busy request answered | graceful report, clean exit |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for runtime in RUNTIMES {
        let churned = client.block_on(churn::run(&bin, runtime, churn));
        let yes = |b: bool| if b { "yes" } else { "**no**" };
        println!(
            "| {runtime} | {} | {} | {} | {} | {} |",
            churned.accepted + churned.refused,
            churned.accepted,
            churned.refused,
            yes(churned.busy_answered),
            yes(churned.exited && churned.report.contains(r#""graceful":true"#)),
        );
        failures += u64::from(!churned.ok());
    }
    println!(
        "\n| runtime | grace | handlers past the grace | clients that never read | report's elapsed | SIGTERM → report | force-closed | ≤ grace + 50 ms |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for runtime in RUNTIMES {
        let run = client.block_on(grace::run(&bin, runtime));
        let show = |n: Option<u64>| n.map_or("?".to_owned(), |n| n.to_string());
        println!(
            "| {runtime} | {} ms | {} | {} | {} ms | {} ms | {} | {} |",
            grace::GRACE_MS,
            grace::HANGING,
            grace::NOT_READING,
            show(run.elapsed_ms),
            run.observed.as_millis(),
            show(run.force_closed),
            if run.within_bound() {
                "met"
            } else {
                "**missed**"
            }
        );
        failures += u64::from(!run.within_bound());
    }
    println!("\n| runtime | RSS after 2,000 connections | after {growth} more | growth per 1,000 connections |");
    println!("| --- | --- | --- | --- |");
    for runtime in RUNTIMES {
        let (before, after) = client.block_on(memory_growth(&bin, runtime, growth));
        println!(
            "| {runtime} | {} KiB | {} KiB | {:.1} KiB |",
            before / 1024,
            after / 1024,
            (after as f64 - before as f64) / 1024.0 / (growth.max(1) as f64 / 1000.0)
        );
    }
    if failures > 0 {
        eprintln!("stress: {failures} failures (lost requests, bad stops, churn runs)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

const RUNTIMES: [&str; 3] = ["tokio", "smol", "async-std"];

/// B19: memory after 2,000 short connections, and after `more` again.
async fn memory_growth(bin: &std::path::Path, runtime: &str, more: usize) -> (u64, u64) {
    eprintln!("[stress] {runtime}: memory over {more} short connections");
    let server = Server::start(bin, Side::Stoppable, runtime);
    http1::short_connections(server.addr, 2_000).await;
    let (before, _) = server.rss();
    http1::short_connections(server.addr, more).await;
    let (after, _) = server.rss();
    (before, after)
}

/// One server, loaded, stopped after a while that varies with `i`.
async fn one_stop(bin: &std::path::Path, runtime: &str, tally: &Arc<Tally>, i: usize) {
    let mut server = Server::start(bin, Side::Stoppable, runtime);
    let addr = server.addr;
    // Of every ten clients: six HTTP/1.1, three HTTP/2, one faulty.
    let run = Run::for_at_most(Duration::from_secs(5));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let tally = tally.clone();
            match c % 10 {
                0..=5 => tokio::spawn(http1::client(addr, tally, c, run.clone())),
                6..=8 => tokio::spawn(http2::client(addr, tally, c, run.clone())),
                _ => tokio::spawn(faults::client(addr, tally, c)),
            }
        })
        .collect();
    // Stop at a moment that moves across the runs: 50 to 250 ms in.
    tokio::time::sleep(Duration::from_millis(50 + (i as u64 * 37) % 200)).await;
    server.terminate();
    let ended = tokio::task::spawn_blocking(move || {
        let (report, _) = server.report_line();
        let exited = server.wait(Duration::from_secs(20));
        exited && report.contains(r#""graceful":true"#)
    });
    for client in clients {
        let _ = client.await;
    }
    if !ended.await.unwrap_or(false) {
        tally.bad_stops.fetch_add(1, Ordering::Relaxed);
    }
}
