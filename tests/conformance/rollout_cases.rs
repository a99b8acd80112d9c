//! B23: during the readiness delay the server can ask its clients to move
//! on (to the new instances a load balancer now sends them to) while it
//! still accepts and serves; while serving, connections can have a maximum
//! age.

use std::time::Duration;

use stoppable::Phase;

use crate::client::{Conn, End};
use crate::h2_raw::{RawH2, StreamEnd, GOAWAY};
use crate::runtimes::{Options, TestRuntime};

pub fn b23_clients_are_asked_to_move_on_during_the_delay<R: TestRuntime>() {
    let server = R::start(Options {
        drain_delay: Some(Duration::from_secs(3)),
        move_on: true,
        ..Options::default()
    });
    let delaying = || assert_eq!(server.stopper.phase(), Phase::Delaying, "still the delay");
    // A keep-alive client and an HTTP/2 client, each served once.
    let mut keep_alive = Conn::open(server.addr);
    keep_alive.get("/");
    let resp = keep_alive.response().expect("served");
    assert!(!resp.says_close(), "keep-alive before the stop");
    let mut h2 = RawH2::open(server.addr);
    h2.get(1, "/");
    assert!(matches!(h2.response(1, true), StreamEnd::Complete(_)));
    server.stopper.request_stop();
    // Asked to move on before the drain: the idle keep-alive connection is
    // closed, the HTTP/2 connection gets a GOAWAY.
    assert_eq!(keep_alive.end().0, End::Eof);
    delaying();
    h2.until(true, "a GOAWAY", |f| f.kind == GOAWAY);
    delaying();
    // Still accepting and serving; the answer says where to go next time.
    let mut fresh = Conn::open(server.addr);
    fresh.get("/");
    let resp = fresh.response().expect("served during the delay");
    assert_eq!(resp.status, 200);
    assert!(resp.says_close(), "a response during the delay says close");
    delaying();
    let report = server.finished();
    assert!(report.graceful, "{report:?}");
}

/// A connection that has sent nothing yet is not closed by the move-on: its
/// client may be about to send its first request (B4).
pub fn b23_a_fresh_connection_is_not_closed_by_the_move_on<R: TestRuntime>() {
    let server = R::start(Options {
        drain_delay: Some(Duration::from_secs(3)),
        move_on: true,
        ..Options::default()
    });
    let mut fresh = Conn::open(server.addr);
    crate::wait::until("the connection is tracked", || {
        server.stopper.counts().open == 1
    });
    server.stopper.request_stop();
    std::thread::sleep(Duration::from_millis(100));
    fresh.get("/");
    let resp = fresh.response().expect("its first request is served");
    assert_eq!((resp.status, resp.says_close()), (200, true));
    assert_eq!(server.stopper.phase(), Phase::Delaying);
    assert!(server.finished().graceful);
}

/// A maximum age short enough for a test, long enough that a request sent
/// at once is well under way when it comes (±10 %).
const AGE: Duration = Duration::from_millis(300);

/// While serving, connections past their age are asked to finish: the
/// response in flight completes and says close, then the connection ends;
/// HTTP/2 gets a GOAWAY and its stream completes; an idle HTTP/1.1
/// connection is not closed under a request that may be on its way, but
/// its next response says close. Nothing is cut, and the server goes on
/// serving.
pub fn b23_a_connection_past_its_maximum_age_finishes_its_work_and_closes<R: TestRuntime>() {
    let server = R::start(Options {
        max_age: Some(AGE),
        ..Options::default()
    });
    let mut keep_alive = Conn::open(server.addr);
    keep_alive.get("/");
    assert!(!keep_alive.response().expect("served").says_close());
    let mut idle = Conn::open(server.addr);
    idle.get("/");
    assert!(!idle.response().expect("served").says_close());
    // In flight when the age comes (at 270 to 330 ms).
    keep_alive.get("/sleep/600");
    let mut h2 = RawH2::open(server.addr);
    h2.get(1, "/sleep/600");
    let resp = keep_alive
        .response()
        .expect("the request in flight completes");
    assert_eq!(resp.status, 200);
    assert!(resp.says_close(), "its response says close");
    assert_eq!(keep_alive.end().0, End::Eof, "then the connection ends");
    match h2.response(1, true) {
        StreamEnd::Complete(body) => assert_eq!(body, b"slept 600"),
        StreamEnd::Cut => panic!("the HTTP/2 stream was cut"),
    }
    assert!(
        h2.saw(GOAWAY),
        "HTTP/2 was told to go away before its stream ended"
    );
    assert!(
        h2.until_closed(true),
        "the HTTP/2 connection ends with a FIN"
    );
    // Idle past its age, an HTTP/1.1 connection was left open (a request
    // may be on the wire): its next request is served, and says close.
    idle.get("/");
    let resp = idle
        .response()
        .expect("the idle aged connection still serves");
    assert_eq!((resp.status, resp.says_close()), (200, true));
    assert_eq!(idle.end().0, End::Eof);
    assert_eq!(server.stopper.phase(), Phase::Serving);
    let mut fresh = Conn::open(server.addr);
    fresh.get("/");
    assert_eq!(fresh.response().expect("still serving").status, 200);
    let report = server.stop();
    assert!(report.graceful, "{report:?}");
}

/// A connection that has sent nothing yet is not closed for its age: its
/// first request may be on the way (B4).
pub fn b23_a_connection_that_sent_nothing_is_not_closed_for_its_age<R: TestRuntime>() {
    let server = R::start(Options {
        max_age: Some(AGE),
        ..Options::default()
    });
    let mut quiet = Conn::open(server.addr);
    crate::wait::until("the connection is tracked", || {
        server.stopper.counts().open == 1
    });
    // Past its age and the tenth either way.
    std::thread::sleep(AGE * 3 / 2);
    quiet.get("/");
    let resp = quiet.response().expect("its first request is served");
    assert_eq!(resp.status, 200);
    assert!(server.stop().graceful);
}

/// A raw connection's `closing` resolves at its age, between units of
/// work, as at a drain (B20): an idle line connection closes.
pub fn b23_a_raw_connection_closes_between_units_at_its_age<R: TestRuntime>() {
    use std::io::{BufRead, BufReader};
    let server = R::start_lines(Options {
        max_age: Some(AGE),
        ..Options::default()
    });
    let mut lines = Conn::open(server.addr);
    lines.send(b"one\n");
    let mut echoed = String::new();
    BufReader::new(&lines.stream)
        .read_line(&mut echoed)
        .unwrap();
    assert_eq!(echoed, "one\n");
    assert_eq!(lines.end().0, End::Eof, "closed at its age, between lines");
    assert_eq!(server.stopper.phase(), Phase::Serving);
    let report = server.stop();
    assert!(report.graceful, "{report:?}");
}

/// The ages' timer task runs from the start of serving; it ends with the
/// stop, as every task of the server does (B19).
pub fn b23_the_age_timer_ends_with_the_stop<R: TestRuntime>() {
    let server = R::start(Options {
        max_age: Some(Duration::from_secs(60)),
        ..Options::default()
    });
    let mut conn = Conn::open(server.addr);
    conn.get("/");
    assert_eq!(conn.response().expect("served").status, 200);
    assert!(server.control.any_task_left(), "serving, its tasks run");
    assert!(server.stop().graceful);
    crate::wait::until("every task of the server ended", || {
        !server.control.any_task_left()
    });
}

/// An HTTP/2 client that never answers the PING of its age's GOAWAY keeps
/// its connection open; at the stop the GOAWAY timeout closes it (B7),
/// though its driver already had an order (the age's) and nothing else
/// wakes it (B21).
pub fn b23_an_aged_connection_still_hears_the_drain<R: TestRuntime>() {
    let server = R::start(Options {
        max_age: Some(AGE),
        goaway_timeout: Some(Duration::from_millis(200)),
        ..Options::default()
    });
    let mut h2 = RawH2::open(server.addr);
    h2.get(1, "/");
    assert!(matches!(h2.response(1, false), StreamEnd::Complete(_)));
    h2.until(false, "the age's GOAWAY", |f| f.kind == GOAWAY);
    assert_eq!(server.stopper.counts().open, 1, "left open by its client");
    let report = server.stop();
    assert!(report.graceful, "{report:?}");
    assert!(h2.until_closed(false), "closed with a FIN");
}
