//! Zero-downtime restart (B22): SIGHUP starts a new copy of this program on
//! the same listening socket, waits until it serves, then drains this one.
//! No client sees a refused connect, a dropped SYN or a lost request: the
//! socket never closes, both processes accept until the old one stops.
//!
//! Run: `cargo run --example restart -- [--runtime tokio|smol|async-std]
//! [ADDR]` (default 127.0.0.1:3000), then `kill -HUP <pid>` as often as you
//! like; SIGTERM or SIGINT stops. It serves the example server's routes.
//!
//! Under systemd (`Type=notify`, socket activation or not) it says READY=1
//! once serving, MAINPID= when it hands over, STOPPING=1 when it stops.

#[path = "server/app.rs"]
mod app;
#[path = "server/listen.rs"]
mod listen;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use app::App;
use hyper::service::service_fn;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use stoppable::{Report, Stopper};

/// How long a new process gets to start serving.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

const USAGE: &str = "usage: restart [--runtime tokio|smol|async-std] [ADDR]";

fn main() -> ExitCode {
    let mut runtime = "tokio".to_owned();
    let mut addr = "127.0.0.1:3000".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runtime" => runtime = args.next().unwrap_or_default(),
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => addr = arg,
        }
    }
    match run(&runtime, &addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

fn run(runtime: &str, addr: &str) -> io::Result<()> {
    // Before any runtime opens a descriptor: the passed ones first.
    let (listener, activated) = listen(addr)?;
    // Watched from the start, so no signal is missed.
    let signals = signal_hook::iterator::Signals::new([SIGHUP, SIGTERM, SIGINT])?;
    let pid = std::process::id();
    println!("listening on http://{} (pid {pid})", listener.local_addr()?);
    io::stdout().flush()?;
    let report = match runtime {
        "tokio" => on_tokio(listener, activated, signals)?,
        "smol" => on_smol(listener, activated, signals)?,
        "async-std" => on_async_std(listener, activated, signals)?,
        other => return Err(io::Error::other(format!("unknown runtime {other:?}"))),
    };
    // The example server's report, with the pid first: several processes
    // of a chain write to one stdout.
    let json = app::report_json(&report);
    println!("{{\"pid\":{pid},{}", json.trim_start_matches('{'));
    Ok(())
}

/// Serves on the calling thread's behalf until a stop or a handoff, then
/// stops: the runtime-specific parts are the three functions below.
fn serve_until_done(
    stopper: &Stopper,
    listener_handle: TcpListener,
    mut signals: signal_hook::iterator::Signals,
) -> io::Result<()> {
    stoppable::notify::ready()?;
    // A stop from inside (`POST /shutdown`) ends the wait for signals too.
    let (stopped, closer) = (stopper.clone(), signals.handle());
    std::thread::spawn(move || {
        futures_lite::future::block_on(stopped.stopping());
        closer.close();
    });
    if wait_for_stop_or_handoff(&listener_handle, &mut signals)? {
        // Handed over: the new process holds the socket now.
        stopper.share_listener();
    } else {
        stoppable::notify::stopping()?;
    }
    // Our own handle must not keep the socket open past a final stop (B1).
    drop(listener_handle);
    stopper.request_stop();
    // From now on a SIGTERM or SIGINT forces the stop (B17); a SIGHUP
    // changes nothing. The signals stay ours, so none kills the process.
    let forcing = stopper.clone();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if signal != SIGHUP {
                forcing.request_stop_within(Duration::ZERO);
            }
        }
    });
    Ok(())
}

/// A socket a service manager keeps is shared from the start (B22): even a
/// stop from inside (`POST /shutdown`) must leave it working.
fn shared_if<A, S, R: stoppable::Runtime, E, H>(
    server: stoppable::Server<A, S, R, E, H>,
    activated: bool,
) -> stoppable::Server<A, S, R, E, H> {
    if activated {
        server.shared_listener()
    } else {
        server
    }
}

/// Blocks until SIGTERM or SIGINT, or a stop from inside (false), or until
/// a SIGHUP's new process serves (true).
fn wait_for_stop_or_handoff(
    listener: &TcpListener,
    signals: &mut signal_hook::iterator::Signals,
) -> io::Result<bool> {
    for signal in signals.forever() {
        if signal != SIGHUP {
            return Ok(false);
        }
        let mut next = std::process::Command::new(std::env::current_exe()?);
        next.args(std::env::args_os().skip(1));
        match stoppable::handoff::start(next, &[listener.as_fd()], READY_TIMEOUT) {
            Ok(child) => {
                eprintln!("pid {} serves now; draining", child.id());
                if let Err(e) = stoppable::notify::main_pid(child.id()) {
                    eprintln!("could not tell systemd the new main pid: {e}");
                }
                return Ok(true);
            }
            Err(e) => eprintln!("restart failed, still serving: {e}"),
        }
    }
    Ok(false)
}

fn on_tokio(
    listener: TcpListener,
    activated: bool,
    signals: signal_hook::iterator::Signals,
) -> io::Result<Report> {
    let runtime = tokio::runtime::Runtime::new()?;
    let handle = listener.try_clone()?;
    let (stopper, served) = runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let app = App::new(
            |d| Box::pin(tokio::time::sleep(d)),
            Arc::new(|task| drop(tokio::spawn(task))),
        );
        let routes = app.clone();
        let service = service_fn(move |req| routes.clone().route(req));
        let server = shared_if(stoppable_tokio::serve(listener, service), activated);
        app.set_stopper(server.stopper());
        io::Result::Ok((server.stopper(), tokio::spawn(server)))
    })?;
    serve_until_done(&stopper, handle, signals)?;
    let _ = runtime.block_on(served);
    Ok(runtime.block_on(stopper.stopping()))
}

fn on_smol(
    listener: TcpListener,
    activated: bool,
    signals: signal_hook::iterator::Signals,
) -> io::Result<Report> {
    let executor = Arc::new(smol::Executor::new());
    for _ in 0..std::thread::available_parallelism().map_or(1, |n| n.get()) {
        let executor = executor.clone();
        std::thread::spawn(move || smol::block_on(executor.run(std::future::pending::<()>())));
    }
    let handle = listener.try_clone()?;
    let listener = smol::net::TcpListener::try_from(listener)?;
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
    let server = shared_if(
        stoppable_smol::serve_on(executor.clone(), listener, service),
        activated,
    );
    let stopper = server.stopper();
    app.set_stopper(stopper.clone());
    let served = executor.spawn(server);
    serve_until_done(&stopper, handle, signals)?;
    let _ = smol::block_on(served);
    Ok(smol::block_on(stopper.stopping()))
}

fn on_async_std(
    listener: TcpListener,
    activated: bool,
    signals: signal_hook::iterator::Signals,
) -> io::Result<Report> {
    let handle = listener.try_clone()?;
    let listener = async_std::net::TcpListener::from(listener);
    let app = App::new(
        |d| Box::pin(async move { async_std::task::sleep(d).await }),
        Arc::new(|task| drop(async_std::task::spawn(task))),
    );
    let routes = app.clone();
    let service = service_fn(move |req| routes.clone().route(req));
    let server = shared_if(stoppable_async_std::serve(listener, service)?, activated);
    let stopper = server.stopper();
    app.set_stopper(stopper.clone());
    let served = async_std::task::spawn(server);
    serve_until_done(&stopper, handle, signals)?;
    let _ = async_std::task::block_on(served);
    Ok(async_std::task::block_on(stopper.stopping()))
}

/// The socket passed down (by systemd, or by the previous process), else a
/// new one; and whether a service manager keeps it too.
fn listen(addr: &str) -> io::Result<(TcpListener, bool)> {
    let addr: SocketAddr = addr.parse().map_err(io::Error::other)?;
    let listening = listen::listen(addr)?;
    // Kept by systemd: passed by it directly, or by a chain of restarts
    // begun by it (the handoff tells the library).
    Ok((listening.listener, listening.shared))
}
