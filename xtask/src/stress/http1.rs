//! The HTTP/1.1 clients of the stress load (raw keep-alive, mixing new
//! connections and reuse) and the short connections of the memory check.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{Run, Tally};
use crate::http1::{read_response, Response};

/// `n` connections, each one request then closed, 50 at a time.
pub async fn short_connections(addr: SocketAddr, n: usize) {
    let tally = Arc::new(Tally::default());
    for _ in 0..n.div_ceil(50) {
        let batch: Vec<_> = (0..50)
            .map(|_| {
                let tally = tally.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 1024];
                    if let Ok(mut stream) = TcpStream::connect(addr).await {
                        let request =
                            b"GET / HTTP/1.1\r\nhost: stress\r\nconnection: close\r\n\r\n";
                        if stream.write_all(request).await.is_ok() {
                            if let Response::Answered { .. } =
                                read_response(&mut stream, &mut buf).await
                            {
                                tally.answered.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        for task in batch {
            let _ = task.await;
        }
    }
}

/// Requests until connects are refused (or time out), or `run` ends.
pub async fn client(addr: SocketAddr, tally: Arc<Tally>, seed: usize, run: Run) {
    let mut conn: Option<TcpStream> = None;
    let mut buf = vec![0u8; 4096];
    let mut n = seed;
    while run.going() {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        // A new connection one time in four, else reuse the idle one.
        if n.is_multiple_of(4) {
            conn = None;
        }
        let fresh = conn.is_none();
        if fresh {
            let Some(stream) = run.connect(addr, &tally).await else {
                return;
            };
            conn = Some(stream);
        }
        let stream = conn.as_mut().expect("connected");
        let path: &[u8] = if n.is_multiple_of(5) {
            b"/sleep/20"
        } else {
            b"/"
        };
        let mut request = b"GET ".to_vec();
        request.extend_from_slice(path);
        request.extend_from_slice(b" HTTP/1.1\r\nhost: stress\r\n\r\n");
        let outcome = match stream.write_all(&request).await {
            Ok(()) => read_response(stream, &mut buf).await,
            Err(_) => Response::NothingBack,
        };
        match outcome {
            Response::Answered { close } => {
                tally.answered.fetch_add(1, Ordering::Relaxed);
                if close {
                    conn = None;
                }
            }
            Response::NothingBack if !fresh => {
                tally.retryable.fetch_add(1, Ordering::Relaxed);
                conn = None;
            }
            Response::NothingBack | Response::Cut => {
                tally.lost.fetch_add(1, Ordering::Relaxed);
                if std::env::var_os("STRESS_DEBUG").is_some() {
                    let kind = if matches!(outcome, Response::Cut) {
                        "cut"
                    } else {
                        "nothing back"
                    };
                    eprintln!(
                        "[stress] lost: fresh={fresh} {kind} path={}",
                        String::from_utf8_lossy(path)
                    );
                }
                conn = None;
            }
        }
    }
}
