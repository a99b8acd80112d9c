//! The stop's timing cases on virtual time: a whole `stoppable::Server`
//! (accept loop, listener drain, connection drivers, timer task, hyper with
//! tokio's timer) on tokio's paused clock, its clients in memory.
//!
//! Every deadline is met exactly (to the timer's 1 ms tick) and the tests
//! take no wall-clock time: tokio moves the clock to the next timer once
//! every task waits. In-memory connections (`tokio::io::duplex`, in the
//! spirit of quinn's `Pair`) keep the kernel out: nothing arrives late
//! because a loaded machine deferred a loopback packet. They have no
//! socket ([`stoppable::WithoutSocket`]), so the stop reaches them through
//! their drivers; the socket paths (peeks, shutdowns) are the conformance
//! suite's, on real loopback sockets.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use stoppable::{Accept, Accepted, Options, Phase, Report, Runtime, Stopper, WithoutSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// tokio's timer rounds a deadline up to its next millisecond.
const TICK: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

/// A listener whose connections are made in memory.
struct MemListener(mpsc::UnboundedReceiver<DuplexStream>);

impl Accept for MemListener {
    type Io = WithoutSocket<TokioIo<DuplexStream>>;

    fn poll_accept(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<Accepted<Self::Io>>> {
        match self.0.poll_recv(cx) {
            std::task::Poll::Ready(Some(server_end)) => std::task::Poll::Ready(Ok(Accepted {
                io: WithoutSocket(TokioIo::new(server_end)),
                remote_addr: None,
            })),
            // Every client is gone: nothing more will come.
            _ => std::task::Poll::Pending,
        }
    }
}

/// A server on the paused clock, and the way to connect to it.
struct Pair {
    connect: mpsc::UnboundedSender<DuplexStream>,
    stopper: Stopper,
}

impl Pair {
    /// Serves `/` (hello), `/hang` (never answers) and `/sleep/<ms>`.
    fn start(options: Options) -> Pair {
        let (connect, accepted) = mpsc::unbounded_channel();
        let app = service_fn(|req: Request<Incoming>| async move {
            let path = req.uri().path().to_owned();
            if path == "/hang" {
                std::future::pending::<()>().await;
            }
            if let Some(ms) = path.strip_prefix("/sleep/") {
                let ms = ms.parse().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
        });
        let server = stoppable::Server::new(
            MemListener(accepted),
            app,
            stoppable_tokio::Tokio::current(),
            stoppable_tokio::builder(),
        )
        .options(options);
        let stopper = server.stopper();
        tokio::spawn(server);
        Pair { connect, stopper }
    }

    /// A new connection, once the server has accepted it.
    async fn connect(&self) -> DuplexStream {
        let (client, server_end) = tokio::io::duplex(64 * 1024);
        let before = self.stopper.counts().open;
        self.connect.send(server_end).expect("the server listens");
        self.settle(|| self.stopper.counts().open > before).await;
        client
    }

    /// A new connection whose request for `path` is in flight.
    async fn in_flight(&self, path: &str) -> DuplexStream {
        let mut client = self.connect().await;
        let before = self.stopper.counts().requests_in_flight;
        get(&mut client, path).await;
        self.settle(|| self.stopper.counts().requests_in_flight > before)
            .await;
        client
    }

    /// Lets the server's tasks run, without moving the clock, until `done`.
    async fn settle(&self, done: impl Fn() -> bool) {
        for _ in 0..10_000 {
            if done() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the server did not get there without the clock moving");
    }
}

/// Asks for `path` on `client`.
async fn get(client: &mut DuplexStream, path: &str) {
    let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    client.write_all(head.as_bytes()).await.unwrap();
}

/// Reads until the server closes the connection: what it sent, and when.
async fn read_to_eof(client: &mut DuplexStream) -> (Vec<u8>, Instant) {
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.expect("a clean close");
    (got, Instant::now())
}

/// Reads one HTTP/1.1 response to a request for `/`.
async fn read_hello(client: &mut DuplexStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"hello") {
        let n = client.read(&mut buf).await.expect("a response");
        assert!(n > 0, "closed before the response: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).expect("text")
}

/// Fails a case that would otherwise wait forever (a connection left
/// open, a stop that never ends): on the paused clock, once every task
/// waits and no timer is left, this one fires at once.
async fn bounded(case: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(2 * 3600 * S, case)
        .await
        .expect("the case ended");
}

/// `at` is `after` past `start`, to the timer's tick.
#[track_caller]
fn assert_at(start: Instant, at: Instant, after: Duration, what: &str) {
    let elapsed = at - start;
    assert!(
        elapsed >= after && elapsed <= after + TICK,
        "{what}: after {elapsed:?}, not {after:?}"
    );
}

/// B8: a client that sent half a head gets no answer, is cut exactly
/// `after` from `start`, and the stop reports its head as cut work.
async fn assert_half_head_cut(
    client: &mut DuplexStream,
    start: Instant,
    after: Duration,
    stopping: tokio::task::JoinHandle<Report>,
) {
    let (sent, cut) = read_to_eof(client).await;
    assert!(sent.is_empty(), "no answer to half a head: {sent:?}");
    assert_at(start, cut, after, "the cut");
    let report = stopping.await.unwrap();
    assert!(!report.graceful, "a head was cut: {report:?}");
    assert_eq!(report.force_closed, 1);
}

/// The server's clock is tokio's: on a paused runtime it moves when, and
/// only when, tokio's does.
#[tokio::test(start_paused = true)]
async fn the_servers_clock_is_tokios_clock() {
    let tokio = stoppable_tokio::Tokio::current();
    let before = tokio.now();
    tokio::time::advance(3600 * S).await;
    assert_eq!(tokio.now() - before, 3600 * S);
}

/// B4 / B3: a connection accepted before the stop gets the rest of its
/// first-request window, counted from its accept: sending nothing, it is
/// closed exactly when the window ends; sending its request just before,
/// it is served.
#[tokio::test(start_paused = true)]
async fn b4_the_first_request_window_ends_exactly_on_time() {
    bounded(async {
        let pair = Pair::start(Options::default().first_request_window(5 * S));
        let mut silent = pair.connect().await;
        let mut late = pair.connect().await;
        tokio::time::sleep(S).await;
        let start = Instant::now();
        let stopping = tokio::spawn(pair.stopper.stop());
        let asks = async {
            tokio::time::sleep(4 * S - 100 * TICK).await;
            get(&mut late, "/").await;
            read_hello(&mut late).await
        };
        let (answer, (sent, closed)) = tokio::join!(asks, read_to_eof(&mut silent));
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("connection: close"), "B6: {answer}");
        assert!(sent.is_empty());
        assert_at(start, closed, 4 * S, "the silent connection's close");
        let report = stopping.await.unwrap();
        assert!(report.graceful, "{report:?}");
        assert_eq!((report.closed_idle, report.closed_after_work), (1, 1));
        assert_eq!(report.elapsed, 4 * S);
    })
    .await;
}

/// B8: a request head still arriving at the stop is cut exactly one
/// header-read timeout after the drain's start, and the stop is not
/// graceful.
#[tokio::test(start_paused = true)]
async fn b8_a_head_still_arriving_is_cut_exactly_at_the_header_read_timeout() {
    bounded(async {
        let pair = Pair::start(Options::default().header_read_timeout(3 * S));
        let mut slow = pair.connect().await;
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        tokio::time::sleep(S).await;
        let start = Instant::now();
        let stopping = tokio::spawn(pair.stopper.stop());
        assert_half_head_cut(&mut slow, start, 3 * S, stopping).await;
    })
    .await;
}

/// B8: a head begun during the drain has the header-read timeout from its
/// first byte, not from the drain's start: a fresh connection sends half a
/// head 2 s into its window, and is cut 3 s later.
#[tokio::test(start_paused = true)]
async fn b8_a_head_begun_during_the_drain_is_cut_a_timeout_after_its_first_byte() {
    bounded(async {
        let pair = Pair::start(
            Options::default()
                .first_request_window(4 * S)
                .header_read_timeout(3 * S),
        );
        let mut fresh = pair.connect().await;
        let start = Instant::now();
        let stopping = tokio::spawn(pair.stopper.stop());
        tokio::time::sleep(2 * S).await;
        fresh
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        assert_half_head_cut(&mut fresh, start, 5 * S, stopping).await;
    })
    .await;
}

/// B9: at the grace deadline (an hour, on virtual time) a request still
/// running is force-closed, the report comes exactly then, and it is not
/// graceful.
#[tokio::test(start_paused = true)]
async fn b9_the_grace_ends_exactly_on_time() {
    bounded(async {
        let pair = Pair::start(Options::default());
        let mut hung = pair.in_flight("/hang").await;
        // The grace counts from the drain's start, not from the request.
        tokio::time::sleep(10 * S).await;
        let start = Instant::now();
        let stopping = tokio::spawn(pair.stopper.stop_within(3600 * S));
        let (sent, closed) = read_to_eof(&mut hung).await;
        assert!(sent.is_empty(), "{sent:?}");
        assert_at(start, closed, 3600 * S, "the force-close");
        let report = stopping.await.unwrap();
        assert_at(start, Instant::now(), 3600 * S, "the report");
        assert!(!report.graceful);
        assert_eq!(report.force_closed, 1);
        assert_eq!(report.elapsed, 3600 * S);
    })
    .await;
}

/// B5 / B10: a request that ends before the grace is answered, and the
/// stop completes the moment it does, not at the deadline.
#[tokio::test(start_paused = true)]
async fn b10_the_stop_ends_with_the_last_request_not_at_the_grace() {
    bounded(async {
        let pair = Pair::start(Options::default());
        let mut busy = pair.in_flight("/sleep/2500").await;
        // The request has 1.5 s left when the stop comes.
        tokio::time::sleep(S).await;
        let start = Instant::now();
        let report = pair.stopper.stop_within(60 * S).await;
        assert_at(start, Instant::now(), 1500 * TICK, "the report");
        assert!(report.graceful, "{report:?}");
        assert_eq!(report.closed_after_work, 1);
        let answer = read_hello(&mut busy).await;
        assert!(answer.contains("connection: close"), "B6: {answer}");
    })
    .await;
}

/// B16: during the readiness delay the server accepts and serves as usual;
/// the drain begins exactly when it ends, and closes an idle connection at
/// once (B3).
#[tokio::test(start_paused = true)]
async fn b16_the_readiness_delay_ends_exactly_on_time() {
    bounded(async {
        let pair = Pair::start(Options::default().drain_delay(4 * S));
        let mut idle = pair.connect().await;
        get(&mut idle, "/").await;
        read_hello(&mut idle).await;
        // The delay counts from the stop, not from the last request.
        tokio::time::sleep(10 * S).await;
        let start = Instant::now();
        let stopping = tokio::spawn(pair.stopper.stop());
        pair.settle(|| pair.stopper.phase() == Phase::Delaying)
            .await;
        tokio::time::sleep(4 * S - 100 * TICK).await;
        assert_eq!(pair.stopper.phase(), Phase::Delaying);
        let mut newcomer = pair.connect().await;
        get(&mut newcomer, "/").await;
        let answer = read_hello(&mut newcomer).await;
        assert!(!answer.contains("connection: close"), "as usual: {answer}");
        let (_, closed) = read_to_eof(&mut idle).await;
        assert_at(start, closed, 4 * S, "the idle connection's close");
        let report = stopping.await.unwrap();
        assert!(report.graceful, "{report:?}");
        assert_eq!(report.elapsed, 4 * S);
    })
    .await;
}

/// HTTP/2 frame types the client reads.
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;

/// One frame's header, its payload skipped: (type, flags, stream); `None`
/// when the server closed the connection between frames.
async fn read_frame(client: &mut DuplexStream) -> Option<(u8, u8, u32)> {
    let mut head = [0u8; 9];
    if client.read(&mut head[..1]).await.expect("no reset") == 0 {
        return None;
    }
    client
        .read_exact(&mut head[1..])
        .await
        .expect("a whole frame");
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    client
        .read_exact(&mut payload)
        .await
        .expect("a whole frame");
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    Some((head[3], head[4], stream))
}

/// B7: an HTTP/2 client that never answers the GOAWAY's PING, nor closes,
/// is closed exactly one GOAWAY timeout after the drain's start.
#[tokio::test(start_paused = true)]
async fn b7_an_http2_client_that_never_answers_is_closed_at_the_goaway_timeout() {
    bounded(async {
        let pair = Pair::start(Options::default().goaway_timeout(2 * S));
        let mut h2 = pair.connect().await;
        // The preface, empty SETTINGS, then GET / on stream 1: `:method GET`,
        // `:path /`, `:scheme http` from HPACK's static table, `:authority x`.
        let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        hello.extend_from_slice(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);
        let block = [0x82, 0x84, 0x86, 0x41, 0x01, b'x'];
        hello.extend_from_slice(&[0, 0, block.len() as u8, HEADERS, 0x5, 0, 0, 0, 1]);
        hello.extend_from_slice(&block);
        h2.write_all(&hello).await.unwrap();
        // Up to the end of the response; nothing is ever acknowledged.
        loop {
            let (kind, flags, stream) = read_frame(&mut h2).await.expect("the response");
            if stream == 1 && matches!(kind, DATA | HEADERS) && flags & END_STREAM != 0 {
                break;
            }
        }
        // The GOAWAY timeout counts from the drain's start, not from the
        // last stream.
        tokio::time::sleep(10 * S).await;
        let start = Instant::now();
        let stopping = tokio::spawn(pair.stopper.stop());
        let mut seen = Vec::new();
        while let Some((kind, _, _)) = read_frame(&mut h2).await {
            seen.push(kind);
        }
        assert_at(start, Instant::now(), 2 * S, "the close");
        let at = |kind| seen.iter().position(|k| *k == kind);
        assert!(at(GOAWAY).is_some(), "a GOAWAY: {seen:?}");
        assert!(
            at(GOAWAY) < at(PING),
            "then its PING, never answered: {seen:?}"
        );
        let report = stopping.await.unwrap();
        assert!(report.graceful, "no work was cut: {report:?}");
        assert_eq!(report.elapsed, 2 * S);
    })
    .await;
}
