//! Graceful stop for hyper servers on async-std: [`serve`] a listener,
//! take a [`Stopper`], and `stop().await` the [`Report`].
//!
//! **async-std is discontinued upstream in favour of smol.** This adapter
//! is kept working and tested for the servers that still run on it; new
//! code should use `stoppable-smol`. It is its own crate so that nobody
//! else compiles async-std.
//!
//! ```no_run
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper::{Request, Response, body::Incoming, service::service_fn};
//!
//! # #[async_std::main]
//! # async fn main() -> std::io::Result<()> {
//! let listener = async_std::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let hello = service_fn(|_req: Request<Incoming>| async {
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
//! });
//! let server = stoppable_async_std::serve(listener, hello)?.grace(Duration::from_secs(10));
//! let stopper = server.stopper();
//! async_std::task::spawn(server);
//! // ... later, on SIGTERM say:
//! let report = stopper.stop().await;
//! println!("graceful: {}", report.graceful);
//! # Ok(()) }
//! ```
//!
//! HTTPS: the `tls` feature adds `serve_tls` (futures-rustls, ALPN `h2` and
//! `http/1.1`) and `server_config_from_files`; `stop_on_signals` comes with
//! the `signal` feature, `tracing` events with `tracing`.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use stoppable::rt::{async_io_builder, AsyncIoListener, AsyncIoSleep, SpawnExecutor};

/// Socket activation: the listening sockets passed down (B22).
#[cfg(unix)]
pub use stoppable::activation;
/// Handing the listening sockets to a new process (feature `handoff`).
#[cfg(all(unix, feature = "handoff"))]
pub use stoppable::handoff;
/// systemd's readiness protocol (feature `sd-notify`).
#[cfg(all(unix, feature = "sd-notify"))]
pub use stoppable::notify;
/// The rustls handshake and stream on async-io (feature `tls`).
#[cfg(feature = "tls")]
pub use stoppable::rt::{Accepting, AsyncIoTlsStream, TlsAcceptor};
/// Resolves on SIGTERM or SIGINT: the first starts a graceful stop, a
/// second one forces it (grace 0); resolves to the report (B17).
#[cfg(feature = "signal")]
pub use stoppable::stop_on_signals;
/// TLS helpers: a rustls server configuration from PEM (feature `tls`).
#[cfg(feature = "tls")]
pub use stoppable::tls::{server_config, server_config_from_files};
use stoppable::IntoMakeService;
pub use stoppable::{
    make_service_fn, ConnError, ConnHandle, ConnInfo, ConnSocket, ConnStage, Counts, DrainSignal,
    Draining, Drive, EitherIo, EitherListener, Error, Handshaking, ListenerDrain, Listeners,
    MakeService, Options, Phase, RawConn, Report, Stopper, Stopping, TaskError, Tracked,
    TrackedTask, Tracker, WithoutSocket,
};

/// A server on async-std (on a TCP listener unless `L` says otherwise);
/// see [`stoppable::Server`] for its options.
pub type Server<S, L = AsyncIoListener> =
    stoppable::Server<L, S, AsyncStd, SpawnExecutor<AsyncStd>>;

/// Serves `service` on `listener` until a stop completes. Await the server
/// (or spawn it) to serve. Fails only if a listener cannot be moved to
/// async-io's reactor.
///
/// `listener` is an async-std `TcpListener` or `UnixListener`, or several
/// under one stop: a `Vec` of one kind, a pair of two kinds (each drained
/// at the stop as B1 says; the stop completes once all are closed).
pub fn serve<L, App, M>(listener: L, app: App) -> io::Result<Server<App::MakeService, L::Listener>>
where
    L: IntoListener,
    App: IntoMakeService<M>,
{
    Ok(stoppable::Server::new(
        listener.into_listener()?,
        app.into_make_service(),
        AsyncStd,
        async_io_builder(AsyncStd),
    ))
}

/// What [`serve`] serves on: an async-std TCP or Unix listener, or several
/// under one stop (a `Vec` of one kind, a pair of two kinds).
pub trait IntoListener {
    /// The listener as the server accepts from it.
    type Listener: stoppable::Accept;

    /// Converts it: moved to async-io's reactor.
    fn into_listener(self) -> io::Result<Self::Listener>;
}

impl IntoListener for async_std::net::TcpListener {
    type Listener = AsyncIoListener;

    fn into_listener(self) -> io::Result<AsyncIoListener> {
        async_io_listener(self)
    }
}

#[cfg(unix)]
impl IntoListener for async_std::os::unix::net::UnixListener {
    type Listener = AsyncIoListener<std::os::unix::net::UnixListener>;

    fn into_listener(self) -> io::Result<Self::Listener> {
        let listener = std::os::unix::net::UnixListener::try_from(self)?;
        Ok(AsyncIoListener(Arc::new(async_io::Async::new(listener)?)))
    }
}

impl<L: stoppable::rt::ListenerSocket> IntoListener for AsyncIoListener<L> {
    type Listener = Self;

    fn into_listener(self) -> io::Result<Self> {
        Ok(self)
    }
}

impl<L: IntoListener> IntoListener for Vec<L> {
    type Listener = stoppable::Listeners<L::Listener>;

    fn into_listener(self) -> io::Result<Self::Listener> {
        let all = self
            .into_iter()
            .map(L::into_listener)
            .collect::<io::Result<Vec<L::Listener>>>()?;
        Ok(all.into())
    }
}

impl<A: IntoListener, B: IntoListener> IntoListener for (A, B) {
    type Listener = stoppable::EitherListener<A::Listener, B::Listener>;

    fn into_listener(self) -> io::Result<Self::Listener> {
        Ok((self.0.into_listener()?, self.1.into_listener()?).into())
    }
}

/// A server over TLS on async-std; see [`stoppable::Server`] for its options.
#[cfg(feature = "tls")]
pub type TlsServer<S> =
    stoppable::Server<AsyncIoListener, S, AsyncStd, SpawnExecutor<AsyncStd>, TlsAcceptor>;

/// Serves `service` over TLS on `listener` (HTTP/2 and HTTP/1.1 by ALPN
/// when `config` offers them, as [`server_config`] does). A handshake under
/// way at the stop gets the first-request window to finish and send its
/// request (B4). Fails only if the listener cannot be moved to async-io's
/// reactor.
#[cfg(feature = "tls")]
pub fn serve_tls<App: IntoMakeService<M>, M>(
    listener: async_std::net::TcpListener,
    config: Arc<stoppable::tls::rustls::ServerConfig>,
    app: App,
) -> io::Result<TlsServer<App::MakeService>> {
    Ok(stoppable::Server::with_handshake(
        async_io_listener(listener)?,
        TlsAcceptor::new(config),
        app.into_make_service(),
        AsyncStd,
        async_io_builder(AsyncStd),
    ))
}

fn async_io_listener(listener: async_std::net::TcpListener) -> io::Result<AsyncIoListener> {
    let listener = std::net::TcpListener::try_from(listener)?;
    Ok(AsyncIoListener(Arc::new(async_io::Async::new(listener)?)))
}

/// Tracks the connections of your own accept loop (see
/// [`stoppable::Tracker`]).
pub fn tracker(options: Options) -> Result<Tracker<AsyncStd>, Error> {
    Tracker::new(AsyncStd, options)
}

/// async-std as a runtime: `task::spawn` and async-io's timer (which
/// async-std itself uses).
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStd;

impl stoppable::Runtime for AsyncStd {
    type Sleep = AsyncIoSleep;

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // Dropping the handle detaches the task.
        drop(async_std::task::spawn(future));
    }

    fn sleep_until(&self, deadline: Instant) -> AsyncIoSleep {
        AsyncIoSleep::until(deadline)
    }
}
