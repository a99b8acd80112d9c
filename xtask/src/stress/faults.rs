//! Faulty clients under load: resets mid-request, mid-response and right
//! after a request (so mid-stop, when the stop comes then), and half-closed
//! clients. The server must not panic or hang, and its stop must still
//! complete with a report.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Tally;

/// Injects faults until connects are refused, or for at most 5 s.
pub async fn client(addr: SocketAddr, tally: Arc<Tally>, seed: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut n = seed;
    let mut buf = vec![0u8; 4096];
    while Instant::now() < deadline {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            tally.refused.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match (n >> 8) % 4 {
            // Reset in the middle of a request head.
            0 => {
                let _ = stream
                    .write_all(b"GET /sleep/20 HTTP/1.1\r\nhost: st")
                    .await;
                reset(stream);
            }
            // Reset in the middle of a streamed response.
            1 => {
                let _ = stream
                    .write_all(b"GET /split/30 HTTP/1.1\r\nhost: stress\r\n\r\n")
                    .await;
                let _ = stream.read(&mut buf).await;
                reset(stream);
            }
            // Reset right after a whole request, before its answer.
            2 => {
                let _ = stream
                    .write_all(b"GET /sleep/10 HTTP/1.1\r\nhost: stress\r\n\r\n")
                    .await;
                reset(stream);
            }
            // Half-closed: the request, then a FIN, then read what comes.
            _ => {
                let _ = stream
                    .write_all(b"GET / HTTP/1.1\r\nhost: stress\r\n\r\n")
                    .await;
                let _ = stream.shutdown().await;
                let read_all = async { while let Ok(1..) = stream.read(&mut buf).await {} };
                let _ = tokio::time::timeout(Duration::from_secs(5), read_all).await;
            }
        }
        tally.faults.fetch_add(1, Ordering::Relaxed);
    }
}

/// Closes with a reset (RST), as a client that vanishes does.
fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}
