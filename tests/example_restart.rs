//! The restart example as a black box (B22): SIGHUP hands the listening
//! socket to a new process under load; no connect is refused, no request
//! lost, each old process drains gracefully.
#![cfg(unix)]

#[path = "support/activation.rs"]
mod activation;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longer than any wait of a passing run: a deadline, not a sleep.
const DEADLINE: Duration = Duration::from_secs(30);

/// Handoffs per run.
const HANDOFFS: usize = 3;

/// Builds the example once per test binary and returns its path.
fn restart_binary() -> &'static PathBuf {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(build_restart)
}

fn build_restart() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", "restart"])
        .current_dir(&root)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the restart example builds");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("debug").join("examples").join("restart")
}

/// What the processes print, one line at a time, with a deadline.
struct Lines(std::sync::mpsc::Receiver<String>);

impl Lines {
    fn new(stdout: ChildStdout) -> Lines {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines(rx)
    }

    fn next(&self) -> String {
        self.0
            .recv_timeout(DEADLINE)
            .expect("a line within the deadline")
    }

    /// A line if one came already.
    fn try_next(&self) -> Option<String> {
        self.0.try_recv().ok()
    }
}

/// `listening on http://ADDR (pid N)`: the address and the pid.
fn listening(line: &str) -> (SocketAddr, u32) {
    let rest = line
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    let (addr, pid) = rest.split_once(" (pid ").expect("a pid");
    let pid = pid.trim_end_matches(')').parse().expect("a pid number");
    (addr.parse().expect("an address"), pid)
}

/// Kills the serving process if the test ends early.
struct Serving(u32);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .status();
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// What the clients saw.
#[derive(Default)]
struct Seen {
    answered: AtomicUsize,
    /// A keep-alive connection closed with no byte of an answer: the
    /// request was not processed, and a client retries it (RFC 9112 9.3.1).
    retried: AtomicUsize,
    failures: std::sync::Mutex<Vec<String>>,
}

impl Seen {
    fn fail(&self, what: String) {
        self.failures.lock().unwrap().push(what);
    }
}

/// One `GET /` on `stream`; `Ok(None)` if closed before any answer byte.
fn get(stream: &mut TcpStream, close: bool) -> std::io::Result<Option<String>> {
    let connection = if close { "close" } else { "keep-alive" };
    let sent = write!(
        stream,
        "GET / HTTP/1.1\r\nhost: t\r\nconnection: {connection}\r\n\r\n"
    );
    match sent {
        Err(e) if closed_under_us(&e) => return Ok(None),
        sent => sent?,
    }
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(0) if head.is_empty() => return Ok(None),
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(_) => head.push(byte[0]),
            Err(e) if head.is_empty() && closed_under_us(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    Ok(Some(head))
}

/// The server closed the connection (a FIN we had not read yet, then a
/// reset): nothing of the request was processed.
fn closed_under_us(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted
    )
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    // Well under the first SYN retry (1 s): longer means a dropped SYN.
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(stream)
}

/// A new connection per request: none may fail.
fn new_connections(addr: SocketAddr, done: &AtomicBool, seen: &Seen) {
    while !done.load(Ordering::Relaxed) {
        match connect(addr).and_then(|mut s| get(&mut s, true)) {
            Ok(Some(head)) if head.starts_with("HTTP/1.1 200") => {
                seen.answered.fetch_add(1, Ordering::Relaxed);
            }
            Ok(other) => seen.fail(format!("new connection: {other:?}")),
            Err(e) => seen.fail(format!("new connection: {e}")),
        }
    }
}

/// One keep-alive connection, reopened when the server closes it.
fn keep_alive(addr: SocketAddr, done: &AtomicBool, seen: &Seen) {
    let mut stream: Option<TcpStream> = None;
    while !done.load(Ordering::Relaxed) {
        let mut conn = match stream.take() {
            Some(conn) => conn,
            None => match connect(addr) {
                Ok(conn) => conn,
                Err(e) => return seen.fail(format!("keep-alive connect: {e}")),
            },
        };
        match get(&mut conn, false) {
            Ok(Some(head)) if head.starts_with("HTTP/1.1 200") => {
                seen.answered.fetch_add(1, Ordering::Relaxed);
                if !head.to_ascii_lowercase().contains("connection: close") {
                    stream = Some(conn);
                }
            }
            Ok(None) => {
                seen.retried.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Some(head)) => seen.fail(format!("keep-alive: {head}")),
            Err(e) => seen.fail(format!("keep-alive: {e}")),
        }
    }
}

fn sighup_hands_the_socket_over_under_load_and_loses_nothing(runtime: &str) {
    let mut child = Command::new(restart_binary())
        .args(["--runtime", runtime, "127.0.0.1:0"])
        .env_remove("LISTEN_FDS")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let lines = Lines::new(child.stdout.take().expect("stdout"));
    let (addr, mut pid) = listening(&lines.next());
    let mut serving = Serving(pid);
    let done = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (done, seen) = (done.clone(), seen.clone());
            std::thread::spawn(move || match i % 2 {
                0 => new_connections(addr, &done, &seen),
                _ => keep_alive(addr, &done, &seen),
            })
        })
        .collect();
    let started = Instant::now();
    for _ in 0..HANDOFFS {
        let before = seen.answered.load(Ordering::Relaxed);
        while seen.answered.load(Ordering::Relaxed) < before + 50 {
            assert!(started.elapsed() < DEADLINE, "the clients are answered");
            std::thread::sleep(Duration::from_millis(5));
        }
        signal(pid, "HUP");
        // The new process announces itself, then the old one reports.
        let (next_addr, next_pid) = listening(&lines.next());
        assert_eq!(next_addr, addr, "the same socket");
        let report = lines.next();
        assert!(
            report.starts_with(&format!(r#"{{"pid":{pid},"graceful":true"#)),
            "the old process drained gracefully: {report}"
        );
        pid = next_pid;
        serving.0 = pid;
    }
    done.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("client thread");
    }
    signal(pid, "TERM");
    let report = lines.next();
    assert!(
        report.starts_with(&format!(r#"{{"pid":{pid},"graceful":true"#)),
        "{report}"
    );
    // It stopped by itself.
    std::mem::forget(serving);
    let _ = child.wait();
    let failures = seen.failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(seen.answered.load(Ordering::Relaxed) >= 50 * HANDOFFS);
    // Each handoff closes each keep-alive connection once, idle or after
    // an answer saying so: a retry per client per handoff at most.
    let retried = seen.retried.load(Ordering::Relaxed);
    assert!(
        retried <= 2 * HANDOFFS,
        "{retried} keep-alive requests retried"
    );
}

#[test]
fn tokio_sighup_hands_the_socket_over_under_load() {
    sighup_hands_the_socket_over_under_load_and_loses_nothing("tokio");
}

#[test]
fn smol_sighup_hands_the_socket_over_under_load() {
    sighup_hands_the_socket_over_under_load_and_loses_nothing("smol");
}

#[test]
fn async_std_sighup_hands_the_socket_over_under_load() {
    sighup_hands_the_socket_over_under_load_and_loses_nothing("async-std");
}

/// Starts the example on `listener` as a service manager does: descriptor
/// 3, `LISTEN_FDS=1`.
fn start_activated(listener: &std::net::TcpListener, runtime: &str) -> std::process::Child {
    let mut command = Command::new(restart_binary());
    command
        .args(["--runtime", runtime])
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::piped());
    activation::pass_as_activated(&mut command, listener);
    command.spawn().expect("the example starts")
}

/// Connects made during the last stop: well under the backlog (1024).
const MAX_CONNECTS: usize = 200;

/// A socket a service manager passed stays the manager's through a chain of
/// handoffs: the process the last handoff started leaves it working at its
/// own stop (no filter that drops a SYN, B22), as the first would have.
fn a_restart_begun_by_activation_leaves_the_socket_to_its_manager(runtime: &str) {
    // The test holds the socket as systemd does, and accepts only at the end.
    let manager =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let any_port: SocketAddr = ([127, 0, 0, 1], 0).into();
    manager.bind(&any_port.into()).expect("bind");
    // Room for every connect made (std's bind leaves 128).
    manager.listen(1024).expect("listen");
    let manager = std::net::TcpListener::from(manager);
    let addr = manager.local_addr().expect("addr");
    let mut child = start_activated(&manager, runtime);
    let lines = Lines::new(child.stdout.take().expect("stdout"));
    let (first_addr, first) = listening(&lines.next());
    assert_eq!(first_addr, addr, "serves the passed socket");
    let mut serving = Serving(first);
    signal(first, "HUP");
    let (next_addr, next) = listening(&lines.next());
    assert_eq!(next_addr, addr, "the same socket");
    serving.0 = next;
    let report = lines.next();
    assert!(
        report.starts_with(&format!(r#"{{"pid":{first},"graceful":true"#)),
        "the first process drained gracefully: {report}"
    );
    // A request in flight keeps the next process's stop running: on a
    // connection it accepted already (one it never accepted waits in the
    // queue for the manager).
    let mut busy = connect(addr).expect("connect");
    let first = get(&mut busy, false).expect("answered");
    assert!(first.is_some_and(|head| head.starts_with("HTTP/1.1 200")));
    write!(busy, "GET /sleep/300 HTTP/1.1\r\nhost: t\r\n\r\n").expect("sent");
    let mut answer = [0; 12];
    signal(next, "TERM");
    // From the stop on, a millisecond apart, over the stop's first 200 ms
    // or so: the moments a filter would be on.
    let mut connects = 0;
    let report = loop {
        if let Some(report) = lines.try_next() {
            break report;
        }
        if connects < MAX_CONNECTS {
            // Each served by the last process, if it still accepted, or
            // left in the queue for the manager; closed at once here.
            drop(connect(addr).unwrap_or_else(|e| {
                panic!("connect {connects} during the stop of the last process: {e}")
            }));
            connects += 1;
            std::thread::sleep(Duration::from_millis(1));
        } else {
            break lines.next();
        }
    };
    assert!(
        report.starts_with(&format!(r#"{{"pid":{next},"graceful":true"#)),
        "{report}"
    );
    busy.read_exact(&mut answer)
        .expect("the request in flight is answered");
    assert_eq!(&answer, b"HTTP/1.1 200");
    std::mem::forget(serving);
    let _ = child.wait();
    // Every process gone, the manager's socket takes connects at once, and
    // they wait in its queue.
    const AFTER: usize = 5;
    let _late: Vec<TcpStream> = (0..AFTER)
        .map(|_| connect(addr).expect("the manager's socket takes a connect at once"))
        .collect();
    manager.set_nonblocking(true).expect("non-blocking");
    let mut accepted = 0;
    while manager.accept().is_ok() {
        accepted += 1;
    }
    assert!(accepted >= AFTER, "{accepted} queued for the manager");
}

#[test]
fn tokio_a_restart_begun_by_activation_leaves_the_socket_to_its_manager() {
    a_restart_begun_by_activation_leaves_the_socket_to_its_manager("tokio");
}

#[test]
fn smol_a_restart_begun_by_activation_leaves_the_socket_to_its_manager() {
    a_restart_begun_by_activation_leaves_the_socket_to_its_manager("smol");
}

#[test]
fn async_std_a_restart_begun_by_activation_leaves_the_socket_to_its_manager() {
    a_restart_begun_by_activation_leaves_the_socket_to_its_manager("async-std");
}
