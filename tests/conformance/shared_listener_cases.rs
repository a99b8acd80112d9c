//! B22: a listening socket with other owners (a sibling process, systemd,
//! the next process of a restart) keeps working for them after a stop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::client::Conn;
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
