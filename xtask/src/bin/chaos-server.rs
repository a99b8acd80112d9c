//! The chaos campaign's server (`cargo xtask stress --chaos`): the example
//! server's routes (the same `app.rs`) with every option of a stop on its
//! command line, plus a line-echo protocol (B20) on a second port, tracked
//! through `Tracker::track_raw` under a stop of its own. Every stop method
//! the campaign draws comes from outside, so the campaign stays a black box:
//! - SIGTERM or SIGINT: both stops begin (with the server's grace);
//! - stdin `stop` or `stop-within MS`: both stops begin, the second with a
//!   grace of its own (`Stopper::stop_within`);
//! - stdin `drop`: the HTTP server future and the lines' `Drive` are
//!   dropped (a `select!` that picked another branch); a stop comes later;
//! - `POST /shutdown`: from inside a handler (B13), lines too.
//!
//! Prints `listening on http(s)://ADDR`, then `lines on ADDR`, then, when
//! both stops completed, one line `{"http":{report},"lines":{report}}`,
//! and exits 0.

#[allow(dead_code)]
#[path = "../../../examples/server/app.rs"]
mod app;
#[path = "../../../tests/support/defer_accept.rs"]
mod defer_accept;

use std::convert::Infallible;
use std::future::Future;
use std::io::{self, BufRead, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use app::App;
use async_io::Async;
use futures_lite::future;
use futures_lite::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use hyper::body::Incoming;
use hyper::service::{service_fn, Service};
use hyper::{Method, Request, Response};
use stoppable::{Options, RawConn, Report, Runtime, Stopper};

const USAGE: &str = "usage: chaos-server --runtime tokio|smol|async-std [--grace-ms N]
  [--drain-delay-ms N] [--header-read-timeout-ms N] [--first-request-window-ms N]
  [--goaway-timeout-ms N] [--max-connection-age-ms N] [--move-on]
  [--serving-timeout-ms N] [--defer-accept]
  [--tls-cert FILE --tls-key FILE]
stdin: stop | stop-within MS | drop";

struct Args {
    runtime: String,
    options: Options,
    /// While serving: hyper's header-read timeout and the first-request
    /// timeout, both this.
    serving_timeout: Option<Duration>,
    tls: Option<Arc<stoppable::tls::rustls::ServerConfig>>,
    /// The HTTP listener takes a handshake's end only with the client's
    /// first bytes (`TCP_DEFER_ACCEPT`).
    defer_accept: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        runtime: "tokio".into(),
        options: Options::default(),
        serving_timeout: None,
        tls: None,
        defer_accept: false,
    };
    let (mut cert, mut key) = (None, None);
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        let mut value = || argv.next().ok_or(format!("{arg} needs a value"));
        let mut millis = || -> Result<Duration, String> {
            let v = value()?;
            v.parse()
                .map(Duration::from_millis)
                .map_err(|_| format!("bad {v:?}"))
        };
        let o = args.options;
        args.options = match arg.as_str() {
            "--runtime" => {
                args.runtime = value()?;
                o
            }
            "--grace-ms" => o.grace(millis()?),
            "--drain-delay-ms" => o.drain_delay(millis()?),
            "--header-read-timeout-ms" => o.header_read_timeout(millis()?),
            "--first-request-window-ms" => o.first_request_window(millis()?),
            "--goaway-timeout-ms" => o.goaway_timeout(millis()?),
            "--max-connection-age-ms" => o.max_connection_age(millis()?),
            "--move-on" => o.ask_clients_to_move_on(true),
            "--defer-accept" => {
                args.defer_accept = true;
                o
            }
            "--serving-timeout-ms" => {
                let timeout = millis()?;
                args.serving_timeout = Some(timeout);
                o.first_request_timeout(timeout)
            }
            "--tls-cert" => {
                cert = Some(value()?);
                o
            }
            "--tls-key" => {
                key = Some(value()?);
                o
            }
            other => return Err(format!("unknown option {other:?}")),
        };
    }
    if let (Some(cert), Some(key)) = (cert, key) {
        let config = stoppable::tls::server_config_from_files(cert, key);
        args.tls = Some(config.map_err(|e| format!("TLS: {e}"))?);
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("chaos-server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let served = match args.runtime.as_str() {
        "tokio" => on_tokio(args),
        "smol" => on_smol(args),
        "async-std" => on_async_std(args),
        other => Err(io::Error::other(format!("unknown runtime {other:?}"))),
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chaos-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The example's routes; `POST /shutdown` stops the lines too.
fn routes(
    app: &App,
    lines: Stopper,
) -> impl Service<
    Request<Incoming>,
    Response = Response<app::Body>,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
       + Send
       + 'static {
    let app = app.clone();
    service_fn(move |req: Request<Incoming>| {
        if req.method() == Method::POST && req.uri().path() == "/shutdown" {
            lines.request_stop();
        }
        app.clone().route(req)
    })
}

/// The HTTP listener and the line protocol's, on loopback.
fn bind(defer_accept: bool) -> io::Result<(TcpListener, TcpListener)> {
    let http = TcpListener::bind("127.0.0.1:0")?;
    if defer_accept {
        use std::os::fd::AsFd;
        defer_accept::set(http.as_fd())?;
    }
    Ok((http, TcpListener::bind("127.0.0.1:0")?))
}

fn announce(http: SocketAddr, lines: SocketAddr, tls: bool) -> io::Result<()> {
    let scheme = if tls { "https" } else { "http" };
    let mut out = io::stdout().lock();
    writeln!(out, "listening on {scheme}://{http}")?;
    writeln!(out, "lines on {lines}")?;
    out.flush()
}

fn on_tokio(args: Args) -> io::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(async {
        let (http, lines) = bind(args.defer_accept)?;
        http.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(http)?;
        let app = App::new(
            |d| Box::pin(tokio::time::sleep(d)),
            Arc::new(|task| drop(tokio::spawn(task))),
        );
        let runtime = stoppable_tokio::Tokio::current();
        let lines = Lines::start(runtime, lines, args.options)?;
        let service = routes(&app, lines.stopper.clone());
        let addr = listener.local_addr()?;
        announce(addr, lines.addr, args.tls.is_some())?;
        match args.tls.clone() {
            Some(tls) => {
                let server = stoppable_tokio::serve_tls(listener, tls, service);
                serve(tuned(server, &args), app, lines).await
            }
            None => {
                let server = stoppable_tokio::serve(listener, service);
                serve(tuned(server, &args), app, lines).await
            }
        }
    })
}

fn on_smol(args: Args) -> io::Result<()> {
    let executor = Arc::new(smol::Executor::new());
    for _ in 1..std::thread::available_parallelism().map_or(1, |n| n.get()) {
        let executor = executor.clone();
        std::thread::spawn(move || smol::block_on(executor.run(future::pending::<()>())));
    }
    smol::block_on(executor.run(async {
        let (http, lines) = bind(args.defer_accept)?;
        let listener = smol::net::TcpListener::try_from(http)?;
        let tasks = executor.clone();
        let app = App::new(
            |d| {
                Box::pin(async move {
                    smol::Timer::after(d).await;
                })
            },
            Arc::new(move |task| tasks.spawn(task).detach()),
        );
        let runtime = stoppable_smol::Smol::on(executor.clone());
        let lines = Lines::start(runtime, lines, args.options)?;
        let service = routes(&app, lines.stopper.clone());
        announce(listener.local_addr()?, lines.addr, args.tls.is_some())?;
        let tasks = executor.clone();
        match args.tls.clone() {
            Some(tls) => {
                let server = stoppable_smol::serve_tls_on(tasks, listener, tls, service);
                serve(tuned(server, &args), app, lines).await
            }
            None => {
                let server = stoppable_smol::serve_on(tasks, listener, service);
                serve(tuned(server, &args), app, lines).await
            }
        }
    }))
}

fn on_async_std(args: Args) -> io::Result<()> {
    async_std::task::block_on(async {
        let (http, lines) = bind(args.defer_accept)?;
        let listener = async_std::net::TcpListener::from(http);
        let app = App::new(
            |d| Box::pin(async move { async_std::task::sleep(d).await }),
            Arc::new(|task| drop(async_std::task::spawn(task))),
        );
        let lines = Lines::start(stoppable_async_std::AsyncStd, lines, args.options)?;
        let service = routes(&app, lines.stopper.clone());
        announce(listener.local_addr()?, lines.addr, args.tls.is_some())?;
        match args.tls.clone() {
            Some(tls) => {
                let server = stoppable_async_std::serve_tls(listener, tls, service)?;
                serve(tuned(server, &args), app, lines).await
            }
            None => {
                let server = stoppable_async_std::serve(listener, service)?;
                serve(tuned(server, &args), app, lines).await
            }
        }
    })
}

/// Anything that hands out a [`Stopper`]: the server of each runtime.
trait StopperSource {
    fn stopper(&self) -> Stopper;
}

impl<A, S, R: Runtime, E, H> StopperSource for stoppable::Server<A, S, R, E, H> {
    fn stopper(&self) -> Stopper {
        stoppable::Server::stopper(self)
    }
}

/// Serves until both stops completed, or until stdin says `drop`; stops on
/// signals and stdin commands; prints both reports.
/// The server with the scenario's options, and hyper's header-read
/// timeout while serving when it draws one.
fn tuned<A, S, R: Runtime, E, H>(
    server: stoppable::Server<A, S, R, E, H>,
    args: &Args,
) -> stoppable::Server<A, S, R, E, H> {
    let mut server = server.options(args.options);
    if let Some(timeout) = args.serving_timeout {
        server.builder_mut().http1().header_read_timeout(timeout);
    }
    server
}

async fn serve<F>(server: F, app: App, lines: Lines) -> io::Result<()>
where
    F: Future<Output = Result<Report, stoppable::Error>> + StopperSource,
{
    let http = server.stopper();
    app.set_stopper(http.clone());
    let (dropped_tx, dropped) = async_channel::bounded::<()>(1);
    control(http.clone(), lines.stopper.clone(), dropped_tx)?;
    let served = async {
        let _ = server.await;
    };
    let drop_it = async {
        let _ = dropped.recv().await;
    };
    future::or(served, drop_it).await;
    // The server future is gone here, served or dropped: the reports come
    // from the stoppers, which never depend on it.
    let http = http.stopping().await;
    let lines = lines.stopper.stopping().await;
    println!(
        r#"{{"http":{},"lines":{}}}"#,
        app::report_json(&http),
        app::report_json(&lines)
    );
    io::stdout().flush()
}

/// Signals and stdin commands, each on a thread of its own.
fn control(http: Stopper, lines: Stopper, dropped: async_channel::Sender<()>) -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    let (h, l) = (http.clone(), lines.clone());
    std::thread::spawn(move || {
        for _ in signals.forever() {
            h.request_stop();
            l.request_stop();
        }
    });
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["stop"] => {
                    http.request_stop();
                    lines.request_stop();
                }
                ["stop-within", ms] => {
                    let grace = Duration::from_millis(ms.parse().unwrap_or(0));
                    http.request_stop_within(grace);
                    lines.request_stop_within(grace);
                }
                ["drop"] => {
                    let _ = dropped.try_send(());
                }
                _ => eprintln!("chaos-server: unknown command {line:?}"),
            }
        }
    });
    Ok(())
}

/// The line-echo protocol (B20) under a stop of its own: each line is a
/// unit of work from its first byte to its echo.
struct Lines {
    addr: SocketAddr,
    stopper: Stopper,
}

impl Lines {
    fn start<R: Runtime>(runtime: R, listener: TcpListener, options: Options) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let listener = Async::new(listener)?;
        let tracker =
            stoppable::Tracker::new(runtime.clone(), options).map_err(io::Error::other)?;
        let stopper = tracker.stopper();
        let accepting = stopper.clone();
        runtime.clone().spawn(async move {
            let serve = |stream: Async<std::net::TcpStream>| {
                if let Some(conn) = tracker.track_raw(stream) {
                    runtime.spawn(echo_lines(conn));
                }
            };
            loop {
                let accepted = async { Some(listener.accept().await) };
                let drained = async {
                    accepting.draining().await;
                    None
                };
                // The drain first (`or` polls in order): once it began, the queue is
                // the drain's.
                match future::or(drained, accepted).await {
                    Some(Ok((stream, _))) => serve(stream),
                    Some(Err(_)) => {}
                    None => break,
                }
            }
            // B1: the drain takes what the kernel queued, then closes.
            let listener = stoppable::rt::AsyncIoListener(std::sync::Arc::new(listener));
            let mut queued = tracker.drain_listener(listener);
            while let Some(accepted) = queued.next().await {
                serve(accepted.io.0);
            }
        });
        Ok(Lines { addr, stopper })
    }
}

/// Echoes lines; closes when the drain asks, between lines.
async fn echo_lines(conn: RawConn<Async<std::net::TcpStream>>) {
    let handle = conn.handle();
    let mut reader = BufReader::new(conn);
    let mut line = Vec::new();
    loop {
        // The first byte of a line, or the drain: bytes win (B4).
        let has_bytes = async { matches!(reader.fill_buf().await, Ok(b) if !b.is_empty()) };
        let closing = async {
            handle.closing().await;
            false
        };
        if !future::or(has_bytes, closing).await {
            return;
        }
        let _work = handle.work();
        line.clear();
        if !matches!(reader.read_until(b'\n', &mut line).await, Ok(n) if n > 0) {
            return;
        }
        if reader.get_mut().write_all(&line).await.is_err() {
            return;
        }
    }
}
