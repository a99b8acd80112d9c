//! A stop as its clients see it: how many connections are still open, from
//! the signal to the last EOF, for idle connections and for a loaded
//! server; drawn as SVG beside the peer and the floor.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::report::StopRow;
use super::svg::{self, Series};
use crate::http1::{read_response, Response};

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: bench\r\n\r\n";

/// Each connection asks one request after another until the server says
/// `Connection: close` or closes, for at most `limit` (a response that has
/// not come by then ends the connection's loop too); the instant each
/// connection's loop ended.
pub fn load_until_closed(conns: Vec<TcpStream>, limit: Duration) -> Vec<JoinHandle<Instant>> {
    let deadline = Instant::now() + limit;
    conns
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while Instant::now() < deadline {
                    if stream.write_all(REQUEST).await.is_err() {
                        break;
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    let answered =
                        tokio::time::timeout(left, read_response(&mut stream, &mut buf)).await;
                    if !matches!(answered, Ok(Response::Answered { close: false })) {
                        break;
                    }
                }
                Instant::now()
            })
        })
        .collect()
}

/// The picture of some stops: one line per row, the open connections
/// against the milliseconds since the signal.
pub fn picture(title: &str, rows: &[&StopRow]) -> String {
    let series: Vec<Series<Vec<(f64, f64)>>> = rows
        .iter()
        .map(|row| Series {
            name: row.who.clone(),
            values: svg::open_over_time(row.n, row.closes_ms.clone()),
        })
        .collect();
    svg::steps(
        title,
        "milliseconds since the signal",
        "connections open (as the clients see them)",
        &series,
    )
}
