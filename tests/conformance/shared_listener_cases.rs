//! B22: a listening socket with other owners (a sibling process, systemd,
//! the next process of a restart) keeps working for them after a stop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::client::{Conn, DEADLINE};
use crate::runtimes::{Options, TestRuntime};
use crate::wait::until;

/// Well under a client's first SYN retry (1 s on Linux): a connect that
/// takes longer had its SYN dropped.
const NO_SYN_DROPPED: Duration = Duration::from_millis(500);

/// Connects made during a stop: well under the listener's backlog (1024).
const MAX_CONNECTS: usize = 300;

/// Connects within [`NO_SYN_DROPPED`], or fails the test with `why`.
fn connect_at_once(addr: SocketAddr, why: &str) -> TcpStream {
    TcpStream::connect_timeout(&addr, NO_SYN_DROPPED).unwrap_or_else(|e| panic!("{why}: {e}"))
}

/// Accepts `n` connections on the other owner's handle, within the deadline.
fn other_accepts(other: &TcpListener, n: usize) {
    let mut accepted = 0;
    until("the other owner accepts every connection", || {
        while other.accept().is_ok() {
            accepted += 1;
        }
        accepted >= n
    });
    assert_eq!(accepted, n, "no more connections than were made");
}

/// The other owner at work: accepts (and closes) in a thread of its own,
/// so its queue never fills; the count once `done` is set and all is in.
fn other_accepting(
    other: &TcpListener,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    use std::sync::atomic::Ordering;
    let other = other.try_clone().expect("a handle for the thread");
    std::thread::spawn(move || {
        let mut accepted = 0;
        loop {
            match other.accept() {
                Ok(_) => accepted += 1,
                Err(_) if done.load(Ordering::SeqCst) => return accepted,
                Err(_) => std::thread::yield_now(),
            }
        }
    })
}

pub fn b22_socket_held_by_another_owner_takes_connections_after_the_stop<R: TestRuntime>() {
    let server = R::start(Options {
        other_owner: true,
        ..Options::default()
    });
    let other = server.other_owner.as_ref().expect("a second handle");
    let report = server.stop();
    assert!(report.graceful);
    // The stop refused new attempts while it drained the queue (B1); that
    // must not outlive this server's own handle on the socket.
    let _client = connect_at_once(
        server.addr,
        "the other owner's socket takes a connect at once",
    );
    other_accepts(other, 1);
}

pub fn b22_shared_listener_never_drops_a_connect_during_the_stop<R: TestRuntime>() {
    let server = R::start(Options {
        other_owner: true,
        shared_listener: true,
        ..Options::default()
    });
    let other = server.other_owner.as_ref().expect("a second handle");
    // A request in flight keeps the stop running while the clients connect.
    let mut busy = Conn::open(server.addr);
    busy.get("/sleep/300");
    until("the request is in flight", || {
        server.stopper.counts().requests_in_flight == 1
    });
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let accepting = other_accepting(other, done.clone());
    server.stopper.request_stop();
    // Back to back, from the stop on: the moments a filter would be on.
    // Each closed once connected: the other owner still accepts it, and
    // the test holds no descriptor per connect. At most a few hundred
    // (about 10 ms of connects, past the 5 ms a filter would be on): fewer
    // than the backlog, so a slow accept thread cannot make a SYN drop.
    let mut connects = 0;
    let until_time = Instant::now() + Duration::from_millis(50);
    while Instant::now() < until_time && connects < MAX_CONNECTS {
        drop(connect_at_once(
            server.addr,
            "a connect to a shared socket during the stop",
        ));
        connects += 1;
    }
    let resp = busy.response().expect("the request in flight is answered");
    assert_eq!(resp.status, 200);
    let report = server.finished();
    assert!(report.graceful);
    // The server stops accepting at once; a connect racing the stop may
    // still be its own (served, counted). Every other one waits in the
    // queue for the other owner.
    let taken_by_server = report.closed_after_work + report.closed_idle - 1;
    assert!(taken_by_server <= 1, "the server stopped accepting at once");
    // Every connect is in: the last accept pass after `done` takes the rest.
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let accepted = accepting.join().expect("the other owner's thread");
    assert_eq!(
        (accepted, taken_by_server),
        (connects - taken_by_server, taken_by_server),
        "{report:?}"
    );
}

/// A server with a Unix listener, and the test's own handle on it: what a
/// handoff passes on.
fn with_unix_handle<R: TestRuntime>() -> crate::runtimes::TestServer {
    R::start(Options {
        unix: true,
        other_owner: true,
        ..Options::default()
    })
}

/// The test's own handle on the server's Unix listener.
fn own_unix_handle(server: &crate::runtimes::TestServer) -> &std::os::unix::net::UnixListener {
    server.unix_other_owner.as_ref().expect("a second handle")
}

/// The next process of a handoff (B22), as a stand-in: a shell that holds
/// the passed socket (descriptor 3) and writes where to say `READY=1`; the
/// test says it in its place, when the case wants it ready.
struct NextProcess {
    /// Where the shell writes the name of its ready socket.
    told: std::path::PathBuf,
}

impl NextProcess {
    fn new() -> NextProcess {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let told =
            std::env::temp_dir().join(format!("stoppable-suite-{}-next-{n}", std::process::id()));
        let _ = std::fs::remove_file(&told);
        NextProcess { told }
    }

    /// `stoppable::handoff::start` of `listener`, in a thread of its own
    /// (it blocks until the next process is ready, or fails).
    fn hand_off(
        &self,
        listener: &std::os::unix::net::UnixListener,
        script: &str,
    ) -> std::thread::JoinHandle<std::io::Result<std::process::Child>> {
        self.hand_off_within(listener, script, DEADLINE)
    }

    /// [`NextProcess::hand_off`], with the time it gets to be ready.
    fn hand_off_within(
        &self,
        listener: &std::os::unix::net::UnixListener,
        script: &str,
        timeout: Duration,
    ) -> std::thread::JoinHandle<std::io::Result<std::process::Child>> {
        use std::os::fd::AsFd;
        let listener = listener.try_clone().expect("a handle for the thread");
        let mut command = std::process::Command::new("sh");
        command.args(["-c", script, "next", &self.told.display().to_string()]);
        std::thread::spawn(move || stoppable::handoff::start(command, &[listener.as_fd()], timeout))
    }

    /// Says `READY=1` for it, once it told where.
    fn say_ready(&self) {
        use std::os::linux::net::SocketAddrExt;
        let mut name = String::new();
        until("the next process tells its ready socket", || {
            name = std::fs::read_to_string(&self.told).unwrap_or_default();
            name.ends_with('\n')
        });
        let name = name.trim_end().strip_prefix('@').expect("an abstract name");
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).expect("a name");
        let socket = std::os::unix::net::UnixDatagram::unbound().expect("a socket");
        socket
            .send_to_addr(b"READY=1", &addr)
            .expect("READY=1 sent");
    }
}

impl Drop for NextProcess {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.told);
    }
}

/// Holds the passed socket and tells where to say `READY=1`; then waits.
const HOLDS_THE_SOCKET: &str = r#"printf '%s\n' "$STOPPABLE_READY_SOCKET" > "$1"; exec sleep 60"#;

/// A stop that begins while a handoff waits for the next process to be
/// ready: the socket is the next process's from the moment it was passed,
/// so the stop must not refuse connections on it for good (a Unix
/// socket's `shutdown(SHUT_RD)`), or the next process serves nothing.
pub fn b22_a_stop_during_a_handoff_leaves_the_socket_to_the_next_process<R: TestRuntime>() {
    let server = with_unix_handle::<R>();
    let path = server.unix.clone().expect("a Unix listener");
    let own = own_unix_handle(&server);
    let next = NextProcess::new();
    let handoff = next.hand_off(own, HOLDS_THE_SOCKET);
    // The shell runs: it holds the socket. This process stops meanwhile.
    until("the next process runs", || next.told.exists());
    let report = server.stop();
    assert!(report.graceful);
    next.say_ready();
    let mut child = handoff
        .join()
        .expect("the handoff's thread")
        .expect("the handoff succeeds");
    let connected = std::os::unix::net::UnixStream::connect(&path);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        connected.is_ok(),
        "the next process's socket refuses connections: {connected:?}"
    );
    own.set_nonblocking(false).expect("blocking");
    own.accept()
        .expect("the connect waits in the next process's queue");
}

/// A handoff that fails (the next process exits before it is ready) leaves
/// the socket to this process alone: its stop then refuses new connects
/// again (B1), rather than leaving them to a process that is gone.
pub fn b22_a_failed_handoff_leaves_the_socket_to_this_process<R: TestRuntime>() {
    let server = with_unix_handle::<R>();
    let path = server.unix.clone().expect("a Unix listener");
    let own = own_unix_handle(&server);
    let next = NextProcess::new();
    let handoff = next.hand_off(own, "exit 3");
    let failed = handoff.join().expect("the handoff's thread");
    assert!(failed.is_err(), "the next process exited: {failed:?}");
    let report = server.stop();
    assert!(report.graceful);
    assert!(
        crate::client::unix_refused(&path),
        "a connect after the stop is refused, though the test holds the socket"
    );
}

/// A handoff asked for after this process's stop refused connections on a
/// Unix socket for good: an error, not a next process handed a deaf socket.
pub fn b22_a_handoff_after_the_stop_refused_the_socket_is_an_error<R: TestRuntime>() {
    let server = with_unix_handle::<R>();
    let own = own_unix_handle(&server);
    let report = server.stop();
    assert!(report.graceful);
    let next = NextProcess::new();
    let handoff = next.hand_off(own, HOLDS_THE_SOCKET);
    let started = handoff.join().expect("the handoff's thread");
    if let Ok(mut child) = started {
        let _ = child.kill();
        let _ = child.wait();
        panic!("a socket that refuses connections for good was handed off");
    }
    assert!(!next.told.exists(), "no next process was started");
}

/// Never ready; on SIGTERM, writes that it was asked to stop, then exits.
const ASKED_TO_STOP: &str = r#"trap 'echo stopped > "$1.stopped"; kill $sleeper; exit 0' TERM
printf '%s\n' "$STOPPABLE_READY_SOCKET" > "$1"
sleep 60 & sleeper=$!
wait $sleeper"#;

/// A next process not ready in time is asked to stop (SIGTERM), not killed
/// at once: it may serve connections it accepted on the shared socket
/// already, which its own stop finishes and a SIGKILL would reset.
pub fn b22_a_next_process_not_ready_in_time_is_asked_to_stop<R: TestRuntime>() {
    let server = with_unix_handle::<R>();
    let own = own_unix_handle(&server);
    let next = NextProcess::new();
    let stopped = next.told.with_extension("stopped");
    let handoff = next.hand_off_within(own, ASKED_TO_STOP, Duration::from_secs(2));
    let failed = handoff.join().expect("the handoff's thread");
    let asked = std::fs::read_to_string(&stopped);
    let _ = std::fs::remove_file(&stopped);
    assert!(
        failed.is_err(),
        "the next process was never ready: {failed:?}"
    );
    assert_eq!(asked.ok().as_deref(), Some("stopped\n"), "asked to stop");
    assert!(server.stop().graceful);
}
