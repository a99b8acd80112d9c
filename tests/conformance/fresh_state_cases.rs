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
    h2.until(true, "the PING's answer", |f| {
        f.kind == PING && !f.is_ping()
    });
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

/// A connection the kernel queued when the server future is dropped (a
/// `select!` that picked another branch) is served, not reset: its client
/// connected before the listener closed (B1).
pub fn b21_request_queued_when_the_server_future_is_dropped_is_served<R: TestRuntime>() {
    let server = R::start(Options::default());
    let blocked = server.control.block();
    let mut queued = Conn::open(server.addr);
    queued.get("/");
    server.request_drop();
    drop(blocked);
    server.wait_dropped();
    let resp = queued
        .response()
        .expect("the queued request is answered, not reset");
    assert_eq!(resp.status, 200);
    let report = block_on(server.stopper.stop());
    assert!(report.graceful, "{report:?}");
    assert_eq!(
        report.closed_idle + report.closed_after_work,
        1,
        "{report:?}"
    );
}

/// A client whose connect succeeded while its handshake was still under
/// way at the server (held by `TCP_DEFER_ACCEPT` until its first bytes)
/// when the server future is dropped, and that sends 100 ms later, is
/// served, not reset (B1, B21).
pub fn b21_handshake_under_way_when_the_server_future_is_dropped_is_served<R: TestRuntime>() {
    let server = R::start(Options {
        defer_accept: true,
        window: Some(5 * 1000 * MS),
        ..Options::default()
    });
    let mut late = Conn::open(server.addr);
    server.drop_server();
    std::thread::sleep(100 * MS);
    late.get("/");
    let resp = late.response().expect("answered, not reset");
    assert_eq!(resp.status, 200);
    let report = block_on(server.stopper.stop());
    assert!(report.graceful, "{report:?}");
    assert_eq!(
        report.closed_idle + report.closed_after_work,
        1,
        "{report:?}"
    );
}

/// A panic in the accept loop (the make-service, a user's code) ends the
/// server future; the stop still ends.
pub fn b21_stop_ends_after_a_panic_in_the_accept_loop<R: TestRuntime>() {
    let server = R::start(Options {
        panic_on_make: Some(2),
        ..Options::default()
    });
    let mut busy = Conn::open(server.addr);
    busy.get("/hang");
    until("the request is in flight", || {
        server.stopper.counts().requests_in_flight == 1
    });
    // The second connection's make-service panics.
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

/// An HTTP/2 `CONNECT` tunnel is one stream of its connection, not the
/// connection: the drain still sends GOAWAY (B7), and waits for the tunnel
/// as for any stream in flight (B14).
pub fn b14_http2_tunnel_gets_goaway_and_is_waited_for<R: TestRuntime>() {
    let server = R::start(Options::default());
    let mut h2 = RawH2::open(server.addr);
    h2.connect(1);
    h2.data(1, b"ping", false);
    assert_eq!(h2.data_on(1, true), b"ping", "the tunnel echoes");
    let stopping = server.stopper.stop();
    h2.until(true, "a GOAWAY", |f| f.kind == GOAWAY);
    // The tunnel still works, and the stop waits for it.
    h2.data(1, b"pong", false);
    assert_eq!(h2.data_on(1, true), b"pong");
    assert!(
        server.stopper.report().is_none(),
        "the stop waits for the tunnel"
    );
    h2.data(1, b"", true);
    assert!(h2.until_closed(true), "closed once the tunnel ended");
    let report = block_on(stopping);
    assert!(report.graceful, "{report:?}");
    assert_eq!(report.closed_after_work, 1);
}

/// The first head, then part of a second pipelined behind it, in one
/// write: the second is served once it arrives whole (B4, B6), although
/// the first response's head went out before the stop.
pub fn b6_pipelined_head_received_in_part_with_the_first_is_served<R: TestRuntime>() {
    let server = R::start(Options::default());
    let mut conn = Conn::open(server.addr);
    conn.send(b"GET /split/300 HTTP/1.1\r\nhost: t\r\n\r\nGET / HT");
    assert_eq!(conn.head_and_first_chunk().expect("first chunk"), b"hello");
    let stopping = server.stopper.stop();
    let first = conn.response().expect("the first completes");
    assert_eq!(first.text(), "helloworld");
    conn.send(b"TP/1.1\r\nhost: t\r\n\r\n");
    let second = conn
        .response()
        .expect("the second head, begun before the stop, is served");
    assert_eq!(
        (second.text().as_str(), second.says_close()),
        ("hello", true)
    );
    assert_eq!(conn.end().0, End::Eof);
    assert!(block_on(stopping).graceful);
}

/// Part of a second head arrives while the first response streams: it
/// began before the stop, and is served (B4, B6).
pub fn b6_pipelined_head_begun_during_the_first_response_is_served<R: TestRuntime>() {
    let server = R::start(Options::default());
    let mut conn = Conn::open(server.addr);
    conn.get("/split/300");
    assert_eq!(conn.head_and_first_chunk().expect("first chunk"), b"hello");
    conn.send(b"GET / HT");
    until("the bytes are read", || {
        server.stopper.counts().requests_in_flight == 1
    });
    std::thread::sleep(50 * MS);
    let stopping = server.stopper.stop();
    let first = conn.response().expect("the first completes");
    assert_eq!(first.text(), "helloworld");
    conn.send(b"TP/1.1\r\nhost: t\r\n\r\n");
    let second = conn
        .response()
        .expect("the second head, begun before the stop, is served");
    assert_eq!(
        (second.text().as_str(), second.says_close()),
        ("hello", true)
    );
    assert_eq!(conn.end().0, End::Eof);
    assert!(block_on(stopping).graceful);
}

/// A whole request pipelined behind a response of many chunks (hyper
/// yields after so many writes in one poll, its head still unparsed) is
/// served (B4, B6).
pub fn b6_pipelined_request_behind_many_chunks_is_served<R: TestRuntime>() {
    let server = R::start(Options::default());
    let mut conn = Conn::open(server.addr);
    conn.send(b"GET /split/200 HTTP/1.1\r\nhost: t\r\n\r\nGET /chunks/64 HTTP/1.1\r\nhost: t\r\n\r\nGET / HTTP/1.1\r\nhost: t\r\n\r\n");
    assert_eq!(conn.head_and_first_chunk().expect("first chunk"), b"hello");
    let stopping = server.stopper.stop();
    assert_eq!(conn.response().expect("the first").text(), "helloworld");
    let second = conn.response().expect("the second is served");
    assert_eq!(second.body.len(), 64);
    assert!(second.says_close(), "written after the stop");
    // The third may go unanswered: the second said close (B6).
    assert!(matches!(conn.end().0, End::Eof));
    assert!(block_on(stopping).graceful);
}

/// A client that answers no PING and opens a new stream now and then after
/// the GOAWAY (RFC 9113 §6.8 forbids it) cannot hold a stop that has no
/// grace: the streams it opens after the GOAWAY timeout are cut (B7, B21).
pub fn b7_client_opening_streams_after_goaway_cannot_hold_the_stop<R: TestRuntime>() {
    let server = R::start(Options {
        goaway_timeout: Some(200 * MS),
        ..Options::default()
    });
    let mut h2 = RawH2::open(server.addr);
    h2.get(1, "/");
    assert_eq!(
        h2.response(1, false),
        StreamEnd::Complete(b"hello".to_vec())
    );
    let stopping = server.stopper.stop();
    h2.until(false, "a GOAWAY", |f| f.kind == GOAWAY);
    let started = Instant::now();
    let mut stream = 3;
    h2.stream.set_read_timeout(Some(10 * MS)).unwrap();
    let closed = loop {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the stop is held"
        );
        // A stream every 100 ms, each 150 ms long: never quiet.
        let block = [
            0x82, 0x86, 0x04, 10, b'/', b's', b'l', b'e', b'e', b'p', b'/', b'1', b'5', b'0', 0x01,
            4, b't', b'e', b's', b't',
        ];
        if !h2.try_send(crate::h2_raw::HEADERS, 0x5, stream, &block) {
            break true;
        }
        stream += 2;
        let until = Instant::now() + 100 * MS;
        let mut ended = false;
        while Instant::now() < until && !ended {
            ended = match h2.frame(false) {
                Ok(_) => false,
                Err(e) => !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
            };
        }
        if ended {
            break true;
        }
    };
    assert!(closed);
    let report = block_on(stopping);
    assert!(!report.graceful, "streams were cut: {report:?}");
    assert_eq!(report.force_closed, 1);
}

/// A queued connection whose request already waits in the kernel, accepted
/// after a zero grace forced the stop: its cut is counted (B9, B11).
pub fn b9_zero_grace_counts_a_queued_request_as_cut<R: TestRuntime>() {
    let server = R::start(Options::default());
    let blocked = server.control.block();
    let mut conn = Conn::open(server.addr);
    conn.get("/");
    let stopping = server.stopper.stop_within(Duration::ZERO);
    drop(blocked);
    let report = block_on(stopping);
    assert!(!report.graceful, "{report:?}");
    assert_eq!(report.force_closed, 1);
    let _ = conn.end();
}

/// An HTTP/2 preface read in pieces is still HTTP/2: the connection gets
/// its GOAWAY and its pings are no request head (B7).
pub fn b7_http2_preface_read_in_pieces_is_still_http2<R: TestRuntime>() {
    let server = R::start(Options {
        header_read_timeout: Some(200 * MS),
        ..Options::default()
    });
    let mut h2 = RawH2::open_split(server.addr, 5);
    h2.get(1, "/");
    assert_eq!(h2.response(1, true), StreamEnd::Complete(b"hello".to_vec()));
    h2.ping();
    h2.until(true, "the PING's answer", |f| {
        f.kind == PING && !f.is_ping()
    });
    let report = server.stop();
    assert!(
        h2.saw(GOAWAY) || {
            h2.until_closed(true);
            h2.saw(GOAWAY)
        },
        "a GOAWAY"
    );
    assert!(report.graceful, "{report:?}");
}

/// A second stop with no grace during the readiness delay forces at once
/// (B12, B17: a second signal forces).
pub fn b17_zero_grace_during_the_delay_forces_at_once<R: TestRuntime>() {
    let server = R::start(Options {
        drain_delay: Some(Duration::from_secs(5)),
        ..Options::default()
    });
    let mut conn = Conn::open(server.addr);
    conn.get("/hang");
    until("the request is in flight", || {
        server.stopper.counts().requests_in_flight == 1
    });
    server.stopper.request_stop();
    let report = block_on(server.stopper.stop_within(Duration::ZERO));
    assert!(report.elapsed < Duration::from_secs(2), "{report:?}");
    assert_eq!(report.force_closed, 1);
    assert_eq!(conn.end().0, End::Eof);
}

/// A line waiting unread in the kernel when the drain tells its idle raw
/// connection to close is served first (B4, B20): `closing` does not
/// resolve while bytes wait.
pub fn b20_line_waiting_unread_at_the_stop_is_served<R: TestRuntime>() {
    use std::io::{BufRead, BufReader};
    let server = R::start_lines(Options::default());
    let mut conn = Conn::open(server.addr);
    conn.send(b"one\n");
    let mut reader = BufReader::new(conn.stream.try_clone().expect("clone"));
    let mut echoed = String::new();
    reader.read_line(&mut echoed).expect("echo");
    until("the line is done", || server.stopper.counts().active == 0);
    let blocked = server.control.block();
    conn.send(b"two\n");
    let stopping = server.stopper.stop();
    drop(blocked);
    echoed.clear();
    reader
        .read_line(&mut echoed)
        .expect("the waiting line is echoed");
    assert_eq!(echoed, "two\n");
    let report = block_on(stopping);
    assert!(report.graceful, "{report:?}");
    assert_eq!(
        (report.closed_after_work, report.requests_completed),
        (1, 1)
    );
}
