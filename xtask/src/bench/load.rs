//! The load generator: HTTP/1.1 keep-alive over raw TCP, and HTTP/2 with
//! hyper's client; a fixed connection count and duration, latency
//! histograms in microseconds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::http1::{read_response, Response};

pub struct Load {
    /// Requests completed inside the measuring window.
    pub requests: u64,
    /// Requests completed over the whole run, warm-up included.
    pub total: u64,
    pub errors: u64,
    pub seconds: f64,
    pub latency: Histogram<u64>,
}

impl Load {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

/// When measuring starts and ends: after a warm-up.
#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    fn new(warmup: Duration, duration: Duration) -> Window {
        let start = Instant::now() + warmup;
        Window {
            start,
            end: start + duration,
        }
    }
}

/// One connection's (or stream's) share of a run.
struct Part {
    requests: u64,
    total: u64,
    errors: u64,
    latency: Histogram<u64>,
}

fn merge(parts: Vec<Part>, window: Window) -> Load {
    let mut latency = histogram();
    let (mut requests, mut total, mut errors) = (0, 0, 0);
    for part in parts {
        requests += part.requests;
        total += part.total;
        errors += part.errors;
        latency.add(part.latency).expect("same bounds");
    }
    Load {
        requests,
        total,
        errors,
        seconds: window.end.duration_since(window.start).as_secs_f64(),
        latency,
    }
}

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: bench\r\n\r\n";

/// `conns` keep-alive connections, each sending `GET /` in a loop.
pub async fn http1(addr: SocketAddr, conns: usize, warmup: Duration, duration: Duration) -> Load {
    let window = Window::new(warmup, duration);
    let tasks: Vec<_> = (0..conns)
        .map(|_| tokio::spawn(http1_conn(addr, window)))
        .collect();
    let mut parts = Vec::new();
    for task in tasks {
        parts.push(task.await.expect("load task"));
    }
    merge(parts, window)
}

async fn http1_conn(addr: SocketAddr, window: Window) -> Part {
    let mut latency = histogram();
    let (mut requests, mut total, mut errors) = (0, 0, 0);
    let mut buf = vec![0u8; 4096];
    let mut stream = None;
    while Instant::now() < window.end {
        if stream.is_none() {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(s);
                }
                Err(_) => {
                    errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let s = stream.as_mut().expect("connected");
        let sent = Instant::now();
        let answered = s.write_all(REQUEST).await.is_ok()
            && matches!(read_response(s, &mut buf).await, Response::Answered { .. });
        if !answered {
            errors += 1;
            stream = None;
            continue;
        }
        total += 1;
        if sent >= window.start && sent < window.end {
            requests += 1;
            let _ = latency.record(sent.elapsed().as_micros().max(1) as u64);
        }
    }
    Part {
        requests,
        total,
        errors,
        latency,
    }
}

/// `streams` concurrent HTTP/2 streams over `conns` connections.
pub async fn http2(
    addr: SocketAddr,
    conns: usize,
    streams: usize,
    warmup: Duration,
    duration: Duration,
) -> Load {
    let window = Window::new(warmup, duration);
    let mut senders = Vec::new();
    for _ in 0..conns {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .expect("h2 handshake");
        tokio::spawn(conn);
        senders.push(sender);
    }
    let uri: hyper::Uri = format!("http://{addr}/").parse().expect("uri");
    let tasks: Vec<_> = (0..streams)
        .map(|i| {
            let mut sender = senders[i % conns].clone();
            let uri = uri.clone();
            tokio::spawn(async move {
                let mut latency = histogram();
                let (mut requests, mut total, mut errors) = (0, 0, 0);
                while Instant::now() < window.end {
                    let req = hyper::Request::get(uri.clone())
                        .body(Empty::<Bytes>::new())
                        .expect("request");
                    let sent = Instant::now();
                    let ok = match sender.send_request(req).await {
                        Ok(resp) => resp.into_body().collect().await.is_ok(),
                        Err(_) => false,
                    };
                    if !ok {
                        errors += 1;
                        continue;
                    }
                    total += 1;
                    if sent >= window.start && sent < window.end {
                        requests += 1;
                        let _ = latency.record(sent.elapsed().as_micros().max(1) as u64);
                    }
                }
                Part {
                    requests,
                    total,
                    errors,
                    latency,
                }
            })
        })
        .collect();
    let mut parts = Vec::new();
    for task in tasks {
        parts.push(task.await.expect("load task"));
    }
    merge(parts, window)
}
