//! `cargo xtask stress --rollout N`: a rolling update behind a real load
//! balancer, the way Kubernetes does one (B16, B23). HAProxy (Debian's
//! package, installed by this command when missing) health-checks three
//! example servers on their readiness route and balances clients over
//! them; N times, one replica is replaced: a new instance starts and joins
//! (in rotation once its check passes: maxSurge 1, maxUnavailable 0), then
//! the old one gets SIGTERM and is left to the balancer to notice, as a
//! Service's endpoints lag a pod's termination. With the readiness delay
//! the old instance keeps serving while its readiness route says 503 until
//! the balancer took it out, then drains; every client request through the
//! balancer must succeed. The same run with the delay off shows what the
//! delay prevents (figures only).

mod clients;
mod haproxy;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use clients::Tally;
use haproxy::{Counters, Haproxy};

use super::process::{build_example, count_and_runtimes, forward_lines, signal, LINE_DEADLINE};
use super::{Run, RUNTIMES};

const USAGE: &str = "usage: cargo xtask stress --rollout N [--runtime tokio|smol|async-std]";

const REPLICAS: usize = 3;

/// Clients through the balancer: HTTP/1.1, then HTTP/2.
const CLIENTS: (usize, usize) = (20, 10);

/// The readiness delay: over the balancer's detection (two failed checks
/// 100 ms apart, each given up to 500 ms) with room to spare.
const DELAY_MS: u64 = 1500;

pub fn run(args: &[String]) -> ExitCode {
    let Some((restarts, runtimes)) = count_and_runtimes(args, "--rollout", &RUNTIMES) else {
        eprintln!("stress: {USAGE}");
        return ExitCode::from(2);
    };
    if let Err(e) = haproxy::ensure_installed() {
        eprintln!("stress: {e}");
        return ExitCode::FAILURE;
    }
    let Some(bin) = build_example("server") else {
        return ExitCode::FAILURE;
    };
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    println!("| runtime | readiness delay | restarts | answered HTTP/1.1 | answered HTTP/2 | failed | balancer: retried after a failed connect | redispatched | connect errors | response errors | restarts without a graceful report |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut failures = 0;
    for runtime in runtimes {
        for delay in [Some(DELAY_MS), None] {
            let (tally, counters, bad) = rollout(&bin, runtime, delay, restarts, &clients);
            let get = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
            println!(
                "| {runtime} | {} | {restarts} | {} | {} | {} | {} | {} | {} | {} | {bad} |",
                delay.map_or("off".to_owned(), |ms| format!("{ms} ms")),
                get(&tally.answered_h1),
                get(&tally.answered_h2),
                get(&tally.failed),
                counters.retries,
                counters.redispatches,
                counters.connect_errors,
                counters.response_errors,
            );
            if delay.is_some() {
                failures += get(&tally.failed) + bad;
            }
        }
    }
    if failures > 0 {
        eprintln!(
            "stress: {failures} failures (failed requests, bad restarts) with the readiness delay"
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// One rolling run: three replicas behind HAProxy, `restarts` replaced in
/// turn under load. What the clients saw, what the balancer counted, and
/// the restarts that went wrong.
fn rollout(
    bin: &Path,
    runtime: &str,
    delay: Option<u64>,
    restarts: usize,
    clients: &tokio::runtime::Runtime,
) -> (Arc<Tally>, Counters, u64) {
    let balancer = Haproxy::start();
    let mut bad = 0;
    let mut free: Vec<usize> = (REPLICAS..haproxy::SLOTS).rev().collect();
    let mut replicas: Vec<Instance> = (0..REPLICAS)
        .map(|slot| {
            let instance = Instance::start(bin, runtime, delay, slot).expect("a replica starts");
            balancer.join(slot, instance.addr);
            assert!(balancer.wait_up(slot), "a first replica never came up");
            instance
        })
        .collect();
    let tally = Arc::new(Tally::default());
    let run = Run {
        until: Instant::now() + Duration::from_secs(3600),
        done: Arc::default(),
        connect_timeout: None,
    };
    let tasks: Vec<_> = (0..CLIENTS.0 + CLIENTS.1)
        .map(|c| {
            let h2 = c >= CLIENTS.0;
            let addr = if h2 { balancer.http2 } else { balancer.http1 };
            clients.spawn(clients::client(addr, h2, tally.clone(), c, run.clone()))
        })
        .collect();
    let before = balancer.counters();
    for i in 0..restarts {
        if i % 20 == 0 {
            eprintln!(
                "[rollout] {runtime}, delay {}: restart {i} of {restarts}",
                delay.map_or("off".to_owned(), |ms| format!("{ms} ms"))
            );
        }
        // Under load a while, a while that moves across the restarts.
        std::thread::sleep(Duration::from_millis(50 + (i as u64 * 37) % 150));
        let slot = free.pop().expect("a free slot");
        let Some(new) = Instance::start(bin, runtime, delay, slot) else {
            bad += 1;
            free.push(slot);
            continue;
        };
        balancer.join(slot, new.addr);
        if !balancer.wait_up(slot) {
            bad += 1;
        }
        let old = std::mem::replace(&mut replicas[i % REPLICAS], new);
        let old_slot = old.slot;
        if !old.stop() {
            bad += 1;
        }
        // Its endpoint is gone now (the balancer may have noticed long ago).
        balancer.leave(old_slot);
        free.push(old_slot);
    }
    run.done.store(true, Ordering::Relaxed);
    clients.block_on(async {
        for task in tasks {
            let _ = task.await;
        }
    });
    let counters = balancer.counters() - before;
    for replica in replicas {
        if !replica.stop() {
            bad += 1;
        }
    }
    (tally, counters, bad)
}

/// One example server, in one of the balancer's slots.
struct Instance {
    child: Child,
    addr: SocketAddr,
    slot: usize,
    lines: mpsc::Receiver<String>,
}

impl Instance {
    fn start(bin: &Path, runtime: &str, delay: Option<u64>, slot: usize) -> Option<Instance> {
        let mut command = Command::new(bin);
        command.args(["--runtime", runtime, "--addr", "127.0.0.1:0"]);
        if let Some(ms) = delay {
            command.args(["--drain-delay-ms", &ms.to_string()]);
        }
        let mut child = command
            .env_remove("LISTEN_FDS")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let stdout = child.stdout.take()?;
        let (tx, lines) = mpsc::channel();
        forward_lines(stdout, move |line| tx.send(line).is_ok());
        let first = lines.recv_timeout(LINE_DEADLINE).ok()?;
        let addr = first
            .strip_prefix("listening on http://")?
            .trim()
            .parse()
            .ok()?;
        Some(Instance {
            child,
            addr,
            slot,
            lines,
        })
    }

    /// SIGTERM, then its report: true if graceful, and it exited 0.
    fn stop(mut self) -> bool {
        signal(self.child.id(), libc::SIGTERM);
        let report = self.lines.recv_timeout(LINE_DEADLINE).ok();
        let graceful = report.is_some_and(|r| r.starts_with(r#"{"graceful":true"#));
        let exited = self.child.wait().is_ok_and(|s| s.success());
        graceful && exited
    }
}
