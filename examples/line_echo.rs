//! Any TCP protocol can stop gracefully (B20): a line-based echo server.
//! Each line is a unit of work; at the stop, the line in progress is
//! finished and echoed, idle connections close at once.
//!
//! Run: `cargo run --example line_echo`, then `nc 127.0.0.1 4000` and type;
//! Ctrl-C the server while a line is half typed, then finish the line.

use std::time::Duration;

use stoppable_tokio::{Options, RawConn};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4000".into());
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let tracker = stoppable_tokio::tracker(Options::default().grace(Duration::from_secs(10)))
        .map_err(std::io::Error::other)?;
    let stopper = tracker.stopper();
    let report = tokio::spawn(tracker.drive());
    let signals = stopper.clone();
    tokio::spawn(async move { stoppable_tokio::stop_on_signals(&signals).await });
    let serve = |stream: TcpStream| {
        if let Some(conn) = tracker.track_raw(stream) {
            tokio::spawn(echo_lines(conn));
        }
    };
    loop {
        // The drain first: once it began, the queue is the drain's.
        tokio::select! {
            biased;
            () = stopper.draining() => break,
            accepted = listener.accept() => serve(accepted?.0),
        }
    }
    // B1: what the kernel already queued is served too; the drain then
    // closes the listener and tells the stop.
    let mut queued = tracker.drain_listener(stoppable_tokio::Listener(listener));
    while let Some(accepted) = queued.next().await {
        serve(accepted.io.into_inner());
    }
    let report = report.await.map_err(std::io::Error::other)?;
    println!(
        "graceful: {}, lines echoed during the stop: {}",
        report.graceful, report.requests_completed
    );
    Ok(())
}

/// Echoes lines until the peer leaves or the drain asks to close.
async fn echo_lines(conn: RawConn<TcpStream>) {
    let handle = conn.handle();
    // The reader owns the connection; writes go through it to the stream.
    let mut reader = BufReader::new(conn);
    let mut line = Vec::new();
    loop {
        // The first byte of a line, or the drain: bytes win (B4).
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
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if reader.get_mut().write_all(&line).await.is_err() {
            return;
        }
    }
}
