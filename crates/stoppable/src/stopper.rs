//! The handle that stops a server, and what a stop resolves to.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use event_listener::EventListener;
use stoppable_core::{Counts, Phase, Report};

use crate::shared::Shared;
use crate::task::TrackedTask;

/// Stops a server, from anywhere: another task, a signal handler, or a
/// request handler of the same server (B13). Cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Stopper {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Stopper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stopper")
            .field("phase", &self.phase())
            .finish()
    }
}

impl Stopper {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Stopper { shared }
    }

    /// Starts a graceful stop with the server's grace, and returns a future
    /// of its report. The stop starts now, whether or not the future is
    /// awaited. Calling it again starts nothing new: every caller gets the
    /// same report (B12).
    pub fn stop(&self) -> Stopping {
        self.shared.stop(None);
        self.stopping()
    }

    /// Like [`stop`](Stopper::stop), with a grace of its own: connections
    /// still busy `grace` after the drain began are force-closed (B9). A
    /// later call may shorten a running stop's deadline, never lengthen it.
    pub fn stop_within(&self, grace: Duration) -> Stopping {
        self.shared.stop(Some(grace));
        self.stopping()
    }

    /// Starts a graceful stop with the server's grace, without waiting for
    /// it: for signal handlers and request handlers (B13).
    pub fn request_stop(&self) {
        self.shared.stop(None);
    }

    /// Starts a stop with a grace of its own (or shortens a running one),
    /// without waiting for it.
    pub fn request_stop_within(&self, grace: Duration) {
        self.shared.stop(Some(grace));
    }

    /// From now on the listening socket has other owners: a new process it
    /// was handed to, say (B22). The stop then only ends this server's
    /// accepting and leaves what is queued to them, with nothing on the
    /// socket that would refuse or drop their connections. Call it before
    /// the stop; once the listener is closed it changes nothing.
    pub fn share_listener(&self) {
        self.shared.share_listener();
    }

    /// The report of a stop started elsewhere, without starting one.
    pub fn stopping(&self) -> Stopping {
        Stopping {
            shared: self.shared.clone(),
            listener: None,
        }
    }

    /// True once the drain began (B15): a relaxed atomic load.
    pub fn is_draining(&self) -> bool {
        self.shared.is_draining()
    }

    /// Resolves when the drain begins (B15), so an endless stream can end
    /// politely.
    pub fn draining(&self) -> Draining {
        self.drain_signal().draining()
    }

    /// A read-only handle on the drain (B15), to hand to request handlers:
    /// it cannot stop the server.
    pub fn drain_signal(&self) -> DrainSignal {
        DrainSignal {
            shared: self.shared.clone(),
        }
    }

    /// Where the server is: serving, delaying (B16), draining, forcing or
    /// stopped.
    pub fn phase(&self) -> Phase {
        self.shared.phase()
    }

    /// The live counts (B18).
    pub fn counts(&self) -> Counts {
        self.shared.counts()
    }

    /// Resolves once fewer than `limit` connections are open: an accept
    /// loop of your own (with a [`Tracker`](crate::Tracker)) awaits it
    /// before each accept to hold at most `limit` connections, as the
    /// server does with [`Options::max_connections`](crate::Options::max_connections).
    pub async fn room_below(&self, limit: usize) {
        loop {
            let listener = self.shared.listen_for_room();
            if self.shared.open() < limit {
                return;
            }
            listener.await;
        }
    }

    /// The report, once the stop completed (B11).
    pub fn report(&self) -> Option<Report> {
        self.shared.report()
    }

    /// Tracks `task`, work of the application's own (a write-behind, a job
    /// a handler started): the stop waits for it within the same grace as
    /// the connections, cancels it at the grace deadline, and the report
    /// counts it (B24). Spawn the returned future on your runtime.
    ///
    /// It counts from this call: spawn it (or drop it) before you await the
    /// stop, for a task nobody polls holds a stop with no grace forever. At
    /// the grace deadline the report counts it cancelled at once, and its
    /// future is dropped at its next poll (a poll under way on another
    /// thread ends first). A task whose future panics ends: counted
    /// finished. Polled again after it resolved, it gives
    /// [`TaskError::Cancelled`](crate::TaskError::Cancelled).
    ///
    /// ```no_run
    /// # async fn flush_metrics() {}
    /// # fn run(stopper: stoppable::Stopper) {
    /// let flush = stopper.track_task(async {
    ///     flush_metrics().await;
    /// });
    /// tokio::spawn(flush);
    /// # }
    /// ```
    pub fn track_task<F: Future>(&self, task: F) -> TrackedTask<F> {
        TrackedTask::new(task, self.shared.clone())
    }
}

/// Tells a handler that the drain began (B15): a flag and a future, cheap
/// to clone. From [`Stopper::drain_signal`], or from each request's
/// extensions when the server was built with
/// [`Options::drain_signal_in_requests`](crate::Options::drain_signal_in_requests).
#[derive(Clone)]
pub struct DrainSignal {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DrainSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrainSignal")
            .field("draining", &self.is_draining())
            .finish()
    }
}

impl DrainSignal {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        DrainSignal { shared }
    }

    /// True once the drain began: one relaxed atomic load.
    pub fn is_draining(&self) -> bool {
        self.shared.is_draining()
    }

    /// Resolves when the drain begins: end a stream with a last event, a
    /// WebSocket with a close frame.
    pub fn draining(&self) -> Draining {
        Draining {
            shared: self.shared.clone(),
            listener: None,
        }
    }

    /// As [`Stopper::track_task`], for a handler that holds this signal.
    pub fn track_task<F: Future>(&self, task: F) -> TrackedTask<F> {
        TrackedTask::new(task, self.shared.clone())
    }
}

/// Waits for `ready` on the server's change notifications.
pub(crate) fn wait_for<T>(
    shared: &Shared,
    listener: &mut Option<EventListener>,
    cx: &mut Context<'_>,
    ready: impl Fn(&Shared) -> Option<T>,
) -> Poll<T> {
    loop {
        if let Some(value) = ready(shared) {
            return Poll::Ready(value);
        }
        match listener {
            // Listen first, then look again, so no notification is missed.
            None => *listener = Some(shared.listen()),
            Some(l) => match Pin::new(l).poll(cx) {
                Poll::Ready(()) => *listener = None,
                Poll::Pending => return Poll::Pending,
            },
        }
    }
}

/// A stop in progress; resolves to its [`Report`] (B11).
#[must_use = "the stop runs anyway; await this to get its report"]
pub struct Stopping {
    shared: Arc<Shared>,
    listener: Option<EventListener>,
}

impl Future for Stopping {
    type Output = Report;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Report> {
        let this = &mut *self;
        wait_for(&this.shared, &mut this.listener, cx, Shared::report)
    }
}

/// Resolves when the drain begins (B15).
pub struct Draining {
    shared: Arc<Shared>,
    listener: Option<EventListener>,
}

impl Future for Draining {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        wait_for(&this.shared, &mut this.listener, cx, |s| {
            s.is_draining().then_some(())
        })
    }
}
