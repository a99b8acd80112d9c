//! Graceful stop for hyper servers on smol: [`serve`] a listener, take a
//! [`Stopper`], and `stop().await` the [`Report`].
//!
//! ```no_run
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper::{Request, Response, body::Incoming, service::service_fn};
//!
//! # fn main() -> std::io::Result<()> {
//! smol::block_on(async {
//!     let listener = smol::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     let hello = service_fn(|_req: Request<Incoming>| async {
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
//!     });
//!     let server = stoppable_smol::serve(listener, hello).grace(Duration::from_secs(10));
//!     let stopper = server.stopper();
//!     smol::spawn(server).detach();
//!     // ... later, on SIGTERM say:
//!     let report = stopper.stop().await;
//!     println!("graceful: {}", report.graceful);
//!     Ok(())
//! })
//! # }
//! ```
//!
//! Tasks go to smol's global executor, or to an [`Executor`] of yours with
//! [`serve_on`]. What a stop does, as a client sees it, is described in the
//! `stoppable` crate.
//!
//! HTTPS: the `tls` feature adds `serve_tls` and `serve_tls_on`
//! (futures-rustls, ALPN `h2` and `http/1.1`) and `server_config_from_files`;
//! `stop_on_signals` comes with the `signal` feature, `tracing` events with
//! `tracing`.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use smol::Executor;
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

/// A server on smol (on a TCP listener unless `L` says otherwise); see
/// [`stoppable::Server`] for its options.
pub type Server<S, L = AsyncIoListener> = stoppable::Server<L, S, Smol, SpawnExecutor<Smol>>;

/// Serves `service` on `listener` until a stop completes, spawning on
/// smol's global executor. Await the server (or spawn it) to serve.
///
/// `listener` is a smol `TcpListener` or `UnixListener`, or several under
/// one stop: a `Vec` of one kind, a pair of two kinds (each drained at the
/// stop as B1 says; the stop completes once all are closed).
pub fn serve<L, App, M>(listener: L, app: App) -> Server<App::MakeService, L::Listener>
where
    L: IntoListener,
    App: IntoMakeService<M>,
{
    serve_with(Smol::global(), listener, app.into_make_service())
}

/// Like [`serve`], spawning connection tasks on `executor`.
pub fn serve_on<L, App, M>(
    executor: Arc<Executor<'static>>,
    listener: L,
    app: App,
) -> Server<App::MakeService, L::Listener>
where
    L: IntoListener,
    App: IntoMakeService<M>,
{
    serve_with(Smol::on(executor), listener, app.into_make_service())
}

fn serve_with<L: IntoListener, S: stoppable::MakeService>(
    runtime: Smol,
    listener: L,
    service: S,
) -> Server<S, L::Listener> {
    stoppable::Server::new(
        listener.into_listener(),
        service,
        runtime.clone(),
        async_io_builder(runtime),
    )
}

/// What [`serve`] serves on: a smol TCP or Unix listener, or several under
/// one stop (a `Vec` of one kind, a pair of two kinds).
pub trait IntoListener {
    /// The listener as the server accepts from it.
    type Listener: stoppable::Accept;

    /// Converts it.
    fn into_listener(self) -> Self::Listener;
}

impl IntoListener for smol::net::TcpListener {
    type Listener = AsyncIoListener;

    fn into_listener(self) -> AsyncIoListener {
        AsyncIoListener(self.into())
    }
}

#[cfg(unix)]
impl IntoListener for smol::net::unix::UnixListener {
    type Listener = AsyncIoListener<std::os::unix::net::UnixListener>;

    fn into_listener(self) -> Self::Listener {
        AsyncIoListener(self.into())
    }
}

impl<L: stoppable::rt::ListenerSocket> IntoListener for AsyncIoListener<L> {
    type Listener = Self;

    fn into_listener(self) -> Self {
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

/// A server over TLS on smol; see [`stoppable::Server`] for its options.
#[cfg(feature = "tls")]
pub type TlsServer<S> =
    stoppable::Server<AsyncIoListener, S, Smol, SpawnExecutor<Smol>, TlsAcceptor>;

/// Serves `service` over TLS on `listener` (HTTP/2 and HTTP/1.1 by ALPN
/// when `config` offers them, as [`server_config`] does), spawning on
/// smol's global executor. A handshake under way at the stop gets the
/// first-request window to finish and send its request (B4).
#[cfg(feature = "tls")]
pub fn serve_tls<App: IntoMakeService<M>, M>(
    listener: smol::net::TcpListener,
    config: Arc<stoppable::tls::rustls::ServerConfig>,
    app: App,
) -> TlsServer<App::MakeService> {
    serve_tls_with(Smol::global(), listener, config, app.into_make_service())
}

/// Like [`serve_tls`], spawning connection tasks on `executor`.
#[cfg(feature = "tls")]
pub fn serve_tls_on<App: IntoMakeService<M>, M>(
    executor: Arc<Executor<'static>>,
    listener: smol::net::TcpListener,
    config: Arc<stoppable::tls::rustls::ServerConfig>,
    app: App,
) -> TlsServer<App::MakeService> {
    serve_tls_with(
        Smol::on(executor),
        listener,
        config,
        app.into_make_service(),
    )
}

#[cfg(feature = "tls")]
fn serve_tls_with<S: stoppable::MakeService>(
    runtime: Smol,
    listener: smol::net::TcpListener,
    config: Arc<stoppable::tls::rustls::ServerConfig>,
    service: S,
) -> TlsServer<S> {
    stoppable::Server::with_handshake(
        AsyncIoListener(listener.into()),
        TlsAcceptor::new(config),
        service,
        runtime.clone(),
        async_io_builder(runtime),
    )
}

/// Tracks the connections of your own accept loop (see
/// [`stoppable::Tracker`]); serve each with [`async_io_builder`].
pub fn tracker(runtime: Smol, options: Options) -> Result<Tracker<Smol>, Error> {
    Tracker::new(runtime, options)
}

/// smol as a runtime: its global executor or one of yours, and async-io's
/// timer.
#[derive(Clone, Default)]
pub struct Smol {
    executor: Option<Arc<Executor<'static>>>,
}

impl Smol {
    /// Spawns on smol's global executor (`smol::spawn`).
    pub fn global() -> Self {
        Smol { executor: None }
    }

    /// Spawns on `executor`; run it on as many threads as you like.
    pub fn on(executor: Arc<Executor<'static>>) -> Self {
        Smol {
            executor: Some(executor),
        }
    }
}

impl std::fmt::Debug for Smol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = if self.executor.is_some() {
            "own executor"
        } else {
            "global executor"
        };
        f.debug_tuple("Smol").field(&on).finish()
    }
}

impl stoppable::Runtime for Smol {
    type Sleep = AsyncIoSleep;

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match &self.executor {
            Some(executor) => executor.spawn(future).detach(),
            None => smol::spawn(future).detach(),
        }
    }

    fn sleep_until(&self, deadline: Instant) -> AsyncIoSleep {
        AsyncIoSleep::until(deadline)
    }
}
