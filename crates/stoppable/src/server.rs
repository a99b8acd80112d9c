//! The accept loop: serves each connection with hyper, and drains the
//! accept queue at the stop (B1). The stop's timers are not here: they
//! belong to the stop (`timer.rs`), so dropping the server cannot hold it.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::server::conn::auto::{Builder, HttpServerConnExec, UpgradeableConnection};
use stoppable_core::Report;

use crate::conn_error::{ConnError, ConnStage};
use crate::conn_socket::ConnSocket;
use crate::handshake::{Handshake, Plain, Started};
use crate::listener_drain::ListenerDrain;
use crate::make::{ConnInfo, IntoMakeService, MakeService};
use crate::runtime::{Accept, Accepted, Runtime};
use crate::service::{TrackedBody, TrackedFuture};
use crate::socket;
use crate::stopper::Stopper;
use crate::tracker::{Tracked, Tracker};
use crate::{ConnDriver, TrackedIo, TrackedService};
use crate::{Error, Options};

/// Pause after an accept error (out of file descriptors, say), so the loop
/// does not spin while the cause lasts.
pub(crate) const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// A server that stops gracefully. A future: poll it (spawn it, or await
/// it) to serve; it resolves to the [`Report`] when a stop completes, or
/// to an error at once if an option is bad.
///
/// A stop may come before the server is first polled (a signal during
/// start-up): the server then drains what the kernel already queued and
/// resolves to the report. A stop completes even if the server future is
/// dropped (or panics) first, and the stop's timers run in a task of their
/// own (B21). Dropped once it served, it stops accepting: its listener's
/// drain goes on in a task of its own (on the runtime, which must still be
/// driven) and serves what the kernel queued and the handshakes under way,
/// as a stop does (B1). Dropped before its first poll, or by a panic, it
/// closes its listener at once. Polling it again after it
/// resolved gives [`Error::Stopped`] (B2), never a panic.
///
/// Runtime crates build it (`stoppable_tokio::serve`); set its options
/// before it is first polled.
pub struct Server<A, S, R: Runtime, E, H = Plain> {
    listener: Option<A>,
    /// What connections are served with; `None` once a drop gave it to
    /// the rest of the listener's drain.
    app: Option<PerConn<S, H>>,
    builder: Builder<E>,
    tracker: Tracker<R>,
    options: Options,
    started: bool,
    /// The future resolved: a later poll is an error, never a panic (B2).
    done: bool,
    accept_pause: Option<Pin<Box<R::Sleep>>>,
    /// After the stop: the listener's end (`listener` is `None` then).
    drain: Option<ListenerDrain<A, R>>,
    /// Set once serving: [`drain_elsewhere`](Server::drain_elsewhere), as
    /// a plain function pointer, so that a drop can call it without the
    /// bounds `Drop` cannot ask for.
    drain_elsewhere: Option<fn(&mut Self)>,
    /// At the connection limit: waits for a close ([`Options::max_connections`]).
    room: Option<Pin<Box<event_listener::EventListener>>>,
    /// A stop begins when this resolves ([`with_graceful_shutdown`]).
    ///
    /// [`with_graceful_shutdown`]: Server::with_graceful_shutdown
    shutdown_signal: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl<A, S, R: Runtime, E> Server<A, S, R, E> {
    /// A server over `listener`, serving `app` with hyper's `builder`
    /// (HTTP/1.1 and HTTP/2 on one port). `app` is what the runtime crates' `serve` takes: a hyper service,
    /// a tower service (an axum `Router`), a tower make-service over the
    /// peer's `SocketAddr`, or any [`MakeService`].
    pub fn new<App, M>(listener: A, app: App, runtime: R, builder: Builder<E>) -> Self
    where
        App: IntoMakeService<M, MakeService = S>,
    {
        Server::with_handshake(listener, Plain, app, runtime, builder)
    }
}

impl<A, S, R: Runtime, E, H> Server<A, S, R, E, H> {
    /// Like [`new`](Server::new), with a `handshake` (TLS, say) run on each
    /// connection before HTTP, in the connection's own task. Connections
    /// count from the TCP accept, so a handshake under way at the stop gets
    /// the first-request window (B4).
    pub fn with_handshake<App, M>(
        listener: A,
        handshake: H,
        app: App,
        runtime: R,
        builder: Builder<E>,
    ) -> Self
    where
        App: IntoMakeService<M, MakeService = S>,
    {
        Server {
            listener: Some(listener),
            app: Some(PerConn {
                service: app.into_make_service(),
                handshake,
            }),
            builder,
            tracker: Tracker::unstarted(runtime),
            options: Options::default(),
            started: false,
            done: false,
            accept_pause: None,
            drain: None,
            drain_elsewhere: None,
            room: None,
            shutdown_signal: None,
        }
    }

    /// Sets all options at once. They apply at once, so even a stop that
    /// comes before the server is first polled honours them.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self.tracker.configure(options);
        self
    }

    /// See [`Options::grace`].
    pub fn grace(self, grace: Duration) -> Self {
        let options = self.options.grace(grace);
        self.options(options)
    }

    /// See [`Options::first_request_window`].
    pub fn first_request_window(self, window: Duration) -> Self {
        let options = self.options.first_request_window(window);
        self.options(options)
    }

    /// See [`Options::header_read_timeout`].
    pub fn header_read_timeout(self, timeout: Duration) -> Self {
        let options = self.options.header_read_timeout(timeout);
        self.options(options)
    }

    /// See [`Options::goaway_timeout`].
    pub fn goaway_timeout(self, timeout: Duration) -> Self {
        let options = self.options.goaway_timeout(timeout);
        self.options(options)
    }

    /// See [`Options::drain_delay`].
    pub fn drain_delay(self, delay: Duration) -> Self {
        let options = self.options.drain_delay(delay);
        self.options(options)
    }

    /// hyper's connection builder, to tune HTTP/1 and HTTP/2. No hyper timer
    /// is set, as in hyper-util's default: hyper's own header-read timeout
    /// costs a timer per request. A drain bounds slow heads by itself
    /// ([`Options::header_read_timeout`]); to bound them while serving too,
    /// set a timer and `http1().header_read_timeout(..)` here.
    pub fn builder_mut(&mut self) -> &mut Builder<E> {
        &mut self.builder
    }

    /// Marks the listening socket as shared with other owners: inherited by
    /// socket activation, about to be handed to a new process, or held by
    /// another server (B22). The stop then only ends this server's
    /// accepting and drains what it accepted; the connections still queued
    /// are for the others. Without it the stop refuses new connection
    /// attempts for a few milliseconds while it drains the queue (B1),
    /// which the other owners' clients would feel as a retried SYN.
    /// [`Stopper::share_listener`] does the same once serving.
    pub fn shared_listener(self) -> Self {
        self.tracker.shared.share_listener();
        self
    }

    /// Calls `hook` with each connection's error and its peer's address:
    /// hyper's (a malformed request, a reset, a read timeout), a failed or
    /// timed-out TLS handshake, a make-service's. Most are the peer's
    /// doing; the connection ends and the server goes on. With the
    /// `tracing` feature each is a `debug` event too. Go's `ErrorLog`.
    pub fn on_connection_error(
        mut self,
        hook: impl Fn(&ConnError) + Send + Sync + 'static,
    ) -> Self {
        self.tracker.on_connection_error(hook);
        self
    }

    /// A handle that stops this server. Take it before serving.
    pub fn stopper(&self) -> Stopper {
        self.tracker.stopper()
    }
}

impl<A: Accept, S, R: Runtime, E, H> Server<A, S, R, E, H> {
    /// The address the server listens on (the first IP one, for several
    /// listeners): with port 0 given to the bind, the port it got. An error
    /// once the listener is closed, or for a Unix domain socket alone.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        match &self.listener {
            Some(listener) => listener.local_addr(),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "the listener is closed",
            )),
        }
    }

    /// Starts a stop (with the server's grace) when `signal` resolves, as
    /// axum's `with_graceful_shutdown` does: `tokio::signal::ctrl_c()`, a
    /// `CancellationToken`'s `cancelled()`, a channel's receive. The server
    /// future polls it while it serves, and drops it when it resolves; a
    /// [`Stopper`] works beside it. The report is the server's output, as
    /// ever.
    ///
    /// (`stoppable_tokio::serve`'s documentation has an example.)
    pub fn with_graceful_shutdown<F>(mut self, signal: F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.shutdown_signal = Some(Box::pin(signal));
        self
    }
}

/// What each connection gets: its service (from the make-service) and
/// its handshake.
struct PerConn<S, H> {
    service: S,
    handshake: H,
}

/// What serving an accepted connection takes: borrowed from a server, or
/// from what the rest of a dropped server's drain owns
/// ([`DrainElsewhere`]).
struct Serve<'a, S, H, R, E> {
    app: &'a PerConn<S, H>,
    builder: &'a Builder<E>,
    tracker: &'a Tracker<R>,
    options: &'a Options,
}

impl<S, Svc, R, E, H, B> Serve<'_, S, H, R, E>
where
    R: Runtime,
    S: MakeService<Service = Svc>,
    Svc: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    Svc::Future: Send + 'static,
    Svc::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    E: HttpServerConnExec<TrackedFuture<Svc::Future>, TrackedBody<B>>
        + Clone
        + Send
        + Sync
        + 'static,
{
    /// The hyper connection (HTTP/1.1 and HTTP/2, with upgrades) of a
    /// tracked connection, ready to spawn.
    fn drive<Io>(
        conn: Tracked<Io>,
        service: Svc,
        builder: &Builder<E>,
    ) -> ConnDriver<UpgradeableConnection<'static, TrackedIo<Io>, TrackedService<Svc>, E>>
    where
        Io: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static,
    {
        conn.serve(service, |io, service| {
            builder
                .serve_connection_with_upgrades(io, service)
                .into_owned()
        })
    }

    fn connection<Io>(&self, accepted: Accepted<Io>)
    where
        Io: ConnSocket,
        H: Handshake<Io>,
    {
        let remote_addr = accepted.remote_addr;
        let service = match self.app.service.make_service(&ConnInfo::new(remote_addr)) {
            Ok(service) => service,
            Err(e) => {
                // The connection closes here, unserved.
                let reporter = self.tracker.reporter(remote_addr);
                reporter.report(ConnStage::MakeService, e.into_inner());
                return;
            }
        };
        if let Some(socket) = accepted.io.conn_socket() {
            // Not TCP (a Unix socket): an error, ignored.
            socket::set_nodelay(socket, self.options.tcp_nodelay.unwrap_or(true));
        }
        // Refused once the listener is closed; the socket closes here.
        match self.app.handshake.start(accepted.io) {
            Started::Done(io) => {
                let Some(conn) = self.tracker.track(io) else {
                    return;
                };
                let driver = Self::drive(conn.remote_addr(remote_addr), service, self.builder);
                self.tracker.runtime.spawn(driver);
            }
            Started::Running(handshake) => {
                let Some(handshaking) = self.tracker.track_handshake(handshake) else {
                    return;
                };
                let handshaking = handshaking.remote_addr(remote_addr);
                let builder = self.builder.clone();
                self.tracker.runtime.spawn(async move {
                    if let Some(conn) = handshaking.await {
                        Self::drive(conn, service, &builder).await;
                    }
                });
            }
        }
    }
}

/// The rest of a dropped server's listener drain, in a task of its own:
/// what the drain hands out (the kernel's queue, handshakes that land
/// while it waits for them) is served as the server would have (B1, B21).
struct DrainElsewhere<A: Accept, R: Runtime> {
    drain: ListenerDrain<A, R>,
    /// Serves one connection, with what the server served them with.
    serve: Box<dyn FnMut(Accepted<A::Io>) + Send>,
}

impl<A: Accept, R: Runtime> Future for DrainElsewhere<A, R> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        while let Some(accepted) = std::task::ready!(this.drain.poll_next(cx)) {
            (this.serve)(accepted);
        }
        Poll::Ready(())
    }
}

// Nothing is pinned in place: the drain's sleeps are boxed.
impl<A: Accept, R: Runtime> Unpin for DrainElsewhere<A, R> {}

impl<A, S, Svc, R, E, H, B> Server<A, S, R, E, H>
where
    A: Accept,
    H: Handshake<A::Io>,
    R: Runtime,
    S: MakeService<Service = Svc> + Send + 'static,
    Svc: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    Svc::Future: Send + 'static,
    Svc::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    E: HttpServerConnExec<TrackedFuture<Svc::Future>, TrackedBody<B>>
        + Clone
        + Send
        + Sync
        + 'static,
{
    fn serve_connection(&self, accepted: Accepted<A::Io>) {
        let Some(app) = self.app.as_ref() else {
            return;
        };
        let serve = Serve {
            app,
            builder: &self.builder,
            tracker: &self.tracker,
            options: &self.options,
        };
        serve.connection(accepted);
    }

    /// A server dropped while it accepts: its listener's drain goes on in
    /// a task of its own, with what connections are served with, as it
    /// would have here: new attempts refused, handshakes under way and
    /// what the kernel queued served, then the close (B1, B21). The stop
    /// waits for that close.
    fn drain_elsewhere(&mut self) {
        let drain = match (self.listener.take(), self.drain.take()) {
            (Some(listener), _) => self.tracker.drain_listener(listener),
            (None, Some(drain)) => drain,
            (None, None) => return,
        };
        let Some(app) = self.app.take() else {
            return;
        };
        let (builder, tracker, options) =
            (self.builder.clone(), self.tracker.clone(), self.options);
        let serve = move |accepted| {
            let serve = Serve {
                app: &app,
                builder: &builder,
                tracker: &tracker,
                options: &options,
            };
            serve.connection(accepted);
        };
        let serve = Box::new(serve);
        self.tracker.runtime.spawn(DrainElsewhere { drain, serve });
    }

    /// Under the connection limit, if any; else waits (woken by a close).
    fn has_room(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(limit) = self.options.max_connections else {
            return true;
        };
        loop {
            if self.tracker.shared.open() < limit {
                self.room = None;
                return true;
            }
            match self.room.as_mut() {
                // Listen first, then look again: a close in between wakes it.
                None => self.room = Some(Box::pin(self.tracker.shared.listen_for_room())),
                Some(room) => {
                    if room.as_mut().poll(cx).is_pending() {
                        return false;
                    }
                    self.room = None;
                }
            }
        }
    }

    /// Accepts what is queued. True when a connection was accepted.
    fn poll_listener(&mut self, cx: &mut Context<'_>) -> bool {
        let stop_accepting = self.tracker.shared.stop_accepting();
        if stop_accepting {
            if let Some(listener) = self.listener.take() {
                self.drain = Some(self.tracker.drain_listener(listener));
            }
        }
        if let Some(drain) = self.drain.as_mut() {
            return match drain.poll_next(cx) {
                Poll::Ready(Some(accepted)) => {
                    self.serve_connection(accepted);
                    true
                }
                Poll::Ready(None) => {
                    self.drain = None;
                    false
                }
                Poll::Pending => false,
            };
        }
        if self.listener.is_none() || !self.has_room(cx) {
            return false;
        }
        let Some(listener) = self.listener.as_mut() else {
            return false;
        };
        if let Some(pause) = self.accept_pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return false;
            }
            self.accept_pause = None;
        }
        match listener.poll_accept(cx) {
            Poll::Ready(Ok(accepted)) => {
                self.serve_connection(accepted);
                true
            }
            Poll::Ready(Err(_)) => {
                let until = self.tracker.runtime.now() + ACCEPT_ERROR_PAUSE;
                self.accept_pause = Some(Box::pin(self.tracker.runtime.sleep_until(until)));
                // Loop once more, so the pause is polled and its waker set.
                true
            }
            Poll::Pending => false,
        }
    }
}

impl<A, S, Svc, R, E, H, B> Future for Server<A, S, R, E, H>
where
    A: Accept,
    H: Handshake<A::Io>,
    R: Runtime,
    S: MakeService<Service = Svc> + Send + 'static,
    Svc: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    Svc::Future: Send + 'static,
    Svc::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    E: HttpServerConnExec<TrackedFuture<Svc::Future>, TrackedBody<B>>
        + Clone
        + Send
        + Sync
        + 'static,
{
    type Output = Result<Report, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(Err(Error::Stopped));
        }
        if !this.started {
            this.started = true;
            if let Err(e) = this.tracker.start(this.options) {
                this.done = true;
                return Poll::Ready(Err(e));
            }
            this.drain_elsewhere = Some(Self::drain_elsewhere);
        }
        if let Some(signal) = this.shutdown_signal.as_mut() {
            if signal.as_mut().poll(cx).is_ready() {
                this.shutdown_signal = None;
                this.tracker.stopper().request_stop();
            }
        }
        loop {
            let report = this.tracker.shared.poll_server(cx.waker());
            if this.poll_listener(cx) {
                continue;
            }
            if let (Some(report), None, None) = (report, &this.listener, &this.drain) {
                this.done = true;
                this.shutdown_signal = None;
                return Poll::Ready(Ok(report));
            }
            return Poll::Pending;
        }
    }
}

// No field is ever pinned in place: the sleeps are boxed.
impl<A, S, R: Runtime, E, H> Unpin for Server<A, S, R, E, H> {}

impl<A, S, R: Runtime, E, H> Drop for Server<A, S, R, E, H> {
    /// Closes the listener, and tells the stop: it must not wait for a
    /// queue nobody will drain. What the kernel already queued is served
    /// first (B1, B21): those clients connected before the close. Not when
    /// unwinding: serving runs the user's code (the make-service) again.
    fn drop(&mut self) {
        if let Some(drain_elsewhere) = self.drain_elsewhere {
            if !std::thread::panicking() {
                drain_elsewhere(self);
            }
        }
        if self.listener.take().is_some() {
            self.tracker.listener_closed();
        }
        // A drain under way tells the stop itself, as it drops.
        self.drain = None;
    }
}
