//! HTTP/2 clients: hyper's (streams in parallel, pings and window updates
//! when asked), and a raw one that answers no PING and never closes.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2::{Builder, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::chaos::io::{connect, Alpn, Stream};
use crate::chaos::scenario::Rng;
use crate::chaos::seen::{Ctx, Outcome};

/// Streams over hyper's client until the stop ends or connects are
/// refused; a new connection now and then.
pub async fn streams(ctx: Arc<Ctx>, mut rng: Rng, pings: bool) {
    while !ctx.is_done() {
        let opened = Instant::now();
        let io = match connect(ctx.addr, ctx.tls.as_ref(), Alpn::H2).await {
            Ok(io) => io,
            Err(e) => return ctx.connect_failed(false, opened, &e),
        };
        let id = ctx.conn();
        let mut builder = Builder::new(TokioExecutor::new());
        builder.timer(TokioTimer::new());
        if pings {
            builder
                .keep_alive_interval(Duration::from_millis(50))
                .keep_alive_while_idle(true)
                .adaptive_window(true);
        }
        let Ok((send, conn)) = builder.handshake(TokioIo::new(io)).await else {
            // Closed before any request was written: nothing to lose.
            ctx.seen(false, id, opened, Outcome::Refused);
            ctx.span(false);
            return;
        };
        let conn = tokio::spawn(conn);
        let rounds = rng.range(1, 20);
        for _ in 0..rounds {
            if ctx.is_done() || !round(&ctx, &mut rng, &send, id).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(rng.range(0, 20))).await;
        }
        drop(send);
        let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        ctx.span(false);
    }
}

/// One to three streams at once; false when the connection is done.
async fn round(ctx: &Ctx, rng: &mut Rng, send: &SendRequest<Empty<Bytes>>, id: u64) -> bool {
    let streams: Vec<_> = (0..rng.range(1, 3))
        .map(|_| {
            let path = match rng.range(0, 2) {
                0 => "/".to_owned(),
                1 => format!("/sleep/{}", rng.range(20, 300)),
                _ => format!("/split/{}", rng.range(20, 200)),
            };
            let mut send = send.clone();
            let addr = ctx.addr;
            async move {
                let sent = Instant::now();
                if send.ready().await.is_err() {
                    // Ended (GOAWAY, close) before this stream left.
                    return (sent, Outcome::NotProcessed);
                }
                let request = hyper::Request::get(format!("http://{addr}{path}"))
                    .body(Empty::new())
                    .expect("a valid request");
                let outcome = match send.send_request(request).await {
                    Ok(response) => match response.into_body().collect().await {
                        Ok(_) => Outcome::Answered,
                        Err(_) => Outcome::Cut,
                    },
                    Err(e) if not_processed(&e) => Outcome::NotProcessed,
                    // No answer began. A stream at or below the GOAWAY's
                    // last stream may have been processed (RFC 9113 §6.8),
                    // so only the timing tells, as for HTTP/1.1's reuse.
                    Err(_) => Outcome::NothingBack { reused: true },
                };
                (sent, outcome)
            }
        })
        .collect();
    let mut alive = true;
    for (sent, outcome) in futures_util::future::join_all(streams).await {
        ctx.seen(false, id, sent, outcome);
        alive &= outcome == Outcome::Answered;
    }
    alive
}

/// The server says it did not process the request: a refused stream
/// (RFC 9113 §8.7), or the connection closed before the request was sent.
/// (A GOAWAY error is no such word: a stream at or below its last stream
/// may have been processed, and then cut.)
fn not_processed(e: &hyper::Error) -> bool {
    if e.is_canceled() {
        return true;
    }
    let mut source = e.source();
    while let Some(error) = source {
        if let Some(h2) = error.downcast_ref::<h2::Error>() {
            return h2.reason() == Some(h2::Reason::REFUSED_STREAM) && h2.is_remote();
        }
        source = error.source();
    }
    false
}

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const RST_STREAM: u8 = 0x3;
const GOAWAY: u8 = 0x7;

/// One stream, then silence: no PING answered (so the GOAWAY's goes
/// unanswered) and no close. The server must send a GOAWAY before it closes
/// (B7), and close it within the GOAWAY timeout after the drain, grace or
/// no grace.
pub async fn mute(ctx: Arc<Ctx>, mut rng: Rng) {
    tokio::time::sleep(Duration::from_millis(rng.range(0, 200))).await;
    let opened = Instant::now();
    let mut io = match connect(ctx.addr, ctx.tls.as_ref(), Alpn::H2).await {
        Ok(io) => io,
        Err(e) => return ctx.connect_failed(false, opened, &e),
    };
    let id = ctx.conn();
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&frame(SETTINGS, 0, 0, &[]));
    let path = format!("/sleep/{}", rng.range(0, 200));
    // HPACK: GET, http (indexed); :path and :authority as literals.
    let mut block = vec![0x82, 0x86, 0x04, path.len() as u8];
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, 5]);
    block.extend_from_slice(b"chaos");
    hello.extend_from_slice(&frame(HEADERS, 0x5, 1, &block));
    let sent = Instant::now();
    if io.write_all(&hello).await.is_err() {
        ctx.seen(false, id, sent, Outcome::NothingBack { reused: false });
        return ctx.span(false);
    }
    let mut frames = Frames::default();
    let mut answered = false;
    let mut goaway = false;
    // Stream 1 refused: above a GOAWAY's last stream, or REFUSED_STREAM.
    let mut refused = false;
    while let Some((kind, flags, stream, payload)) = frames.next(&mut io).await {
        if kind == SETTINGS && flags & 1 == 0 {
            let _ = io.write_all(&frame(SETTINGS, 1, 0, &[])).await;
        }
        if kind == GOAWAY {
            goaway = true;
            let last = payload
                .get(..4)
                .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            refused |= last & !(1 << 31) < 1;
        }
        refused |= kind == RST_STREAM && stream == 1 && payload.get(..4) == Some(&[0, 0, 0, 7]);
        if stream == 1 && matches!(kind, DATA | HEADERS) && flags & 1 != 0 && !answered {
            answered = true;
            ctx.seen(false, id, sent, Outcome::Answered);
        }
        // PINGs (type 6) go unanswered, on purpose.
    }
    if !answered {
        let outcome = if refused {
            Outcome::NotProcessed
        } else {
            Outcome::NothingBack { reused: false }
        };
        ctx.seen(false, id, sent, outcome);
    }
    if !goaway {
        ctx.violation("an HTTP/2 connection closed without a GOAWAY (B7)".into());
    }
    ctx.span(false);
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_be_bytes();
    let mut frame = vec![len[1], len[2], len[3], kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// Reads frames: (type, flags, stream, payload); `None` when the
/// connection ends.
#[derive(Default)]
struct Frames {
    buf: Vec<u8>,
}

impl Frames {
    async fn next(&mut self, io: &mut Stream) -> Option<(u8, u8, u32, Vec<u8>)> {
        loop {
            if self.buf.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                if self.buf.len() >= 9 + len {
                    let mut frame: Vec<u8> = self.buf.drain(..9 + len).collect();
                    let payload = frame.split_off(9);
                    let stream =
                        u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]) & !(1 << 31);
                    return Some((frame[3], frame[4], stream, payload));
                }
            }
            let mut chunk = [0u8; 16384];
            match io.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}
