//! B20 on tokio: any TCP protocol drains. The line-echo server of
//! `examples/line_echo.rs`, built from the same parts, seen by a raw client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use stoppable_tokio::{Options, RawConn, Report, Stopper};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

async fn echo_lines(mut conn: RawConn<tokio::net::TcpStream>) {
    let handle = conn.handle();
    let (reader, mut writer) = conn.split();
    let mut reader = tokio::io::BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        tokio::select! {
            biased;
            buffered = reader.fill_buf() => match buffered {
                Ok([]) | Err(_) => return,
                Ok(_) => {}
            },
            () = handle.closing() => return,
        }
        let _work = handle.work();
        line.clear();
        if !matches!(reader.read_until(b'\n', &mut line).await, Ok(n) if n > 0) {
            return;
        }
        if writer.write_all(&line).await.is_err() {
            return;
        }
    }
}

/// Starts the line server on its own thread: (address, stopper, report).
fn start(options: Options) -> (SocketAddr, Stopper, mpsc::Receiver<Report>) {
    let (setup_tx, setup_rx) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let tracker = stoppable_tokio::tracker(options).unwrap();
            let stopper = tracker.stopper();
            let report = tokio::spawn(tracker.drive());
            setup_tx
                .send((listener.local_addr().unwrap(), stopper.clone()))
                .unwrap();
            let serve = |stream: tokio::net::TcpStream| {
                let socket = stoppable_tokio::raw_socket(&stream);
                if let Some(conn) = tracker.track_raw(stream, socket) {
                    tokio::spawn(echo_lines(conn));
                }
            };
            loop {
                tokio::select! {
                    accepted = listener.accept() => serve(accepted.unwrap().0),
                    () = stopper.draining() => break,
                }
            }
            stoppable_tokio::drain_listener(listener, serve).await;
            tracker.listener_closed();
            done_tx.send(report.await.unwrap()).unwrap();
        })
    });
    let (addr, stopper) = setup_rx.recv().unwrap();
    (addr, stopper, done)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

fn until(mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn b20_line_in_progress_is_finished_and_idle_closes() {
    let (addr, stopper, done) = start(Options::default());
    let mut idle = connect(addr);
    idle.write_all(b"one\n").unwrap();
    let mut echoed = String::new();
    BufReader::new(&idle).read_line(&mut echoed).unwrap();
    assert_eq!(echoed, "one\n");
    let mut busy = connect(addr);
    busy.write_all(b"half a li").unwrap();
    // One idle (its line done), one in the middle of a line.
    until(|| {
        let counts = stopper.counts();
        (counts.idle, counts.active) == (1, 1)
    });
    stopper.request_stop();
    until(|| stopper.is_draining());
    // The idle connection closes at once, with a FIN.
    let mut rest = Vec::new();
    assert_eq!(idle.read_to_end(&mut rest).unwrap(), 0);
    // The line in progress is finished, echoed, then the connection closes.
    busy.write_all(b"ne\n").unwrap();
    let mut reply = String::new();
    busy.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "half a line\n");
    let report = done.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(report.graceful);
    assert_eq!((report.closed_idle, report.closed_after_work), (1, 1));
    assert_eq!(report.requests_completed, 1);
}

#[test]
fn b20_grace_force_closes_an_unfinished_line() {
    let (addr, stopper, done) = start(Options::default().grace(Duration::from_millis(200)));
    let mut stuck = connect(addr);
    stuck.write_all(b"never ends").unwrap();
    until(|| stopper.counts().active == 1);
    stopper.request_stop();
    let report = done.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(!report.graceful);
    assert_eq!(report.force_closed, 1);
    let mut rest = Vec::new();
    assert_eq!(
        stuck.read_to_end(&mut rest).unwrap(),
        0,
        "a FIN, not a reset"
    );
}
