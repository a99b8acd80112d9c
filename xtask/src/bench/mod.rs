//! `cargo xtask bench`: stoppable's overhead and stop speed on every
//! runtime, paired against plain hyper and against hyper-util's
//! `GracefulShutdown`, with this machine's floor beside them.

mod exact;
mod idle;
mod load;
pub mod process;
mod profile;
mod report;
mod svg;
mod timeline;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

pub use idle::floor_serve;
use process::{Server, Side};
use report::{Counted, LoadRow, Memory, Results, StopRow};

const RUNTIMES: [&str; 3] = ["tokio", "smol", "async-std"];

struct Settings {
    rounds: usize,
    warmup: Duration,
    duration: Duration,
    conns: Vec<usize>,
    idle: Vec<usize>,
    /// Connections asking without pause during a stop under load.
    loaded_conns: usize,
    memory_conns: usize,
}

impl Settings {
    fn new(quick: bool) -> Settings {
        if quick {
            Settings {
                rounds: 2,
                warmup: Duration::from_millis(200),
                duration: Duration::from_millis(700),
                conns: vec![64],
                idle: vec![1_000],
                loaded_conns: 64,
                memory_conns: 1_000,
            }
        } else {
            Settings {
                rounds: 9,
                warmup: Duration::from_millis(300),
                duration: Duration::from_millis(1500),
                conns: vec![64, 1_000],
                idle: vec![1_000, 10_000],
                loaded_conns: 256,
                memory_conns: 10_000,
            }
        }
    }
}

fn progress(what: &str) {
    eprintln!("[bench] {what}");
}

pub fn run(args: &[String]) -> ExitCode {
    let quick = args.iter().any(|a| a == "--quick");
    if args.iter().any(|a| a == "--exact") {
        let Some(only) = exact::Only::parse(&args[1..]) else {
            eprintln!(
                "bench: --exact [--runtime tokio|smol|async-std] [--protocol http1|http2] \
                 [--side plain|stoppable|peer]"
            );
            return ExitCode::from(2);
        };
        return run_exact(&only);
    }
    if args.first().is_some_and(|a| a == "--profile-stop") {
        let runtime = match args {
            [_] => "tokio",
            [_, flag, runtime] if flag == "--runtime" && RUNTIMES.contains(&runtime.as_str()) => {
                runtime.as_str()
            }
            _ => {
                eprintln!("bench: --profile-stop [--runtime tokio|smol|async-std]");
                return ExitCode::from(2);
            }
        };
        return run_profile_stop(runtime);
    }
    if let Some(other) = args.iter().find(|a| *a != "--quick") {
        eprintln!("bench: unknown option {other} (--quick, --exact or --profile-stop)");
        return ExitCode::from(2);
    }
    let settings = Settings::new(quick);
    let limit = raise_fd_limit();
    let needed = settings
        .idle
        .iter()
        .chain([&settings.memory_conns])
        .max()
        .copied()
        .unwrap_or(0)
        + 100;
    if limit < needed as u64 {
        eprintln!("bench: file descriptor limit {limit} is below the {needed} needed");
        return ExitCode::FAILURE;
    }
    let Some((root, bin)) = built() else {
        return ExitCode::FAILURE;
    };
    let started = Instant::now();
    let client = client_runtime();
    let mut results = client.block_on(measure(&bin, &settings));
    progress("allocations per request, heap bytes per idle connection (counting allocator)");
    results.allocs = counted(&root, "alloc_per_request", "alloc");
    results.held = counted(&root, "heap_per_conn", "held");
    results.machine = machine();
    results.quick = quick;
    results.seconds = started.elapsed().as_secs_f64();
    let out = out_dir(&root);
    write_out(&out, "latest", &results.markdown(), &results.json());
    write_pictures(&out, &results);
    ExitCode::SUCCESS
}

/// `--profile-stop`: where a stop of many idle connections spends its CPU,
/// beside the floor (see [`profile`]), to `target/bench/stop_profile.md`.
fn run_profile_stop(runtime: &str) -> ExitCode {
    if !profile::perf_found() {
        eprintln!("bench --profile-stop: perf not found (apt-get install linux-perf)");
        return ExitCode::FAILURE;
    }
    if raise_fd_limit() < 10_100 {
        eprintln!("bench --profile-stop: the file descriptor limit is below 10,100");
        return ExitCode::FAILURE;
    }
    let Some((root, bin)) = built() else {
        return ExitCode::FAILURE;
    };
    let out = out_dir(&root);
    let client = client_runtime();
    progress(&format!("profiling a stop on {runtime}, then the floor"));
    let stop = client.block_on(profile::stop(&bin, runtime, &out));
    let floor = client.block_on(profile::floor(&out));
    if stop.cpu_ms == 0.0 || floor.cpu_ms == 0.0 {
        eprintln!("bench --profile-stop: perf recorded nothing (perf_event_paranoid?)");
        return ExitCode::FAILURE;
    }
    let table = profile::markdown(runtime, &stop, &floor);
    println!("{table}");
    let _ = std::fs::write(out.join("stop_profile.md"), table);
    ExitCode::SUCCESS
}

/// `--exact`: instructions per request (see [`exact`]), to
/// `target/bench/exact.json` and `exact.md`. Fails when valgrind is
/// missing, a server fails, or two runs of a figure disagree.
fn run_exact(only: &exact::Only) -> ExitCode {
    if !exact::valgrind_found() {
        eprintln!("bench --exact: valgrind not found (apt-get install valgrind)");
        return ExitCode::FAILURE;
    }
    let Some((root, bin)) = built() else {
        return ExitCode::FAILURE;
    };
    let out = out_dir(&root);
    let figures = match client_runtime().block_on(exact::measure(&bin, &out, only)) {
        Ok(figures) => figures,
        Err(e) => {
            eprintln!("bench --exact: {e}");
            return ExitCode::FAILURE;
        }
    };
    write_out(
        &out,
        "exact",
        &exact::markdown(&figures),
        &exact::json(&figures),
    );
    write_svg(&out, "exact", &exact::svg(&figures));
    if figures.iter().all(exact::Exact::agrees) {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "bench --exact: two runs of a figure disagree by more than {} %",
            100.0 * exact::AGREEMENT
        );
        ExitCode::FAILURE
    }
}

/// The workspace's root and, built, its release directory; `None` (the
/// error told) when the build failed.
fn built() -> Option<(PathBuf, PathBuf)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    match build(&root) {
        Ok(bin) => Some((root, bin)),
        Err(e) => {
            eprintln!("bench: {e}");
            None
        }
    }
}

/// The load generator's runtime: one worker, beside the server's.
fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime")
}

/// `target/bench`, made if missing.
fn out_dir(root: &Path) -> PathBuf {
    let out = root.join("target").join("bench");
    let _ = std::fs::create_dir_all(&out);
    out
}

/// Prints `table` and writes it and `json` to `<stem>.md` and
/// `<stem>.json` in `out`.
fn write_out(out: &Path, stem: &str, table: &str, json: &str) {
    println!("{table}");
    let _ = std::fs::write(out.join(format!("{stem}.md")), table);
    write_file(&out.join(format!("{stem}.json")), json);
}

/// The pictures of a run: throughput, and the stops over time (idle, at
/// the largest N; and under load).
fn write_pictures(out: &Path, results: &Results) {
    write_svg(out, "throughput", &results.throughput_svg());
    let largest = results.stops.iter().map(|r| r.n).max().unwrap_or(0);
    let idle: Vec<&StopRow> = results.stops.iter().filter(|r| r.n == largest).collect();
    let title = format!("Stop with {largest} idle keep-alive connections");
    write_svg(out, "stop_idle", &timeline::picture(&title, &idle));
    let loaded: Vec<&StopRow> = results.loaded.iter().collect();
    let n = results.loaded.first().map_or(0, |r| r.n);
    let title = format!("Stop under load: {n} HTTP/1.1 connections asking without pause");
    write_svg(out, "stop_loaded", &timeline::picture(&title, &loaded));
}

/// Writes a picture to `<stem>.svg` in `out`.
fn write_svg(out: &Path, stem: &str, svg: &str) {
    write_file(&out.join(format!("{stem}.svg")), svg);
}

/// Writes `contents` to `path`, and tells so (or why not).
fn write_file(path: &Path, contents: &str) {
    match std::fs::write(path, contents) {
        Ok(()) => progress(&format!("wrote {}", path.display())),
        Err(e) => eprintln!("bench: cannot write {}: {e}", path.display()),
    }
}

/// Builds the servers in release mode; returns the release directory.
fn build(root: &Path) -> Result<PathBuf, String> {
    progress("building the servers (release)");
    for args in [
        &["build", "--release", "--quiet", "--example", "server"][..],
        &[
            "build",
            "--release",
            "--quiet",
            "-p",
            "xtask",
            "--bin",
            "peer",
        ],
    ] {
        let status = Command::new(env!("CARGO"))
            .args(args)
            .current_dir(root)
            .status()
            .map_err(|e| format!("cargo: {e}"))?;
        if !status.success() {
            return Err(format!("cargo {} failed", args.join(" ")));
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release"))
}

async fn measure(bin: &Path, s: &Settings) -> Results {
    let mut results = Results::default();
    for runtime in RUNTIMES {
        for &conns in &s.conns {
            let mut sides = vec![Side::Plain, Side::Stoppable];
            if runtime == "tokio" {
                sides.push(Side::Peer);
            }
            results
                .load
                .extend(paired(bin, runtime, "http1", conns, &sides, s).await);
        }
        results.load.extend(
            paired(
                bin,
                runtime,
                "http2",
                64,
                &[Side::Plain, Side::Stoppable],
                s,
            )
            .await,
        );
    }
    for &n in &s.idle {
        progress(&format!("stop with {n} idle connections"));
        for runtime in RUNTIMES {
            results
                .stops
                .push(stop_time(bin, Side::Stoppable, runtime, n).await);
        }
        results
            .stops
            .push(stop_time(bin, Side::Peer, "tokio", n).await);
        let (close_loop, eofs) = idle::floor(n).await;
        results.stops.push(StopRow::new(
            "floor: close N sockets (from its cue)".into(),
            n,
            ms(close_loop),
            eofs.into_iter().map(ms).collect(),
        ));
    }
    progress(&format!(
        "stop under load, {} connections asking",
        s.loaded_conns
    ));
    for runtime in RUNTIMES {
        results
            .loaded
            .push(loaded_stop(bin, Side::Stoppable, runtime, s.loaded_conns).await);
    }
    results
        .loaded
        .push(loaded_stop(bin, Side::Peer, "tokio", s.loaded_conns).await);
    progress(&format!("memory with {} idle connections", s.memory_conns));
    for runtime in RUNTIMES {
        for side in [Side::Plain, Side::Stoppable] {
            results
                .memory
                .push(memory(bin, side, runtime, s.memory_conns).await);
        }
    }
    results
}

/// Alternates the sides round by round, so drift on a shared machine hits
/// them alike.
async fn paired(
    bin: &Path,
    runtime: &str,
    protocol: &'static str,
    conns: usize,
    sides: &[Side],
    s: &Settings,
) -> Vec<LoadRow> {
    progress(&format!(
        "{runtime} {protocol} {conns} connections: {} rounds",
        s.rounds
    ));
    let servers: Vec<Server> = sides
        .iter()
        .map(|&side| Server::start(bin, side, runtime))
        .collect();
    let mut rows: Vec<LoadRow> = sides
        .iter()
        .map(|&side| LoadRow::new(runtime, protocol, conns, side))
        .collect();
    for _ in 0..s.rounds {
        for (server, row) in servers.iter().zip(&mut rows) {
            let cpu_before = server.cpu_time();
            let load = match protocol {
                "http1" => load::http1(server.addr, conns, s.warmup, s.duration).await,
                _ => load::http2(server.addr, 4, conns, s.warmup, s.duration).await,
            };
            let cpu = server.cpu_time().saturating_sub(cpu_before);
            row.push(&load, cpu);
        }
    }
    rows
}

async fn stop_time(bin: &Path, side: Side, runtime: &str, n: usize) -> StopRow {
    let server = Server::start(bin, side, runtime);
    let conns = idle::open(server.addr, n, true).await;
    // Every client reads before the signal, so each EOF is seen when it
    // comes; and the server finishes its bookkeeping of the last accepts.
    let eof = idle::all_eof(conns);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (sent, report) = signal(server);
    let ends = eof.await;
    stop_row(
        who(side, runtime),
        n,
        sent,
        report.await.expect("report"),
        ends,
    )
}

fn who(side: Side, runtime: &str) -> String {
    match side {
        Side::Peer => side.name().to_owned(),
        _ => format!("stoppable ({runtime})"),
    }
}

/// Sends the stop signal: its instant, and a task that reads the report
/// line (with the instant it came), then waits for the server's exit.
fn signal(mut server: Server) -> (Instant, tokio::task::JoinHandle<(String, Instant)>) {
    let sent = server.terminate();
    let report = tokio::task::spawn_blocking(move || {
        let report = server.report_line();
        let _ = server.wait(Duration::from_secs(10));
        report
    });
    (sent, report)
}

/// A stop's row from its signal, its report line and each client's end;
/// a missing report is told.
fn stop_row(
    who: String,
    n: usize,
    sent: Instant,
    (line, reported): (String, Instant),
    ends: Vec<Instant>,
) -> StopRow {
    if process::elapsed_ms(&line).is_none() {
        eprintln!("[bench] {who}: no report line, got {line:?}");
    }
    let closes_ms: Vec<f64> = ends
        .into_iter()
        .map(|end| ms(end.saturating_duration_since(sent)))
        .collect();
    StopRow::new(who, n, ms(reported.duration_since(sent)), closes_ms)
}

/// A stop while `n` HTTP/1.1 connections ask one request after another:
/// when each client was told to close (a response saying
/// `Connection: close`) or saw its connection closed.
async fn loaded_stop(bin: &Path, side: Side, runtime: &str, n: usize) -> StopRow {
    let server = Server::start(bin, side, runtime);
    let conns = idle::open(server.addr, n, true).await;
    let asking = timeline::load_until_closed(conns, Duration::from_secs(20));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (sent, report) = signal(server);
    let mut ends = Vec::with_capacity(n);
    for connection in asking {
        ends.push(connection.await.expect("load task"));
    }
    stop_row(
        who(side, runtime),
        n,
        sent,
        report.await.expect("report"),
        ends,
    )
}

async fn memory(bin: &Path, side: Side, runtime: &str, n: usize) -> Memory {
    let server = Server::start_one_arena(bin, side, runtime);
    let warm = idle::open(server.addr, 16, true).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (before, _) = server.rss();
    let conns = idle::open(server.addr, n, true).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (after, peak) = server.rss();
    drop((warm, conns));
    Memory {
        runtime: runtime.to_owned(),
        side,
        n,
        per_conn_bytes: after.saturating_sub(before) as f64 / n as f64,
        peak_bytes: peak,
    }
}

/// Runs a counting-allocator bench binary and reads its lines
/// `PREFIX RUNTIME SIDE VALUE`.
fn counted(root: &Path, bench: &str, prefix: &str) -> Vec<Counted> {
    let output = Command::new(env!("CARGO"))
        .args(["bench", "--quiet", "--bench", bench])
        .current_dir(root)
        .output();
    let Ok(output) = output else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix(prefix)?.split_whitespace();
            Some(Counted {
                runtime: words.next()?.to_owned(),
                side: words.next()?.to_owned(),
                value: words.next()?.parse().ok()?,
            })
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Raises the soft file-descriptor limit to the hard one; returns the limit.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local.
    #[allow(unsafe_code)]
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    let limit = limit.rlim_cur as u64;
    limit
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores, {os}, Linux {}", kernel.trim())
}
