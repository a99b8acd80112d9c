//! The example server: every part of a graceful stop, on loopback.
//! The command line and routes are a contract (EXAMPLE_SERVER.md).
//!
//! Run: `cargo run --release --example server -- --grace-ms 5000`

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use stoppable_tokio::{Report, Stopper};

const USAGE: &str = "usage: server [OPTIONS]
  --runtime tokio|smol|async-std   default tokio (smol and async-std: not yet available)
  --addr HOST:PORT                 default 127.0.0.1:3000; port 0 picks a free port
  --grace-ms N                     grace period; absent = no limit (wait for in-flight work)
  --drain-delay-ms N               readiness delay before draining (B16); default 0
  --tls-cert FILE --tls-key FILE   serve HTTPS (not yet available)
  --plain                          serve without stoppable at all (the benchmarks' baseline)
routes: GET / /sleep/{ms} /split/{ms} /stream /stats /ready, POST /echo /shutdown
        (GET /ws, WebSocket echo: not yet available)";

struct Options {
    addr: SocketAddr,
    grace: Option<Duration>,
    drain_delay: Duration,
    plain: bool,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
        grace: None,
        drain_delay: Duration::ZERO,
        plain: false,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--runtime" => match value("--runtime")?.as_str() {
                "tokio" => {}
                r @ ("smol" | "async-std") => {
                    return Err(format!("runtime {r} is not available yet (only tokio)"))
                }
                other => return Err(format!("unknown runtime {other:?}")),
            },
            "--addr" => {
                let v = value("--addr")?;
                options.addr = v.parse().map_err(|_| format!("bad --addr {v:?}"))?;
            }
            "--grace-ms" => options.grace = Some(millis("--grace-ms", value("--grace-ms")?)?),
            "--drain-delay-ms" => {
                options.drain_delay = millis("--drain-delay-ms", value("--drain-delay-ms")?)?
            }
            "--tls-cert" | "--tls-key" => return Err("TLS is not available yet".into()),
            "--plain" => options.plain = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(options)
}

fn millis(name: &str, v: String) -> Result<Duration, String> {
    v.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("bad {name} {v:?}: expected milliseconds"))
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Body = BoxBody<Bytes, Infallible>;

async fn run(options: Options) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    if options.plain {
        return plain::serve(listener).await;
    }
    // The service needs the stopper (for /shutdown, /ready, /stats) and the
    // stopper comes from the server: hand it over once built.
    let (tx, rx) = tokio::sync::watch::channel(None::<Stopper>);
    let service = service_fn(move |req| {
        let stopper = rx.borrow().clone();
        async move { Ok::<_, Infallible>(route(req, stopper).await) }
    });
    let server = stoppable_tokio::serve(listener, service).drain_delay(options.drain_delay);
    let server = match options.grace {
        Some(grace) => server.grace(grace),
        None => server,
    };
    let stopper = server.stopper();
    tx.send_replace(Some(stopper.clone()));
    let served = tokio::spawn(server);
    tokio::spawn(signals(stopper.clone()));
    tokio::spawn(progress(stopper.clone()));
    let report = stopper.stopping().await;
    println!("{}", report_json(&report));
    std::io::stdout().flush()?;
    match served.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(std::io::Error::other(e)),
        Err(e) => Err(std::io::Error::other(e)),
    }
}

/// SIGTERM or SIGINT stops gracefully; a second one forces (B17).
async fn signals(stopper: Stopper) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("cannot listen for signals");
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    stopper.request_stop();
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    eprintln!("second signal: forcing the stop");
    stopper.request_stop_within(Duration::ZERO);
}

/// Progress on stderr: a line when the drain starts, then what is open each second.
async fn progress(stopper: Stopper) {
    stopper.draining().await;
    eprintln!("draining: {}", counts_json(&stopper));
    while stopper.report().is_none() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if stopper.report().is_none() {
            eprintln!("still open: {}", counts_json(&stopper));
        }
    }
}

fn counts_json(stopper: &Stopper) -> String {
    let c = stopper.counts();
    format!(
        r#"{{"phase":"{}","open":{},"idle":{},"active":{},"closing":{},"upgraded":{},"requests_in_flight":{}}}"#,
        c.phase.as_str(),
        c.open,
        c.idle,
        c.active,
        c.closing,
        c.upgraded,
        c.requests_in_flight
    )
}

fn report_json(r: &Report) -> String {
    format!(
        r#"{{"graceful":{},"closed_idle":{},"closed_after_work":{},"force_closed":{},"requests_completed":{},"elapsed_ms":{}}}"#,
        r.graceful,
        r.closed_idle,
        r.closed_after_work,
        r.force_closed,
        r.requests_completed,
        r.elapsed.as_millis()
    )
}

async fn route(req: Request<Incoming>, stopper: Option<Stopper>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let ms_after = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|ms| ms.parse::<u64>().ok())
    };
    match (req.method(), path.as_str()) {
        (&Method::GET, "/") => text(StatusCode::OK, "hello"),
        (&Method::GET, _) if ms_after("/sleep/").is_some() => {
            let ms = ms_after("/sleep/").unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            text(StatusCode::OK, format!("slept {ms}"))
        }
        (&Method::GET, _) if ms_after("/split/").is_some() => {
            let ms = ms_after("/split/").unwrap_or(0);
            let chunks = stream::unfold(0u8, move |step| async move {
                match step {
                    0 => Some((Ok(Frame::data(Bytes::from("hello"))), 1)),
                    1 => {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        Some((Ok(Frame::data(Bytes::from("world"))), 2))
                    }
                    _ => None,
                }
            });
            Response::new(StreamBody::new(chunks).boxed())
        }
        (&Method::GET, "/stream") => sse(stopper),
        (&Method::GET, "/stats") => match &stopper {
            Some(s) => json(counts_json(s)),
            None => text(StatusCode::OK, r#"{"phase":"plain"}"#),
        },
        (&Method::GET, "/ready") => match &stopper {
            Some(s) if s.phase() != stoppable_tokio::Phase::Serving => {
                text(StatusCode::SERVICE_UNAVAILABLE, "draining")
            }
            _ => text(StatusCode::OK, "ready"),
        },
        (&Method::POST, "/echo") => match req.into_body().collect().await {
            Ok(body) => Response::new(Full::new(body.to_bytes()).boxed()),
            Err(_) => text(StatusCode::BAD_REQUEST, "bad body"),
        },
        (&Method::POST, "/shutdown") => {
            if let Some(s) = &stopper {
                // B13: this request is in flight and completes.
                s.request_stop();
            }
            text(StatusCode::OK, "stopping")
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

/// An endless event stream; when the drain begins it says goodbye (B15).
fn sse(stopper: Option<Stopper>) -> Response<Body> {
    let events = stream::unfold((0u64, stopper, false), |(n, stopper, done)| async move {
        if done {
            return None;
        }
        let bye = match &stopper {
            Some(s) => tokio::select! {
                _ = s.draining() => true,
                _ = tokio::time::sleep(Duration::from_millis(100)) => false,
            },
            None => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                false
            }
        };
        let event = if bye {
            "event: bye\ndata: draining\n\n".to_string()
        } else {
            format!("data: {n}\n\n")
        };
        Some((Ok(Frame::data(Bytes::from(event))), (n + 1, stopper, bye)))
    });
    let mut response = Response::new(StreamBody::new(events).boxed());
    response
        .headers_mut()
        .insert("content-type", "text/event-stream".parse().expect("valid"));
    response
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    response
}

fn json(body: String) -> Response<Body> {
    let mut response = text(StatusCode::OK, body);
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().expect("valid"));
    response
}

/// `--plain`: the same routes with hyper-util alone, no stoppable: the
/// benchmarks' baseline. It stops at the first signal, without draining.
mod plain {
    use super::*;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;

    pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let builder = Builder::new(TokioExecutor::new());
        let stop = async {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate())?;
            tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
            std::io::Result::Ok(())
        };
        tokio::pin!(stop);
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => accepted?,
                done = &mut stop => return done,
            };
            let _ = stream.set_nodelay(true);
            let builder = builder.clone();
            tokio::spawn(async move {
                let service =
                    service_fn(|req| async { Ok::<_, Infallible>(route(req, None).await) });
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}
