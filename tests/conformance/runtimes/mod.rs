//! What the suite needs from a runtime: start a server in a thread of its
//! own, block its executor on demand, and count its live tasks.

pub mod async_std;
pub mod smol;
pub mod tokio;
pub mod tokio_tracker;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use stoppable::{Report, Stopper};

use crate::client::DEADLINE;

#[derive(Clone, Copy, Default)]
pub struct Options {
    pub grace: Option<Duration>,
    pub window: Option<Duration>,
    pub drain_delay: Option<Duration>,
    pub header_read_timeout: Option<Duration>,
    pub drain_signal_in_requests: bool,
    /// Serve HTTPS with the suite's certificate (`crate::tls`).
    pub tls: bool,
}

impl Options {
    /// The same settings, as the library's options.
    pub fn to_stoppable(self) -> stoppable::Options {
        let mut options = stoppable::Options::default();
        if let Some(grace) = self.grace {
            options = options.grace(grace);
        }
        if let Some(window) = self.window {
            options = options.first_request_window(window);
        }
        if let Some(delay) = self.drain_delay {
            options = options.drain_delay(delay);
        }
        if let Some(timeout) = self.header_read_timeout {
            options = options.header_read_timeout(timeout);
        }
        options.drain_signal_in_requests(self.drain_signal_in_requests)
    }
}

pub trait TestRuntime {
    /// Starts a server on 127.0.0.1, port 0, serving the test app.
    fn start(options: Options) -> TestServer;
    /// Starts a line-echo server (B20) on its own accept loop, through
    /// `Tracker::track_raw`.
    fn start_lines(options: Options) -> TestServer;
    /// Builds a server, runs `before` (with its address), stops it before
    /// its first poll, then serves it to the end and polls it once more
    /// (B1, B2): (what serving gave, the stop's report, the second poll).
    fn stop_before_first_poll(before: impl FnOnce(SocketAddr)) -> StoppedEarly;
}

pub type StoppedEarly = (
    Result<Report, stoppable::Error>,
    Report,
    Result<Report, stoppable::Error>,
);

/// Stops `server` before its first poll, serves it, then polls it again.
pub async fn stop_then_serve<F>(server: F, stopper: Stopper) -> StoppedEarly
where
    F: std::future::Future<Output = Result<Report, stoppable::Error>>,
{
    let stopping = stopper.stop();
    let mut server = std::pin::pin!(server);
    let served = server.as_mut().await;
    let again = std::future::poll_fn(|cx| server.as_mut().poll(cx)).await;
    (served, stopping.await, again)
}

/// A running server, driven by its runtime in its own thread.
pub struct TestServer {
    pub addr: SocketAddr,
    pub stopper: Stopper,
    pub done: mpsc::Receiver<Result<Report, stoppable::Error>>,
    pub control: Control,
}

/// Questions to a server's runtime, answered by a task on it.
pub enum Command {
    Block(mpsc::Sender<()>, mpsc::Receiver<()>),
    AnyTaskLeft(mpsc::Sender<bool>),
}

/// The suite's handle on a server's runtime: a channel to its control task.
pub struct Control(pub async_channel::Sender<Command>);

impl Control {
    /// Blocks the server's executor until the guard drops.
    pub fn block(&self) -> Blocked {
        let (ack_tx, ack_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        self.0
            .send_blocking(Command::Block(ack_tx, release_rx))
            .expect("runtime alive");
        ack_rx.recv().expect("runtime blocked");
        Blocked::new(release_tx)
    }

    /// Whether any task of the server (the suite's own excluded) is alive.
    pub fn any_task_left(&self) -> bool {
        let (tx, rx) = mpsc::channel();
        self.0
            .send_blocking(Command::AnyTaskLeft(tx))
            .expect("runtime alive");
        rx.recv().expect("runtime answers")
    }
}

/// The control task: runs on the server's executor until the test ends.
pub async fn control(commands: async_channel::Receiver<Command>, any_task_left: impl Fn() -> bool) {
    while let Ok(command) = commands.recv().await {
        match command {
            Command::Block(ack, release) => {
                let _ = ack.send(());
                // Blocks the executor's thread until released.
                let _ = release.recv();
            }
            Command::AnyTaskLeft(reply) => {
                let _ = reply.send(any_task_left());
            }
        }
    }
}

/// Keeps a server's executor blocked; dropping it lets it run again.
pub struct Blocked {
    /// Dropping the sender wakes the blocked executor.
    _release: mpsc::Sender<()>,
}

impl Blocked {
    pub fn new(release: mpsc::Sender<()>) -> Self {
        Blocked { _release: release }
    }
}

impl TestServer {
    /// Waits for the server thread to report its address and stopper.
    pub fn when_started(
        setup: mpsc::Receiver<(SocketAddr, Stopper)>,
        done: mpsc::Receiver<Result<Report, stoppable::Error>>,
        control: async_channel::Sender<Command>,
    ) -> TestServer {
        let (addr, stopper) = setup.recv().expect("server started");
        TestServer {
            addr,
            stopper,
            done,
            control: Control(control),
        }
    }

    /// Waits for the server future to resolve, within the deadline.
    pub fn finished(&self) -> Report {
        self.done
            .recv_timeout(DEADLINE)
            .expect("the stop completes within the deadline")
            .expect("the server ends with a report")
    }

    /// Starts a stop and waits for its report.
    pub fn stop(&self) -> Report {
        self.stopper.request_stop();
        self.finished()
    }
}

/// Serves, telling the test once the server was polled: a stop that comes
/// before the first poll means the server never serves (B2).
pub async fn serve_then_announce<F: std::future::Future>(
    server: F,
    announce: impl FnOnce(),
) -> F::Output {
    let mut server = std::pin::pin!(server);
    let mut announce = Some(announce);
    std::future::poll_fn(|cx| {
        let polled = server.as_mut().poll(cx);
        if let Some(announce) = announce.take() {
            announce();
        }
        polled
    })
    .await
}

/// Applies the options to a server of any runtime, hands its stopper to
/// the app and to the test (once polled), and serves it to the end.
pub async fn run<A, S, R: stoppable::Runtime, E, H>(
    server: stoppable::Server<A, S, R, E, H>,
    options: Options,
    app: &crate::app::App,
    addr: SocketAddr,
    setup: mpsc::Sender<(SocketAddr, Stopper)>,
) -> Result<Report, stoppable::Error>
where
    stoppable::Server<A, S, R, E, H>:
        std::future::Future<Output = Result<Report, stoppable::Error>>,
{
    let server = server.options(options.to_stoppable());
    let stopper = server.stopper();
    *app.stopper.lock().unwrap() = Some(stopper.clone());
    serve_then_announce(server, || {
        let _ = setup.send((addr, stopper));
    })
    .await
}

/// A test line server's accept loop on smol or async-std: accepts until the
/// drain begins, then refuses new attempts and takes what the kernel queued
/// (B1).
pub async fn accept_until_drained<S, A, F>(
    accept: A,
    listener: stoppable::RawSocket,
    stopper: &Stopper,
    mut serve: impl FnMut(S),
) where
    A: Fn() -> F,
    F: std::future::Future<Output = std::io::Result<(S, SocketAddr)>>,
{
    use futures_lite::future;
    loop {
        let accepted = async { Some(accept().await) };
        let drained = async {
            stopper.draining().await;
            None
        };
        match future::or(accepted, drained).await {
            Some(Ok((stream, _))) => serve(stream),
            Some(Err(_)) => {}
            None => break,
        }
    }
    stoppable::refuse_new_connections(listener);
    while let Some(Ok((stream, _))) = future::poll_once(accept()).await {
        serve(stream);
    }
}
