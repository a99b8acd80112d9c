//! The behaviours over TLS (rustls on every runtime): a handshake under way
//! at the stop is a fresh connection with the first-request window (B4),
//! the close is TLS's (close_notify, then FIN), and a failed handshake is
//! just a closed connection (B8).

use std::io::Read;
use std::time::Duration;

use crate::client::{Conn, End};
use crate::http2;
use crate::runtimes::{Options, TestRuntime};
use crate::tls::{self, Handshake};
use crate::wait::{block_on, until};

fn tls(options: Options) -> Options {
    Options {
        tls: true,
        ..options
    }
}

fn window(window: Duration) -> Options {
    tls(Options {
        window: Some(window),
        ..Options::default()
    })
}

pub fn tls_b3_idle_connection_gets_close_notify_at_stop<R: TestRuntime>() {
    let server = R::start(tls(Options::default()));
    let mut conn = tls::open(server.addr);
    conn.get("/");
    let resp = conn.response().expect("served over TLS");
    assert_eq!((resp.status, resp.text().as_str()), (200, "hello"));
    assert!(!resp.says_close(), "keep-alive before the stop");
    let report = server.stop();
    // rustls reads Ok(0) only after a close_notify; a bare FIN is an error.
    assert_eq!(conn.end().0, End::Eof);
    assert!(report.graceful);
    assert_eq!((report.closed_idle, report.force_closed), (1, 0));
}

pub fn tls_b4_handshake_under_way_at_stop_is_served<R: TestRuntime>() {
    let server = R::start(window(Duration::from_secs(5)));
    let handshake = Handshake::begin(server.addr);
    until("the connection is tracked", || {
        server.stopper.counts().open == 1
    });
    let stopping = server.stopper.stop();
    let mut conn = handshake
        .finish()
        .expect("a handshake under way finishes after the stop");
    conn.get("/");
    let resp = conn
        .response()
        .expect("its first request, inside the window, is served");
    assert_eq!(resp.status, 200);
    assert!(resp.says_close());
    assert_eq!(conn.end().0, End::Eof);
    let report = block_on(stopping);
    assert!(report.graceful);
    assert_eq!(
        (report.closed_after_work, report.requests_completed),
        (1, 1)
    );
}

pub fn tls_b3_unfinished_handshake_closes_after_window<R: TestRuntime>() {
    let server = R::start(window(Duration::from_millis(100)));
    let mut handshake = Handshake::begin(server.addr);
    until("the connection is tracked", || {
        server.stopper.counts().open == 1
    });
    let report = server.stop();
    assert!(report.graceful);
    assert_eq!((report.closed_idle, report.force_closed), (1, 0));
    // The server's hello, then a FIN: the socket is closed, not reset.
    let mut rest = Vec::new();
    handshake
        .tcp
        .read_to_end(&mut rest)
        .expect("a FIN ends the unfinished handshake");
}

pub fn tls_b8_failed_handshake_keeps_counts_exact<R: TestRuntime>() {
    let server = R::start(tls(Options::default()));
    let mut plain = Conn::open(server.addr);
    plain.get("/");
    until("the failed handshake is closed", || {
        server.stopper.counts().open == 0
    });
    let mut conn = tls::open(server.addr);
    conn.get("/");
    assert_eq!(conn.response().expect("served").status, 200);
    let report = server.stop();
    assert!(report.graceful);
    assert_eq!((report.closed_idle, report.force_closed), (1, 0));
}

pub fn tls_b7_http2_by_alpn_stream_completes_after_goaway<R: TestRuntime>() {
    use http_body_util::BodyExt;
    let server = R::start(tls(Options::default()));
    let client = crate::client::tokio_runtime();
    let addr = server.addr;
    let stopper = server.stopper.clone();
    let (alpn, body) = client.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(tls::client_config(&[b"h2", b"http/1.1"]));
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let stream = connector.connect(name, tcp).await.expect("TLS handshake");
        let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let (mut send, _conn) = http2::connect(stream).await;
        let pending = send.send_request(http2::get(
            format!("localhost:{}", addr.port()),
            "/sleep/200",
        ));
        let stop = tokio::task::spawn_blocking(move || {
            until("the stream is in flight", || {
                stopper.counts().requests_in_flight == 1
            });
            stopper.request_stop();
        });
        let resp = pending.await.expect("the open stream completes");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        stop.await.unwrap();
        (alpn, body)
    });
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "ALPN picks HTTP/2");
    assert_eq!(&body[..], b"slept 200");
    let report = server.finished();
    assert!(report.graceful);
    assert_eq!(
        (report.closed_after_work, report.requests_completed),
        (1, 1)
    );
}
