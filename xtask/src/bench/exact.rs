//! `cargo xtask bench --exact`: the instructions the server runs per
//! request, counted by valgrind (cachegrind, no cache simulation), which
//! wall-clock noise does not touch. Per request = (I(2N) − I(N)) / N, each
//! I from its own server process, so start-up and the stop cancel. The
//! load is counted, not timed: one keep-alive connection asking one
//! request at a time, each sent once every thread of the server sleeps, to
//! a server on one core with one worker thread. So every request takes
//! the same path: it wakes an idle server, which serves it and goes back to
//! sleep. Otherwise what one wake-up finds (a request, or three; the next
//! request already there, or not yet) changes from run to run, and so does
//! the count: with four connections, tokio's HTTP/2 figures moved by 1 %;
//! with no wait for sleep, smol's and async-std's HTTP/1.1 figures by up to
//! half (async-io's reactor runs in a thread of its own). The HTTP/2 client
//! keeps no HPACK dynamic table, so the server's Date header costs the same
//! whatever second it is. Every figure is measured twice; the two must
//! agree within `AGREEMENT`.

//!
//! valgrind: `apt-get install valgrind`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::process::{Server, Side};
use super::svg;
use super::{progress, RUNTIMES};
use crate::http1::{read_response, Response};

/// Requests of the smaller run; the larger asks twice as many.
const N: u64 = 5_000;
/// The client's HTTP/2 flow-control windows: the largest allowed.
const WINDOW: u32 = (1 << 31) - 1;
/// How far apart two measurements of one figure may be.
pub const AGREEMENT: f64 = 0.002;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http1 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
        }
    }
}

/// One figure: instructions per request, measured twice.
pub struct Exact {
    pub runtime: &'static str,
    pub protocol: Protocol,
    pub side: Side,
    pub runs: [f64; 2],
}

impl Exact {
    pub fn mean(&self) -> f64 {
        (self.runs[0] + self.runs[1]) / 2.0
    }

    /// The two runs agree within [`AGREEMENT`].
    pub fn agrees(&self) -> bool {
        (self.runs[0] - self.runs[1]).abs() <= AGREEMENT * self.mean()
    }
}

/// Whether valgrind can be run here.
pub fn valgrind_found() -> bool {
    std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Which figures to measure: all by default; `--runtime`, `--protocol`
/// and `--side` narrow it, to look at one figure again.
#[derive(Default)]
pub struct Only {
    pub runtime: Option<&'static str>,
    pub protocol: Option<Protocol>,
    pub side: Option<Side>,
}

impl Only {
    /// From `--runtime R`, `--protocol http1|http2` and
    /// `--side plain|stoppable|peer`, in any order; `None` for anything else.
    pub fn parse(args: &[String]) -> Option<Only> {
        let mut only = Only::default();
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args.next()?.as_str();
            match flag.as_str() {
                "--runtime" => only.runtime = Some(*RUNTIMES.iter().find(|r| **r == value)?),
                "--protocol" => {
                    only.protocol = Some(match value {
                        "http1" => Protocol::Http1,
                        "http2" => Protocol::Http2,
                        _ => return None,
                    })
                }
                "--side" => {
                    only.side = Some(match value {
                        "plain" => Side::Plain,
                        "stoppable" => Side::Stoppable,
                        "peer" => Side::Peer,
                        _ => return None,
                    })
                }
                _ => return None,
            }
        }
        Some(only)
    }
}

/// Every figure: plain, stoppable and (on tokio) the hyper-util peer, per
/// runtime and protocol; or those `only` names.
pub async fn measure(bin: &Path, scratch: &Path, only: &Only) -> Result<Vec<Exact>, String> {
    let mut figures = Vec::new();
    for runtime in RUNTIMES
        .into_iter()
        .filter(|r| only.runtime.is_none_or(|o| o == *r))
    {
        for protocol in [Protocol::Http1, Protocol::Http2]
            .into_iter()
            .filter(|p| only.protocol.is_none_or(|o| o == *p))
        {
            let mut sides = vec![Side::Plain, Side::Stoppable];
            if runtime == "tokio" {
                sides.push(Side::Peer);
            }
            for side in sides
                .into_iter()
                .filter(|s| only.side.is_none_or(|o| o == *s))
            {
                progress(&format!(
                    "exact: {runtime}, {}, {}",
                    protocol.name(),
                    side.name()
                ));
                let mut runs = [0.0; 2];
                for run in &mut runs {
                    let small = instructions(bin, scratch, side, runtime, protocol, N).await?;
                    let large = instructions(bin, scratch, side, runtime, protocol, 2 * N).await?;
                    eprintln!(
                        "[exact] {runtime} {} {}: I(N) = {small}, I(2N) = {large}",
                        protocol.name(),
                        side.name()
                    );
                    let added = large.checked_sub(small).ok_or_else(|| {
                        format!(
                            "{runtime}: {} requests ran fewer instructions than {N}",
                            2 * N
                        )
                    })?;
                    *run = added as f64 / N as f64;
                }
                figures.push(Exact {
                    runtime,
                    protocol,
                    side,
                    runs,
                });
            }
        }
    }
    Ok(figures)
}

/// The instructions one server process runs, from its start to its exit,
/// serving `requests`.
async fn instructions(
    bin: &Path,
    scratch: &Path,
    side: Side,
    runtime: &str,
    protocol: Protocol,
    requests: u64,
) -> Result<u64, String> {
    let out = scratch.join("cachegrind.out");
    let _ = std::fs::remove_file(&out);
    let server = Server::start_counted(bin, side, runtime, &out);
    let asleep = || until_asleep(&server);
    let served = match protocol {
        Protocol::Http1 => http1(server.addr, requests, asleep).await,
        Protocol::Http2 => http2(server.addr, requests, asleep).await,
    };
    // The client's connection is closed: the stop finds none, whatever
    // the timing, so each run's stop costs the same.
    let asleep = until_asleep(&server);
    server.terminate();
    if !server.wait(Duration::from_secs(120)) {
        return Err(format!("{} on {runtime} did not exit cleanly", side.name()));
    }
    served?;
    asleep?;
    let counted = std::fs::read_to_string(&out)
        .map_err(|e| format!("no cachegrind output ({}): {e}", out.display()))?;
    keep(&out, side, runtime, protocol, requests);
    counted
        .lines()
        .find_map(|l| l.strip_prefix("summary:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "no summary line in cachegrind's output".to_owned())
}

/// With `STOPPABLE_EXACT_KEEP=DIR`, each run's cachegrind output is kept
/// there, per function, for `cg_diff` and `cg_annotate`: to see where
/// the instructions one side adds go.
fn keep(out: &Path, side: Side, runtime: &str, protocol: Protocol, requests: u64) {
    if let Some(dir) = std::env::var_os("STOPPABLE_EXACT_KEEP") {
        let protocol = match protocol {
            Protocol::Http1 => "http1",
            Protocol::Http2 => "http2",
        };
        let side = side.name().replace(' ', "-");
        let name = format!("{runtime}-{protocol}-{side}-{requests}.out");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::copy(out, Path::new(&dir).join(name));
    }
}

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: bench\r\n\r\n";

/// Waits until every thread of `server` sleeps, and stays asleep for
/// `SETTLE` (at most 10 s): a thread may sleep a moment before another
/// that has work gets the core (valgrind runs one at a time).
fn until_asleep(server: &Server) -> Result<(), String> {
    const SETTLE: Duration = Duration::from_micros(200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if server.is_asleep() {
            let ran = server.cpu_time();
            std::thread::sleep(SETTLE);
            if server.is_asleep() && server.cpu_time() == ran {
                return Ok(());
            }
        }
        if std::time::Instant::now() > deadline {
            return Err("the server never went to sleep".to_owned());
        }
        std::thread::yield_now();
    }
}

/// `requests` over one keep-alive connection, in turn, each once the
/// server sleeps.
async fn http1(
    addr: SocketAddr,
    requests: u64,
    asleep: impl Fn() -> Result<(), String>,
) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 4096];
    for _ in 0..requests {
        asleep()?;
        stream.write_all(REQUEST).await.map_err(|e| e.to_string())?;
        if !matches!(
            read_response(&mut stream, &mut buf).await,
            Response::Answered { close: false }
        ) {
            return Err("a request failed".to_owned());
        }
    }
    Ok(())
}

/// `requests` over one HTTP/2 connection, one stream at a time, each once
/// the server sleeps.
async fn http2(
    addr: SocketAddr,
    requests: u64,
    asleep: impl Fn() -> Result<(), String>,
) -> Result<(), String> {
    let uri: hyper::Uri = format!("http://{addr}/").parse().expect("uri");
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    // Windows that never run out over the run: no WINDOW_UPDATE, whose
    // timing against the next request would vary, only requests and
    // responses.
    let (mut sender, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .initial_connection_window_size(WINDOW)
            .initial_stream_window_size(WINDOW)
            // No HPACK dynamic table: the server then encodes its Date
            // header, which changes every second, the same way whatever
            // second it is. With one, each new Date value goes into the
            // table, and the count moved with how many seconds the run
            // crossed (by up to 1 %, in h2's `Table::index`).
            .header_table_size(0)
            .handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    for _ in 0..requests {
        asleep()?;
        let req = hyper::Request::get(uri.clone())
            .body(Empty::<Bytes>::new())
            .expect("request");
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        resp.into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
    }
    // The last sender gone, the connection closes; wait for it.
    drop(sender);
    tokio::time::timeout(Duration::from_secs(10), conn)
        .await
        .map_err(|_| "the HTTP/2 connection did not close".to_owned())?
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// The table: per runtime and protocol, plain, stoppable, the peer, and
/// what stoppable adds to plain.
pub fn markdown(figures: &[Exact]) -> String {
    let mut out = String::from(
        "Instructions per request (valgrind, the server process; two runs each)\n\n\
         | runtime | load | plain | stoppable | hyper-util peer | added by stoppable |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    let find = |runtime: &str, protocol: Protocol, side: Side| {
        figures
            .iter()
            .find(|f| f.runtime == runtime && f.protocol == protocol && f.side == side)
    };
    let cell = |f: Option<&Exact>| match f {
        Some(f) => format!(
            "{:.0}–{:.0}{}",
            f.runs[0].min(f.runs[1]),
            f.runs[0].max(f.runs[1]),
            if f.agrees() { "" } else { " (runs disagree)" }
        ),
        None => "–".to_owned(),
    };
    for runtime in RUNTIMES {
        for protocol in [Protocol::Http1, Protocol::Http2] {
            let plain = find(runtime, protocol, Side::Plain);
            let stoppable = find(runtime, protocol, Side::Stoppable);
            let added = match (plain, stoppable) {
                (Some(p), Some(s)) => format!(
                    "{:+.0} ({:+.2} %)",
                    s.mean() - p.mean(),
                    100.0 * (s.mean() - p.mean()) / p.mean()
                ),
                _ => "–".to_owned(),
            };
            out.push_str(&format!(
                "| {runtime} | {} | {} | {} | {} | {added} |\n",
                protocol.name(),
                cell(plain),
                cell(stoppable),
                cell(find(runtime, protocol, Side::Peer)),
            ));
        }
    }
    out
}

/// The figures as a picture: per runtime and protocol, a bar for plain,
/// stoppable and the peer (the mean of the two runs).
pub fn svg(figures: &[Exact]) -> String {
    let mut labels = Vec::new();
    let mut series: Vec<svg::Series<Vec<Option<f64>>>> = [Side::Plain, Side::Stoppable, Side::Peer]
        .into_iter()
        .map(|side| svg::Series {
            name: side.name().to_owned(),
            values: Vec::new(),
        })
        .collect();
    for runtime in RUNTIMES {
        for protocol in [Protocol::Http1, Protocol::Http2] {
            let of = |side: Side| {
                figures
                    .iter()
                    .find(|f| f.runtime == runtime && f.protocol == protocol && f.side == side)
                    .map(Exact::mean)
            };
            if of(Side::Plain).is_none() && of(Side::Stoppable).is_none() {
                continue;
            }
            labels.push(format!("{runtime}, {}", protocol.name()));
            for (s, side) in series
                .iter_mut()
                .zip([Side::Plain, Side::Stoppable, Side::Peer])
            {
                s.values.push(of(side));
            }
        }
    }
    svg::bars(
        "Instructions per request (valgrind, the server process)",
        "instructions per request: fewer is better",
        &labels,
        &series,
    )
}

/// The figures as JSON.
pub fn json(figures: &[Exact]) -> String {
    let rows: Vec<String> = figures
        .iter()
        .map(|f| {
            format!(
                "{{\"runtime\":\"{}\",\"protocol\":\"{}\",\"side\":\"{}\",\"runs\":[{:.1},{:.1}],\"agree\":{}}}",
                f.runtime,
                f.protocol.name(),
                f.side.name(),
                f.runs[0],
                f.runs[1],
                f.agrees()
            )
        })
        .collect();
    format!(
        "{{\"unit\":\"instructions per request\",\"requests\":[{N},{}],\"connections\":1,\"agreement\":{AGREEMENT},\"figures\":[{}]}}\n",
        2 * N,
        rows.join(",")
    )
}
