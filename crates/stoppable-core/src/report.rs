//! What a stop reports (B11) and the live counts (B18).

use std::time::Duration;

/// Where the server is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Accepting and serving; no stop yet.
    #[default]
    Serving,
    /// A stop began, but the readiness delay (B16) still runs: serving as usual.
    Delaying,
    /// Not accepting; waiting for open connections to finish.
    Draining,
    /// The grace period ended; connections were force-closed, the listener is
    /// not yet reported closed.
    Forcing,
    /// The stop completed.
    Stopped,
}

impl Phase {
    /// The phase as a lower-case word, as the example server prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Serving => "serving",
            Phase::Delaying => "delaying",
            Phase::Draining => "draining",
            Phase::Forcing => "forcing",
            Phase::Stopped => "stopped",
        }
    }
}

/// A snapshot of the open connections (B18).
///
/// `idle + active + closing + upgraded == open`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Open connections.
    pub open: usize,
    /// Open with no work: no request in flight, nothing being read (includes
    /// connections that have not sent a byte yet).
    pub idle: usize,
    /// Open with a request in flight or a request head being read.
    pub active: usize,
    /// Told to close (after their current work), not closed yet.
    pub closing: usize,
    /// Upgraded (WebSocket, `CONNECT`): tracked until their IO is dropped (B14).
    pub upgraded: usize,
    /// Requests in flight over all open connections (HTTP/2 can have many per
    /// connection).
    pub requests_in_flight: u64,
    /// The application's tasks running, that a stop waits for (not
    /// connections: not in `open`).
    pub tasks: usize,
    /// Where the server is in its life.
    pub phase: Phase,
}

/// How a stop ended (B11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// True exactly when no connection with work was force-closed and no
    /// application task was cancelled.
    pub graceful: bool,
    /// Connections closed during the stop that had no work.
    pub closed_idle: usize,
    /// Connections closed during the stop after finishing their work.
    pub closed_after_work: usize,
    /// Connections whose work was cut: force-closed at the grace deadline,
    /// or with a head cut by a timeout (the core's, B8, or the driver's own,
    /// [`ConnEvent::Cut`](crate::ConnEvent::Cut)).
    pub force_closed: usize,
    /// Requests that completed between the stop call and its end.
    pub requests_completed: u64,
    /// Application tasks that ended by themselves between the stop call and
    /// its end.
    pub tasks_finished: usize,
    /// Application tasks still running at the grace deadline: cancelled.
    pub tasks_cancelled: usize,
    /// From the first stop call to the end of the stop.
    pub elapsed: Duration,
}
