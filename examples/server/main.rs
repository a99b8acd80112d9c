//! The example server: every part of a graceful stop, on the runtime you
//! pick. Its command line and routes are a contract (examples/server/README.md).
//!
//! Run: `cargo run --release --example server -- --grace-ms 5000`

mod app;
mod listen;

use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use app::App;
use hyper::service::service_fn;
use listen::Listening;
use stoppable::rt::{async_io_builder, AsyncIoListener, SpawnExecutor};
use stoppable::tls::rustls::ServerConfig;
use stoppable::{Accept, Report, Runtime, Stopper};

const USAGE: &str = "usage: server [OPTIONS]
  --runtime tokio|smol|async-std   default tokio
  --addr HOST:PORT                 default 127.0.0.1:3000; port 0 picks a free port
  --grace-ms N                     grace period; absent = no limit (wait for in-flight work)
  --drain-delay-ms N               readiness delay before draining (B16); default 0
  --tls-cert FILE --tls-key FILE   serve HTTPS (PEM), ALPN h2 and http/1.1
  --plain                          serve without stoppable at all (the benchmarks' baseline)
routes: GET / /sleep/{ms} /split/{ms} /stream /ws /stats /ready, POST /echo /shutdown
SIGTERM or SIGINT stops gracefully; a second one forces the stop.
With LISTEN_FDS=1 (socket activation; LISTEN_PID, if set, must be this
process) it serves the inherited socket, descriptor 3, instead of --addr,
and leaves it working for its other owners when it stops.";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rt {
    Tokio,
    Smol,
    AsyncStd,
}

struct Options {
    runtime: Rt,
    addr: SocketAddr,
    grace: Option<Duration>,
    drain_delay: Duration,
    plain: bool,
    /// Set by `--tls-cert` and `--tls-key` together.
    tls: Option<Arc<ServerConfig>>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        runtime: Rt::Tokio,
        addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
        grace: None,
        drain_delay: Duration::ZERO,
        plain: false,
        tls: None,
    };
    let (mut cert, mut key) = (None, None);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--runtime" => {
                options.runtime = match value()?.as_str() {
                    "tokio" => Rt::Tokio,
                    "smol" => Rt::Smol,
                    "async-std" => Rt::AsyncStd,
                    other => return Err(format!("unknown runtime {other:?}")),
                }
            }
            "--addr" => {
                let v = value()?;
                options.addr = v.parse().map_err(|_| format!("bad --addr {v:?}"))?;
            }
            "--grace-ms" => options.grace = Some(millis(&arg, value()?)?),
            "--drain-delay-ms" => options.drain_delay = millis(&arg, value()?)?,
            "--tls-cert" => cert = Some(value()?),
            "--tls-key" => key = Some(value()?),
            "--plain" => options.plain = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    options.tls = match (cert, key) {
        (None, None) => None,
        (Some(_), Some(_)) if options.plain => return Err("--plain serves without TLS".into()),
        (Some(cert), Some(key)) => Some(
            stoppable::tls::server_config_from_files(cert, key).map_err(|e| format!("TLS: {e}"))?,
        ),
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
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
    // Before any runtime starts: a passed socket is taken first (B22).
    let served = listen::listen(options.addr).and_then(|listening| match options.runtime {
        Rt::Tokio => on_tokio(options, listening),
        Rt::Smol => on_smol(options, listening),
        Rt::AsyncStd => on_async_std(options, listening),
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The first line on stdout, flushed at once: scripts wait for it.
/// The first line: where the server listens.
fn announcement(addr: SocketAddr, options: &Options) -> String {
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    format!("listening on {scheme}://{addr}")
}

/// Prints the first line, once signals are handled: a SIGTERM sent as soon
/// as it is read stops the server gracefully, never kills it.
fn announce(line: &str) -> io::Result<()> {
    println!("{line}");
    io::stdout().flush()
}

fn configure<A, S, R: Runtime, E, H>(
    server: stoppable::Server<A, S, R, E, H>,
    options: &Options,
    shared: bool,
) -> stoppable::Server<A, S, R, E, H> {
    let mut server = server.drain_delay(options.drain_delay);
    if shared {
        server = server.shared_listener();
    }
    match options.grace {
        Some(grace) => server.grace(grace),
        None => server,
    }
}

fn on_tokio(options: Options, listening: Listening) -> io::Result<()> {
    let Listening { listener, shared } = listening;
    tokio::runtime::Runtime::new()?.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let line = announcement(listener.local_addr()?, &options);
        let app = App::new(
            |d| Box::pin(tokio::time::sleep(d)),
            Arc::new(|task| drop(tokio::spawn(task))),
        );
        let routes = app.clone();
        let service = service_fn(move |req| routes.clone().route(req));
        if options.plain {
            return plain::on_tokio(listener, service, line).await;
        }
        let on_signals = |stopper: &Stopper| {
            tokio::spawn(stoppable_tokio::stop_on_signals(stopper));
        };
        let served = match options.tls.clone() {
            Some(tls) => {
                let server = configure(
                    stoppable_tokio::serve_tls(listener, tls, service),
                    &options,
                    shared,
                );
                tokio::spawn(server_until_stopped(server, app, on_signals, line))
            }
            None => {
                let server = configure(stoppable_tokio::serve(listener, service), &options, shared);
                tokio::spawn(server_until_stopped(server, app, on_signals, line))
            }
        };
        served.await.map_err(io::Error::other)?
    })
}

fn on_smol(options: Options, listening: Listening) -> io::Result<()> {
    let Listening { listener, shared } = listening;
    // One executor, run on every core. Its threads block in futures-lite's
    // `block_on`, not smol's, so async-io's own thread alone waits on the
    // sockets: with smol's, it and the executor's threads take turns at it,
    // on a back-off timed by the wall clock, and the instructions a request
    // costs moved with it between runs of `bench --exact` (by up to 0.6 %).
    let executor = Arc::new(smol::Executor::new());
    for _ in 1..std::thread::available_parallelism().map_or(1, |n| n.get()) {
        let executor = executor.clone();
        std::thread::spawn(move || {
            futures_lite::future::block_on(executor.run(std::future::pending::<()>()))
        });
    }
    futures_lite::future::block_on(executor.run(async {
        let listener = smol::net::TcpListener::try_from(listener)?;
        let line = announcement(listener.local_addr()?, &options);
        let tasks = executor.clone();
        let app = App::new(
            |d| {
                Box::pin(async move {
                    smol::Timer::after(d).await;
                })
            },
            Arc::new(move |task| tasks.spawn(task).detach()),
        );
        let routes = app.clone();
        let service = service_fn(move |req| routes.clone().route(req));
        let runtime = stoppable_smol::Smol::on(executor.clone());
        if options.plain {
            let listener = AsyncIoListener(listener.into());
            return plain::on_async_io(listener, service, runtime, line).await;
        }
        let signals = executor.clone();
        let on_signals = move |stopper: &Stopper| {
            signals
                .spawn(stoppable_smol::stop_on_signals(stopper))
                .detach();
        };
        let tasks = executor.clone();
        match options.tls.clone() {
            Some(tls) => {
                let server = stoppable_smol::serve_tls_on(tasks, listener, tls, service);
                let server = configure(server, &options, shared);
                executor.spawn(server_until_stopped(server, app, on_signals, line))
            }
            None => {
                let server = stoppable_smol::serve_on(tasks, listener, service);
                let server = configure(server, &options, shared);
                executor.spawn(server_until_stopped(server, app, on_signals, line))
            }
        }
        .await
    }))
}

fn on_async_std(options: Options, listening: Listening) -> io::Result<()> {
    let Listening { listener, shared } = listening;
    // The server runs on async-std's executor, and this thread only waits:
    // `async_std::task::block_on` would have it take turns at driving the
    // reactor too, a third thread that may poll the sockets (with it, the
    // instructions a request costs moved between runs of `bench --exact`).
    futures_lite::future::block_on(async_std::task::spawn(async move {
        let listener = async_std::net::TcpListener::from(listener);
        let line = announcement(listener.local_addr()?, &options);
        let app = App::new(
            |d| Box::pin(async move { async_std::task::sleep(d).await }),
            Arc::new(|task| drop(async_std::task::spawn(task))),
        );
        let routes = app.clone();
        let service = service_fn(move |req| routes.clone().route(req));
        if options.plain {
            let listener = std::net::TcpListener::try_from(listener)?;
            let listener = AsyncIoListener(Arc::new(async_io::Async::new(listener)?));
            return plain::on_async_io(listener, service, stoppable_async_std::AsyncStd, line)
                .await;
        }
        let on_signals = |stopper: &Stopper| {
            async_std::task::spawn(stoppable_async_std::stop_on_signals(stopper));
        };
        match options.tls.clone() {
            Some(tls) => {
                let server = stoppable_async_std::serve_tls(listener, tls, service)?;
                let server = configure(server, &options, shared);
                async_std::task::spawn(server_until_stopped(server, app, on_signals, line))
            }
            None => {
                let server = stoppable_async_std::serve(listener, service)?;
                let server = configure(server, &options, shared);
                async_std::task::spawn(server_until_stopped(server, app, on_signals, line))
            }
        }
        .await
    }))
}

/// Serves until a stop completes: `on_signals` installs the runtime's signal
/// handlers and spawns their watch (the first SIGTERM or SIGINT stops, a
/// second forces, B17) before the first line, `line`, is printed; progress
/// goes to stderr, and the report is printed as one JSON line on stdout.
async fn server_until_stopped<F>(
    server: F,
    app: App,
    on_signals: impl FnOnce(&Stopper),
    line: String,
) -> io::Result<()>
where
    F: Future<Output = Result<Report, stoppable::Error>> + StopperSource,
{
    let stopper = server.stopper();
    app.set_stopper(stopper.clone());
    on_signals(&stopper);
    announce(&line)?;
    let progress = show_progress(stopper);
    let report = server.await.map_err(io::Error::other)?;
    progress.finish();
    println!("{}", app::report_json(&report));
    io::stdout().flush()
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

/// Progress on stderr: a line when the drain starts, then what is still
/// open every second, until [`Progress::finish`].
fn show_progress(stopper: Stopper) -> Progress {
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        futures_lite::future::block_on(stopper.draining());
        eprintln!("draining: {}", app::counts_json(&stopper));
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            finished.recv_timeout(Duration::from_secs(1))
        {
            eprintln!("still open: {}", app::counts_json(&stopper));
        }
    });
    Progress { done, thread }
}

struct Progress {
    done: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Progress {
    /// The stop completed: the drain's line is out; stop the ticks.
    fn finish(self) {
        drop(self.done);
        let _ = self.thread.join();
    }
}

/// `--plain`: the same routes served by hyper-util alone, with no
/// stoppable: the benchmarks' baseline. The first signal exits at once.
mod plain {
    use super::*;
    use hyper::body::Incoming;
    use hyper::service::Service;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use hyper_util::server::conn::auto::Builder;

    fn exit_on_signal() -> io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
        std::thread::spawn(move || {
            if signals.forever().next().is_some() {
                std::process::exit(0);
            }
        });
        Ok(())
    }

    pub async fn on_tokio<S>(
        listener: tokio::net::TcpListener,
        service: S,
        line: String,
    ) -> io::Result<()>
    where
        S: Service<
                Request<Incoming>,
                Response = Response<app::Body>,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        exit_on_signal()?;
        announce(&line)?;
        // hyper as the stoppable servers have it: tokio's timer, hyper's
        // 75 s header-read timeout.
        let builder = stoppable_tokio::builder();
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service.clone())
                .into_owned();
            tokio::spawn(connection);
        }
    }

    pub async fn on_async_io<S, R>(
        mut listener: AsyncIoListener,
        service: S,
        runtime: R,
        line: String,
    ) -> io::Result<()>
    where
        S: Service<
                Request<Incoming>,
                Response = Response<app::Body>,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        R: Runtime,
    {
        exit_on_signal()?;
        announce(&line)?;
        let builder: Builder<SpawnExecutor<R>> = async_io_builder(runtime.clone());
        loop {
            let accepted = std::future::poll_fn(|cx| listener.poll_accept(cx)).await?;
            // As the stoppable server does (`Options::tcp_nodelay`).
            let _ = accepted.io.0.get_ref().set_nodelay(true);
            let connection = builder
                .serve_connection_with_upgrades(accepted.io, service.clone())
                .into_owned();
            // Not `async move { connection.await }`: that future would hold the
            // connection twice (captured, and awaited), and the task twice its size.
            runtime.spawn(futures_util::FutureExt::map(connection, drop));
        }
    }
}
