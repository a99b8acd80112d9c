//! Connections from your own accept loop, taking part in the stop: the
//! lower-level entry, as hyper-util's `GracefulShutdown::watch`, with the
//! whole stop (windows, grace, force-close, report).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use stoppable_core::Report;

use crate::conn_error::{ConnError, ErrorHook, Reporter};
use crate::conn_socket::{self, ConnSocket};
use crate::driver::ConnDriver;
use crate::handshake::{Deadline, Handshaking};
use crate::io::TrackedIo;
use crate::listener_drain::ListenerDrain;
use crate::raw::RawConn;
use crate::runtime::{Accept, Runtime};
use crate::service::TrackedService;
use crate::shared::Shared;
use crate::slot::ConnSlot;
use crate::stopper::{Stopper, Stopping};
use crate::timer::Timers;
use crate::{Error, Options};

/// Tracks the connections of an accept loop you write yourself.
///
/// Per accepted connection call [`track`](Tracker::track) and serve the
/// [`Tracked`] connection with your hyper builder. When
/// [`Stopper::draining`] resolves, hand the listener to
/// [`drain_listener`](Tracker::drain_listener) and serve what it gives
/// (B1); or, if you close it yourself, call
/// [`listener_closed`](Tracker::listener_closed).
/// The stop's timers run in a task of the stop's own, on this runtime;
/// [`drive`](Tracker::drive) (or any [`Stopping`]) resolves to the report.
#[derive(Clone)]
pub struct Tracker<R> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) runtime: R,
    /// Told each connection's error ([`Tracker::on_connection_error`]).
    on_error: Option<ErrorHook>,
    /// [`Options::handshake_timeout`]: `None` for none.
    handshake_timeout: Option<std::time::Duration>,
    /// [`Options::first_request_timeout`]: `None` for none.
    first_request_timeout: Option<std::time::Duration>,
}

impl<R: Runtime> Tracker<R> {
    /// A tracker that is serving, with the given options.
    pub fn new(runtime: R, options: Options) -> Result<Self, Error> {
        let mut tracker = Tracker::unstarted(runtime);
        tracker.configure(options);
        tracker.start(options)?;
        Ok(tracker)
    }

    /// A tracker whose serving has not started (see [`Tracker::start`]).
    pub(crate) fn unstarted(runtime: R) -> Self {
        let timers = runtime.clone();
        let spawn_timers = Box::new(move |shared: &Arc<Shared>| Timers::spawn(&timers, shared));
        let clock = runtime.clone();
        let clock = Box::new(move || clock.now());
        let shared = Shared::new(Options::default().config, spawn_timers, clock)
            .expect("the default config is valid");
        Tracker {
            shared,
            runtime,
            on_error: None,
            handshake_timeout: Some(crate::options::HANDSHAKE_TIMEOUT),
            first_request_timeout: Some(crate::options::FIRST_REQUEST_TIMEOUT),
        }
    }

    /// Calls `hook` with each connection's error, and its peer's address
    /// (give it with [`Tracked::remote_addr`]): hyper's errors, and failed
    /// handshakes. Most are the peer's doing; the connection ends either
    /// way. With the `tracing` feature, each is a `debug` event too. Set it
    /// before tracking: connections tracked before keep the hook they had.
    pub fn on_connection_error(&mut self, hook: impl Fn(&ConnError) + Send + Sync + 'static) {
        self.on_error = Some(Arc::new(hook));
    }

    /// A sleep until `timeout` from now, on this runtime; a timeout too long
    /// to represent is none.
    fn deadline(&self, timeout: Option<std::time::Duration>) -> Option<Deadline> {
        let timeout = timeout?;
        let at = self.runtime.now().checked_add(timeout)?;
        let sleep: Pin<Box<dyn Future<Output = ()> + Send>> =
            Box::pin(self.runtime.sleep_until(at));
        Some((sleep, timeout))
    }

    pub(crate) fn reporter(&self, remote_addr: Option<std::net::SocketAddr>) -> Reporter {
        Reporter {
            remote_addr,
            hook: self.on_error.clone(),
        }
    }

    /// Applies `options` before serving, so that even a stop that comes
    /// before the first poll honours them. Bad options wait for `start`.
    pub(crate) fn configure(&mut self, options: Options) {
        // The connection limit is the server's accept loop's (see
        // `Stopper::room_below` for your own).
        let Options {
            config,
            grace,
            drain_signal_in_requests,
            move_on_in_delay,
            max_connections: _,
            tcp_nodelay: _,
            handshake_timeout,
            first_request_timeout,
        } = options;
        let chosen = |timeout: Option<std::time::Duration>, default| match timeout {
            None => Some(default),
            Some(timeout) => (!timeout.is_zero()).then_some(timeout),
        };
        self.handshake_timeout = chosen(handshake_timeout, crate::options::HANDSHAKE_TIMEOUT);
        self.first_request_timeout =
            chosen(first_request_timeout, crate::options::FIRST_REQUEST_TIMEOUT);
        self.shared
            .configure(config, grace, drain_signal_in_requests, move_on_in_delay);
    }

    /// Starts serving with the options [`configure`](Tracker::configure)
    /// installed; an error if they are bad, or if a stop already completed
    /// (B2). A stop that began before is served: its drain runs now.
    pub(crate) fn start(&self, options: Options) -> Result<(), Error> {
        options.config.validate().map_err(Error::Config)?;
        self.shared.start()
    }

    /// A handle that stops the connections of this tracker.
    pub fn stopper(&self) -> Stopper {
        Stopper::new(self.shared.clone())
    }

    /// Tracks a connection just accepted. Its socket ([`ConnSocket`]) is
    /// what the grace deadline shuts down, even when a handler owns the IO
    /// after an upgrade (B14). `None` is returned once the listener was
    /// reported closed: drop the connection then.
    pub fn track<Io>(&self, io: Io) -> Option<Tracked<Io>>
    where
        Io: hyper::rt::Write + ConnSocket + Unpin,
    {
        // What may panic (a runtime without timers) comes first: from the
        // accept on, the slot keeps the handle, and the IO must be in the
        // `TrackedIo` that forgets it before dropping the IO.
        let (reporter, deadline) = (
            self.reporter(None),
            self.deadline(self.first_request_timeout),
        );
        let slot = self.shared.accept(conn_socket::handle_of(&io))?;
        Some(Tracked::new(
            io,
            slot,
            self.shared.clone(),
            reporter,
            deadline,
        ))
    }

    /// Tracks a connection just accepted whose IO needs a handshake first
    /// (TLS): `handshake` gives the IO to serve HTTP over, whose socket
    /// ([`ConnSocket`]) the stop may shut down from then on. The
    /// connection counts from now, so a handshake
    /// under way at the stop gets the first-request window (B4). Await the
    /// [`Handshaking`] in the connection's task, then serve what it gives
    /// (`stoppable_tokio::TlsAcceptor` has an example). `None` once the
    /// listener was reported closed.
    pub fn track_handshake<F, Io>(&self, handshake: F) -> Option<Handshaking<F>>
    where
        F: Future<Output = std::io::Result<Io>>,
        Io: ConnSocket,
    {
        let reporter = self.reporter(None);
        let deadlines = (
            self.deadline(self.handshake_timeout),
            self.deadline(self.first_request_timeout),
        );
        let slot = self.shared.accept(None)?;
        Some(Handshaking::new(
            handshake,
            slot,
            self.shared.clone(),
            reporter,
            deadlines.0,
            deadlines.1,
        ))
    }

    /// Tracks a connection of any protocol (B20): the returned [`RawConn`]
    /// owns the stream; mark each unit of work with [`ConnHandle::work`](crate::ConnHandle::work) and
    /// close when [`ConnHandle::closing`](crate::ConnHandle::closing) resolves. `None` once the listener
    /// was reported closed.
    pub fn track_raw<S: ConnSocket>(&self, stream: S) -> Option<RawConn<S>> {
        // The stream goes straight into the `RawConn` that forgets the
        // handle before dropping it.
        let slot = self.shared.accept(conn_socket::handle_of(&stream))?;
        Some(RawConn::new(stream, slot, self.shared.clone()))
    }

    /// Closes `listener` the way a stop must, when [`Stopper::draining`]
    /// resolves: serve each connection the returned drain hands out; when
    /// it ends, the listener is closed and the stop told (no
    /// [`listener_closed`](Tracker::listener_closed) to call). For a
    /// socket others hold too, mark it [`shared`](ListenerDrain::shared)
    /// (B22). Several listeners go through one drain, as one listener
    /// ([`Listeners`](crate::Listeners) for several of one kind,
    /// [`EitherListener`](crate::EitherListener) for two kinds): two
    /// drains of one tracker would end the tracking at the first close.
    pub fn drain_listener<A: Accept>(&self, listener: A) -> ListenerDrain<A, R> {
        ListenerDrain::new(listener, self.runtime.clone(), self.shared.clone())
    }

    /// The listener is closed and its queue drained: the stop may complete.
    /// [`drain_listener`](Tracker::drain_listener) does this itself.
    pub fn listener_closed(&self) {
        self.shared.listener_closed();
    }

    /// Resolves to the report when the stop completes. The stop's timers
    /// (readiness delay, windows, grace) run in a task of the stop's own,
    /// so dropping this changes nothing but who hears of the report.
    pub fn drive(&self) -> Drive {
        Drive(self.stopper().stopping())
    }
}

/// A tracked connection, before it is served.
pub struct Tracked<Io> {
    io: TrackedIo<Io>,
    slot: Arc<ConnSlot>,
    shared: Arc<Shared>,
    reporter: Reporter,
    /// [`Options::first_request_timeout`], counted from the accept.
    first_request: Option<Deadline>,
}

impl<Io: hyper::rt::Write + Unpin> Tracked<Io> {
    /// A connection on `slot`, its IO wrapped to report to the drain.
    pub(crate) fn new(
        io: Io,
        slot: Arc<ConnSlot>,
        shared: Arc<Shared>,
        reporter: Reporter,
        first_request: Option<Deadline>,
    ) -> Self {
        Tracked {
            io: TrackedIo::new(io, slot.clone(), shared.clone()),
            slot,
            shared,
            reporter,
            first_request,
        }
    }
}

impl<Io> Tracked<Io> {
    /// The peer's address, for the errors told to
    /// [`Tracker::on_connection_error`].
    pub fn remote_addr(mut self, addr: Option<std::net::SocketAddr>) -> Self {
        self.reporter.remote_addr = addr;
        self
    }

    /// Serves the connection: `connect` builds the hyper connection from the
    /// tracked IO and service (`builder.serve_connection_with_upgrades(io,
    /// service)`); spawn the returned driver.
    pub fn serve<S, C>(
        self,
        service: S,
        connect: impl FnOnce(TrackedIo<Io>, TrackedService<S>) -> C,
    ) -> ConnDriver<C> {
        let service = TrackedService::new(service, self.slot.clone(), self.shared.clone());
        ConnDriver::new(
            connect(self.io, service),
            self.slot,
            self.shared,
            self.reporter,
            self.first_request,
        )
    }
}

/// Resolves to a tracker's report (B11): a [`Stopping`] by another name.
#[must_use = "the stop runs anyway; await this to get its report"]
pub struct Drive(Stopping);

impl Future for Drive {
    type Output = Report;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Report> {
        Pin::new(&mut self.0).poll(cx)
    }
}
