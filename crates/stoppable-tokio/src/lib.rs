//! Graceful stop for hyper servers on tokio: [`serve`] a listener, take a
//! [`Stopper`], and `stop().await` the [`Report`].
//!
//! ```no_run
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper::{Request, Response, body::Incoming, service::service_fn};
//!
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let hello = service_fn(|_req: Request<Incoming>| async {
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
//! });
//! let server = stoppable_tokio::serve(listener, hello).grace(Duration::from_secs(10));
//! let stopper = server.stopper();
//! tokio::spawn(server);
//! // ... later, on SIGTERM say:
//! let report = stopper.stop().await;
//! println!("graceful: {}", report.graceful);
//! # Ok(()) }
//! ```
//!
//! Or, as with axum, stop when a future resolves (`tokio::signal::ctrl_c()`,
//! a `CancellationToken`'s `cancelled()`, a channel's receive):
//!
//! ```no_run
//! # use std::convert::Infallible;
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! # use hyper::{Request, Response, body::Incoming, service::service_fn};
//! # async fn shutdown_signal() {}
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! # let hello = service_fn(|_req: Request<Incoming>| async {
//! #     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
//! # });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let report = stoppable_tokio::serve(listener, hello)
//!     .with_graceful_shutdown(shutdown_signal())
//!     .await?;
//! println!("graceful: {}", report.graceful);
//! # Ok(()) }
//! ```
//!
//! What a stop does, as a client sees it, is described in the `stoppable`
//! crate. HTTP/1.1 and HTTP/2 are served on one port (hyper-util's auto
//! builder), with upgrades.
//!
//! HTTPS: the `tls` feature adds `serve_tls` (tokio-rustls, ALPN `h2` and
//! `http/1.1`) and `server_config_from_files`; `stop_on_signals` comes with
//! the `signal` feature, `tracing` events with `tracing`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Instant;

#[cfg(feature = "tls")]
mod tls;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use stoppable::IntoMakeService;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;

/// Socket activation: the listening sockets passed down (B22).
#[cfg(unix)]
pub use stoppable::activation;
/// Handing the listening sockets to a new process (feature `handoff`).
#[cfg(all(unix, feature = "handoff"))]
pub use stoppable::handoff;
/// systemd's readiness protocol (feature `sd-notify`).
#[cfg(all(unix, feature = "sd-notify"))]
pub use stoppable::notify;
pub use stoppable::{
    make_service_fn, ConnError, ConnHandle, ConnInfo, ConnSocket, ConnStage, Counts, DrainSignal,
    Draining, Drive, EitherIo, EitherListener, Error, Handshaking, ListenerDrain, Listeners,
    MakeService, Options, Phase, RawConn, Report, Stopper, Stopping, TaskError, Tracked,
    TrackedTask, Tracker, WithoutSocket,
};
#[cfg(feature = "tls")]
pub use tls::{serve_tls, server_config, server_config_from_files, TlsAcceptor, TlsServer};

/// A server on tokio (on a TCP listener unless `L` says otherwise); see
/// [`stoppable::Server`] for its options.
pub type Server<S, L = Listener> = stoppable::Server<L, S, Tokio, TokioExecutor>;

/// Serves `service` on `listener` until a stop completes. Await the server
/// (or spawn it) to serve; take a [`Stopper`] first.
///
/// `listener` is a tokio `TcpListener` or `UnixListener`, or several under
/// one stop: a `Vec` of one kind, a pair of two kinds (each drained at the
/// stop as B1 says; the stop completes once all are closed):
///
/// ```no_run
/// # use std::convert::Infallible;
/// # use bytes::Bytes;
/// # use http_body_util::Full;
/// # use hyper::{Request, Response, body::Incoming, service::service_fn};
/// # async fn run() -> std::io::Result<()> {
/// let hello = service_fn(|_req: Request<Incoming>| async {
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
/// });
/// let tcp = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// let unix = tokio::net::UnixListener::bind("/tmp/app.sock")?;
/// let server = stoppable_tokio::serve((tcp, unix), hello);
/// let stopper = server.stopper();
/// tokio::spawn(server);
/// # Ok(()) }
/// ```
///
/// `app` is a hyper service, an axum `Router` (any tower service), or a
/// make-service that sees each connection: axum's
/// `into_make_service_with_connect_info::<SocketAddr>()` (so `ConnectInfo`
/// works), or [`stoppable::make_service_fn`] for hyper services.
///
/// hyper's builder has tokio's timer, with hyper's header-read timeout
/// ([`stoppable::builder::HEADER_READ_TIMEOUT`], which also bounds an idle
/// keep-alive connection); tune it with [`stoppable::Server::builder_mut`].
pub fn serve<L, App, M>(listener: L, app: App) -> Server<App::MakeService, L::Listener>
where
    L: IntoListener,
    App: IntoMakeService<M>,
{
    stoppable::Server::new(
        listener.into_listener(),
        app.into_make_service(),
        Tokio::current(),
        builder(),
    )
}

/// hyper's HTTP/1.1 + HTTP/2 builder on tokio, with tokio's timer (see
/// [`stoppable::builder::with_timer`]).
pub fn builder() -> Builder<TokioExecutor> {
    stoppable::builder::with_timer(Builder::new(TokioExecutor::new()), TokioTimer::new())
}

/// What [`serve`] serves on: a tokio TCP or Unix listener, or several
/// under one stop (a `Vec` of one kind, a pair of two kinds).
pub trait IntoListener {
    /// The listener as the server accepts from it.
    type Listener: stoppable::Accept;

    /// Converts it.
    fn into_listener(self) -> Self::Listener;
}

impl IntoListener for TcpListener {
    type Listener = Listener;

    fn into_listener(self) -> Listener {
        Listener(self)
    }
}

impl IntoListener for Listener {
    type Listener = Listener;

    fn into_listener(self) -> Listener {
        self
    }
}

#[cfg(unix)]
impl IntoListener for tokio::net::UnixListener {
    type Listener = UnixListener;

    fn into_listener(self) -> UnixListener {
        UnixListener(self)
    }
}

#[cfg(unix)]
impl IntoListener for UnixListener {
    type Listener = UnixListener;

    fn into_listener(self) -> UnixListener {
        self
    }
}

impl<L: IntoListener> IntoListener for Vec<L> {
    type Listener = stoppable::Listeners<L::Listener>;

    fn into_listener(self) -> Self::Listener {
        let all: Vec<L::Listener> = self.into_iter().map(L::into_listener).collect();
        all.into()
    }
}

impl<A: IntoListener, B: IntoListener> IntoListener for (A, B) {
    type Listener = stoppable::EitherListener<A::Listener, B::Listener>;

    fn into_listener(self) -> Self::Listener {
        (self.0.into_listener(), self.1.into_listener()).into()
    }
}

/// Tracks the connections of your own accept loop, for users with their own
/// listener and hyper builder.
///
/// ```no_run
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper::{Request, Response, body::Incoming, service::service_fn};
/// use hyper_util::{rt::{TokioExecutor, TokioIo}, server::conn::auto::Builder};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// let tracker = stoppable_tokio::tracker(stoppable_tokio::Options::default())?;
/// let stopper = tracker.stopper();
/// let report = tokio::spawn(tracker.drive());
/// let builder = Builder::new(TokioExecutor::new());
/// let hello = service_fn(|_req: Request<Incoming>| async {
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
/// });
/// loop {
///     // The drain first: once it began, the queue is the drain's.
///     let stream = tokio::select! {
///         biased;
///         () = stopper.draining() => break,
///         accepted = listener.accept() => accepted?.0,
///     };
///     let Some(conn) = tracker.track(TokioIo::new(stream)) else { break };
///     let driver = conn.serve(hello.clone(), |io, service| {
///         builder.serve_connection_with_upgrades(io, service).into_owned()
///     });
///     tokio::spawn(driver);
/// }
/// // B1: serve what the kernel already queued; the drain then closes the
/// // listener and tells the stop.
/// let mut queued = tracker.drain_listener(stoppable_tokio::Listener(listener));
/// while let Some(accepted) = queued.next().await {
///     if let Some(conn) = tracker.track(accepted.io) {
///         tokio::spawn(conn.serve(hello.clone(), |io, service| {
///             builder.serve_connection_with_upgrades(io, service).into_owned()
///         }));
///     }
/// }
/// println!("graceful: {}", report.await?.graceful);
/// # Ok(()) }
/// ```
pub fn tracker(options: Options) -> Result<Tracker<Tokio>, Error> {
    Tracker::new(Tokio::current(), options)
}

/// Accepts a connection the kernel has already queued, without waiting:
/// `None` when the queue is empty (or accepting failed). For the accept
/// queue drain of B1. It asks the kernel: tokio's own `poll_accept` may
/// answer `Pending` before the runtime has seen a connection arrive.
pub fn try_accept(listener: &TcpListener) -> Option<TcpStream> {
    accept_queued(listener)?.ok().map(|(stream, _)| stream)
}

fn accept_queued(listener: &TcpListener) -> Option<io::Result<(TcpStream, SocketAddr)>> {
    // Outside the runtime (a server dropped after it) tokio cannot take a
    // stream, and nothing could serve one: the queue is left to the close.
    Handle::try_current().ok()?;
    match socket2::SockRef::from(listener).accept() {
        Ok((socket, peer)) => {
            let stream = std::net::TcpStream::from(socket);
            let stream = stream
                .set_nonblocking(true)
                .and_then(|()| TcpStream::from_std(stream));
            let peer = peer
                .as_socket()
                .ok_or_else(|| io::Error::other("not an IP peer"));
            Some(stream.and_then(|stream| Ok((stream, peer?))))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Err(e) => Some(Err(e)),
    }
}

fn accepted((stream, peer): (TcpStream, SocketAddr)) -> stoppable::Accepted<TokioIo<TcpStream>> {
    // TCP_NODELAY is the server's to set (`Options::tcp_nodelay`).
    stoppable::Accepted {
        io: TokioIo::new(stream),
        remote_addr: Some(peer),
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C on Windows): the first starts a
/// graceful stop, a second one forces it (grace 0); resolves to the report
/// (B17).
///
/// ```no_run
/// # async fn run(stopper: stoppable_tokio::Stopper) -> std::io::Result<()> {
/// let report = stoppable_tokio::stop_on_signals(&stopper).await?;
/// println!("graceful: {}", report.graceful);
/// # Ok(()) }
/// ```
#[cfg(feature = "signal")]
///
/// The handlers are installed by this call (inside a tokio runtime), not
/// when the future is first polled: a signal that comes in between is not
/// lost (nor does it kill the process, a signal's default action).
pub fn stop_on_signals(
    stopper: &Stopper,
) -> impl Future<Output = io::Result<Report>> + Send + 'static {
    let signals = signals();
    let stopper = stopper.clone();
    async move { Ok(stoppable::stop_on(&stopper, Box::pin(signals?)).await) }
}

#[cfg(all(feature = "signal", unix))]
fn signals() -> io::Result<impl futures_util::Stream<Item = ()>> {
    use futures_util::future::select;
    use tokio::signal::unix::{signal, SignalKind};
    let both = (
        signal(SignalKind::terminate())?,
        signal(SignalKind::interrupt())?,
    );
    Ok(futures_util::stream::unfold(
        both,
        |(mut term, mut int)| async move {
            select(Box::pin(term.recv()), Box::pin(int.recv())).await;
            Some(((), (term, int)))
        },
    ))
}

#[cfg(all(feature = "signal", windows))]
fn signals() -> io::Result<impl futures_util::Stream<Item = ()>> {
    Ok(futures_util::stream::unfold((), |()| async {
        tokio::signal::ctrl_c().await.ok()?;
        Some(((), ()))
    }))
}

/// The tokio runtime: spawning on the runtime it was made in, and tokio's
/// timer.
///
/// A stop may be called from any thread (a signal handler's, a test's), and
/// it spawns the stop's timer task: so the runtime is remembered when this
/// is made, not looked up when spawning.
#[derive(Clone, Debug)]
pub struct Tokio {
    handle: Option<Handle>,
}

impl Tokio {
    /// The runtime this is called in; outside any, the one current when it
    /// spawns.
    pub fn current() -> Self {
        Tokio {
            handle: Handle::try_current().ok(),
        }
    }

    /// The runtime of `handle`.
    pub fn from_handle(handle: Handle) -> Self {
        Tokio {
            handle: Some(handle),
        }
    }
}

impl Default for Tokio {
    /// [`Tokio::current`].
    fn default() -> Self {
        Tokio::current()
    }
}

impl stoppable::Runtime for Tokio {
    type Sleep = tokio::time::Sleep;

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match self.handle.clone().or_else(|| Handle::try_current().ok()) {
            Some(handle) => drop(handle.spawn(future)),
            // Made and called outside any runtime: a small one of its own,
            // in a thread, rather than a panic or a task never run.
            None => drop(std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build();
                if let Ok(runtime) = runtime {
                    runtime.block_on(future);
                }
            })),
        }
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        tokio::time::sleep_until(deadline.into())
    }

    /// tokio's clock: virtual when paused (`start_paused`, with tokio's
    /// `test-util`), so a whole server runs on virtual time.
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// A tokio `TcpListener` as a source of connections.
#[derive(Debug)]
pub struct Listener(pub TcpListener);

impl stoppable::Accept for Listener {
    type Io = TokioIo<TcpStream>;

    fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<stoppable::Accepted<Self::Io>>> {
        self.0.poll_accept(cx).map_ok(accepted)
    }

    fn socket(&self) -> Option<stoppable::BorrowedSocket<'_>> {
        Some(stoppable::borrow_socket(&self.0))
    }

    fn accept_queued(&mut self) -> Option<io::Result<stoppable::Accepted<Self::Io>>> {
        Some(accept_queued(&self.0)?.map(accepted))
    }
}

/// A tokio `UnixListener` as a source of connections.
#[cfg(unix)]
#[derive(Debug)]
pub struct UnixListener(pub tokio::net::UnixListener);

#[cfg(unix)]
impl stoppable::Accept for UnixListener {
    type Io = TokioIo<tokio::net::UnixStream>;

    fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<stoppable::Accepted<Self::Io>>> {
        self.0
            .poll_accept(cx)
            .map_ok(|(stream, _)| unix_accepted(stream))
    }

    fn socket(&self) -> Option<stoppable::BorrowedSocket<'_>> {
        Some(stoppable::borrow_socket(&self.0))
    }

    fn accept_queued(&mut self) -> Option<io::Result<stoppable::Accepted<Self::Io>>> {
        // As for TCP: tokio cannot take a stream outside its runtime.
        Handle::try_current().ok()?;
        match socket2::SockRef::from(&self.0).accept() {
            Ok((socket, _)) => {
                let stream =
                    std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(socket));
                let stream = stream
                    .set_nonblocking(true)
                    .and_then(|()| tokio::net::UnixStream::from_std(stream));
                Some(stream.map(unix_accepted))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => Some(Err(e)),
        }
    }
}

#[cfg(unix)]
fn unix_accepted(
    stream: tokio::net::UnixStream,
) -> stoppable::Accepted<TokioIo<tokio::net::UnixStream>> {
    stoppable::Accepted {
        io: TokioIo::new(stream),
        remote_addr: None,
    }
}
