//! The example server as a black box: the built binary, its first line, a
//! request, SIGTERM, the JSON report and the exit codes (examples/server/README.md).

#[cfg(unix)]
#[path = "support/activation.rs"]
mod activation;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Builds the example once (a no-op when `cargo test` already did) and
/// returns its path.
fn server_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", "server"])
            .current_dir(&root)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the example server builds");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        target.join("debug").join("examples").join("server")
    })
}

struct Server {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
    addr: String,
}

impl Drop for Server {
    /// A case that fails half-way leaves no server process behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start(args: &[&str]) -> Server {
    let mut command = Command::new(server_binary());
    command.args(["--addr", "127.0.0.1:0"]).args(args);
    started(command, args)
}

/// Spawns the server and reads its first line, the address it serves.
fn started(mut command: Command, args: &[&str]) -> Server {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("first line");
    let expected = if args.contains(&"--tls-cert") {
        "listening on https://"
    } else {
        "listening on http://"
    };
    let addr = first
        .trim()
        .strip_prefix(expected)
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    Server {
        child,
        stdout,
        addr,
    }
}

fn get(addr: &str, path: &str) -> String {
    request(connect(addr), path)
}

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// One `GET path` with `connection: close`; the whole response.
fn request(mut stream: impl Read + Write, path: &str) -> String {
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Signals the server and returns its report line, once it exited with 0.
fn stopped(server: Server, signal_name: &str) -> String {
    signal(&server.child, signal_name);
    report_once_exited(server)
}

/// The report line of a server already told to stop, once it exited with 0.
fn report_once_exited(mut server: Server) -> String {
    let mut report = String::new();
    server
        .stdout
        .read_line(&mut report)
        .expect("the report line");
    let status = server.child.wait().expect("exits");
    assert_eq!(status.code(), Some(0), "{report}");
    report
}

/// Starts the server on `listener`, passed as socket activation does:
/// descriptor 3, `LISTEN_FDS=1` (B22).
#[cfg(unix)]
fn start_activated(listener: &std::net::TcpListener, runtime: &str) -> Server {
    let mut command = Command::new(server_binary());
    command.args(["--runtime", runtime]);
    activation::pass_as_activated(&mut command, listener);
    started(command, &[])
}

#[cfg(unix)]
fn activated_servers_share_their_socket(runtime: &str) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let first = start_activated(&listener, runtime);
    let second = start_activated(&listener, runtime);
    drop(listener);
    assert_eq!(first.addr, addr.to_string(), "serves the passed socket");
    assert_eq!(second.addr, addr.to_string(), "serves the passed socket");
    let report = stopped(first, "TERM");
    assert!(report.contains(r#""graceful":true"#), "{report}");
    // The other server goes on accepting on the socket, undisturbed: every
    // connect completes at once (no dropped SYN) and is answered.
    for _ in 0..20 {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
            .expect("the socket takes a connect at once after one owner stopped");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let response = request(stream, "/");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    let report = stopped(second, "TERM");
    assert!(report.contains(r#""graceful":true"#), "{report}");
}

#[cfg(unix)]
#[test]
fn tokio_activated_servers_share_their_socket() {
    activated_servers_share_their_socket("tokio");
}

#[cfg(unix)]
#[test]
fn smol_activated_servers_share_their_socket() {
    activated_servers_share_their_socket("smol");
}

#[cfg(unix)]
#[test]
fn async_std_activated_servers_share_their_socket() {
    activated_servers_share_their_socket("async-std");
}

#[test]
fn passed_socket_that_is_not_a_listener_exits_1_with_an_error() {
    let output = Command::new(server_binary())
        .env("LISTEN_FDS", "1")
        .env_remove("LISTEN_PID")
        .stdin(Stdio::null())
        .output()
        .expect("the server runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a listening socket"), "{stderr}");
}

fn serves_then_stops_on_sigterm_with_a_json_report(runtime: &str) {
    let mut server = start(&["--runtime", runtime, "--grace-ms", "5000"]);
    let response = get(&server.addr, "/");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("hello"), "{response}");
    let stats = get(&server.addr, "/stats");
    assert!(stats.contains(r#""phase":"serving""#), "{stats}");
    assert!(get(&server.addr, "/ready").ends_with("ready"));
    assert!(get(&server.addr, "/nope").starts_with("HTTP/1.1 404"));
    signal(&server.child, "TERM");
    let mut report = String::new();
    server
        .stdout
        .read_line(&mut report)
        .expect("the report line");
    for field in [
        r#""graceful":true"#,
        r#""closed_idle":"#,
        r#""closed_after_work":"#,
        r#""force_closed":0"#,
        r#""requests_completed":"#,
        r#""elapsed_ms":"#,
    ] {
        assert!(report.contains(field), "{field} missing in {report}");
    }
    let status = server.child.wait().expect("exits");
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("draining"), "progress on stderr: {stderr}");
}

#[test]
fn tokio_serves_then_stops_on_sigterm() {
    serves_then_stops_on_sigterm_with_a_json_report("tokio");
}

#[test]
fn smol_serves_then_stops_on_sigterm() {
    serves_then_stops_on_sigterm_with_a_json_report("smol");
}

#[test]
fn async_std_serves_then_stops_on_sigterm() {
    serves_then_stops_on_sigterm_with_a_json_report("async-std");
}

#[test]
fn plain_serves_the_same_routes_on_every_runtime() {
    for runtime in ["tokio", "smol", "async-std"] {
        let mut server = start(&["--runtime", runtime, "--plain"]);
        assert!(get(&server.addr, "/").ends_with("hello"), "{runtime}");
        assert!(
            get(&server.addr, "/sleep/10").ends_with("slept 10"),
            "{runtime}"
        );
        signal(&server.child, "TERM");
        assert_eq!(server.child.wait().unwrap().code(), Some(0), "{runtime}");
    }
}

/// B17: the first SIGTERM drains, a second forces the stop.
fn second_signal_forces(runtime: &str) {
    let mut server = start(&["--runtime", runtime]);
    let mut slow = TcpStream::connect(&server.addr).expect("connect");
    slow.write_all(b"GET /sleep/60000 HTTP/1.1\r\nhost: t\r\n\r\n")
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // `/stats` counts itself: two in flight means the slow one is.
    while !get(&server.addr, "/stats").contains(r#""requests_in_flight":2"#) {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow request never started"
        );
    }
    signal(&server.child, "TERM");
    let mut stderr = BufReader::new(server.child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("draining") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no drain line");
    }
    signal(&server.child, "TERM");
    let mut report = String::new();
    server.stdout.read_line(&mut report).unwrap();
    assert!(report.contains(r#""graceful":false"#), "{report}");
    assert!(report.contains(r#""force_closed":1"#), "{report}");
    assert_eq!(server.child.wait().unwrap().code(), Some(0));
}

#[test]
fn tokio_second_signal_forces() {
    second_signal_forces("tokio");
}

#[test]
fn smol_second_signal_forces() {
    second_signal_forces("smol");
}

#[test]
fn async_std_second_signal_forces() {
    second_signal_forces("async-std");
}

#[test]
fn post_shutdown_stops_from_inside() {
    let mut server = start(&[]);
    let mut stream = TcpStream::connect(&server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"POST /shutdown HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("answered, then closed");
    assert!(response.contains("connection: close"), "{response}");
    assert!(response.ends_with("stopping"), "{response}");
    let mut report = String::new();
    server.stdout.read_line(&mut report).unwrap();
    assert!(report.contains(r#""graceful":true"#), "{report}");
    assert!(report.contains(r#""requests_completed":1"#), "{report}");
    assert_eq!(server.child.wait().unwrap().code(), Some(0));
}

/// A self-signed certificate and its key for `localhost`, as PEM files in
/// a directory of this test process; returns their paths and the
/// certificate.
fn tls_files(name: &str) -> (String, String, rustls::pki_types::CertificateDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("stoppable-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let path = |p: PathBuf| p.to_str().unwrap().to_owned();
    (path(cert), path(key), certified.cert.der().clone())
}

/// One HTTPS request (HTTP/1.1, `connection: close`) trusting `cert` only.
fn get_tls(addr: &str, path: &str, cert: rustls::pki_types::CertificateDer<'static>) -> String {
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    request(rustls::StreamOwned::new(tls, connect(addr)), path)
}

fn serves_https_then_stops_on_sigterm(runtime: &str) {
    let (cert, key, der) = tls_files(runtime);
    let mut server = start(&["--runtime", runtime, "--tls-cert", &cert, "--tls-key", &key]);
    let response = get_tls(&server.addr, "/", der);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("hello"), "{response}");
    signal(&server.child, "TERM");
    let mut report = String::new();
    server.stdout.read_line(&mut report).unwrap();
    assert!(report.contains(r#""graceful":true"#), "{report}");
    assert_eq!(server.child.wait().unwrap().code(), Some(0));
    let _ = (std::fs::remove_file(cert), std::fs::remove_file(key));
}

#[test]
fn tokio_serves_https_then_stops_on_sigterm() {
    serves_https_then_stops_on_sigterm("tokio");
}

#[test]
fn smol_serves_https_then_stops_on_sigterm() {
    serves_https_then_stops_on_sigterm("smol");
}

#[test]
fn async_std_serves_https_then_stops_on_sigterm() {
    serves_https_then_stops_on_sigterm("async-std");
}

fn exit_code(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(server_binary())
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_options_exit_2_with_usage() {
    for args in [
        &["--bogus"][..],
        &["--grace-ms", "soon"],
        &["--addr", "nowhere"],
        &["--runtime", "gevent"],
        &["--grace-ms"],
        &["--tls-cert", "cert.pem"],
        &[
            "--tls-cert",
            "/nonexistent.crt",
            "--tls-key",
            "/nonexistent.key",
        ],
    ] {
        let (code, stderr) = exit_code(args);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(stderr.contains("usage:"), "{args:?}: {stderr}");
        assert_eq!(
            stderr.lines().next().map(|l| l.starts_with("error:")),
            Some(true)
        );
    }
}

/// Descriptors the server may open: enough for its runtime and a few dozen
/// connections, so the test can reach the limit.
#[cfg(target_os = "linux")]
const FD_LIMIT: u64 = 64;

/// Starts the server with at most [`FD_LIMIT`] open descriptors.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn start_with_few_descriptors(runtime: &str) -> Server {
    start_with_few_descriptors_and(runtime, &[])
}

/// [`start_with_few_descriptors`], with more arguments.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn start_with_few_descriptors_and(runtime: &str, args: &[&str]) -> Server {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(server_binary());
    command
        .args(["--runtime", runtime, "--addr", "127.0.0.1:0"])
        .args(args);
    // SAFETY: between fork and exec only setrlimit, async-signal-safe, on
    // the child itself.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: FD_LIMIT as libc::rlim_t,
                rlim_max: FD_LIMIT as libc::rlim_t,
            };
            match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                -1 => Err(std::io::Error::last_os_error()),
                _ => Ok(()),
            }
        });
    }
    started(command, &[])
}

/// How many descriptors the process has open.
#[cfg(target_os = "linux")]
fn open_descriptors(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count() as u64)
}

/// Waits (at most 10 s) until the server `pid` has [`FD_LIMIT`]
/// descriptors open.
#[cfg(target_os = "linux")]
fn until_at_the_limit(pid: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while open_descriptors(pid) < FD_LIMIT {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never reached its limit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// More clients than the server has descriptors, each asking `GET path`
/// on a keep-alive connection: the server takes those it can, the kernel
/// queues the rest.
#[cfg(target_os = "linux")]
fn clients_past_the_limit(addr: &str, path: &str) -> Vec<TcpStream> {
    (0..FD_LIMIT + 16)
        .map(|_| {
            let mut stream = connect(addr);
            write!(stream, "GET {path} HTTP/1.1\r\nhost: t\r\n\r\n").expect("sent");
            stream
        })
        .collect()
}

/// CPU time the process has used, in clock ticks (user + system).
#[cfg(target_os = "linux")]
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // After the command name in parentheses: fields 14 and 15 (utime, stime).
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// At the descriptor limit (EMFILE) the accept loop backs off: it does not
/// spin, does not die, and serves again once descriptors are free; the
/// stop still ends with a report (issue 14).
#[cfg(target_os = "linux")]
fn recovers_from_running_out_of_descriptors(runtime: &str) {
    let server = start_with_few_descriptors(runtime);
    // More connections than descriptors: the server accepts until EMFILE;
    // the rest wait in the kernel's queue.
    let held: Vec<TcpStream> = (0..FD_LIMIT + 16).map(|_| connect(&server.addr)).collect();
    let pid = server.child.id();
    until_at_the_limit(pid);
    let before = cpu_ticks(server.child.id());
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(server.child.id()) - before;
    // A loop retrying at once would take a whole core (100 ticks a second).
    assert!(
        used < 50,
        "{used} ticks of CPU in a second at the descriptor limit: it spins"
    );
    drop(held);
    // Descriptors are free again: served as before.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let response = request(connect(&server.addr), "/");
        if response.ends_with("hello") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never served again: {response:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = stopped(server, "TERM");
    assert!(report.starts_with(r#"{"graceful":true"#), "{report}");
}

#[cfg(target_os = "linux")]
#[test]
fn tokio_recovers_from_running_out_of_descriptors() {
    recovers_from_running_out_of_descriptors("tokio");
}

#[cfg(target_os = "linux")]
#[test]
fn smol_recovers_from_running_out_of_descriptors() {
    recovers_from_running_out_of_descriptors("smol");
}

#[cfg(target_os = "linux")]
#[test]
fn async_std_recovers_from_running_out_of_descriptors() {
    recovers_from_running_out_of_descriptors("async-std");
}

/// A SIGTERM sent as soon as the first line is read stops the server
/// gracefully: the handlers are installed before the line is printed (a
/// signal with no handler yet would kill the process).
fn sigterm_right_after_the_first_line_stops_gracefully(runtime: &str) {
    for _ in 0..10 {
        let server = start(&["--runtime", runtime]);
        let report = stopped(server, "TERM");
        assert!(report.starts_with(r#"{"graceful":true"#), "{report}");
    }
}

#[test]
fn tokio_sigterm_right_after_the_first_line_stops_gracefully() {
    sigterm_right_after_the_first_line_stops_gracefully("tokio");
}

#[test]
fn smol_sigterm_right_after_the_first_line_stops_gracefully() {
    sigterm_right_after_the_first_line_stops_gracefully("smol");
}

#[test]
fn async_std_sigterm_right_after_the_first_line_stops_gracefully() {
    sigterm_right_after_the_first_line_stops_gracefully("async-std");
}

/// Out of descriptors at the stop (B1): the connections the kernel queued
/// while the server could not accept them are served once the stop's own
/// closes give descriptors back, not reset with the queue.
#[cfg(target_os = "linux")]
fn out_of_descriptors_at_the_stop(runtime: &str) {
    let server = start_with_few_descriptors(runtime);
    let pid = server.child.id();
    // More clients than descriptors, each with one keep-alive request: the
    // server answers those it accepted and keeps them open; the kernel
    // queues the rest.
    let mut conns = clients_past_the_limit(&server.addr, "/");
    let clients = conns.len();
    // Until the server is at its limit and answered each connection it
    // could accept (none more for a while): it then waits, the rest queued.
    // (Were it still at work, the stop would find fewer queued: the case
    // would test less, not fail.)
    let mut answers = vec![Vec::new(); clients];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (mut before, mut since) = (0, std::time::Instant::now());
    loop {
        for (stream, read) in conns.iter_mut().zip(&mut answers) {
            stream.set_nonblocking(true).expect("non-blocking");
            let mut buf = [0; 512];
            if let Ok(n) = stream.read(&mut buf) {
                read.extend_from_slice(&buf[..n]);
            }
        }
        let answered = answers.iter().filter(|a| a.ends_with(b"hello")).count();
        if answered != before {
            (before, since) = (answered, std::time::Instant::now());
        }
        let quiet = since.elapsed() > Duration::from_millis(200);
        if quiet && answered > 0 && open_descriptors(pid) >= FD_LIMIT {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{answered} answered, {} descriptors open",
            open_descriptors(pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&server.child, "TERM");
    // Every one is answered: those held before the stop, and those queued.
    for (i, (stream, read)) in conns.iter_mut().zip(&mut answers).enumerate() {
        stream.set_nonblocking(false).expect("blocking");
        let mut rest = Vec::new();
        let end = stream.read_to_end(&mut rest);
        read.extend_from_slice(&rest);
        assert!(
            read.starts_with(b"HTTP/1.1 200"),
            "connection {i} of {clients}: {end:?}, {:?}",
            String::from_utf8_lossy(read)
        );
    }
    let report = report_once_exited(server);
    assert!(report.starts_with(r#"{"graceful":true"#), "{report}");
}

/// Out of descriptors at the stop, with every descriptor held by a request
/// that outlasts the grace: nothing the stop closes gives one back before
/// its deadline. The drain waits only until then, so the stop still ends,
/// forced, and says so.
#[cfg(target_os = "linux")]
fn out_of_descriptors_for_the_whole_grace(runtime: &str) {
    let server = start_with_few_descriptors_and(runtime, &["--grace-ms", "500"]);
    let pid = server.child.id();
    // Requests that sleep past the grace hold every descriptor the server
    // can get; the rest wait in the kernel's queue.
    let _conns = clients_past_the_limit(&server.addr, "/sleep/60000");
    until_at_the_limit(pid);
    signal(&server.child, "TERM");
    let report = report_once_exited(server);
    assert!(report.starts_with(r#"{"graceful":false"#), "{report}");
}

#[cfg(target_os = "linux")]
#[test]
fn tokio_out_of_descriptors_for_the_whole_grace_still_ends() {
    out_of_descriptors_for_the_whole_grace("tokio");
}

#[cfg(target_os = "linux")]
#[test]
fn smol_out_of_descriptors_for_the_whole_grace_still_ends() {
    out_of_descriptors_for_the_whole_grace("smol");
}

#[cfg(target_os = "linux")]
#[test]
fn async_std_out_of_descriptors_for_the_whole_grace_still_ends() {
    out_of_descriptors_for_the_whole_grace("async-std");
}

#[cfg(target_os = "linux")]
#[test]
fn tokio_out_of_descriptors_at_the_stop_serves_the_queue() {
    out_of_descriptors_at_the_stop("tokio");
}

#[cfg(target_os = "linux")]
#[test]
fn smol_out_of_descriptors_at_the_stop_serves_the_queue() {
    out_of_descriptors_at_the_stop("smol");
}

#[cfg(target_os = "linux")]
#[test]
fn async_std_out_of_descriptors_at_the_stop_serves_the_queue() {
    out_of_descriptors_at_the_stop("async-std");
}
