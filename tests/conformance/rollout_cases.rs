//! B23: during the readiness delay the server can ask its clients to move
//! on (to the new instances a load balancer now sends them to) while it
//! still accepts and serves.

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
