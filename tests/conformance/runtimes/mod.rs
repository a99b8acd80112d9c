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
    pub goaway_timeout: Option<Duration>,
    pub drain_signal_in_requests: bool,
    /// Serve HTTPS with the suite's certificate (`crate::tls`).
    pub tls: bool,
    /// The listener hands out no raw sockets: the stop can reach a
    /// connection only through its driver (`NoSockets`).
    pub forget_sockets: bool,
    /// The make-service panics on this call (1 = the first), inside the
    /// server's accept loop (`AppMaker`).
    pub panic_on_make: Option<usize>,
    /// Serve the app as an axum `Router` with `ConnectInfo`
    /// (`crate::app::router`), straight to `serve`.
    pub axum: bool,
    /// hyper's HTTP/1.1 header-read timeout while serving (the runtime
    /// crates' builder has 30 s).
    pub serving_header_timeout: Option<Duration>,
    /// `Options::handshake_timeout`.
    pub handshake_timeout: Option<Duration>,
    /// `Options::first_request_timeout`.
    pub first_request_timeout: Option<Duration>,
    /// The test keeps a second handle on the listening socket, as another
    /// owner (a sibling process, systemd): `TestServer::other_owner` (and
    /// `TestServer::unix_other_owner`, with `unix`).
    pub other_owner: bool,
    /// The server is told its listening socket is shared (B22).
    pub shared_listener: bool,
    /// Clients are asked to move on during the delay (B23).
    pub move_on: bool,
    /// Connections have a maximum age while serving (B23).
    pub max_age: Option<Duration>,
    /// The server also serves a Unix domain socket (`TestServer::unix`),
    /// under the same stop.
    pub unix: bool,
    /// The server stops when the app's `/signal` route is asked for
    /// (`Server::with_graceful_shutdown`).
    pub shutdown_future: bool,
    /// At most this many connections at once (`Options::max_connections`).
    pub max_connections: Option<usize>,
    /// The listener takes a handshake's end only with the client's first
    /// bytes (`TCP_DEFER_ACCEPT`): a connect that succeeded stays a
    /// handshake under way at the server, as over a long round trip.
    pub defer_accept: bool,
}

/// The server's Unix domain listener, when the options ask for one: bound
/// to a path of its own in the temporary directory, non-blocking.
pub fn bind_unix(
    options: &Options,
) -> Option<(std::os::unix::net::UnixListener, std::path::PathBuf)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    if !options.unix {
        return None;
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path =
        std::env::temp_dir().join(format!("stoppable-suite-{}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind a Unix socket");
    listener.set_nonblocking(true).expect("non-blocking");
    Some((listener, path))
}

/// The Unix listener's path, and the test's own handle on it when the
/// options ask for another owner.
pub fn unix_parts(
    unix: &Option<(std::os::unix::net::UnixListener, std::path::PathBuf)>,
    options: &Options,
) -> (
    Option<std::path::PathBuf>,
    Option<std::os::unix::net::UnixListener>,
) {
    let Some((listener, path)) = unix else {
        return (None, None);
    };
    let other = options
        .other_owner
        .then(|| listener.try_clone().expect("a second handle"));
    (Some(path.clone()), other)
}

/// The server's listening socket on 127.0.0.1, port 0, non-blocking; and a
/// second handle on it when the options ask for another owner.
pub fn bind(options: &Options) -> (std::net::TcpListener, Option<std::net::TcpListener>) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    socket.bind(&addr.into()).expect("bind");
    if options.defer_accept {
        use std::os::fd::AsFd;
        crate::defer_accept::set(socket.as_fd()).expect("TCP_DEFER_ACCEPT");
    }
    // As tokio's bind: room for the bursts of connects some cases make.
    socket.listen(1024).expect("listen");
    socket.set_nonblocking(true).expect("non-blocking");
    let listener = std::net::TcpListener::from(socket);
    let other = options
        .other_owner
        .then(|| listener.try_clone().expect("a second handle"));
    (listener, other)
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
        if let Some(timeout) = self.goaway_timeout {
            options = options.goaway_timeout(timeout);
        }
        if let Some(age) = self.max_age {
            options = options.max_connection_age(age);
        }
        if let Some(limit) = self.max_connections {
            options = options.max_connections(limit);
        }
        if let Some(timeout) = self.handshake_timeout {
            options = options.handshake_timeout(timeout);
        }
        if let Some(timeout) = self.first_request_timeout {
            options = options.first_request_timeout(timeout);
        }
        options
            .drain_signal_in_requests(self.drain_signal_in_requests)
            .ask_clients_to_move_on(self.move_on)
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
    /// Tells the server's thread to drop the server future (or, with a
    /// `Tracker`, its `Drive`), as a `select!` that picked another branch.
    drop_tx: async_channel::Sender<()>,
    /// The test's own handle on the listening socket (`Options::other_owner`).
    pub other_owner: Option<std::net::TcpListener>,
    /// The path of its Unix domain listener (`Options::unix`).
    pub unix: Option<std::path::PathBuf>,
    /// The test's own handle on that listener (`Options::unix` and
    /// `Options::other_owner`).
    pub unix_other_owner: Option<std::os::unix::net::UnixListener>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(path) = &self.unix {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The channel that drops a server future: see [`TestServer::drop_server`].
pub fn drop_channel() -> (async_channel::Sender<()>, async_channel::Receiver<()>) {
    async_channel::bounded(1)
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
        drop_tx: async_channel::Sender<()>,
        other_owner: Option<std::net::TcpListener>,
    ) -> TestServer {
        let (addr, stopper) = setup.recv().expect("server started");
        TestServer {
            addr,
            stopper,
            done,
            control: Control(control),
            drop_tx,
            other_owner,
            unix: None,
            unix_other_owner: None,
        }
    }

    /// Drops the server future, and waits until it is gone.
    pub fn drop_server(&self) {
        self.request_drop();
        self.wait_dropped();
    }

    /// Asks for the server future to be dropped, without waiting: for an
    /// executor the test holds blocked.
    pub fn request_drop(&self) {
        self.drop_tx.send_blocking(()).expect("server thread alive");
    }

    /// Waits until the server future is gone (dropped, or it panicked).
    pub fn wait_dropped(&self) {
        crate::wait::until("the server future is gone", || self.drop_tx.is_closed());
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
/// the app and to the test (once polled), and serves it to the end: `None`
/// if the test dropped the server future first, or it panicked.
pub async fn run<A: stoppable::Accept, S, R: stoppable::Runtime, E, H>(
    server: stoppable::Server<A, S, R, E, H>,
    options: Options,
    app: &crate::app::App,
    addr: SocketAddr,
    setup: mpsc::Sender<(SocketAddr, Stopper)>,
    drop_rx: async_channel::Receiver<()>,
) -> Option<Result<Report, stoppable::Error>>
where
    stoppable::Server<A, S, R, E, H>:
        std::future::Future<Output = Result<Report, stoppable::Error>>,
{
    let mut server = server.options(options.to_stoppable());
    let errors = app.clone();
    server = server.on_connection_error(move |e| errors.record_error(e));
    if let Some(timeout) = options.serving_header_timeout {
        server.builder_mut().http1().header_read_timeout(timeout);
    }
    // The server says where it listens (the TCP listener, with a Unix one
    // beside it); the suite's clients connect there.
    assert_eq!(server.local_addr().ok(), Some(addr), "Server::local_addr");
    if options.shared_listener {
        server = server.shared_listener();
    }
    if options.shutdown_future {
        server = server.with_graceful_shutdown(app.shutdown_signal());
    }
    let stopper = server.stopper();
    *app.stopper.lock().unwrap() = Some(stopper.clone());
    let served = serve_then_announce(server, || {
        let _ = setup.send((addr, stopper));
    });
    unless_dropped(served, drop_rx).await
}

/// Runs `served` until it ends, panics (as a runtime's task would, the
/// panic caught) or the test asks to drop it; `None` for the last two.
/// The future is dropped before this returns; then `drop_rx` is closed.
pub async fn unless_dropped<F: std::future::Future>(
    served: F,
    drop_rx: async_channel::Receiver<()>,
) -> Option<F::Output> {
    use futures_util::FutureExt;
    let served = async {
        std::panic::AssertUnwindSafe(served)
            .catch_unwind()
            .await
            .ok()
    };
    let dropped = async {
        let _ = drop_rx.recv().await;
        None
    };
    // The drop first: when both are ready at once (the test unblocked the
    // executor), the server must not get a last poll.
    let out = futures_lite::future::or(dropped, served).await;
    drop_rx.close();
    out
}

/// A listener whose connections do not tell their sockets
/// ([`stoppable::WithoutSocket`]): the stop reaches them only through their
/// drivers.
pub struct NoSockets<A>(pub A);

impl<A: stoppable::Accept> stoppable::Accept for NoSockets<A> {
    type Io = stoppable::WithoutSocket<A::Io>;

    fn poll_accept(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<stoppable::Accepted<Self::Io>>> {
        self.0.poll_accept(cx).map_ok(forget_socket)
    }

    fn socket(&self) -> Option<stoppable::BorrowedSocket<'_>> {
        self.0.socket()
    }

    fn accept_queued(&mut self) -> Option<std::io::Result<stoppable::Accepted<Self::Io>>> {
        Some(self.0.accept_queued()?.map(forget_socket))
    }
}

fn forget_socket<Io>(
    accepted: stoppable::Accepted<Io>,
) -> stoppable::Accepted<stoppable::WithoutSocket<Io>> {
    accepted.map_io(stoppable::WithoutSocket)
}

/// A test line server's accept loop on smol or async-std: accepts until the
/// drain begins, then hands the listener to the tracker's drain (B1).
pub async fn accept_until_drained<R: stoppable::Runtime>(
    listener: std::sync::Arc<async_io::Async<std::net::TcpListener>>,
    tracker: &stoppable::Tracker<R>,
    mut serve: impl FnMut(async_io::Async<std::net::TcpStream>),
) {
    use futures_lite::future;
    let stopper = tracker.stopper();
    loop {
        let accepted = async { Some(listener.accept().await) };
        let drained = async {
            stopper.draining().await;
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
    let mut queued = tracker.drain_listener(stoppable::rt::AsyncIoListener(listener));
    while let Some(accepted) = queued.next().await {
        serve(accepted.io.0);
    }
}
