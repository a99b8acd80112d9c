//! The rollout's clients, through the balancer: hyper's HTTP/1.1 client
//! (keep-alive, a new connection one time in four) and HTTP/2 client
//! (streams over one connection, a new one now and then). A request
//! succeeds when it is answered 200 with its whole body; anything else (a
//! 502 or 503 from the balancer, a cut, a failed connect) is a failure.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::stress::Run;

#[derive(Default)]
pub struct Tally {
    pub answered_h1: AtomicU64,
    pub answered_h2: AtomicU64,
    pub failed: AtomicU64,
}

enum Sender {
    H1(http1::SendRequest<Empty<Bytes>>),
    H2(http2::SendRequest<Empty<Bytes>>),
}

/// Requests until `run` ends; HTTP/2 when `h2`.
pub async fn client(addr: SocketAddr, h2: bool, tally: Arc<Tally>, seed: usize, run: Run) {
    let mut conn: Option<Sender> = None;
    let mut n = seed;
    while run.going() {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        if n.is_multiple_of(if h2 { 8 } else { 4 }) {
            conn = None;
        }
        if conn.is_none() {
            conn = connect(addr, h2).await;
            if conn.is_none() {
                fail(&tally, "connect to the balancer");
                continue;
            }
        }
        let path = if n.is_multiple_of(5) {
            "/sleep/20"
        } else {
            "/"
        };
        let request = hyper::Request::get(format!("http://{addr}{path}"))
            .body(Empty::new())
            .expect("a valid request");
        let sent = match conn.as_mut().expect("connected") {
            Sender::H1(send) => match send.ready().await {
                Ok(()) => send.send_request(request).await,
                Err(e) => Err(e),
            },
            Sender::H2(send) => match send.ready().await {
                Ok(()) => send.send_request(request).await,
                Err(e) => Err(e),
            },
        };
        let ok = match sent {
            Ok(response) if response.status() == 200 => {
                response.into_body().collect().await.is_ok()
            }
            Ok(response) => {
                fail(&tally, &format!("status {}", response.status()));
                conn = None;
                continue;
            }
            Err(_) => false,
        };
        if ok {
            let answered = if h2 {
                &tally.answered_h2
            } else {
                &tally.answered_h1
            };
            answered.fetch_add(1, Ordering::Relaxed);
        } else {
            fail(&tally, "the request failed");
            conn = None;
        }
    }
}

async fn connect(addr: SocketAddr, h2: bool) -> Option<Sender> {
    let io = TokioIo::new(tokio::net::TcpStream::connect(addr).await.ok()?);
    if h2 {
        let (send, connection) = http2::handshake(TokioExecutor::new(), io).await.ok()?;
        tokio::spawn(connection);
        Some(Sender::H2(send))
    } else {
        let (send, connection) = http1::handshake(io).await.ok()?;
        tokio::spawn(connection);
        Some(Sender::H1(send))
    }
}

fn fail(tally: &Tally, what: &str) {
    tally.failed.fetch_add(1, Ordering::Relaxed);
    if std::env::var_os("STRESS_DEBUG").is_some() {
        eprintln!("[rollout] failed: {what}");
    }
}
