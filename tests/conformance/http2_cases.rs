//! HTTP/2 work the client has not taken yet, and answers that look like
//! another protocol's: the drain waits for the one and is not misled by the
//! other (B5, B7, B9).

use std::time::{Duration, Instant};

use crate::h2_raw::{RawH2, StreamEnd, GOAWAY};
use crate::runtimes::{Options, TestRuntime, TestServer};
use crate::wait::{block_on, until};

const MS: Duration = Duration::from_millis(1);

/// A GOAWAY timeout of 100 ms, so that waits past it are short.
fn short_goaway(grace: Option<Duration>) -> Options {
    Options {
        goaway_timeout: Some(100 * MS),
        grace,
        ..Options::default()
    }
}

/// Asks for 32 MiB in one frame on stream 1, and waits until its body ended
/// in the server's hands (long before the client can have it).
fn ask_for_32_mib(server: &TestServer, h2: &mut RawH2) {
    h2.get(1, "/big-at-once");
    until("the body ended in the server's hands", || {
        let counts = server.stopper.counts();
        counts.open == 1 && counts.requests_in_flight == 0
    });
}

/// Reads stream 1's whole body, then the connection to its close.
fn take_32_mib_then_the_close(h2: &mut RawH2) {
    match h2.response(1, true) {
        StreamEnd::Complete(body) => assert_eq!(body.len(), 32 << 20, "the whole body"),
        StreamEnd::Cut => panic!("the response was cut"),
    }
    assert!(h2.until_closed(true), "closed after the response");
}

/// A response whose body ended in the server's hands long before the
/// client had it: its bytes wait in the socket and in HTTP/2's send queue.
/// With no grace, the drain waits for the client to take it all, past the
/// GOAWAY timeout (B5, B9).
pub fn b5_an_http2_response_queued_for_a_slow_client_is_delivered_whole<R: TestRuntime>() {
    let server = R::start(short_goaway(None));
    let mut h2 = RawH2::open_with_large_windows(server.addr);
    ask_for_32_mib(&server, &mut h2);
    let stopping = server.stopper.stop();
    // Well past the GOAWAY timeout before the client reads anything.
    std::thread::sleep(500 * MS);
    take_32_mib_then_the_close(&mut h2);
    let report = block_on(stopping);
    assert!(report.graceful, "{report:?}");
    // Its request ended before the stop; its output was the work.
    assert_eq!(
        (report.closed_after_work, report.force_closed),
        (1, 0),
        "{report:?}"
    );
}

/// A response waiting in the server's HTTP/2 send queue for the client's
/// flow-control window: work the client is owed, though its body ended in
/// the server's hands and no byte waits on the socket. With no grace the
/// drain waits for the client to open its window and take it all, well past
/// the GOAWAY timeout (B5, B9), instead of closing the connection as quiet.
pub fn b5_an_http2_response_waiting_for_the_clients_window_is_delivered_whole<R: TestRuntime>() {
    let server = R::start(short_goaway(None));
    let mut h2 = RawH2::open(server.addr);
    ask_for_32_mib(&server, &mut h2);
    let stopping = server.stopper.stop();
    std::thread::sleep(500 * MS);
    assert!(
        server.stopper.report().is_none(),
        "the stop waits for the response"
    );
    h2.open_windows(1);
    take_32_mib_then_the_close(&mut h2);
    let report = block_on(stopping);
    assert!(report.graceful, "{report:?}");
    assert_eq!(
        (report.closed_after_work, report.force_closed),
        (1, 0),
        "{report:?}"
    );
}

/// The same response, to a client that never opens its window: cut at the
/// grace, and the stop is not graceful (B9, B11).
pub fn b9_an_http2_response_the_client_never_lets_through_is_forced_at_the_grace<R: TestRuntime>() {
    let server = R::start(short_goaway(Some(500 * MS)));
    let mut h2 = RawH2::open(server.addr);
    ask_for_32_mib(&server, &mut h2);
    let report = server.stop();
    assert!(!report.graceful, "{report:?}");
    assert_eq!(report.force_closed, 1, "{report:?}");
    assert!(report.elapsed >= 500 * MS, "{report:?}");
}

/// A handler that answers 101 on HTTP/2, where there is no upgrade: the
/// stream ends as any other, and the connection still gets its GOAWAY and
/// closes (B7), instead of being held as an upgraded one (B14).
pub fn b7_a_101_answer_on_http2_does_not_hold_the_connection<R: TestRuntime>() {
    let server = R::start(Options::default());
    let mut h2 = RawH2::open(server.addr);
    h2.get(1, "/upgrade");
    let _ = h2.response(1, true);
    until("the stream ended", || {
        server.stopper.counts().requests_in_flight == 0
    });
    let stopping = server.stopper.stop();
    let closed = h2.until_closed(true);
    let got_goaway = h2.saw(GOAWAY);
    drop(h2);
    let report = block_on(stopping);
    assert!(got_goaway, "a GOAWAY");
    assert!(closed, "the server closed the connection");
    assert!(report.graceful, "{report:?}");
}

/// An HTTP/2 `CONNECT` tunnel that ended before the stop leaves nothing in
/// flight: its connection is quiet, and a client that keeps it open without
/// answering the GOAWAY's PING is closed after the GOAWAY timeout (B7, B14).
pub fn b7_an_http2_tunnel_that_ended_does_not_hold_the_stop<R: TestRuntime>() {
    let server = R::start(Options::default());
    let mut h2 = RawH2::open(server.addr);
    h2.connect(1);
    h2.data(1, b"ping", false);
    assert_eq!(h2.data_on(1, true), b"ping", "the tunnel echoes");
    h2.data(1, b"", true);
    assert!(
        matches!(h2.response(1, true), StreamEnd::Complete(_)),
        "the tunnel ends both ways"
    );
    let stopping = server.stopper.stop();
    let started = Instant::now();
    assert!(h2.until_closed(false), "closed with a FIN");
    assert!(h2.saw(GOAWAY), "a GOAWAY before the close");
    assert!(started.elapsed() < Duration::from_secs(5));
    let report = block_on(stopping);
    assert!(report.graceful, "{report:?}");
}

/// A client that stops inside a HEADERS frame (its 9-byte header sent, its
/// payload never) opens no stream: h2 has none, and the connection holds the
/// stop no longer than any quiet one (B7).
pub fn b7_a_client_stalled_inside_a_headers_frame_does_not_hold_the_stop<R: TestRuntime>() {
    use std::io::Write;
    let server = R::start(short_goaway(None));
    let mut h2 = RawH2::open(server.addr);
    h2.get(1, "/");
    assert_eq!(h2.response(1, true), StreamEnd::Complete(b"hello".to_vec()));
    // HEADERS, 100 bytes long, END_HEADERS, stream 3: the header alone.
    h2.stream
        .write_all(&[0, 0, 100, 0x1, 0x4, 0, 0, 0, 3])
        .expect("write");
    std::thread::sleep(50 * MS);
    let stopping = server.stopper.stop();
    let started = Instant::now();
    assert!(h2.until_closed(false), "closed with a FIN");
    assert!(started.elapsed() < Duration::from_secs(5));
    block_on(stopping);
}

/// A client that sends a RST_STREAM frame's 9-byte header and no more has
/// not reset its stream yet (h2 acts on whole frames): the response still
/// waiting for its window is owed, and the stop waits (B5). Once the reset
/// is whole, nothing is owed, and the stop ends.
pub fn b5_a_reset_not_yet_whole_leaves_the_response_owed<R: TestRuntime>() {
    use std::io::Write;
    let server = R::start(short_goaway(None));
    let mut h2 = RawH2::open(server.addr);
    ask_for_32_mib(&server, &mut h2);
    // RST_STREAM, 4 bytes long, stream 1: the header alone.
    h2.stream
        .write_all(&[0, 0, 4, 0x3, 0, 0, 0, 0, 1])
        .expect("write");
    std::thread::sleep(50 * MS);
    let stopping = server.stopper.stop();
    std::thread::sleep(500 * MS);
    assert!(
        server.stopper.report().is_none(),
        "the stop waits for the response"
    );
    h2.stream.write_all(&[0, 0, 0, 0x8]).expect("write");
    assert!(h2.until_closed(true), "closed once the reset is whole");
    let report = block_on(stopping);
    assert!(report.graceful, "{report:?}");
}
