//! B20: a line-echo protocol served through `Tracker::track_raw`, the same
//! on every runtime: each line is a unit of work; at the stop the line in
//! progress is finished, idle connections close. The loops look at
//! `closing` before the socket, the order that would lose a line waiting
//! unread if `closing` resolved then.

use futures_lite::future;
use futures_lite::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use stoppable::RawConn;

/// Echoes lines on a futures-io stream (smol, async-std).
pub async fn echo_lines<S: AsyncRead + AsyncWrite + Unpin>(conn: RawConn<S>) {
    let handle = conn.handle();
    let mut reader = BufReader::new(conn);
    let mut line = Vec::new();
    loop {
        // The drain, or the first byte of a line.
        let has_bytes = async {
            reader
                .fill_buf()
                .await
                .map(|b| !b.is_empty())
                .unwrap_or(false)
        };
        let closing = async {
            handle.closing().await;
            false
        };
        if !future::or(closing, has_bytes).await {
            return;
        }
        let _work = handle.work();
        line.clear();
        if !matches!(reader.read_until(b'\n', &mut line).await, Ok(n) if n > 0) {
            return;
        }
        if reader.get_mut().write_all(&line).await.is_err() {
            return;
        }
    }
}

/// Echoes lines on a tokio stream.
pub async fn echo_lines_tokio(conn: RawConn<tokio::net::TcpStream>) {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let handle = conn.handle();
    let mut reader = tokio::io::BufReader::new(conn);
    let mut line = Vec::new();
    loop {
        tokio::select! {
            biased;
            () = handle.closing() => return,
            buffered = reader.fill_buf() => match buffered {
                Ok([]) | Err(_) => return,
                Ok(_) => {}
            },
        }
        let _work = handle.work();
        line.clear();
        if !matches!(reader.read_until(b'\n', &mut line).await, Ok(n) if n > 0) {
            return;
        }
        if reader.get_mut().write_all(&line).await.is_err() {
            return;
        }
    }
}
