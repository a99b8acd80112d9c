//! The accept loop: serves each connection with hyper, drains the accept
//! queue at the stop (B1), and drives the drain's timers.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::server::conn::auto::{Builder, HttpServerConnExec};
use stoppable_core::{Config, ConfigError, Drain, Report};

use crate::conn::ConnDriver;
use crate::io::TrackedIo;
use crate::runtime::{Accept, Accepted, Runtime};
use crate::service::{TrackedBody, TrackedService};
use crate::shared::Shared;
use crate::stopper::Stopper;
use crate::Error;

/// Pause after an accept error (out of file descriptors, say), so the loop
/// does not spin while the cause lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// A server that stops gracefully. A future: poll it (spawn it, or await
/// it) to serve; it resolves to the [`Report`] when a stop completes.
///
/// Runtime crates build it (`stoppable_tokio::serve`); its options are
/// set before it is first polled.
pub struct Server<A, S, R: Runtime, E> {
    listener: Option<A>,
    service: S,
    runtime: R,
    builder: Builder<E>,
    shared: Arc<Shared>,
    config: Config,
    grace: Option<Duration>,
    started: bool,
    /// The drain's next timeout, armed.
    timer: Option<(Instant, Pin<Box<R::Sleep>>)>,
    accept_pause: Option<Pin<Box<R::Sleep>>>,
}

impl<A, S, R: Runtime, E> Server<A, S, R, E> {
    /// A server over `listener`, serving `service` with hyper's `builder`
    /// (HTTP/1.1 and HTTP/2 on one port).
    pub fn new(listener: A, service: S, runtime: R, builder: Builder<E>) -> Self {
        let config = Config::default();
        let core = Drain::new(config).expect("the default config is valid");
        Server {
            listener: Some(listener),
            service,
            runtime,
            builder,
            shared: Shared::new(core),
            config,
            grace: None,
            started: false,
            timer: None,
            accept_pause: None,
        }
    }

    /// Connections still busy `grace` after the drain began are force-closed
    /// (B9). Default: no limit, wait for all work.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// How long a connection that sent nothing yet may still send its first
    /// request after the stop (B4). Default 250 ms, at most 10 s.
    pub fn first_request_window(mut self, window: Duration) -> Self {
        self.config.first_request_window = window;
        self
    }

    /// How long a request head may take to arrive (B8). Default 10 s.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.config.header_read_timeout = timeout;
        self
    }

    /// The readiness delay (B16): after `stop`, keep serving for `delay`
    /// (with [`Stopper::phase`] already `Delaying`) before draining.
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.config.drain_delay = delay;
        self
    }

    /// hyper's connection builder, to tune HTTP/1 and HTTP/2.
    pub fn builder_mut(&mut self) -> &mut Builder<E> {
        &mut self.builder
    }

    /// A handle that stops this server. Take it before serving.
    pub fn stopper(&self) -> Stopper {
        Stopper::new(self.shared.clone())
    }

    /// Applies the options; bad ones are an error.
    fn start(&mut self) -> Result<(), Error> {
        let core = Drain::new(self.config).map_err(|e: ConfigError| Error::Config(e))?;
        let mut inner = self.shared.lock();
        if inner.stop_accepting || inner.serving {
            return Err(Error::Stopped);
        }
        inner.core = core;
        inner.serving = true;
        inner.default_grace = self.grace;
        drop(inner);
        self.builder
            .http1()
            .header_read_timeout(self.config.header_read_timeout);
        Ok(())
    }
}

impl<A, S, R, E, B> Server<A, S, R, E>
where
    A: Accept,
    R: Runtime,
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    E: HttpServerConnExec<crate::service::TrackedFuture<S::Future>, TrackedBody<B>>
        + Clone
        + Send
        + Sync
        + 'static,
{
    fn serve_connection(&self, accepted: Accepted<A::Io>) {
        // Refused once the listener is closed; the socket closes here.
        let Some(slot) = self.shared.accept(accepted.socket) else {
            return;
        };
        let io = TrackedIo::new(accepted.io, slot.clone(), self.shared.clone());
        let service = TrackedService::new(self.service.clone(), slot.clone(), self.shared.clone());
        let conn = self
            .builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        self.runtime
            .spawn(ConnDriver::new(conn, slot, self.shared.clone()));
    }

    /// Accepts what is queued. True when a connection was accepted.
    fn poll_listener(&mut self, cx: &mut Context<'_>, stop_accepting: bool) -> bool {
        let Some(listener) = self.listener.as_mut() else {
            return false;
        };
        if let Some(pause) = self.accept_pause.as_mut() {
            if !stop_accepting && pause.as_mut().poll(cx).is_pending() {
                return false;
            }
            self.accept_pause = None;
        }
        match listener.poll_accept(cx) {
            Poll::Ready(Ok(accepted)) => {
                self.serve_connection(accepted);
                return true;
            }
            Poll::Ready(Err(_)) if !stop_accepting => {
                let until = Instant::now() + ACCEPT_ERROR_PAUSE;
                self.accept_pause = Some(Box::pin(self.runtime.sleep_until(until)));
                // Poll the pause once, so its waker is registered.
                return true;
            }
            Poll::Ready(Err(_)) | Poll::Pending => {}
        }
        if stop_accepting {
            // B1: the queue is empty; closing now refuses later connects.
            self.listener = None;
            let mut inner = self.shared.lock();
            inner.core.listener_closed(Instant::now());
            self.shared.run_actions(&mut inner);
        }
        false
    }
}

impl<A, S, R, E, B> Future for Server<A, S, R, E>
where
    A: Accept,
    R: Runtime,
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    E: HttpServerConnExec<crate::service::TrackedFuture<S::Future>, TrackedBody<B>>
        + Clone
        + Send
        + Sync
        + 'static,
{
    type Output = Result<Report, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if !this.started {
            this.started = true;
            this.start()?;
        }
        loop {
            let (stop_accepting, deadline, report) = {
                let mut inner = this.shared.lock();
                inner.set_server_waker(cx.waker());
                (
                    inner.stop_accepting,
                    inner.core.poll_timeout(),
                    inner.core.report(),
                )
            };
            if this.poll_listener(cx, stop_accepting) {
                continue;
            }
            if let (Some(report), None) = (report, &this.listener) {
                return Poll::Ready(Ok(report));
            }
            match deadline {
                None => this.timer = None,
                Some(at) if this.timer.as_ref().map(|(t, _)| *t) != Some(at) => {
                    this.timer = Some((at, Box::pin(this.runtime.sleep_until(at))));
                }
                Some(_) => {}
            }
            let Some((_, sleep)) = this.timer.as_mut() else {
                return Poll::Pending;
            };
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.timer = None;
            let mut inner = this.shared.lock();
            inner.core.handle_timeout(Instant::now());
            this.shared.run_actions(&mut inner);
        }
    }
}

// No field is ever pinned in place: the sleeps are boxed.
impl<A, S, R: Runtime, E> Unpin for Server<A, S, R, E> {}

impl<A, S, R: Runtime, E> Drop for Server<A, S, R, E> {
    fn drop(&mut self) {
        if self.listener.take().is_some() && self.started {
            // Dropped while serving: the listener is gone, and a stop must
            // not wait for a queue nobody will drain.
            let mut inner = self.shared.lock();
            inner.stop_accepting = true;
            inner.core.listener_closed(Instant::now());
            self.shared.run_actions(&mut inner);
        }
    }
}
