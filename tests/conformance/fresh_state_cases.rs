//! B21 and the waits that must end: every decision to close a connection is
//! taken on what it is doing at that moment, every wait on a peer or on a
//! future the user may drop is bounded, and `graceful` says exactly whether
//! begun work was cut (B7, B9, B11).

use std::time::{Duration, Instant};

use crate::client::{Conn, End};
use crate::h2_raw::{RawH2, StreamEnd, GOAWAY, PING};
use crate::runtimes::{Options, TestRuntime};
use crate::wait::{block_on, until};

const MS: Duration = Duration::from_millis(1);

/// A readiness delay longer than the header-read timeout: an HTTP/2
/// connection that sent a PING after its first stream, then opened a stream
/// late in the delay, keeps that stream when the drain begins (the decision
/// is taken on the connection as it is then, not as it was at the stop).
pub fn b21_delay_longer_than_header_timeout_keeps_an_http2_stream<R: TestRuntime>() {
    let server = R::start(Options {
        header_read_timeout: Some(100 * MS),
        drain_delay: Some(700 * MS),
        ..Options::default()
    });
    let mut h2 = RawH2::open(server.addr);
    h2.get(1, "/");
    assert_eq!(h2.response(1, true), StreamEnd::Complete(b"hello".to_vec()));
    // Bytes after the first stream: the server reads them and answers.
    h2.ping();
    while !h2.frame(true).is_ok_and(|f| f.kind == PING && !f.is_ping()) {}
    let stopping = server.stopper.stop();
    // Past the header-read timeout, still inside the delay (the scenario is
    // a span of time: nothing to wait for but the clock).
    std::thread::sleep(300 * MS);
    assert_eq!(server.stopper.phase(), stoppable::Phase::Delaying);
    h2.get(3, "/sleep/600");
    assert_eq!(
        h2.response(3, true),
        StreamEnd::Complete(b"slept 600".to_vec()),
        "the stream in flight when the drain began completes"
    );
    let report = block_on(stopping);
    assert!(report.graceful);
    assert_eq!(
        (report.force_closed, report.requests_completed),
        (0, 1),
        "{report:?}"
    );
}

/// The stop owns its timers: it ends, force-closing at the grace, after
/// the server future (or a tracker's drive) was dropped.
pub fn b21_stop_ends_after_the_server_future_is_dropped<R: TestRuntime>() {
    let server = R::start(Options::default());
    let mut busy = Conn::open(server.addr);
    busy.get("/hang");
    let mut fresh = Conn::open(server.addr);
    until("both connections are tracked", || {
        let counts = server.stopper.counts();
        (counts.open, counts.requests_in_flight) == (2, 1)
    });
    server.drop_server();
    let report = block_on(server.stopper.stop_within(300 * MS));
    assert!(!report.graceful);
    assert_eq!(
        (report.force_closed, report.closed_idle),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(busy.end().0, End::Eof, "the hanging request is forced");
    assert_eq!(fresh.end().0, End::Eof, "the silent one closes");
}

/// A panic in the accept loop (the service's clone, a user's code) ends the
/// server future; the stop still ends.
pub fn b21_stop_ends_after_a_panic_in_the_accept_loop<R: TestRuntime>() {
    let server = R::start(Options {
        panic_on_clone: Some(2),
        ..Options::default()
    });
    let mut busy = Conn::open(server.addr);
    busy.get("/hang");
    until("the request is in flight", || {
        server.stopper.counts().requests_in_flight == 1
    });
    // The second connection's clone of the service panics.
    let mut second = Conn::open(server.addr);
    second.get("/");
    assert!(second.response().is_err(), "its connection is dropped");
    server.wait_dropped();
    let report = block_on(server.stopper.stop_within(300 * MS));
    assert!(!report.graceful);
    assert_eq!(report.force_closed, 1, "{report:?}");
    assert_eq!(busy.end().0, End::Eof);
}

/// An idle HTTP/2 client that never acknowledges the GOAWAY's PING, nor
/// closes, is closed about a second later, with no grace set (B7).
pub fn b7_http2_client_that_never_acknowledges_goaway_is_closed<R: TestRuntime>() {
    let server = R::start(Options::default());
    let mut h2 = RawH2::open(server.addr);
    h2.get(1, "/");
    assert_eq!(
        h2.response(1, false),
        StreamEnd::Complete(b"hello".to_vec())
    );
    let stopping = server.stopper.stop();
    let started = Instant::now();
    assert!(h2.until_closed(false), "closed with a FIN");
    assert!(h2.saw(GOAWAY), "a GOAWAY before the close");
    // About a second (the benchmarks time it); here: bounded, not never.
    assert!(started.elapsed() < Duration::from_secs(5));
    let report = block_on(stopping);
    assert!(report.graceful, "{report:?}");
    assert_eq!(report.closed_idle + report.closed_after_work, 1);
}

/// A connection that speaks HTTP/2 is never closed without a GOAWAY, even
/// a fresh one whose first-request window ended (B7).
pub fn b7_fresh_http2_connection_gets_goaway_before_its_close<R: TestRuntime>() {
    let server = R::start(Options {
        window: Some(100 * MS),
        ..Options::default()
    });
    let mut h2 = RawH2::open(server.addr);
    // The server's SETTINGS: it read the preface and speaks HTTP/2.
    while !h2
        .frame(true)
        .is_ok_and(|f| f.kind == crate::h2_raw::SETTINGS)
    {}
    let report = server.stop();
    assert!(h2.until_closed(true), "closed with a FIN");
    assert!(h2.saw(GOAWAY), "a GOAWAY before the FIN");
    assert!(report.graceful);
    assert_eq!(report.closed_idle, 1, "{report:?}");
}

/// A force-close reaches a connection whose raw socket the server was not
/// given: its driver closes it (B9), even after an earlier order (the
/// shutdown at the drain's start) woke it once.
pub fn b9_force_close_reaches_a_connection_without_a_socket<R: TestRuntime>() {
    let server = R::start(Options {
        forget_sockets: true,
        ..Options::default()
    });
    let mut conn = Conn::open(server.addr);
    conn.get("/hang");
    until("the request is in flight", || {
        server.stopper.counts().requests_in_flight == 1
    });
    let report = block_on(server.stopper.stop_within(300 * MS));
    assert_eq!(report.force_closed, 1);
    assert_eq!(conn.end().0, End::Eof, "the connection is closed");
}

/// A unit of raw work (B20) begun during the readiness delay, and cut at
/// the grace, makes the stop not graceful (B11): the core looks at the
/// connection when it decides, although nothing reported the work.
pub fn b11_raw_work_begun_in_the_delay_and_cut_at_the_grace_is_not_graceful<R: TestRuntime>() {
    let server = R::start_lines(Options {
        drain_delay: Some(300 * MS),
        grace: Some(300 * MS),
        ..Options::default()
    });
    let mut conn = Conn::open(server.addr);
    conn.send(b"one\n");
    let mut echoed = [0u8; 4];
    std::io::Read::read_exact(&mut conn.stream, &mut echoed).expect("echo");
    let stopping = server.stopper.stop();
    // A line begins during the delay, and never ends.
    conn.send(b"never ends");
    let report = block_on(stopping);
    assert!(!report.graceful, "a line cut at the grace: {report:?}");
    assert_eq!(report.force_closed, 1);
    assert_eq!(conn.end().0, End::Eof);
}
