//! HTTP/2 clients: hyper's (streams in parallel, pings and window updates
//! when asked), and a raw one that answers no PING and never closes.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2::{Builder, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::chaos::io::{connect, Alpn};
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
/// unanswered) and no close; its preface now and then split over two
/// writes. The server must send a GOAWAY before it closes (B7), and close it
/// within the GOAWAY timeout after the drain, grace or no grace. A
/// `hostile` one goes on opening a stream every 100 ms after the GOAWAY
/// (RFC 9113 §6.8 forbids it): those must not hold the stop either.
pub async fn mute(ctx: Arc<Ctx>, mut rng: Rng, hostile: bool) {
    tokio::time::sleep(Duration::from_millis(rng.range(0, 200))).await;
    let opened = Instant::now();
    let io = match connect(ctx.addr, ctx.tls.as_ref(), Alpn::H2).await {
        Ok(io) => io,
        Err(e) => return ctx.connect_failed(false, opened, &e),
    };
    let id = ctx.conn();
    let (mut reader, mut writer) = tokio::io::split(io);
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    if rng.chance(50) {
        let _ = writer.write_all(&preface[..5]).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let _ = writer.write_all(&preface[5..]).await;
    } else {
        let _ = writer.write_all(preface).await;
    }
    let _ = writer.write_all(&frame(SETTINGS, 0, 0, &[])).await;
    let mut open: Vec<(u32, Instant)> = Vec::new();
    let mut next_stream = 1;
    let mut get = |path: String| {
        // HPACK: GET, http (indexed); :path and :authority as literals.
        let mut block = vec![0x82, 0x86, 0x04, path.len() as u8];
        block.extend_from_slice(path.as_bytes());
        block.extend_from_slice(&[0x01, 5]);
        block.extend_from_slice(b"chaos");
        let stream = next_stream;
        next_stream += 2;
        (stream, frame(HEADERS, 0x5, stream, &block))
    };
    let (stream, headers) = get(format!("/sleep/{}", rng.range(0, 200)));
    if writer.write_all(&headers).await.is_ok() {
        open.push((stream, Instant::now()));
    }
    let mut frames = Frames::default();
    let mut goaway: Option<u32> = None;
    let mut refused: Vec<u32> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            frame_read = frames.next(&mut reader) => {
                let Some((kind, flags, stream, payload)) = frame_read else { break };
                if kind == SETTINGS && flags & 1 == 0 {
                    let _ = writer.write_all(&frame(SETTINGS, 1, 0, &[])).await;
                }
                if kind == GOAWAY {
                    let last = payload.get(..4).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                    goaway = Some(goaway.map_or(last, |g| g.min(last)) & !(1 << 31));
                }
                if kind == RST_STREAM && payload.get(..4) == Some(&[0, 0, 0, 7]) {
                    refused.push(stream);
                }
                if matches!(kind, DATA | HEADERS) && flags & 1 != 0 {
                    if let Some(at) = open.iter().position(|(s, _)| *s == stream) {
                        let (_, sent) = open.swap_remove(at);
                        ctx.seen(false, id, sent, Outcome::Answered);
                    }
                }
                // PINGs (type 6) go unanswered, on purpose.
            }
            _ = tick.tick(), if hostile && goaway.is_some() => {
                let (stream, headers) = get("/sleep/150".to_owned());
                if writer.write_all(&headers).await.is_err() {
                    break;
                }
                open.push((stream, Instant::now()));
            }
        }
    }
    for (stream, sent) in open {
        let not_processed = refused.contains(&stream) || goaway.is_some_and(|last| stream > last);
        let outcome = match stream {
            _ if not_processed => Outcome::NotProcessed,
            // Opened after the GOAWAY and accepted: the server cuts it.
            3.. if hostile => Outcome::Cut,
            _ => Outcome::NothingBack { reused: stream > 1 },
        };
        ctx.seen(false, id, sent, outcome);
    }
    if goaway.is_none() {
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
    async fn next(&mut self, io: &mut (impl AsyncRead + Unpin)) -> Option<(u8, u8, u32, Vec<u8>)> {
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
