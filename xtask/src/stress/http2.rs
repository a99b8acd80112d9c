//! The HTTP/2 clients of the stress load (hyper's client, prior knowledge):
//! many streams over one connection, a new connection now and then.

use std::error::Error as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::{Run, Tally};

/// Requests until connects are refused (or time out), or `run` ends.
pub async fn client(addr: SocketAddr, tally: Arc<Tally>, seed: usize, run: Run) {
    let mut conn: Option<SendRequest<Empty<Bytes>>> = None;
    let mut n = seed;
    while run.going() {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        // A new connection one time in eight, else another stream.
        if n.is_multiple_of(8) {
            conn = None;
        }
        let fresh = conn.is_none();
        if fresh {
            let Some(stream) = run.connect(addr, &tally).await else {
                return;
            };
            match http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await {
                Ok((send, connection)) => {
                    tokio::spawn(connection);
                    conn = Some(send);
                }
                // Closed before any request was written: nothing to lose.
                Err(_) => {
                    tally.refused.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        let send = conn.as_mut().expect("connected");
        if send.ready().await.is_err() {
            // The connection ended (GOAWAY, close) before this request left.
            tally.retryable_h2.fetch_add(1, Ordering::Relaxed);
            if fresh {
                tally.fresh_h2_not_processed.fetch_add(1, Ordering::Relaxed);
            }
            conn = None;
            continue;
        }
        let path = if n.is_multiple_of(5) {
            "/sleep/20"
        } else {
            "/"
        };
        let request = hyper::Request::get(format!("http://{addr}{path}"))
            .body(Empty::new())
            .expect("a valid request");
        let answered = match send.send_request(request).await {
            Ok(response) => response.into_body().collect().await.map_err(Some),
            Err(e) if not_processed(&e) => Err(None),
            Err(e) => Err(Some(e)),
        };
        match answered {
            Ok(_) => {
                tally.answered_h2.fetch_add(1, Ordering::Relaxed);
            }
            Err(None) => {
                tally.retryable_h2.fetch_add(1, Ordering::Relaxed);
                if fresh {
                    tally.fresh_h2_not_processed.fetch_add(1, Ordering::Relaxed);
                }
                conn = None;
            }
            Err(Some(e)) => {
                tally.lost.fetch_add(1, Ordering::Relaxed);
                if std::env::var_os("STRESS_DEBUG").is_some() {
                    eprintln!("[stress] lost (HTTP/2): fresh={fresh} path={path}: {e:?}");
                }
                conn = None;
            }
        }
    }
}

/// The server says it did not process the request: a GOAWAY whose last
/// stream is below it, or a refused stream (RFC 9113 §6.8, §8.7), or the
/// connection closed before the request was sent. A client retries those.
/// (h2 reports a stream a GOAWAY refused, one it would not open after a
/// GOAWAY, and one cut after a GOAWAY with the same error, so this counts
/// all three as retryable; the chaos campaign's oracle, stricter, counts
/// them as cut, and finds none.)
fn not_processed(e: &hyper::Error) -> bool {
    if e.is_canceled() {
        return true;
    }
    let mut source = e.source();
    while let Some(error) = source {
        if let Some(h2) = error.downcast_ref::<h2::Error>() {
            return (h2.is_go_away() && h2.is_remote())
                || h2.reason() == Some(h2::Reason::REFUSED_STREAM);
        }
        source = error.source();
    }
    false
}
