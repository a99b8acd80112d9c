//! `cargo xtask stress`: no request lost across many stops under load.
//!
//! Per runtime, the example server is started and stopped (SIGTERM, no
//! grace limit) while 200 clients send requests over HTTP/1.1, mixing new
//! connections and keep-alive reuse. Every attempt is classified from the
//! client's side:
//! - refused at connect: fine, nothing was sent;
//! - answered in full: fine;
//! - a reused keep-alive connection closed before any byte of the answer:
//!   the race HTTP/1.1 clients retry (RFC 9112 §9.3.1), counted apart;
//! - anything else (a fresh connection's request, or an answer cut short,
//!   met by a reset or an EOF): lost. Lost must be 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::bench::process::{Server, Side};
use crate::http1::{read_response, Response};

const CLIENTS: usize = 200;

#[derive(Default)]
struct Tally {
    refused: AtomicU64,
    answered: AtomicU64,
    retryable: AtomicU64,
    lost: AtomicU64,
}

pub fn run(args: &[String]) -> ExitCode {
    let (mut stops, mut growth) = (100, 20_000);
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match (arg.as_str(), iter.next().and_then(|n| n.parse().ok())) {
            ("--stops", Some(n)) => stops = n,
            ("--growth", Some(n)) => growth = n,
            _ => {
                eprintln!("stress: usage: cargo xtask stress [--stops N] [--growth CONNECTIONS]");
                return ExitCode::from(2);
            }
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    eprintln!("[stress] building the example server (release)");
    let built = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--example", "server"])
        .current_dir(&root)
        .status();
    if !matches!(built, Ok(status) if status.success()) {
        eprintln!("stress: the example server does not build");
        return ExitCode::FAILURE;
    }
    let bin = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("release");
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    println!("| runtime | stops | answered | refused at connect | reused keep-alive closed (retryable) | lost |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut lost = 0;
    for runtime in ["tokio", "smol", "async-std"] {
        let tally = Arc::new(Tally::default());
        for i in 0..stops {
            if i % 20 == 0 {
                eprintln!("[stress] {runtime}: stop {i} of {stops}");
            }
            client.block_on(one_stop(&bin, runtime, &tally, i));
        }
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        println!(
            "| {runtime} | {stops} | {} | {} | {} | {} |",
            get(&tally.answered),
            get(&tally.refused),
            get(&tally.retryable),
            get(&tally.lost)
        );
        lost += get(&tally.lost);
    }
    println!("\n| runtime | RSS after 2,000 connections | after {growth} more | growth per 1,000 connections |");
    println!("| --- | --- | --- | --- |");
    for runtime in ["tokio", "smol", "async-std"] {
        let (before, after) = client.block_on(memory_growth(&bin, runtime, growth));
        println!(
            "| {runtime} | {} KiB | {} KiB | {:.1} KiB |",
            before / 1024,
            after / 1024,
            (after as f64 - before as f64) / 1024.0 / (growth.max(1) as f64 / 1000.0)
        );
    }
    if lost > 0 {
        eprintln!("stress: {lost} requests lost");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// B19: memory after 2,000 short connections, and after `more` again.
async fn memory_growth(bin: &std::path::Path, runtime: &str, more: usize) -> (u64, u64) {
    eprintln!("[stress] {runtime}: memory over {more} short connections");
    let server = Server::start(bin, Side::Stoppable, runtime);
    short_connections(server.addr, 2_000).await;
    let (before, _) = server.rss();
    short_connections(server.addr, more).await;
    let (after, _) = server.rss();
    (before, after)
}

/// `n` connections, each one request then closed, 50 at a time.
async fn short_connections(addr: SocketAddr, n: usize) {
    let tally = Arc::new(Tally::default());
    for _ in 0..n.div_ceil(50) {
        let batch: Vec<_> = (0..50)
            .map(|_| {
                let tally = tally.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 1024];
                    if let Ok(mut stream) = TcpStream::connect(addr).await {
                        let request =
                            b"GET / HTTP/1.1\r\nhost: stress\r\nconnection: close\r\n\r\n";
                        if stream.write_all(request).await.is_ok() {
                            if let Response::Answered { .. } =
                                read_response(&mut stream, &mut buf).await
                            {
                                tally.answered.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        for task in batch {
            let _ = task.await;
        }
    }
}

/// One server, loaded, stopped after a while that varies with `i`.
async fn one_stop(bin: &std::path::Path, runtime: &str, tally: &Arc<Tally>, i: usize) {
    let mut server = Server::start(bin, Side::Stoppable, runtime);
    let addr = server.addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(client(addr, tally.clone(), c)))
        .collect();
    // Stop at a moment that moves across the runs: 50 to 250 ms in.
    tokio::time::sleep(Duration::from_millis(50 + (i as u64 * 37) % 200)).await;
    server.terminate();
    let ended = tokio::task::spawn_blocking(move || {
        let report = server.report_line();
        server.wait(Duration::from_secs(10));
        report
    });
    for client in clients {
        let _ = client.await;
    }
    let _ = ended.await;
}

/// Requests until connects are refused, or for at most 5 s.
async fn client(addr: SocketAddr, tally: Arc<Tally>, seed: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut conn: Option<TcpStream> = None;
    let mut buf = vec![0u8; 4096];
    let mut n = seed;
    while Instant::now() < deadline {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        // A new connection one time in four, else reuse the idle one.
        if n.is_multiple_of(4) {
            conn = None;
        }
        let fresh = conn.is_none();
        if fresh {
            match TcpStream::connect(addr).await {
                Ok(stream) => conn = Some(stream),
                Err(_) => {
                    tally.refused.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        let stream = conn.as_mut().expect("connected");
        let path: &[u8] = if n.is_multiple_of(5) {
            b"/sleep/20"
        } else {
            b"/"
        };
        let mut request = b"GET ".to_vec();
        request.extend_from_slice(path);
        request.extend_from_slice(b" HTTP/1.1\r\nhost: stress\r\n\r\n");
        let outcome = match stream.write_all(&request).await {
            Ok(()) => read_response(stream, &mut buf).await,
            Err(_) => Response::NothingBack,
        };
        match outcome {
            Response::Answered { close } => {
                tally.answered.fetch_add(1, Ordering::Relaxed);
                if close {
                    conn = None;
                }
            }
            Response::NothingBack if !fresh => {
                tally.retryable.fetch_add(1, Ordering::Relaxed);
                conn = None;
            }
            Response::NothingBack | Response::Cut => {
                tally.lost.fetch_add(1, Ordering::Relaxed);
                if std::env::var_os("STRESS_DEBUG").is_some() {
                    let kind = if matches!(outcome, Response::Cut) {
                        "cut"
                    } else {
                        "nothing back"
                    };
                    eprintln!(
                        "[stress] lost: fresh={fresh} {kind} path={}",
                        String::from_utf8_lossy(path)
                    );
                }
                conn = None;
            }
        }
    }
}
