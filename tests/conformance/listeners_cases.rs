//! Several listeners under one stop, Unix domain sockets among them (B1,
//! B22): each is served, each is drained at the stop (what its kernel
//! queue holds is answered, later connects are refused), and the stop
//! completes once all are closed.

use std::time::Duration;

use crate::client::{refused, unix_refused, Conn, End};
use crate::runtimes::{Options, TestRuntime, TestServer};

fn with_unix() -> Options {
    Options {
        unix: true,
        ..Options::default()
    }
}

fn unix_path(server: &TestServer) -> &std::path::Path {
    server
        .unix
        .as_deref()
        .expect("the server has a Unix listener")
}

/// A request over the Unix socket and one over TCP, each on its own
/// keep-alive connection, are answered.
pub fn b22_tcp_and_unix_listeners_are_both_served<R: TestRuntime>() {
    let server = R::start(with_unix());
    let mut unix = Conn::open_unix(unix_path(&server));
    unix.get("/");
    let resp = unix.response().expect("answered over the Unix socket");
    assert_eq!((resp.status, resp.text().as_str()), (200, "hello"));
    let mut tcp = Conn::open(server.addr);
    tcp.get("/");
    assert_eq!(tcp.response().expect("answered over TCP").status, 200);
    let report = server.stop();
    assert!(report.graceful, "{report:?}");
    assert_eq!(
        report.closed_idle, 2,
        "both idle connections closed: {report:?}"
    );
    assert_eq!(unix.end().0, End::Eof);
    assert_eq!(tcp.end().0, End::Eof);
}

/// At the stop, what both listeners' queues hold is answered (B1), then
/// both refuse connects; the stop waits for both.
pub fn b1_every_listener_queue_is_served_at_the_stop<R: TestRuntime>() {
    let server = R::start(with_unix());
    let path = unix_path(&server).to_owned();
    // Hold the executor, so these connections wait in the accept queues.
    let blocked = server.control.block();
    let mut unix: Vec<_> = (0..3)
        .map(|_| {
            let mut conn = Conn::open_unix(&path);
            conn.get("/");
            conn
        })
        .collect();
    let mut tcp: Vec<_> = (0..3)
        .map(|_| {
            let mut conn = Conn::open(server.addr);
            conn.get("/");
            conn
        })
        .collect();
    server.stopper.request_stop();
    drop(blocked);
    for conn in &mut unix {
        let resp = conn
            .response()
            .expect("a queued Unix connection is answered");
        assert_eq!((resp.status, resp.says_close()), (200, true));
        assert_eq!(conn.end().0, End::Eof);
    }
    for conn in &mut tcp {
        let resp = conn
            .response()
            .expect("a queued TCP connection is answered");
        assert_eq!((resp.status, resp.says_close()), (200, true));
        assert_eq!(conn.end().0, End::Eof);
    }
    let report = server.finished();
    assert!(report.graceful, "{report:?}");
    assert_eq!(report.requests_completed, 6, "{report:?}");
    assert!(
        unix_refused(&path),
        "the Unix socket refuses connects after the stop"
    );
    assert!(
        refused(server.addr),
        "the TCP socket refuses connects after the stop"
    );
}

/// With a connection limit, the server holds at most that many: a further
/// connect waits in the kernel's queue, and is served once one closes.
pub fn a_connection_limit_pauses_accepting<R: TestRuntime>() {
    let server = R::start(Options {
        max_connections: Some(2),
        ..Options::default()
    });
    let mut held: Vec<Conn> = (0..2)
        .map(|_| {
            let mut conn = Conn::open(server.addr);
            conn.get("/");
            assert_eq!(conn.response().expect("served").status, 200);
            conn
        })
        .collect();
    let mut waiting = Conn::open(server.addr);
    waiting.get("/");
    // Time to be accepted, were there no limit.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.stopper.counts().open, 2, "a third was accepted");
    drop(held.pop());
    let resp = waiting.response().expect("served once a connection closed");
    assert_eq!(resp.status, 200);
    let report = server.stop();
    assert!(report.graceful, "{report:?}");
}

/// A client whose connect succeeded while its handshake was still under
/// way at the server (its last ACK on its way over a long round trip; here
/// held by `TCP_DEFER_ACCEPT` until its first bytes) sends its request
/// well after the stop began: it is served, not reset (B1).
pub fn b1_a_handshake_under_way_at_the_stop_is_served<R: TestRuntime>() {
    let server = R::start(Options {
        defer_accept: true,
        window: Some(Duration::from_secs(5)),
        ..Options::default()
    });
    let mut conn = Conn::open(server.addr);
    server.stopper.request_stop();
    // The client's round trip: far longer than the kernel needs to queue
    // a handshake that reached the server.
    std::thread::sleep(Duration::from_millis(100));
    conn.get("/");
    let resp = conn.response().expect("answered, not reset");
    assert_eq!((resp.status, resp.says_close()), (200, true));
    assert_eq!(conn.end().0, End::Eof);
    let report = server.finished();
    assert!(report.graceful, "{report:?}");
    assert_eq!(
        (report.closed_after_work, report.requests_completed),
        (1, 1),
        "{report:?}"
    );
    assert!(refused(server.addr), "connects are refused after the stop");
}

/// A handshake that never completes at the server (a client that
/// connected and sends nothing, held by `TCP_DEFER_ACCEPT`) cannot hold
/// the stop: the listener closes once the first-request window is over
/// (B4), and the stop ends, graceful, with no work begun.
pub fn b1_a_handshake_that_never_completes_cannot_hold_the_stop<R: TestRuntime>() {
    let server = R::start(Options {
        defer_accept: true,
        window: Some(Duration::from_millis(200)),
        ..Options::default()
    });
    let conn = Conn::open(server.addr);
    let report = server.stop();
    assert!(report.graceful, "{report:?}");
    assert_eq!(report.requests_completed, 0, "{report:?}");
    assert!(refused(server.addr), "connects are refused after the stop");
    drop(conn);
}
