//! While serving, as a user of axum or Go's `http.Server` expects: each
//! connection's service knows its peer (a make-service, axum's `Router`
//! with `ConnectInfo` straight to `serve`), connection errors reach a hook
//! with the peer's address, and slow or silent clients are closed by
//! timeouts (hyper's header-read timeout, which also ends idle keep-alive
//! connections; the handshake timeout).

use std::time::Duration;

use crate::client::{Conn, End};
use crate::runtimes::{Options, TestRuntime, TestServer};
use crate::wait::until;

/// Asks for `path` on a connection of its own; the body.
fn fetch<R: TestRuntime>(server: &TestServer, path: &str) -> String {
    let mut conn = Conn::open(server.addr);
    conn.get(path);
    conn.response().expect("answered").text()
}

/// The connection errors the server's hook was told, one `stage peer` each.
fn errors<R: TestRuntime>(server: &TestServer) -> Vec<String> {
    let text = fetch::<R>(server, "/errors");
    text.lines().map(str::to_owned).collect()
}

/// The make-service sees each connection's peer: the address the client
/// connected from.
pub fn a_service_learns_its_connections_peer<R: TestRuntime>() {
    let server = R::start(Options::default());
    let mut conn = Conn::open(server.addr);
    conn.get("/peer");
    let peer = conn.response().expect("answered").text();
    assert_eq!(peer, conn.stream.local_addr().unwrap().to_string());
    let report = server.stop();
    assert!(report.graceful, "{report:?}");
}

/// An axum `Router`, given straight to `serve` as
/// `into_make_service_with_connect_info::<SocketAddr>()`: `ConnectInfo`
/// holds the peer, and the stop is graceful as ever.
pub fn an_axum_router_with_connect_info_is_served<R: TestRuntime>() {
    let server = R::start(Options {
        axum: true,
        ..Options::default()
    });
    let mut conn = Conn::open(server.addr);
    conn.get("/peer");
    let peer = conn.response().expect("answered").text();
    assert_eq!(peer, conn.stream.local_addr().unwrap().to_string());
    conn.get("/");
    assert_eq!(conn.response().expect("answered").text(), "hello");
    let report = server.stop();
    assert!(report.graceful, "{report:?}");
    assert_eq!(report.closed_idle, 1, "{report:?}");
    assert_eq!(conn.end().0, End::Eof);
}

/// A malformed request gets its 400, and its error reaches the hook with
/// the peer's address.
pub fn a_connection_error_reaches_the_hook_with_the_peer<R: TestRuntime>() {
    let server = R::start(Options::default());
    let mut bad = Conn::open(server.addr);
    let peer = bad.stream.local_addr().unwrap();
    bad.send(b"NOT HTTP AT ALL\r\n\r\n");
    assert_eq!(bad.response().expect("answered").status, 400);
    until("the error is told", || {
        errors::<R>(&server).contains(&format!("Http {peer}"))
    });
    let report = server.stop();
    assert!(report.graceful, "{report:?}");
}

fn serving_timeout() -> Options {
    Options {
        serving_header_timeout: Some(Duration::from_millis(300)),
        ..Options::default()
    }
}

/// While serving (no stop), a head that never ends is cut off by hyper's
/// header-read timeout: a slowloris client holds nothing.
pub fn a_head_that_never_ends_is_closed_while_serving<R: TestRuntime>() {
    let server = R::start(serving_timeout());
    let mut slow = Conn::open(server.addr);
    let peer = slow.stream.local_addr().unwrap();
    slow.send(b"GET / HTTP/1.1\r\nHost: x\r\n");
    assert!(
        matches!(slow.end().0, End::Eof | End::Reset | End::Data(_)),
        "closed"
    );
    until("the connection is gone", || {
        server.stopper.counts().open == 0
    });
    assert!(errors::<R>(&server).contains(&format!("Http {peer}")));
    let report = server.stop();
    assert!(report.graceful, "{report:?}");
}

/// While serving, a keep-alive connection idle for longer than the
/// header-read timeout is closed, after its answered request, and that is
/// not told as an error.
pub fn an_idle_keep_alive_connection_is_closed_while_serving<R: TestRuntime>() {
    let server = R::start(serving_timeout());
    let mut conn = Conn::open(server.addr);
    let peer = conn.stream.local_addr().unwrap().to_string();
    conn.get("/");
    assert_eq!(conn.response().expect("answered").status, 200);
    assert_eq!(conn.end().0, End::Eof, "closed with a FIN");
    until("the connection is gone", || {
        server.stopper.counts().open == 0
    });
    // An idle connection's end is no error: the hook hears nothing of it.
    let told = errors::<R>(&server);
    assert!(!told.iter().any(|e| e.ends_with(&peer)), "{told:?}");
    until("the asking connection is gone too", || {
        server.stopper.counts().open == 0
    });
    let report = server.stop();
    assert!(report.graceful, "{report:?}");
    assert_eq!(
        report.closed_idle, 0,
        "nothing left for the stop: {report:?}"
    );
}

/// A TLS client that connects and never sends its ClientHello is closed
/// at the handshake timeout, and the error reaches the hook with its peer.
pub fn tls_a_silent_handshake_is_closed_at_the_handshake_timeout<R: TestRuntime>() {
    let server = R::start(Options {
        tls: true,
        handshake_timeout: Some(Duration::from_millis(300)),
        ..Options::default()
    });
    a_silent_tls_client_is_closed_and_told(server);
}

/// A TLS client that connects and never sends its ClientHello is closed,
/// and the server's hook hears of it as a handshake error with its peer.
fn a_silent_tls_client_is_closed_and_told(server: TestServer) {
    let mut silent = Conn::open(server.addr);
    let peer = silent.stream.local_addr().unwrap();
    assert!(matches!(silent.end().0, End::Eof | End::Reset), "closed");
    until("the connection is gone", || {
        server.stopper.counts().open == 0
    });
    let mut tls = crate::tls::open(server.addr);
    tls.get("/errors");
    let told = tls.response().expect("answered").text();
    assert!(told.contains(&format!("Handshake {peer}")), "{told}");
    let report = server.stop();
    assert!(report.graceful, "{report:?}");
}

fn first_request_timeout() -> Options {
    Options {
        first_request_timeout: Some(Duration::from_millis(300)),
        ..Options::default()
    }
}

/// While serving, a client that connects and sends nothing is closed at
/// the first-request timeout (hyper's header-read timer has not started:
/// it does not know the protocol yet); that is not told as an error.
pub fn a_silent_connection_is_closed_while_serving<R: TestRuntime>() {
    let server = R::start(first_request_timeout());
    let mut silent = Conn::open(server.addr);
    let peer = silent.stream.local_addr().unwrap().to_string();
    assert_eq!(silent.end().0, End::Eof, "closed with a FIN");
    until("the connection is gone", || {
        server.stopper.counts().open == 0
    });
    let told = errors::<R>(&server);
    assert!(!told.iter().any(|e| e.ends_with(&peer)), "{told:?}");
    let report = server.stop();
    assert!(report.graceful, "{report:?}");
}

/// While serving, a client that stops inside HTTP/2's preface (hyper still
/// waits to know the protocol) is closed at the first-request timeout, by
/// hyper's graceful shutdown (no stream of it can be lost).
pub fn a_half_sent_http2_preface_is_closed_while_serving<R: TestRuntime>() {
    let server = R::start(first_request_timeout());
    let mut half = Conn::open(server.addr);
    half.send(b"PRI * HTTP/2.0\r\n");
    assert!(matches!(half.end().0, End::Eof | End::Reset), "closed");
    until("the connection is gone", || {
        server.stopper.counts().open == 0
    });
    let report = server.stop();
    assert!(report.graceful, "{report:?}");
}

/// A TLS client that finishes its handshake, then says nothing, is closed
/// at the first-request timeout.
pub fn tls_a_client_silent_after_its_handshake_is_closed_while_serving<R: TestRuntime>() {
    let server = R::start(Options {
        tls: true,
        ..first_request_timeout()
    });
    let mut silent = crate::tls::open(server.addr);
    assert!(
        matches!(silent.end().0, End::Eof | End::Reset | End::Data(_)),
        "closed"
    );
    until("the connection is gone", || {
        server.stopper.counts().open == 0
    });
    let report = server.stop();
    assert!(report.graceful, "{report:?}");
}

/// A head cut by hyper's header-read timeout during the readiness delay
/// (the stop began; the drain, which bounds heads itself, not yet) is cut
/// work: the report counts it forced and is not graceful (B11).
pub fn b11_a_head_cut_by_the_servers_timeout_during_the_stop_is_not_graceful<R: TestRuntime>() {
    let server = R::start(Options {
        serving_header_timeout: Some(Duration::from_millis(300)),
        drain_delay: Some(Duration::from_secs(1)),
        ..Options::default()
    });
    let mut slow = Conn::open(server.addr);
    slow.get("/");
    assert_eq!(slow.response().expect("answered").status, 200);
    slow.send(b"GET / HTTP/1.1\r\nHost: x\r\n");
    until("the head is being read", || {
        server.stopper.counts().active == 1
    });
    server.stopper.request_stop();
    assert!(
        matches!(slow.end().0, End::Eof | End::Reset | End::Data(_)),
        "cut"
    );
    let report = server.finished();
    assert!(!report.graceful, "{report:?}");
    assert_eq!(report.force_closed, 1, "{report:?}");
}

/// With no handshake timeout, a TLS client that never sends its
/// ClientHello is still closed at the first-request timeout, which runs
/// from the accept through the handshake.
pub fn tls_a_silent_handshake_is_closed_at_the_first_request_timeout<R: TestRuntime>() {
    let server = R::start(Options {
        tls: true,
        handshake_timeout: Some(Duration::ZERO),
        ..first_request_timeout()
    });
    a_silent_tls_client_is_closed_and_told(server);
}

/// A request whose head ends lines with a bare LF (which hyper accepts)
/// leaves no phantom head behind: at the stop the idle connection closes
/// at once and the report is graceful (B3, B11).
pub fn b3_an_idle_connection_after_an_lf_only_request_closes_at_once<R: TestRuntime>() {
    let server = R::start(Options::default());
    let mut conn = Conn::open(server.addr);
    conn.send(b"GET / HTTP/1.1\nHost: x\n\n");
    assert_eq!(conn.response().expect("answered").status, 200);
    let report = server.stop();
    assert!(report.graceful, "{report:?}");
    assert_eq!(report.closed_idle, 1, "{report:?}");
    assert_eq!(conn.end().0, End::Eof);
}

/// A head whose empty last line comes in a read of its own (a client
/// writing line by line): once answered, the connection is idle, and the
/// stop closes it at once (B3), not as a head still being read.
pub fn b3_an_idle_connection_after_a_head_ended_by_a_lone_empty_line_closes_at_once<
    R: TestRuntime,
>() {
    for last in [&b"\r\n"[..], b"\n"] {
        let server = R::start(Options::default());
        let mut conn = Conn::open(server.addr);
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n");
        // The server reads the lines before the empty one arrives.
        std::thread::sleep(Duration::from_millis(50));
        conn.send(last);
        assert_eq!(conn.response().expect("answered").status, 200);
        let report = server.stop();
        assert!(report.graceful, "{last:?}: {report:?}");
        assert_eq!(report.closed_idle, 1, "{last:?}: {report:?}");
        assert_eq!(conn.end().0, End::Eof);
    }
}
