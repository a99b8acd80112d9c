//! Zero-downtime restart (B22): SIGHUP starts a new copy of this program on
//! the same listening socket, waits until it serves, then drains this one.
//! No client sees a refused connect, a dropped SYN or a lost request: the
//! socket never closes, both processes accept until the old one stops.
//!
//! Run: `cargo run --example restart -- 127.0.0.1:3000`, then
//! `curl 127.0.0.1:3000/` (it names the serving process) and
//! `kill -HUP <pid>` as often as you like; SIGTERM or SIGINT stops.
//!
//! Under systemd (`Type=notify`, socket activation or not) it says READY=1
//! once serving, MAINPID= when it hands over, STOPPING=1 when it stops.

use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn, Request, Response};
use tokio::signal::unix::{signal, SignalKind};

/// Set for the processes after the first when the first was started by a
/// service manager that keeps the socket: their stop leaves it to it.
const ACTIVATED: &str = "RESTART_SOCKET_ACTIVATED";

/// How long a new process gets to start serving.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> io::Result<()> {
    // Before the runtime opens any descriptor: the passed ones first.
    let (listener, activated) = listen()?;
    tokio::runtime::Runtime::new()?.block_on(serve(listener, activated))
}

async fn serve(listener: TcpListener, activated: bool) -> io::Result<()> {
    // A handle of our own on the socket, to pass on at a handoff.
    let handle = listener.try_clone()?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let addr = listener.local_addr()?;
    let pid = std::process::id();
    println!("listening on http://{addr} (pid {pid})");
    let service = service_fn(move |req: Request<Incoming>| async move {
        let body = match req.uri().path().strip_prefix("/sleep/") {
            Some(ms) => {
                let ms = ms.parse().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                format!("slept {ms} ms in pid {pid}\n")
            }
            None => format!("hello from pid {pid}\n"),
        };
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
    });
    let mut server = stoppable_tokio::serve(listener, service).grace(Duration::from_secs(30));
    if activated {
        server = server.shared_listener();
    }
    let stopper = server.stopper();
    let served = tokio::spawn(server);
    stoppable::notify::ready()?;
    let mut handle = Some(handle);
    wait_for_stop_or_handoff(&mut handle, activated).await?;
    if handle.is_some() {
        // Handed over: the new process holds the socket now.
        stopper.share_listener();
    } else {
        stoppable::notify::stopping()?;
    }
    // Our own handle must not keep the socket open past a final stop (B1).
    drop(handle);
    let report = stopper.stop().await;
    let _ = served.await;
    println!(
        r#"{{"pid":{pid},"graceful":{},"requests_completed":{}}}"#,
        report.graceful, report.requests_completed
    );
    Ok(())
}

/// Serves until SIGTERM or SIGINT (leaves `handle` taken), or until a
/// SIGHUP's new process serves (leaves it in place).
async fn wait_for_stop_or_handoff(
    handle: &mut Option<TcpListener>,
    activated: bool,
) -> io::Result<()> {
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => {}
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
        let socket = handle.as_ref().expect("held until a stop").try_clone()?;
        let started = tokio::task::spawn_blocking(move || {
            let mut next = std::process::Command::new(std::env::current_exe()?);
            next.args(std::env::args_os().skip(1));
            if activated {
                next.env(ACTIVATED, "1");
            }
            stoppable::handoff::start(next, &[socket.as_fd()], READY_TIMEOUT)
        })
        .await
        .map_err(io::Error::other)?;
        match started {
            Ok(child) => {
                eprintln!("pid {} serves now; draining", child.id());
                stoppable::notify::main_pid(child.id())?;
                return Ok(());
            }
            Err(e) => eprintln!("restart failed, still serving: {e}"),
        }
    }
    handle.take();
    Ok(())
}

/// The socket passed down (by systemd, or by the previous process), else a
/// new one; and whether a service manager keeps it too.
fn listen() -> io::Result<(TcpListener, bool)> {
    // SAFETY: first thing in `main`, before anything opens or closes a
    // descriptor: the passed ones are still ours.
    #[allow(unsafe_code)]
    let mut passed = unsafe { stoppable::activation::take() }.map_err(io::Error::other)?;
    if let Some(socket) = passed.pop() {
        // From systemd directly, or from a chain of restarts begun by it.
        let by_handoff = std::env::var_os(stoppable::handoff::READY_SOCKET).is_some();
        let activated = !by_handoff || std::env::var_os(ACTIVATED).is_some();
        return Ok((socket.into_tcp()?, activated));
    }
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into())
        .parse()
        .map_err(io::Error::other)?;
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok((listener, false))
}
