//! HTTP/1.1 clients: keep-alive or new connections, pipelining, slow heads,
//! never-read answers, hanging requests, faults, and an event stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::chaos::io::{connect_with, Alpn, Reader, Response, Stream};
use crate::chaos::scenario::Rng;
use crate::chaos::seen::{Ctx, Outcome};

/// A connection of an HTTP/1.1 client.
struct Conn {
    io: Stream,
    reader: Reader,
    id: u64,
    /// Served at least once: a keep-alive connection being reused.
    reused: bool,
}

impl Conn {
    /// Connects; `None` (counted as refused) once the server refuses.
    async fn open(ctx: &Ctx) -> Option<Conn> {
        Conn::open_with(ctx, false).await
    }

    /// Like `open`; with `reset`, dropping it resets it.
    async fn open_with(ctx: &Ctx, reset: bool) -> Option<Conn> {
        let sent = Instant::now();
        match connect_with(ctx.addr, ctx.tls.as_ref(), Alpn::Http1, reset).await {
            Ok(io) => Some(Conn {
                io,
                reader: Reader::default(),
                id: ctx.conn(),
                reused: false,
            }),
            Err(e) => {
                ctx.connect_failed(false, sent, &e);
                None
            }
        }
    }

    fn close(self, ctx: &Ctx) {
        ctx.span(false);
    }

    /// Sends `request`; how its answer (the first, if pipelined) ended.
    async fn send(&mut self, request: &[u8]) -> (Instant, Response) {
        let sent = Instant::now();
        if self.io.write_all(request).await.is_err() {
            return (sent, Response::NothingBack);
        }
        (sent, self.reader.response(&mut self.io).await)
    }

    /// Records how a request ended; false when the connection is gone.
    fn record(&mut self, ctx: &Ctx, sent: Instant, response: &Response) -> bool {
        let outcome = match response {
            Response::Answered { .. } => Outcome::Answered,
            Response::NothingBack => Outcome::NothingBack {
                reused: self.reused,
            },
            Response::Cut => Outcome::Cut,
        };
        ctx.seen(false, self.id, sent, outcome);
        self.reused = true;
        matches!(response, Response::Answered { close: false, .. })
    }
}

fn get(path: &str) -> Vec<u8> {
    get_ending(path, false)
}

/// A GET whose lines end with a bare LF when `bare_lf` (hyper accepts it;
/// a server must still see where the head ends).
fn get_ending(path: &str, bare_lf: bool) -> Vec<u8> {
    let eol = if bare_lf { "\n" } else { "\r\n" };
    format!("GET {path} HTTP/1.1{eol}host: chaos{eol}{eol}").into_bytes()
}

/// Work that ends by itself within 300 ms.
fn short_path(rng: &mut Rng) -> String {
    match rng.range(0, 3) {
        0 | 1 => "/".to_owned(),
        2 => format!("/sleep/{}", rng.range(20, 300)),
        _ => format!("/split/{}", rng.range(20, 200)),
    }
}

async fn pause(rng: &mut Rng) {
    tokio::time::sleep(Duration::from_millis(rng.range(0, 20))).await;
}

/// Requests until the stop ends or connects are refused.
pub async fn requests(ctx: Arc<Ctx>, mut rng: Rng, reuse: bool, pipeline: bool) {
    let mut conn: Option<Conn> = None;
    while !ctx.is_done() {
        if conn.is_none() {
            conn = Some(match Conn::open(&ctx).await {
                Some(conn) => conn,
                None => return,
            });
        }
        let c = conn.as_mut().expect("connected");
        let path = short_path(&mut rng);
        let bare_lf = rng.chance(20);
        let mut request = get_ending(&path, bare_lf);
        if pipeline {
            request.extend_from_slice(&get_ending("/", bare_lf));
        }
        let (sent, first) = if pipeline && rng.chance(50) {
            // The second head split: its start with the first request, the
            // rest a moment later, while the first is answered (B6).
            let cut = request.len() - 10;
            let sent = Instant::now();
            let written = async {
                c.io.write_all(&request[..cut]).await?;
                tokio::time::sleep(Duration::from_millis(20)).await;
                c.io.write_all(&request[cut..]).await
            };
            match written.await {
                Ok(()) => (sent, c.reader.response(&mut c.io).await),
                Err(_) => (sent, Response::NothingBack),
            }
        } else {
            c.send(&request).await
        };
        let mut keep = c.record(&ctx, sent, &first);
        if pipeline {
            keep = match first {
                // RFC 9112 §9.6: after a response that said close, the
                // request behind it may go unanswered, and nothing may
                // follow.
                Response::Answered { close: true, .. } => {
                    if !c.reader.until_end(&mut c.io).await {
                        ctx.violation("a response after one that said close (B6)".into());
                    }
                    ctx.seen(false, c.id, sent, Outcome::NotProcessed);
                    false
                }
                Response::Answered { close: false, .. } => {
                    let second = c.reader.response(&mut c.io).await;
                    c.record(&ctx, sent, &second)
                }
                _ => {
                    ctx.seen(false, c.id, sent, Outcome::NothingBack { reused: true });
                    false
                }
            };
        }
        if !keep || !reuse {
            if let Some(c) = conn.take() {
                c.close(&ctx);
            }
        }
        pause(&mut rng).await;
    }
    if let Some(c) = conn {
        c.close(&ctx);
    }
}

/// New connections whose first request comes up to `max_after` ms after
/// the connect: within the first-request window it must be served; later,
/// the server may have closed the connection first (B3, B4). Under
/// `TCP_DEFER_ACCEPT` (`deferred`) the server's kernel holds each handshake
/// until that request (B1), and the server may never have a connection
/// whose request came too late.
pub async fn late_start(ctx: Arc<Ctx>, mut rng: Rng, max_after: u64, deferred: bool) {
    let end = |ctx: &Ctx| {
        if deferred {
            ctx.unsure_span(false);
        } else {
            ctx.span(false);
        }
    };
    while !ctx.is_done() {
        let connected = Instant::now();
        let Some(mut c) = Conn::open(&ctx).await else {
            return;
        };
        let wait = Duration::from_millis(rng.range(0, max_after));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = ctx.done() => return end(&ctx),
        }
        let (sent, response) = c.send(&get("/")).await;
        if let Response::NothingBack = response {
            ctx.seen(false, c.id, sent, Outcome::LateNothingBack { connected });
            end(&ctx);
        } else {
            c.record(&ctx, sent, &response);
            c.close(&ctx);
        }
        pause(&mut rng).await;
    }
}

/// Part of a head, then the rest after `rest_after` ms, or never: a head
/// being read holds the stop only up to the header-read timeout (B8).
pub async fn slow_head(ctx: Arc<Ctx>, mut rng: Rng, rest_after: Option<u64>) {
    tokio::time::sleep(Duration::from_millis(rng.range(0, 200))).await;
    let Some(mut c) = Conn::open(&ctx).await else {
        return;
    };
    let sent = Instant::now();
    if c.io
        .write_all(b"GET /sleep/10 HTTP/1.1\r\nhost: ch")
        .await
        .is_err()
    {
        ctx.seen(false, c.id, sent, Outcome::NothingBack { reused: false });
        return c.close(&ctx);
    }
    let rest = async {
        match rest_after {
            Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(rest);
    let mut byte = [0u8; 1];
    let outcome = tokio::select! {
        () = &mut rest => {
            let _ = c.io.write_all(b"aos\r\n\r\n").await;
            match c.reader.response(&mut c.io).await {
                Response::Answered { .. } => Outcome::Answered,
                _ => Outcome::Cut,
            }
        }
        // The server ends it first: the head was cut.
        _ = c.io.read(&mut byte) => Outcome::Cut,
    };
    ctx.seen(false, c.id, sent, outcome);
    c.close(&ctx);
}

/// A request whose 16 MiB answer it reads only once the stop reported:
/// the server's writes block, and the grace must force it (B9).
pub async fn never_read(ctx: Arc<Ctx>, mut rng: Rng) {
    tokio::time::sleep(Duration::from_millis(rng.range(0, 100))).await;
    let Some(mut c) = Conn::open(&ctx).await else {
        return;
    };
    const LEN: usize = 16 << 20;
    let head = format!("POST /echo HTTP/1.1\r\nhost: chaos\r\ncontent-length: {LEN}\r\n\r\n");
    let sent = Instant::now();
    let written = async {
        c.io.write_all(head.as_bytes()).await?;
        c.io.write_all(&vec![b'x'; LEN]).await
    };
    let outcome = tokio::select! {
        w = written => match w {
            Ok(()) => {
                ctx.done().await;
                match c.reader.response(&mut c.io).await {
                    Response::Answered { .. } => Outcome::Answered,
                    _ => Outcome::Cut,
                }
            }
            Err(_) => Outcome::Cut,
        },
        () = ctx.done() => Outcome::Cut,
    };
    ctx.seen(false, c.id, sent, outcome);
    c.close(&ctx);
}

/// A request that outlasts any grace.
pub async fn hang(ctx: Arc<Ctx>, mut rng: Rng) {
    tokio::time::sleep(Duration::from_millis(rng.range(0, 100))).await;
    let Some(mut c) = Conn::open(&ctx).await else {
        return;
    };
    let (sent, response) = c.send(&get("/sleep/600000")).await;
    c.record(&ctx, sent, &response);
    c.close(&ctx);
}

/// Faults until the stop ends: resets mid-head, right after a request and
/// mid-response; half-closes. The server must count them and go on.
pub async fn faults(ctx: Arc<Ctx>, mut rng: Rng) {
    while !ctx.is_done() {
        let Some(mut c) = Conn::open_with(&ctx, true).await else {
            return;
        };
        let sent = Instant::now();
        match rng.range(0, 3) {
            0 => {
                let _ = c.io.write_all(b"GET /sleep/20 HTTP/1.1\r\nhost: ch").await;
            }
            1 => {
                let _ = c.io.write_all(&get("/sleep/10")).await;
            }
            2 => {
                let _ = c.io.write_all(&get("/split/30")).await;
                let mut buf = [0u8; 64];
                let _ = c.io.read(&mut buf).await;
            }
            _ => {
                let _ = c.io.write_all(&get("/")).await;
                let _ = c.io.shutdown().await;
                let _ = c.reader.until_end(&mut c.io).await;
            }
        }
        ctx.seen(false, c.id, sent, Outcome::Fault);
        // Dropped with SO_LINGER 0: a reset.
        c.close(&ctx);
        tokio::time::sleep(Duration::from_millis(rng.range(5, 60))).await;
    }
}

/// An endless event stream: the drain must end it with `event: bye` (B15).
pub async fn event_stream(ctx: Arc<Ctx>, mut rng: Rng) {
    tokio::time::sleep(Duration::from_millis(rng.range(0, 200))).await;
    let Some(mut c) = Conn::open(&ctx).await else {
        return;
    };
    let (sent, response) = c.send(&get("/stream")).await;
    if let Response::Answered { body, .. } = &response {
        if !String::from_utf8_lossy(body).contains("event: bye") {
            ctx.violation("an event stream ended without its bye (B15)".into());
        }
    }
    c.record(&ctx, sent, &response);
    c.close(&ctx);
}

/// `POST /shutdown` (B13); when it was sent. Its answer is recorded.
pub async fn shutdown(ctx: &Ctx) -> Instant {
    let Some(mut c) = Conn::open(ctx).await else {
        return Instant::now();
    };
    let request = b"POST /shutdown HTTP/1.1\r\nhost: chaos\r\ncontent-length: 0\r\n\r\n";
    let (sent, response) = c.send(request).await;
    c.record(ctx, sent, &response);
    c.close(ctx);
    sent
}
